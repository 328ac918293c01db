//! Relay paging over more than one page, page-size limit and filters.

use serde_json::{Value, json};

use crate::{TestSim, only_error};

const PAGE: &str = "query($after: String, $first: Int, $q: String, $archived: Boolean) {
  paginatedUsers(first: $first, after: $after, q: $q, archived: $archived) {
    count pageInfo { hasNextPage endCursor } edges { cursor node { ref } } } }";

#[tokio::test]
async fn cursors_walk_all_users_and_first_is_capped_at_50() {
    let t = TestSim::example().await;
    let users: Vec<pluvo_sim::SeedUser> = (0..118)
        .map(|i| pluvo_sim::SeedUser {
            ref_: Some(format!("P{i:03}")),
            email: format!("p{i}@example.com"),
            name: format!("Person {i}"),
            archived: i % 10 == 0,
            ..Default::default()
        })
        .collect();
    t.sim.add_users(users).unwrap();

    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let data = t.data(PAGE, json!({ "first": 50, "after": after })).await;
        let connection = &data["paginatedUsers"];
        assert_eq!(connection["count"], 120);
        seen.extend(
            connection["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["ref"].clone()),
        );
        pages += 1;
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    let refs: std::collections::BTreeSet<_> = seen.iter().filter_map(Value::as_str).collect();
    assert_eq!(
        refs.len(),
        118,
        "every ref exactly once (plus the two seeded users without one)"
    );

    let (_, body) = t.gql(PAGE, json!({ "first": 51 })).await;
    assert_eq!(
        only_error(&body),
        (json!(["paginatedUsers"]), "BAD_USER_INPUT".into())
    );

    let t = &t;
    let count = |v: Value| async move { t.data(PAGE, v).await["paginatedUsers"]["count"].clone() };
    assert_eq!(count(json!({ "archived": true })).await, 12);
    assert_eq!(count(json!({ "q": "person 11" })).await, 9, "11, 110..117");
    assert_eq!(
        count(json!({ "q": "ADMIN@" })).await,
        1,
        "q matches email, case-insensitively"
    );
    let offset = t
        .data(
            "{ paginatedUsers(first: 1, offset: 5) { edges { node { ref } } } }",
            json!({}),
        )
        .await;
    assert_eq!(offset["paginatedUsers"]["edges"][0]["node"]["ref"], "P003");
}

#[tokio::test]
async fn role_group_and_last_login_filters() {
    let t = TestSim::example().await;
    let q = "query($roles: [Role!], $gt: DateTime, $lt: DateTime, $groups: [UUID!]) {
      paginatedUsers(userRoles: $roles, lastLogin_Gt: $gt, lastLogin_Lt: $lt, groupIds: $groups) { count } }";
    let t = &t;
    let count = |v: Value| async move { t.data(q, v).await["paginatedUsers"]["count"].clone() };
    assert_eq!(count(json!({ "roles": ["AUTHOR"] })).await, 1);
    assert_eq!(count(json!({ "gt": "2024-01-01T00:00:00Z" })).await, 1);
    assert_eq!(count(json!({ "lt": "2024-01-01T00:00:00Z" })).await, 0);
    let mentors = t
        .data("{ group(ref: \"mentors\") { id } }", json!({}))
        .await["group"]["id"]
        .clone();
    assert_eq!(count(json!({ "groups": [mentors] })).await, 1);
}
