//! addUsersToGroup / removeUsersFromGroup reporting and the membership delay.

use std::time::Duration;

use pluvo_sim::Faults;
use serde_json::{Value, json};

use crate::{TestSim, only_error};

const ADD: &str = "mutation($group: String!, $refs: [String!], $ids: [UUID!]) {
  addUsersToGroup(groupRef: $group, userRefs: $refs, userIds: $ids) { addedIds alreadyAddedIds failedIds } }";
const REMOVE: &str = "mutation($group: String!, $refs: [String!]) {
  removeUsersFromGroup(groupRef: $group, userRefs: $refs) { removedIds alreadyRemovedIds failedIds } }";

async fn with_users(t: &TestSim) -> String {
    for (r, n) in [("E1", 1), ("E2", 2)] {
        t.upsert(
            r,
            json!({ "name": format!("U{n}"), "email": format!("u{n}@example.com") }),
        )
        .await;
    }
    t.sim.state().user("E2").unwrap().id.clone()
}

#[tokio::test]
async fn membership_changes_report_per_user_as_passed() {
    let t = TestSim::example().await;
    let e2_id = with_users(&t).await;
    let data = t
        .data(
            ADD,
            json!({ "group": "dept-sales", "refs": ["E1", "E404"] }),
        )
        .await;
    assert_eq!(
        data["addUsersToGroup"],
        json!({ "addedIds": ["E1"], "alreadyAddedIds": [], "failedIds": ["E404"] })
    );
    let data = t
        .data(
            ADD,
            json!({ "group": "dept-sales", "refs": ["E1"], "ids": [e2_id] }),
        )
        .await;
    assert_eq!(
        data["addUsersToGroup"],
        json!({ "addedIds": [e2_id], "alreadyAddedIds": ["E1"], "failedIds": [] })
    );
    assert_eq!(t.sim.state().user("E1").unwrap().groups, vec!["dept-sales"]);

    let data = t
        .data(
            REMOVE,
            json!({ "group": "dept-sales", "refs": ["E1", "E1", "E404"] }),
        )
        .await;
    assert_eq!(
        data["removeUsersFromGroup"],
        json!({ "removedIds": ["E1"], "alreadyRemovedIds": ["E1"], "failedIds": ["E404"] })
    );
    assert!(t.sim.state().user("E1").unwrap().groups.is_empty());

    let (_, body) = t
        .gql(ADD, json!({ "group": "no-such-group", "refs": ["E1"] }))
        .await;
    assert_eq!(
        only_error(&body),
        (json!(["addUsersToGroup"]), "NOT_FOUND".into())
    );
    assert_eq!(body["data"]["addUsersToGroup"], Value::Null);
}

#[tokio::test]
async fn memberships_show_in_queries_only_after_the_delay() {
    let t = TestSim::with(Faults {
        membership_delay: 1,
        ..Faults::default()
    })
    .await;
    with_users(&t).await;
    t.data(ADD, json!({ "group": "dept-hr", "refs": ["E1", "E2"] }))
        .await;
    t.data(REMOVE, json!({ "group": "mentors", "refs": ["E1"] }))
        .await; // not a member: no-op
    let q =
        "{ group(ref: \"dept-hr\") { userCount users(first: 10) { count edges { node { ref } } } }
               user(ref: \"E1\") { participantGroups { ref } } }";
    let data = t.data(q, json!({})).await;
    assert_eq!(data["group"]["userCount"], 0, "not visible yet: {data}");
    assert_eq!(data["user"]["participantGroups"], json!([]));
    assert_eq!(
        t.sim.state().user("E1").unwrap().groups,
        vec!["dept-hr"],
        "but committed"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let data = t.data(q, json!({})).await;
    assert_eq!(data["group"]["userCount"], 2);
    assert_eq!(data["group"]["users"]["count"], 2);
    assert_eq!(
        data["user"]["participantGroups"],
        json!([{ "ref": "dept-hr" }])
    );

    // Removal is delayed in the same way.
    t.data(REMOVE, json!({ "group": "dept-hr", "refs": ["E2"] }))
        .await;
    assert_eq!(t.data(q, json!({})).await["group"]["userCount"], 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(t.data(q, json!({})).await["group"]["userCount"], 1);
}

#[tokio::test]
async fn seeded_groups_and_managers_are_queryable() {
    let t = TestSim::example().await;
    let data = t.data("{ paginatedGroups(q: \"dept\") { count } group(ref: \"mentors\") { name userCount managers { edges { node { email } } } } }", json!({})).await;
    assert_eq!(data["paginatedGroups"]["count"], 4);
    assert_eq!(data["group"]["userCount"], 1);
    assert_eq!(
        data["group"]["managers"]["edges"][0]["node"]["email"],
        "admin@example.com"
    );
}
