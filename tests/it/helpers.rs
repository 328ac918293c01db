//! Test harness: a pluvo-sim on a random port, a temp directory with an export, a config file
//! and a SQLite database, and the real engine built from that config.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use pluvo_sim::{Seed, SimConfig, SimHandle, StateView, Stats};
use pluvo_sync::clock::ManualClock;
use pluvo_sync::engine::{Engine, RunOptions, RunReport, Trigger};
use pluvo_sync::journal::Journal;
use pluvo_sync::metrics::Metrics;
use pluvo_sync::pluvo::PluvoClient;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// "Now" in every engine test: Monday 23 November 2026, 10:00 in Amsterdam.
pub const NOW: &str = "2026-11-23T09:00:00Z";

/// One row of the HR export the tests write.
#[derive(Debug, Clone)]
pub struct Employee {
    pub number: String,
    pub first: String,
    pub last: String,
    pub email: String,
    pub department: String,
    pub location: String,
    pub contract: String,
    pub car: String,
    pub start: String,
    pub end: String,
    pub language: String,
}

pub fn employee(
    number: &str,
    first: &str,
    last: &str,
    department: &str,
    location: &str,
) -> Employee {
    Employee {
        number: number.to_owned(),
        first: first.to_owned(),
        last: last.to_owned(),
        email: format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        department: department.to_owned(),
        location: location.to_owned(),
        contract: "Permanent".to_owned(),
        car: "nee".to_owned(),
        start: "01-03-2019".to_owned(),
        end: String::new(),
        language: "NL".to_owned(),
    }
}

/// A small company: six people in three departments.
pub fn staff() -> Vec<Employee> {
    vec![
        employee("000123", "Lotte", "Devries", "Sales", "Amsterdam"),
        employee("000124", "Thijs", "Berg", "Engineering", "Utrecht"),
        employee("000131", "Zoë", "Bakker", "Finance", "Rotterdam"),
        employee("000145", "Daan", "Jong", "Sales", "Rotterdam"),
        employee("000152", "Emma", "Visser", "HR", "Amsterdam"),
        employee("000160", "Sem", "Mulder", "Engineering", "Amsterdam"),
    ]
}

pub const HEADER: &str = "employee_number;first_name;last_name;email;department;location;contract_type;company_car;start_date;end_date;language";

/// The export as Excel writes it: a BOM, semicolons, CRLF.
pub fn export_csv(rows: &[Employee]) -> Vec<u8> {
    let mut text = String::from("\u{feff}");
    text.push_str(HEADER);
    text.push_str("\r\n");
    for e in rows {
        text.push_str(&format!(
            "{};{};{};{};{};{};{};{};{};{};{}\r\n",
            e.number,
            e.first,
            e.last,
            e.email,
            e.department,
            e.location,
            e.contract,
            e.car,
            e.start,
            e.end,
            e.language
        ));
    }
    text.into_bytes()
}

pub fn config_toml(sim_url: &str, export: &std::path::Path, database: &std::path::Path) -> String {
    format!(
        r#"
[source.csv]
path = "{export}"

[mapping]
ref = "employee_number"
name = "{{first_name}} {{last_name}}"
email = "email"
language = {{ column = "language", default = "NL" }}
start_date = {{ column = "start_date", format = "dd-mm-yyyy" }}
end_date = {{ column = "end_date", format = "dd-mm-yyyy" }}

[[mapping.categories]]
ref = "department"
column = "department"
type = "string"

[[mapping.categories]]
ref = "contract_type"
column = "contract_type"
type = "choice"

[[mapping.categories]]
ref = "has_company_car"
column = "company_car"
type = "boolean"

[[mapping.categories]]
ref = "hire_date"
column = "start_date"
type = "date"
format = "dd-mm-yyyy"

[mapping.groups]
static = ["all-employees"]
templates = ["dept-{{department|slug}}", "loc-{{location|slug}}"]

[pluvo]
url = "{sim_url}"
client_id = "pluvo-sync"
client_secret = "sim-secret"
rate_per_second = 500
burst = 20
concurrency = 4
batch_size = 4
backoff_base_ms = 5
backoff_max_ms = 50
max_attempts = 8

[sync]
database = "{database}"
time_zone = "Europe/Amsterdam"
"#,
        export = export.display(),
        database = database.display(),
    )
}

pub struct TestEnv {
    pub sim: SimHandle,
    pub dir: TempDir,
    pub export: PathBuf,
    pub config: PathBuf,
    pub database: PathBuf,
    pub clock: ManualClock,
    pub metrics: Arc<Metrics>,
    engine: Option<Engine>,
}

impl TestEnv {
    /// A sim with the example tenant (groups, categories, one unreferenced user) and `staff()`.
    pub async fn start() -> Self {
        Self::start_with(SimConfig {
            seed: Seed::example(),
            ..SimConfig::default()
        })
        .await
    }

    pub async fn start_with(sim_config: SimConfig) -> Self {
        let sim = pluvo_sim::start("127.0.0.1:0".parse().unwrap(), sim_config)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("export.csv");
        let database = dir.path().join("pluvo-sync.db");
        let config = dir.path().join("pluvo-sync.toml");
        std::fs::write(&config, config_toml(&sim.base_url(), &export, &database)).unwrap();
        std::fs::write(&export, export_csv(&staff())).unwrap();
        let mut env = Self {
            sim,
            dir,
            export,
            config,
            database,
            clock: ManualClock::new(NOW.parse().unwrap()),
            metrics: Arc::new(Metrics::new()),
            engine: None,
        };
        env.engine = Some(env.build_engine().await);
        env
    }

    async fn build_engine(&self) -> Engine {
        let raw = pluvo_sync::settings::load(Some(&self.config), Some(Default::default())).unwrap();
        let settings = Arc::new(raw.resolve().unwrap());
        let pool = pluvo_sync::db::open(&settings.database).await.unwrap();
        let clock: pluvo_sync::clock::SharedClock = Arc::new(self.clock.clone());
        let journal = Journal::new(pool, clock.clone());
        let client = PluvoClient::new(settings.pluvo.clone(), self.metrics.clone()).unwrap();
        Engine::new(settings, journal, client, self.metrics.clone(), clock)
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().unwrap()
    }

    /// Rewrites the config (e.g. another policy) and rebuilds the engine from it.
    pub async fn reconfigure(&mut self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, edit(text)).unwrap();
        self.engine = Some(self.build_engine().await);
    }

    pub fn write_export(&self, rows: &[Employee]) {
        std::fs::write(&self.export, export_csv(rows)).unwrap();
    }

    pub fn write_raw_export(&self, bytes: &[u8]) {
        std::fs::write(&self.export, bytes).unwrap();
    }

    pub async fn sync(&self) -> RunReport {
        self.sync_with(RunOptions::default()).await
    }

    pub async fn sync_with(&self, options: RunOptions) -> RunReport {
        let run_id = uuid::Uuid::new_v4().to_string();
        self.engine()
            .run_once(run_id, Trigger::Cli, options, CancellationToken::new())
            .await
    }

    pub fn state(&self) -> StateView {
        self.sim.state()
    }

    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }

    pub fn journal(&self) -> &Journal {
        self.engine().journal()
    }
}
