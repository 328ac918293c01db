//! `pluvo-sync run` as a spawned service: admin listener, schedule, SIGTERM, start-up errors.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use pluvo_sim::{Faults, Seed, SimConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Employee, SHUTDOWN_GRACE, TRIGGER_TOKEN, TestEnv, assert_each_employee_once, employee,
    pluvo_sync_command, run, service_tables, wait_until,
};

/// A schedule that never fires during a test: only the trigger and `run_on_start` start runs.
pub const NEVER: &str = "[schedule]\ncron = \"0 0 3 1 1 * 2099\"\n";

/// Shutdown may take the grace period plus the listener's drain; the rest is slack for a busy
/// machine.
pub const EXIT_WITHIN: std::time::Duration = SHUTDOWN_GRACE.saturating_mul(4);

pub fn slow_sim(latency_ms: u64) -> SimConfig {
    SimConfig {
        seed: Seed::example(),
        faults: Faults {
            latency_ms,
            ..Faults::default()
        },
        ..SimConfig::default()
    }
}

/// Metric samples by series (name with labels), from Prometheus text.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn the_admin_listener_triggers_reports_and_measures_runs() {
    let env = TestEnv::start_with(slow_sim(200)).await;
    let mut service = env.start_service(NEVER).await;

    assert_eq!(service.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(service.get("/readyz").await.status(), StatusCode::OK);
    assert_eq!(
        service.get("/v1/runs/latest").await.status(),
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        service.trigger(None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        service.trigger(Some("not-the-token")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let accepted = service.trigger(Some(TRIGGER_TOKEN)).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let run_id = accepted.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The sim answers every request after 200 ms, so the run is certainly still going.
    let second = service.trigger(Some(TRIGGER_TOKEN)).await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let conflict: Value = second.json().await.unwrap();
    assert_eq!(
        conflict["holder"]["run_id"],
        run_id.as_str(),
        "{conflict:#}"
    );

    // The run is journaled before the 202 is sent, so the latest run is already this one.
    let right_away: Value = service.get("/v1/runs/latest").await.json().await.unwrap();
    assert_eq!(right_away["id"], run_id.as_str(), "{right_away:#}");

    // Its status once it ends.
    let mut latest = Value::Null;
    wait_until("the triggered run is journaled as finished", async || {
        let response = service.get("/v1/runs/latest").await;
        if response.status() != StatusCode::OK {
            return false;
        }
        latest = response.json().await.unwrap();
        latest["id"] == run_id.as_str() && latest["status"] != "running"
    })
    .await;
    assert_eq!(latest["status"], "ok", "{latest:#}");
    assert_eq!(latest["trigger"], "http");
    assert_eq!(latest["plan_summary"]["create"], 6, "{latest:#}");

    let metrics = service.get("/metrics").await.text().await.unwrap();
    let samples = samples(&metrics);
    assert_eq!(
        samples.get("pluvo_sync_runs_total{status=\"ok\"}"),
        Some(&1.0),
        "{metrics}"
    );
    let sum = |prefix: &str| -> f64 {
        samples
            .iter()
            .filter(|(series, _)| series.starts_with(prefix))
            .map(|(_, value)| value)
            .sum()
    };
    assert!(sum("pluvo_requests_total{") >= 1.0, "{metrics}");
    assert_eq!(sum("pluvo_sync_operations_total{"), 30.0, "{metrics}");

    service.terminate().await;
    assert_eq!(
        service.exit_code(EXIT_WITHIN).await,
        0,
        "{}",
        service.logs()
    );
}

#[tokio::test]
async fn the_schedule_fires_and_its_runs_are_journaled() {
    let env = TestEnv::start().await;
    let mut service = env
        .start_service("[schedule]\ncron = \"*/2 * * * * *\"\n")
        .await;

    wait_until("two scheduled runs have finished", async || {
        let runs = env.journal().runs(10).await.unwrap();
        runs.iter()
            .filter(|r| r.trigger.as_str() == "schedule" && r.status.as_str() == "ok")
            .count()
            >= 2
    })
    .await;
    let runs = env.journal().runs(10).await.unwrap();
    assert!(
        runs.iter().all(|r| r.trigger.as_str() == "schedule"),
        "only the schedule started runs: {runs:#?}"
    );
    assert_eq!(env.state().user("000124").unwrap().name, "Thijs Berg");

    service.terminate().await;
    assert_eq!(
        service.exit_code(EXIT_WITHIN).await,
        0,
        "{}",
        service.logs()
    );
}

/// `count` people with unique numbers and addresses, spread over the example tenant's groups.
/// Starts the service with a run on start, waits until `condition` (named `what`) holds, sends
/// SIGTERM, and asserts the service exits 0; returns the latest run and the service's logs.
pub async fn sigterm_mid_run(
    env: &TestEnv,
    what: &str,
    condition: impl AsyncFnMut() -> bool,
) -> (pluvo_sync::sync::journal::Run, String) {
    let mut service = env
        .start_service(&format!("{NEVER}run_on_start = true\n"))
        .await;
    wait_until(what, condition).await;
    service.terminate().await;
    assert_eq!(
        service.exit_code(EXIT_WITHIN).await,
        0,
        "{}",
        service.logs()
    );
    let run = env.journal().latest_run().await.unwrap().unwrap();
    (run, service.logs())
}

/// A sim answering after `latency_ms`, an export of `count` new people, and a config sending
/// one request at a time with two people per document: a first load that takes a while.
pub async fn one_call_at_a_time(latency_ms: u64, count: usize) -> (TestEnv, Vec<Employee>) {
    let env = TestEnv::start_with(slow_sim(latency_ms)).await;
    let people = many_employees(count);
    env.write_export(&people);
    env.edit_config(|t| {
        t.replace("concurrency = 4", "concurrency = 1")
            .replace("batch_size = 4", "batch_size = 2")
    });
    (env, people)
}

pub fn many_employees(count: usize) -> Vec<Employee> {
    let departments = ["Sales", "Engineering", "Finance", "HR"];
    let locations = ["Amsterdam", "Utrecht", "Rotterdam"];
    (0..count)
        .map(|i| {
            employee(
                &format!("{:06}", 200 + i),
                &format!("Person{i:02}"),
                "Tester",
                departments[i % departments.len()],
                locations[i % locations.len()],
            )
        })
        .collect()
}

#[tokio::test]
async fn sigterm_mid_run_exits_0_journals_aborted_and_the_next_sync_completes_it() {
    // The creates alone take about 6 s.
    let (env, people) = one_call_at_a_time(300, 40).await;
    let mut service = env
        .start_service(&format!("{NEVER}run_on_start = true\n"))
        .await;

    let created = || {
        env.state()
            .users
            .iter()
            .filter(|u| u.ref_.is_some())
            .count()
    };
    wait_until("some people are created", async || created() >= 2).await;
    assert!(created() < people.len(), "the run ended before SIGTERM");
    service.terminate().await;
    assert_eq!(
        service.exit_code(EXIT_WITHIN).await,
        0,
        "{}",
        service.logs()
    );
    assert!(created() < people.len(), "the run went on after SIGTERM");

    let run = env.journal().latest_run().await.unwrap().unwrap();
    assert_eq!(
        (run.trigger.as_str(), run.status.as_str()),
        ("startup", "aborted"),
        "{run:#?}"
    );
    assert_eq!(run.counts.ops_planned, 200, "five operations per person");
    assert!(run.counts.ops_ok >= 2, "{run:#?}");
    // Everything not done and not refused is left for the next run, skipped operations included.
    let remained = run.counts.ops_planned - run.counts.ops_ok - run.counts.ops_failed;
    let summary = run.error_summary.unwrap_or_default();
    assert!(
        summary.contains(&format!(
            "aborted by shutdown; {remained} operation(s) remained for the next run"
        )),
        "{summary}"
    );

    let mut faults = env.sim.faults();
    faults.latency_ms = 0;
    env.sim.set_faults(faults);
    env.run_cli(&["sync"]).await.assert_code(0);
    assert_each_employee_once(&env.state(), &people);
    assert_eq!(env.stats().invitations, 0);
}

#[tokio::test]
async fn bad_start_up_input_exits_2_naming_the_problem() {
    let env = TestEnv::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let server = service_tables();
    let cases = [
        ("no-schedule", server.clone(), "schedule.cron".to_owned()),
        (
            "malformed-cron",
            format!("[schedule]\ncron = \"every night at 3\"\n{server}"),
            "schedule.cron".to_owned(),
        ),
        (
            "unknown-zone",
            format!("{NEVER}time_zone = \"Mars/Olympus_Mons\"\n{server}"),
            "schedule.time_zone".to_owned(),
        ),
        (
            "no-token",
            format!("{NEVER}[server]\nlisten = \"127.0.0.1:0\"\n"),
            "server.trigger_token".to_owned(),
        ),
        (
            "port-in-use",
            format!("{NEVER}{}", server.replace("127.0.0.1:0", &taken_addr)),
            taken_addr.clone(),
        ),
    ];
    for (name, tables, expected) in cases {
        let config = env.config_variant(name, |t| format!("{t}\n{tables}"));
        let out = run(pluvo_sync_command().arg("--config").arg(&config).arg("run")).await;
        assert_eq!(out.code, 2, "{name}: {out:#?}");
        assert!(
            out.stderr.contains(&expected),
            "{name}: {expected} not named: {out:#?}"
        );
    }
    assert!(
        env.journal().runs(10).await.unwrap().is_empty(),
        "no run started"
    );
    assert_eq!(env.stats().requests_total, 0);
    drop(taken);
}

/// A call parked behind a long `Retry-After` (or in a backoff sleep) is not "in flight": on
/// SIGTERM it must give up its wait, so the run still ends `aborted` within the grace period
/// instead of being cut off with its journal entry left `running`.
#[tokio::test]
async fn sigterm_while_pluvo_asks_to_wait_still_aborts_the_run_within_the_grace_period() {
    // Four requests, then 429 with a Retry-After of about 50 s: far past the 5 s grace.
    let env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults {
            rate: 0.02,
            burst: 4,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let people = many_employees(40);
    env.write_export(&people);
    let (run, _) = sigterm_mid_run(&env, "Pluvo rate-limits the run", async || {
        env.stats().rate_limited >= 1
    })
    .await;
    assert_eq!(
        (run.trigger.as_str(), run.status.as_str()),
        ("startup", "aborted"),
        "{run:#?}"
    );
    // The calls the stop interrupted were not refused by Pluvo: they are skipped, not failed.
    assert_eq!(run.counts.ops_failed, 0, "{run:#?}");
    let ops = env.journal().operations_of_run(&run.id).await.unwrap();
    assert!(ops.iter().any(|op| op.status == "skipped"), "{ops:#?}");
}
