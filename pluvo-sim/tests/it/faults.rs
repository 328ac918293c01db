//! Rate limiting and injected faults: 5xx, dropped connections, drops after commit.

use pluvo_sim::Faults;
use serde_json::json;

use crate::TestSim;

const QUERY: &str = "{ extraCategories { ref } }";

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let t = TestSim::with(Faults {
        rate: 0.5,
        burst: 3,
        ..Faults::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = t
            .http
            .post(t.url("/graphql/"))
            .bearer_auth(&t.token)
            .json(&json!({ "query": QUERY }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    assert_eq!(
        retry_after.as_deref(),
        Some("2"),
        "ceil(1 / 0.5 per second)"
    );
    let stats = t.sim.stats();
    assert_eq!(stats.rate_limited, 2);
    assert_eq!(stats.requests_by_status[&429], 2);
}

#[tokio::test]
async fn server_errors_come_before_execution() {
    let t = TestSim::with(Faults {
        fault_5xx: 1.0,
        ..Faults::default()
    })
    .await;
    for _ in 0..5 {
        let (status, _) = t
            .upsert("E1", json!({ "name": "One", "email": "one@example.com" }))
            .await;
        assert!([500, 502, 503].contains(&status), "{status}");
    }
    assert!(t.sim.state().user("E1").is_none(), "nothing executed");
    assert_eq!(t.sim.stats().faults["5xx"], 5);
}

#[tokio::test]
async fn reset_drops_the_connection_without_executing() {
    let t = TestSim::with(Faults {
        fault_reset: 1.0,
        ..Faults::default()
    })
    .await;
    let result = t
        .try_gql(
            crate::UPSERT_BY_REF,
            json!({ "ref": "E1", "user": { "name": "One", "email": "one@example.com" } }),
        )
        .await;
    let error = result.expect_err("the client must see a transport error, not an HTTP response");
    assert!(error.status().is_none(), "{error:?}");
    assert!(t.sim.state().user("E1").is_none());
    assert_eq!(t.sim.stats().faults["reset"], 1);
}

#[tokio::test]
async fn after_commit_drop_leaves_the_write_in_place() {
    let t = TestSim::with(Faults {
        fault_after_commit: 1.0,
        ..Faults::default()
    })
    .await;
    // Queries are never affected.
    assert_eq!(t.gql(QUERY, json!({})).await.0, 200);
    let result = t
        .try_gql(
            crate::UPSERT_BY_REF,
            json!({ "ref": "E1", "user": { "name": "One", "email": "one@example.com" } }),
        )
        .await;
    assert!(
        result.is_err(),
        "the client must see a transport error: {result:?}"
    );
    assert_eq!(
        t.sim.state().user("E1").unwrap().email,
        "one@example.com",
        "but the write is committed"
    );
    assert_eq!(t.sim.stats().faults["after_commit"], 1);

    // A retry with the same call is an update: the simulator does not double-create.
    t.sim.set_faults(Faults::default());
    let (_, body) = t
        .upsert("E1", json!({ "name": "One", "email": "one@example.com" }))
        .await;
    assert_eq!(body["data"]["updateOrCreateUser"]["created"], false);
}

#[tokio::test]
async fn slow_and_latency_delay_answers() {
    let t = TestSim::with(Faults {
        fault_slow: 1.0,
        slow_ms: 300,
        latency_ms: 50,
        ..Faults::default()
    })
    .await;
    let start = std::time::Instant::now();
    assert_eq!(t.gql(QUERY, json!({})).await.0, 200);
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(350),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(t.sim.stats().faults["slow"], 1);
}

#[tokio::test]
async fn same_fault_seed_same_outcomes() {
    let run = || async {
        let t = TestSim::with(Faults {
            fault_5xx: 0.5,
            ..Faults::default()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(t.gql(QUERY, json!({})).await.0);
        }
        statuses
    };
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(
        first.contains(&200) && first.iter().any(|s| *s >= 500),
        "{first:?}"
    );
}
