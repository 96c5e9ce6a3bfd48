//! Opaque keyset cursor tokens: the ordering values of one row, signed.
//!
//! A token is URL-safe base64 (no padding) of
//! `version (1 byte) | ordering fingerprint (8) | direction (1) | JSON values | tag (16)`,
//! where the tag is the first 16 bytes of HMAC-SHA256 over everything before it and
//! the fingerprint is the first 8 bytes of SHA-256 of the model name and the ordering
//! (columns and directions). Decoding checks each part and names what is wrong.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ordering::OrderTerm;
pub use crate::value::{CursorError, CursorValue};

/// The layout version written into every token.
const VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Version, fingerprint, direction and tag: a token shorter than this is cut off.
const MIN_LEN: usize = 1 + FINGERPRINT_LEN + 1 + TAG_LEN;

/// The key keyset tokens are signed with (HMAC-SHA256).
///
/// There is no default: a per-process random key would break every token at a
/// restart and between the app servers of one deployment, and a key in the library
/// would let anyone forge tokens. Read it from the application's settings, the same
/// on every server; at least [`CursorSecret::MIN_LEN`] bytes.
///
/// ```
/// use orm::paginate::CursorSecret;
/// let secret = CursorSecret::new("a long secret from the app's settings")?;
/// assert!(format!("{secret:?}").ends_with("(redacted)"));
/// let err = CursorSecret::new("short").unwrap_err();
/// assert_eq!(err.to_string(), "a cursor secret needs at least 16 bytes, got 5");
/// # Ok::<(), orm::Error>(())
/// ```
#[derive(Clone)]
pub struct CursorSecret(std::sync::Arc<[u8]>);

impl CursorSecret {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A secret from `key`.
    ///
    /// # Errors
    /// [`Error::WeakCursorSecret`](crate::Error::WeakCursorSecret) for a key shorter
    /// than [`MIN_LEN`](Self::MIN_LEN).
    pub fn new(key: impl AsRef<[u8]>) -> crate::Result<Self> {
        let key = key.as_ref();
        if key.len() < Self::MIN_LEN {
            return Err(crate::Error::WeakCursorSecret {
                len: key.len(),
                min: Self::MIN_LEN,
            });
        }
        Ok(Self(key.into()))
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for CursorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSecret(redacted)")
    }
}

/// Which side of the cursor row a page lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The rows after it (a "next" link).
    After,
    /// The rows before it (a "previous" link).
    Before,
}

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub(crate) direction: Direction,
    pub(crate) values: Vec<CursorValue>,
}

/// Identifies a model's ordering: a token made for another one is stale.
pub(crate) fn fingerprint(model: &str, terms: &[OrderTerm]) -> [u8; FINGERPRINT_LEN] {
    let mut hash = Sha256::new();
    hash.update(model.as_bytes());
    for term in terms {
        hash.update([0]);
        if let Some(via) = term.via() {
            hash.update(via.as_bytes());
            hash.update(b".");
        }
        hash.update(term.column_name().as_bytes());
        hash.update(if term.is_descending() { b"-" } else { b"+" });
    }
    let digest = hash.finalize();
    let mut out = [0; FINGERPRINT_LEN];
    out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
    out
}

fn tag(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(body);
    mac
}

/// Encodes `cursor` for the ordering `fingerprint`, signed with `secret`.
pub(crate) fn encode(cursor: &Cursor, fingerprint: [u8; FINGERPRINT_LEN], secret: &[u8]) -> String {
    let mut body = Vec::with_capacity(64);
    body.push(VERSION);
    body.extend_from_slice(&fingerprint);
    body.push(match cursor.direction {
        Direction::After => b'>',
        Direction::Before => b'<',
    });
    // Serialising plain enums of numbers, strings and timestamps cannot fail; a
    // non-finite float becomes `null` and then fails to decode as Malformed.
    body.extend(serde_json::to_vec(&cursor.values).unwrap_or_default());
    let mac = tag(secret, &body).finalize().into_bytes();
    body.extend_from_slice(&mac[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(body)
}

/// Decodes and checks a token made by [`encode`] for the ordering `fingerprint`.
pub(crate) fn decode(
    token: &str,
    fingerprint: [u8; FINGERPRINT_LEN],
    secret: &[u8],
) -> Result<Cursor, CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| CursorError::Encoding)?;
    if bytes.len() < MIN_LEN {
        return Err(CursorError::Truncated);
    }
    if bytes[0] != VERSION {
        return Err(CursorError::Version { found: bytes[0] });
    }
    let (body, mac) = bytes.split_at(bytes.len() - TAG_LEN);
    tag(secret, body)
        .verify_truncated_left(mac)
        .map_err(|_| CursorError::Signature)?;
    if body[1..=FINGERPRINT_LEN] != fingerprint {
        return Err(CursorError::Stale);
    }
    let direction = match body[1 + FINGERPRINT_LEN] {
        b'>' => Direction::After,
        b'<' => Direction::Before,
        _ => return Err(CursorError::Malformed),
    };
    let values: Vec<CursorValue> =
        serde_json::from_slice(&body[2 + FINGERPRINT_LEN..]).map_err(|_| CursorError::Malformed)?;
    Ok(Cursor { direction, values })
}

/// Decodes `token` for any ordering, without checking its fingerprint or values:
/// only whether it is well formed and signed. For fuzzing and diagnostics.
///
/// ```
/// use orm::paginate::{check_cursor_token, CursorError, CursorSecret};
/// let secret = CursorSecret::new("from the app's settings")?;
/// assert_eq!(check_cursor_token("not a token!", &secret), Err(CursorError::Encoding));
/// assert_eq!(check_cursor_token("AAAA", &secret), Err(CursorError::Truncated));
/// # Ok::<(), orm::Error>(())
/// ```
///
/// # Errors
/// The [`CursorError`] that makes the token unusable ([`CursorError::Stale`]
/// is never returned).
pub fn check_cursor_token(token: &str, secret: &CursorSecret) -> Result<(), CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| CursorError::Encoding)?;
    if bytes.len() < MIN_LEN {
        return Err(CursorError::Truncated);
    }
    let mut fingerprint = [0; FINGERPRINT_LEN];
    fingerprint.copy_from_slice(&bytes[1..=FINGERPRINT_LEN]);
    decode(token, fingerprint, secret.key()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn cursor() -> Cursor {
        Cursor {
            direction: Direction::Before,
            values: vec![
                CursorValue::from(NaiveDateTime::default()),
                CursorValue::from(Some("x")),
                CursorValue::from(None::<i64>),
                CursorValue::from(7_i64),
            ],
        }
    }

    #[test]
    fn a_token_decodes_to_the_cursor_it_encodes() {
        let token = encode(&cursor(), [1; 8], b"k");
        assert_eq!(decode(&token, [1; 8], b"k"), Ok(cursor()));
    }

    #[test]
    fn another_ordering_secret_or_edit_is_rejected() {
        let token = encode(&cursor(), [1; 8], b"k");
        assert_eq!(decode(&token, [2; 8], b"k"), Err(CursorError::Stale));
        assert_eq!(
            decode(&token, [1; 8], b"other"),
            Err(CursorError::Signature)
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[12] ^= 1;
        let edited = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(decode(&edited, [1; 8], b"k"), Err(CursorError::Signature));
        assert_eq!(
            decode(&token[..8], [1; 8], b"k"),
            Err(CursorError::Truncated)
        );
    }
}
