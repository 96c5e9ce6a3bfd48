-- The PostgreSQL table's columns as SQLite holds them: uuids and points in time as
-- text (UTC, `YYYY-MM-DD HH:MM:SS.ffffff`), JSON in SQLite's binary JSONB, the
-- decimal as a REAL.
CREATE TABLE shop_event (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    follows_id TEXT REFERENCES shop_event (id),
    happened_at TEXT NOT NULL,
    "day" DATE NOT NULL,
    at_time TIME NOT NULL,
    payload BLOB NOT NULL,
    amount NUMERIC NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX shop_event_customer_id ON shop_event (customer_id);
CREATE INDEX shop_event_follows_id ON shop_event (follows_id);
CREATE INDEX shop_event_ordering ON shop_event (happened_at DESC, id DESC);
