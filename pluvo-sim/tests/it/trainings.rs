//! Trainings over HTTP: create/update, reads and filters, membership per role with the exact
//! result lists, people linked via a group, the membership delay, and invitation counting.

use std::time::Duration;

use pluvo_sim::{ErrorStyle, Faults};
use serde_json::{Value, json};

use crate::{TestSim, only_error};

const ADD: &str = "mutation($t: String!, $refs: [String!], $ids: [UUID!], $role: TrainingRole) {
  addUsersToTraining(trainingRef: $t, userRefs: $refs, userIds: $ids, role: $role, sendInvites: false) {
    addedIds addedRefs alreadyAddedIds alreadyAddedRefs failedIds failedRefs } }";
const REMOVE: &str = "mutation($t: String!, $refs: [String!], $ids: [UUID!], $role: TrainingRole) {
  removeUsersFromTraining(trainingRef: $t, userRefs: $refs, userIds: $ids, role: $role) {
    removedIds removedRefs alreadyRemovedIds alreadyRemovedRefs idsLinkedViaObject refsLinkedViaObject
    failedIds failedRefs } }";

/// Three people, E1..E3; returns E2's id.
pub async fn with_people(t: &TestSim) -> String {
    for n in 1..=3 {
        let (status, body) = t
            .upsert(
                &format!("E{n}"),
                json!({ "name": format!("U{n}"), "email": format!("u{n}@example.com") }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    t.sim.state().user("E2").unwrap().id.clone()
}

#[tokio::test]
async fn adding_and_removing_report_each_person_in_the_form_they_were_named() {
    let t = TestSim::example().await;
    let e2 = with_people(&t).await;
    let data = t
        .data(
            ADD,
            json!({ "t": "onboarding", "refs": ["E1", "E404"], "ids": [e2] }),
        )
        .await;
    assert_eq!(
        data["addUsersToTraining"],
        json!({ "addedIds": [e2], "addedRefs": ["E1"], "alreadyAddedIds": [], "alreadyAddedRefs": [],
                "failedIds": [], "failedRefs": ["E404"] })
    );
    let data = t
        .data(ADD, json!({ "t": "onboarding", "refs": ["E1", "E2"] }))
        .await;
    assert_eq!(data["addUsersToTraining"]["addedRefs"], json!([]));
    assert_eq!(
        data["addUsersToTraining"]["alreadyAddedRefs"],
        json!(["E1", "E2"])
    );

    // Roles are held independently: E1 becomes TRAINER too, and losing it keeps PARTICIPANT.
    let trainer = json!({ "t": "onboarding", "refs": ["E1"], "role": "TRAINER" });
    assert_eq!(
        t.data(ADD, trainer.clone()).await["addUsersToTraining"]["addedRefs"],
        json!(["E1"])
    );
    assert_eq!(
        t.data(REMOVE, trainer).await["removeUsersFromTraining"]["removedRefs"],
        json!(["E1"])
    );
    let state = t.sim.state();
    let roles = &state.training("onboarding").unwrap().roles;
    assert_eq!(
        roles["PARTICIPANT"],
        vec!["E1", "E2", "lotte.devries@example.com"]
    );
    assert!(!roles.contains_key("TRAINER") || !roles["TRAINER"].contains(&"E1".to_owned()));

    let data = t
        .data(
            REMOVE,
            json!({ "t": "onboarding", "refs": ["E1", "E3", "E404"], "ids": [e2] }),
        )
        .await;
    assert_eq!(
        data["removeUsersFromTraining"],
        json!({ "removedIds": [e2], "removedRefs": ["E1"], "alreadyRemovedIds": [],
                "alreadyRemovedRefs": ["E3"], "idsLinkedViaObject": [], "refsLinkedViaObject": [],
                "failedIds": [], "failedRefs": ["E404"] })
    );

    let (_, body) = t
        .gql(ADD, json!({ "t": "no-such-training", "refs": ["E1"] }))
        .await;
    assert_eq!(
        only_error(&body),
        (json!(["addUsersToTraining"]), "NOT_FOUND".into())
    );
    assert_eq!(body["data"]["addUsersToTraining"], Value::Null);
    let (_, body) = t
        .gql(
            "mutation { addUsersToTraining(trainingRef: \"onboarding\", trainingId: \"6f1c1f4e-8a3e-4e0b-9a55-2f8f3c1d2e10\", userRefs: [\"E1\"], sendInvites: false) { addedRefs } }",
            json!({}),
        )
        .await;
    assert_eq!(
        only_error(&body).1,
        "BAD_USER_INPUT",
        "exactly one training selector"
    );
}

#[tokio::test]
async fn people_who_reach_a_training_through_a_group_are_reported_linked_and_not_removed() {
    let t = TestSim::example().await;
    with_people(&t).await;
    // safety-2024 is linked to dept-engineering in the example seed.
    t.data(
        "mutation { addUsersToGroup(groupRef: \"dept-engineering\", userRefs: [\"E1\"]) { addedIds } }",
        json!({}),
    )
    .await;
    t.data(ADD, json!({ "t": "safety-2024", "refs": ["E1", "E2"] }))
        .await;
    let q = "{ training(ref: \"safety-2024\") { groups { ref } users { ref } } }";
    let data = t.data(q, json!({})).await;
    assert_eq!(
        data["training"]["groups"],
        json!([{ "ref": "dept-engineering" }])
    );
    assert_eq!(
        data["training"]["users"],
        json!([{ "ref": "E1" }, { "ref": "E2" }])
    );

    let data = t
        .data(REMOVE, json!({ "t": "safety-2024", "refs": ["E1", "E2"] }))
        .await;
    let result = &data["removeUsersFromTraining"];
    assert_eq!(result["refsLinkedViaObject"], json!(["E1"]));
    assert_eq!(result["removedRefs"], json!(["E2"]));
    assert_eq!(result["failedRefs"], json!([]), "linked is not a failure");
    // Still reaches it through the group, and a retry answers the same.
    let data = t.data(q, json!({})).await;
    assert_eq!(data["training"]["users"], json!([{ "ref": "E1" }]));
    let again = t
        .data(REMOVE, json!({ "t": "safety-2024", "refs": ["E1"] }))
        .await;
    assert_eq!(
        again["removeUsersFromTraining"]["refsLinkedViaObject"],
        json!(["E1"])
    );
}

#[tokio::test]
async fn membership_shows_in_reads_only_after_the_delay_but_is_committed_at_once() {
    let t = TestSim::with(Faults {
        membership_delay: 1,
        ..Faults::default()
    })
    .await;
    let e2 = with_people(&t).await;
    let add = t
        .data(
            ADD,
            json!({ "t": "onboarding", "refs": ["E2"], "role": "MENTOR" }),
        )
        .await;
    assert_eq!(add["addUsersToTraining"]["addedRefs"], json!(["E2"]));
    // The write is judged against committed state: a second add is "already added" at once.
    let again = t
        .data(
            ADD,
            json!({ "t": "onboarding", "refs": ["E2"], "role": "MENTOR" }),
        )
        .await;
    assert_eq!(
        again["addUsersToTraining"]["alreadyAddedRefs"],
        json!(["E2"])
    );
    let q = "query($u: UUID) { training(ref: \"onboarding\") { users { ref } }
      paginatedTrainings(userId: $u) { count edges { node { ref userData { roles progress } } } } }";
    let data = t.data(q, json!({ "u": e2 })).await;
    assert_eq!(
        data["paginatedTrainings"]["count"], 0,
        "not visible yet: {data}"
    );
    assert!(!data["training"]["users"].to_string().contains("E2"));
    assert_eq!(
        t.sim.state().training("onboarding").unwrap().roles["MENTOR"],
        vec!["E2"],
        "but committed"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let data = t.data(q, json!({ "u": e2 })).await;
    assert_eq!(
        data["paginatedTrainings"]["edges"],
        json!([{ "node": { "ref": "onboarding", "userData": { "roles": ["MENTOR"], "progress": 0.0 } } }])
    );

    t.data(
        REMOVE,
        json!({ "t": "onboarding", "refs": ["E2"], "role": "MENTOR" }),
    )
    .await;
    assert_eq!(
        t.data(q, json!({ "u": e2 })).await["paginatedTrainings"]["count"],
        1
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        t.data(q, json!({ "u": e2 })).await["paginatedTrainings"]["count"],
        0
    );
}

#[tokio::test]
async fn training_invitations_are_counted_unless_send_invites_is_false() {
    let t = TestSim::example().await;
    with_people(&t).await;
    t.data(ADD, json!({ "t": "onboarding", "refs": ["E1"] }))
        .await;
    assert_eq!(t.sim.stats().training_invitations, 0, "sendInvites: false");
    let omitted = "mutation { addUsersToTraining(trainingRef: \"onboarding\", userRefs: [\"E1\", \"E2\", \"E3\"]) { addedRefs } }";
    let data = t.data(omitted, json!({})).await;
    assert_eq!(data["addUsersToTraining"]["addedRefs"], json!(["E2", "E3"]));
    let stats: Value = t.admin_get("/_sim/stats").await;
    assert_eq!(
        stats["training_invitations"], 2,
        "one per person added, default true"
    );
}

#[tokio::test]
async fn trainings_are_created_updated_and_filtered() {
    let t = TestSim::example().await;
    let create = "mutation($t: CreateTrainingInput!) { createTraining(training: $t) {
      training { id ref title subtitle isActive archived startDate endDate showParticipants enableChat users { ref } groups { ref } } } }";
    let data = t
        .data(
            create,
            json!({ "t": { "ref": "fire-2026", "title": "Fire drill", "startDate": "2026-01-05" } }),
        )
        .await;
    let training = &data["createTraining"]["training"];
    assert_eq!(training["ref"], "fire-2026");
    assert_eq!(training["isActive"], true);
    assert_eq!(training["archived"], false);
    assert_eq!(training["startDate"], "2026-01-05");
    assert_eq!(training["endDate"], Value::Null);
    assert_eq!(training["users"], json!([]));

    let update = "mutation($ref: String, $t: UpdateTrainingInput!) { updateTraining(ref: $ref, training: $t) { training { ref title isActive } } }";
    let data = t
        .data(
            update,
            json!({ "ref": "fire-2026", "t": { "isActive": false, "title": "Fire drill (old)" } }),
        )
        .await;
    assert_eq!(
        data["updateTraining"]["training"],
        json!({ "ref": "fire-2026", "title": "Fire drill (old)", "isActive": false })
    );
    let (_, body) = t
        .gql(update, json!({ "ref": "nope", "t": { "title": "X" } }))
        .await;
    assert_eq!(
        only_error(&body),
        (json!(["updateTraining"]), "NOT_FOUND".into())
    );
    let (_, body) = t
        .gql(
            update,
            json!({ "ref": "fire-2026", "t": { "endDate": "2025-12-31" } }),
        )
        .await;
    assert_eq!(only_error(&body).1, "BAD_USER_INPUT", "end before start");
    let (_, body) = t
        .gql(
            create,
            json!({ "t": { "ref": "onboarding", "title": "Dup" } }),
        )
        .await;
    assert_eq!(
        only_error(&body),
        (json!(["createTraining"]), "TRAINING_REF_TAKEN".into())
    );

    let cases = [
        ("all", "first: 50", 4, None),
        ("active", "active: true", 2, None),
        ("retired", "active: false", 2, None),
        (
            "search",
            "q: \"SAFETY\"",
            1,
            Some(json!([{ "node": { "ref": "safety-2024" } }])),
        ),
    ];
    for (name, filter, count, edges) in cases {
        let q =
            format!("{{ paginatedTrainings({filter}) {{ count edges {{ node {{ ref }} }} }} }}");
        let data = t.data(&q, json!({})).await;
        assert_eq!(data["paginatedTrainings"]["count"], count, "case {name}");
        if let Some(edges) = edges {
            assert_eq!(data["paginatedTrainings"]["edges"], edges, "case {name}");
        }
    }
    let admin_id = t
        .sim
        .state()
        .user_by_email("admin@example.com")
        .unwrap()
        .id
        .clone();
    let data = t
        .data(
            "query($u: UUID) { trainer: paginatedTrainings(userId: $u, trainingUserRoles: [TRAINER]) { count }
               participant: paginatedTrainings(userId: $u, trainingUserRoles: [PARTICIPANT]) { count } }",
            json!({ "u": admin_id }),
        )
        .await;
    assert_eq!(
        (
            data["trainer"]["count"].clone(),
            data["participant"]["count"].clone()
        ),
        (json!(1), json!(0))
    );
    let (_, body) = t
        .gql(
            "{ paginatedTrainings(trainingUserRoles: [TRAINER]) { count } }",
            json!({}),
        )
        .await;
    assert_eq!(only_error(&body).1, "BAD_USER_INPUT", "roles need a user");
}

#[tokio::test]
async fn training_errors_are_worded_in_every_error_style() {
    let create = "mutation { createTraining(training: {ref: \"onboarding\", title: \"Dup\"}) { training { id } } }";
    let missing = "mutation { addUsersToTraining(trainingRef: \"nope\", userRefs: [\"E1\"], sendInvites: false) { addedRefs } }";
    let cases = [
        (ErrorStyle::Sim, "TRAINING_REF_TAKEN", Some("NOT_FOUND")),
        (ErrorStyle::Graphene, "Conflict", Some("DoesNotExist")),
        (ErrorStyle::Apollo, "BAD_USER_INPUT", None),
    ];
    for (style, taken, not_found) in cases {
        let t = TestSim::with(Faults {
            error_style: style,
            ..Faults::default()
        })
        .await;
        let (_, body) = t.gql(create, json!({})).await;
        assert_eq!(only_error(&body).1, taken, "{style:?}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.to_lowercase().contains("training"),
            "{style:?}: {message}"
        );
        let (_, body) = t.gql(missing, json!({})).await;
        let error = &body["errors"][0];
        assert_eq!(
            error["extensions"]["code"].as_str(),
            not_found,
            "{style:?}: {body}"
        );
        assert!(
            error["message"].as_str().unwrap().contains("nope"),
            "{style:?}: {body}"
        );
    }
}

#[tokio::test]
async fn under_result_forms_both_every_known_person_is_reported_by_id_and_by_ref() {
    let t = TestSim::with(Faults {
        result_forms: pluvo_sim::ResultForms::Both,
        ..Faults::default()
    })
    .await;
    let e2 = with_people(&t).await;
    let e1 = t.sim.state().user("E1").unwrap().id.clone();
    t.data(
        "mutation { addUsersToGroup(groupRef: \"dept-engineering\", userRefs: [\"E1\"]) { addedIds } }",
        json!({}),
    )
    .await;
    let data = t
        .data(
            ADD,
            json!({ "t": "onboarding", "refs": ["E1", "E404"], "ids": [e2] }),
        )
        .await;
    assert_eq!(
        data["addUsersToTraining"],
        json!({ "addedIds": [e2, e1], "addedRefs": ["E2", "E1"], "alreadyAddedIds": [],
                "alreadyAddedRefs": [], "failedIds": [], "failedRefs": ["E404"] })
    );
    let data = t
        .data(REMOVE, json!({ "t": "safety-2024", "refs": ["E1"] }))
        .await;
    assert_eq!(
        (
            data["removeUsersFromTraining"]["idsLinkedViaObject"].clone(),
            data["removeUsersFromTraining"]["refsLinkedViaObject"].clone()
        ),
        (json!([e1]), json!(["E1"]))
    );
    let knobs: Value = t.admin_get("/_sim/faults").await;
    assert_eq!(knobs["result_forms"], "both");
}
