-- A unique name (get_or_create, update_or_create) and a counter (updates by
-- expression), with soft delete.
CREATE TABLE shop_tag (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    deleted BOOLEAN NOT NULL DEFAULT false,
    created TIMESTAMP NOT NULL,
    updated TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX shop_tag_name ON shop_tag (name);
-- A job queue (select_for_update with skip_locked).
CREATE TABLE shop_job (
    id SERIAL PRIMARY KEY,
    state TEXT NOT NULL,
    worker TEXT
);
