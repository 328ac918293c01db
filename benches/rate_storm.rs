//! A 429 storm: pluvo-sync configured for 20 requests/s against a Pluvo that allows 5.
//!
//! An operator who guesses the tenant's limit wrong must lose little: the client has to find
//! the real limit from the 429s and stay just under it. Before the adaptive rate, this setup
//! collapsed to 0.85 requests/s against an independent Pluvo stand-in: every task slept exactly
//! the `Retry-After`, woke with the others, and was refused with them, until calls gave up after
//! all their attempts.
//!
//! The real engine (`run_once`, built from a config file as the binary builds it) first-loads a
//! generated export into pluvo-sim, which enforces a per-client token bucket and answers 429 with
//! `Retry-After` above it. The bench prints:
//! - the achieved rate: requests Pluvo accepted (all but the 429s) per second of wall time, as a
//!   share of the server's real limit (goal: at least 80 %);
//! - the 429s, and how the client's rate moved (the `pluvo_request_rate_per_second` gauge);
//! - the distribution of the retry waits (read from the client's own "retrying" log events);
//! - the most attempts any operation used, against `pluvo.max_attempts` (goal: none exhausted).
//!
//! Knobs (environment): `STORM_PEOPLE` (1000), `STORM_BATCH_SIZE` (10: more, smaller requests,
//! so the storm lasts long enough to measure), `STORM_SERVER_RATE` (5), `STORM_SERVER_BURST` (5),
//! `STORM_CLIENT_RATE` (20), `STORM_LATENCY_MS` (0). About 45 s with the defaults.
//!
//! Prints figures; asserts nothing, so a noisy machine cannot make it flake (the storm's shape is
//! asserted, on simulated time, by the tests in `src/pluvo/pacing.rs`). Run with
//! `cargo bench --bench rate_storm`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{
    CLIENT_ID, CLIENT_SECRET, MAPPING, build_engine, complete_users, env_number, export_csv,
    people, print_run, run_once, tally,
};
use pluvo_sim::{Faults, Seed, SimConfig};
use pluvo_sync::metrics::names::PLUVO_EFFECTIVE_RATE;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// What the environment asks for (see the module comment).
struct Knobs {
    people: usize,
    batch_size: u64,
    server_rate: u64,
    server_burst: u64,
    client_rate: u64,
    latency_ms: u64,
}

impl Knobs {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            people: usize::try_from(env_number("STORM_PEOPLE", 1_000)?)?.max(1),
            batch_size: env_number("STORM_BATCH_SIZE", 10)?.max(1),
            server_rate: env_number("STORM_SERVER_RATE", 5)?.max(1),
            server_burst: env_number("STORM_SERVER_BURST", 5)?.max(1),
            client_rate: env_number("STORM_CLIENT_RATE", 20)?.max(1),
            latency_ms: env_number("STORM_LATENCY_MS", 0)?,
        })
    }
}

/// The client's own account of the storm, from its log events: every retry wait, and every
/// change of rate it logged.
#[derive(Default)]
struct Observed {
    waits_ms: Vec<u64>,
    lowered_to: Vec<f64>,
}

/// A tracing layer that keeps the fields [`Observed`] needs and drops everything else.
struct Recorder(Arc<Mutex<Observed>>);

#[derive(Default)]
struct Fields {
    delay_ms: Option<u64>,
    rate_per_second: Option<f64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "delay_ms" {
            self.delay_ms = Some(value);
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "rate_per_second" {
            self.rate_per_second = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if !event.metadata().target().starts_with("pluvo_sync::pluvo") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut observed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ms) = fields.delay_ms {
            observed.waits_ms.push(ms);
        }
        if let Some(rate) = fields.rate_per_second {
            observed.lowered_to.push(rate);
        }
    }
}

fn config_toml(sim_url: &str, export: &Path, database: &Path, knobs: &Knobs) -> String {
    format!(
        r#"
[source.csv]
path = "{export}"

{MAPPING}

[pluvo]
url = "{sim_url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
rate_per_second = {client_rate}
batch_size = {batch_size}

[sync]
database = "{database}"
time_zone = "Europe/Amsterdam"
"#,
        export = export.display(),
        database = database.display(),
        client_rate = knobs.client_rate,
        batch_size = knobs.batch_size,
    )
}

fn percentile(sorted: &[u64], share: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() - 1) as f64 * share).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn print_waits(waits: &mut [u64]) {
    waits.sort_unstable();
    println!(
        "  retry waits          {:>8}  (min {} ms, median {} ms, p90 {} ms, max {} ms)",
        waits.len(),
        waits.first().copied().unwrap_or(0),
        percentile(waits, 0.5),
        percentile(waits, 0.9),
        waits.last().copied().unwrap_or(0),
    );
    let bands: [(&str, u64, u64); 7] = [
        ("under 1 s", 0, 1_000),
        ("exactly 1,000 ms", 1_000, 1_001),
        ("1.001-1.25 s", 1_001, 1_250),
        ("1.25-1.5 s", 1_250, 1_500),
        ("1.5-2 s", 1_500, 2_000),
        ("2-5 s", 2_000, 5_000),
        ("5 s and more", 5_000, u64::MAX),
    ];
    let counts: Vec<String> = bands
        .iter()
        .map(|(label, from, to)| {
            let n = waits.iter().filter(|w| (*from..*to).contains(*w)).count();
            format!("{label}: {n}")
        })
        .collect();
    println!("  wait distribution    {}", counts.join(", "));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let knobs = Knobs::from_env()?;
    let observed = Arc::new(Mutex::new(Observed::default()));
    tracing::subscriber::set_global_default(Registry::default().with(Recorder(observed.clone())))?;

    let sim = pluvo_sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            seed: Seed::example(),
            faults: Faults {
                rate: knobs.server_rate as f64,
                burst: u32::try_from(knobs.server_burst)?,
                latency_ms: knobs.latency_ms,
                ..Faults::default()
            },
            ..SimConfig::default()
        },
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("export.csv");
    let database = dir.path().join("pluvo-sync.db");
    let config = dir.path().join("pluvo-sync.toml");
    std::fs::write(&export, export_csv(&people(knobs.people)?))?;
    std::fs::write(
        &config,
        config_toml(&sim.base_url(), &export, &database, &knobs),
    )?;
    let engine = build_engine(&config).await?;
    let pluvo = &engine.settings().pluvo;
    let max_attempts = pluvo.max_attempts;
    println!(
        "rate_storm: first load of {} employees; pluvo-sim allows {} req/s (burst {}), the client is configured for {} req/s",
        knobs.people, knobs.server_rate, knobs.server_burst, pluvo.rate_per_second
    );
    println!(
        "  client: batch_size {}, concurrency {}, burst {}, max_attempts {}, backoff base {} ms; added latency {} ms",
        pluvo.batch_size,
        pluvo.concurrency,
        pluvo.burst,
        max_attempts,
        pluvo.backoff_base.as_millis(),
        knobs.latency_ms
    );

    let (run_id, report, wall) = run_once(&engine).await;
    let stats = sim.stats();

    let accepted = stats.requests_total.saturating_sub(stats.rate_limited);
    let achieved = accepted as f64 / wall.as_secs_f64().max(f64::EPSILON);
    println!("  wall time            {:>8.1} s", wall.as_secs_f64());
    println!(
        "  requests sent        {:>8}  (by status: {})",
        stats.requests_total,
        tally(&stats.requests_by_status)
    );
    println!(
        "  achieved rate        {:>8.2} req/s accepted = {:.0} % of the server's limit of {} (goal: at least 80 %)",
        achieved,
        100.0 * achieved / knobs.server_rate as f64,
        knobs.server_rate
    );
    println!(
        "  429s received        {:>8}  ({:.1} % of requests)",
        stats.rate_limited,
        100.0 * stats.rate_limited as f64 / stats.requests_total.max(1) as f64
    );
    {
        let mut observed = observed.lock().unwrap_or_else(|p| p.into_inner());
        let lowered: Vec<String> = observed
            .lowered_to
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect();
        println!(
            "  rate lowered         {:>8}  times, to {} req/s; at the end {:.2} req/s",
            lowered.len(),
            lowered.join(" → "),
            engine.metrics().get(PLUVO_EFFECTIVE_RATE, vec![])
        );
        print_waits(&mut observed.waits_ms);
    }

    let operations = engine.journal().operations_of_run(&run_id).await?;
    let most_attempts = operations.iter().map(|op| op.attempts).max().unwrap_or(0);
    let mut by_attempts: BTreeMap<i64, usize> = BTreeMap::new();
    for op in &operations {
        *by_attempts.entry(op.attempts).or_default() += 1;
    }
    let exhausted = operations
        .iter()
        .filter(|op| op.error.as_deref().is_some_and(|e| e.contains("gave up")))
        .count();
    println!(
        "  attempts per op      most {most_attempts} of {max_attempts} allowed; exhausted {exhausted} (goal: 0); ops by attempts: {}",
        tally(&by_attempts)
    );
    print_run(&engine, &run_id, &report).await?;
    let state = sim.state();
    let converged = complete_users(&state, 3);
    println!(
        "  converged            {converged} of {} users with their 4 fields and 3 groups",
        knobs.people
    );
    Ok(())
}
