//! What the journal and the summary say about runs that did not end normally.

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Faults, Seed, SimConfig};

use crate::helpers::TestEnv;

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
