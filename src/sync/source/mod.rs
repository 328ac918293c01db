//! Where employees come from: an HR export file ([`csv`]) or an HR REST API (`rest`).
//!
//! A source yields [`SourceRecord`]s: flat maps from *column name* to the cell's text, exactly as
//! the HR system wrote it. Sources do not interpret values; that is the job of `mapping`. What a
//! source does own is the integrity of the read:
//! - a record it cannot read (wrong number of cells, undecodable bytes) becomes a [`RecordError`]
//!   naming its [`Location`], and the read goes on;
//! - a read it cannot complete (file missing, a required column absent, a page that fails after
//!   its retries, cut-off JSON, a CSV file that ends mid-row) is a [`SourceError`] and fails the
//!   run before anything is planned. A partial read must never look like "these people left".

pub mod csv;
pub mod rest;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use serde::Serialize;

/// Where a record sits in the source, for error messages an HR administrator can act on.
///
/// Ordered so that errors can be listed in file order (lines before API items).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A line number in a file, 1-based, counting the header as line 1. For a record with quoted
    /// newlines this is the line the record starts on.
    Line { line: u64 },
    /// The `index`-th record (0-based) of the `page`-th page (1-based) of an API.
    Item { page: u32, index: usize },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { line } => write!(f, "line {line}"),
            Location::Item { page, index } => write!(f, "page {page}, record {}", index + 1),
        }
    }
}

/// One employee as the source wrote it: column name → cell text (untrimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub location: Location,
    pub fields: HashMap<String, String>,
}

impl SourceRecord {
    /// The cell of `column`, trimmed; `None` when the column is absent or the cell is blank.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.fields
            .get(column)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }
}

/// A record that was skipped, and why. Journaled, counted, and shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    pub location: Location,
    /// The employee number, when it could be read. A rejected record whose ref is known holds that
    /// person still: they are neither changed nor archived this run.
    pub employee_ref: Option<String>,
    /// The column (or API field) at fault, if one is.
    pub field: Option<String>,
    pub reason: String,
    /// The row's *boundaries* cannot be trusted (the wrong number of cells): a stray quote or
    /// line break merges or splits rows, so other people may be hidden inside this one. Such a
    /// run trusts nobody's absence (see the archive guard in `plan`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub structural: bool,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(employee_ref) = &self.employee_ref {
            write!(f, " (employee {employee_ref})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Everything one read produced.
#[derive(Debug, Clone, Default)]
pub struct SourceData {
    pub records: Vec<SourceRecord>,
    pub rejected: Vec<RecordError>,
    /// A digest of the raw bytes read (hex SHA-256), so the journal can tell whether two runs saw
    /// the same export.
    pub fingerprint: String,
}

/// Why a read failed as a whole. Nothing is planned or sent after one of these.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the export {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the export has no header row; is the file empty?")]
    NoHeader,
    #[error("the export lacks required column(s) {}: check the column names in [mapping] against the file's header ({})", .missing.join(", "), .found.join(", "))]
    MissingColumns {
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("the export has more than one column named {}: rename or remove the extra one so the mapping knows which to read", .columns.join(", "))]
    DuplicateColumns { columns: Vec<String> },
    #[error(
        "the export is cut off at line {line}: {detail}. Nothing was planned or sent: copy the complete export again (after the HR system has finished writing it) and rerun"
    )]
    CutOff { line: u64, detail: String },
    #[error("the export cannot be decoded as {encoding}: {detail}")]
    Encoding { encoding: String, detail: String },
    #[error("the HR API failed on page {page}: {detail}")]
    Page { page: u32, detail: String },
    #[error("the source is misconfigured: {0}")]
    Config(String),
}

/// A place employees can be read from. Implemented by [`csv::CsvSource`] and the REST source.
pub trait Source: Send + Sync {
    /// Reads every record. `required` lists the columns the mapping needs; a source whose schema
    /// is known up front (a CSV header) fails fast when one is missing.
    fn read(
        &self,
        required: &[String],
    ) -> impl Future<Output = Result<SourceData, SourceError>> + Send;

    /// A short description for logs and the journal, e.g. `csv:/data/export.csv`. No secrets.
    fn describe(&self) -> String;
}
