// Shared by the doc examples: the demo's schema on an in-memory SQLite database with
// a few rows. Included with `include!("../doctest_setup.rs")` (path from the file).
#[allow(unused_imports)]
use diesel::connection::SimpleConnection as _;

diesel::table! {
    weave_person (id) {
        id -> BigInt,
        created -> Timestamp,
        updated -> Timestamp,
        deleted -> Bool,
        first_name -> Text,
        last_name -> Text,
        email_address -> Text,
    }
}

diesel::table! {
    weave_thread (id) {
        id -> BigInt,
        created -> Timestamp,
        updated -> Timestamp,
        deleted -> Bool,
        title -> Text,
    }
}

diesel::table! {
    weave_message (id) {
        id -> BigInt,
        created -> Timestamp,
        updated -> Timestamp,
        deleted -> Bool,
        text -> Text,
        sent_by_id -> BigInt,
        thread_id -> BigInt,
    }
}

#[allow(dead_code)]
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = weave_person)]
struct Person {
    id: i64,
    created: chrono::NaiveDateTime,
    updated: chrono::NaiveDateTime,
    deleted: bool,
    first_name: String,
    last_name: String,
    email_address: String,
}

#[allow(dead_code)]
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = weave_thread)]
struct Thread {
    id: i64,
    created: chrono::NaiveDateTime,
    updated: chrono::NaiveDateTime,
    deleted: bool,
    title: String,
}

#[allow(dead_code)]
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = weave_message)]
struct Message {
    id: i64,
    created: chrono::NaiveDateTime,
    updated: chrono::NaiveDateTime,
    deleted: bool,
    text: String,
    sent_by_id: i64,
    thread_id: i64,
}

orm::model! { Person => weave_person { primary_key: id, ordering: (weave_person::updated.desc(), weave_person::id.desc()), soft_delete: deleted, timestamps: (created, updated) } }
orm::model! { Thread => weave_thread { primary_key: id, ordering: (weave_thread::updated.desc(), weave_thread::id.desc()), soft_delete: deleted, timestamps: (created, updated) } }
orm::model! { Message => weave_message { primary_key: id, ordering: (weave_message::updated.desc(), weave_message::id.desc()), soft_delete: deleted, timestamps: (created, updated), cursor_columns: (created, updated, text, sent_by_id, thread_id) } }

#[allow(dead_code)]
fn setup() -> (orm::Database, orm::PooledConnection) {
    let db = orm::Database::open(":memory:").expect("open");
    let mut conn = db.get().expect("connection");
    conn.batch_execute(
        "CREATE TABLE weave_person (id INTEGER PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, first_name TEXT NOT NULL, last_name TEXT NOT NULL, email_address TEXT NOT NULL UNIQUE);
         CREATE TABLE weave_thread (id INTEGER PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, title TEXT NOT NULL);
         CREATE TABLE weave_message (id INTEGER PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, text TEXT NOT NULL, sent_by_id BIGINT NOT NULL REFERENCES weave_person (id), thread_id BIGINT NOT NULL REFERENCES weave_thread (id));
         INSERT INTO weave_person VALUES (1, '2024-01-01 00:00:00', '2024-01-01 00:00:00', false, 'Ada', 'Lovelace', 'ada@example.org'),
                                         (2, '2024-01-02 00:00:00', '2024-01-02 00:00:00', false, 'Alan', 'Turing', 'alan@example.org');
         INSERT INTO weave_thread VALUES (1, '2024-01-01 00:00:00', '2024-01-01 00:00:00', false, 'Engines'),
                                         (2, '2024-01-02 00:00:00', '2024-01-02 00:00:00', false, 'Machines');
         INSERT INTO weave_message VALUES (1, '2024-01-01 00:00:00', '2024-01-01 00:00:00', false, 'What is an engine?', 1, 1),
                                          (2, '2024-01-01 00:01:00', '2024-01-01 00:01:00', false, 'A machine.', 2, 1),
                                          (3, '2024-01-02 00:00:00', '2024-01-02 00:00:00', false, 'What can machines think?', 2, 2),
                                          (4, '2024-01-02 00:01:00', '2024-01-02 00:01:00', true, 'deleted', 1, 2);",
    )
    .expect("schema");
    (db, conn)
}

diesel::joinable!(weave_message -> weave_person (sent_by_id));
diesel::joinable!(weave_message -> weave_thread (thread_id));
diesel::allow_tables_to_appear_in_same_query!(weave_person, weave_thread, weave_message);

orm::relation! {
    Message.sent_by -> Person (weave_message::sent_by_id), reverse Person.messages;
    Message.thread -> Thread (weave_message::thread_id), reverse Thread.messages;
}
