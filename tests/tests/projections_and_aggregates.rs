//! Some columns of a queryset's rows (tuples, single values, a struct of one's own),
//! a queryset's values as another's subquery, and aggregates, on the shop's schema
//! on both backends with query counts.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use diesel::dsl::{avg, count, count_star, max, min, sum};
use diesel::AggregateExpressionMethods as _;
use orm::assert_num_queries;
use orm::prelude::*;
use orm_tests::shop::{
    order, seed, shop_customer, shop_line, shop_product, Customer, Line, Order, Product,
};
use orm_tests::shop_on_both_backends;

fn seeded(db: &orm_tests::TestDb) -> orm::PooledConnection {
    let mut conn = db.conn();
    seed(&mut conn).expect("seed the shop");
    conn
}

/// A customer's key and name only.
#[derive(Debug, PartialEq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = shop_customer)]
struct Name {
    id: i32,
    name: String,
}

shop_on_both_backends! {
    fn values_come_as_single_values_tuples_and_structs(db) {
        let conn = &mut seeded(&db);
        let titles: Vec<String> = assert_num_queries!(1, Product::objects().values_list(shop_product::title).all(conn)).unwrap();
        assert_eq!(titles, ["Anvil", "Bell", "Candle", "Drum"]);
        // Filtered, ordered and sliced as the queryset is.
        let big = Line::objects()
            .filter(shop_line::quantity.ge(2))
            .order_by((shop_line::quantity.desc(), shop_line::id.asc()))
            .limit(2)
            .values_list((shop_line::id, shop_line::quantity));
        let rows: Vec<(i32, i32)> = big.all(conn).unwrap();
        assert_eq!(rows, [(6, 5), (3, 3)]);
        // A struct of some columns; soft-deleted Di is hidden as from `all`.
        let names = Customer::objects().order_by(shop_customer::id.asc()).values::<Name>();
        let got = assert_num_queries!(1, names.all(conn)).unwrap();
        assert_eq!(got.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["Ada", "Bo", "Cy"]);
        assert_eq!(names.first(conn).unwrap(), Some(Name { id: 1, name: "Ada".into() }));
        let bo: String = Customer::objects().filter(shop_customer::id.eq(2)).values_list(shop_customer::name).get(conn).unwrap();
        assert_eq!(bo, "Bo");
        let none: Option<String> = Customer::objects().filter(shop_customer::id.eq(4)).values_list(shop_customer::name).first(conn).unwrap();
        assert_eq!(none, None);
        let two = Customer::objects().values_list::<_, String>(shop_customer::name).get(conn);
        assert!(matches!(two, Err(orm::Error::MultipleObjectsReturned { count: 3, .. })), "{two:?}");
    }

    fn distinct_values_count_and_list_distinct_rows(db) {
        let conn = &mut seeded(&db);
        let skus = Line::objects().with_deleted().distinct().values_list::<_, String>(shop_line::product_sku);
        assert_eq!(assert_num_queries!(1, skus.count(conn)).unwrap(), 4);
        // The model's default ordering is dropped from a distinct selection...
        let mut all: Vec<String> = skus.all(conn).unwrap();
        all.sort();
        assert_eq!(all, ["a-1", "b\"2", "c 3", "d-4"]);
        // ...an ordering by the selected column stays.
        let ordered: Vec<String> = Line::objects()
            .distinct()
            .order_by(shop_line::product_sku.desc())
            .values_list(shop_line::product_sku)
            .all(conn)
            .unwrap();
        assert_eq!(ordered, ["d-4", "c 3", "b\"2", "a-1"]);
        // Pages are ordered by the primary key last: distinct values cannot be.
        let refused = assert_num_queries!(0, skus.paginate(2).page(conn, "1"));
        assert!(matches!(refused, Err(orm::Error::Unsupported { .. })), "{refused:?}");
    }

    fn values_stream_and_paginate(db) {
        let conn = &mut seeded(&db);
        let pairs = Line::objects().values_list((shop_line::id, shop_line::quantity));
        let streamed: Vec<(i32, i32)> = pairs.stream(conn, 3).unwrap().map(Result::unwrap).collect();
        assert_eq!(streamed.len(), 8);
        assert_eq!(streamed.iter().map(|p| p.0).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        assert_eq!(streamed[5], (6, 5));
        let ids = Line::objects().values_list::<_, i32>(shop_line::id);
        let page = assert_num_queries!(2, ids.paginate(3).page(conn, "3")).unwrap();
        assert_eq!((page.count, page.results), (8, vec![7, 8]));
        assert!(ids.paginate(3).page(conn, "4").unwrap_err().is_empty_page());
    }

    fn a_querysets_values_filter_another_with_their_soft_delete(db) {
        let conn = &mut seeded(&db);
        let retail = || Customer::objects().filter(shop_customer::type_.eq("retail")).values_list::<_, i32>(shop_customer::id);
        let orders = Order::objects().filter(order::customer_id.is_in(retail()));
        let ids: Vec<i32> = assert_num_queries!(1, orders.all(conn)).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(ids, [4, 2, 1]);
        let others: Vec<i32> = Order::objects().exclude(order::customer_id.is_in(retail())).all(conn).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(others, [3]);
        // Order 5 is soft-deleted: its line 8 is outside the live orders' ids...
        let live = Line::objects().filter(shop_line::order_id.is_in(Order::objects().values_list::<_, i32>(order::id)));
        assert_eq!(live.count(conn).unwrap(), 7);
        // ...and inside when the subquery includes deleted rows.
        let every = Line::objects().filter(shop_line::order_id.is_in(Order::objects().with_deleted().values_list::<_, i32>(order::id)));
        assert_eq!(every.count(conn).unwrap(), 8);
        // A sliced subquery: the lines of the newest live order (order 4).
        let newest = Line::objects().filter(shop_line::order_id.is_in(Order::objects().limit(1).values_list::<_, i32>(order::id)));
        let ids: Vec<i32> = newest.all(conn).unwrap().iter().map(|l| l.id).collect();
        assert_eq!(ids, [6, 7]);
    }

    fn aggregates_are_typed_and_null_over_no_rows(db) {
        let conn = &mut seeded(&db);
        let lines = Line::objects();
        let (rows, skus, total, least, most): (i64, i64, Option<i64>, Option<i32>, Option<i32>) = assert_num_queries!(
            1,
            lines.aggregate(
                conn,
                (
                    count_star(),
                    count(shop_line::product_sku).aggregate_distinct(),
                    sum(shop_line::quantity),
                    min(shop_line::quantity),
                    max(shop_line::quantity),
                ),
            )
        )
        .unwrap();
        assert_eq!((rows, skus, total, least, most), (8, 4, Some(16), Some(1), Some(5)));
        // avg of an integer column and sum of a bigint one are numeric: BigDecimal on
        // both backends.
        let mean: Option<BigDecimal> = lines.aggregate(conn, avg(shop_line::quantity)).unwrap();
        assert_eq!(mean, Some(BigDecimal::from(2)));
        let cents: Option<BigDecimal> = Product::objects().aggregate(conn, sum(shop_product::price_cents)).unwrap();
        assert_eq!(cents, Some(BigDecimal::from_str("1640").unwrap()));
        // NULL over no rows; COUNT is 0.
        let empty = lines.clone().filter(shop_line::quantity.gt(99));
        let (n, total, mean): (i64, Option<i64>, Option<BigDecimal>) =
            empty.aggregate(conn, (count_star(), sum(shop_line::quantity), avg(shop_line::quantity))).unwrap();
        assert_eq!((n, total, mean), (0, None, None));
        // Soft delete and slices apply: live orders only; the first three lines.
        let orders: i64 = Order::objects().aggregate(conn, count_star()).unwrap();
        assert_eq!(orders, 4);
        let first_three: Option<i64> = lines.order_by(shop_line::id.asc()).limit(3).aggregate(conn, sum(shop_line::quantity)).unwrap();
        assert_eq!(first_three, Some(6));
    }

    fn annotations_count_and_aggregate_related_rows(db) {
        let conn = &mut seeded(&db);
        Customer::objects()
            .create(conn, Customer { id: 5, name: "Ed".into(), type_: "retail".into(), deleted: false, updated: orm_tests::at(50) })
            .unwrap();
        let latest = || Customer::orders().aggregate(max(order::placed_at));
        let annotated = Customer::objects()
            .order_by(shop_customer::id.asc())
            .annotate((Customer::orders().count(), latest()));
        let rows: Vec<(Customer, (i64, Option<NaiveDateTime>))> = assert_num_queries!(1, annotated.all(conn)).unwrap();
        let got: Vec<(i32, i64, Option<NaiveDateTime>)> = rows.iter().map(|(c, (n, at))| (c.id, *n, *at)).collect();
        let at = |m| Some(orm_tests::at(m));
        // Bo's order 5 is soft-deleted: not counted; Ed has none (0, NULL).
        assert_eq!(got, [(1, 2, at(2)), (2, 1, at(3)), (3, 1, at(4)), (5, 0, None)]);
        assert_eq!(annotated.count(conn).unwrap(), 4);
        let page = assert_num_queries!(2, annotated.paginate(3).page(conn, "2")).unwrap();
        assert_eq!((page.count, page.results.iter().map(|(c, _)| c.id).collect::<Vec<_>>()), (4, vec![5]));
        // The hop's own queryset decides what is counted.
        let with_deleted: Vec<(Customer, i64)> = Customer::objects()
            .filter(shop_customer::id.eq(2))
            .annotate(Customer::orders().with_deleted().count())
            .all(conn)
            .unwrap();
        assert_eq!(with_deleted[0].1, 2);
        // Filter and order by an aggregate of related rows.
        let regulars = Customer::objects().filter(Customer::orders().count().ge(2));
        assert_eq!(regulars.all(conn).unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), [1]);
        let busiest = Customer::objects().order_by((Customer::orders().count().desc(), shop_customer::id.asc()));
        assert_eq!(busiest.all(conn).unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2, 3, 5]);
        let quiet = Customer::objects().exclude(Customer::orders().exists()).annotate::<_, (Customer, i64)>(Customer::orders().count());
        assert_eq!(quiet.all(conn).unwrap().iter().map(|(c, n)| (c.id, *n)).collect::<Vec<_>>(), [(5, 0)]);
    }

    fn grouped_values_aggregate_each_group(db) {
        let conn = &mut seeded(&db);
        // Di (retail) is soft-deleted: not in her group.
        let per_type = Customer::objects()
            .order_by(shop_customer::type_.asc())
            .group_by(shop_customer::type_)
            .values_list((shop_customer::type_, count_star()));
        let rows: Vec<(String, i64)> = assert_num_queries!(1, per_type.all(conn)).unwrap();
        assert_eq!(rows, [("retail".to_owned(), 2), ("wholesale".to_owned(), 1)]);
        assert_eq!(per_type.count(conn).unwrap(), 2);
        let crowded = Customer::objects()
            .group_by(shop_customer::type_)
            .having(count_star().gt(1))
            .values_list::<_, (String, i64)>((shop_customer::type_, count_star()));
        assert_eq!(crowded.all(conn).unwrap(), [("retail".to_owned(), 2)]);
        assert_eq!(crowded.count(conn).unwrap(), 1);
        // The quantity of each live order's lines (order 5's line is a line of a
        // deleted order, but lines have no soft delete of their own).
        let per_order: Vec<(i32, Option<i64>)> = Line::objects()
            .order_by(shop_line::order_id.asc())
            .group_by(shop_line::order_id)
            .values_list((shop_line::order_id, sum(shop_line::quantity)))
            .all(conn)
            .unwrap();
        assert_eq!(per_order, [(1, Some(3)), (2, Some(3)), (3, Some(2)), (4, Some(6)), (5, Some(2))]);
        // Groups have no primary key to order pages by.
        let refused = per_type.paginate(1).page(conn, "1");
        assert!(matches!(refused, Err(orm::Error::Unsupported { .. })), "{refused:?}");
    }

    fn lazy_counts_and_lookups_in_a_loop_are_reported_as_n_plus_one(db) {
        use orm::instrument::{detect_n_plus_one, NPlusOneMode};
        let conn = &mut seeded(&db);
        let customers = Customer::objects().all(conn).unwrap();
        // A count per customer, on purpose: the report names the fix.
        let report = detect_n_plus_one(3, NPlusOneMode::Strict, || {
            for customer in &customers {
                Customer::orders().count_for(customer, conn).unwrap();
            }
        })
        .unwrap_err();
        let orm::Error::NPlusOne(report) = report else { panic!("{report}") };
        assert_eq!(report.repeated[0].count, 3);
        assert_eq!(report.repeated[0].fix.as_deref(), Some("annotate `Customer::orders().count()`"));
        // A lookup or an aggregate per row, written by hand, repeats from one line too.
        let report = detect_n_plus_one(3, NPlusOneMode::Strict, || {
            for customer in &customers {
                let _: i64 = Order::objects()
                    .filter(Order::customer.is(shop_customer::id.eq(customer.id)))
                    .aggregate(conn, count_star())
                    .unwrap();
            }
        })
        .unwrap_err();
        let orm::Error::NPlusOne(report) = report else { panic!("{report}") };
        assert_eq!(report.repeated[0].count, 3);
        let site = report.repeated[0].call_site.expect("a call site");
        assert!(site.file().ends_with("projections_and_aggregates.rs"), "{site}");
        // The annotation is one statement for all of them.
        let counted = assert_num_queries!(1, Customer::objects().annotate::<_, (Customer, i64)>(Customer::orders().count()).all(conn)).unwrap();
        assert_eq!(counted.iter().map(|(_, n)| n).sum::<i64>(), 4);
    }
}
