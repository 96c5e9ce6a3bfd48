//! Page links: a page number, or the caller's base URL with the page parameter set.

use serde::Serialize;

/// Where a page's `next` / `previous` points: a page number, or a URL when the
/// paginator was given a base URL ([`Paginator::links`](super::Paginator::links)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PageLink {
    /// The page number.
    Number(u64),
    /// The full URL.
    Url(String),
}

/// `base` with its query parameter `param` set to `value`, or removed for `None`;
/// other parameters and any `#fragment` are kept.
pub(crate) fn with_query_param(base: &str, param: &str, value: Option<&str>) -> String {
    let (rest, fragment) = match base.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (base, None),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, val) in form_urlencoded::parse(query.as_bytes()) {
        if key != param {
            serializer.append_pair(&key, &val);
        }
    }
    if let Some(value) = value {
        serializer.append_pair(param, value);
    }
    let query = serializer.finish();
    let mut url = path.to_owned();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::with_query_param;

    #[test]
    fn the_page_parameter_is_replaced_and_others_kept() {
        assert_eq!(
            with_query_param("https://x.test/m?page=2&q=a+b#top", "page", Some("3")),
            "https://x.test/m?q=a+b&page=3#top"
        );
        assert_eq!(with_query_param("/m?page=2", "page", None), "/m");
        assert_eq!(
            with_query_param("/m", "cursor", Some("a=b")),
            "/m?cursor=a%3Db"
        );
    }
}
