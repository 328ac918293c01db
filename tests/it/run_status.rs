//! What the journal and the summary say about runs that did not end normally.

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Faults, Seed, SimConfig};
use pluvo_sync::domain::{RunStatus, Trigger};
use pluvo_sync::sync::engine::RunOptions;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Spawned, TestEnv, staff, wait_until};
use crate::service::{EXIT_WITHIN, one_call_at_a_time, sigterm_mid_run, slow_sim};

/// Sends `signal` (e.g. "KILL") to a spawned process through `kill(1)`.
async fn signal(process: &Spawned, signal: &str) {
    let pid = process.child.id().expect("still running").to_string();
    let status = tokio::process::Command::new("kill")
        .args([format!("-{signal}"), pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

/// The number of operations of `run_id` the journal holds with `status`.
async fn journaled(env: &TestEnv, run_id: &str, status: &str) -> u64 {
    env.journal()
        .operations_of_run(run_id)
        .await
        .unwrap()
        .iter()
        .filter(|op| op.status == status)
        .count() as u64
}

/// `kill -9` in the middle of a `sync`: the next run marks it aborted, counting the operations
/// it journaled as acknowledged, not zero.
#[tokio::test]
async fn a_killed_run_is_closed_by_the_next_run_with_what_it_journaled() {
    let (env, _) = one_call_at_a_time(200, 30).await;
    let mut sync = Spawned::spawn(env.cli().arg("sync"));
    wait_until(
        "the run has journaled some acknowledged operations",
        async || match env.journal().latest_run().await.unwrap() {
            Some(run) => journaled(&env, &run.id, "ok").await >= 2,
            None => false,
        },
    )
    .await;
    signal(&sync, "KILL").await;
    let _ = tokio::time::timeout(EXIT_WITHIN, sync.child.wait()).await;
    let killed = env.journal().latest_run().await.unwrap().unwrap();
    assert_eq!(killed.status.as_str(), "running", "nothing closed it yet");
    assert_eq!(
        killed.counts.ops_planned, 150,
        "the plan was recorded when made"
    );

    // The lease the killed process held must expire before the next run may start.
    let mut faults = env.sim.faults();
    faults.latency_ms = 0;
    env.sim.set_faults(faults);
    env.run_cli(&["sync", "--wait"]).await.assert_code(0);

    let closed = env.journal().run(&killed.id).await.unwrap().unwrap();
    assert_eq!(closed.status.as_str(), "aborted", "{closed:#?}");
    let ok = journaled(&env, &killed.id, "ok").await;
    assert!(ok >= 2, "{ok} journaled ok");
    assert_eq!(closed.counts.ops_ok, ok, "{closed:#?}");
    assert_eq!(
        closed.counts.ops_failed,
        journaled(&env, &killed.id, "failed").await
    );
    assert!(closed.finished_at.is_some());
}

/// SIGTERM while a call takes longer than the grace period: the service exits 0 and the run is
/// journaled aborted, not left `running`.
#[tokio::test]
async fn a_run_outliving_the_grace_period_is_journaled_aborted_before_exit() {
    // Every GraphQL request takes 15 s: far past the 5 s grace period.
    let env = TestEnv::start_with(slow_sim(15_000)).await;
    // The token request, then the first GraphQL request, now waiting out its latency.
    let (run, logs) = sigterm_mid_run(&env, "the run has sent its first request", async || {
        env.stats().requests_total >= 2
    })
    .await;
    assert_eq!(run.status.as_str(), "aborted", "{run:#?}\n{logs}");
    assert!(run.finished_at.is_some());
    assert!(
        run.error_summary
            .unwrap_or_default()
            .contains("grace period"),
        "{logs}"
    );
}

/// The stop arrives while the run's last call is on the wire: that call finishes, nothing was
/// left undone, so the run is `ok`, not `aborted`.
#[tokio::test]
async fn a_run_that_finished_its_work_before_the_stop_is_not_aborted() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let mut rows = staff();
    rows[0].first = "Charlotte".to_owned();
    env.write_export(&rows);
    let mut faults = env.sim.faults();
    faults.latency_ms = 1_500;
    env.sim.set_faults(faults);
    // The engine keeps its token, so the next request to arrive is the update itself.
    let before = env.stats().requests_total;

    let cancel = CancellationToken::new();
    let run = {
        let engine = env.engine().clone();
        let cancel = cancel.clone();
        let run_id = uuid::Uuid::new_v4().to_string();
        let lease = env.lease().try_acquire(&run_id).await.unwrap().unwrap();
        tokio::spawn(async move {
            let report = engine
                .run_once(run_id, Trigger::Cli, RunOptions::default(), cancel, &lease)
                .await;
            lease.release().await.unwrap();
            report
        })
    };
    wait_until("the update is on the wire", async || {
        env.stats().requests_total > before
    })
    .await;
    cancel.cancel();
    let report = run.await.unwrap();
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(report.counts.ops_ok, 1);
    assert_eq!(
        env.state().user("000123").unwrap().name,
        "Charlotte Devries"
    );
}

/// A first load during which Pluvo answers every request with a 5xx: the plan meant six
/// creates, but Pluvo acknowledged none, and the summary must say so.
#[tokio::test]
async fn a_failed_runs_summary_counts_only_what_pluvo_acknowledged() {
    let env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults {
            fault_5xx: 1.0,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let out = env.run_cli(&["sync"]).await;
    out.assert_code(1);
    assert!(
        out.stdout.contains(" failed: 0 created, 0 updated"),
        "{out:#?}"
    );

    let out = env.run_cli(&["sync", "--json"]).await;
    out.assert_code(1);
    let report = out.json();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert_eq!(
        report["summary"]["create"], 6,
        "the plan is kept: {report:#}"
    );
    assert_eq!(report["acknowledged"]["created"], 0, "{report:#}");
}

/// HR gives someone a contract type Pluvo has no option for, and a new department in the same
/// run: only the unknown option is held back (journaled with the field and the value), the
/// department is set, and the next run sends nothing for the held value until Pluvo has it.
#[tokio::test]
async fn an_unknown_choice_option_holds_back_only_that_value() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let mut rows = staff();
    rows[0].contract = "Freelance".to_owned();
    rows[0].department = "Finance".to_owned();
    env.write_export(&rows);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial, "{:?}", report.errors);
    let state = env.state();
    let user = state.user("000123").unwrap();
    assert_eq!(user.categories["department"], serde_json::json!("Finance"));
    assert_eq!(
        user.categories["contract_type"],
        serde_json::json!(["Permanent"]),
        "the unknown option was not sent"
    );
    let ops = env.journal().operations_of_person("000123").await.unwrap();
    let held = ops
        .iter()
        .find(|op| op.status.as_str() == "failed")
        .unwrap_or_else(|| panic!("{ops:#?}"));
    assert_eq!(held.target.as_deref(), Some("contract_type"));
    let error = held.error.as_deref().unwrap();
    assert!(
        error.contains("contract_type") && error.contains("Freelance"),
        "{error}"
    );

    // The next run retries only that value, and Pluvo is not asked to set it again.
    let sent = |env: &TestEnv| {
        env.stats()
            .fields
            .get("updateExtraCategoryValues")
            .copied()
            .unwrap_or(0)
    };
    let before = sent(&env);
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.summary.unwrap().operations, 1);
    assert_eq!(sent(&env), before);
}

/// One employee whose address belongs to an outside account, night after night, while nothing
/// else changes: every run is `partial`, so `/readyz` keeps saying the service is ready.
#[tokio::test]
async fn quiet_nights_with_one_unresolved_conflict_keep_the_service_ready() {
    let env = TestEnv::start().await;
    env.add_outside_account_for_thijs();
    for night in 0..4 {
        let report = env.sync().await;
        assert_eq!(
            report.status,
            RunStatus::Partial,
            "night {night}: {:?}",
            report.errors
        );
    }

    let pool = env.journal().pool().clone();
    let config = pluvo_sync::service::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        trigger_token: "t".to_owned().into(),
        ready_window: 3,
    };
    let engine: std::sync::Arc<dyn pluvo_sync::service::scheduler::Launcher> =
        std::sync::Arc::new(env.engine().clone());
    let state = pluvo_sync::service::server::AppState::new(
        &config,
        env.journal().clone(),
        pluvo_sync::service::scheduler::Runs::new(engine),
        pluvo_sync::service::lease::Lease::for_runs(pool, env.engine().clock().clone()),
        env.metrics.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(pluvo_sync::service::server::serve(
        listener,
        state,
        stop.clone(),
    ));
    let response = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    stop.cancel();
    let _ = server.await;
}
