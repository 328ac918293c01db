//! HR export files: CSV as Excel and HR systems really write it.
//!
//! "CSV" from an HR system is rarely RFC 4180. Excel in a Dutch locale writes semicolons, a UTF-8
//! byte-order mark or plain Windows-1252, and CRLF line ends; cells may hold quoted line breaks; a
//! file copied while it was being written stops mid-row. This module turns such a file into
//! [`SourceRecord`]s without guessing at values:
//! - the *delimiter* is detected from the header line (`,` `;` tab `|`, the most frequent outside
//!   quotes wins, ties go to `,`) unless [`CsvSettings::delimiter`] fixes it;
//! - the *encoding* is UTF-8 (with or without BOM) when the bytes are valid UTF-8, otherwise
//!   Windows-1252, unless [`CsvSettings::encoding`] fixes it; a UTF-16 file with a BOM (Excel's
//!   "Unicode text") is read too;
//! - *columns* are found by header name (trimmed, case-insensitive), so their order does not
//!   matter and extra columns are carried along unread;
//! - every cell stays a string, so `000123` stays `000123`.
//!
//! What counts as a bad *record* (skipped, reported with its line, the read goes on): a row with
//! the wrong number of cells, a cell that is not valid in the chosen encoding. A bad record still
//! names its employee number, so that person is held. A row with the wrong number of cells is
//! also *structural*: a stray quote or line break merges or splits rows, so it may hide other
//! people, and the plan then trusts nobody's absence.
//!
//! What fails the whole *read*: an unreadable file, no header, a required column missing or
//! present twice, and a file that is **cut off**: its last row is short (fewer cells than the
//! header, with or without a line ending) or ends inside an open quote. A file copied while it
//! was being written stops mid-row, and everyone after the cut would look like a leaver; a cut
//! of a few percent stays under the archive guard's limit, so the guard cannot be the defence.
//! A cut that falls exactly between two rows leaves no trace in the file; that one is the
//! archive guard's to catch.

#[cfg(test)]
mod tests;
mod text;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Location, RecordError, Source, SourceData, SourceError, SourceRecord};
use crate::domain::EmployeeRef;
use text::{
    CellDecoder, LineCounter, RawRecord, damage, detect_delimiter, ends_inside_quotes, header_name,
    is_blank, prepare,
};

/// `[source.csv]` in the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSettings {
    /// The export to read on every run.
    pub path: PathBuf,
    /// `"auto"` (the default), `","`, `";"`, `"tab"` or `"|"`; any other single punctuation
    /// character is accepted as well.
    #[serde(default)]
    pub delimiter: Option<Delimiter>,
    /// `"auto"` (the default), `"utf-8"` or `"windows-1252"`.
    #[serde(default)]
    pub encoding: Option<TextEncoding>,
}

/// How cells are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Delimiter {
    /// Detect from the header line.
    Auto,
    /// Always this byte.
    Fixed(u8),
}

impl Delimiter {
    /// Detection picks among these; the order breaks ties, so a header that names one column
    /// with no separator at all is read as comma-separated.
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

    pub fn parse(raw: &str) -> Result<Self, String> {
        let fixed = match raw.to_ascii_lowercase().as_str() {
            "auto" | "" => return Ok(Delimiter::Auto),
            "tab" | "\t" | "\\t" => b'\t',
            "comma" => b',',
            "semicolon" => b';',
            "pipe" => b'|',
            _ => match raw.as_bytes() {
                // A quote, a line break or a letter as separator would make the file unreadable
                // rather than differently read, so those are configuration mistakes.
                [byte] if byte.is_ascii_punctuation() && *byte != b'"' => *byte,
                _ => {
                    return Err(format!(
                        "'{raw}' is not a delimiter: use \"auto\", \",\", \";\", \"tab\" or \"|\""
                    ));
                }
            },
        };
        Ok(Delimiter::Fixed(fixed))
    }
}

impl TryFrom<String> for Delimiter {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Delimiter::parse(&raw)
    }
}

/// How the file's bytes become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TextEncoding {
    /// UTF-8 if the whole file is valid UTF-8 (or starts with a UTF-8 BOM), UTF-16 if it starts
    /// with a UTF-16 BOM, Windows-1252 otherwise.
    Auto,
    Utf8,
    Windows1252,
}

impl TextEncoding {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TextEncoding::Auto),
            "utf-8" | "utf8" => Ok(TextEncoding::Utf8),
            "windows-1252" | "cp1252" | "win1252" => Ok(TextEncoding::Windows1252),
            _ => Err(format!(
                "'{raw}' is not an encoding: use \"auto\", \"utf-8\" or \"windows-1252\""
            )),
        }
    }
}

impl TryFrom<String> for TextEncoding {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        TextEncoding::parse(&raw)
    }
}

/// Reads employees from one CSV export file.
#[derive(Debug, Clone)]
pub struct CsvSource {
    settings: CsvSettings,
    ref_column: Option<String>,
}

impl CsvSource {
    pub fn new(settings: CsvSettings) -> Self {
        Self {
            settings,
            ref_column: None,
        }
    }

    /// Names the employee-number column (`MappingRules::ref_column`). A row the source rejects
    /// (say, too few cells) then still carries its employee number when that cell is there, so
    /// the person is held rather than archived for want of a readable row.
    pub fn with_ref_column(mut self, column: impl Into<String>) -> Self {
        self.ref_column = Some(column.into());
        self
    }
}

impl Source for CsvSource {
    async fn read(&self, required: &[String]) -> Result<SourceData, SourceError> {
        let path = self.settings.path.clone();
        let options = ParseOptions {
            delimiter: self.settings.delimiter.unwrap_or(Delimiter::Auto),
            encoding: self.settings.encoding.unwrap_or(TextEncoding::Auto),
            ref_column: self.ref_column.clone(),
        };
        let required = required.to_vec();
        let shown = path.display().to_string();
        // The csv crate reads synchronously and an export can be tens of megabytes: keep it off
        // the async workers so the health endpoint stays responsive during a read.
        let task = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(|source| SourceError::Io {
                path: path.display().to_string(),
                source,
            })?;
            parse_export(&bytes, &options, &required)
        });
        let data = task.await.map_err(|join| SourceError::Io {
            path: shown.clone(),
            source: std::io::Error::other(format!("the CSV reader stopped: {join}")),
        })??;
        tracing::info!(
            path = %shown,
            records = data.records.len(),
            rejected = data.rejected.len(),
            "read the CSV export"
        );
        Ok(data)
    }

    fn describe(&self) -> String {
        format!("csv:{}", self.settings.path.display())
    }
}

/// The resolved reading options; [`CsvSettings`] minus the path.
#[derive(Debug, Clone)]
struct ParseOptions {
    delimiter: Delimiter,
    encoding: TextEncoding,
    ref_column: Option<String>,
}

/// The pure core of [`CsvSource::read`]: raw bytes in, records out.
fn parse_export(
    bytes: &[u8],
    options: &ParseOptions,
    required: &[String],
) -> Result<SourceData, SourceError> {
    let fingerprint = hex::encode(Sha256::digest(bytes));
    let (text, decoder) = prepare(bytes, options.encoding)?;
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(SourceError::NoHeader);
    }
    let delimiter = match options.delimiter {
        Delimiter::Auto => detect_delimiter(&text),
        Delimiter::Fixed(byte) => byte,
    };
    tracing::debug!(
        encoding = decoder.name(),
        delimiter = %char::from(delimiter).escape_default(),
        "reading CSV"
    );

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_ref());
    let read_error = |error: csv::Error| SourceError::Io {
        path: "(export)".to_owned(),
        source: std::io::Error::other(error),
    };

    let mut header = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut header).map_err(read_error)? {
        return Err(SourceError::NoHeader);
    }
    let columns = resolve_columns(&header, decoder, required)?;
    let ref_index = options.ref_column.as_deref().and_then(|wanted| {
        columns.iter().position(|key| {
            key.as_deref()
                .is_some_and(|key| key.eq_ignore_ascii_case(wanted))
        })
    });
    let file_ends_with_newline = text.ends_with(b"\n") || text.ends_with(b"\r");

    let mut lines = LineCounter::default();
    let mut data = SourceData {
        fingerprint,
        ..SourceData::default()
    };
    // One record of look-ahead, so the last record (the one a cut-off file damages) is known.
    let mut current = csv::ByteRecord::new();
    let mut next = csv::ByteRecord::new();
    let mut have = reader.read_byte_record(&mut current).map_err(read_error)?;
    let mut last_damage: Option<(u64, String)> = None;
    while have {
        let more = reader.read_byte_record(&mut next).map_err(read_error)?;
        let start = current
            .position()
            .and_then(|position| usize::try_from(position.byte()).ok())
            .unwrap_or(lines.offset);
        let start = lines.start_of_record(&text, start);
        let line = lines.line_at(&text, start);
        let record = RawRecord {
            cells: &current,
            location: Location::Line { line },
            is_last: !more,
            open_quote_at_end: !more
                && text
                    .get(start..)
                    .is_some_and(|raw| ends_inside_quotes(raw, delimiter)),
            file_ends_with_newline,
        };
        // Only the last row with anything in it can have been cut; a damaged row that
        // complete ones follow is a bad row, not a cut.
        if record.open_quote_at_end || !is_blank(record.cells) {
            last_damage = damage(&record, columns.len()).map(|detail| (line, detail));
        }
        match read_record(&record, &columns, decoder, ref_index) {
            Ok(Some(record)) => data.records.push(record),
            Ok(None) => {}
            Err(error) => data.rejected.push(error),
        }
        std::mem::swap(&mut current, &mut next);
        have = more;
    }
    if let Some((line, detail)) = last_damage {
        return Err(SourceError::CutOff { line, detail });
    }
    Ok(data)
}

/// Maps each header position to the key its cells are stored under: the name as `required`
/// spells it when it is a required column (so the mapping finds it whatever the header's case),
/// the header's own name otherwise, `None` for blank or duplicate unrequired names.
fn resolve_columns(
    header: &csv::ByteRecord,
    decoder: CellDecoder,
    required: &[String],
) -> Result<Vec<Option<String>>, SourceError> {
    let mut keys = Vec::with_capacity(header.len());
    let mut found = Vec::new();
    let mut ambiguous = Vec::new();
    for raw in header {
        let name = decoder
            .decode(raw)
            .map_err(|detail| SourceError::Encoding {
                encoding: decoder.name().to_owned(),
                detail: format!("the header row {detail}"),
            })?;
        let name = header_name(&name).to_owned();
        if name.is_empty() {
            keys.push(None);
            continue;
        }
        let key = required
            .iter()
            .find(|wanted| wanted.trim().eq_ignore_ascii_case(&name))
            .cloned()
            .unwrap_or_else(|| name.clone());
        let seen = keys
            .iter()
            .flatten()
            .any(|earlier: &String| earlier.eq_ignore_ascii_case(&key));
        found.push(name.clone());
        if !seen {
            keys.push(Some(key));
        } else if required
            .iter()
            .any(|wanted| wanted.trim().eq_ignore_ascii_case(&key))
        {
            if !ambiguous.contains(&name) {
                ambiguous.push(name);
            }
            keys.push(None);
        } else {
            // Nothing reads this column, so which copy is kept does not matter; refusing the
            // whole export over it would stop a sync for no reason.
            tracing::warn!(column = %name, "the export has this column twice; only the first is kept");
            keys.push(None);
        }
    }
    if !ambiguous.is_empty() {
        return Err(SourceError::DuplicateColumns { columns: ambiguous });
    }
    let mut missing: Vec<String> = Vec::new();
    for wanted in required {
        let wanted = wanted.trim();
        let present = keys
            .iter()
            .flatten()
            .any(|key| key.eq_ignore_ascii_case(wanted));
        if !present && !missing.iter().any(|m| m.eq_ignore_ascii_case(wanted)) {
            missing.push(wanted.to_owned());
        }
    }
    if !missing.is_empty() {
        return Err(SourceError::MissingColumns { missing, found });
    }
    Ok(keys)
}

/// Turns one row into a record; `Ok(None)` for a row with nothing in it.
fn read_record(
    raw: &RawRecord<'_>,
    columns: &[Option<String>],
    decoder: CellDecoder,
    ref_index: Option<usize>,
) -> Result<Option<SourceRecord>, RecordError> {
    let cells = raw.cells;
    // Excel leaves rows of bare separators below the data; they name no one.
    if is_blank(cells) {
        return Ok(None);
    }
    let reject = |field: Option<String>, reason: String, structural: bool| RecordError {
        location: raw.location.clone(),
        employee_ref: ref_index
            .and_then(|index| cells.get(index))
            .and_then(|cell| decoder.decode(cell).ok())
            .and_then(|cell| EmployeeRef::parse(&cell).ok())
            .map(|employee_ref| employee_ref.as_str().to_owned()),
        field,
        reason,
        structural,
    };
    let expected = columns.len();
    let found = cells.len();
    // Cells beyond the header are tolerated when blank: Excel pads rows with separators.
    let extra_is_blank = found > expected
        && cells
            .iter()
            .skip(expected)
            .all(|cell| cell.iter().all(u8::is_ascii_whitespace));
    if found != expected && !extra_is_blank {
        return Err(reject(
            None,
            format!(
                "wrong number of columns: expected {expected}, found {found}; a stray quote or \
                 line break may have merged or split rows, so no one is archived for being absent \
                 until this row is fixed"
            ),
            true,
        ));
    }
    let mut fields = HashMap::with_capacity(expected);
    for (key, cell) in columns.iter().zip(cells) {
        let Some(key) = key else { continue };
        match decoder.decode(cell) {
            Ok(value) => {
                fields.insert(key.clone(), value);
            }
            Err(reason) => return Err(reject(Some(key.clone()), reason, false)),
        }
    }
    Ok(Some(SourceRecord {
        location: raw.location.clone(),
        fields,
    }))
}
