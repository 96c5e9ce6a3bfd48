//! The demo's tables, as diesel sees them (same on both backends): the timestamps
//! are PostgreSQL `timestamptz` columns, text in UTC on SQLite.

diesel::table! {
    /// People who send messages.
    weave_person (id) {
        id -> BigInt,
        created -> Timestamptz,
        updated -> Timestamptz,
        deleted -> Bool,
        first_name -> Text,
        last_name -> Text,
        email_address -> Text,
    }
}

diesel::table! {
    /// Conversations.
    weave_thread (id) {
        id -> BigInt,
        created -> Timestamptz,
        updated -> Timestamptz,
        deleted -> Bool,
        title -> Text,
    }
}

diesel::table! {
    /// Messages: one sender, one thread.
    weave_message (id) {
        id -> BigInt,
        created -> Timestamptz,
        updated -> Timestamptz,
        deleted -> Bool,
        text -> Text,
        sent_by_id -> BigInt,
        thread_id -> BigInt,
    }
}

diesel::joinable!(weave_message -> weave_person (sent_by_id));
diesel::joinable!(weave_message -> weave_thread (thread_id));
diesel::allow_tables_to_appear_in_same_query!(weave_person, weave_thread, weave_message);
