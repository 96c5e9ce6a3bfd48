//! Which relation a call site loads lazily, so an N+1 report can name the fix.
//!
//! Lazy accessors ([`ForeignKey::get`](super::ForeignKey::get),
//! [`Reverse::all_for`](super::Reverse::all_for)) note their caller's location with the
//! fix (`select_related `Message::sent_by``); the detector looks the location of a
//! repeated query up here. One entry per distinct call site in the program, so the map
//! stays as small as the source.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::{Mutex, OnceLock};

type Site = (&'static str, u32, u32);

fn fixes() -> &'static Mutex<HashMap<Site, String>> {
    static FIXES: OnceLock<Mutex<HashMap<Site, String>>> = OnceLock::new();
    FIXES.get_or_init(Default::default)
}

fn key(site: &'static Location<'static>) -> Site {
    (site.file(), site.line(), site.column())
}

/// Remembers that `site` loads a relation lazily; `fix` runs once per site.
pub(crate) fn note_fix(site: &'static Location<'static>, fix: impl FnOnce() -> String) {
    let mut map = fixes().lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key(site)).or_insert_with(fix);
}

/// The fix for the lazy relation loaded at `site`, if one is known.
pub(crate) fn fix_at(site: &'static Location<'static>) -> Option<String> {
    let map = fixes().lock().unwrap_or_else(|e| e.into_inner());
    map.get(&key(site)).cloned()
}
