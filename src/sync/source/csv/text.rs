//! From the export's bytes to cells, before anything is read as a record: the encoding (and the
//! per-cell decoder it implies), the delimiter, the physical line each record starts on, and the
//! traces a cut-off copy leaves in the last row. Split from `csv/mod.rs`, which reads records.

use std::borrow::Cow;

use super::{Delimiter, TextEncoding};
use crate::sync::source::{Location, SourceError};

/// How one cell's bytes become text, once the file's encoding is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellDecoder {
    Utf8,
    Windows1252,
}

impl CellDecoder {
    pub(super) fn decode(self, bytes: &[u8]) -> Result<String, String> {
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

    pub(super) fn name(self) -> &'static str {
        match self {
            CellDecoder::Utf8 => "UTF-8",
            CellDecoder::Windows1252 => "Windows-1252",
        }
    }
}

pub(super) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decides the encoding and returns the bytes the CSV parser should see: BOM removed, UTF-16
/// already transcoded to UTF-8.
pub(super) fn prepare(
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
pub(super) fn detect_delimiter(text: &[u8]) -> u8 {
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
pub(super) fn ends_inside_quotes(raw: &[u8], delimiter: u8) -> bool {
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
pub(super) fn header_name(raw: &str) -> &str {
    raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// Physical line numbers for record starts. The csv crate's own `Position::line` lags by one
/// after CRLF line ends, and Excel writes CRLF, so lines are counted here: `\n`, `\r\n` and a lone
/// `\r` each end one line, including the ones inside quoted cells. Counting resumes where the
/// previous record started, so the whole file is scanned once.
#[derive(Debug, Default)]
pub(super) struct LineCounter {
    pub(super) offset: usize,
    line: u64,
}

impl LineCounter {
    /// The csv crate may report a record as starting on the line break that ended the previous
    /// one; a record never starts with a line break (blank lines are skipped), so skip past it.
    pub(super) fn start_of_record(&self, text: &[u8], reported: usize) -> usize {
        let mut start = reported.max(self.offset);
        while matches!(text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        start
    }

    /// The 1-based line `start` lies on; `start` must not go backwards between calls.
    pub(super) fn line_at(&mut self, text: &[u8], start: usize) -> u64 {
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
pub(super) struct RawRecord<'a> {
    pub(super) cells: &'a csv::ByteRecord,
    pub(super) location: Location,
    pub(super) is_last: bool,
    pub(super) open_quote_at_end: bool,
    pub(super) file_ends_with_newline: bool,
}

/// How `raw` is damaged the way an interrupted copy damages the last row of a file: it ends
/// inside a quoted cell, or it has fewer cells than the header (a cut right after a separator,
/// or inside any cell but the last). Said of the last row with anything in it, this means the
/// file is cut off; rows of bare separators, as Excel leaves below the data, are not rows.
pub(super) fn damage(raw: &RawRecord<'_>, expected: usize) -> Option<String> {
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

pub(super) fn is_blank(cells: &csv::ByteRecord) -> bool {
    cells
        .iter()
        .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
}
