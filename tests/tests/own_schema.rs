//! A schema unlike the demo's (the shop: `i16`, `i32`, text and `i64` keys, a table
//! named `"order"`, keyword columns, a field named unlike its column, and a
//! schema-qualified table) through every feature that uses keys or names, on both
//! backends, with query counts asserted.

use diesel::connection::SimpleConnection;
use orm::bulk::{BulkCreate, InsertMethod};
use orm::count::{Count, CountMethod};
use orm::instrument::{detect_n_plus_one, NPlusOneMode};
use orm::paginate::CursorSecret;
use orm::prelude::*;
use orm::{assert_num_queries, capture, AnyConnection, Error};
use orm_tests::shop::{
    entry, order, seed, shop_customer, shop_line, shop_product, Customer, Entry, Line, Order,
    Product, Warehouse,
};
use orm_tests::shop_on_both_backends;

fn seeded(db: &orm_tests::TestDb) -> orm::PooledConnection {
    let mut conn = db.conn();
    seed(&mut conn).expect("seed the shop");
    conn
}

fn secret() -> CursorSecret {
    CursorSecret::new("the shop's secret for the tests").unwrap()
}

fn skus(products: &[Product]) -> Vec<&str> {
    products.iter().map(|p| p.sku.as_str()).collect()
}

/// Every page of `pages` forward, as primary keys.
fn walk<M: Model>(
    pages: &orm::paginate::KeysetPaginator<M>,
    conn: &mut AnyConnection,
) -> Vec<M::Key> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = pages.page(conn, cursor.as_deref()).unwrap();
        keys.extend(page.results.iter().map(Model::pk));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

shop_on_both_backends! {
    fn keys_of_every_type_come_back_typed(db) {
        let conn = &mut db.conn();
        // bulk_create and create return each model's own key type through RETURNING.
        let codes: Vec<i16> = Warehouse::objects()
            .bulk_create(conn, vec![Warehouse { code: -3, city: "Oslo".into() }, Warehouse { code: 9, city: "Rome".into() }])
            .unwrap();
        assert_eq!(codes, [-3, 9]);
        let sku: String = Product::objects()
            .create(conn, Product { sku: "z'9".into(), name: "Zither".into(), price_cents: 1, warehouse_code: -3 })
            .unwrap();
        assert_eq!(sku, "z'9");
        let ids: Vec<i32> = Customer::objects()
            .bulk_create(
                conn,
                vec![Customer { id: 41, name: "Eve".into(), type_: "retail".into(), deleted: false, updated: orm_tests::at(1) }],
            )
            .unwrap();
        assert_eq!(ids, [41]);
        let created = Entry::objects()
            .bulk_create_with(conn, vec![Entry { id: 8, customer_id: 41, amount_cents: 3, desc: "one".into() }], &BulkCreate::new())
            .unwrap();
        assert_eq!((created.rows, created.ids), (1, vec![8_i64]));
        // A duplicate text key is a unique violation, typed.
        let err = Product::objects()
            .create(conn, Product { sku: "z'9".into(), name: "Again".into(), price_cents: 1, warehouse_code: -3 })
            .unwrap_err();
        assert!(err.is_unique_violation(), "{err}");
    }

    fn get_and_in_bulk_take_each_key_type(db) {
        let conn = &mut seeded(&db);
        let product = assert_num_queries!(1, Product::objects().filter(shop_product::sku.eq("b\"2")).get(conn)).unwrap();
        assert_eq!((product.name.as_str(), product.warehouse_code), ("Bell", 7));

        let by_sku = assert_num_queries!(
            1,
            Product::objects().in_bulk(conn, &["c 3".to_owned(), "a-1".to_owned(), "nope".to_owned(), "a-1".to_owned()])
        )
        .unwrap();
        assert_eq!(by_sku.len(), 2);
        assert_eq!(by_sku["c 3"].name, "Candle");

        let by_id = assert_num_queries!(1, Customer::objects().in_bulk(conn, &[3, 4, 1])).unwrap();
        // Customer 4 is soft-deleted: hidden from objects().
        let mut ids: Vec<i32> = by_id.keys().copied().collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 3]);
        let by_code = Warehouse::objects().in_bulk(conn, &[-3]).unwrap();
        assert_eq!(by_code[&-3].city, "Oslo");
    }

    fn select_related_follows_i32_text_and_i16_keys(db) {
        let conn = &mut seeded(&db);
        let qs = Line::objects().select_related((Line::order, Line::product.then(Product::warehouse)));
        let rows = assert_num_queries!(1, qs.all(conn)).unwrap();
        assert_eq!(rows.len(), 8);
        let (line, order, (product, warehouse)) = &rows[1];
        assert_eq!((line.id, order.id, product.sku.as_str(), warehouse.code), (2, 1, "b\"2", 7));

        // Sliced: the slice is read first, then joined (a derived table named as the
        // keyword table "order" on both backends).
        let sliced = Order::objects().select_related(Order::customer).limit(2);
        let rows = assert_num_queries!(1, sliced.all(conn)).unwrap();
        let ids: Vec<(i32, i32)> = rows.iter().map(|(o, c)| (o.id, c.id)).collect();
        assert_eq!(ids, [(4, 3), (3, 2)]);
        let sql = sliced.sql(db.backend()).unwrap();
        assert!(sql.contains(" AS \"order\"") || sql.contains(" AS `order`"), "{sql}");
    }

    fn a_schema_qualified_table_is_sliced_by_its_keys(db) {
        let conn = &mut seeded(&db);
        let qs = Entry::objects().select_related(Entry::customer).limit(3);
        let rows = assert_num_queries!(1, qs.all(conn)).unwrap();
        let got: Vec<(i64, &str)> = rows.iter().map(|(e, c)| (e.id, c.name.as_str())).collect();
        assert_eq!(got, [(3, "Bo"), (4, "Cy"), (1, "Ada")]);
        let pg = qs.sql(Backend::Postgres).unwrap();
        assert!(
            pg.contains(r#"WHERE ("shop_ledger"."entry"."id" IN (SELECT "shop_ledger"."entry"."id" FROM "shop_ledger"."entry" ORDER BY "shop_ledger"."entry"."amount_cents" DESC, "shop_ledger"."entry"."id" DESC LIMIT $1))"#),
            "{pg}"
        );
        let sqlite = qs.sql(Backend::Sqlite).unwrap();
        assert!(sqlite.contains("FROM `shop_ledger`.`entry` INNER JOIN") || sqlite.contains("FROM `shop_ledger`.`entry` CROSS JOIN"), "{sqlite}");

        // Plain queries, counts and exists on it.
        assert_eq!(Entry::objects().count(conn).unwrap(), 6);
        assert!(Entry::objects().filter(entry::desc.eq("refund")).exists(conn).unwrap());
        let offset = Entry::objects().select_related(Entry::customer).offset(4).limit(5).all(conn).unwrap();
        assert_eq!(offset.iter().map(|(e, _)| e.id).collect::<Vec<_>>(), [5, 2]);
    }

    fn prefetch_lists_keys_of_each_type_in_one_bind(db) {
        let conn = &mut seeded(&db);
        // i32 keys: each customer's live orders (customer 4 is deleted, order 5 too).
        let customers = assert_num_queries!(2, Customer::objects().prefetch(Customer::orders()).all(conn)).unwrap();
        let got: Vec<(i32, Vec<i32>)> = customers
            .iter()
            .map(|(c, orders)| (c.id, orders.iter().map(|o| o.id).collect()))
            .collect();
        assert_eq!(got, [(3, vec![4]), (2, vec![3]), (1, vec![2, 1])]);

        // Text keys, reverse and forward: each product's lines, each line's product
        // (one shared parent per key).
        let products = assert_num_queries!(2, Product::objects().prefetch(Product::lines()).all(conn)).unwrap();
        let counts: Vec<(&str, usize)> = products.iter().map(|(p, l)| (p.sku.as_str(), l.len())).collect();
        assert_eq!(counts, [("a-1", 3), ("b\"2", 2), ("c 3", 1), ("d-4", 2)]);
        let lines = assert_num_queries!(2, Line::objects().prefetch(Line::product).all(conn)).unwrap();
        let anvils: Vec<_> = lines.iter().filter_map(|(_, p)| p.clone()).filter(|p| p.sku == "a-1").collect();
        assert_eq!(anvils.len(), 3);
        assert!(std::sync::Arc::ptr_eq(&anvils[0], &anvils[1]), "children of one parent share it");

        // i16 keys, nested: each warehouse's products, each with its lines.
        let warehouses = assert_num_queries!(
            3,
            Warehouse::objects().prefetch(Warehouse::products().prefetch(Product::lines())).all(conn)
        )
        .unwrap();
        let got: Vec<(i16, Vec<(&str, usize)>)> = warehouses
            .iter()
            .map(|(w, ps)| (w.code, ps.iter().map(|(p, ls)| (p.sku.as_str(), ls.len())).collect()))
            .collect();
        assert_eq!(got, [(-3, vec![("c 3", 1), ("d-4", 2)]), (7, vec![("a-1", 3), ("b\"2", 2)])]);

        // One bind whatever the number of keys: an array on PostgreSQL, a JSON list
        // (strings escaped) on SQLite.
        let keys: Vec<String> = (0..5_000).map(|i| format!("sku \"{i}\"")).collect();
        let sql = Product::lines().sql_for(&keys, db.backend()).unwrap();
        match db.backend() {
            Backend::Postgres => assert!(sql.contains(r#"("shop_line"."product_sku" = ANY($1))"#), "{sql}"),
            Backend::Sqlite => assert!(sql.contains("(`shop_line`.`product_sku` IN (SELECT value FROM json_each(?)))"), "{sql}"),
        }
        let mut keys = keys;
        keys.push("b\"2".into());
        let found = assert_num_queries!(1, Product::objects().in_bulk(conn, &keys)).unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["b\"2"]);
    }

    fn limit_per_parent_ranks_a_schema_qualified_table(db) {
        let conn = &mut seeded(&db);
        let latest = Customer::entries().limit_per_parent(1);
        let customers = assert_num_queries!(2, Customer::objects().prefetch(latest.clone()).all(conn)).unwrap();
        let got: Vec<(i32, Vec<i64>)> = customers
            .iter()
            .map(|(c, es)| (c.id, es.iter().map(|e| e.id).collect()))
            .collect();
        // Each customer's largest entry (ties by id descending).
        assert_eq!(got, [(3, vec![4]), (2, vec![3]), (1, vec![1])]);
        let pg = latest.sql_for(&[1, 2], Backend::Postgres).unwrap();
        assert!(pg.contains(r#"AS "orm_ranked" WHERE "orm_rank" <= $"#), "{pg}");

        // And on a table named by a keyword, under its own name.
        let first = Customer::orders().limit_per_parent(1);
        let customers = assert_num_queries!(2, Customer::objects().prefetch(first).all(conn)).unwrap();
        let got: Vec<(i32, Vec<i32>)> = customers
            .iter()
            .map(|(c, os)| (c.id, os.iter().map(|o| o.id).collect()))
            .collect();
        assert_eq!(got, [(3, vec![4]), (2, vec![3]), (1, vec![2])]);
    }

    fn counts_estimate_from_the_statistics_of_a_qualified_table(db) {
        let conn = &mut seeded(&db);
        match db.backend() {
            Backend::Postgres => conn.batch_execute("ANALYZE shop_ledger.entry").unwrap(),
            Backend::Sqlite => conn.batch_execute("ANALYZE shop_ledger").unwrap(),
        }
        let stats = Entry::objects().count_with(conn, &Count::TableStatistics).unwrap();
        assert_eq!((stats.value, stats.method), (6, CountMethod::TableStatistics));
        assert_eq!(Order::objects().count(conn).unwrap(), 4);
        assert_eq!(Order::objects().with_deleted().count(conn).unwrap(), 5);
    }

    fn page_numbers_and_keyset_cursors_on_other_keys(db) {
        let conn = &mut seeded(&db);
        // Page numbers over a text key.
        let pages = Product::objects().paginate(2);
        let second = assert_num_queries!(2, pages.page(conn, "2")).unwrap();
        assert_eq!(skus(&second.results), ["c 3", "d-4"]);

        // Keyset over (updated DESC, id DESC) with an i32 key: the ties at minute 20
        // are split by id.
        let customers = Customer::objects().keyset(1, &secret());
        assert_eq!(walk(&customers, conn), [3, 2, 1]);
        // Over a renamed field (`name` is the column `title`), then the text key.
        let by_title = Product::objects().order_by(shop_product::title.desc()).keyset(3, &secret());
        assert_eq!(walk(&by_title, conn), ["d-4", "c 3", "b\"2", "a-1"]);
        // Over a keyword column ("type"), then the key.
        let by_type = Customer::objects().order_by((shop_customer::type_.asc(), shop_customer::id.asc())).keyset(2, &secret());
        assert_eq!(walk(&by_type, conn), [1, 3, 2]);
        // On the schema-qualified table, with ties (240 three times): SQLite reads
        // one index range per prefix (a UNION ALL of key lists there).
        let entries = Entry::objects().keyset(2, &secret());
        assert_eq!(walk(&entries, conn), [3, 4, 1, 6, 5, 2]);
        let second = entries.page(conn, None).unwrap().next.unwrap();
        let sql = entries.page_sql(Some(&second), Backend::Sqlite).unwrap();
        assert!(sql.contains("`shop_ledger`.`entry`.`id` IN (SELECT * FROM (SELECT `shop_ledger`.`entry`.`id` FROM `shop_ledger`.`entry` WHERE"), "{sql}");
    }

    fn streams_read_chunks_after_each_key_type(db) {
        let conn = &mut seeded(&db);
        let (skus, captured) = capture(|| {
            Product::objects()
                .stream(conn, 3)
                .unwrap()
                .map(|p| p.unwrap().sku)
                .collect::<Vec<_>>()
        });
        assert_eq!(skus, ["a-1", "b\"2", "c 3", "d-4"]);
        assert!(captured.len() >= 2, "{captured:?}");
        let ids: Vec<i32> = Customer::objects()
            .order_by(shop_customer::id.desc())
            .stream(conn, 1)
            .unwrap()
            .map(|c| c.unwrap().id)
            .collect();
        assert_eq!(ids, [3, 2, 1]);
        let chunks: Vec<Vec<i64>> = Entry::objects()
            .order_by(entry::id.asc())
            .chunks(conn, 4)
            .unwrap()
            .map(|chunk| chunk.unwrap().iter().map(|e| e.id).collect())
            .collect();
        assert_eq!(chunks, [vec![1, 2, 3, 4], vec![5, 6]]);
        let joined: Vec<(i32, String)> = Line::objects()
            .select_related(Line::product)
            .stream(conn, 3)
            .unwrap()
            .map(|row| {
                let (line, product) = row.unwrap();
                (line.id, product.sku)
            })
            .collect();
        assert_eq!(joined.len(), 8);
        assert_eq!(joined[7], (8, "d-4".to_owned()));
    }

    fn bulk_update_keys_rows_by_their_own_key_type(db) {
        let conn = &mut seeded(&db);
        let changed = assert_num_queries!(
            1,
            Product::objects().bulk_update(
                conn,
                (shop_product::price_cents,),
                vec![("b\"2".to_owned(), (121_i64,)), ("c 3".to_owned(), (122,)), ("nope".to_owned(), (1,))],
            )
        )
        .unwrap();
        assert_eq!(changed, 2);
        let prices: Vec<i64> = Product::objects().all(conn).unwrap().iter().map(|p| p.price_cents).collect();
        assert_eq!(prices, [500, 121, 122, 900]);
        let changed = Customer::objects()
            .bulk_update(conn, (shop_customer::type_,), vec![(1, ("vip".to_owned(),)), (2, ("vip".to_owned(),))])
            .unwrap();
        assert_eq!(changed, 2);
        let vips = Customer::objects().filter(shop_customer::type_.eq("vip")).count(conn).unwrap();
        assert_eq!(vips, 2);
        let pg = Customer::objects()
            .bulk_update_sql(Backend::Postgres, (shop_customer::type_,), &[(1, ("x".to_owned(),))])
            .unwrap();
        assert_eq!(
            pg,
            r#"UPDATE "shop_customer" SET "type" = "v"."column2" FROM UNNEST($1, $2) AS "v"("column1", "column2") WHERE "shop_customer"."id" = "v"."column1" AND ("shop_customer"."deleted" = false)"#
        );
    }

    fn copy_writes_a_schema_qualified_table_on_postgres(db) {
        let conn = &mut db.conn();
        let rows: Vec<Entry> = (1..=3)
            .map(|i| Entry { id: i, customer_id: 1, amount_cents: i * 10, desc: format!("copied \"{i}\"") })
            .collect();
        let options = BulkCreate::new().method(InsertMethod::Copy);
        match db.backend() {
            Backend::Postgres => {
                let created = assert_num_queries!(1, Entry::objects().bulk_create_with(conn, rows, &options)).unwrap();
                assert_eq!((created.rows, created.ids.len()), (3, 0));
                assert_eq!(Entry::objects().count(conn).unwrap(), 3);
                let err = Entry::objects().get(conn).unwrap_err();
                assert!(matches!(err, Error::MultipleObjectsReturned { .. }), "{err}");
            }
            Backend::Sqlite => {
                let err = Entry::objects().bulk_create_with(conn, rows, &options).unwrap_err();
                assert!(err.is_unsupported(), "{err}");
            }
        }
    }

    fn explain_reads_plans_of_keyword_and_qualified_tables(db) {
        let conn = &mut seeded(&db);
        let plan = Order::objects().filter(order::customer_id.eq(1)).explain(conn).unwrap();
        assert!(!plan.nodes().is_empty());
        let plan = Entry::objects().explain(conn).unwrap();
        assert!(plan.sql.contains("shop_ledger"), "{}", plan.sql);
        let related = Entry::objects().select_related(Entry::customer).limit(2).explain(conn, orm::explain::ExplainOptions::new()).unwrap();
        assert!(!related.nodes().is_empty());
    }

    fn n_plus_one_reports_name_the_relation_whatever_its_key(db) {
        let conn = &mut seeded(&db);
        let lines = Line::objects().all(conn).unwrap();
        let report = detect_n_plus_one(3, NPlusOneMode::Strict, || {
            for line in &lines {
                Line::product.get(line, conn).unwrap();
            }
        })
        .unwrap_err();
        let Error::NPlusOne(report) = report else { panic!("{report}") };
        assert_eq!(report.repeated[0].fix.as_deref(), Some("select_related `Line::product`"));
        assert_eq!(report.repeated[0].count, 8);
    }
}

#[test]
fn an_attached_database_is_sqlite_only() {
    let err = orm::Database::builder(&orm_tests::postgres_url())
        .attach("ledger", ":memory:")
        .open()
        .unwrap_err();
    assert!(err.is_unsupported(), "{err}");
}

shop_on_both_backends! {
    fn two_keys_to_one_table_join_under_their_own_names(db) {
        use orm_tests::shop::{shop_transfer, Cents, Transfer};
        let conn = &mut seeded(&db);
        let transfer = |id, from_customer_id, to_customer_id, amount_cents| Transfer { id, from_customer_id, to_customer_id, amount_cents: Cents(amount_cents) };
        Transfer::objects()
            .bulk_create(conn, vec![transfer(1, 1, 2, 100), transfer(2, 2, 3, 50), transfer(3, 3, 1, 7)])
            .unwrap();
        let names = |rows: &[(Transfer, Customer, Customer)]| -> Vec<(i32, String, String)> {
            rows.iter().map(|(t, from, to)| (t.id, from.name.clone(), to.name.clone())).collect()
        };
        let qs = Transfer::objects().select_related((Transfer::from_customer, Transfer::to_customer.aliased("to_customer")));
        let rows = assert_num_queries!(1, qs.all(conn)).unwrap();
        assert_eq!(
            names(&rows),
            [(1, "Ada".into(), "Bo".into()), (2, "Bo".into(), "Cy".into()), (3, "Cy".into(), "Ada".into())]
        );
        let sql = qs.sql(db.backend()).unwrap();
        match db.backend() {
            Backend::Postgres => assert!(
                sql.contains(r#""to_customer"."name", "to_customer"."type", "to_customer"."deleted", "to_customer"."updated" FROM "shop_transfer" INNER JOIN "shop_customer" ON "shop_customer"."id" = "shop_transfer"."from_customer_id" INNER JOIN "shop_customer" AS "to_customer" ON "to_customer"."id" = "shop_transfer"."to_customer_id""#),
                "{sql}"
            ),
            Backend::Sqlite => assert!(
                sql.contains("CROSS JOIN `shop_customer` AS `to_customer` ON `to_customer`.`id` = `shop_transfer`.`to_customer_id`"),
                "{sql}"
            ),
        }
        // Streamed in chunks (keyset by id): the aliased columns load as well.
        let streamed: Vec<(i32, String)> = qs
            .stream(conn, 2)
            .unwrap()
            .map(|row| {
                let (t, _, to) = row.unwrap();
                (t.id, to.name)
            })
            .collect();
        assert_eq!(streamed, [(1, "Bo".into()), (2, "Cy".into()), (3, "Ada".into())]);
        // Keyset pages over a column of the application's own type (Cents).
        let pages = Transfer::objects().order_by((shop_transfer::amount_cents.desc(), shop_transfer::id.asc())).keyset(1, &secret());
        assert_eq!(walk(&pages, conn), [1, 2, 3]);
        // Both aliased; sliced before the join; filtered on the base table.
        let both = Transfer::objects()
            .filter(shop_transfer::amount_cents.gt(Cents(10)))
            .limit(1)
            .select_related((Transfer::from_customer.aliased("payer"), Transfer::to_customer.aliased("payee")));
        let rows = assert_num_queries!(1, both.all(conn)).unwrap();
        assert_eq!(names(&rows), [(1, "Ada".into(), "Bo".into())]);
        // A chain through an aliased hop: the next key is read from the alias.
        let chained = Line::objects()
            .filter(shop_line::id.le(3))
            .select_related(Line::order.aliased("o").then(Order::customer));
        let rows = assert_num_queries!(1, chained.all(conn)).unwrap();
        let got: Vec<(i32, i32, &str)> = rows.iter().map(|(l, (o, c))| (l.id, o.id, c.name.as_str())).collect();
        assert_eq!(got, [(1, 1, "Ada"), (2, 1, "Ada"), (3, 2, "Ada")]);
        let sql = chained.sql(db.backend()).unwrap();
        match db.backend() {
            Backend::Postgres => assert!(sql.contains(r#"AS "o" ON "o"."id" = "shop_line"."order_id" INNER JOIN "shop_customer" ON "shop_customer"."id" = "o"."customer_id""#), "{sql}"),
            Backend::Sqlite => assert!(sql.contains("AS `o` ON `o`.`id` = `shop_line`.`order_id` CROSS JOIN `shop_customer` ON `shop_customer`.`id` = `o`.`customer_id`"), "{sql}"),
        }
        // A chain whose second hop is aliased reads that hop's columns from the alias.
        let chained = Line::objects()
            .filter(shop_line::id.le(3))
            .select_related(Line::order.then(Order::customer.aliased("c")));
        let rows = assert_num_queries!(1, chained.all(conn)).unwrap();
        let got: Vec<(i32, i32, &str)> = rows.iter().map(|(l, (o, c))| (l.id, o.id, c.name.as_str())).collect();
        assert_eq!(got, [(1, 1, "Ada"), (2, 1, "Ada"), (3, 2, "Ada")]);
        let streamed = chained.stream(conn, 2).unwrap().count();
        assert_eq!(streamed, 3);
        // Without an alias the second join is refused before any SQL.
        let (err, captured) = capture(|| {
            Transfer::objects().select_related((Transfer::from_customer, Transfer::to_customer)).all(conn)
        });
        assert!(matches!(err.unwrap_err(), Error::TableJoinedTwice { model: "Customer" }));
        assert_eq!(captured.len(), 0);
        // An alias that is a table's own name in the statement is refused too.
        let err = Transfer::objects()
            .select_related((Transfer::from_customer, Transfer::to_customer.aliased("shop_customer")))
            .all(conn)
            .unwrap_err();
        assert!(matches!(err, Error::TableJoinedTwice { .. }), "{err}");
        // The same alias twice is refused too.
        let err = Transfer::objects()
            .select_related((Transfer::from_customer.aliased("c"), Transfer::to_customer.aliased("c")))
            .all(conn)
            .unwrap_err();
        assert!(matches!(err, Error::TableJoinedTwice { .. }), "{err}");
        // Prefetching both keys, and both reverse relations: a query per hop.
        let prefetched = assert_num_queries!(
            3,
            Transfer::objects().prefetch(Transfer::from_customer).prefetch(Transfer::to_customer).all(conn)
        )
        .unwrap();
        let got: Vec<(i32, Option<i32>, Option<i32>)> = prefetched
            .iter()
            .map(|(t, (from, to))| (t.id, from.as_ref().map(|c| c.id), to.as_ref().map(|c| c.id)))
            .collect();
        assert_eq!(got, [(1, Some(1), Some(2)), (2, Some(2), Some(3)), (3, Some(3), Some(1))]);
        let customers = assert_num_queries!(
            3,
            Customer::objects()
                .prefetch(Customer::transfers_sent())
                .prefetch(Customer::transfers_received())
                .all(conn)
        )
        .unwrap();
        let got: Vec<(i32, Vec<i32>, Vec<i32>)> = customers
            .iter()
            .map(|(c, (sent, received))| (c.id, sent.iter().map(|t| t.id).collect(), received.iter().map(|t| t.id).collect()))
            .collect();
        assert_eq!(got, [(3, vec![3], vec![2]), (2, vec![2], vec![1]), (1, vec![1], vec![3])]);
    }
}

shop_on_both_backends! {
    fn first_get_and_count_on_joined_and_prefetched_querysets(db) {
        let conn = &mut seeded(&db);
        // Joined: one statement each; count needs no join.
        let joined = Order::objects().select_related(Order::customer);
        let (order, customer) = assert_num_queries!(1, joined.first(conn)).unwrap().expect("an order");
        assert_eq!((order.id, customer.name.as_str()), (4, "Cy"));
        let (order, customer) =
            assert_num_queries!(1, joined.clone().offset(1).first(conn)).unwrap().expect("a second order");
        assert_eq!((order.id, customer.name.as_str()), (3, "Bo"));
        let one = Order::objects().filter(order::id.eq(2)).select_related(Order::customer);
        let (order, customer) = assert_num_queries!(1, one.get(conn)).unwrap();
        assert_eq!((order.id, customer.id), (2, 1));
        assert!(matches!(joined.get(conn).unwrap_err(), Error::MultipleObjectsReturned { model: "Order", count: 4 }));
        let none = Order::objects().filter(order::id.eq(99)).select_related(Order::customer);
        assert!(matches!(none.get(conn).unwrap_err(), Error::NotFound { model: "Order" }));
        assert!(assert_num_queries!(1, none.first(conn)).unwrap().is_none());
        assert_eq!(assert_num_queries!(1, joined.count(conn)).unwrap(), 4);
        // Prefetched: the parent, then a query per hop; count is the parents'.
        let lines = Order::objects().prefetch(Order::lines());
        let (order, its_lines) = assert_num_queries!(2, lines.first(conn)).unwrap().expect("an order");
        assert_eq!((order.id, its_lines.iter().map(|l| l.id).collect::<Vec<_>>()), (4, vec![6, 7]));
        let (order, its_lines) = assert_num_queries!(2, Order::objects().filter(order::id.eq(1)).prefetch(Order::lines()).get(conn)).unwrap();
        assert_eq!((order.id, its_lines.len()), (1, 2));
        let many = assert_num_queries!(1, lines.get(conn)).unwrap_err();
        assert!(matches!(many, Error::MultipleObjectsReturned { model: "Order", .. }), "{many}");
        assert_eq!(assert_num_queries!(1, lines.count(conn)).unwrap(), 4);
    }
}
