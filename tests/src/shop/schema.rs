// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "shop_mood"))]
    pub struct ShopMood;
}

diesel::table! {
    order (id) {
        id -> Int4,
        customer_id -> Int4,
        placed_at -> Timestamp,
        deleted -> Bool,
    }
}

diesel::table! {
    shop_customer (id) {
        id -> Int4,
        name -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        deleted -> Bool,
        updated -> Timestamp,
    }
}

diesel::table! {
    shop_event (id) {
        id -> Uuid,
        customer_id -> Int4,
        follows_id -> Nullable<Uuid>,
        happened_at -> Timestamptz,
        day -> Date,
        at_time -> Time,
        payload -> Jsonb,
        amount -> Numeric,
        created -> Timestamptz,
        updated -> Timestamptz,
    }
}

diesel::table! {
    shop_job (id) {
        id -> Int4,
        state -> Text,
        worker -> Nullable<Text>,
    }
}

diesel::table! {
    shop_line (id) {
        id -> Int4,
        order_id -> Int4,
        product_sku -> Text,
        quantity -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::ShopMood;

    shop_note (id) {
        id -> Int4,
        customer_id -> Int4,
        mood -> ShopMood,
        tags -> Array<Nullable<Text>>,
        body -> Text,
    }
}

diesel::table! {
    shop_product (sku) {
        sku -> Text,
        title -> Text,
        price_cents -> Int8,
        warehouse_code -> Int2,
    }
}

diesel::table! {
    shop_tag (id) {
        id -> Int4,
        name -> Text,
        uses -> Int4,
        deleted -> Bool,
        created -> Timestamp,
        updated -> Timestamp,
    }
}

diesel::table! {
    shop_transfer (id) {
        id -> Int4,
        from_customer_id -> Int4,
        to_customer_id -> Int4,
        amount_cents -> Int8,
    }
}

diesel::table! {
    shop_warehouse (code) {
        code -> Int2,
        city -> Text,
    }
}

diesel::joinable!(order -> shop_customer (customer_id));
diesel::joinable!(shop_event -> shop_customer (customer_id));
diesel::joinable!(shop_line -> order (order_id));
diesel::joinable!(shop_line -> shop_product (product_sku));
diesel::joinable!(shop_note -> shop_customer (customer_id));
diesel::joinable!(shop_product -> shop_warehouse (warehouse_code));

diesel::allow_tables_to_appear_in_same_query!(
    order,
    shop_customer,
    shop_event,
    shop_job,
    shop_line,
    shop_note,
    shop_product,
    shop_tag,
    shop_transfer,
    shop_warehouse,
);
// @generated automatically by Diesel CLI.

pub mod shop_ledger {
    diesel::table! {
        shop_ledger.entry (id) {
            id -> Int8,
            customer_id -> Int4,
            amount_cents -> Int8,
            desc -> Text,
        }
    }
}
