-- Types only PostgreSQL has: an enum and an array. SQLite has no such table: the
-- model is PostgreSQL-only.
CREATE TYPE shop_mood AS ENUM ('calm', 'glad', 'cross');
CREATE TABLE shop_note (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    mood shop_mood NOT NULL,
    tags TEXT[] NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX shop_note_customer_id ON shop_note (customer_id);
