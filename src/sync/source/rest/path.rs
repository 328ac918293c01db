//! Field paths: where a value sits inside an API's JSON, written `attributes.email.value`.
//!
//! A path is a list of segments separated by dots. A segment names an object key, or, on a list,
//! a 0-based index (`emails.0.address`). The empty path is the value itself. Keys that contain a
//! dot cannot be addressed; no HR API we know of uses them.

use std::fmt;

use serde_json::Value;

/// A parsed, non-malformed field path. Displays as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

/// What a path found in a value.
#[derive(Debug, PartialEq)]
pub enum Lookup<'a> {
    /// A value other than `null`.
    Found(&'a Value),
    /// A key or index that is not there, or `null` on the way or at the end.
    Absent,
    /// The path goes on below a value that has no members, e.g. `email.value` where `email` is a
    /// string. Absent would hide a misconfigured path as a blank cell, so this is its own case.
    Blocked {
        /// The part of the path that was reached.
        at: String,
        /// What stood there, as [`kind`] words it.
        found: &'static str,
    },
}

impl FieldPath {
    /// Parses `text`; `None` when a segment is empty (`a..b`, a leading or trailing dot).
    pub fn parse(text: &str) -> Option<Self> {
        let segments: Vec<String> = if text.is_empty() {
            Vec::new()
        } else {
            text.split('.').map(str::to_owned).collect()
        };
        if segments.iter().any(|segment| segment.trim().is_empty()) {
            return None;
        }
        Some(Self {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Follows the path from `root`.
    pub fn lookup<'a>(&self, root: &'a Value) -> Lookup<'a> {
        let mut current = root;
        for (depth, segment) in self.segments.iter().enumerate() {
            let next = match current {
                Value::Null => return Lookup::Absent,
                Value::Object(members) => members.get(segment),
                // A name on a list is a typo for an index or a list where one value was expected;
                // either way the operator has to look.
                Value::Array(items) => match segment.parse::<usize>() {
                    Ok(index) => items.get(index),
                    Err(_) => return self.blocked(depth, current),
                },
                Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                    return self.blocked(depth, current);
                }
            };
            match next {
                Some(value) => current = value,
                None => return Lookup::Absent,
            }
        }
        match current {
            Value::Null => Lookup::Absent,
            value => Lookup::Found(value),
        }
    }

    fn blocked(&self, depth: usize, found: &Value) -> Lookup<'static> {
        let at = if depth == 0 {
            "the top level".to_owned()
        } else {
            format!("'{}'", self.segments[..depth].join("."))
        };
        Lookup::Blocked {
            at,
            found: kind(found),
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The text a scalar stands for in a source cell: strings as they are, numbers as their JSON text
/// (so `"00123"` keeps its zeros and `123` becomes `123`), booleans as `true`/`false`.
/// Objects and lists have no single text: `Err` with their [`kind`].
pub fn cell_text(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        Value::Array(_) | Value::Object(_) => Err(kind(value)),
    }
}

/// A JSON value's type, worded for an error message.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> FieldPath {
        FieldPath::parse(text).expect("valid path")
    }

    #[test]
    fn malformed_paths_are_refused() {
        for text in ["a..b", ".a", "a.", " ", "a. .b"] {
            assert_eq!(FieldPath::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn lookup_cases() {
        let doc = json!({
            "attributes": {
                "email": {"label": "Email", "value": "a@example.com"},
                "phone": null,
                "id": {"value": 123}
            },
            "emails": [{"address": "first@example.com"}, {"address": "second@example.com"}],
            "name": "Ada"
        });
        let cases: [(&str, &str, Lookup<'_>); 9] = [
            (
                "nested object",
                "attributes.email.value",
                Lookup::Found(&doc["attributes"]["email"]["value"]),
            ),
            (
                "list index",
                "emails.1.address",
                Lookup::Found(&doc["emails"][1]["address"]),
            ),
            ("index past the end", "emails.5.address", Lookup::Absent),
            ("missing key", "attributes.nope.value", Lookup::Absent),
            ("null on the way", "attributes.phone.value", Lookup::Absent),
            ("null at the end", "attributes.phone", Lookup::Absent),
            ("empty path is the root", "", Lookup::Found(&doc)),
            (
                "below a string",
                "name.value",
                Lookup::Blocked {
                    at: "'name'".to_owned(),
                    found: "a string",
                },
            ),
            (
                "a name on a list",
                "emails.address",
                Lookup::Blocked {
                    at: "'emails'".to_owned(),
                    found: "a list",
                },
            ),
        ];
        for (name, text, expected) in cases {
            assert_eq!(path(text).lookup(&doc), expected, "{name}");
        }
    }

    #[test]
    fn blocked_at_the_top_level() {
        assert_eq!(
            path("email").lookup(&json!("just a string")),
            Lookup::Blocked {
                at: "the top level".to_owned(),
                found: "a string"
            }
        );
    }

    #[test]
    fn cell_text_cases() {
        let cases = [
            (
                "string keeps leading zeros",
                json!("00123"),
                Ok(Some("00123".to_owned())),
            ),
            ("integer", json!(123), Ok(Some("123".to_owned()))),
            ("negative", json!(-7), Ok(Some("-7".to_owned()))),
            ("float", json!(1.5), Ok(Some("1.5".to_owned()))),
            ("true", json!(true), Ok(Some("true".to_owned()))),
            ("false", json!(false), Ok(Some("false".to_owned()))),
            ("null", json!(null), Ok(None)),
            ("object", json!({"value": 1}), Err("an object")),
            ("list", json!([1]), Err("a list")),
        ];
        for (name, value, expected) in cases {
            assert_eq!(cell_text(&value), expected, "{name}");
        }
    }
}
