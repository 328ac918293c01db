//! The HR export the end-to-end tests and the benches write, as Excel writes it: a UTF-8 BOM,
//! semicolons, CRLF line ends, and the columns `tests/fixtures/mapping.toml` maps. Shared as a
//! file (`#[path]`) so the tests (`tests/it/helpers.rs`) and the benches (`benches/common/`)
//! cannot drift apart on what an export looks like.

use std::io::{self, Write};

/// The header row, without the BOM.
pub const HEADER: &str = "employee_number;first_name;last_name;email;department;location;contract_type;company_car;start_date;end_date;language";

/// The cells of one row, in [`HEADER`]'s order.
pub type Row<'a> = [&'a str; 11];

/// Writes the BOM and the header row.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    out.write_all("\u{feff}".as_bytes())?;
    out.write_all(HEADER.as_bytes())?;
    out.write_all(b"\r\n")
}

/// Writes one data row.
pub fn write_row(out: &mut impl Write, cells: &Row<'_>) -> io::Result<()> {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.write_all(b";")?;
        }
        out.write_all(cell.as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// A whole export in memory: the header, then `rows`.
pub fn export_bytes<'a>(rows: impl IntoIterator<Item = Row<'a>>) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_header(&mut bytes);
    for row in rows {
        let _ = write_row(&mut bytes, &row);
    }
    bytes
}
