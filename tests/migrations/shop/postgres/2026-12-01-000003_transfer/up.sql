-- Two foreign keys to one table: a transfer from one customer to another.
CREATE TABLE shop_transfer (
    id SERIAL PRIMARY KEY,
    from_customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    to_customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    amount_cents BIGINT NOT NULL
);
CREATE INDEX shop_transfer_from_customer_id ON shop_transfer (from_customer_id);
CREATE INDEX shop_transfer_to_customer_id ON shop_transfer (to_customer_id);
