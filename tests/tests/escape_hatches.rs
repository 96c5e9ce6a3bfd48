//! What the queryset does not cover: a queryset as diesel's boxed query, raw SQL
//! into models, both recorded at their call site, on both backends.

use diesel::sql_types::{Integer, Text};
use diesel::{QueryDsl as _, RunQueryDsl as _};
use orm::prelude::*;
use orm::{at_call_site, capture, Raw};
use orm_tests::shop::{order, seed, Customer, Order};
use orm_tests::shop_on_both_backends;

fn seeded(db: &orm_tests::TestDb) -> orm::PooledConnection {
    let mut conn = db.conn();
    seed(&mut conn).expect("seed the shop");
    conn
}

shop_on_both_backends! {
    fn a_boxed_queryset_keeps_its_soft_delete_filters_ordering_and_slice(db) {
        let conn = &mut seeded(&db);
        // Bo's orders: 3, and 5 which is soft-deleted.
        let bos = Order::objects().filter(order::customer_id.eq(2)).into_boxed();
        let (ids, captured) = capture(|| at_call_site(|| bos.select(order::id).load::<i32>(&mut **conn)));
        assert_eq!(ids.unwrap(), [3]);
        assert_eq!(captured.len(), 1);
        let site = captured.all()[0].call_site.expect("a call site");
        assert!(site.file().ends_with("escape_hatches.rs"), "{site}");
        let every = Order::objects().with_deleted().filter(order::customer_id.eq(2)).into_boxed();
        assert_eq!(every.select(order::id).load::<i32>(&mut **conn).unwrap(), [5, 3]);
        // Ordered newest first, sliced to two.
        let newest = Order::objects().limit(2).into_boxed();
        assert_eq!(newest.select(order::id).load::<i32>(&mut **conn).unwrap(), [4, 3]);
        // Further diesel methods apply on top.
        let later = Order::objects().into_boxed().filter(order::id.gt(2)).select(order::id);
        assert_eq!(later.load::<i32>(&mut **conn).unwrap(), [4, 3]);
    }

    fn raw_sql_loads_models_with_bound_values(db) {
        let conn = &mut seeded(&db);
        let retail = Raw::new(r#"SELECT * FROM shop_customer WHERE "type" = "#)
            .bind::<Text, _>("retail")
            .sql(" ORDER BY id");
        let (rows, captured) = capture(|| retail.load::<Customer>(conn));
        // Raw SQL is what it says: the soft-deleted Di (4) is there.
        assert_eq!(rows.unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(captured.all()[0].call_site.is_some_and(|s| s.file().ends_with("escape_hatches.rs")));
        let placeholder = if db.backend() == Backend::Postgres { "$1" } else { "?" };
        assert_eq!(captured.sql()[0], format!(r#"SELECT * FROM shop_customer WHERE "type" = {placeholder} ORDER BY id"#));
        let renamed = Raw::new("UPDATE shop_customer SET name = ")
            .bind::<Text, _>("Bea")
            .sql(" WHERE id = ")
            .bind::<Integer, _>(2)
            .execute(conn)
            .unwrap();
        assert_eq!(renamed, 1);
        let bea = Customer::objects().filter(orm_tests::shop::shop_customer::id.eq(2)).get(conn).unwrap();
        assert_eq!(bea.name, "Bea");
        // A value is a parameter, never text: quotes go through untouched.
        let none = Raw::new("SELECT * FROM shop_customer WHERE name = ").bind::<Text, _>("x' OR '1'='1").load::<Customer>(conn).unwrap();
        assert!(none.is_empty());
    }
}
