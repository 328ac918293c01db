//! The `pluvo-sync` binary as an operator runs it: help, exit codes, config errors, JSON output
//! and logs, environment overrides, and the run lease across processes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use pluvo_sim::{Faults, Seed, SimConfig};
use pluvo_sync::clock::SystemClock;
use pluvo_sync::service::lease::Lease;
use serde_json::Value;

use crate::helpers::{
    CliOutput, PATIENCE, Spawned, TestEnv, assert_each_employee_once, pluvo_sync_command, run,
    staff, wait_until,
};

#[tokio::test]
async fn help_lists_the_subcommands_and_the_sync_flags() {
    let help = run(pluvo_sync_command().arg("--help")).await;
    help.assert_code(0);
    for subcommand in ["sync", "plan", "journal", "check", "run", "healthcheck"] {
        assert!(
            help.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(subcommand)),
            "--help lacks {subcommand}: {}",
            help.stdout
        );
    }
    let sync = run(pluvo_sync_command().args(["sync", "--help"])).await;
    sync.assert_code(0);
    assert!(
        sync.stdout.contains("--allow-mass-archive"),
        "{}",
        sync.stdout
    );
    assert!(sync.stdout.contains("--wait"), "{}", sync.stdout);
}

#[tokio::test]
async fn configuration_errors_exit_2_and_name_the_key() {
    let env = TestEnv::start().await;
    // (case, text in the good config, replacement, what the message must name)
    let cases = [
        (
            "unknown-key",
            "[sync]\n",
            "[sync]\ndatabse = \"typo.db\"\n",
            "databse",
        ),
        (
            "wrong-type",
            "rate_per_second = 500",
            "rate_per_second = \"fast\"",
            "pluvo.rate_per_second",
        ),
        (
            "bad-time-zone",
            "\"Europe/Amsterdam\"",
            "\"Europe/Amsterdm\"",
            "sync.time_zone",
        ),
    ];
    for (name, from, to, key) in cases {
        let config = env.config_variant(name, |t| {
            assert!(t.contains(from), "{name}: the base config lacks {from:?}");
            t.replace(from, to)
        });
        let out = run(pluvo_sync_command()
            .arg("--config")
            .arg(&config)
            .arg("sync"))
        .await;
        assert_eq!(out.code, 2, "{name}: {out:#?}");
        assert!(
            out.stderr.contains(key),
            "{name}: {key} not named: {out:#?}"
        );
    }

    let missing = env.dir.path().join("nowhere.toml");
    let out = run(pluvo_sync_command()
        .arg("--config")
        .arg(&missing)
        .arg("sync"))
    .await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("nowhere.toml") && out.stderr.contains("does not exist"),
        "{out:#?}"
    );
    assert_eq!(env.stats().requests_total, 0, "nothing reached Pluvo");
}

#[tokio::test]
async fn plan_sends_nothing_and_prints_the_plan_as_json() {
    let env = TestEnv::start().await;
    let before = env.stats().requests_total;

    let text = env.run_cli(&["plan"]).await;
    text.assert_code(0);
    assert!(text.stdout.contains("Nothing was sent"), "{text:#?}");
    let json = env.run_cli(&["plan", "--json"]).await;
    json.assert_code(0);
    let plan = json.json();
    assert_eq!(plan["plan"]["summary"]["create"], 6, "{plan:#}");
    assert_eq!(plan["rows_read"], 6);

    assert_eq!(
        env.stats().requests_total,
        before,
        "plan sent a request (not even a token is allowed)"
    );
}

#[tokio::test]
async fn sync_exit_codes_follow_the_run_status_and_the_journal_reads_back_as_json() {
    let env = TestEnv::start().await;

    let ok = env.run_cli(&["sync"]).await;
    ok.assert_code(0);
    assert_each_employee_once(&env.state(), &staff());

    let runs = env.run_cli(&["journal", "runs", "--json"]).await;
    runs.assert_code(0);
    let runs = runs.json();
    let [run] = runs.as_array().unwrap().as_slice() else {
        panic!("one run expected: {runs:#}");
    };
    assert_eq!(
        (run["status"].as_str(), run["trigger"].as_str()),
        (Some("ok"), Some("cli"))
    );
    let run_id = run["id"].as_str().unwrap();
    assert!(ok.stdout.contains(run_id), "sync names its run: {ok:#?}");

    let show = env
        .run_cli(&["journal", "show", &run_id[..8], "--json"])
        .await;
    show.assert_code(0);
    let show = show.json();
    assert_eq!(show["run"]["id"], run_id);
    let operations = show["operations"].as_array().unwrap();
    assert!(
        operations
            .iter()
            .all(|op| op["run_id"] == run_id && op["status"] == "ok"),
        "{show:#}"
    );
    let created: Vec<&str> = operations
        .iter()
        .filter(|op| op["kind"] == "create")
        .filter_map(|op| op["employee_ref"].as_str())
        .collect();
    assert!(created.contains(&"000124"), "{show:#}");

    let person = env
        .run_cli(&["journal", "person", "000124", "--json"])
        .await;
    person.assert_code(0);
    let person = person.json();
    let ops = person.as_array().unwrap();
    assert!(!ops.is_empty());
    assert!(
        ops.iter().all(|op| op["employee_ref"] == "000124"),
        "{person:#}"
    );
    assert!(ops.iter().any(|op| op["kind"] == "create"), "{person:#}");

    let unknown = env.run_cli(&["journal", "show", "no-such-run"]).await;
    unknown.assert_code(1);
    assert!(unknown.stderr.contains("no-such-run"), "{unknown:#?}");

    // One bad row: that person is skipped, the rest goes ahead, the run is partial.
    let mut rows = staff();
    rows[2].email = "not-an-address".to_owned();
    rows[3].first = "Daniel".to_owned();
    env.write_export(&rows);
    let partial = env.run_cli(&["sync"]).await;
    partial.assert_code(3);
    assert_eq!(env.state().user("000145").unwrap().name, "Daniel Jong");

    // A zero-byte file is no export at all: the run fails and nobody is archived.
    env.write_raw_export(b"");
    let failed = env.run_cli(&["sync"]).await;
    failed.assert_code(1);
    assert!(env.state().users.iter().all(|u| !u.archived));

    let statuses: Vec<String> = env
        .journal()
        .runs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status.to_string())
        .collect();
    assert_eq!(statuses, ["failed", "partial", "ok"]);
}

#[tokio::test]
async fn json_logs_carry_the_run_id_and_no_secret_or_e_mail_address() {
    let env = TestEnv::start().await;
    let out = env.run_cli(&["--log-format", "json", "sync"]).await;
    out.assert_code(0);

    let lines: Vec<Value> = out
        .stderr
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| panic!("not a JSON object: {line}"))
        })
        .collect();
    let message = |m: &str| lines.iter().find(|l| l["message"] == m);
    for expected in ["run started", "planned", "run finished"] {
        let line = message(expected).unwrap_or_else(|| panic!("no '{expected}': {out:#?}"));
        assert!(
            line.to_string().contains("\"run_id\""),
            "'{expected}' lacks the run id: {line}"
        );
    }
    assert!(
        !out.stderr.contains("sim-secret"),
        "the secret leaked: {out:#?}"
    );
    for e in staff() {
        assert!(
            !out.stderr.to_lowercase().contains(&e.email.to_lowercase()),
            "{} leaked: {out:#?}",
            e.email
        );
    }
}

#[tokio::test]
async fn an_environment_variable_overrides_the_secret_in_the_file() {
    let env = TestEnv::start().await;
    env.edit_config(|t| t.replace("\"sim-secret\"", "\"wrong-secret\""));

    env.run_cli(&["sync"]).await.assert_code(1);
    assert!(env.state().user("000124").is_none());

    let out = run(env
        .cli()
        .env("PLUVO_SYNC__PLUVO__CLIENT_SECRET", "sim-secret")
        .arg("sync"))
    .await;
    out.assert_code(0);
    assert_each_employee_once(&env.state(), &staff());
}

#[tokio::test]
async fn the_client_secret_can_come_from_a_file() {
    let env = TestEnv::start().await;
    let secret = env.dir.path().join("client-secret");
    std::fs::write(&secret, "sim-secret\n").unwrap();
    env.edit_config(|t| {
        t.replace(
            "client_secret = \"sim-secret\"",
            &format!("client_secret_file = \"{}\"", secret.display()),
        )
    });
    env.run_cli(&["sync"]).await.assert_code(0);
    assert_each_employee_once(&env.state(), &staff());
}

#[tokio::test]
async fn a_held_lease_gives_exit_4_and_wait_runs_once_it_is_released() {
    let env = TestEnv::start().await;
    let pool = pluvo_sync::db::open(&env.database).await.unwrap();
    let lease = Lease::for_runs(pool, Arc::new(SystemClock));
    let guard = lease
        .try_acquire("held-by-the-test")
        .await
        .unwrap()
        .unwrap();

    let busy = env.run_cli(&["sync"]).await;
    busy.assert_code(4);
    assert!(
        busy.stderr.contains("another run is in progress")
            && busy.stderr.contains("held-by-the-test")
            && busy.stderr.contains("--wait"),
        "{busy:#?}"
    );
    assert_eq!(env.stats().requests_total, 0, "a busy sync sends nothing");

    let mut waiting = Spawned::spawn(env.cli().args(["sync", "--wait"]));
    wait_until("sync --wait says it waits", async || {
        waiting.logs().contains("waiting for it to finish")
    })
    .await;
    assert_eq!(env.stats().requests_total, 0, "it waits before sending");
    assert!(guard.release().await.unwrap());
    assert_eq!(waiting.exit_code(PATIENCE).await, 0, "{}", waiting.logs());
    assert_each_employee_once(&env.state(), &staff());
}

/// A sim slow enough that a run lasts seconds, so two processes started together overlap.
async fn slow_env() -> TestEnv {
    TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults {
            latency_ms: 200,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn of_two_syncs_started_together_one_runs_and_the_other_exits_4() {
    let env = slow_env().await;
    let (a, b) = tokio::join!(env.run_cli(&["sync"]), env.run_cli(&["sync"]));
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(codes, [0, 4], "{a:#?}\n{b:#?}");
    let busy: &CliOutput = if a.code == 4 { &a } else { &b };
    assert!(
        busy.stderr.contains("another run is in progress"),
        "{busy:#?}"
    );
    assert_each_employee_once(&env.state(), &staff());
    assert_eq!(env.journal().runs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_syncs_with_wait_both_succeed_and_create_nobody_twice() {
    let env = slow_env().await;
    let (a, b) = tokio::join!(
        env.run_cli(&["sync", "--wait"]),
        env.run_cli(&["sync", "--wait"])
    );
    a.assert_code(0);
    b.assert_code(0);
    let state = env.state();
    assert_each_employee_once(&state, &staff());
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    for user in &state.users {
        *emails.entry(user.email.to_lowercase()).or_default() += 1;
    }
    assert!(emails.values().all(|&n| n == 1), "{emails:#?}");
    let runs = env.journal().runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.status.as_str() == "ok"), "{runs:#?}");
    assert_eq!(env.stats().invitations, 0);
}

#[tokio::test]
async fn processes_opening_a_new_database_together_all_get_its_schema() {
    let env = TestEnv::start().await;
    // The race is timing-dependent, so give it several chances to show.
    for round in 0..4 {
        let database = env.dir.path().join(format!("new-{round}.db"));
        let config = env.config_variant(&format!("new-{round}"), |t| {
            t.replace(
                &env.database.display().to_string(),
                &database.display().to_string(),
            )
        });
        let plan = async || {
            run(pluvo_sync_command()
                .arg("--config")
                .arg(&config)
                .arg("plan"))
            .await
        };
        let (a, b, c) = tokio::join!(plan(), plan(), plan());
        for out in [a, b, c] {
            out.assert_code(0);
        }
    }
}
