//! Typed cell values: dates in the formats HR systems write, and yes/no answers in Dutch and
//! English.
//!
//! Date formats are declared in config, never guessed: `03-04-2024` is the 3rd of April in
//! `dd-mm-yyyy` and the 4th of March in `mm/dd/yyyy`, and a sync must not pick one by luck.

use std::fmt;

use chrono::NaiveDate;

/// A declared date format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateFormat {
    /// `yyyy-mm-dd`
    Iso,
    /// `dd-mm-yyyy`
    DayMonthYearDash,
    /// `dd.mm.yyyy`
    DayMonthYearDot,
    /// `dd/mm/yyyy`
    DayMonthYearSlash,
    /// `mm/dd/yyyy`
    MonthDayYearSlash,
}

impl DateFormat {
    pub const ALL: [DateFormat; 5] = [
        DateFormat::Iso,
        DateFormat::DayMonthYearDash,
        DateFormat::DayMonthYearDot,
        DateFormat::DayMonthYearSlash,
        DateFormat::MonthDayYearSlash,
    ];

    /// The name used in config.
    pub fn name(self) -> &'static str {
        match self {
            DateFormat::Iso => "iso",
            DateFormat::DayMonthYearDash => "dd-mm-yyyy",
            DateFormat::DayMonthYearDot => "dd.mm.yyyy",
            DateFormat::DayMonthYearSlash => "dd/mm/yyyy",
            DateFormat::MonthDayYearSlash => "mm/dd/yyyy",
        }
    }

    pub fn parse_name(raw: &str) -> Result<Self, String> {
        let wanted = raw.trim().to_ascii_lowercase();
        if wanted == "yyyy-mm-dd" {
            return Ok(DateFormat::Iso);
        }
        Self::ALL
            .into_iter()
            .find(|format| format.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|format| format.name()).collect();
                format!("'{raw}' is not a date format (known: {})", known.join(", "))
            })
    }

    /// The separator, and the positions of year, month and day among the three numbers.
    fn layout(self) -> (char, [usize; 3]) {
        match self {
            DateFormat::Iso => ('-', [0, 1, 2]),
            DateFormat::DayMonthYearDash => ('-', [2, 1, 0]),
            DateFormat::DayMonthYearDot => ('.', [2, 1, 0]),
            DateFormat::DayMonthYearSlash => ('/', [2, 1, 0]),
            DateFormat::MonthDayYearSlash => ('/', [2, 0, 1]),
        }
    }

    /// Strict: a four-digit year, a one- or two-digit day and month, the declared separator, and
    /// a day that exists in the calendar.
    pub fn parse_date(self, raw: &str) -> Result<NaiveDate, String> {
        let value = raw.trim();
        // HR APIs (AFAS, Personio) write ISO dates as date-times, `2019-03-01T00:00:00+01:00`.
        // The date part is the HR system's calendar day, which is what the sync means by a date.
        let value = match (self, value.split_once(['T', ' '])) {
            (DateFormat::Iso, Some((date, _))) => date,
            _ => value,
        };
        let not_this_format = || format!("'{value}' is not a date in the format {self}");
        let (separator, [year_at, month_at, day_at]) = self.layout();
        let numbers: Vec<&str> = value.split(separator).collect();
        let [_, _, _] = numbers.as_slice() else {
            return Err(not_this_format());
        };
        let digits = |at: usize, widths: &[usize]| {
            let part = numbers.get(at).copied().unwrap_or_default();
            if widths.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse::<u32>().ok()
            } else {
                None
            }
        };
        let (Some(year), Some(month), Some(day)) = (
            digits(year_at, &[4]),
            digits(month_at, &[1, 2]),
            digits(day_at, &[1, 2]),
        ) else {
            return Err(not_this_format());
        };
        let year = i32::try_from(year).map_err(|_| not_this_format())?;
        NaiveDate::from_ymd_opt(year, month, day)
            .ok_or_else(|| format!("'{value}' is not a day in the calendar ({self})"))
    }
}

impl fmt::Display for DateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateFormat::Iso => "yyyy-mm-dd",
            other => other.name(),
        })
    }
}

/// Yes/no as HR systems in the Netherlands write it.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" | "ja" | "j" | "1" => Ok(true),
        "false" | "no" | "n" | "nee" | "0" => Ok(false),
        _ => Err(format!(
            "'{}' is not a yes/no value (true/false, yes/no, ja/nee, 1/0, y/n, j)",
            raw.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, month, day)
    }

    #[test]
    fn dates_parse_only_in_their_declared_format() {
        let cases = [
            ("iso", DateFormat::Iso, "2024-04-03", date(2024, 4, 3)),
            (
                "iso padded",
                DateFormat::Iso,
                " 2024-4-3 ",
                date(2024, 4, 3),
            ),
            (
                "dutch dash",
                DateFormat::DayMonthYearDash,
                "03-04-2024",
                date(2024, 4, 3),
            ),
            (
                "german dot",
                DateFormat::DayMonthYearDot,
                "3.4.2024",
                date(2024, 4, 3),
            ),
            (
                "slash",
                DateFormat::DayMonthYearSlash,
                "03/04/2024",
                date(2024, 4, 3),
            ),
            (
                "american",
                DateFormat::MonthDayYearSlash,
                "04/03/2024",
                date(2024, 4, 3),
            ),
            (
                "iso given to dutch",
                DateFormat::DayMonthYearDash,
                "2024-04-03",
                None,
            ),
            (
                "wrong separator",
                DateFormat::DayMonthYearDash,
                "03.04.2024",
                None,
            ),
            (
                "two-digit year",
                DateFormat::DayMonthYearDash,
                "03-04-24",
                None,
            ),
            (
                "not in calendar",
                DateFormat::DayMonthYearDash,
                "31-02-2024",
                None,
            ),
            (
                "leap day",
                DateFormat::DayMonthYearDash,
                "29-02-2024",
                date(2024, 2, 29),
            ),
            (
                "iso date-time from an HR API",
                DateFormat::Iso,
                "2024-04-03T00:00:00+02:00",
                date(2024, 4, 3),
            ),
            (
                "iso with a space and time",
                DateFormat::Iso,
                "2024-04-03 00:00",
                date(2024, 4, 3),
            ),
            (
                "time after a dutch date",
                DateFormat::DayMonthYearDash,
                "03-04-2024 00:00",
                None,
            ),
            ("signs", DateFormat::Iso, "2024-+4-03", None),
            ("text", DateFormat::Iso, "soon", None),
        ];
        for (name, format, raw, expected) in cases {
            assert_eq!(format.parse_date(raw).ok(), expected, "case {name}");
        }
        let error = DateFormat::DayMonthYearDash.parse_date("2024-04-03");
        assert_eq!(
            error,
            Err("'2024-04-03' is not a date in the format dd-mm-yyyy".to_owned())
        );
    }

    #[test]
    fn format_names_round_trip() {
        for format in DateFormat::ALL {
            assert_eq!(DateFormat::parse_name(format.name()), Ok(format));
        }
        assert_eq!(DateFormat::parse_name("YYYY-MM-DD"), Ok(DateFormat::Iso));
        assert!(DateFormat::parse_name("dd-mm-yy").is_err());
    }

    #[test]
    fn booleans_accept_dutch_and_english() {
        let cases = [
            ("ja", "ja", Some(true)),
            ("Nee", "Nee", Some(false)),
            ("J", "J", Some(true)),
            ("yes", " YES ", Some(true)),
            ("n", "n", Some(false)),
            ("one", "1", Some(true)),
            ("zero", "0", Some(false)),
            ("true", "True", Some(true)),
            ("false", "false", Some(false)),
            ("maybe", "misschien", None),
            ("two", "2", None),
        ];
        for (name, raw, expected) in cases {
            assert_eq!(parse_bool(raw).ok(), expected, "case {name}");
        }
    }
}
