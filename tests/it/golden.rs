//! The golden plan: a known export against a known snapshot gives, byte for byte, the
//! `plan --json` stored in `tests/fixtures/golden/plan.json`.
//!
//! The snapshot is built by a first sync of the six people of [`staff`] against pluvo-sim. The
//! export then read (`tests/fixtures/golden/export.csv`) holds one of each thing a plan does:
//! - 000123 moves from Sales to Finance: a custom field and a group swap (add and remove);
//! - 000124 changes name and language and gets a company car: field and custom-field updates;
//! - 000131 is absent: archived;
//! - 000145 has an address without an '@': a rejected row, so they are held (not archived);
//! - 000152's end date has passed: archived by date;
//! - 000160 leaves later this week: an upcoming archive;
//! - 000170 is new: a create.
//!
//! The real binary runs with its clock pinned to [`NOW`] through
//! [`pluvo_sync::clock::PIN_VARIABLE`], so today is the same on every run. The temp directory's
//! path, which differs per run, is written as `<dir>`.
//!
//! After a deliberate change to the plan's output, regenerate the file and review its diff:
//! `UPDATE_GOLDEN=1 cargo test -p pluvo-sync --test it golden`.

use std::path::PathBuf;

use crate::helpers::{NOW, TestEnv, run, staff};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name)
}

#[tokio::test]
async fn the_golden_export_plans_exactly_as_stored() {
    let env = TestEnv::start().await;
    env.write_export(&staff());
    let first = env.sync().await;
    assert_eq!(first.summary.map(|s| s.create), Some(6), "{first:#?}");

    env.write_raw_export(&std::fs::read(fixture("export.csv")).unwrap());
    let output = run(env
        .cli()
        .env(pluvo_sync::clock::PIN_VARIABLE, NOW)
        .args(["plan", "--json"]))
    .await;
    output.assert_code(0);
    let dir = env.dir.path().display().to_string();
    let actual = output.stdout.replace(&dir, "<dir>");

    let path = fixture("plan.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .context_radius(3)
            .header("expected (tests/fixtures/golden/plan.json)", "actual")
            .to_string();
        panic!(
            "`plan --json` differs from the golden file; if the change is intended, run \
             UPDATE_GOLDEN=1 cargo test -p pluvo-sync --test it golden and review the diff\n{diff}"
        );
    }
}

/// The pin is for `plan` alone: a sync on a clock that stands still would judge end dates,
/// leases and retention wrongly, so it is refused before anything is read or sent.
#[tokio::test]
async fn a_pinned_clock_is_refused_by_sync() {
    let env = TestEnv::start().await;
    env.write_export(&staff());
    let output = run(env
        .cli()
        .env(pluvo_sync::clock::PIN_VARIABLE, NOW)
        .arg("sync"))
    .await;
    output.assert_code(2);
    assert!(
        output
            .stderr
            .contains("only `plan` may run on a pinned clock"),
        "{output:#?}"
    );
    assert_eq!(env.stats().requests_total, 0);
}
