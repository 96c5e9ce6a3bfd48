//! Some columns of a queryset's rows (tuples, single values, a struct of one's own),
//! a queryset's values as another's subquery, and aggregates, on the shop's schema
//! on both backends with query counts.

use std::str::FromStr;

use bigdecimal::BigDecimal;
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
}
