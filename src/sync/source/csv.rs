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

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Location, RecordError, Source, SourceData, SourceError, SourceRecord};
use crate::domain::EmployeeRef;

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

/// How one cell's bytes become text, once the file's encoding is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellDecoder {
    Utf8,
    Windows1252,
}

impl CellDecoder {
    fn decode(self, bytes: &[u8]) -> Result<String, String> {
        match self {
            CellDecoder::Utf8 => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|error| {
                    format!(
                        "is not valid UTF-8 (at byte {} of the cell): save the export as UTF-8, \
                         or set encoding = \"windows-1252\" in [source.csv]",
                        error.valid_up_to()
                    )
                }),
            // Windows-1252 maps every byte to a character, so this cannot fail.
            CellDecoder::Windows1252 => Ok(encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellDecoder::Utf8 => "UTF-8",
            CellDecoder::Windows1252 => "Windows-1252",
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decides the encoding and returns the bytes the CSV parser should see: BOM removed, UTF-16
/// already transcoded to UTF-8.
fn prepare(
    bytes: &[u8],
    encoding: TextEncoding,
) -> Result<(Cow<'_, [u8]>, CellDecoder), SourceError> {
    if encoding == TextEncoding::Auto
        && let Some((utf16, bom)) = encoding_rs::Encoding::for_bom(bytes)
        && utf16 != encoding_rs::UTF_8
    {
        let (text, had_errors) = utf16.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(SourceError::Encoding {
                encoding: utf16.name().to_owned(),
                detail: "the file starts with a UTF-16 byte-order mark but is not valid UTF-16; \
                         export it again as CSV UTF-8"
                    .to_owned(),
            });
        }
        return Ok((
            Cow::Owned(text.into_owned().into_bytes()),
            CellDecoder::Utf8,
        ));
    }
    let (body, had_bom) = match bytes.strip_prefix(UTF8_BOM) {
        Some(body) => (body, true),
        None => (bytes, false),
    };
    let decoder = match encoding {
        TextEncoding::Utf8 => CellDecoder::Utf8,
        TextEncoding::Windows1252 => CellDecoder::Windows1252,
        // A UTF-8 BOM is an explicit statement; invalid bytes after it are then per-cell errors
        // rather than a reason to reinterpret the whole file.
        TextEncoding::Auto if had_bom || std::str::from_utf8(body).is_ok() => CellDecoder::Utf8,
        TextEncoding::Auto => CellDecoder::Windows1252,
    };
    Ok((Cow::Borrowed(body), decoder))
}

/// Picks the candidate that occurs most often in the first line, outside quotes.
fn detect_delimiter(text: &[u8]) -> u8 {
    let mut counts = [0usize; Delimiter::CANDIDATES.len()];
    let mut quoted = false;
    for &byte in text {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(index) = Delimiter::CANDIDATES.iter().position(|&c| c == byte) {
                    counts[index] += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = 0;
    for (index, &count) in counts.iter().enumerate() {
        // Strictly greater: on a tie the earlier candidate (the comma first) stays.
        if count > counts[best] {
            best = index;
        }
    }
    Delimiter::CANDIDATES[best]
}

/// Whether a record that starts at `raw[0]` runs to the end of the input inside an open quote,
/// which is what a file cut off mid-cell looks like. Mirrors how the csv crate reads quotes: a
/// quote opens a quoted cell only at the start of a cell, `""` inside is an escaped quote.
fn ends_inside_quotes(raw: &[u8], delimiter: u8) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        CellStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::CellStart;
    for &byte in raw {
        let line_end = byte == b'\n' || byte == b'\r';
        state = match state {
            State::Quoted if byte == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if byte == b'"' => State::Quoted,
            State::CellStart if byte == b'"' => State::Quoted,
            _ if line_end => return false,
            _ if byte == delimiter => State::CellStart,
            _ => State::Unquoted,
        };
    }
    state == State::Quoted
}

/// Header cells as matched: trimmed, BOM-free; blank names are unaddressable and skipped.
fn header_name(raw: &str) -> &str {
    raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
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

/// Physical line numbers for record starts. The csv crate's own `Position::line` lags by one
/// after CRLF line ends, and Excel writes CRLF, so lines are counted here: `\n`, `\r\n` and a lone
/// `\r` each end one line, including the ones inside quoted cells. Counting resumes where the
/// previous record started, so the whole file is scanned once.
#[derive(Debug, Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    /// The csv crate may report a record as starting on the line break that ended the previous
    /// one; a record never starts with a line break (blank lines are skipped), so skip past it.
    fn start_of_record(&self, text: &[u8], reported: usize) -> usize {
        let mut start = reported.max(self.offset);
        while matches!(text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        start
    }

    /// The 1-based line `start` lies on; `start` must not go backwards between calls.
    fn line_at(&mut self, text: &[u8], start: usize) -> u64 {
        let end = start.min(text.len());
        for index in self.offset..end {
            let byte = text[index];
            let crlf_half = byte == b'\r' && text.get(index + 1) == Some(&b'\n');
            if byte == b'\n' || (byte == b'\r' && !crlf_half) {
                self.line += 1;
            }
        }
        self.offset = self.offset.max(end);
        self.line + 1
    }
}

/// One parsed row and what is known about where it sits.
struct RawRecord<'a> {
    cells: &'a csv::ByteRecord,
    location: Location,
    is_last: bool,
    open_quote_at_end: bool,
    file_ends_with_newline: bool,
}

/// How `raw` is damaged the way an interrupted copy damages the last row of a file: it ends
/// inside a quoted cell, or it has fewer cells than the header (a cut right after a separator,
/// or inside any cell but the last). Said of the last row with anything in it, this means the
/// file is cut off; rows of bare separators, as Excel leaves below the data, are not rows.
fn damage(raw: &RawRecord<'_>, expected: usize) -> Option<String> {
    let found = raw.cells.len();
    let ending = if raw.is_last && !raw.file_ends_with_newline {
        " and no line ending"
    } else {
        ""
    };
    if raw.open_quote_at_end {
        Some(format!(
            "the last row ends inside a quoted cell{ending} (a quote opened and never closed)"
        ))
    } else if found < expected {
        Some(format!(
            "the last row has {found} of the header's {expected} cells{ending}"
        ))
    } else {
        None
    }
}

fn is_blank(cells: &csv::ByteRecord) -> bool {
    cells
        .iter()
        .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ParseOptions {
        ParseOptions {
            delimiter: Delimiter::Auto,
            encoding: TextEncoding::Auto,
            ref_column: Some("employee_number".to_owned()),
        }
    }

    fn required(columns: &[&str]) -> Vec<String> {
        columns.iter().map(|c| (*c).to_owned()).collect()
    }

    fn parse(bytes: &[u8]) -> SourceData {
        parse_with(bytes, &options(), &required(&["employee_number", "email"]))
    }

    fn parse_with(bytes: &[u8], options: &ParseOptions, required: &[String]) -> SourceData {
        match parse_export(bytes, options, required) {
            Ok(data) => data,
            Err(error) => panic!("expected a read, got {error}"),
        }
    }

    /// (line, employee number, email) of a record, for compact expectations.
    type Row = (u64, String, String);

    /// (case, input, line, employee number, reason) of a rejected row.
    type BadRow = (
        &'static str,
        &'static [u8],
        u64,
        Option<&'static str>,
        &'static str,
    );

    fn rows(data: &SourceData) -> Vec<Row> {
        data.records
            .iter()
            .map(|record| {
                let Location::Line { line } = record.location else {
                    panic!("CSV records have lines")
                };
                let cell = |column: &str| record.fields.get(column).cloned().unwrap_or_default();
                (line, cell("employee_number"), cell("email"))
            })
            .collect()
    }

    fn row(line: u64, number: &str, email: &str) -> Row {
        (line, number.to_owned(), email.to_owned())
    }

    fn line_of(error: &RecordError) -> u64 {
        match error.location {
            Location::Line { line } => line,
            Location::Item { .. } => panic!("CSV errors have lines"),
        }
    }

    #[test]
    fn reads_the_shapes_hr_systems_write() {
        let cases: [(&str, &[u8], Vec<Row>); 10] = [
            (
                "comma",
                b"employee_number,email\n001,a@example.com\n002,b@example.com\n",
                vec![row(2, "001", "a@example.com"), row(3, "002", "b@example.com")],
            ),
            (
                "semicolon, CRLF, BOM (Excel)",
                b"\xEF\xBB\xBFemployee_number;email\r\n0042;a@example.com\r\n",
                vec![row(2, "0042", "a@example.com")],
            ),
            (
                "tab",
                b"employee_number\temail\n7\ta@example.com\n",
                vec![row(2, "7", "a@example.com")],
            ),
            (
                "pipe",
                b"employee_number|email\n7|a@example.com",
                vec![row(2, "7", "a@example.com")],
            ),
            (
                "semicolon wins over commas inside quoted header",
                b"\"employee_number\";\"email, work\";email\n1;x;a@example.com\n",
                vec![row(2, "1", "a@example.com")],
            ),
            (
                "header order irrelevant, extra columns and header case ignored",
                b"Department;E-Mail;EMAIL ; Employee_Number \nSales;x;a@example.com;000123\n",
                vec![row(2, "000123", "a@example.com")],
            ),
            (
                "quoted newlines keep later line numbers right",
                b"employee_number,note,email\r\n1,\"two\r\nlines\",a@example.com\r\n2,\"three\nlines\nhere\",b@example.com\r\n3,,c@example.com\r\n",
                vec![
                    row(2, "1", "a@example.com"),
                    row(4, "2", "b@example.com"),
                    row(7, "3", "c@example.com"),
                ],
            ),
            (
                "blank lines and separator-only rows are skipped, lines still counted",
                b"employee_number;email\n\n1;a@example.com\n;\n2;b@example.com\n;;;\n",
                vec![row(3, "1", "a@example.com"), row(5, "2", "b@example.com")],
            ),
            (
                "lone CR line ends (old Mac exports)",
                b"employee_number;email\r1;a@example.com\r\r2;b@example.com\r",
                vec![row(2, "1", "a@example.com"), row(4, "2", "b@example.com")],
            ),
            (
                "trailing blank cells beyond the header are tolerated",
                b"employee_number;email\n1;a@example.com;;\n",
                vec![row(2, "1", "a@example.com")],
            ),
        ];
        for (name, bytes, expected) in cases {
            let data = parse(bytes);
            assert_eq!(rows(&data), expected, "case {name}");
            assert!(data.rejected.is_empty(), "case {name}: {:?}", data.rejected);
        }
    }

    #[test]
    fn cells_are_kept_as_written() {
        let data = parse(b"employee_number;email;name\n 000123 ;a@example.com;  Ann  \n");
        let record = &data.records[0];
        assert_eq!(record.fields["employee_number"], " 000123 ");
        assert_eq!(record.get("employee_number"), Some("000123"));
        assert_eq!(record.fields["name"], "  Ann  ");
    }

    #[test]
    fn the_delimiter_override_beats_detection() {
        // Detection would pick the comma (two of them); the override says semicolon.
        let bytes = b"employee_number;email,with,commas\n1;a,b,c\n";
        let options = ParseOptions {
            delimiter: Delimiter::Fixed(b';'),
            ..options()
        };
        let data = parse_with(bytes, &options, &required(&["employee_number"]));
        assert_eq!(data.records[0].fields["email,with,commas"], "a,b,c");
        assert!(data.rejected.is_empty());
    }

    #[test]
    fn detection_breaks_ties_towards_the_comma() {
        let cases: [(&str, &[u8], u8); 5] = [
            ("one column", b"employee_number\n1\n", b','),
            ("tie comma semicolon", b"a,b;c\n", b','),
            ("tie semicolon pipe", b"a|b;c\n", b';'),
            ("quoted separators do not count", b"\"a;b;c\",d,e\n", b','),
            ("only the first line counts", b"a;b\n1,2,3,4,5\n", b';'),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(
                char::from(detect_delimiter(bytes)),
                char::from(expected),
                "case {name}"
            );
        }
    }

    #[test]
    fn encodings_decode_to_the_same_text() {
        let cases: [(&str, &[u8], TextEncoding, &str); 5] = [
            (
                "UTF-8 without BOM",
                "employee_number;city\n1;Zoë € Café\n".as_bytes(),
                TextEncoding::Auto,
                "Zoë € Café",
            ),
            (
                "Windows-1252 detected (é is 0xE9, € is 0x80)",
                b"employee_number;city\n1;Zo\xEB \x80 Caf\xE9\n",
                TextEncoding::Auto,
                "Zoë € Café",
            ),
            (
                "Windows-1252 forced on bytes that happen to be valid UTF-8",
                b"employee_number;city\n1;\xC3\xA9\n",
                TextEncoding::Windows1252,
                "Ã©",
            ),
            (
                "UTF-16LE with BOM (Excel Unicode text)",
                b"\xFF\xFEe\0m\0p\0l\0o\0y\0e\0e\0_\0n\0u\0m\0b\0e\0r\0\t\0c\0i\0t\0y\0\n\x001\0\t\0Z\0o\0\xEB\0\n\0",
                TextEncoding::Auto,
                "Zoë",
            ),
            (
                "BOM with the encoding forced to UTF-8",
                "\u{feff}employee_number;city\r\n1;Zoë\r\n".as_bytes(),
                TextEncoding::Utf8,
                "Zoë",
            ),
        ];
        for (name, bytes, encoding, expected) in cases {
            let options = ParseOptions {
                encoding,
                ..options()
            };
            let data = parse_with(bytes, &options, &required(&["employee_number", "city"]));
            assert_eq!(data.records.len(), 1, "case {name}: {:?}", data.rejected);
            assert_eq!(data.records[0].fields["city"], expected, "case {name}");
        }
    }

    #[test]
    fn invalid_utf8_in_a_cell_rejects_only_that_row() {
        let options = ParseOptions {
            encoding: TextEncoding::Utf8,
            ..options()
        };
        let bytes = b"employee_number;email\n1;caf\xE9@example.com\n2;b@example.com\n";
        let data = parse_with(bytes, &options, &required(&["employee_number", "email"]));
        assert_eq!(rows(&data), vec![row(3, "2", "b@example.com")]);
        let error = &data.rejected[0];
        assert_eq!(line_of(error), 2);
        assert_eq!(error.field.as_deref(), Some("email"));
        assert_eq!(error.employee_ref.as_deref(), Some("1"));
        assert!(error.reason.contains("not valid UTF-8"), "{}", error.reason);
    }

    #[test]
    fn bad_rows_are_reported_and_the_rest_is_read() {
        let cases: [BadRow; 2] = [
            (
                "too few cells mid-file",
                b"employee_number;email;city\n001;a@example.com\n002;b@example.com;Utrecht\n",
                2,
                Some("001"),
                "wrong number of columns: expected 3, found 2;",
            ),
            (
                "too many cells",
                b"employee_number;email;city\n001;a@example.com;Utrecht;x\n002;b@example.com;Utrecht\n",
                2,
                Some("001"),
                "wrong number of columns: expected 3, found 4;",
            ),
        ];
        for (name, bytes, line, employee_ref, reason) in cases {
            let data = parse_with(bytes, &options(), &required(&["employee_number", "email"]));
            assert_eq!(data.records.len(), 1, "case {name}");
            assert_eq!(
                data.records[0].get("employee_number"),
                Some("002"),
                "case {name}"
            );
            assert_eq!(data.rejected.len(), 1, "case {name}");
            let error = &data.rejected[0];
            assert_eq!(line_of(error), line, "case {name}");
            assert_eq!(error.employee_ref.as_deref(), employee_ref, "case {name}");
            assert!(
                error.reason.starts_with(reason),
                "case {name}: {}",
                error.reason
            );
            assert!(
                error.structural,
                "case {name}: a miscounted row may hide people"
            );
        }
    }

    /// A file copied while it was being written stops mid-row. Everyone after the cut would look
    /// like a leaver, so the read fails, naming the line, whatever the cut looks like.
    #[test]
    fn a_cut_off_export_fails_the_read_naming_its_last_line() {
        let header = "employee_number;email;city\n002;b@example.com;Utrecht\n";
        let cases: [(&str, &str, &str); 9] = [
            (
                "cut inside the number, first column",
                "00",
                "has 1 of the header's 3 cells and no line ending",
            ),
            (
                "cut right after the number's separator",
                "001;",
                "has 2 of the header's 3 cells and no line ending",
            ),
            (
                "cut mid-row",
                "001;a@exa",
                "has 2 of the header's 3 cells and no line ending",
            ),
            (
                "cut inside a quoted number",
                "\"00",
                "ends inside a quoted cell and no line ending",
            ),
            (
                "cut right after a row's opening quote",
                "\"",
                "ends inside a quoted cell and no line ending",
            ),
            (
                "cut inside a quoted cell",
                "001;a@example.com;\"Utr",
                "ends inside a quoted cell",
            ),
            (
                "cut inside a quoted line break, CRLF",
                "001;a@example.com;\"Utr\r\nec",
                "ends inside a quoted cell",
            ),
            (
                "a short last row with a line ending",
                "001;a@example.com\n",
                "has 2 of the header's 3 cells\n",
            ),
            (
                "a short last row before trailing separator rows",
                "001;a@example.com\n;;\n\n",
                "has 2 of the header's 3 cells\n",
            ),
        ];
        for (name, tail, detail) in cases {
            let bytes = format!("{header}{tail}");
            let result = parse_export(
                bytes.as_bytes(),
                &options(),
                &required(&["employee_number", "email"]),
            );
            match result {
                Err(SourceError::CutOff { line, detail: got }) => {
                    assert_eq!(line, 3, "case {name}");
                    let detail = detail.trim_end_matches('\n');
                    assert!(got.contains(detail), "case {name}: {got}");
                    if !detail.ends_with("no line ending") && name.contains("line ending") {
                        assert!(!got.contains("no line ending"), "case {name}: {got}");
                    }
                }
                other => panic!("case {name}: expected a cut-off read, got {other:?}"),
            }
        }
        let error = parse_export(
            format!("{header}001;a@exa").as_bytes(),
            &options(),
            &required(&["employee_number"]),
        )
        .expect_err("cut off");
        assert!(
            error
                .to_string()
                .starts_with("the export is cut off at line 3:")
                && error.to_string().contains("copy the complete export again"),
            "{error}"
        );
    }

    /// Only the end of the file can be cut: a short row followed by complete ones is a bad row
    /// (rejected, structural), and a last row with every cell is whole.
    #[test]
    fn only_a_damaged_last_row_means_the_file_is_cut_off() {
        let cases: [(&str, &[u8]); 3] = [
            (
                "short row mid-file",
                b"employee_number;email;city\n001\n002;b@example.com;Utrecht\n",
            ),
            (
                "complete last row without a newline",
                b"employee_number;email;city\n001;a@example.com;Utrecht",
            ),
            (
                "trailing blank cells",
                b"employee_number;email;city\n001;a@example.com;Utrecht;;",
            ),
        ];
        for (name, bytes) in cases {
            let result = parse_export(bytes, &options(), &required(&["employee_number"]));
            assert!(result.is_ok(), "case {name}: {result:?}");
        }
    }

    #[test]
    fn a_complete_last_row_without_a_newline_is_fine() {
        let data = parse(b"employee_number;email\n1;\"a@example.com\"");
        assert_eq!(rows(&data), vec![row(2, "1", "a@example.com")]);
        assert!(data.rejected.is_empty());
    }

    #[test]
    fn empty_and_header_only_files() {
        for (name, bytes) in [
            ("zero bytes", &b""[..]),
            ("only a BOM", b"\xEF\xBB\xBF"),
            ("only blank lines", b"\r\n\r\n"),
        ] {
            let result = parse_export(bytes, &options(), &required(&["employee_number"]));
            assert!(
                matches!(result, Err(SourceError::NoHeader)),
                "case {name}: {result:?}"
            );
        }
        for (name, bytes) in [
            ("header only", &b"employee_number;email\r\n"[..]),
            ("header only, no newline", b"employee_number;email"),
        ] {
            let data = parse(bytes);
            assert!(
                data.records.is_empty() && data.rejected.is_empty(),
                "case {name}"
            );
            assert_eq!(data.fingerprint.len(), 64, "case {name}");
        }
    }

    #[test]
    fn header_problems_stop_the_read_naming_the_column() {
        let result = parse_export(
            b"Employee_Number;mail\n1;a@example.com\n",
            &options(),
            &required(&["employee_number", "email", "department"]),
        );
        match result {
            Err(SourceError::MissingColumns { missing, found }) => {
                assert_eq!(missing, ["email", "department"]);
                assert_eq!(found, ["Employee_Number", "mail"]);
            }
            other => panic!("expected missing columns, got {other:?}"),
        }

        let result = parse_export(
            b"email;employee_number;EMAIL\n1;2;3\n",
            &options(),
            &required(&["employee_number", "email"]),
        );
        match result {
            Err(SourceError::DuplicateColumns { columns }) => assert_eq!(columns, ["EMAIL"]),
            other => panic!("expected a duplicate column, got {other:?}"),
        }

        // A duplicate that nothing reads does not stop the sync.
        let data = parse(b"employee_number;email;phone;Phone\n1;a@example.com;1;2\n");
        assert_eq!(data.records[0].fields["phone"], "1");
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_raw_bytes() {
        let data = parse(b"employee_number,email\n");
        assert_eq!(
            data.fingerprint,
            hex::encode(Sha256::digest(b"employee_number,email\n"))
        );
        assert_ne!(
            data.fingerprint,
            parse(b"employee_number;email\n").fingerprint
        );
    }

    #[test]
    fn settings_accept_the_documented_spellings() {
        let delimiters = [
            ("auto", Ok(Delimiter::Auto)),
            (",", Ok(Delimiter::Fixed(b','))),
            (";", Ok(Delimiter::Fixed(b';'))),
            ("tab", Ok(Delimiter::Fixed(b'\t'))),
            ("\t", Ok(Delimiter::Fixed(b'\t'))),
            ("|", Ok(Delimiter::Fixed(b'|'))),
            ("a quote", Err(())),
            ("\"", Err(())),
            ("ab", Err(())),
        ];
        for (raw, expected) in delimiters {
            assert_eq!(
                Delimiter::parse(raw).map_err(|_| ()),
                expected,
                "delimiter {raw:?}"
            );
        }
        let encodings = [
            ("auto", Ok(TextEncoding::Auto)),
            ("UTF-8", Ok(TextEncoding::Utf8)),
            ("windows-1252", Ok(TextEncoding::Windows1252)),
            ("latin9", Err(())),
        ];
        for (raw, expected) in encodings {
            assert_eq!(
                TextEncoding::parse(raw).map_err(|_| ()),
                expected,
                "encoding {raw:?}"
            );
        }
    }

    #[test]
    fn settings_deserialise_from_toml() {
        let toml = r#"
            [source.csv]
            path = "/data/export.csv"
            delimiter = ";"
            encoding = "windows-1252"
        "#;
        let settings: CsvSettings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .and_then(|config| config.get("source.csv"))
            .expect("valid settings");
        assert_eq!(
            settings,
            CsvSettings {
                path: PathBuf::from("/data/export.csv"),
                delimiter: Some(Delimiter::Fixed(b';')),
                encoding: Some(TextEncoding::Windows1252),
            }
        );
        let unknown = r#"
            [source.csv]
            path = "/data/export.csv"
            seperator = ";"
        "#;
        let result = config::Config::builder()
            .add_source(config::File::from_str(unknown, config::FileFormat::Toml))
            .build()
            .and_then(|config| config.get::<CsvSettings>("source.csv"));
        assert!(result.is_err(), "an unknown key is refused");
    }

    #[tokio::test]
    async fn reads_a_file_off_the_async_workers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("export.csv");
        std::fs::write(&path, b"employee_number;email\r\n00017;a@example.com\r\n").expect("write");
        let source = CsvSource::new(CsvSettings {
            path: path.clone(),
            delimiter: None,
            encoding: None,
        });
        assert_eq!(source.describe(), format!("csv:{}", path.display()));
        let data = source
            .read(&required(&["employee_number"]))
            .await
            .expect("read");
        assert_eq!(data.records[0].get("employee_number"), Some("00017"));

        let missing = CsvSource::new(CsvSettings {
            path: dir.path().join("absent.csv"),
            delimiter: None,
            encoding: None,
        });
        let result = missing.read(&[]).await;
        assert!(matches!(result, Err(SourceError::Io { .. })), "{result:?}");
    }
}
