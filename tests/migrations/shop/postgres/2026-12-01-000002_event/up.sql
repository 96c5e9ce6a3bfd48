-- Column types beyond the shared set: a uuid key and a nullable uuid key to its
-- own table, points in time with a time zone (the bookkeeping columns too), a
-- date, a time of day, a JSON document and an exact decimal.
CREATE TABLE shop_event (
    id UUID PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES shop_customer (id),
    follows_id UUID REFERENCES shop_event (id),
    happened_at TIMESTAMPTZ NOT NULL,
    "day" DATE NOT NULL,
    at_time TIME NOT NULL,
    payload JSONB NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    updated TIMESTAMPTZ NOT NULL
);
CREATE INDEX shop_event_customer_id ON shop_event (customer_id);
CREATE INDEX shop_event_follows_id ON shop_event (follows_id);
CREATE INDEX shop_event_ordering ON shop_event (happened_at DESC, id DESC);
