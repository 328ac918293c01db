//! The RFC 8288 `Link` header, read for its `rel="next"` target.
//!
//! A header holds comma-separated links, `<uri>; param=value; …`, and a response may carry several
//! `Link` headers. Commas also occur inside `<…>` and quoted values, so the header is scanned
//! rather than split. A `rel` value is a space-separated list of relation types, compared without
//! regard to case; only the first `rel` of a link counts (RFC 8288, section 3.3).

/// The target of the first link whose relation types include `next`, as written (possibly
/// relative). Malformed links are skipped, never fatal: a header we cannot read simply has no next.
pub fn next_target<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<String> {
    headers
        .into_iter()
        .flat_map(parse)
        .find(|link| link.rels.iter().any(|rel| rel == "next"))
        .map(|link| link.target)
}

/// One link of a `Link` header.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    target: String,
    /// Lower-cased relation types.
    rels: Vec<String>,
}

fn parse(header: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return links;
        }
        let Some(after_open) = rest.strip_prefix('<') else {
            rest = skip_link(rest);
            continue;
        };
        let Some(close) = after_open.find('>') else {
            return links;
        };
        let target = after_open[..close].trim().to_owned();
        rest = &after_open[close + 1..];
        let mut rels: Option<Vec<String>> = None;
        while let Some(after_semicolon) = rest.trim_start().strip_prefix(';') {
            let (name, value, after) = param(after_semicolon);
            rest = after;
            if name.eq_ignore_ascii_case("rel") && rels.is_none() {
                rels = Some(
                    value
                        .split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect(),
                );
            }
        }
        // Anything but a comma or the end here is garbage after the link; drop the rest of it.
        rest = rest.trim_start();
        if !rest.is_empty() && !rest.starts_with(',') {
            rest = skip_link(rest);
        }
        links.push(Link {
            target,
            rels: rels.unwrap_or_default(),
        });
    }
}

/// Reads `name[=value]` up to the next `;` or `,` outside quotes; returns name, unescaped value
/// and what follows.
fn param(input: &str) -> (&str, String, &str) {
    let end_of_name = input.find(['=', ';', ',']).unwrap_or(input.len());
    let name = input[..end_of_name].trim();
    let rest = &input[end_of_name..];
    let Some(after_equals) = rest.strip_prefix('=') else {
        return (name, String::new(), rest);
    };
    let value_start = after_equals.trim_start();
    if let Some(quoted) = value_start.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (name, value, &quoted[at + 1..]),
                c => value.push(c),
            }
        }
        // An unterminated quote runs to the end of the header.
        (name, value, "")
    } else {
        let end = value_start.find([';', ',']).unwrap_or(value_start.len());
        (
            name,
            value_start[..end].trim().to_owned(),
            &value_start[end..],
        )
    }
}

/// Skips to the comma that ends the current link, honouring quotes.
fn skip_link(input: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (at, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => return &input[at..],
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_target_cases() {
        let cases: [(&str, &[&str], Option<&str>); 12] = [
            (
                "quoted rel",
                &[r#"<https://hr.example/p2>; rel="next""#],
                Some("https://hr.example/p2"),
            ),
            ("bare rel", &["</p2>; rel=next"], Some("/p2")),
            (
                "several links, next not first",
                &[
                    r#"<https://hr.example/p1>; rel="prev", <https://hr.example/p3>; rel="next", <https://hr.example/p9>; rel="last""#,
                ],
                Some("https://hr.example/p3"),
            ),
            ("rel list", &[r#"</p2>; rel="last next""#], Some("/p2")),
            ("case-insensitive", &[r#"</p2>; REL="Next""#], Some("/p2")),
            (
                "comma inside the uri and a quoted title",
                &[r#"</p?ids=1,2>; title="a, b; c"; rel="next""#],
                Some("/p?ids=1,2"),
            ),
            (
                "escaped quote in a title",
                &[r#"</p2>; title="say \"hi\", then"; rel="next""#],
                Some("/p2"),
            ),
            (
                "only the first rel counts",
                &[r#"</p2>; rel="prev"; rel="next""#],
                None,
            ),
            ("no next", &[r#"</p1>; rel="prev""#], None),
            (
                "next in the second header",
                &[r#"</p1>; rel="prev""#, r#"</p3>; rel="next""#],
                Some("/p3"),
            ),
            (
                "garbage then a good link",
                &[r#"nonsense; rel="next", </p2>; rel="next""#],
                Some("/p2"),
            ),
            ("unterminated uri", &[r#"</p2; rel="next""#], None),
        ];
        for (name, headers, expected) in cases {
            assert_eq!(
                next_target(headers.iter().copied()).as_deref(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_rel_that_merely_contains_next_does_not_count() {
        assert_eq!(next_target([r#"</p2>; rel="nextish""#]), None);
        assert_eq!(
            next_target([r#"</p2>; rel="https://example.com/next""#]),
            None
        );
    }
}
