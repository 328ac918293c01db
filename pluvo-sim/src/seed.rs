//! The tenant a simulator starts with.
//!
//! Pluvo tenants are never empty: admins define groups and extra categories (the API cannot
//! create either), a tenant that adopts a sync usually already has people, some without a
//! `ref`, and trainings and offer events with people in them. A [`Seed`] describes that starting point in TOML (see `config/sim-seed.toml`); the
//! same shape, as JSON, is what `POST /_sim/users` takes to add people later.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a seed could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("seed is not valid TOML for a Pluvo tenant: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("invalid seed: {0}")]
    Invalid(String),
}

/// Groups, extra categories and users present before any API call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub groups: Vec<SeedGroup>,
    #[serde(default)]
    pub categories: Vec<SeedCategory>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub trainings: Vec<SeedTraining>,
    #[serde(default)]
    pub offer_events: Vec<SeedOfferEvent>,
    /// Progress of participants, for `portfolioReport`.
    #[serde(default)]
    pub progress: Vec<SeedProgress>,
    #[serde(default)]
    pub certificates: Vec<SeedCertificate>,
}

/// A training an admin created. People are named by ref, or by email for people without one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTraining {
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub title: String,
    /// `isActive`; a retired training is inactive.
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub archived: bool,
    /// Refs of linked groups: their members reach the training as participants "via object".
    #[serde(default)]
    pub groups: Vec<String>,
    /// Direct roles, by user ref (or email).
    #[serde(default)]
    pub participants: Vec<String>,
    #[serde(default)]
    pub trainers: Vec<String>,
    #[serde(default)]
    pub mentors: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A dated moment of an offer that people enroll in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOfferEvent {
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub title: String,
    /// Seats; people enrolled past it are `WAITLISTED`. No limit when absent.
    #[serde(default)]
    pub max_subscriptions: Option<u32>,
    /// Ref of the training the event belongs to: enrolled people reach it "via object".
    #[serde(default)]
    pub training: Option<String>,
    /// People already enrolled, by user ref (or email), in order.
    #[serde(default)]
    pub enrolled: Vec<String>,
}

/// Someone's progress in a training (also the body of `POST /_sim/progress`, as a JSON array).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProgress {
    /// Training ref.
    pub training: String,
    /// User ref (or email).
    pub user: String,
    /// 0 to 100.
    pub progress: f64,
    #[serde(default)]
    pub score: Option<f64>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub completion_date: Option<String>,
    #[serde(default)]
    pub time_spent_seconds: Option<u64>,
}

/// A certificate awarded to someone (also the body of `POST /_sim/certificates`, as an array).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCertificate {
    /// User ref (or email).
    pub user: String,
    pub title: String,
    /// `YYYY-MM-DD`.
    pub completion_date: String,
    /// `YYYY-MM-DD`; reported as the row's `endDate`.
    #[serde(default)]
    pub expiry_date: Option<String>,
    #[serde(default)]
    pub score: Option<f64>,
}

/// A group an admin created; memberships are set on [`SeedUser::groups`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGroup {
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub name: String,
}

/// The value types an extra category can have (Pluvo's `categoryType` strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CategoryType {
    String,
    Choice,
    Boolean,
    Datetime,
}

impl CategoryType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::Choice => "CHOICE",
            Self::Boolean => "BOOLEAN",
            Self::Datetime => "DATETIME",
        }
    }
}

/// An extra category ("custom field") for users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCategory {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: CategoryType,
    /// Choice option values; only for `CHOICE`.
    #[serde(default)]
    pub options: Vec<String>,
}

/// A person already in the tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Absent for people created by hand before the sync existed.
    #[serde(rename = "ref", default)]
    pub ref_: Option<String>,
    pub email: String,
    pub name: String,
    /// Defaults to `["PARTICIPANT"]`.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub archived: bool,
    /// RFC 3339, for the `lastLogin` filters.
    #[serde(default)]
    pub last_login: Option<String>,
    /// Refs of groups the user is a (visible) participant of.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Refs of groups the user manages.
    #[serde(default)]
    pub manages: Vec<String>,
    /// Category ref to value: a string (STRING, DATETIME, one CHOICE option), a boolean, or an
    /// array of option strings (CHOICE).
    #[serde(default)]
    pub categories: BTreeMap<String, serde_json::Value>,
}

/// Body item of `POST /_sim/last-login`: sets when someone last logged in (`null`: never).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLastLogin {
    /// User ref (or email).
    pub user: String,
    /// RFC 3339 (or a bare date); `null` for someone who never logged in.
    pub last_login: Option<String>,
}

/// Body item of `POST /_sim/enrollments`: changes the status of someone's enrollment, as an
/// admin or the person would in Pluvo's interface (e.g. `CANCELLED`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetEnrollmentStatus {
    /// Offer event ref.
    pub offer_event: String,
    /// User ref (or email).
    pub user: String,
    /// `ENROLLED`, `WAITLISTED`, `CANCELLED` or `DECLINED`.
    pub status: String,
}

impl Seed {
    pub fn from_toml_str(text: &str) -> Result<Self, SeedError> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SeedError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// The example tenant in `config/sim-seed.toml`, compiled in so tests need no paths.
    pub fn example() -> Self {
        // The file is checked in and covered by a test, so a parse failure is a build defect.
        #[allow(clippy::expect_used)]
        Self::from_toml_str(include_str!("../../config/sim-seed.toml"))
            .expect("config/sim-seed.toml is a valid seed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    #[test]
    fn example_seed_loads_and_applies() {
        let seed = Seed::example();
        assert!(
            seed.groups
                .iter()
                .any(|g| g.ref_.as_deref() == Some("mentors"))
        );
        assert!(
            seed.users
                .iter()
                .any(|u| u.ref_.is_none() && u.email == "lotte.devries@example.com")
        );
        let kinds: Vec<_> = seed.categories.iter().map(|c| c.kind).collect();
        for kind in [
            CategoryType::String,
            CategoryType::Choice,
            CategoryType::Boolean,
            CategoryType::Datetime,
        ] {
            assert!(kinds.contains(&kind), "{kind:?} missing from example seed");
        }
        let state = State::from_seed(&seed).expect("example seed applies");
        let linked = state.trainings.iter().find(|t| !t.groups.is_empty());
        assert!(linked.is_some(), "a training linked to a group");
        assert!(
            state
                .offer_events
                .iter()
                .any(|e| e.max_subscriptions.is_some())
        );
        assert!(!state.certificates.is_empty());
    }

    #[test]
    fn bad_seeds_are_rejected_with_a_reason() {
        let cases = [
            (
                "unknown key",
                "[[groups]]\nref = \"a\"\nname = \"A\"\ncolour = \"red\"\n",
            ),
            (
                "bad type",
                "[[categories]]\nref = \"x\"\ntitle = \"X\"\ntype = \"NUMBER\"\n",
            ),
        ];
        for (name, text) in cases {
            assert!(Seed::from_toml_str(text).is_err(), "case {name}");
        }
        let applied = [
            (
                "unknown group",
                "[[users]]\nemail = \"a@example.com\"\nname = \"A\"\ngroups = [\"nope\"]\n",
            ),
            (
                "duplicate email",
                "[[users]]\nemail = \"a@example.com\"\nname = \"A\"\n[[users]]\nemail = \"A@example.com\"\nname = \"B\"\n",
            ),
            (
                "invalid email",
                "[[users]]\nemail = \"not-an-email\"\nname = \"A\"\n",
            ),
            (
                "choice without options",
                "[[categories]]\nref = \"x\"\ntitle = \"X\"\ntype = \"CHOICE\"\n",
            ),
            (
                "training linked to an unknown group",
                "[[trainings]]\nref = \"t\"\ntitle = \"T\"\ngroups = [\"nope\"]\n",
            ),
            (
                "training role for an unknown person",
                "[[trainings]]\nref = \"t\"\ntitle = \"T\"\ntrainers = [\"E404\"]\n",
            ),
            (
                "duplicate training ref",
                "[[trainings]]\nref = \"t\"\ntitle = \"T\"\n[[trainings]]\nref = \"t\"\ntitle = \"U\"\n",
            ),
            (
                "event of an unknown training",
                "[[offer_events]]\nref = \"e\"\ntitle = \"E\"\ntraining = \"nope\"\n",
            ),
            (
                "duplicate event ref",
                "[[offer_events]]\nref = \"e\"\ntitle = \"E\"\n[[offer_events]]\nref = \"e\"\ntitle = \"F\"\n",
            ),
            (
                "unknown person enrolled",
                "[[offer_events]]\nref = \"e\"\ntitle = \"E\"\nenrolled = [\"E404\"]\n",
            ),
            (
                "progress of someone outside the training",
                "[[users]]\nref = \"E1\"\nemail = \"a@example.com\"\nname = \"A\"\n\
                 [[trainings]]\nref = \"t\"\ntitle = \"T\"\n\
                 [[progress]]\ntraining = \"t\"\nuser = \"E1\"\nprogress = 10.0\n",
            ),
            (
                "certificate with a bad date",
                "[[users]]\nref = \"E1\"\nemail = \"a@example.com\"\nname = \"A\"\n\
                 [[certificates]]\nuser = \"E1\"\ntitle = \"C\"\ncompletion_date = \"1 May\"\n",
            ),
        ];
        for (name, text) in applied {
            let seed = Seed::from_toml_str(text).expect(name);
            assert!(State::from_seed(&seed).is_err(), "case {name}");
        }
    }
}
