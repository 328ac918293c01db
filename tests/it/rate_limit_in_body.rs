//! A server that refuses requests for their rate with HTTP 200 and a `RATE_LIMITED` GraphQL
//! error, not a 429: the sync slows down and converges as it does behind 429s.

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Faults, Seed, SimConfig};
use pluvo_sync::domain::RunStatus;

use crate::helpers::{TestEnv, staff};

#[tokio::test]
async fn rate_limits_answered_in_the_body_slow_the_sync_down_and_it_converges() {
    let env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults {
            rate: 4.0,
            burst: 2,
            rate_limit_in_body: true,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let stats = env.stats();
    assert!(stats.rate_limited >= 1, "the limit was met: {stats:?}");
    assert_eq!(
        stats.requests_by_status.get(&429),
        None,
        "refused in the body only"
    );
    let state = env.state();
    for row in staff() {
        assert!(state.user(&row.number).is_some(), "{}", row.number);
    }
    assert_eq!(
        env.metrics.get("pluvo_rate_limited_total", vec![]),
        stats.rate_limited as f64,
        "each refusal heard as a 429"
    );
    let rate = env.metrics.get("pluvo_request_rate_per_second", vec![]);
    assert!(rate < 500.0, "the client slowed down from 500/s: {rate}");
}
