//! A run that loses its lease mid-run (paused past its expiry, or taken over) sends nothing more.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pluvo_sync::sync::engine::RunOptions;

use pluvo_sync::domain::{RunStatus, Trigger};
use pluvo_sync::service::lease::Lease;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Employee, TestEnv, employee};

fn many(count: usize) -> Vec<Employee> {
    (0..count)
        .map(|i| {
            employee(
                &format!("{:06}", 1000 + i),
                &format!("First{i}"),
                &format!("Last{i}"),
                "Sales",
                "Amsterdam",
            )
        })
        .collect()
}

/// How the lease goes: the clock jumps past the expiry (what a process resuming from SIGSTOP
/// sees) and another process takes it, or another process takes it and a renewal notices.
#[derive(Debug, Clone, Copy)]
enum Loss {
    PausedPastExpiry,
    TakenOverAndRenewalNotices,
}

async fn lose_mid_run(loss: Loss) {
    let mut env = TestEnv::start().await;
    // Slow, one request at a time, so the run is mid-way for seconds.
    env.reconfigure(|text| {
        text.replace("rate_per_second = 500", "rate_per_second = 20")
            .replace("burst = 20", "burst = 1")
            .replace("concurrency = 4", "concurrency = 1")
            .replace("batch_size = 4", "batch_size = 1")
    })
    .await;
    env.write_export(&many(80));
    let run_id = uuid::Uuid::new_v4().to_string();
    let lease = env.lease();
    let guard = lease.try_acquire(&run_id).await.unwrap().unwrap();

    let run = env.engine().run_once(
        run_id.clone(),
        Trigger::Cli,
        RunOptions::default(),
        CancellationToken::new(),
        &guard,
    );
    let drive = async {
        for _ in 0..500 {
            if env.stats().graphql_documents >= 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(env.stats().graphql_documents >= 5, "the run got going");
        match loss {
            Loss::PausedPastExpiry => {
                env.clock.advance(chrono::Duration::seconds(61));
            }
            Loss::TakenOverAndRenewalNotices => {
                sqlx::query("UPDATE run_lease SET owner = 'other-host:1:0badcafe'")
                    .execute(env.journal().pool())
                    .await
                    .unwrap();
            }
        }
        let at_loss = env.stats().graphql_documents;
        match loss {
            Loss::PausedPastExpiry => {
                // Another process (its own pool on the same file) takes the lapsed lease.
                let other = pluvo_sync::db::open(&env.database).await.unwrap();
                let taken = Lease::for_runs(other, env.engine().clock().clone())
                    .try_acquire("the-new-holder")
                    .await
                    .unwrap();
                assert!(taken.is_some(), "the lapsed lease is free to take");
                std::mem::forget(taken);
            }
            Loss::TakenOverAndRenewalNotices => {
                assert!(!guard.renew().await.unwrap(), "the renewal finds it lost");
            }
        }
        at_loss
    };
    let (report, at_loss) = tokio::join!(run, drive);
    let after = env.stats().graphql_documents;
    // One request may have passed the check just before the loss and be on the wire; nothing
    // may be sent after it. Without the stop the run went on at 20 requests a second.
    assert!(
        after <= at_loss + 1,
        "{loss:?}: {} request(s) reached Pluvo after the lease was lost",
        after - at_loss
    );
    assert_eq!(report.status, RunStatus::Aborted, "{loss:?}: {report:?}");
    assert!(
        report.errors[0].contains("run lease was lost"),
        "{loss:?}: {:?}",
        report.errors
    );
    // Whether a call was already queued at the instant of the loss is a matter of timing: such a
    // call is journaled `skipped`, the rest are counted as remaining. Never is one `failed`.
    let failed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM operations WHERE run_id = ?1 AND status = 'failed'",
    )
    .bind(&run_id)
    .fetch_one(env.journal().pool())
    .await
    .unwrap();
    assert_eq!(
        failed, 0,
        "{loss:?}: a call the loss kept back is not a failure"
    );
    assert!(
        report.errors[0].contains("operation(s) remained for the next run"),
        "{loss:?}: {:?}",
        report.errors
    );
}

#[tokio::test]
async fn a_run_paused_past_its_lease_sends_nothing_once_resumed() {
    lose_mid_run(Loss::PausedPastExpiry).await;
}

#[tokio::test]
async fn a_run_whose_renewal_finds_the_lease_taken_stops_sending() {
    lose_mid_run(Loss::TakenOverAndRenewalNotices).await;
}
