//! JSON in the shapes of the talk's Django REST framework serializers.
//!
//! * a message: `id, sender, created, updated, deleted, text, sent_by, thread`, where
//!   `sender` is the sender's full name (`ReadOnlyField(source="sent_by.full_name")`);
//! * a thread: `id, messages, created, updated, deleted, title` (messages nested);
//! * a person: `id, created, updated, deleted, first_name, last_name, email_address`;
//! * a page: `{count, next, previous, results}`;
//! * datetimes as DRF renders them: UTC, six fractional digits (none when the
//!   microseconds are zero), `Z`.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Serialize, Serializer};

use crate::models::{Message, Person, Thread};

/// Serialises `value` as JSON bytes: the bodies of the API and of the benchmarks.
///
/// Written by sonic-rs, whose SIMD string escaping takes a threads page (2.8 MB, mostly
/// message text) in about a third of serde_json's time (2.4 vs 6.6 ms measured); the
/// output is the same JSON.
///
/// # Errors
/// When a `Serialize` implementation fails.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, sonic_rs::Error> {
    sonic_rs::to_vec(value)
}

/// A UTC timestamp rendered like DRF's `DateTimeField`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drf(pub NaiveDateTime);

impl Serialize for Drf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 27];
        match drf_bytes(self.0, &mut buf) {
            // Only ASCII digits and separators are written.
            Some(text) => s.serialize_str(std::str::from_utf8(text).unwrap_or_default()),
            None if self.0.nanosecond() / 1_000 == 0 => {
                s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%SZ"))
            }
            None => s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
        }
    }
}

/// Writes `t` as DRF does into `buf` (digits by hand: a page of 10,000 messages has
/// 20,000 timestamps, and chrono's `format` parses its pattern for each); `None` for a
/// year outside 0..=9999, which takes the general path.
fn drf_bytes(t: NaiveDateTime, buf: &mut [u8; 27]) -> Option<&[u8]> {
    fn put(buf: &mut [u8], at: usize, width: usize, mut value: u32) {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    buf[..20].copy_from_slice(b"0000-00-00T00:00:00Z");
    put(buf, 0, 4, year);
    put(buf, 5, 2, t.month());
    put(buf, 8, 2, t.day());
    put(buf, 11, 2, t.hour());
    put(buf, 14, 2, t.minute());
    put(buf, 17, 2, t.second());
    // A leap second's nanoseconds run past 1e9; DRF shows them as the microseconds.
    let micros = (t.nanosecond() / 1_000) % 1_000_000;
    if micros == 0 {
        return Some(&buf[..20]);
    }
    buf[19] = b'.';
    put(buf, 20, 6, micros);
    buf[26] = b'Z';
    Some(&buf[..27])
}

/// A person's full name as a JSON string, written straight into the output (no `String`
/// per message).
#[derive(Debug, Clone, Copy)]
pub struct FullName<'a>(pub &'a Person);

impl Serialize for FullName<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{} {}", self.0.first_name, self.0.last_name))
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
    pub sender: FullName<'a>,
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
    pub fn new(m: &'a Message, sender: &'a Person) -> Self {
        MessageJson {
            id: m.id,
            sender: FullName(sender),
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
    use crate::models::{Message, Person, Thread};
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

    #[test]
    fn hand_written_digits_match_chrono() {
        let start = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date");
        let mut t = start;
        for step in 0..20_000i64 {
            t += chrono::TimeDelta::seconds(step * 1_571 + 1)
                + chrono::TimeDelta::microseconds(step % 3 * 12_345 * step);
            let expected = if t.nanosecond() / 1_000 == 0 {
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            };
            assert_eq!(
                serde_json::to_string(&Drf(t)).ok(),
                Some(format!("\"{expected}\"")),
                "{t:?}"
            );
        }
        let far = NaiveDate::from_ymd_opt(12_345, 6, 7)
            .and_then(|d| d.and_hms_micro_opt(1, 2, 3, 4))
            .expect("valid date");
        assert_eq!(
            serde_json::to_string(&Drf(far)).ok().as_deref(),
            Some("\"+12345-06-07T01:02:03.000004Z\"")
        );
        let far_whole = NaiveDate::from_ymd_opt(12_345, 6, 7)
            .and_then(|d| d.and_hms_opt(1, 2, 3))
            .expect("valid date");
        assert_eq!(
            serde_json::to_string(&Drf(far_whole)).ok().as_deref(),
            Some("\"+12345-06-07T01:02:03Z\"")
        );
    }

    #[test]
    fn to_vec_writes_what_serde_json_writes() {
        let at = NaiveDate::from_ymd_opt(2024, 3, 1)
            .and_then(|d| d.and_hms_micro_opt(12, 0, 5, 7))
            .expect("valid date");
        let person = Person {
            id: 7,
            created: at,
            updated: at,
            deleted: false,
            first_name: "Zoë \"Z\"".into(),
            last_name: "O'Brien\\".into(),
            email_address: "z@example.com".into(),
        };
        let thread = Thread {
            id: 3,
            created: at,
            updated: at,
            deleted: true,
            title: "tab\there, line\nbreak, bell \u{7}, emoji \u{1F600}, \u{2028}".into(),
        };
        let messages: Vec<(Message, Person)> = (0..3)
            .map(|i| {
                let message = Message {
                    id: i,
                    created: at,
                    updated: at,
                    deleted: i == 1,
                    text: format!("<b>{i}</b> \u{0} \u{1f} \\ \" / \u{7f} \u{e9}"),
                    sent_by_id: person.id,
                    thread_id: thread.id,
                };
                (message, person.clone())
            })
            .collect();
        let results = [ThreadJson::new(&thread, &messages)];
        let page = PageJson {
            count: 1,
            next: Some("http://testserver/threads/?page=2"),
            previous: None,
            results: &results[..],
        };
        let ours = to_vec(&page).expect("serialises");
        assert_eq!(ours, serde_json::to_vec(&page).expect("serialises"));
        let value: serde_json::Value = serde_json::from_slice(&ours).expect("valid JSON");
        assert_eq!(value["results"][0]["title"], thread.title.as_str());
        assert_eq!(
            value["results"][0]["messages"][2]["sender"],
            "Zoë \"Z\" O'Brien\\"
        );
    }
}
