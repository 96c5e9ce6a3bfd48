-- The shop: a schema unlike the demo's. Keys of four types (SMALLINT, SERIAL,
-- TEXT, BIGSERIAL), a table named by an SQL keyword ("order"), keyword columns
-- ("type", "desc"), and a table in another schema (shop_ledger.entry).
CREATE TABLE shop_warehouse (
    code SMALLINT PRIMARY KEY,
    city TEXT NOT NULL
);

CREATE TABLE shop_product (
    sku TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    warehouse_code SMALLINT NOT NULL REFERENCES shop_warehouse (code)
);

CREATE TABLE shop_customer (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    "type" TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false,
    updated TIMESTAMP NOT NULL
);

CREATE TABLE "order" (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    placed_at TIMESTAMP NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX order_customer_id ON "order" (customer_id);

CREATE TABLE shop_line (
    id SERIAL PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES "order" (id),
    product_sku TEXT NOT NULL REFERENCES shop_product (sku),
    quantity INTEGER NOT NULL
);

-- One schema the test databases share (each test runs in a schema of its own,
-- which diesel's `table!` cannot name): created once, under a lock, by whichever
-- test migrates first. The harness holds another lock while a test uses it.
SELECT pg_advisory_xact_lock(7235001);
CREATE SCHEMA IF NOT EXISTS shop_ledger;
CREATE TABLE IF NOT EXISTS shop_ledger.entry (
    id BIGSERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    amount_cents BIGINT NOT NULL,
    "desc" TEXT NOT NULL
);
