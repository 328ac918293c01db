//! Exports cut off at every byte offset near their end: nobody present before the cut is archived.
//!
//! These drive the real CSV source, mapping and plan (everything up to the first Pluvo call)
//! over generated files, so they can try hundreds of cuts; `sync_e2e` runs one through the whole
//! engine.

#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use pluvo_sync::settings::Settings;
use pluvo_sync::sync::mapping::Mapped;
use pluvo_sync::sync::plan::{Plan, UserChange};
use pluvo_sync::sync::snapshot::{Snapshot, SnapshotUser};
use pluvo_sync::sync::source::SourceError;

use crate::helpers::{Employee, config_toml, employee, export_csv};

/// `count` people with distinct numbers and addresses.
fn company(count: usize) -> Vec<Employee> {
    (0..count)
        .map(|i| {
            employee(
                &format!("{:06}", 100_000 + i),
                &format!("First{i}"),
                &format!("Last{i}"),
                "Sales",
                "Utrecht",
            )
        })
        .collect()
}

/// Where each data row starts in `export_csv(rows)`, and the employee number on it.
fn row_starts(bytes: &[u8], rows: &[Employee]) -> Vec<(usize, String)> {
    let text = std::str::from_utf8(bytes).unwrap();
    let starts = text.match_indices("\r\n").map(|(at, _)| at + 2);
    starts
        .zip(rows)
        .map(|(at, e)| (at, e.number.clone()))
        .collect()
}

struct Harness {
    settings: Settings,
    export: std::path::PathBuf,
    /// Everyone in the complete export, as Pluvo acknowledged them on an earlier run.
    snapshot: Snapshot,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The complete export of `company(count)`, where its rows start, and a harness whose
    /// snapshot holds all of them.
    async fn company(count: usize) -> (Vec<u8>, Vec<(usize, String)>, Self) {
        let rows = company(count);
        let complete = export_csv(&rows);
        let starts = row_starts(&complete, &rows);
        let harness = Self::new(&complete).await;
        (complete, starts, harness)
    }

    async fn new(complete: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("export.csv");
        let config = dir.path().join("pluvo-sync.toml");
        let toml = config_toml("http://127.0.0.1:9", &export, &dir.path().join("db.sqlite"));
        std::fs::write(&config, toml).unwrap();
        let raw = pluvo_sync::settings::load(Some(&config), Some(Default::default())).unwrap();
        let mut harness = Self {
            settings: raw.resolve().unwrap(),
            export,
            snapshot: Snapshot::new(),
            _dir: dir,
        };
        let (mapped, _) = harness.read_and_plan(complete).await.unwrap();
        assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
        harness.snapshot = mapped
            .people
            .values()
            .map(|d| (d.employee_ref.clone(), SnapshotUser::acknowledged(d)))
            .collect();
        harness
    }

    /// What a run would read and plan from `bytes`; nothing is sent anywhere.
    async fn read_and_plan(&self, bytes: &[u8]) -> Result<(Mapped, Plan), SourceError> {
        std::fs::write(&self.export, bytes).unwrap();
        let required = self.settings.mapping.required_columns();
        let data = self.settings.source.read(&required).await?;
        let mapped = self.settings.mapping.map(data);
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let plan = pluvo_sync::sync::plan::plan(
            &self.snapshot,
            &mapped,
            &|group| self.settings.mapping.is_managed(group),
            &self.settings.policy,
            today,
        );
        Ok((mapped, plan))
    }

    /// Reads `complete` cut at `cut` bytes. Either the read fails as cut off, or nobody whose
    /// row starts before the cut is archived. Returns whether the read failed.
    async fn check_cut(&self, complete: &[u8], starts: &[(usize, String)], cut: usize) -> bool {
        match self.read_and_plan(&complete[..cut]).await {
            Err(SourceError::CutOff { line, .. }) => {
                let cut_row = starts.iter().filter(|(at, _)| *at < cut).count();
                assert_eq!(
                    line,
                    cut_row as u64 + 1,
                    "cut at {cut}: the message names the damaged row's line"
                );
                true
            }
            Err(other) => panic!("cut at {cut}: expected a cut-off read, got {other}"),
            Ok((_, plan)) => {
                for person in &plan.people {
                    if let Some(UserChange::Archive { .. }) = person.user {
                        let (start, _) = starts
                            .iter()
                            .find(|(_, number)| number == person.employee_ref.as_str())
                            .unwrap();
                        assert!(
                            *start >= cut,
                            "cut at {cut}: {} (row at byte {start}) was in the file but is archived",
                            person.employee_ref
                        );
                    }
                }
                false
            }
        }
    }
}

/// Whether a cut at `cut` leaves the file looking whole: it falls between two rows (or between
/// the `\r` and `\n` of one line ending), or inside a row's last cell, after its last separator.
fn cut_looks_whole(complete: &[u8], starts: &[(usize, String)], cut: usize) -> bool {
    let row = starts
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at <= cut)
        .max();
    let Some(row) = row else { return true };
    let separators = crate::helpers::HEADER.matches(';').count();
    cut == row
        || complete[cut - 1] == b'\r'
        || complete[row..cut].iter().filter(|b| **b == b';').count() == separators
}

#[tokio::test]
async fn no_cut_in_the_last_rows_archives_anyone_who_was_before_it() {
    let (complete, starts, harness) = Harness::company(40).await;
    let from = starts[starts.len() - 3].0;
    for cut in from..complete.len() {
        let failed = harness.check_cut(&complete, &starts, cut).await;
        // Every cut that damages a row's shape fails the read. The others leave a file that
        // reads as whole: a shorter export, whose missing people the archive guard weighs.
        assert_eq!(
            failed,
            !cut_looks_whole(&complete, &starts, cut),
            "cut at {cut}: {:?}",
            String::from_utf8_lossy(&complete[cut.saturating_sub(20)..cut])
        );
    }
}

#[tokio::test]
async fn a_file_cut_after_97_percent_of_2000_rows_fails_the_read() {
    let (complete, starts, harness) = Harness::company(2000).await;
    let at_97 = complete.len() * 97 / 100;
    assert!(!cut_looks_whole(&complete, &starts, at_97));
    assert!(
        harness.check_cut(&complete, &starts, at_97).await,
        "a cut inside a row fails the read; 59 people after it are not leavers"
    );
}

/// `plan` and `sync` on a cut-off export: exit 1, the line named, nothing sent or archived.
#[tokio::test]
async fn plan_and_sync_exit_1_on_a_cut_off_export_naming_the_line() {
    let env = crate::helpers::TestEnv::start().await;
    env.run_cli(&["sync"]).await.assert_code(0);
    let complete = export_csv(&crate::helpers::staff());
    env.write_raw_export(&complete[..complete.len() - 30]);
    let before = env.stats().requests_total;
    for command in ["plan", "sync"] {
        let output = env.run_cli(&[command]).await;
        output.assert_code(1);
        let said = format!("{}{}", output.stdout, output.stderr);
        assert!(said.contains("cut off at line 7"), "{command}: {output:#?}");
    }
    assert_eq!(env.stats().requests_total, before, "nothing was sent");
    assert!(env.state().users.iter().all(|u| !u.archived));
}
