//! When `pluvo-sync run` starts a run: a cron expression read in an IANA time zone.
//!
//! A **schedule** is the resolved form of the `[schedule]` settings: a parsed cron pattern, a
//! time zone and the `run_on_start` flag. Its one question is [`Schedule::next_after`]: given
//! an instant, when is the next fire? The scheduler loop asks it after every fire; tests ask it
//! directly with pinned instants, so daylight-saving behaviour is checked without sleeping.
//!
//! ## Cron syntax
//! The classic 5-field crontab (`min hour dom month dow`) is accepted and read as if a `0`
//! seconds field stood first; 6 fields put seconds first, and a 7th is the year. Nicknames such
//! as `@daily` work too. Day-of-month and day-of-week combine with OR as in classic cron (so
//! `0 3 1 * MON` fires on the 1st *and* on Mondays); prefix the weekday with `+` for AND.
//!
//! ## Daylight saving
//! A nightly job fires exactly once per local night:
//! - **Spring forward** (Europe/Amsterdam, last Sunday of March, 02:00 → 03:00): a fixed time
//!   inside the skipped hour (02:00, 02:30) fires at the first valid instant after the gap,
//!   03:00 local, instead of being skipped.
//! - **Fall back** (last Sunday of October, 03:00 → 02:00): a fixed time inside the repeated
//!   hour fires at its first occurrence (summer time) only, not again an hour later.
//!
//! Interval patterns (`*/15 * * * *`) keep their interval in local wall time, so during the
//! repeated hour they fire in both passes of it: a run every 15 minutes keeps running every
//! 15 minutes.
//!
//! ## Why croner and not tokio-cron-scheduler's `JobScheduler`
//! tokio-cron-scheduler 0.15.1 parses with croner, but its `Job::new_async_tz` turns the zone
//! into the *fixed UTC offset in force when the job is created* (`time_offset_seconds`) and
//! computes every later fire in that offset. A nightly 02:30 Amsterdam job created in winter
//! therefore fires at 03:30 local all summer. It also reads the wall clock itself, so no test
//! can drive it across a transition. We use the same parser, croner, with the real
//! `chrono_tz::Tz`, which applies the rules above, and drive it from our own loop
//! ([`crate::service::scheduler`]) with an injected clock.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono::{Offset, TimeZone};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::{Cron, JobType};
use serde::Deserialize;

/// The `[schedule]` settings as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// A cron expression, 5 fields (crontab) or 6–7 (seconds first, optional year).
    pub cron: String,
    /// An IANA time zone such as `Europe/Amsterdam`; UTC when absent.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Start one run as soon as `pluvo-sync run` starts, before the first scheduled fire.
    #[serde(default)]
    pub run_on_start: bool,
}

/// Why the `[schedule]` settings were refused. Each message names the key to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error(
        "schedule.cron: '{cron}' is not a valid cron expression: {reason} \
         (use 5 fields 'min hour dom month dow', or 6 with seconds first)"
    )]
    InvalidCron { cron: String, reason: String },
    #[error("schedule.cron: '{cron}' never fires after {after} in {zone}")]
    NeverFires {
        cron: String,
        zone: String,
        after: String,
    },
    #[error(
        "schedule.time_zone: '{0}' is not a known IANA time zone \
         (for example 'Europe/Amsterdam' or 'UTC')"
    )]
    UnknownTimeZone(String),
}

impl ScheduleSettings {
    /// Parses the expression and the zone. `now` is only used to refuse an expression that can
    /// never fire again (`0 0 30 2 *`, or a year in the past), which would otherwise leave the
    /// daemon idle forever without a word.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<Schedule, ScheduleError> {
        let zone_name = self.time_zone.as_deref().unwrap_or("UTC").trim();
        let zone = Tz::from_str(zone_name)
            .map_err(|_| ScheduleError::UnknownTimeZone(zone_name.to_owned()))?;
        let schedule = Schedule::new(&self.cron, zone, self.run_on_start)?;
        if schedule.next_after(now).is_none() {
            return Err(ScheduleError::NeverFires {
                cron: self.cron.clone(),
                zone: zone.name().to_owned(),
                after: crate::clock::timestamp(now),
            });
        }
        Ok(schedule)
    }
}

/// A parsed cron pattern in a time zone.
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    zone: Tz,
    run_on_start: bool,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("cron", &self.expression)
            .field("zone", &self.zone.name())
            .field("run_on_start", &self.run_on_start)
            .finish()
    }
}

impl Schedule {
    pub fn new(expression: &str, zone: Tz, run_on_start: bool) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidCron {
            cron: expression.to_owned(),
            reason,
        };
        // croner counts fields itself, but an empty or one-word string gets a vaguer message.
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=7).contains(&fields) {
            return Err(invalid(format!("it has {fields} fields")));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Optional)
            .dom_and_dow(false)
            .build()
            .parse(expression)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
            zone,
            run_on_start,
        })
    }

    /// The expression as configured.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    pub fn run_on_start(&self) -> bool {
        self.run_on_start
    }

    /// The first fire strictly after `now`, or `None` when the pattern never fires again.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let by_wall_time = self.next_by_wall_time(now)?;
        if self.cron.determine_job_type() == JobType::FixedTime {
            return Some(by_wall_time);
        }
        // croner walks local wall time forward, so from inside the first pass of a repeated
        // autumn hour it never sees the second pass: an hourly job would go quiet for two real
        // hours. Interval jobs should fire in both passes, so also search in the fixed offset
        // that follows a transition in the next hours, and keep a hit only if it is a real wall
        // time of the zone (which rules out the skipped spring hour).
        let after = self
            .zone
            .offset_from_utc_datetime(&(now + chrono::Duration::hours(3)).naive_utc())
            .fix();
        let second_pass = self
            .cron
            .find_next_occurrence(&now.with_timezone(&after), false)
            .ok()
            .filter(|at| at.with_timezone(&self.zone).naive_local() == at.naive_local())
            .map(|at| at.with_timezone(&Utc));
        Some(second_pass.map_or(by_wall_time, |other| other.min(by_wall_time)))
    }

    fn next_by_wall_time(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = now.with_timezone(&self.zone);
        // croner resolves a fixed time in the repeated autumn hour to its *first* occurrence even
        // when the search starts in the second pass of that hour, i.e. to an instant before
        // `from`. That first occurrence has then already fired (or was missed while we were
        // down), so it must not fire again: search on from it until we are past `now`. Each
        // step moves forward, and a year of steps is far more than any pattern needs.
        for _ in 0..400 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            let next_utc = next.with_timezone(&Utc);
            if next_utc > now {
                return Some(next_utc);
            }
            from = next;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate};

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid UTC instant")
    }

    fn settings(cron: &str, zone: Option<&str>) -> ScheduleSettings {
        ScheduleSettings {
            cron: cron.to_owned(),
            time_zone: zone.map(str::to_owned),
            run_on_start: false,
        }
    }

    fn amsterdam(cron: &str) -> Schedule {
        settings(cron, Some("Europe/Amsterdam"))
            .resolve(utc(2026, 1, 1, 0, 0, 0))
            .expect("valid schedule")
    }

    /// Every fire in `[from, to)`, found the way the scheduler finds them: each search starts
    /// at the previous fire.
    fn fires(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some(next) = schedule.next_after(at) {
            if next >= to {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    }

    fn local(at: DateTime<Utc>) -> String {
        at.with_timezone(&chrono_tz::Europe::Amsterdam)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    #[test]
    fn five_field_crontab_is_read_with_zero_seconds() {
        let schedule = settings("30 2 * * *", None)
            .resolve(utc(2026, 5, 1, 0, 0, 0))
            .unwrap();
        assert_eq!(schedule.zone(), Tz::UTC);
        assert_eq!(
            schedule.next_after(utc(2026, 5, 1, 0, 0, 0)),
            Some(utc(2026, 5, 1, 2, 30, 0))
        );
        assert_eq!(
            schedule.next_after(utc(2026, 5, 1, 2, 30, 0)),
            Some(utc(2026, 5, 2, 2, 30, 0)),
            "the search is strictly after"
        );
    }

    #[test]
    fn six_and_seven_field_forms_have_seconds_first() {
        let six = settings("15 30 2 * * *", None)
            .resolve(utc(2026, 5, 1, 0, 0, 0))
            .unwrap();
        assert_eq!(
            six.next_after(utc(2026, 5, 1, 0, 0, 0)),
            Some(utc(2026, 5, 1, 2, 30, 15))
        );
        let seven = settings("0 0 9 * * * 2030", None)
            .resolve(utc(2026, 5, 1, 0, 0, 0))
            .unwrap();
        assert_eq!(
            seven.next_after(utc(2026, 5, 1, 0, 0, 0)),
            Some(utc(2030, 1, 1, 9, 0, 0))
        );
        let every_second = settings("* * * * * *", None)
            .resolve(utc(2026, 5, 1, 0, 0, 0))
            .unwrap();
        assert_eq!(
            every_second.next_after(utc(2026, 5, 1, 0, 0, 0)),
            Some(utc(2026, 5, 1, 0, 0, 1))
        );
    }

    #[test]
    fn day_of_month_and_weekday_combine_with_or_like_crontab() {
        // 2026-06-01 is a Monday; the 15th is not.
        let schedule = settings("0 3 15 * MON", None)
            .resolve(utc(2026, 6, 1, 0, 0, 0))
            .unwrap();
        let got = fires(
            &schedule,
            utc(2026, 6, 1, 0, 0, 0),
            utc(2026, 6, 16, 0, 0, 0),
        );
        let days: Vec<u32> = got
            .iter()
            .map(|at| chrono::Datelike::day(&at.date_naive()))
            .collect();
        assert_eq!(days, vec![1, 8, 15]);
    }

    #[test]
    fn the_schedule_is_computed_in_its_zone() {
        let schedule = amsterdam("0 2 * * *");
        // 02:00 in Amsterdam in June is 00:00 UTC (CEST, +2).
        assert_eq!(
            schedule.next_after(utc(2026, 6, 10, 12, 0, 0)),
            Some(utc(2026, 6, 11, 0, 0, 0))
        );
        // And 01:00 UTC in January (CET, +1).
        assert_eq!(
            schedule.next_after(utc(2026, 1, 10, 12, 0, 0)),
            Some(utc(2026, 1, 11, 1, 0, 0))
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_key_named() {
        let now = utc(2026, 5, 1, 0, 0, 0);
        let cases = [
            (
                "61 * * * *",
                None,
                "schedule.cron: '61 * * * *' is not a valid cron expression",
            ),
            (
                "* * *",
                None,
                "schedule.cron: '* * *' is not a valid cron expression: it has 3 fields",
            ),
            ("", None, "schedule.cron: '' is not a valid cron expression"),
            (
                "0 0 0 1 1 * 2020",
                None,
                "schedule.cron: '0 0 0 1 1 * 2020' never fires",
            ),
            (
                "0 2 * * *",
                Some("Europe/Amsterdm"),
                "schedule.time_zone: 'Europe/Amsterdm' is not a known IANA time zone",
            ),
            (
                "0 2 * * *",
                Some("CEST+2"),
                "schedule.time_zone: 'CEST+2' is not a known IANA time zone",
            ),
        ];
        for (cron, zone, expected) in cases {
            let err = settings(cron, zone)
                .resolve(now)
                .expect_err(&format!("{cron:?} in {zone:?} must be refused"));
            let message = err.to_string();
            assert!(
                message.starts_with(expected),
                "{cron:?}: got {message:?}, want prefix {expected:?}"
            );
        }
    }

    #[test]
    fn settings_deserialize_with_defaults() {
        let parsed: ScheduleSettings = serde_json::from_str(r#"{"cron": "0 2 * * *"}"#).unwrap();
        assert_eq!(parsed, settings("0 2 * * *", None));
        let schedule = parsed.resolve(utc(2026, 1, 1, 0, 0, 0)).unwrap();
        assert_eq!(schedule.zone(), Tz::UTC);
        assert!(!schedule.run_on_start());
        let unknown = serde_json::from_str::<ScheduleSettings>(r#"{"cron": "x", "tz": "UTC"}"#);
        assert!(unknown.is_err(), "a misspelt key must not be ignored");
    }

    /// One fire per local night around both 2026 transitions in Amsterdam, at 02:30 and 02:00
    /// (both inside the skipped and the repeated hour), and at 03:30 (outside both) as control.
    #[test]
    fn exactly_one_nightly_fire_per_night_across_daylight_saving_changes() {
        struct Case {
            cron: &'static str,
            night_of: (u32, u32),
            expected_local: [&'static str; 3],
        }
        let cases = [
            Case {
                cron: "30 2 * * *",
                night_of: (3, 28),
                // 29 March 02:30 does not exist: the fire moves to the end of the gap.
                expected_local: [
                    "2026-03-28 02:30:00 CET",
                    "2026-03-29 03:00:00 CEST",
                    "2026-03-30 02:30:00 CEST",
                ],
            },
            Case {
                cron: "0 2 * * *",
                night_of: (3, 28),
                expected_local: [
                    "2026-03-28 02:00:00 CET",
                    "2026-03-29 03:00:00 CEST",
                    "2026-03-30 02:00:00 CEST",
                ],
            },
            Case {
                cron: "30 2 * * *",
                night_of: (10, 24),
                // 25 October 02:30 happens twice; only the first (summer time) fires.
                expected_local: [
                    "2026-10-24 02:30:00 CEST",
                    "2026-10-25 02:30:00 CEST",
                    "2026-10-26 02:30:00 CET",
                ],
            },
            Case {
                cron: "0 0 2 * * *",
                night_of: (10, 24),
                expected_local: [
                    "2026-10-24 02:00:00 CEST",
                    "2026-10-25 02:00:00 CEST",
                    "2026-10-26 02:00:00 CET",
                ],
            },
            Case {
                cron: "30 3 * * *",
                night_of: (3, 28),
                expected_local: [
                    "2026-03-28 03:30:00 CET",
                    "2026-03-29 03:30:00 CEST",
                    "2026-03-30 03:30:00 CEST",
                ],
            },
        ];
        for case in cases {
            let schedule = amsterdam(case.cron);
            let (month, day) = case.night_of;
            let start = NaiveDate::from_ymd_opt(2026, month, day)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap();
            let from = chrono_tz::Europe::Amsterdam
                .from_local_datetime(&start)
                .single()
                .unwrap()
                .with_timezone(&Utc);
            let got: Vec<String> = fires(&schedule, from, from + Duration::hours(72))
                .into_iter()
                .map(local)
                .collect();
            assert_eq!(got, case.expected_local, "cron {:?}", case.cron);
        }
    }

    /// The scheduler may ask again from any instant (after a restart, or after a slow launch);
    /// asking from inside the repeated hour must not bring the first pass's fire back.
    #[test]
    fn asking_from_the_second_pass_of_the_repeated_hour_does_not_fire_again() {
        let schedule = amsterdam("30 2 * * *");
        // 02:30 CEST on 25 October is 00:30 UTC; 02:15 and 02:45 CET are 01:15 and 01:45 UTC.
        assert_eq!(
            schedule.next_after(utc(2026, 10, 25, 0, 15, 0)),
            Some(utc(2026, 10, 25, 0, 30, 0))
        );
        for second_pass in [utc(2026, 10, 25, 1, 15, 0), utc(2026, 10, 25, 1, 45, 0)] {
            assert_eq!(
                schedule.next_after(second_pass).map(local).as_deref(),
                Some("2026-10-26 02:30:00 CET"),
                "from {}",
                local(second_pass)
            );
        }
    }

    #[test]
    fn interval_patterns_keep_running_through_the_repeated_hour() {
        let schedule = amsterdam("0 * * * *");
        // From 00:00 CEST to 04:00 CET is five real hours, with 02:00 twice; an hourly job fires
        // once in each, the last (04:00) being the excluded end.
        let got = fires(
            &schedule,
            utc(2026, 10, 24, 22, 0, 0),
            utc(2026, 10, 25, 3, 0, 0),
        );
        let local: Vec<String> = got.into_iter().map(local).collect();
        assert_eq!(
            local,
            [
                "2026-10-25 01:00:00 CEST",
                "2026-10-25 02:00:00 CEST",
                "2026-10-25 02:00:00 CET",
                "2026-10-25 03:00:00 CET",
            ]
        );
    }
}
