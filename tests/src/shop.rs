//! The shop: a second schema unlike the demo's, for the "own schema" tests. Keys of
//! every supported type (`Warehouse`: `i16`; `Customer`, `Order`, `Line`: `i32`;
//! `Product`: text; `Entry`: `i64`), a table named by an SQL keyword (`"order"`),
//! keyword columns (`"type"`, `"desc"`), a field named unlike its column
//! (`Product::name` is `title`) and a schema-qualified table (`shop_ledger.entry`).
//! `Event` has the column types beyond the shared set: a `uuid` key and a nullable
//! `uuid` key to its own table, `timestamptz` (its bookkeeping columns too), a
//! date, a time, `jsonb` and `numeric`; SQLite holds them as text, JSONB and REAL.
//!
//! `schema.rs` is `diesel print-schema` output, unchanged; the models below are
//! written against it. To regenerate it (diesel_cli: `cargo install diesel_cli
//! --no-default-features --features postgres`), on an empty PostgreSQL database:
//!
//! ```text
//! diesel migration run --database-url "$URL" --migration-dir tests/migrations/shop/postgres
//! diesel print-schema --database-url "$URL" > tests/src/shop/schema.rs
//! diesel print-schema --database-url "$URL" --schema shop_ledger >> tests/src/shop/schema.rs
//! ```
//!
//! The second command prints the ledger's table in `pub mod shop_ledger`. SQLite's
//! print-schema of `tests/migrations/shop/sqlite` (without the attached ledger)
//! prints the same tables with diesel's other names for the same types: `Integer`,
//! `SmallInt` and `BigInt` for `Int4`, `Int2` and `Int8`.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use diesel::{Insertable, Queryable, Selectable};

#[allow(missing_docs)]
pub mod schema;

pub use schema::shop_ledger::entry;
pub use schema::{
    order, shop_customer, shop_event, shop_job, shop_line, shop_note, shop_product, shop_tag,
    shop_transfer, shop_warehouse,
};

/// The shop's migrations for both backends.
pub const MIGRATIONS: orm::Migrations = orm::Migrations {
    sqlite: &diesel_migrations::embed_migrations!("migrations/shop/sqlite"),
    postgres: &diesel_migrations::embed_migrations!("migrations/shop/postgres"),
};

/// The schema of the ledger table (a PostgreSQL schema; on SQLite an attached database).
pub const LEDGER_SCHEMA: &str = "shop_ledger";

/// A warehouse, keyed by a `SMALLINT` code.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_warehouse, treat_none_as_default_value = false)]
pub struct Warehouse {
    /// The key (`i16`).
    pub code: i16,
    /// Where it is.
    pub city: String,
}

/// A product, keyed by its text SKU; its `name` field is the `title` column.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_product, treat_none_as_default_value = false)]
pub struct Product {
    /// The key (text).
    pub sku: String,
    /// The `title` column.
    #[diesel(column_name = title)]
    pub name: String,
    /// The price.
    pub price_cents: i64,
    /// The warehouse holding it (an `i16` foreign key).
    pub warehouse_code: i16,
}

/// A customer, keyed by a `SERIAL` (`i32`); `type_` is the keyword column `"type"`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_customer, treat_none_as_default_value = false)]
pub struct Customer {
    /// The key (`i32`).
    pub id: i32,
    /// The name.
    pub name: String,
    /// The column `"type"`.
    pub type_: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// Last change.
    pub updated: NaiveDateTime,
}

/// An order: the table `"order"`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = order, treat_none_as_default_value = false)]
pub struct Order {
    /// The key (`i32`).
    pub id: i32,
    /// Who placed it.
    pub customer_id: i32,
    /// When.
    pub placed_at: NaiveDateTime,
    /// Soft-deleted.
    pub deleted: bool,
}

/// An order line: an `i32` key to its order, a text key to its product.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_line, treat_none_as_default_value = false)]
pub struct Line {
    /// The key (`i32`).
    pub id: i32,
    /// The order.
    pub order_id: i32,
    /// The product (a text foreign key).
    pub product_sku: String,
    /// How many.
    pub quantity: i32,
}

/// A ledger entry, in the schema-qualified table `shop_ledger.entry`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = entry, treat_none_as_default_value = false)]
pub struct Entry {
    /// The key (`i64`).
    pub id: i64,
    /// The customer (no database constraint across schemas).
    pub customer_id: i32,
    /// The amount.
    pub amount_cents: i64,
    /// The keyword column `"desc"`.
    pub desc: String,
}

/// An event: the column types beyond the shared set.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_event, treat_none_as_default_value = false)]
pub struct Event {
    /// The key (`uuid`).
    pub id: uuid::Uuid,
    /// Whose.
    pub customer_id: i32,
    /// The event it follows (a nullable `uuid` key to its own table).
    pub follows_id: Option<uuid::Uuid>,
    /// When (`timestamptz`).
    pub happened_at: DateTime<Utc>,
    /// Its day.
    pub day: NaiveDate,
    /// Its time of day.
    pub at_time: NaiveTime,
    /// A JSON document (`jsonb`).
    pub payload: serde_json::Value,
    /// An exact decimal (`numeric(12, 2)`).
    pub amount: BigDecimal,
    /// Created (`timestamptz`, set by every insert).
    pub created: DateTime<Utc>,
    /// Last change (`timestamptz`, set by every write).
    pub updated: DateTime<Utc>,
}

/// An amount in cents: a type of the application's own, a `BigInt` column, and a
/// keyset cursor column through `From<Cents> for CursorValue`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::BigInt)]
pub struct Cents(pub i64);

impl<DB> diesel::deserialize::FromSql<diesel::sql_types::BigInt, DB> for Cents
where
    DB: diesel::backend::Backend,
    i64: diesel::deserialize::FromSql<diesel::sql_types::BigInt, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        i64::from_sql(value).map(Cents)
    }
}

impl<DB> diesel::serialize::ToSql<diesel::sql_types::BigInt, DB> for Cents
where
    DB: diesel::backend::Backend,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        self.0.to_sql(out)
    }
}

// Its cursor value is an integer, which Rust orders as SQL does.
impl orm::SqlOrder for Cents {
    const EXACT: bool = true;
}

impl From<Cents> for orm::paginate::CursorValue {
    fn from(cents: Cents) -> Self {
        orm::paginate::CursorValue::Int(cents.0)
    }
}

/// A transfer between two customers: two foreign keys to one table.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_transfer, treat_none_as_default_value = false)]
pub struct Transfer {
    /// The key (`i32`).
    pub id: i32,
    /// Who pays.
    pub from_customer_id: i32,
    /// Who is paid.
    pub to_customer_id: i32,
    /// How much (a type of the application's own).
    pub amount_cents: Cents,
}

/// A tag: a unique name, a counter and soft delete (the writes' tests).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = shop_tag)]
pub struct Tag {
    /// The key (`i32`, assigned by the database).
    pub id: i32,
    /// Unique, soft-deleted rows included.
    pub name: String,
    /// A counter.
    pub uses: i32,
    /// Soft delete.
    pub deleted: bool,
    /// Set on insert.
    pub created: NaiveDateTime,
    /// Set on every write.
    pub updated: NaiveDateTime,
}

/// A new tag: the database assigns its key, each insert its timestamps.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = shop_tag, treat_none_as_default_value = false)]
pub struct NewTag {
    /// Its name.
    pub name: String,
    /// Its counter.
    pub uses: i32,
}

/// A job of a queue: `state` is `ready` until a worker takes it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_job, treat_none_as_default_value = false)]
pub struct Job {
    /// The key.
    pub id: i32,
    /// `ready`, `taken`.
    pub state: String,
    /// Who took it.
    pub worker: Option<String>,
}

/// A customer's mood: the PostgreSQL enum `shop_mood`, as `print-schema` declares
/// its SQL type (`schema::sql_types::ShopMood`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = schema::sql_types::ShopMood)]
pub enum Mood {
    /// `calm`.
    Calm,
    /// `glad`.
    Glad,
    /// `cross`.
    Cross,
}

impl diesel::serialize::ToSql<schema::sql_types::ShopMood, diesel::pg::Pg> for Mood {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write as _;
        out.write_all(match self {
            Mood::Calm => b"calm",
            Mood::Glad => b"glad",
            Mood::Cross => b"cross",
        })?;
        Ok(diesel::serialize::IsNull::No)
    }
}

impl diesel::deserialize::FromSql<schema::sql_types::ShopMood, diesel::pg::Pg> for Mood {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        match value.as_bytes() {
            b"calm" => Ok(Mood::Calm),
            b"glad" => Ok(Mood::Glad),
            b"cross" => Ok(Mood::Cross),
            other => Err(format!("not a shop_mood: {}", String::from_utf8_lossy(other)).into()),
        }
    }
}

// The enum is PostgreSQL's only: rows holding it load on PostgreSQL.
impl orm::types::SqliteRead for schema::sql_types::ShopMood {
    type Read = orm::types::NotOnSqlite;
    type AsSqlite = Self;
}

/// A note on a customer: an enum and an array, so PostgreSQL-only.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = shop_note, treat_none_as_default_value = false)]
pub struct Note {
    /// The key (`i32`).
    pub id: i32,
    /// About whom.
    pub customer_id: i32,
    /// The enum.
    pub mood: Mood,
    /// The array (`text[]`, whose elements may be NULL).
    pub tags: Vec<Option<String>>,
    /// The text.
    pub body: String,
}

orm::model! {
    Note => shop_note {
        primary_key: id,
        ordering: shop_note::id.asc(),
    }
}

orm::model! {
    Transfer => shop_transfer {
        primary_key: id,
        ordering: shop_transfer::id.asc(),
        cursor_columns: (amount_cents),
    }
}

/// A new event without timestamp fields: each insert adds `created` and `updated`.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = shop_event, treat_none_as_default_value = false)]
pub struct NewEvent {
    /// The key.
    pub id: uuid::Uuid,
    /// Whose.
    pub customer_id: i32,
    /// The event it follows.
    pub follows_id: Option<uuid::Uuid>,
    /// When.
    pub happened_at: DateTime<Utc>,
    /// Its day.
    pub day: NaiveDate,
    /// Its time of day.
    pub at_time: NaiveTime,
    /// A JSON document.
    pub payload: serde_json::Value,
    /// An exact decimal.
    pub amount: BigDecimal,
}

orm::model! {
    Warehouse => shop_warehouse {
        primary_key: code,
        ordering: shop_warehouse::code.asc(),
    }
}

orm::model! {
    Product => shop_product {
        primary_key: sku,
        ordering: shop_product::sku.asc(),
        cursor_columns: (title as name, price_cents),
    }
}

orm::model! {
    Customer => shop_customer {
        primary_key: id,
        ordering: (shop_customer::updated.desc(), shop_customer::id.desc()),
        soft_delete: deleted,
        cursor_columns: (updated, type_),
    }
}

orm::model! {
    Order => order {
        primary_key: id,
        ordering: (order::placed_at.desc(), order::id.desc()),
        soft_delete: deleted,
        cursor_columns: (placed_at),
    }
}

orm::model! {
    Line => shop_line {
        primary_key: id,
        ordering: shop_line::id.asc(),
    }
}

orm::model! {
    Entry => entry {
        primary_key: id,
        ordering: (entry::amount_cents.desc(), entry::id.desc()),
        cursor_columns: (amount_cents, desc),
    }
}

orm::model! {
    Event => shop_event {
        primary_key: id,
        ordering: (shop_event::happened_at.desc(), shop_event::id.desc()),
        timestamps: (created, updated),
        cursor_columns: (happened_at, day, at_time, amount),
    }
}

orm::model! {
    Tag => shop_tag {
        primary_key: id,
        ordering: shop_tag::id.asc(),
        soft_delete: deleted,
        timestamps: (created, updated),
    }
}

orm::model! {
    Job => shop_job {
        primary_key: id,
        ordering: shop_job::id.asc(),
    }
}

orm::relation! {
    Event.customer -> Customer (shop_event::customer_id), reverse Customer.events;
    Note.customer -> Customer (shop_note::customer_id), reverse Customer.notes;
    Transfer.from_customer -> Customer (shop_transfer::from_customer_id), reverse Customer.transfers_sent;
    Transfer.to_customer -> Customer (shop_transfer::to_customer_id), reverse Customer.transfers_received;
    Event.follows -> Option<Event> (shop_event::follows_id), reverse Event.followers;
    Product.warehouse -> Warehouse (shop_product::warehouse_code), reverse Warehouse.products;
    Order.customer -> Customer (order::customer_id), reverse Customer.orders;
    Line.order -> Order (shop_line::order_id), reverse Order.lines;
    Line.product -> Product (shop_line::product_sku), reverse Product.lines;
    Entry.customer -> Customer (entry::customer_id), reverse Customer.entries;
}

orm::insertable! { NewTag => Tag, add_timestamps }
orm::insertable! { Job => Job }
orm::insertable! { Warehouse => Warehouse }
orm::insertable! { Product => Product }
orm::insertable! { Customer => Customer }
orm::insertable! { Order => Order }
orm::insertable! { Line => Line }
orm::insertable! { Entry => Entry }
orm::insertable! { Transfer => Transfer }
orm::insertable! { Note => Note, backend: postgres }
orm::insertable! { Event => Event, timestamps: (created, updated) }
orm::insertable! { NewEvent => Event, add_timestamps }

/// A timestamp `minutes` after 2024-01-01 00:00.
fn at(minutes: i64) -> NaiveDateTime {
    crate::at(minutes)
}

/// The fixture, inserted through `bulk_create` (so its keys come back typed):
/// 2 warehouses (codes 7 and -3), 4 products (SKUs "a-1", "b\"2", "c 3", "d-4"),
/// 4 customers (ids 1-4, customer 4 deleted), 5 orders (order 5 deleted), 8 lines,
/// 6 ledger entries.
pub fn seed(conn: &mut orm::AnyConnection) -> orm::Result<()> {
    use orm::Model as _;
    Warehouse::objects().bulk_create(
        conn,
        vec![
            Warehouse {
                code: 7,
                city: "Lyon".into(),
            },
            Warehouse {
                code: -3,
                city: "Oslo".into(),
            },
        ],
    )?;
    let product = |sku: &str, name: &str, price_cents, warehouse_code| Product {
        sku: sku.into(),
        name: name.into(),
        price_cents,
        warehouse_code,
    };
    Product::objects().bulk_create(
        conn,
        vec![
            product("a-1", "Anvil", 500, 7),
            product("b\"2", "Bell", 120, 7),
            product("c 3", "Candle", 120, -3),
            product("d-4", "Drum", 900, -3),
        ],
    )?;
    let customer = |id, name: &str, type_: &str, deleted, minutes| Customer {
        id,
        name: name.into(),
        type_: type_.into(),
        deleted,
        updated: at(minutes),
    };
    Customer::objects().bulk_create(
        conn,
        vec![
            customer(1, "Ada", "retail", false, 10),
            customer(2, "Bo", "wholesale", false, 20),
            customer(3, "Cy", "retail", false, 20),
            customer(4, "Di", "retail", true, 40),
        ],
    )?;
    let order = |id, customer_id, minutes, deleted| Order {
        id,
        customer_id,
        placed_at: at(minutes),
        deleted,
    };
    Order::objects().bulk_create(
        conn,
        vec![
            order(1, 1, 1, false),
            order(2, 1, 2, false),
            order(3, 2, 3, false),
            order(4, 3, 4, false),
            order(5, 2, 5, true),
        ],
    )?;
    let line = |id, order_id, sku: &str, quantity| Line {
        id,
        order_id,
        product_sku: sku.into(),
        quantity,
    };
    Line::objects().bulk_create(
        conn,
        vec![
            line(1, 1, "a-1", 1),
            line(2, 1, "b\"2", 2),
            line(3, 2, "a-1", 3),
            line(4, 3, "c 3", 1),
            line(5, 3, "d-4", 1),
            line(6, 4, "b\"2", 5),
            line(7, 4, "a-1", 1),
            line(8, 5, "d-4", 2),
        ],
    )?;
    let entry = |id, customer_id, amount_cents, desc: &str| Entry {
        id,
        customer_id,
        amount_cents,
        desc: desc.into(),
    };
    Entry::objects().bulk_create(
        conn,
        vec![
            entry(1, 1, 500, "anvil"),
            entry(2, 1, 240, "bells"),
            entry(3, 2, 1020, "candle, drum"),
            entry(4, 3, 620, "bells, anvil"),
            entry(5, 2, 240, "refund"),
            entry(6, 3, 240, "bells"),
        ],
    )?;
    Ok(())
}
