//! Person, Thread and Message: soft delete, timestamps, default ordering `-updated`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::schema::{weave_message, weave_person, weave_thread};

/// A person who sends messages.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = weave_person)]
pub struct Person {
    /// Primary key.
    pub id: i64,
    /// When the row was created (UTC).
    pub created: NaiveDateTime,
    /// When the row was last written (UTC).
    pub updated: NaiveDateTime,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Unique e-mail address.
    pub email_address: String,
}

impl Person {
    /// "First Last", as the talk's `full_name`.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = weave_thread)]
pub struct Thread {
    /// Primary key.
    pub id: i64,
    /// When the row was created (UTC).
    pub created: NaiveDateTime,
    /// When the row was last written (UTC).
    pub updated: NaiveDateTime,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Title, at most 64 characters.
    pub title: String,
}

/// A message in a thread.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Associations, Serialize)]
#[diesel(table_name = weave_message)]
#[diesel(belongs_to(Person, foreign_key = sent_by_id))]
#[diesel(belongs_to(Thread))]
pub struct Message {
    /// Primary key.
    pub id: i64,
    /// When the row was created (UTC).
    pub created: NaiveDateTime,
    /// When the row was last written (UTC).
    pub updated: NaiveDateTime,
    /// Soft-delete mark.
    pub deleted: bool,
    /// The message body.
    pub text: String,
    /// The sender.
    pub sent_by_id: i64,
    /// The thread.
    pub thread_id: i64,
}

orm::model! {
    Person => weave_person {
        primary_key: id,
        ordering: (weave_person::updated.desc(), weave_person::id.desc()),
        soft_delete: deleted,
        timestamps: (created, updated),
        cursor_columns: (created, updated),
    }
}

orm::model! {
    Thread => weave_thread {
        primary_key: id,
        ordering: (weave_thread::updated.desc(), weave_thread::id.desc()),
        soft_delete: deleted,
        timestamps: (created, updated),
        cursor_columns: (created, updated),
    }
}

orm::model! {
    Message => weave_message {
        primary_key: id,
        ordering: (weave_message::updated.desc(), weave_message::id.desc()),
        soft_delete: deleted,
        timestamps: (created, updated),
        cursor_columns: (created, updated, text, sent_by_id, thread_id),
    }
}

/// A new person (the ORM's write paths set `created` and `updated`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = weave_person, treat_none_as_default_value = false)]
pub struct NewPerson {
    /// When the row was created (UTC).
    pub created: NaiveDateTime,
    /// When the row was last written (UTC).
    pub updated: NaiveDateTime,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Unique e-mail address.
    pub email_address: String,
}

/// A new thread.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = weave_thread, treat_none_as_default_value = false)]
pub struct NewThread {
    /// When the row was created (UTC).
    pub created: NaiveDateTime,
    /// When the row was last written (UTC).
    pub updated: NaiveDateTime,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Title.
    pub title: String,
}

/// A new message.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = weave_message, treat_none_as_default_value = false)]
pub struct NewMessage {
    /// When the row was created (UTC).
    pub created: NaiveDateTime,
    /// When the row was last written (UTC).
    pub updated: NaiveDateTime,
    /// Soft-delete mark.
    pub deleted: bool,
    /// The message body.
    pub text: String,
    /// The sender.
    pub sent_by_id: i64,
    /// The thread.
    pub thread_id: i64,
}

// `create`/`bulk_create` set `created` and `updated` to now, unless told to keep
// them (`BulkCreate::keep_timestamps`, for seeds with history).
orm::insertable! { NewPerson => Person, timestamps: (created, updated) }
orm::insertable! { NewThread => Thread, timestamps: (created, updated) }
orm::insertable! { NewMessage => Message, timestamps: (created, updated) }

orm::relation! {
    Message.sent_by -> Person (weave_message::sent_by_id), reverse Person.messages;
    Message.thread -> Thread (weave_message::thread_id), reverse Thread.messages;
}
