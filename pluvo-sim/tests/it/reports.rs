//! Portfolio reports and last-login filters over HTTP: rows for participants (directly and via
//! a group) and for certificates, progress and certificates set through the admin API, paging
//! and filters.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::TestSim;
use crate::trainings::with_people;

const REPORT: &str = "query($first: Int, $after: String, $users: [UUID!], $groups: [UUID!],
    $types: [PortfolioRelatedObjectType!], $from: Date, $to: Date) {
  portfolioReport(first: $first, after: $after, userIds: $users, userGroupIds: $groups,
      relatedObjectTypes: $types, completionDateFrom: $from, completionDateTo: $to) {
    count pageInfo { hasNextPage endCursor }
    edges { cursor node { user { ref email } title relatedObjectType progress score completionDate endDate timeSpent { days seconds } } } } }";

/// E1..E3 in onboarding (plus Lotte from the seed), E1 in dept-engineering (so in safety-2024
/// via the group), E1's progress set, and a certificate for E2.
async fn with_learning() -> TestSim {
    let t = TestSim::example().await;
    with_people(&t).await;
    t.data(
        "mutation { addUsersToTraining(trainingRef: \"onboarding\", userRefs: [\"E1\", \"E2\", \"E3\"], sendInvites: false) { addedRefs }
           addUsersToGroup(groupRef: \"dept-engineering\", userRefs: [\"E1\"]) { addedIds } }",
        json!({}),
    )
    .await;
    let response = t
        .admin_post(
            "/_sim/progress",
            &json!([{ "training": "onboarding", "user": "E1", "progress": 100.0, "score": 8.5,
                      "completion_date": "2026-02-10", "time_spent_seconds": 90061 }]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = t
        .admin_post(
            "/_sim/certificates",
            &json!([{ "user": "E2", "title": "Forklift", "completion_date": "2026-03-01", "expiry_date": "2028-03-01" }]),
        )
        .await;
    assert_eq!(response.status(), 200);
    t
}

fn rows(data: &Value) -> Vec<(String, String, String)> {
    data["portfolioReport"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            let who = n["user"]["ref"]
                .as_str()
                .or(n["user"]["email"].as_str())
                .unwrap();
            (
                who.to_owned(),
                n["title"].as_str().unwrap().to_owned(),
                n["relatedObjectType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(who: &str, title: &str, kind: &str) -> (String, String, String) {
    (who.to_owned(), title.to_owned(), kind.to_owned())
}

#[tokio::test]
async fn the_report_has_a_row_per_participant_and_per_certificate() {
    let t = with_learning().await;
    let data = t.data(REPORT, json!({})).await;
    assert_eq!(
        rows(&data),
        vec![
            row("E1", "Safety basics 2024", "TRAINING"),
            row(
                "lotte.devries@example.com",
                "Onboarding journey",
                "TRAINING"
            ),
            row("E1", "Onboarding journey", "TRAINING"),
            row("E2", "Onboarding journey", "TRAINING"),
            row("E3", "Onboarding journey", "TRAINING"),
            row("admin@example.com", "First aid", "CERTIFICATE"),
            row("E2", "Forklift", "CERTIFICATE"),
        ],
        "training rows by training, then people in creation order; the admin is TRAINER of \
         onboarding, not a participant: no row"
    );
    let e1 = &data["portfolioReport"]["edges"][2]["node"];
    assert_eq!(
        (
            e1["progress"].clone(),
            e1["score"].clone(),
            e1["completionDate"].clone(),
            e1["timeSpent"].clone()
        ),
        (
            json!(100.0),
            json!(8.5),
            json!("2026-02-10"),
            json!({ "days": 1, "seconds": 3661 })
        )
    );
    let lotte = &data["portfolioReport"]["edges"][1]["node"];
    assert_eq!(lotte["progress"], 40.0, "from the seed");
    let cert = &data["portfolioReport"]["edges"][6]["node"];
    assert_eq!(
        (cert["completionDate"].clone(), cert["endDate"].clone()),
        (json!("2026-03-01"), json!("2028-03-01"))
    );

    let refused = t
        .admin_post(
            "/_sim/progress",
            &json!([{ "training": "safety-2024", "user": "E2", "progress": 10.0 }]),
        )
        .await;
    assert_eq!(
        refused.status(),
        422,
        "E2 does not take part in safety-2024"
    );
    let refused = t
        .admin_post(
            "/_sim/certificates",
            &json!([{ "user": "E404", "title": "X", "completion_date": "2026-01-01" }]),
        )
        .await;
    assert_eq!(refused.status(), 422);
}

#[tokio::test]
async fn the_report_pages_with_first_and_after_to_the_end() {
    let t = with_learning().await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let data = t.data(REPORT, json!({ "first": 3, "after": after })).await;
        assert_eq!(data["portfolioReport"]["count"], 7);
        seen.extend(rows(&data));
        pages += 1;
        let info = &data["portfolioReport"]["pageInfo"];
        if !info["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(info["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!((pages, seen.len()), (3, 7));
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        7,
        "no row twice"
    );
    let (status, body) = t.gql(REPORT, json!({ "first": 51 })).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_report_filters_by_user_group_type_and_completion_date() {
    let t = with_learning().await;
    let state = t.sim.state();
    let e2 = state.user("E2").unwrap().id.clone();
    let group: Value = t
        .data("{ group(ref: \"dept-engineering\") { id } }", json!({}))
        .await;
    let group = group["group"]["id"].clone();
    let cases = [
        (
            "by user",
            json!({ "users": [e2] }),
            vec![
                row("E2", "Onboarding journey", "TRAINING"),
                row("E2", "Forklift", "CERTIFICATE"),
            ],
        ),
        (
            "by group",
            json!({ "groups": [group] }),
            vec![
                row("E1", "Safety basics 2024", "TRAINING"),
                row("E1", "Onboarding journey", "TRAINING"),
            ],
        ),
        (
            "certificates",
            json!({ "types": ["CERTIFICATE"] }),
            vec![
                row("admin@example.com", "First aid", "CERTIFICATE"),
                row("E2", "Forklift", "CERTIFICATE"),
            ],
        ),
        (
            "completed in range",
            json!({ "from": "2026-01-01", "to": "2026-02-28" }),
            vec![row("E1", "Onboarding journey", "TRAINING")],
        ),
        (
            "certificates from",
            json!({ "types": ["CERTIFICATE"], "from": "2026-01-01" }),
            vec![row("E2", "Forklift", "CERTIFICATE")],
        ),
        ("courses", json!({ "types": ["COURSE"] }), vec![]),
    ];
    for (name, vars, expected) in cases {
        let data = t.data(REPORT, vars).await;
        assert_eq!(rows(&data), expected, "case {name}");
        assert_eq!(
            data["portfolioReport"]["count"],
            expected.len(),
            "case {name}"
        );
    }
    let (_, body) = t.gql(REPORT, json!({ "from": "01-02-2026" })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

#[tokio::test]
async fn last_login_is_settable_through_the_admin_api_and_filters_users() {
    let t = TestSim::example().await;
    with_people(&t).await;
    let response = t
        .admin_post(
            "/_sim/last-login",
            &json!([{ "user": "E1", "last_login": "2026-01-10T08:00:00Z" },
                    { "user": "lotte.devries@example.com", "last_login": "2025-06-01" }]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let q = "query($lt: DateTime, $gt: DateTime) { paginatedUsers(archived: false, lastLogin_Lt: $lt, lastLogin_Gt: $gt) {
      edges { node { email lastLogin } } } }";
    let emails = |data: &Value| -> Vec<String> {
        data["paginatedUsers"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases = [
        (
            "inactive since 2026",
            json!({ "lt": "2026-01-01T00:00:00Z" }),
            vec!["lotte.devries@example.com", "admin@example.com"],
        ),
        (
            "active in 2026",
            json!({ "gt": "2026-01-01T00:00:00Z" }),
            vec!["u1@example.com"],
        ),
        (
            "window",
            json!({ "gt": "2025-01-01T00:00:00Z", "lt": "2026-01-01T00:00:00Z" }),
            vec!["lotte.devries@example.com"],
        ),
    ];
    for (name, vars, expected) in cases {
        assert_eq!(emails(&t.data(q, vars).await), expected, "case {name}");
    }
    // Cleared: never logged in, so in neither filter.
    t.admin_post(
        "/_sim/last-login",
        &json!([{ "user": "E1", "last_login": null }]),
    )
    .await;
    assert!(emails(&t.data(q, json!({ "gt": "2026-01-01T00:00:00Z" })).await).is_empty());
    let refused = t
        .admin_post("/_sim/last-login", &json!([{ "user": "E2", "last_login": "soon" }, { "user": "E3", "last_login": "2026-01-01" }]))
        .await;
    assert_eq!(refused.status(), 422);
    assert!(
        emails(&t.data(q, json!({ "gt": "2025-12-01T00:00:00Z" })).await).is_empty(),
        "all or nothing: E3 was not changed"
    );
}
