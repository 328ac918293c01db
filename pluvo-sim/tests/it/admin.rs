//! The `/_sim/` admin endpoints, and that they stay out of the stats.

use pluvo_sim::{StateView, Stats};
use serde_json::{Value, json};

use crate::TestSim;

#[tokio::test]
async fn state_stats_users_faults_reset_and_expire_tokens() {
    let t = TestSim::example().await;
    t.upsert("E1", json!({ "name": "One", "email": "one@example.com" }))
        .await;

    let state: StateView = t.admin_get("/_sim/state").await;
    assert_eq!(state, t.sim.state());
    let emails: Vec<&str> = state.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        [
            "one@example.com",
            "admin@example.com",
            "lotte.devries@example.com"
        ]
    );

    let stats: Stats = t.admin_get("/_sim/stats").await;
    assert_eq!(stats, t.sim.stats());
    assert_eq!(
        stats.requests_total, 2,
        "token + one mutation; admin calls are not counted"
    );
    assert_eq!(stats.graphql_documents, 1);
    assert_eq!(stats.fields["updateOrCreateUser"], 1);
    assert_eq!(stats.max_in_flight, 1);

    let users = json!([
        { "email": "old.timer@example.com", "name": "Old Timer" },
        { "ref": "X1", "email": "x1@example.com", "name": "X", "groups": ["dept-hr"] },
    ]);
    assert_eq!(t.admin_post("/_sim/users", &users).await.status(), 200);
    assert_eq!(t.sim.state().user("X1").unwrap().groups, vec!["dept-hr"]);
    let duplicate = json!([{ "email": "ONE@example.com", "name": "Dup" }]);
    assert_eq!(t.admin_post("/_sim/users", &duplicate).await.status(), 422);
    assert_eq!(t.sim.state().users.len(), 5, "a rejected batch adds nobody");

    let knobs: Value = t
        .admin_post("/_sim/faults", &json!({ "fault_5xx": 1.0 }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(knobs["fault_5xx"], 1.0);
    assert_eq!(knobs["token_ttl"], 86_400, "other knobs unchanged");
    assert_eq!(t.sim.faults().fault_5xx, 1.0);
    assert_eq!(t.upsert("E2", json!({})).await.0 / 100, 5);
    assert_eq!(
        t.admin_post("/_sim/faults", &json!({ "fault_typo": 1 }))
            .await
            .status(),
        422
    );
    t.admin_post("/_sim/faults", &json!({ "fault_5xx": 0.0 }))
        .await;

    assert_eq!(
        t.admin_post("/_sim/reset", &json!(null)).await.status(),
        204
    );
    assert_eq!(t.sim.state().users.len(), 2, "back to the seed");
    assert_eq!(t.sim.stats(), Stats::default());
    assert_eq!(
        t.sim.state(),
        TestSim::example().await.sim.state(),
        "seeded ids are deterministic"
    );

    assert_eq!(
        t.admin_post("/_sim/expire-tokens", &json!(null))
            .await
            .status(),
        204
    );
    assert_eq!(t.gql("{ extraCategories { ref } }", json!({})).await.0, 401);
}

#[tokio::test]
async fn in_flight_counts_concurrent_requests() {
    let t = TestSim::with(pluvo_sim::Faults {
        latency_ms: 200,
        ..Default::default()
    })
    .await;
    let q = "{ extraCategories { ref } }";
    let (a, b, c) = tokio::join!(
        t.gql(q, json!({})),
        t.gql(q, json!({})),
        t.gql(q, json!({}))
    );
    assert_eq!((a.0, b.0, c.0), (200, 200, 200));
    assert_eq!(t.sim.stats().max_in_flight, 3);
}
