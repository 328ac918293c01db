//! Test harness: a pluvo-sim on a random port, a temp directory with an export, a config file
//! and a SQLite database, and the real engine built from that config.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pluvo_sim::{Seed, SimConfig, SimHandle, StateView, Stats};
use pluvo_sync::clock::ManualClock;
use pluvo_sync::domain::Trigger;
use pluvo_sync::metrics::Metrics;
use pluvo_sync::pluvo::PluvoClient;
use pluvo_sync::sync::engine::{Engine, RunOptions, RunReport};
use pluvo_sync::sync::journal::Journal;
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// "Now" in every engine test: Monday 23 November 2026, 10:00 in Amsterdam.
pub const NOW: &str = "2026-11-23T09:00:00Z";

/// The `[mapping]` of every engine test (shared with the first-load benchmark).
pub const MAPPING: &str = include_str!("../fixtures/mapping.toml");

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
        // Pluvo refuses accents before the '@' (Django's EmailValidator), as mail systems
        // mostly do: Zoë's address is zoe.bakker@, as an HR system would hold it.
        email: format!(
            "{}.{}@example.com",
            pluvo_sync::sync::mapping::slug(first),
            pluvo_sync::sync::mapping::slug(last)
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

#[path = "../common/export.rs"]
mod export;
pub use export::HEADER;

impl Employee {
    /// This person's row of the export, in [`HEADER`]'s order.
    pub fn cells(&self) -> export::Row<'_> {
        [
            &self.number,
            &self.first,
            &self.last,
            &self.email,
            &self.department,
            &self.location,
            &self.contract,
            &self.car,
            &self.start,
            &self.end,
            &self.language,
        ]
    }
}

/// The export as Excel writes it: a BOM, semicolons, CRLF.
pub fn export_csv(rows: &[Employee]) -> Vec<u8> {
    export::export_bytes(rows.iter().map(Employee::cells))
}

pub fn config_toml(sim_url: &str, export: &std::path::Path, database: &std::path::Path) -> String {
    format!(
        r#"
[source.csv]
path = "{export}"

{mapping}

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
        mapping = MAPPING,
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
        let lease = self.lease().try_acquire(&run_id).await.unwrap().unwrap();
        let report = self
            .engine()
            .run_once(
                run_id,
                Trigger::Cli,
                options,
                CancellationToken::new(),
                &lease,
            )
            .await;
        lease.release().await.unwrap();
        report
    }

    /// The run lease of this engine's database, on the engine's clock.
    pub fn lease(&self) -> pluvo_sync::service::lease::Lease {
        pluvo_sync::service::lease::Lease::for_runs(
            self.engine().journal().pool().clone(),
            self.engine().clock().clone(),
        )
    }

    /// An account outside the sync (ref `OTHER-1`, "Someone Else") holding the address HR gives
    /// employee 000124, Thijs Berg: his create is refused every run.
    pub fn add_outside_account_for_thijs(&self) {
        self.sim
            .add_users(vec![pluvo_sim::SeedUser {
                ref_: Some("OTHER-1".to_owned()),
                email: "thijs.berg@example.com".to_owned(),
                name: "Someone Else".to_owned(),
                ..Default::default()
            }])
            .unwrap();
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

    /// Rewrites the config file without rebuilding the engine, e.g. to make it invalid.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, edit(text)).unwrap();
    }

    /// The real `pluvo-sync` binary with this environment's config file.
    /// Writes a variant of the config file next to it, for a test that needs several at once.
    pub fn config_variant(&self, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, edit(text)).unwrap();
        path
    }

    pub fn cli(&self) -> Command {
        let mut command = pluvo_sync_command();
        command.arg("--config").arg(&self.config);
        command
    }

    /// Runs `pluvo-sync --config <ours> <args>` to completion.
    pub async fn run_cli(&self, args: &[&str]) -> CliOutput {
        run(self.cli().args(args)).await
    }

    /// Adds a `[schedule]` and a `[server]` listening on a random port with [`TRIGGER_TOKEN`],
    /// then starts `pluvo-sync run` and waits until its admin listener answers.
    pub async fn start_service(&self, schedule: &str) -> Spawned {
        self.edit_config(|text| format!("{text}\n{schedule}\n{}", service_tables()));
        let mut service = Spawned::spawn(self.cli().arg("run"));
        service.wait_ready().await;
        service
    }
}

/// Asserts every employee in `rows` has exactly one Pluvo account, found by ref and by e-mail.
pub fn assert_each_employee_once(state: &StateView, rows: &[Employee]) {
    for e in rows {
        let by_ref = state
            .users
            .iter()
            .filter(|u| u.ref_.as_deref() == Some(&e.number))
            .count();
        let by_email = state
            .users
            .iter()
            .filter(|u| u.email.eq_ignore_ascii_case(&e.email))
            .count();
        assert_eq!((by_ref, by_email), (1, 1), "accounts of {}", e.number);
    }
}

/// The bearer token of the service tests' admin listener.
pub const TRIGGER_TOKEN: &str = "test-trigger-token";

/// `[server]` on a random loopback port (the service logs the bound address) and a short grace.
pub fn service_tables() -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntrigger_token = \"{TRIGGER_TOKEN}\"\n\n\
         [service]\nshutdown_grace_secs = {}\n",
        SHUTDOWN_GRACE.as_secs()
    )
}

/// `shutdown_grace_secs` of the service tests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Generous bound for anything a spawned process does; a loaded 2-core machine is slow.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `pluvo-sync` with none of the caller's `PLUVO_SYNC*` or `RUST_LOG` variables, so the test
/// decides the whole configuration, and killed if the test gives up on it.
pub fn pluvo_sync_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pluvo-sync"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PLUVO_SYNC") || key == "RUST_LOG" || key == "NO_COLOR" {
            command.env_remove(key.as_ref());
        }
    }
    command.stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// What a finished `pluvo-sync` printed, and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// stdout as JSON; panics with both streams when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:#?}"))
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// Runs `command` to completion within [`PATIENCE`]; on timeout, kills it and shows what it
/// printed so far.
pub async fn run(command: &mut Command) -> CliOutput {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let status = tokio::time::timeout(PATIENCE, child.wait()).await;
    if status.is_err() {
        child.kill().await.unwrap();
    }
    let output = CliOutput {
        code: -1,
        stdout: stdout.await.unwrap(),
        stderr: stderr.await.unwrap(),
    };
    match status {
        Ok(status) => CliOutput {
            code: status
                .unwrap()
                .code()
                .expect("exited, not killed by a signal"),
            ..output
        },
        Err(_) => panic!("pluvo-sync did not finish within {PATIENCE:?}: {output:#?}"),
    }
}

async fn read_all(mut stream: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut bytes)
        .await
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Polls `condition` every 50 ms until it holds; panics after [`PATIENCE`] naming `what`.
pub async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A spawned `pluvo-sync` (usually `run`), its stderr collected line by line: JSON logs, since
/// stderr is a pipe.
pub struct Spawned {
    pub child: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Spawned {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            logs,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The admin listener's address, from the "admin listener ready" log line.
    pub fn addr(&self) -> Option<String> {
        self.logs.lock().unwrap().iter().find_map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).ok()?;
            if entry["message"] != "admin listener ready" {
                return None;
            }
            entry["addr"].as_str().map(str::to_owned)
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr().expect("the listener is up"))
    }

    /// Waits until the listener has logged its address; panics if the process exits first.
    pub async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.addr().is_none() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("pluvo-sync run exited with {status}: {}", self.logs());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the admin listener never came up: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// `POST /v1/sync`, with the bearer token when `token` is given.
    pub async fn trigger(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(self.url("/v1/sync"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Sends SIGTERM (through `kill(1)`: the tests use no FFI).
    pub async fn terminate(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, within `limit`; its exit code.
    pub async fn exit_code(&mut self, limit: Duration) -> i32 {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "pluvo-sync run did not exit within {limit:?}: {}",
                    self.logs()
                )
            })
            .unwrap();
        status.code().expect("exited, not killed by a signal")
    }
}
