/// Normalises SQL so that the same query with other values has the same text.
///
/// Placeholders (`$1`, `?`), numbers and string literals become `?`, runs of
/// whitespace become one space, and lists such as `IN (?, ?, ?)` become `IN (...)`.
/// Quoted identifiers are kept.
///
/// ```
/// assert_eq!(
///     orm::instrument::fingerprint("SELECT * FROM t WHERE a = $1 AND b IN ($2, $3,\n $4) LIMIT 10"),
///     "SELECT * FROM t WHERE a = ? AND b IN (...) LIMIT ?"
/// );
/// assert_eq!(
///     orm::instrument::fingerprint("SELECT * FROM t WHERE a = ? AND s = 'it''s'"),
///     "SELECT * FROM t WHERE a = ? AND s = ?"
/// );
/// ```
pub fn fingerprint(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let prev_is_word = |out: &String| {
        out.chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if !out.is_empty() && !out.ends_with(' ') && !out.ends_with('(') {
                out.push(' ');
            }
            continue;
        }
        if c == '\'' {
            // String literal with '' escapes.
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
            continue;
        }
        if c == '"' || c == '`' {
            // Quoted identifier: keep as is.
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != c {
                out.push(chars[i]);
                i += 1;
            }
            if i < chars.len() {
                out.push(c);
            }
            i += 1;
            continue;
        }
        if c == '$' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            out.push('?');
            continue;
        }
        if c.is_ascii_digit() && !prev_is_word(&out) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push('?');
            continue;
        }
        if c == ')' && out.ends_with(' ') {
            out.pop();
        }
        out.push(c);
        i += 1;
    }
    collapse_lists(out.trim_end())
}

/// `(?, ?, ?)` -> `(...)`, and `(?)` -> `(...)`, so IN lists of any length match.
fn collapse_lists(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('(') {
        out.push_str(&rest[..=pos]);
        rest = &rest[pos + 1..];
        let end = rest.find(')');
        let list = end.map(|e| &rest[..e]);
        match list {
            Some(l) if !l.is_empty() && l.split(',').all(|item| item.trim() == "?") => {
                out.push_str("...");
                rest = &rest[end.unwrap_or(0)..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn same_query_with_other_values_has_one_fingerprint() {
        let a = fingerprint(r#"SELECT "t"."id" FROM "t" WHERE "t"."x" = $1 LIMIT $2"#);
        let b = fingerprint(r#"SELECT "t"."id" FROM "t" WHERE "t"."x" = $7 LIMIT $8"#);
        assert_eq!(a, b);
        assert_eq!(a, r#"SELECT "t"."id" FROM "t" WHERE "t"."x" = ? LIMIT ?"#);
    }

    #[test]
    fn identifiers_with_digits_are_kept() {
        assert_eq!(fingerprint("SELECT t1.a2 FROM t1"), "SELECT t1.a2 FROM t1");
        assert_eq!(
            fingerprint(r#"SELECT "weave_2"."id" FROM "weave_2""#),
            r#"SELECT "weave_2"."id" FROM "weave_2""#
        );
    }

    #[test]
    fn in_lists_of_any_length_collapse() {
        assert_eq!(fingerprint("x IN (?, ?, ?)"), fingerprint("x IN (?)"),);
        assert_eq!(fingerprint("f(a, b)"), "f(a, b)");
    }
}
