//! JSON in the shapes of the talk's Django REST framework serializers.
//!
//! * a message: `id, sender, created, updated, deleted, text, sent_by, thread`, where
//!   `sender` is the sender's full name (`ReadOnlyField(source="sent_by.full_name")`);
//! * a thread: `id, messages, created, updated, deleted, title` (messages nested);
//! * a person: `id, created, updated, deleted, first_name, last_name, email_address`;
//! * a page: `{count, next, previous, results}`;
//! * datetimes as DRF renders them: UTC, six fractional digits (none when the
//!   microseconds are zero), `Z`.

use chrono::{NaiveDateTime, Timelike};
use serde::{Serialize, Serializer};

use crate::models::{Message, Person, Thread};

/// A UTC timestamp rendered like DRF's `DateTimeField`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drf(pub NaiveDateTime);

impl Serialize for Drf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = if self.0.nanosecond() / 1_000 == 0 {
            self.0.format("%Y-%m-%dT%H:%M:%SZ")
        } else {
            self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        };
        s.collect_str(&text)
    }
}

/// A person as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PersonJson<'a> {
    /// Primary key.
    pub id: i64,
    /// Created.
    pub created: Drf,
    /// Last written.
    pub updated: Drf,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Given name.
    pub first_name: &'a str,
    /// Family name.
    pub last_name: &'a str,
    /// E-mail address.
    pub email_address: &'a str,
}

impl<'a> From<&'a Person> for PersonJson<'a> {
    fn from(p: &'a Person) -> Self {
        PersonJson {
            id: p.id,
            created: Drf(p.created),
            updated: Drf(p.updated),
            deleted: p.deleted,
            first_name: &p.first_name,
            last_name: &p.last_name,
            email_address: &p.email_address,
        }
    }
}

/// A message with its sender's full name.
#[derive(Debug, Clone, Serialize)]
pub struct MessageJson<'a> {
    /// Primary key.
    pub id: i64,
    /// The sender's full name.
    pub sender: String,
    /// Created.
    pub created: Drf,
    /// Last written.
    pub updated: Drf,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Body.
    pub text: &'a str,
    /// The sender's id.
    pub sent_by: i64,
    /// The thread's id.
    pub thread: i64,
}

impl<'a> MessageJson<'a> {
    /// A message and its sender.
    pub fn new(m: &'a Message, sender: &Person) -> Self {
        MessageJson {
            id: m.id,
            sender: full_name(sender),
            created: Drf(m.created),
            updated: Drf(m.updated),
            deleted: m.deleted,
            text: &m.text,
            sent_by: m.sent_by_id,
            thread: m.thread_id,
        }
    }
}

/// A thread with its messages nested.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadJson<'a> {
    /// Primary key.
    pub id: i64,
    /// The thread's messages.
    pub messages: Vec<MessageJson<'a>>,
    /// Created.
    pub created: Drf,
    /// Last written.
    pub updated: Drf,
    /// Soft-delete mark.
    pub deleted: bool,
    /// Title.
    pub title: &'a str,
}

impl<'a> ThreadJson<'a> {
    /// A thread and its messages with their senders.
    pub fn new(t: &'a Thread, messages: &'a [(Message, Person)]) -> Self {
        Self::with_messages(
            t,
            messages
                .iter()
                .map(|(m, p)| MessageJson::new(m, p))
                .collect(),
        )
    }

    /// A thread and its messages already in their JSON shape.
    pub fn with_messages(t: &'a Thread, messages: Vec<MessageJson<'a>>) -> Self {
        ThreadJson {
            id: t.id,
            messages,
            created: Drf(t.created),
            updated: Drf(t.updated),
            deleted: t.deleted,
            title: &t.title,
        }
    }
}

/// DRF's page: `{count, next, previous, results}`, serialised straight from the rows
/// (no intermediate JSON tree).
#[derive(Debug, Clone, Serialize)]
pub struct PageJson<'a, T> {
    /// Rows in the whole queryset.
    pub count: i64,
    /// Link to the next page.
    pub next: Option<&'a str>,
    /// Link to the previous page.
    pub previous: Option<&'a str>,
    /// This page's rows.
    pub results: &'a [T],
}

/// The talk's `list_some` item: `{"sender": ..., "text": ...}`.
#[derive(Debug, Clone, Serialize)]
pub struct SenderText<'a> {
    /// The sender's full name.
    pub sender: String,
    /// Body.
    pub text: &'a str,
}

/// `Person.full_name` of the talk's model: first and last name.
pub fn full_name(p: &Person) -> String {
    format!("{} {}", p.first_name, p.last_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn datetimes_render_like_drf() {
        let whole = NaiveDate::from_ymd_opt(2024, 3, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 5))
            .expect("valid date");
        let micros = whole + chrono::TimeDelta::microseconds(42);
        assert_eq!(
            serde_json::to_string(&Drf(whole)).ok().as_deref(),
            Some("\"2024-03-01T12:00:05Z\"")
        );
        assert_eq!(
            serde_json::to_string(&Drf(micros)).ok().as_deref(),
            Some("\"2024-03-01T12:00:05.000042Z\"")
        );
    }
}
