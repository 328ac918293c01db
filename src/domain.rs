//! The words of the pipeline, parsed once at the edge.
//!
//! An [`EmployeeRef`] is the HR employee number, which is also Pluvo's `ref` for the user. It is a
//! string, never a number: leading zeros matter. [`Email`]s are trimmed and lower-cased so that a
//! change of case in the HR system is not mistaken for a new address. [`GroupRef`] and
//! [`CategoryRef`] name things an administrator created in Pluvo; the sync never invents them.
//! They are interned: a tenant has tens of them, but every person holds a few, so each distinct
//! ref is stored once and shared (see `intern`).
//!
//! Everything past `source` and `mapping` works with these types, so an invalid value cannot reach
//! the plan or the API.

pub mod collections;
pub mod run;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use collections::{VecMap, VecSet};
pub use run::{OpKind, OpStatus, RunStatus, Trigger};

/// Why a raw value was not accepted. The message is shown to an HR administrator next to the row
/// and field, so it says what is wrong with the value rather than how it was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// `as_str`, `Display` and `AsRef<str>` for a newtype over some kind of string.
macro_rules! str_access {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        str_access!($name);
    };
}

/// The HR employee number; Pluvo's `ref`.
///
/// Shared rather than copied on `clone`: each person's number is a map key and a field on both
/// sides of the diff, and is cloned again into the plan. Not interned, unlike group refs: there
/// is one per employee, and a long-running daemon would keep every number it ever saw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmployeeRef(Arc<str>);

str_access!(EmployeeRef);

impl Serialize for EmployeeRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmployeeRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|value| Self(Arc::from(value)))
    }
}

string_newtype!(
    /// A normalised (trimmed, lower-case) e-mail address.
    Email
);

/// Like `string_newtype`, but the text is [interned](intern): equal refs share one allocation.
/// Serialised as a plain string, exactly like the `String` newtypes.
macro_rules! interned_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        str_access!($name);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(Interned).map(Self)
            }
        }
    };
}

interned_newtype!(
    /// The `ref` of a Pluvo group.
    GroupRef
);
interned_newtype!(
    /// The `ref` of a Pluvo extra category (custom field).
    CategoryRef
);
interned_newtype!(
    /// The `ref` of a Pluvo training ("learning journey") a rule assigns people to.
    TrainingRef
);
interned_newtype!(
    /// The `ref` of a Pluvo offer event (a dated moment of an offer) a rule enrols people in.
    OfferEventRef
);

/// The one shared copy of `value`. Group and category refs are configuration-sized (the groups
/// and custom fields an administrator made in Pluvo) but every person holds a few: without this,
/// 100k people in both the mapped source and the snapshot carried 400k small heap strings, four
/// of which spelled `all-employees`. Entries live as long as the process, which is fine for
/// something that size.
fn intern(value: &str) -> Arc<str> {
    static INTERNED: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Mutex::default);
    // The set is only ever inserted into, so a panic elsewhere cannot leave it inconsistent.
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(shared) = interned.get(value) {
        return Arc::clone(shared);
    }
    let shared: Arc<str> = Arc::from(value);
    interned.insert(Arc::clone(&shared));
    shared
}

/// Deserialises a string straight into its interned copy, without an intermediate `String`.
struct Interned;

impl serde::de::Visitor<'_> for Interned {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(intern(value))
    }
}

/// Refs are identifiers that end up in URLs, logs and SQL: no control characters, no surrounding
/// white space, and a sane length.
fn parse_identifier<'a>(raw: &'a str, what: &str) -> Result<&'a str, InvalidValue> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(InvalidValue(format!("{what} is empty")));
    }
    if value.len() > 255 {
        return Err(InvalidValue(format!(
            "{what} is longer than 255 characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidValue(format!("{what} contains a control character")));
    }
    Ok(value)
}

impl EmployeeRef {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_identifier(raw, "employee number").map(|value| Self(Arc::from(value)))
    }
}

impl GroupRef {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_identifier(raw, "group ref").map(|value| Self(intern(value)))
    }
}

impl CategoryRef {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_identifier(raw, "category ref").map(|value| Self(intern(value)))
    }
}

impl TrainingRef {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_identifier(raw, "training ref").map(|value| Self(intern(value)))
    }
}

impl OfferEventRef {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_identifier(raw, "offer event ref").map(|value| Self(intern(value)))
    }
}

/// A person's role in one training (Pluvo's `TrainingRole`), held independently per training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrainingRole {
    Participant,
    Trainer,
    Mentor,
}

impl TrainingRole {
    pub const ALL: [TrainingRole; 3] = [
        TrainingRole::Participant,
        TrainingRole::Trainer,
        TrainingRole::Mentor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrainingRole::Participant => "PARTICIPANT",
            TrainingRole::Trainer => "TRAINER",
            TrainingRole::Mentor => "MENTOR",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_name(&Self::ALL, Self::as_str, raw, "training role")
    }
}

impl fmt::Display for TrainingRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Email {
    /// Accepts what mail systems accept in practice: one `@`, a non-empty local part, a domain with
    /// a dot and no empty labels, no white space. Deliberately not RFC 5322 in full: HR exports
    /// contain typos, not quoted local parts.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        let bad = |why: &str| {
            Err(InvalidValue(format!(
                "'{value}' is not a valid e-mail address: {why}"
            )))
        };
        if value.is_empty() {
            return Err(InvalidValue("e-mail address is empty".to_owned()));
        }
        if value.len() > 254 {
            return bad("longer than 254 characters");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("contains white space");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return bad("no '@'");
        };
        if domain.contains('@') {
            return bad("more than one '@'");
        }
        if local.is_empty() {
            return bad("nothing before the '@'");
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return bad("the domain needs a dot and no empty parts");
        }
        Ok(Self(value.to_lowercase()))
    }
}

/// A person's groups: a handful each, so a sorted `Vec` rather than a B-tree (see [`collections`]).
pub type Groups = VecSet<GroupRef>;

/// A person's roles, in Pluvo's order.
pub type Roles = VecSet<Role>;

/// Pluvo's `Role` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Participant,
    Trainer,
    Manager,
    Planner,
    Author,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Participant,
        Role::Trainer,
        Role::Manager,
        Role::Planner,
        Role::Author,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "PARTICIPANT",
            Role::Trainer => "TRAINER",
            Role::Manager => "MANAGER",
            Role::Planner => "PLANNER",
            Role::Author => "AUTHOR",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_name(&Self::ALL, Self::as_str, raw, "Pluvo role")
    }
}

/// The variant of `all` whose name is `raw`, in any case; the error lists the names.
fn parse_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    raw: &str,
    what: &str,
) -> Result<T, InvalidValue> {
    let wanted = raw.trim();
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            let names: Vec<_> = all.iter().map(|v| name(*v)).collect();
            InvalidValue(format!("'{wanted}' is not a {what} ({})", names.join(", ")))
        })
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pluvo's `Language` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Language {
    Nl,
    En,
    De,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Nl => "NL",
            Language::En => "EN",
            Language::De => "DE",
        }
    }

    /// HR systems write languages as codes, locales or names, in Dutch or English.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let lower = raw.trim().to_lowercase();
        let code = lower.split(['_', '-']).next().unwrap_or_default();
        match code {
            "nl" | "nld" | "dut" | "dutch" | "nederlands" => Ok(Language::Nl),
            "en" | "eng" | "english" | "engels" => Ok(Language::En),
            "de" | "deu" | "ger" | "german" | "duits" | "deutsch" => Ok(Language::De),
            _ => Err(InvalidValue(format!(
                "'{}' is not a language Pluvo supports (NL, EN, DE)",
                raw.trim()
            ))),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of one custom field ("extra category"), typed as the category is in Pluvo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum CategoryValue {
    String(String),
    /// The option's text, as Pluvo's `choiceValues: [{stringValue}]` names it.
    Choice(String),
    Boolean(bool),
    Date(NaiveDate),
}

/// A person's custom fields by category: a handful each, so a sorted `Vec` rather than a B-tree
/// (see [`collections`]).
pub type Categories = VecMap<CategoryRef, CategoryValue>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn employee_refs_keep_leading_zeros_and_lose_padding() {
        assert_eq!(
            EmployeeRef::parse(" 000123 ").map(|r| r.to_string()),
            Ok("000123".to_owned())
        );
        assert!(EmployeeRef::parse("   ").is_err());
        let read: EmployeeRef = serde_json::from_str(r#""007""#).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), r#""007""#);
        assert!(EmployeeRef::parse("12\u{0}3").is_err());
    }

    #[test]
    fn equal_group_and_category_refs_share_one_copy_and_serialise_as_strings() {
        let parsed = GroupRef::parse(" all-employees ").unwrap();
        let read: GroupRef = serde_json::from_str(r#""all-employees""#).unwrap();
        assert!(Arc::ptr_eq(&parsed.0, &read.0));
        assert_eq!(serde_json::to_string(&read).unwrap(), r#""all-employees""#);
        let category: CategoryRef = serde_json::from_str(r#""dep\u0061rtment""#).unwrap();
        assert_eq!(category, CategoryRef::parse("department").unwrap());
        assert!(serde_json::from_str::<GroupRef>("42").is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        let cases = [
            (
                "plain",
                " Ann.Smit@Example.COM ",
                Some("ann.smit@example.com"),
            ),
            ("no at", "ann.example.com", None),
            ("two ats", "a@b@example.com", None),
            ("no dot in domain", "ann@example", None),
            ("empty label", "ann@example..com", None),
            ("space inside", "ann smit@example.com", None),
            ("empty", "", None),
            ("empty local part", "@example.com", None),
        ];
        for (name, raw, expected) in cases {
            let got = Email::parse(raw).ok().map(|e| e.0);
            assert_eq!(got.as_deref(), expected, "case {name}");
        }
    }

    #[test]
    fn languages_accept_codes_locales_and_names() {
        let cases = [
            ("code", "nl", Some(Language::Nl)),
            ("locale", "en_GB", Some(Language::En)),
            ("dutch name", "Duits", Some(Language::De)),
            ("unknown", "fr", None),
        ];
        for (name, raw, expected) in cases {
            assert_eq!(Language::parse(raw).ok(), expected, "case {name}");
        }
    }
}
