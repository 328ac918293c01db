//! The learning calls of the Pluvo client against pluvo-sim: per-person verdicts, linked-via-group
//! people, idempotent enrolment, unknown refs, and no invitation or enrolment mail ever sent.

#![allow(clippy::unwrap_used)]

use pluvo_sync::domain::{EmployeeRef, OfferEventRef, TrainingRef, TrainingRole};
use pluvo_sync::pluvo::{EnrolmentStatus, PluvoClient, TrainingChange, TrainingVerdict};

use crate::helpers::TestEnv;

fn people(refs: &[&str]) -> Vec<EmployeeRef> {
    refs.iter()
        .map(|r| EmployeeRef::parse(r).unwrap())
        .collect()
}

async fn synced() -> (TestEnv, PluvoClient) {
    let env = TestEnv::start().await;
    env.sync().await;
    let raw = pluvo_sync::settings::load(Some(&env.config), Some(Default::default())).unwrap();
    let settings = raw.resolve().unwrap();
    let client = PluvoClient::new(settings.pluvo.clone(), env.metrics.clone()).unwrap();
    (env, client)
}

#[tokio::test]
async fn training_membership_is_judged_per_person_and_never_invites() {
    let (env, client) = synced().await;
    let training = TrainingRef::parse("safety-2024").unwrap();
    let add = TrainingChange {
        training: training.clone(),
        role: TrainingRole::Trainer,
        adding: true,
        users: people(&["000123", "000145", "999999"]),
    };
    let added = client.change_training(&add).await.unwrap();
    assert_eq!(added.verdict("000123", None), TrainingVerdict::Done);
    assert_eq!(added.verdict("999999", None), TrainingVerdict::Failed);
    let again = client.change_training(&add).await.unwrap();
    assert_eq!(again.verdict("000145", None), TrainingVerdict::Already);

    // Thijs (Engineering) reaches safety-2024 through the linked group dept-engineering.
    let remove = TrainingChange {
        training,
        role: TrainingRole::Participant,
        adding: false,
        users: people(&["000124"]),
    };
    let removed = client.change_training(&remove).await.unwrap();
    assert_eq!(
        removed.verdict("000124", None),
        TrainingVerdict::LinkedViaObject
    );

    let state = env.state();
    let trainers = &state.training("safety-2024").unwrap().roles["TRAINER"];
    assert_eq!(trainers, &vec!["000123".to_owned(), "000145".to_owned()]);
    assert_eq!(env.stats().training_invitations, 0);
}

#[tokio::test]
async fn enrolment_is_idempotent_leaves_unknown_people_out_and_sends_no_mail() {
    let (env, client) = synced().await;
    let event = OfferEventRef::parse("intro-day-2026-q1").unwrap();
    let first = client
        .enrol(&event, &people(&["000123", "999999"]))
        .await
        .unwrap();
    assert_eq!(
        first.status("000123", None),
        Some(EnrolmentStatus::Enrolled)
    );
    assert_eq!(first.status("999999", None), None);
    let again = client.enrol(&event, &people(&["000123"])).await.unwrap();
    assert_eq!(
        again.status("000123", None),
        Some(EnrolmentStatus::Enrolled)
    );
    assert_eq!(env.stats().enrollment_mails, 0);
    assert_eq!(
        env.state()
            .offer_event("intro-day-2026-q1")
            .unwrap()
            .enrollments
            .len(),
        1
    );
}

#[tokio::test]
async fn reads_find_trainings_and_events_and_say_none_for_unknown_refs() {
    let (_env, client) = synced().await;
    let found = client
        .training(&TrainingRef::parse("safety-2024").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.title, "Safety basics 2024");
    assert!(found.is_active);
    let missing = client
        .training(&TrainingRef::parse("no-such-training").unwrap())
        .await
        .unwrap();
    assert_eq!(missing, None);
    let event = client
        .offer_event(&OfferEventRef::parse("intro-day-2026-q1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.max_subscriptions, Some(20));
    let no_event = client
        .offer_event(&OfferEventRef::parse("no-such-event").unwrap())
        .await
        .unwrap();
    assert_eq!(no_event, None);
}

#[tokio::test]
async fn an_unknown_training_fails_the_whole_change_with_pluvos_error() {
    let (_env, client) = synced().await;
    let change = TrainingChange {
        training: TrainingRef::parse("no-such-training").unwrap(),
        role: TrainingRole::Participant,
        adding: true,
        users: people(&["000123"]),
    };
    let error = client.change_training(&change).await.unwrap_err();
    assert!(error.to_string().contains("no-such-training"), "{error}");
}
