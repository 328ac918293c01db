//! What the benches that sync a generated HR export share: the export itself (people with
//! Dutch names, uneven departments, as Excel writes a CSV), the mapping onto the example tenant,
//! and the engine built from a config file exactly as the binary builds it.

// Each bench uses a part of this module; what one leaves unused is not dead.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../tests/common/export.rs"]
pub mod export;

use anyhow::Context as _;
use chrono::NaiveDate;
use pluvo_sync::clock::{SharedClock, SystemClock};
use pluvo_sync::domain::Trigger;
use pluvo_sync::metrics::Metrics;
use pluvo_sync::pluvo::PluvoClient;
use pluvo_sync::service::lease::Lease;
use pluvo_sync::sync::engine::{Engine, RunOptions, RunReport};
use pluvo_sync::sync::journal::Journal;
use tokio_util::sync::CancellationToken;

/// The mapping the engine tests use too: the export's columns onto the example tenant.
pub const MAPPING: &str = include_str!("../../tests/fixtures/mapping.toml");
pub const CLIENT_ID: &str = "pluvo-sync";
pub const CLIENT_SECRET: &str = "sim-secret";

const DEPARTMENTS: [&str; 4] = ["Sales", "Finance", "Engineering", "HR"];
const LOCATIONS: [&str; 3] = ["Amsterdam", "Rotterdam", "Utrecht"];
const FIRST: [&str; 12] = [
    "Lotte", "Thijs", "Zoë", "Daan", "Emma", "Sem", "Julia", "Lucas", "Sophie", "Finn", "Anna",
    "Milan",
];
const LAST: [&str; 10] = [
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Jong", "Mulder", "Bos",
    "Peters",
];

/// One row of the generated HR export.
pub struct Employee {
    pub number: String,
    pub first: &'static str,
    pub last: &'static str,
    pub email: String,
    pub department: &'static str,
    pub location: &'static str,
    pub contract: &'static str,
    pub car: bool,
    pub start: NaiveDate,
    pub language: &'static str,
}

pub fn employee(i: usize) -> anyhow::Result<Employee> {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    let start = NaiveDate::from_ymd_opt(2010, 1, 1)
        .context("valid date")?
        .checked_add_days(chrono::Days::new((i * 37 % 5_000) as u64))
        .context("start date in range")?;
    Ok(Employee {
        number: format!("{:06}", 100_000 + i),
        first,
        last,
        // The number keeps addresses unique (and clear of the seed's pre-existing accounts).
        email: format!(
            "{}.{}.{}@example.com",
            first.to_lowercase().replace('ë', "e"),
            last.to_lowercase().replace(' ', ""),
            100_000 + i
        ),
        // Uneven department sizes, as in a real company.
        department: DEPARTMENTS[[0, 0, 0, 1, 2, 2, 2, 2, 3, 0][i % 10]],
        location: LOCATIONS[(i / 7) % LOCATIONS.len()],
        contract: ["Permanent", "Permanent", "Permanent", "Temporary", "Intern"][i % 5],
        car: i % 6 == 0,
        start,
        language: if i % 9 == 0 { "EN" } else { "NL" },
    })
}

pub fn people(n: usize) -> anyhow::Result<Vec<Employee>> {
    (0..n).map(employee).collect()
}

/// The export as Excel writes it: a BOM, semicolons, CRLF.
pub fn export_csv(rows: &[Employee]) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_export(&mut bytes, rows);
    bytes
}

/// The same export, written as it goes (a million rows need not be held twice).
pub fn write_export<'a>(
    out: &mut impl std::io::Write,
    rows: impl IntoIterator<Item = &'a Employee>,
) -> std::io::Result<()> {
    export::write_header(out)?;
    for e in rows {
        e.write_row(out)?;
    }
    Ok(())
}

impl Employee {
    /// This person's row of the export.
    pub fn write_row(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let start = self.start.format("%d-%m-%Y").to_string();
        export::write_row(
            out,
            &[
                &self.number,
                self.first,
                self.last,
                &self.email,
                self.department,
                self.location,
                self.contract,
                if self.car { "ja" } else { "nee" },
                &start,
                "",
                self.language,
            ],
        )
    }
}

pub fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .with_context(|| format!("{name}={raw:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// The engine as `pluvo-sync sync` builds it, from the config file.
pub async fn build_engine(config: &Path) -> anyhow::Result<Engine> {
    let raw = pluvo_sync::settings::load(Some(config), Some(Default::default()))?;
    let settings = Arc::new(raw.resolve()?);
    let pool = pluvo_sync::db::open(&settings.database).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let journal = Journal::new(pool, clock.clone());
    let metrics = Arc::new(Metrics::new());
    let client = PluvoClient::new(settings.pluvo.clone(), metrics.clone())?;
    Ok(Engine::new(settings, journal, client, metrics, clock))
}

/// One run, as `pluvo-sync sync` starts it: its id, its report and its wall time.
pub async fn run_once(engine: &Engine) -> (String, RunReport, Duration) {
    let run_id = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let lease = Lease::for_runs(engine.journal().pool().clone(), engine.clock().clone())
        .try_acquire(&run_id)
        .await
        .expect("the run lease")
        .expect("no other holder of the run lease");
    let report = engine
        .run_once(
            run_id.clone(),
            Trigger::Cli,
            RunOptions::default(),
            CancellationToken::new(),
            &lease,
        )
        .await;
    lease.release().await.expect("release the run lease");
    (run_id, report, started.elapsed())
}

/// The journal's account of the run, and its first errors.
pub async fn print_run(engine: &Engine, run_id: &str, report: &RunReport) -> anyhow::Result<()> {
    match engine.journal().run(run_id).await? {
        Some(run) => println!(
            "  journal              status {}, ops planned {}, ok {}, failed {}, skipped {}",
            run.status,
            run.counts.ops_planned,
            run.counts.ops_ok,
            run.counts.ops_failed,
            run.counts.ops_skipped
        ),
        None => println!("  journal              no run row for {run_id}"),
    }
    for error in report.errors.iter().take(5) {
        println!("  error: {error}");
    }
    Ok(())
}

/// `a: 1, b: 2`: counts for one line of output.
pub fn tally<K: std::fmt::Display, V: std::fmt::Display>(
    counts: impl IntoIterator<Item = (K, V)>,
) -> String {
    counts
        .into_iter()
        .map(|(key, n)| format!("{key}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Users in the simulator with a ref, their four custom fields and `groups` groups: converged.
pub fn complete_users(state: &pluvo_sim::StateView, groups: usize) -> usize {
    state
        .users
        .iter()
        .filter(|u| u.ref_.is_some() && u.categories.len() == 4 && u.groups.len() == groups)
        .count()
}
