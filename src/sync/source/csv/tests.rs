//! The CSV reader's tests: the shapes HR systems write, encodings, bad rows, cut-off files.

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
