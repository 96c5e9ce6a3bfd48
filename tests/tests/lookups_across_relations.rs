//! Filters and orderings through declared relations (the shop: lines → orders →
//! customers, lines → products → warehouses), forward and reverse, over several
//! hops, with the related models' soft delete, on both backends with query counts.

use orm::paginate::CursorSecret;
use orm::prelude::*;
use orm::{assert_num_queries, Error};
use orm_tests::shop::{
    order, seed, shop_customer, shop_line, shop_product, shop_warehouse, Customer, Line, Order,
    Product,
};
use orm_tests::shop_on_both_backends;

fn seeded(db: &orm_tests::TestDb) -> orm::PooledConnection {
    let mut conn = db.conn();
    seed(&mut conn).expect("seed the shop");
    conn
}

fn ids<M: Model>(rows: &[M]) -> Vec<M::Key> {
    rows.iter().map(Model::pk).collect()
}

shop_on_both_backends! {
    fn forward_lookups_filter_through_one_and_several_hops(db) {
        let conn = &mut seeded(&db);
        // Orders of retail customers (customer 4, retail, is soft-deleted and has none).
        let retail = Order::objects().filter(Order::customer.is(shop_customer::type_.eq("retail")));
        assert_eq!(ids(&assert_num_queries!(1, retail.all(conn)).unwrap()), [4, 2, 1]);
        assert_eq!(retail.count(conn).unwrap(), 3);
        // Two hops: lines of Bo's orders. Order 5 (Bo's) is soft-deleted, so its line 8
        // is not matched...
        let bos = Line::objects().filter(Line::order.is(Order::customer.is(shop_customer::name.eq("Bo"))));
        assert_eq!(ids(&assert_num_queries!(1, bos.all(conn)).unwrap()), [4, 5]);
        // ...unless the related queryset says so.
        let with_deleted = Line::objects().filter(Line::order.is_in(
            Order::objects().with_deleted().filter(Order::customer.is(shop_customer::name.eq("Bo"))),
        ));
        assert_eq!(ids(&with_deleted.all(conn).unwrap()), [4, 5, 8]);
        // Two hops the other way: lines of products kept in Oslo.
        let oslo = Line::objects().filter(Line::product.is(kept_in("Oslo")));
        assert_eq!(ids(&assert_num_queries!(1, oslo.all(conn)).unwrap()), [4, 5, 8]);
        // Combined with the model's own columns and diesel's boolean methods.
        let either = Line::objects().filter(
            shop_line::quantity.ge(5).or(Line::product.is(shop_product::title.eq("Drum"))),
        );
        assert_eq!(ids(&either.all(conn).unwrap()), [5, 6, 8]);
    }

    fn reverse_lookups_test_for_one_related_row(db) {
        let conn = &mut seeded(&db);
        // Customers with an order holding a line of 5 or more.
        let big = Customer::objects().filter(Customer::orders().any(Order::lines().any(shop_line::quantity.ge(5))));
        assert_eq!(ids(&assert_num_queries!(1, big.all(conn)).unwrap()), [3]);
        // Customers with any live order: Ada, Bo, Cy (Di is soft-deleted herself).
        let buyers = Customer::objects().filter(Customer::orders().exists()).order_by(shop_customer::id.asc());
        assert_eq!(ids(&buyers.all(conn).unwrap()), [1, 2, 3]);
        // The drum in quantity 2 is only in order 5, which is soft-deleted...
        let drums = |orders: orm::relations::Reverse<Customer, Order>| {
            Customer::objects().filter(orders.any(Order::lines().any(
                shop_line::product_sku.eq("d-4").and(shop_line::quantity.eq(2)),
            )))
        };
        assert!(drums(Customer::orders()).all(conn).unwrap().is_empty());
        // ...unless the hop says so.
        assert_eq!(ids(&drums(Customer::orders().with_deleted()).all(conn).unwrap()), [2]);
        // A hop's own filter takes part in the test.
        let early = Customer::objects()
            .filter(Customer::orders().filter(order::placed_at.lt(orm_tests::at(3))).exists())
            .order_by(shop_customer::id.asc());
        assert_eq!(ids(&early.all(conn).unwrap()), [1]);
    }

    fn exclude_across_a_to_many_relation_tests_one_related_row_for_all_conditions(db) {
        let conn = &mut seeded(&db);
        // No line is both the anvil and of quantity 2 (order 1 has the anvil once and
        // two bells): no order is excluded.
        let together = Order::objects()
            .exclude(Order::lines().any(shop_line::product_sku.eq("a-1").and(shop_line::quantity.eq(2))));
        assert_eq!(ids(&assert_num_queries!(1, together.all(conn)).unwrap()), [4, 3, 2, 1]);
        // Django's multi-valued exclude tests each condition on its own related row:
        // written as two lookups, order 1 (an anvil line, and a line of 2) goes.
        let apart = Order::objects().exclude(
            Order::lines().any(shop_line::product_sku.eq("a-1")).and(Order::lines().any(shop_line::quantity.eq(2))),
        );
        assert_eq!(ids(&apart.all(conn).unwrap()), [4, 3, 2]);
        // A forward exclude keeps the rows whose related row does not match.
        let not_ada = Order::objects().exclude(Order::customer.is(shop_customer::name.eq("Ada")));
        assert_eq!(ids(&not_ada.all(conn).unwrap()), [4, 3]);
        // Filter and exclude of one lookup split the rows between them.
        let with = Customer::objects().filter(Customer::orders().exists()).count(conn).unwrap();
        let without = Customer::objects().exclude(Customer::orders().exists()).count(conn).unwrap();
        assert_eq!((with, without), (3, 0));
    }

    fn orderings_read_a_related_column(db) {
        let conn = &mut seeded(&db);
        // Orders by their customer's name, Z to A, then by id.
        let by_name = Order::objects().order_by((Order::customer.by(shop_customer::name.desc()), order::id.asc()));
        assert_eq!(ids(&assert_num_queries!(1, by_name.all(conn)).unwrap()), [4, 3, 1, 2]);
        // Sliced, joined, counted, paged and streamed.
        assert_eq!(ids(&by_name.clone().limit(2).all(conn).unwrap()), [4, 3]);
        let joined = assert_num_queries!(1, by_name.clone().select_related(Order::customer).limit(3).all(conn)).unwrap();
        let names: Vec<_> = joined.iter().map(|(o, c)| (o.id, c.name.as_str())).collect();
        assert_eq!(names, [(4, "Cy"), (3, "Bo"), (1, "Ada")]);
        assert_eq!(by_name.count(conn).unwrap(), 4);
        let page = by_name.paginate(3).page(conn, "2").unwrap();
        assert_eq!((page.count, ids(&page.results)), (4, vec![2]));
        let streamed: Vec<i32> = by_name.stream(conn, 3).unwrap().map(|o| o.unwrap().id).collect();
        assert_eq!(streamed, [4, 3, 1, 2]);
        // Two hops: lines by their product's warehouse city, then by id.
        let by_city = Line::objects().order_by((
            Line::product.by(Product::warehouse.by(shop_warehouse::city.desc())),
            shop_line::id.asc(),
        ));
        assert_eq!(ids(&by_city.all(conn).unwrap()), [4, 5, 8, 1, 2, 3, 6, 7]);
        // A keyset cursor holds the last row's values, which a related column is not.
        let secret = CursorSecret::new("the shop's secret for the tests").unwrap();
        let refused = assert_num_queries!(0, by_name.keyset(2, &secret).page(conn, None));
        assert!(matches!(refused, Err(Error::Unsupported { .. })), "{refused:?}");
    }
}

/// Products kept in the warehouse of `city`: a lookup is a value like any filter.
fn kept_in(city: &'static str) -> orm::relations::Condition<shop_product::table> {
    Product::warehouse.is(shop_warehouse::city.eq(city))
}
