//! First load: 10,000 employees into an empty tenant at 20 requests/s, against pluvo-sim.
//!
//! The issue asks for wall time and request count of the first load, side by side with a
//! sequential client shaped like Pluvo's own "Sync Users from HRM" recipe: three calls per person
//! (`updateOrCreateUser` with `sendInvite: false`, `updateExtraCategoryValues`,
//! `addUsersToGroup` for one group), one after the other.
//!
//! - **pluvo-sync**: the real engine, built from a config file as the binary builds it, runs once
//!   (`run_once`) over a generated CSV export. Client settings: `rate_per_second` the sim's
//!   limit, `burst` as the sim's, `batch_size` and `concurrency` at their defaults (25 and 4).
//! - **recipe**: the project's own [`PluvoClient`] with single-item calls and `concurrency = 1`,
//!   at the same rate and burst, against a fresh simulator. 10,000 people take 30,000 requests,
//!   about 25 minutes at 20/s, so by default it runs for a sample of people and the 10,000-person
//!   figures are a linear extrapolation, labelled as such: requests per person times people, and
//!   the sample's wall time plus the remaining people at the pace measured after the first
//!   burst's worth of people (so the free initial burst is not multiplied).
//!
//! The simulator answers with no added latency (unless `FIRST_LOAD_LATENCY_MS` says otherwise),
//! so both clients are bound by the rate limit alone: the best case for the sequential client,
//! whose wall time grows with every millisecond of latency while pluvo-sync's four requests in
//! flight hide it.
//!
//! Knobs (environment): `FIRST_LOAD_RATE` (20 req/s: the simulator's limit, with a burst of a
//! second's worth, and both clients' `rate_per_second`), `FIRST_LOAD_PEOPLE` (10000),
//! `FIRST_LOAD_BASELINE_PEOPLE` (300; set it to `FIRST_LOAD_PEOPLE` to run the recipe in full),
//! `FIRST_LOAD_LATENCY_MS` (0), `FIRST_LOAD_BATCH_SIZE` (unset: pluvo-sync's default),
//! `FIRST_LOAD_CLIENT_BURST` (the sim's burst; 1 is pluvo-sync's shipped default).
//!
//! Prints figures; asserts nothing, so a noisy machine cannot make it flake. Run with
//! `cargo bench --bench first_load`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use common::{
    CLIENT_ID, CLIENT_SECRET, Employee, MAPPING, build_engine, complete_users, env_number,
    export_csv, people, print_run, run_once, tally,
};
use pluvo_sim::{Faults, Seed, SimConfig, SimHandle, Stats};
use pluvo_sync::domain::CategoryValue;
use pluvo_sync::domain::{CategoryRef, Email, EmployeeRef, GroupRef, Language, Role};
use pluvo_sync::metrics::Metrics;
use pluvo_sync::pluvo::{
    CategoryUpdate, PluvoClient, PluvoSettings, Selector, UserFields, UserUpsert,
};
use secrecy::SecretString;

/// The limit the issue names, enforced by the simulator (429 above it) and configured in the
/// client, unless `FIRST_LOAD_RATE` says otherwise.
const RATE: f64 = 20.0;

/// The config an operator would write for this tenant; batch size and concurrency are left at
/// their defaults on purpose.
fn config_toml(sim_url: &str, export: &Path, database: &Path, knobs: &Knobs) -> String {
    format!(
        r#"
[source.csv]
path = "{export}"

{mapping}

[pluvo]
url = "{sim_url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
rate_per_second = {rate}
burst = {client_burst}
{batch_size}
[sync]
database = "{database}"
time_zone = "Europe/Amsterdam"
"#,
        mapping = MAPPING,
        rate = knobs.rate,
        export = export.display(),
        database = database.display(),
        client_burst = knobs.client_burst,
        batch_size = knobs
            .batch_size
            .map(|n| format!("batch_size = {n}\n"))
            .unwrap_or_default(),
    )
}

async fn start_sim(knobs: &Knobs) -> anyhow::Result<SimHandle> {
    pluvo_sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            seed: Seed::example(),
            faults: Faults {
                rate: knobs.rate,
                burst: knobs.sim_burst,
                latency_ms: knobs.latency_ms,
                ..Faults::default()
            },
            ..SimConfig::default()
        },
    )
    .await
}

/// One row of the final table.
struct Row {
    label: String,
    people: usize,
    requests: u64,
    wall: Duration,
    rate_limited: u64,
}

impl Row {
    fn print(&self) {
        let secs = self.wall.as_secs_f64();
        println!(
            "  {:<44} {:>7} {:>9} {:>12} {:>9.2} {:>8.2} {:>6}",
            self.label,
            self.people,
            self.requests,
            clock_time(self.wall),
            self.requests as f64 / self.people.max(1) as f64,
            self.requests as f64 / secs.max(f64::EPSILON),
            self.rate_limited
        );
    }
}

fn clock_time(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = secs.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

fn print_stats(stats: &Stats, wall: Duration, knobs: &Knobs) {
    let secs = wall.as_secs_f64();
    let (rate, burst) = (knobs.rate, knobs.client_burst.min(knobs.sim_burst));
    println!(
        "  requests sent        {:>8}  (token {}, graphql documents {})",
        stats.requests_total, stats.token_requests, stats.graphql_documents
    );
    println!(
        "  by status            {:>8}",
        tally(&stats.requests_by_status)
    );
    println!("  429s received        {:>8}", stats.rate_limited);
    println!(
        "  achieved rate        {:>8.2} req/s over the wall time, initial burst included (limit {rate})",
        stats.requests_total as f64 / secs.max(f64::EPSILON)
    );
    // The fastest a client could send this many requests, starting with a full bucket of `burst`.
    let floor = stats.requests_total.saturating_sub(u64::from(burst)) as f64 / rate;
    println!(
        "  pacing floor         {:>8.1} s  ((requests - burst) / rate; wall time is {:.0}% of it)",
        floor,
        100.0 * secs / floor.max(f64::EPSILON)
    );
    println!("  max in flight        {:>8}", stats.max_in_flight);
    println!("  fields executed      {}", tally(&stats.fields));
}

async fn pluvo_sync_first_load(knobs: &Knobs) -> anyhow::Result<Row> {
    let total = knobs.people;
    let sim = start_sim(knobs).await?;
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("export.csv");
    let database = dir.path().join("pluvo-sync.db");
    let config = dir.path().join("pluvo-sync.toml");
    std::fs::write(&export, export_csv(&people(total)?))?;
    std::fs::write(
        &config,
        config_toml(&sim.base_url(), &export, &database, knobs),
    )?;
    let engine = build_engine(&config).await?;
    let pluvo = &engine.settings().pluvo;
    println!(
        "pluvo-sync: first load of {total} employees (rate_per_second {}, burst {}, batch_size {}, concurrency {})",
        pluvo.rate_per_second, pluvo.burst, pluvo.batch_size, pluvo.concurrency
    );

    let (run_id, report, wall) = run_once(&engine).await;
    let stats = sim.stats();

    println!("  wall time            {:>8.1} s", wall.as_secs_f64());
    print_stats(&stats, wall, knobs);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for op in engine.journal().operations_of_run(&run_id).await? {
        *kinds
            .entry(format!("{} {}", op.kind, op.status))
            .or_default() += 1;
    }
    println!("  journal ops          {}", tally(&kinds));
    print_run(&engine, &run_id, &report).await?;

    // Convergence: every employee in Pluvo, with all four fields and all three groups.
    let state = sim.state();
    let with_ref = state.users.iter().filter(|u| u.ref_.is_some()).count();
    let complete = complete_users(&state, 3);
    println!(
        "  converged            {with_ref} users with a ref ({complete} with 4 fields and 3 groups), expected {total}{}",
        if with_ref == total && complete == total {
            ""
        } else {
            "  <-- NOT CONVERGED"
        }
    );
    println!();
    Ok(Row {
        label: "pluvo-sync (measured)".to_owned(),
        people: total,
        requests: stats.requests_total,
        wall,
        rate_limited: stats.rate_limited,
    })
}

/// What the recipe sends for one person: the same user fields and custom fields pluvo-sync sends,
/// and one group (the department's).
struct RecipePerson {
    upsert: UserUpsert,
    categories: CategoryUpdate,
    group: GroupRef,
}

fn recipe_person(e: &Employee) -> anyhow::Result<RecipePerson> {
    let employee_ref = EmployeeRef::parse(&e.number)?;
    let category = |r: &str| CategoryRef::parse(r);
    Ok(RecipePerson {
        upsert: UserUpsert {
            selector: Selector::Ref(employee_ref.clone()),
            fields: UserFields {
                name: Some(format!("{} {}", e.first, e.last)),
                email: Some(Email::parse(&e.email)?),
                r#ref: Some(employee_ref.clone()),
                roles: Some(vec![Role::Participant]),
                language: Some(if e.language == "EN" {
                    Language::En
                } else {
                    Language::Nl
                }),
                archived: Some(false),
            },
        },
        categories: CategoryUpdate {
            user: employee_ref,
            values: vec![
                (
                    category("department")?,
                    CategoryValue::String(e.department.to_owned()),
                ),
                (
                    category("contract_type")?,
                    CategoryValue::Choice(e.contract.to_owned()),
                ),
                (category("has_company_car")?, CategoryValue::Boolean(e.car)),
                (category("hire_date")?, CategoryValue::Date(e.start)),
            ],
        },
        group: GroupRef::parse(&format!("dept-{}", e.department.to_lowercase()))?,
    })
}

async fn recipe_sample(knobs: &Knobs) -> anyhow::Result<[Row; 2]> {
    let (sample, total) = (knobs.sample, knobs.people);
    let sim = start_sim(knobs).await?;
    let mut settings =
        PluvoSettings::new(sim.base_url(), CLIENT_ID, SecretString::from(CLIENT_SECRET));
    settings.rate_per_second = knobs.rate;
    settings.burst = knobs.client_burst;
    settings.concurrency = 1;
    let client = PluvoClient::new(settings.resolve()?, Arc::new(Metrics::new()))?;
    let work: Vec<RecipePerson> = people(sample)?
        .iter()
        .map(recipe_person)
        .collect::<anyhow::Result<_>>()?;
    println!(
        "recipe: three sequential calls per person for {sample} people (rate_per_second {}, burst {}, concurrency 1)",
        knobs.rate, knobs.client_burst
    );

    // People sent before the sim's bucket (and the client's burst) is spent are not typical of
    // the rest; the extrapolation uses the pace after them.
    let warm_up = (knobs.client_burst as usize).min(sample / 2);
    let mut warmed_up_at = None;
    let mut failed = [0u64; 3];
    let started = Instant::now();
    for (i, person) in work.iter().enumerate() {
        if i == warm_up {
            warmed_up_at = Some(started.elapsed());
        }
        let upserted = client
            .upsert_users(std::slice::from_ref(&person.upsert))
            .await;
        failed[0] += (upserted.succeeded() != 1) as u64;
        let set = client
            .set_category_values(std::slice::from_ref(&person.categories))
            .await;
        failed[1] += (set.succeeded() != 1) as u64;
        let added = client
            .add_to_group(&person.group, std::slice::from_ref(&person.categories.user))
            .await;
        failed[2] += added
            .map(|m| m.verdict(person.categories.user.as_str(), None).is_err())
            .unwrap_or(true) as u64;
    }
    let wall = started.elapsed();
    let stats = sim.stats();

    println!("  wall time            {:>8.1} s", wall.as_secs_f64());
    print_stats(&stats, wall, knobs);
    println!(
        "  failed calls         upsert {}, categories {}, group {}",
        failed[0], failed[1], failed[2]
    );
    let state = sim.state();
    let complete = complete_users(&state, 1);
    println!(
        "  converged            {complete} users with 4 fields and 1 group, expected {sample}"
    );

    // Linear extrapolation: requests grow with people (the one-off token request is not scaled);
    // time is the measured sample plus the remaining people at the pace measured after the
    // warm-up, so the free burst at the start is not multiplied.
    let per_person_requests =
        stats.requests_total.saturating_sub(stats.token_requests) as f64 / sample as f64;
    let requests = (per_person_requests * total as f64).round() as u64 + stats.token_requests;
    let steady = wall.saturating_sub(warmed_up_at.unwrap_or_default());
    let per_person = steady.div_f64((sample - warm_up).max(1) as f64);
    let extrapolated_wall = wall + per_person.mul_f64((total - sample) as f64);
    let extrapolated_429 =
        (stats.rate_limited as f64 * total as f64 / sample as f64).round() as u64;
    println!(
        "  pace after the first {warm_up} people {:.1} ms/person ({:.2} req/s)",
        per_person.as_secs_f64() * 1e3,
        per_person_requests / per_person.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "  extrapolated from {sample} to {total} people: {requests} requests, {} ({:.0} s)",
        clock_time(extrapolated_wall),
        extrapolated_wall.as_secs_f64()
    );
    println!();
    Ok([
        Row {
            label: format!("recipe (measured, {sample} people)"),
            people: sample,
            requests: stats.requests_total,
            wall,
            rate_limited: stats.rate_limited,
        },
        Row {
            label: if sample == total {
                format!("recipe ({total} people, measured)")
            } else {
                format!("recipe (extrapolated from {sample} people)")
            },
            people: total,
            requests,
            wall: extrapolated_wall,
            rate_limited: extrapolated_429,
        },
    ])
}

/// What the environment asks for (see the module comment).
struct Knobs {
    /// The simulator's limit and the clients' `rate_per_second`.
    rate: f64,
    /// Token-bucket capacity of the simulator's limiter: a second's worth of requests, the usual
    /// shape of a per-client API limit.
    sim_burst: u32,
    people: usize,
    sample: usize,
    latency_ms: u64,
    client_burst: u32,
    batch_size: Option<u64>,
}

impl Knobs {
    fn from_env() -> anyhow::Result<Self> {
        let people = usize::try_from(env_number("FIRST_LOAD_PEOPLE", 10_000)?)?.max(1);
        let sample =
            usize::try_from(env_number("FIRST_LOAD_BASELINE_PEOPLE", 300)?)?.clamp(1, people);
        let rate = match std::env::var("FIRST_LOAD_RATE") {
            Ok(raw) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|rate| *rate > 0.0)
                .with_context(|| format!("FIRST_LOAD_RATE={raw:?} is not a positive rate"))?,
            Err(_) => RATE,
        };
        let sim_burst = (rate.round() as u32).max(1);
        // The clients use the sim's burst unless told otherwise.
        let client_burst =
            u32::try_from(env_number("FIRST_LOAD_CLIENT_BURST", sim_burst.into())?)?.max(1);
        let batch_size = match std::env::var("FIRST_LOAD_BATCH_SIZE") {
            Ok(_) => Some(env_number("FIRST_LOAD_BATCH_SIZE", 25)?),
            Err(_) => None,
        };
        Ok(Self {
            rate,
            sim_burst,
            people,
            sample,
            latency_ms: env_number("FIRST_LOAD_LATENCY_MS", 0)?,
            client_burst,
            batch_size,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let knobs = Knobs::from_env()?;
    let total = knobs.people;
    println!(
        "first_load: pluvo-sim with the example seed, rate limit {} req/s per client with a burst of {}, added latency {} ms",
        knobs.rate, knobs.sim_burst, knobs.latency_ms
    );
    println!();

    let sync = pluvo_sync_first_load(&knobs).await?;
    let [measured, extrapolated] = recipe_sample(&knobs).await?;

    println!(
        "  {:<44} {:>7} {:>9} {:>12} {:>9} {:>8} {:>6}",
        "", "people", "requests", "wall time", "req/pers", "req/s", "429s"
    );
    sync.print();
    measured.print();
    extrapolated.print();
    if sync.wall > Duration::ZERO {
        println!(
            "  speed-up at {total} people: {:.1}x in wall time, {:.1}x fewer requests",
            extrapolated.wall.as_secs_f64() / sync.wall.as_secs_f64(),
            extrapolated.requests as f64 / sync.requests.max(1) as f64
        );
    }
    Ok(())
}
