//! A run and an operation as the journal holds them, decoded with `sqlx::FromRow`.
//!
//! [`Run`] is the one shape of a journaled run: the CLI's `journal` commands, `/v1/runs/latest`
//! and the tests all read it. Its counts ([`RunCounts`]) are also what the engine's report
//! carries, so the numbers a run reports and the numbers it journals are one value.

use serde::Serialize;
use sqlx::sqlite::{Sqlite, SqliteTypeInfo, SqliteValueRef};

use crate::domain::{RunStatus, Trigger};

/// What a run read, planned and did, counted. Written to the journal as the run goes (see
/// `Journal::planned`) and when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RunCounts {
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub ops_planned: u64,
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub ops_skipped: u64,
}

/// A run as the journal holds it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub trigger: Trigger,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub source: Option<String>,
    pub source_fingerprint: Option<String>,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub counts: RunCounts,
    /// The plan's counts by kind of operation, as JSON.
    pub plan_summary: Option<JsonText>,
    pub error_summary: Option<String>,
}

/// An operation as the journal holds it. Its kind and status stay text: the journal keeps 400
/// days, and rows written by an older version (a kind since renamed) must still read back.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OperationRow {
    pub id: i64,
    pub run_id: String,
    pub employee_ref: Option<String>,
    pub kind: String,
    pub target: Option<String>,
    pub changes: JsonText,
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: String,
}

/// A text column holding JSON, read as JSON; text that is not JSON (a hand edit, an old row)
/// reads as a JSON string rather than failing the whole query.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct JsonText(pub serde_json::Value);

impl std::ops::Deref for JsonText {
    type Target = serde_json::Value;

    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl sqlx::Type<Sqlite> for JsonText {
    fn type_info() -> SqliteTypeInfo {
        <String as sqlx::Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as sqlx::Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Sqlite> for JsonText {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<Sqlite>>::decode(value)?;
        Ok(Self(
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }
}
