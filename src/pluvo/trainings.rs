//! The learning side of [`PluvoClient`]: training membership per role, offer-event enrolments,
//! and the reads `check` uses to prove a rule's training or event exists.
//!
//! Words: a *training change* adds (or removes) people in one role of one training; Pluvo answers
//! per person in result lists (`added…`, `alreadyAdded…`, `failed…`; on removal also
//! `…LinkedViaObject` for people who reach the training through a group or an enrolment and so
//! cannot be removed directly). An *enrolment* puts people on an offer event; Pluvo returns every
//! enrolment it holds for them (a repeat returns the existing one) and leaves unknown people out.
//!
//! Both mutations carry `sendInvites: false` / `sendMail: false` as literals in their documents
//! (see [`super::operations`]): nothing here can ask Pluvo to mail anyone. Each call goes
//! through the one transport (pacing, retries, token renewal, cancellation) with at most
//! [`REFS_PER_MEMBERSHIP_FIELD`] people per request.

use std::collections::BTreeMap;

use cynic::MutationBuilder;
use cynic::QueryBuilder;

use super::PluvoError;
use super::client::PluvoClient;
use super::error::Refusal;
use super::operations::{
    AddUsersToTraining, CreateEnrollments, EnrolVariables, EnrollmentStatusValue, OfferEventByRef,
    OfferEventByRefVariables, RemoveUsersFromTraining, TrainingByRef, TrainingByRefVariables,
    TrainingMembersVariables,
};
use super::sizing::REFS_PER_MEMBERSHIP_FIELD;
use crate::domain::{EmployeeRef, OfferEventRef, TrainingRef, TrainingRole};

/// People to add to (or remove from) one role of one training. Any number: the client sends
/// them [`REFS_PER_MEMBERSHIP_FIELD`] per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingChange {
    pub training: TrainingRef,
    pub role: TrainingRole,
    /// `addUsersToTraining` when true, `removeUsersFromTraining` when false.
    pub adding: bool,
    pub users: Vec<EmployeeRef>,
}

/// Pluvo's answer to one [`TrainingChange`], all its requests together. Each list holds the
/// identifiers Pluvo returned, refs and ids alike (a tenant may answer in either form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainingOutcome {
    pub attempts: u32,
    /// Added (resp. removed) now.
    pub done: Vec<String>,
    /// Already held (resp. already not held): not an error.
    pub already: Vec<String>,
    /// Reaches the training through a group or an enrolment: not removed, not an error, and not
    /// something a retry can change.
    pub linked_via_object: Vec<String>,
    pub failed: Vec<String>,
}

/// What Pluvo did for one person of a [`TrainingChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingVerdict {
    Done,
    Already,
    LinkedViaObject,
    /// Pluvo named the person as failed (archived, or unknown to Pluvo).
    Failed,
    /// Pluvo named the person in no list: nothing is known to have happened.
    Unreported,
}

impl TrainingOutcome {
    /// Pluvo's verdict on one person, recognised by their ref or, should a tenant answer with
    /// ids, their Pluvo id. `failed` wins over the rest: a person named twice was not done.
    pub fn verdict(&self, employee_ref: &str, pluvo_id: Option<&str>) -> TrainingVerdict {
        let named = |list: &[String]| {
            list.iter().any(|id| {
                id == employee_ref || pluvo_id.is_some_and(|p| id.eq_ignore_ascii_case(p))
            })
        };
        if named(&self.failed) {
            TrainingVerdict::Failed
        } else if named(&self.linked_via_object) {
            TrainingVerdict::LinkedViaObject
        } else if named(&self.done) {
            TrainingVerdict::Done
        } else if named(&self.already) {
            TrainingVerdict::Already
        } else {
            TrainingVerdict::Unreported
        }
    }
}

/// An enrolment's state in Pluvo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentStatus {
    Enrolled,
    Waitlisted,
    Cancelled,
    Declined,
    /// A status this client does not know yet; the enrolment exists.
    Other,
}

impl From<EnrollmentStatusValue> for EnrolmentStatus {
    fn from(value: EnrollmentStatusValue) -> Self {
        match value {
            EnrollmentStatusValue::Enrolled => EnrolmentStatus::Enrolled,
            EnrollmentStatusValue::Waitlisted => EnrolmentStatus::Waitlisted,
            EnrollmentStatusValue::Cancelled => EnrolmentStatus::Cancelled,
            EnrollmentStatusValue::Declined => EnrolmentStatus::Declined,
            EnrollmentStatusValue::Other => EnrolmentStatus::Other,
        }
    }
}

/// Pluvo's answer to enrolling people in one offer event: the enrolment it holds per person, by
/// ref and by Pluvo id. Someone Pluvo does not know is left out (CONTRACT.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrolments {
    pub attempts: u32,
    pub by_person: BTreeMap<String, EnrolmentStatus>,
}

impl Enrolments {
    /// The person's enrolment, or `None` when Pluvo left them out (unknown or archived there).
    pub fn status(&self, employee_ref: &str, pluvo_id: Option<&str>) -> Option<EnrolmentStatus> {
        self.by_person.get(employee_ref).copied().or_else(|| {
            pluvo_id.and_then(|id| self.by_person.get(&id.to_ascii_lowercase()).copied())
        })
    }
}

/// A training as `check` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTraining {
    pub id: String,
    pub r#ref: Option<String>,
    pub title: String,
    pub is_active: bool,
    pub archived: bool,
}

/// An offer event as `check` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOfferEvent {
    pub id: String,
    pub r#ref: Option<String>,
    pub title: String,
    pub max_subscriptions: Option<i32>,
    pub enrollment_count: Option<i32>,
}

impl PluvoClient {
    /// Adds people to (or removes them from) one role of one training, at most
    /// [`REFS_PER_MEMBERSHIP_FIELD`] per request, always with `sendInvites: false`. Pluvo applies
    /// this asynchronously: never read it back to confirm. The first request Pluvo refuses as a
    /// whole (an unknown training) ends the call with that error; requests before it were
    /// applied, and both mutations are idempotent, so repeating the whole change is safe.
    pub async fn change_training(
        &self,
        change: &TrainingChange,
    ) -> Result<TrainingOutcome, PluvoError> {
        let mut outcome = TrainingOutcome::default();
        for users in change.users.chunks(REFS_PER_MEMBERSHIP_FIELD) {
            let vars = TrainingMembersVariables {
                training_ref: change.training.as_str().to_owned(),
                user_refs: Some(users.iter().map(|u| u.as_str().to_owned()).collect()),
                role: change.role.into(),
            };
            if change.adding {
                let (data, attempts) = self
                    .inner
                    .execute(AddUsersToTraining::build(vars), &self.cancel)
                    .await?;
                outcome.attempts += attempts;
                let payload = data
                    .add_users_to_training
                    .ok_or_else(|| missing("addUsersToTraining"))?;
                outcome
                    .done
                    .extend(both(payload.added_refs, payload.added_ids));
                outcome
                    .already
                    .extend(both(payload.already_added_refs, payload.already_added_ids));
                outcome
                    .failed
                    .extend(texts(payload.failed_refs, payload.failed_ids));
            } else {
                let (data, attempts) = self
                    .inner
                    .execute(RemoveUsersFromTraining::build(vars), &self.cancel)
                    .await?;
                outcome.attempts += attempts;
                let payload = data
                    .remove_users_from_training
                    .ok_or_else(|| missing("removeUsersFromTraining"))?;
                outcome
                    .done
                    .extend(both(payload.removed_refs, payload.removed_ids));
                outcome.already.extend(both(
                    payload.already_removed_refs,
                    payload.already_removed_ids,
                ));
                outcome.linked_via_object.extend(both(
                    payload.refs_linked_via_object,
                    payload.ids_linked_via_object,
                ));
                outcome
                    .failed
                    .extend(texts(payload.failed_refs, payload.failed_ids));
            }
        }
        Ok(outcome)
    }

    /// Enrols people in one offer event, at most [`REFS_PER_MEMBERSHIP_FIELD`] per request,
    /// always with `sendMail: false`. Idempotent in Pluvo: an enrolled person gets their existing
    /// enrolment back.
    pub async fn enrol(
        &self,
        event: &OfferEventRef,
        users: &[EmployeeRef],
    ) -> Result<Enrolments, PluvoError> {
        let mut enrolments = Enrolments::default();
        for chunk in users.chunks(REFS_PER_MEMBERSHIP_FIELD) {
            let op = CreateEnrollments::build(EnrolVariables {
                offer_event_ref: event.as_str().to_owned(),
                user_refs: Some(chunk.iter().map(|u| u.as_str().to_owned()).collect()),
            });
            let (data, attempts) = self.inner.execute(op, &self.cancel).await?;
            enrolments.attempts += attempts;
            for enrolment in data.create_offer_event_enrollments.unwrap_or_default() {
                let status = EnrolmentStatus::from(enrolment.status);
                if let Some(user_ref) = enrolment.user.user_ref {
                    enrolments.by_person.insert(user_ref, status);
                }
                enrolments
                    .by_person
                    .insert(enrolment.user.id.to_string(), status);
            }
        }
        Ok(enrolments)
    }

    /// The training with this ref, or `None` when Pluvo has none (a null answer or a not-found
    /// error: both forms occur).
    pub async fn training(
        &self,
        training: &TrainingRef,
    ) -> Result<Option<RemoteTraining>, PluvoError> {
        let op = TrainingByRef::build(TrainingByRefVariables {
            training_ref: training.as_str().to_owned(),
        });
        let found = not_found_as_none(self.inner.execute(op, &self.cancel).await)?;
        Ok(found
            .and_then(|(data, _)| data.training)
            .map(|t| RemoteTraining {
                id: t.id.to_string(),
                r#ref: t.training_ref,
                title: t.title,
                is_active: t.is_active,
                archived: t.archived,
            }))
    }

    /// The offer event with this ref, or `None` when Pluvo has none.
    pub async fn offer_event(
        &self,
        event: &OfferEventRef,
    ) -> Result<Option<RemoteOfferEvent>, PluvoError> {
        let op = OfferEventByRef::build(OfferEventByRefVariables {
            offer_event_ref: event.as_str().to_owned(),
        });
        let found = not_found_as_none(self.inner.execute(op, &self.cancel).await)?;
        Ok(found
            .and_then(|(data, _)| data.offer_event)
            .map(|e| RemoteOfferEvent {
                id: e.id.to_string(),
                r#ref: e.offer_event_ref,
                title: e.title,
                max_subscriptions: e.max_subscriptions,
                enrollment_count: e.enrollment_count,
            }))
    }
}

/// Variables for the learning documents `check --schema` compares and the tests validate.
fn sample_vars() -> TrainingMembersVariables {
    TrainingMembersVariables {
        training_ref: "safety-2024".into(),
        user_refs: Some(vec!["E1".into()]),
        role: TrainingRole::Trainer.into(),
    }
}

/// Every learning document the client can send, by operation name, for `check --schema`
/// (see [`super::documents::every_document`]) and the SDL tests.
pub(super) fn documents() -> Vec<(&'static str, String)> {
    vec![
        (
            "AddUsersToTraining",
            AddUsersToTraining::build(sample_vars()).query,
        ),
        (
            "RemoveUsersFromTraining",
            RemoveUsersFromTraining::build(sample_vars()).query,
        ),
        (
            "CreateEnrollments",
            CreateEnrollments::build(EnrolVariables {
                offer_event_ref: "intro".into(),
                user_refs: Some(vec!["E1".into()]),
            })
            .query,
        ),
        (
            "TrainingByRef",
            TrainingByRef::build(TrainingByRefVariables {
                training_ref: "t".into(),
            })
            .query,
        ),
        (
            "OfferEventByRef",
            OfferEventByRef::build(OfferEventByRefVariables {
                offer_event_ref: "e".into(),
            })
            .query,
        ),
    ]
}

fn not_found_as_none<T>(result: Result<T, PluvoError>) -> Result<Option<T>, PluvoError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.refusal() == Some(Refusal::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

fn missing(field: &str) -> PluvoError {
    PluvoError::Decode(format!("{field} answered null without an error"))
}

/// A result list in both its forms (refs and ids), as one list of identifiers.
fn both(refs: Option<Vec<String>>, ids: Option<Vec<uuid::Uuid>>) -> Vec<String> {
    let mut all = refs.unwrap_or_default();
    all.extend(ids.unwrap_or_default().iter().map(uuid::Uuid::to_string));
    all
}

/// `failed…` lists, which the schema types as strings in both forms.
fn texts(refs: Option<Vec<String>>, ids: Option<Vec<String>>) -> Vec<String> {
    let mut all = refs.unwrap_or_default();
    all.extend(ids.unwrap_or_default());
    all
}

#[cfg(test)]
mod tests {
    use apollo_compiler::validation::Valid;
    use apollo_compiler::{ExecutableDocument, Schema};

    use super::*;

    fn schema() -> Valid<Schema> {
        let sdl = include_str!("../../schema/pluvo.graphql");
        Schema::parse_and_validate(sdl, "pluvo.graphql").expect("the vendored SDL is valid")
    }

    #[test]
    fn every_learning_document_validates_against_the_sdl() {
        let schema = schema();
        for (name, query) in documents() {
            if let Err(errors) =
                ExecutableDocument::parse_and_validate(&schema, &query, "op.graphql")
            {
                panic!("{name} does not validate against schema/pluvo.graphql:\n{errors}\n{query}");
            }
        }
    }

    #[test]
    fn no_learning_mutation_can_ask_pluvo_to_mail_anyone() {
        let (_, add) = &documents()[0];
        assert!(add.contains("sendInvites: false"), "{add}");
        let (_, enrol) = &documents()[2];
        assert!(enrol.contains("sendMail: false"), "{enrol}");
        // Neither is a variable a caller could set.
        assert!(!add.contains("$sendInvites") && !enrol.contains("$sendMail"));
    }

    #[test]
    fn the_role_is_sent_as_the_training_role_enum() {
        let vars = serde_json::to_value(sample_vars()).unwrap();
        assert_eq!(vars["role"], "TRAINER");
        assert_eq!(vars["userRefs"], serde_json::json!(["E1"]));
    }

    #[test]
    fn verdicts_recognise_refs_ids_and_linked_people() {
        let id = "6f1c0b5e-0000-4000-8000-000000000001";
        let outcome = TrainingOutcome {
            attempts: 1,
            done: vec!["E1".into()],
            already: vec![id.into()],
            linked_via_object: vec!["E3".into()],
            failed: vec!["E4".into(), "E1-dup".into()],
        };
        assert_eq!(outcome.verdict("E1", None), TrainingVerdict::Done);
        assert_eq!(
            outcome.verdict("E2", Some(&id.to_uppercase())),
            TrainingVerdict::Already
        );
        assert_eq!(
            outcome.verdict("E3", None),
            TrainingVerdict::LinkedViaObject
        );
        assert_eq!(outcome.verdict("E4", None), TrainingVerdict::Failed);
        assert_eq!(outcome.verdict("E5", None), TrainingVerdict::Unreported);
    }

    #[test]
    fn an_enrolment_is_found_by_ref_or_id_and_a_left_out_person_has_none() {
        let id = "6f1c0b5e-0000-4000-8000-000000000002";
        let enrolments = Enrolments {
            attempts: 1,
            by_person: BTreeMap::from([
                ("E1".to_owned(), EnrolmentStatus::Enrolled),
                (id.to_owned(), EnrolmentStatus::Waitlisted),
            ]),
        };
        assert_eq!(
            enrolments.status("E1", None),
            Some(EnrolmentStatus::Enrolled)
        );
        assert_eq!(
            enrolments.status("E2", Some(&id.to_uppercase())),
            Some(EnrolmentStatus::Waitlisted)
        );
        assert_eq!(enrolments.status("E404", None), None);
    }
}
