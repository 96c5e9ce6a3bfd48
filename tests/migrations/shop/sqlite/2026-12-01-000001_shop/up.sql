-- The shop: a schema unlike the demo's. Keys of four types (SMALLINT, INTEGER,
-- TEXT, BIGINT), a table named by an SQL keyword ("order"), keyword columns ("type",
-- "desc"), and a table in another schema: on SQLite the database the harness
-- attaches as shop_ledger.
CREATE TABLE shop_warehouse (
    code SMALLINT PRIMARY KEY NOT NULL,
    city TEXT NOT NULL
);

CREATE TABLE shop_product (
    sku TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    warehouse_code SMALLINT NOT NULL REFERENCES shop_warehouse (code)
);

CREATE TABLE shop_customer (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    "type" TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false,
    updated TIMESTAMP NOT NULL
);

CREATE TABLE "order" (
    id INTEGER PRIMARY KEY NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    placed_at TIMESTAMP NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX order_customer_id ON "order" (customer_id);

CREATE TABLE shop_line (
    id INTEGER PRIMARY KEY NOT NULL,
    order_id INTEGER NOT NULL REFERENCES "order" (id),
    product_sku TEXT NOT NULL REFERENCES shop_product (sku),
    quantity INTEGER NOT NULL
);

CREATE TABLE shop_ledger.entry (
    id BIGINT PRIMARY KEY NOT NULL,
    customer_id INTEGER NOT NULL,
    amount_cents BIGINT NOT NULL,
    "desc" TEXT NOT NULL
);
