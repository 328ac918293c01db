//! Seeding the learning side: trainings with their linked groups and direct roles, offer events
//! with their enrollments, progress and certificates.
//!
//! Apart from `mod.rs` because it goes through the same rules as the API (a seeded training is
//! created as `createTraining` would create it), and it needs every learning area at once.

use super::{
    ApiError, EnrollmentRec, EnrollmentStatus, OfferEventRec, Progress, Selector, State,
    TrainingInput, TrainingRole, UserKey, trainings::parse_date,
};
use crate::seed::{Seed, SeedError};

impl State {
    /// Applies the learning part of a seed, after its groups and users.
    pub(super) fn add_seed_learning(&mut self, seed: &Seed) -> Result<(), SeedError> {
        let invalid =
            |what: String| move |e: ApiError| SeedError::Invalid(format!("{what}: {}", e.message));
        for training in &seed.trainings {
            let what = format!(
                "training `{}`",
                training.ref_.as_deref().unwrap_or(&training.title)
            );
            let input = TrainingInput {
                ref_: training.ref_.clone(),
                title: Some(training.title.clone()),
                is_active: Some(training.active),
                archived: Some(training.archived),
                ..TrainingInput::default()
            };
            let t = self.create_training(input).map_err(invalid(what.clone()))?;
            for group in &training.groups {
                let g = self
                    .group_by_selector(&Selector::Ref(group.clone()))
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        SeedError::Invalid(format!("{what}: unknown group `{group}`"))
                    })?;
                self.trainings[t].groups.insert(g);
            }
            let roles = [
                (&training.participants, TrainingRole::Participant),
                (&training.trainers, TrainingRole::Trainer),
                (&training.mentors, TrainingRole::Mentor),
            ];
            for (people, role) in roles {
                for person in people {
                    let u = self
                        .require_user_key(&UserKey::admin(person))
                        .map_err(invalid(what.clone()))?;
                    self.grant_now(t, u, role);
                }
            }
        }
        for event in &seed.offer_events {
            let what = format!(
                "offer event `{}`",
                event.ref_.as_deref().unwrap_or(&event.title)
            );
            self.add_seed_offer_event(event).map_err(invalid(what))?;
        }
        for p in &seed.progress {
            let what = format!("progress of `{}` in `{}`", p.user, p.training);
            let progress = Progress {
                progress: p.progress,
                score: p.score,
                completion_date: p
                    .completion_date
                    .as_deref()
                    .map(parse_date)
                    .transpose()
                    .map_err(invalid(what.clone()))?,
                time_spent_seconds: p.time_spent_seconds,
            };
            self.set_progress(
                &Selector::Ref(p.training.clone()),
                &UserKey::admin(&p.user),
                progress,
            )
            .map_err(invalid(what))?;
        }
        for c in &seed.certificates {
            let what = format!("certificate `{}` of `{}`", c.title, c.user);
            self.award_certificate(
                &UserKey::admin(&c.user),
                &c.title,
                &c.completion_date,
                c.expiry_date.as_deref(),
                c.score,
            )
            .map_err(invalid(what))?;
        }
        Ok(())
    }

    fn add_seed_offer_event(
        &mut self,
        event: &crate::seed::SeedOfferEvent,
    ) -> Result<(), ApiError> {
        if let Some(r) = &event.ref_ {
            if self.offer_event_by_ref.contains_key(r) {
                return Err(ApiError::bad_input(format!(
                    "duplicate offer event ref `{r}`"
                )));
            }
        }
        let training = event
            .training
            .as_ref()
            .map(|r| self.require_training(&Selector::Ref(r.clone())))
            .transpose()?;
        let id = self.next_id();
        let idx = self.offer_events.len();
        self.offer_event_by_id.insert(id, idx);
        if let Some(r) = &event.ref_ {
            self.offer_event_by_ref.insert(r.clone(), idx);
        }
        self.offer_events.push(OfferEventRec {
            id,
            ref_: event.ref_.clone(),
            title: event.title.clone(),
            max_subscriptions: event.max_subscriptions,
            training,
            enrollments: Vec::<EnrollmentRec>::new(),
        });
        let people: Vec<UserKey> = event.enrolled.iter().map(|p| UserKey::admin(p)).collect();
        for key in &people {
            self.require_user_key(key)?;
        }
        let selector = Selector::Id(id.to_string());
        self.enroll(&selector, &people)?;
        debug_assert!(self.offer_events[idx].enrollments.iter().all(|e| matches!(
            e.status,
            EnrollmentStatus::Enrolled | EnrollmentStatus::Waitlisted
        )));
        Ok(())
    }
}
