//! Offer events and enrollments over HTTP: idempotent enrolment, the waitlist, unknown people
//! left out, cancellations made in Pluvo, and mail counting.

use pluvo_sim::{Faults, Seed, SimConfig};
use serde_json::{Value, json};

use crate::{TestSim, only_error};

const ENROL: &str = "mutation($e: String!, $refs: [String!], $ids: [UUID!]) {
  createOfferEventEnrollments(offerEventRef: $e, userRefs: $refs, userIds: $ids, sendMail: false) {
    id status user { ref } offerEvent { ref } } }";

/// A tenant with E1..E4 and an event of two seats, linked to a training.
async fn small_event() -> TestSim {
    let mut seed = Seed::from_toml_str(
        "[[trainings]]\nref = \"intro\"\ntitle = \"Intro\"\n\
         [[offer_events]]\nref = \"day\"\ntitle = \"Intro day\"\nmax_subscriptions = 2\ntraining = \"intro\"\n",
    )
    .unwrap();
    seed.users = (1..=4)
        .map(|n| pluvo_sim::SeedUser {
            ref_: Some(format!("E{n}")),
            email: format!("u{n}@example.com"),
            name: format!("U{n}"),
            ..pluvo_sim::SeedUser::default()
        })
        .collect();
    TestSim::start(SimConfig {
        seed,
        ..SimConfig::with_faults(Faults::default())
    })
    .await
}

fn statuses(data: &Value) -> Vec<(String, String)> {
    data["createOfferEventEnrollments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["user"]["ref"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn enrolment_waitlists_past_the_maximum_and_leaves_unknown_people_out() {
    let t = small_event().await;
    let data = t
        .data(
            ENROL,
            json!({ "e": "day", "refs": ["E1", "E404", "E2", "E3"] }),
        )
        .await;
    assert_eq!(
        statuses(&data),
        pairs(&[("E1", "ENROLLED"), ("E2", "ENROLLED"), ("E3", "WAITLISTED")])
    );
    assert_eq!(
        data["createOfferEventEnrollments"][0]["offerEvent"]["ref"],
        "day"
    );
    let data = t
        .data(
            "{ offerEvent(ref: \"day\") { title maxSubscriptions enrollmentCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["offerEvent"],
        json!({ "title": "Intro day", "maxSubscriptions": 2, "enrollmentCount": 2 })
    );
    assert_eq!(
        t.data("{ offerEvent(ref: \"nope\") { id } }", json!({}))
            .await["offerEvent"],
        Value::Null
    );
    let (_, body) = t.gql(ENROL, json!({ "e": "nope", "refs": ["E1"] })).await;
    assert_eq!(
        only_error(&body),
        (json!(["createOfferEventEnrollments"]), "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn enrolling_again_returns_the_existing_enrollment_and_never_duplicates() {
    let t = small_event().await;
    let first = t.data(ENROL, json!({ "e": "day", "refs": ["E1"] })).await;
    let e1_id = t.sim.state().user("E1").unwrap().id.clone();
    let again = t
        .data(
            ENROL,
            json!({ "e": "day", "refs": ["E1", "E1"], "ids": [e1_id] }),
        )
        .await;
    let list = again["createOfferEventEnrollments"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one enrollment per person: {again}");
    assert_eq!(list[0]["id"], first["createOfferEventEnrollments"][0]["id"]);
    assert_eq!(
        t.sim.state().offer_event("day").unwrap().enrollments.len(),
        1
    );

    // Cancelled by hand in Pluvo: enrolling again revives the same enrollment.
    let response = t
        .admin_post(
            "/_sim/enrollments",
            &json!([{ "offer_event": "day", "user": "E1", "status": "CANCELLED" }]),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        t.sim.state().offer_event("day").unwrap().enrollments[0].status,
        "CANCELLED"
    );
    let revived = t.data(ENROL, json!({ "e": "day", "refs": ["E1"] })).await;
    assert_eq!(statuses(&revived), pairs(&[("E1", "ENROLLED")]));
    assert_eq!(
        revived["createOfferEventEnrollments"][0]["id"],
        first["createOfferEventEnrollments"][0]["id"]
    );
    let bad = t
        .admin_post(
            "/_sim/enrollments",
            &json!([{ "offer_event": "day", "user": "E2", "status": "CANCELLED" }]),
        )
        .await;
    assert_eq!(bad.status(), 422, "E2 is not enrolled");

    // A reset returns the learning side to the seed too.
    t.data(
        "mutation { addUsersToTraining(trainingRef: \"intro\", userRefs: [\"E2\"], sendInvites: false) { addedRefs } }",
        json!({}),
    )
    .await;
    assert_eq!(
        t.admin_post("/_sim/reset", &json!(null)).await.status(),
        204
    );
    let state = t.sim.state();
    assert!(state.offer_event("day").unwrap().enrollments.is_empty());
    assert!(state.training("intro").unwrap().roles.is_empty());
}

#[tokio::test]
async fn enrolment_mails_are_counted_unless_send_mail_is_false_and_enrolled_people_reach_the_training()
 {
    let t = small_event().await;
    t.data(ENROL, json!({ "e": "day", "refs": ["E1"] })).await;
    assert_eq!(t.sim.stats().enrollment_mails, 0);
    let omitted = "mutation { createOfferEventEnrollments(offerEventRef: \"day\", userRefs: [\"E1\", \"E2\", \"E3\"]) { status } }";
    t.data(omitted, json!({})).await;
    let stats: Value = t.admin_get("/_sim/stats").await;
    assert_eq!(
        stats["enrollment_mails"], 2,
        "E1 was enrolled already; E2 and E3 get mail"
    );

    // E1 holds a seat in an event of `intro`: linked via object, so not removable directly.
    let data = t
        .data(
            "mutation { removeUsersFromTraining(trainingRef: \"intro\", userRefs: [\"E1\", \"E3\"]) { removedRefs alreadyRemovedRefs refsLinkedViaObject } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["removeUsersFromTraining"],
        json!({ "removedRefs": [], "alreadyRemovedRefs": ["E3"], "refsLinkedViaObject": ["E1"] }),
        "a waitlisted person (E3) holds no seat"
    );
}
