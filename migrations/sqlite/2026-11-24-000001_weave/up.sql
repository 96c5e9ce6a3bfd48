-- The talk's "threads" app. Timestamps are UTC text with microseconds
-- ('YYYY-MM-DD HH:MM:SS.ffffff'), which is what diesel writes for chrono values.
CREATE TABLE weave_person (
    id INTEGER PRIMARY KEY,
    created TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted BOOLEAN NOT NULL DEFAULT false,
    first_name VARCHAR(64) NOT NULL,
    last_name VARCHAR(64) NOT NULL,
    email_address VARCHAR(254) NOT NULL UNIQUE
);
CREATE INDEX weave_person_deleted ON weave_person (deleted);

CREATE TABLE weave_thread (
    id INTEGER PRIMARY KEY,
    created TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted BOOLEAN NOT NULL DEFAULT false,
    title VARCHAR(64) NOT NULL
);
CREATE INDEX weave_thread_deleted ON weave_thread (deleted);

CREATE TABLE weave_message (
    id INTEGER PRIMARY KEY,
    created TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted BOOLEAN NOT NULL DEFAULT false,
    text TEXT NOT NULL,
    sent_by_id BIGINT NOT NULL REFERENCES weave_person (id) ON DELETE RESTRICT,
    thread_id BIGINT NOT NULL REFERENCES weave_thread (id) ON DELETE RESTRICT
);
CREATE INDEX weave_message_deleted ON weave_message (deleted);
CREATE INDEX weave_message_sent_by_id ON weave_message (sent_by_id);
CREATE INDEX weave_message_thread_id ON weave_message (thread_id);
-- The talk's partial index: counting live messages reads only live entries.
CREATE INDEX soft_deletes_ignore ON weave_message (deleted) WHERE deleted = false;
