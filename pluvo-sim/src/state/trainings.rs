//! Trainings ("learning journeys") and who reaches them, per role.
//!
//! A person reaches a training in two ways. *Directly*, per role (PARTICIPANT, TRAINER, MENTOR),
//! through `addUsersToTraining`; like group memberships these are asynchronous, so the direct
//! roles are a [`DelayedSet`]. Or *via an object*: as a participant, through a group linked to the
//! training, or an enrollment in an offer event of the training. Access via an object cannot be
//! removed directly: `removeUsersFromTraining` reports such people as linked, removes nothing,
//! and the sync must leave them alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::delayed::DelayedSet;
use super::events::EnrollmentStatus;
use super::reports::Progress;
use super::{ApiError, ErrorCode, Selector, State, UserKey, parse_uuid};

/// Pluvo's `TrainingRole`: held independently per training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrainingRole {
    Participant,
    Trainer,
    Mentor,
}

impl TrainingRole {
    pub const ALL: [Self; 3] = [Self::Participant, Self::Trainer, Self::Mentor];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Participant => "PARTICIPANT",
            Self::Trainer => "TRAINER",
            Self::Mentor => "MENTOR",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ApiError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| ApiError::bad_input(format!("unknown training role `{text}`")))
    }
}

#[derive(Debug, Clone)]
pub struct TrainingRec {
    pub id: Uuid,
    pub ref_: Option<String>,
    pub title: String,
    pub subtitle: String,
    pub introduction: String,
    pub start_date: Option<chrono::NaiveDate>,
    pub end_date: Option<chrono::NaiveDate>,
    pub is_active: bool,
    pub archived: bool,
    pub show_participants: bool,
    pub show_shared_files: bool,
    pub enable_chat: bool,
    /// Groups linked to the training: their visible members reach it as participants.
    pub groups: BTreeSet<usize>,
    /// Direct roles, as (user, role).
    pub members: DelayedSet<(usize, TrainingRole)>,
    /// Progress per user, set through the admin API.
    pub progress: BTreeMap<usize, Progress>,
}

/// `CreateTrainingInput` / `UpdateTrainingInput`; `None` means "leave unchanged" (or the
/// default, on create).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingInput {
    pub ref_: Option<String>,
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub introduction: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub is_active: Option<bool>,
    pub archived: Option<bool>,
    pub show_participants: Option<bool>,
    pub show_shared_files: Option<bool>,
    pub enable_chat: Option<bool>,
}

/// Filters of `paginatedTrainings`.
#[derive(Debug, Clone, Default)]
pub struct TrainingFilter {
    pub q: Option<String>,
    pub active: Option<bool>,
    pub archived: Option<bool>,
    pub user_id: Option<String>,
    pub roles: Option<Vec<String>>,
}

/// Per-user result of a bulk call, each user as it was named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    pub changed: Vec<UserKey>,
    pub unchanged: Vec<UserKey>,
    /// Removal only: people who reach the training via a group or an enrollment.
    pub linked: Vec<UserKey>,
    pub failed: Vec<UserKey>,
}

/// A `Date` scalar: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<chrono::NaiveDate, ApiError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_input(format!("`{text}` is not a valid Date (YYYY-MM-DD)")))
}

impl State {
    pub fn training_by_selector(&self, selector: &Selector) -> Result<Option<usize>, ApiError> {
        Ok(match selector {
            Selector::Id(text) => self
                .training_by_id
                .get(&parse_uuid(text, "a training id")?)
                .copied(),
            Selector::Ref(r) => self.training_by_ref.get(r).copied(),
        })
    }

    /// The training a mutation names; unknown is an error for the whole field.
    pub fn require_training(&self, selector: &Selector) -> Result<usize, ApiError> {
        self.training_by_selector(selector)?
            .ok_or_else(|| ApiError::not_found(format!("no training with {}", selector.describe())))
    }

    pub fn training_key(&self, t: usize) -> String {
        let training = &self.trainings[t];
        training
            .ref_
            .clone()
            .unwrap_or_else(|| training.id.to_string())
    }

    pub fn create_training(&mut self, input: TrainingInput) -> Result<usize, ApiError> {
        let title = input
            .title
            .clone()
            .ok_or_else(|| ApiError::bad_input("`training.title` is required"))?;
        let id = self.next_id();
        let mut training = TrainingRec {
            id,
            ref_: None,
            title,
            subtitle: String::new(),
            introduction: String::new(),
            start_date: None,
            end_date: None,
            is_active: true,
            archived: false,
            show_participants: true,
            show_shared_files: true,
            enable_chat: false,
            groups: BTreeSet::new(),
            members: DelayedSet::default(),
            progress: BTreeMap::new(),
        };
        self.apply_training_input(&mut training, input, None)?;
        let idx = self.trainings.len();
        self.training_by_id.insert(id, idx);
        if let Some(r) = &training.ref_ {
            self.training_by_ref.insert(r.clone(), idx);
        }
        self.trainings.push(training);
        Ok(idx)
    }

    /// All or nothing: an invalid field leaves the training as it was.
    pub fn update_training(
        &mut self,
        selector: &Selector,
        input: TrainingInput,
    ) -> Result<usize, ApiError> {
        let t = self.require_training(selector)?;
        let mut training = self.trainings[t].clone();
        let old_ref = training.ref_.clone();
        self.apply_training_input(&mut training, input, Some(t))?;
        if training.ref_ != old_ref {
            if let Some(r) = &old_ref {
                self.training_by_ref.remove(r);
            }
            if let Some(r) = &training.ref_ {
                self.training_by_ref.insert(r.clone(), t);
            }
        }
        self.trainings[t] = training;
        Ok(t)
    }

    fn apply_training_input(
        &self,
        training: &mut TrainingRec,
        input: TrainingInput,
        except: Option<usize>,
    ) -> Result<(), ApiError> {
        if let Some(r) = input.ref_ {
            if r.is_empty() {
                return Err(ApiError::bad_input("`ref` must not be empty"));
            }
            if let Some(other) = self.training_by_ref.get(&r) {
                if Some(*other) != except {
                    return Err(ApiError::new(
                        ErrorCode::TrainingRefTaken,
                        format!("ref `{r}` is already used by another training"),
                    ));
                }
            }
            training.ref_ = Some(r);
        }
        if let Some(title) = input.title {
            if title.trim().is_empty() {
                return Err(ApiError::bad_input("`training.title` must not be blank"));
            }
            training.title = title;
        }
        let texts = [
            (input.subtitle, &mut training.subtitle),
            (input.introduction, &mut training.introduction),
        ];
        for (value, field) in texts {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(d) = input.start_date {
            training.start_date = Some(parse_date(&d)?);
        }
        if let Some(d) = input.end_date {
            training.end_date = Some(parse_date(&d)?);
        }
        if let (Some(start), Some(end)) = (training.start_date, training.end_date) {
            if end < start {
                return Err(ApiError::bad_input(format!(
                    "`endDate` {end} is before `startDate` {start}"
                )));
            }
        }
        let flags = [
            (input.is_active, &mut training.is_active),
            (input.archived, &mut training.archived),
            (input.show_participants, &mut training.show_participants),
            (input.show_shared_files, &mut training.show_shared_files),
            (input.enable_chat, &mut training.enable_chat),
        ];
        for (value, field) in flags {
            if let Some(value) = value {
                *field = value;
            }
        }
        Ok(())
    }

    /// Whether `user` reaches training `t` through a linked group or an enrollment (as Pluvo
    /// has processed them: visible group members, enrollments that hold a seat).
    pub fn linked_via_object(&self, t: usize, user: usize) -> bool {
        let via_group = self.trainings[t]
            .groups
            .iter()
            .any(|&g| self.groups[g].members.visible().contains(&user));
        via_group
            || self.offer_events.iter().any(|event| {
                event.training == Some(t)
                    && event
                        .enrollments
                        .iter()
                        .any(|e| e.user == user && e.status == EnrollmentStatus::Enrolled)
            })
    }

    /// The roles `user` visibly holds in training `t`, including PARTICIPANT via an object.
    pub fn training_roles_of(&self, t: usize, user: usize) -> Vec<TrainingRole> {
        let visible = self.trainings[t].members.visible();
        let mut roles: BTreeSet<TrainingRole> = TrainingRole::ALL
            .into_iter()
            .filter(|&r| visible.contains(&(user, r)))
            .collect();
        if self.linked_via_object(t, user) {
            roles.insert(TrainingRole::Participant);
        }
        roles.into_iter().collect()
    }

    /// Everyone who visibly reaches training `t`, in creation order.
    pub fn training_users(&self, t: usize) -> Vec<usize> {
        (0..self.users.len())
            .filter(|&u| !self.training_roles_of(t, u).is_empty())
            .collect()
    }

    /// Trainings matching `paginatedTrainings` filters, in creation order, and the user the
    /// nodes' `userData` is about.
    pub fn filter_trainings(
        &self,
        filter: &TrainingFilter,
    ) -> Result<(Vec<usize>, Option<usize>), ApiError> {
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let user = match &filter.user_id {
            None => None,
            Some(id) => Some(
                self.user_by_id
                    .get(&parse_uuid(id, "a user id")?)
                    .copied()
                    .ok_or_else(|| ApiError::not_found(format!("no user with id `{id}`")))?,
            ),
        };
        let roles = filter
            .roles
            .as_ref()
            .map(|roles| roles.iter().map(|r| TrainingRole::parse(r)).collect())
            .transpose()?;
        let roles: Option<Vec<TrainingRole>> = roles;
        if roles.is_some() && user.is_none() {
            return Err(ApiError::bad_input("`trainingUserRoles` needs `userId`"));
        }
        let items = (0..self.trainings.len())
            .filter(|&t| {
                let training = &self.trainings[t];
                q.as_ref().is_none_or(|q| {
                    training.title.to_lowercase().contains(q)
                        || training
                            .ref_
                            .as_ref()
                            .is_some_and(|r| r.to_lowercase().contains(q))
                }) && filter.active.is_none_or(|a| training.is_active == a)
                    && filter.archived.is_none_or(|a| training.archived == a)
                    && user.is_none_or(|u| {
                        let held = self.training_roles_of(t, u);
                        match &roles {
                            None => !held.is_empty(),
                            Some(wanted) => held.iter().any(|r| wanted.contains(r)),
                        }
                    })
            })
            .collect();
        Ok((items, user))
    }

    /// `addUsersToTraining` (`add`) or `removeUsersFromTraining`, for one role. Unknown users
    /// are reported, not fatal; an unknown training fails the whole field.
    pub fn change_training_membership(
        &mut self,
        training: &Selector,
        users: &[UserKey],
        role: TrainingRole,
        add: bool,
        now: Instant,
        delay: Duration,
    ) -> Result<BulkOutcome, ApiError> {
        let t = self.require_training(training)?;
        let mut outcome = BulkOutcome::default();
        for key in users {
            let Some(user) = self.user_of_key(key) else {
                outcome.failed.push(key.clone());
                continue;
            };
            // Access through a group or an enrollment cannot be removed directly, whatever
            // direct role the person also holds: removing it would not take the training away.
            if !add && role == TrainingRole::Participant && self.linked_via_object(t, user) {
                outcome.linked.push(key.clone());
                continue;
            }
            let members = &mut self.trainings[t].members;
            if members.change((user, role), add, now, delay) {
                outcome.changed.push(key.clone());
            } else {
                outcome.unchanged.push(key.clone());
            }
        }
        Ok(outcome)
    }

    /// Seeding: a direct role, committed and visible at once.
    pub(super) fn grant_now(&mut self, t: usize, user: usize, role: TrainingRole) {
        self.trainings[t].members.insert_now((user, role));
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::tenant;
    use super::*;

    fn training(state: &mut State) -> usize {
        state
            .create_training(TrainingInput {
                ref_: Some("t".into()),
                title: Some("T".into()),
                ..TrainingInput::default()
            })
            .expect("create")
    }

    #[test]
    fn removal_reports_group_linked_people_and_removes_nothing_for_them() {
        let mut state = tenant();
        let t = training(&mut state);
        state.trainings[t].groups.insert(0);
        state.groups[0].members.insert_now(0); // E1 in the linked group
        let now = Instant::now();
        let sel = Selector::Ref("t".into());
        let e1 = UserKey::Ref("E1".into());
        let e2 = UserKey::Ref("E2".into());
        let nobody = UserKey::Ref("E404".into());
        let keys = [e1.clone(), e2.clone(), nobody.clone()];
        let role = TrainingRole::Participant;
        let added = state
            .change_training_membership(&sel, &keys, role, true, now, Duration::ZERO)
            .expect("add");
        assert_eq!(added.changed, vec![e1.clone(), e2.clone()]);
        assert_eq!(added.failed, vec![nobody.clone()]);
        let removed = state
            .change_training_membership(&sel, &keys, role, false, now, Duration::ZERO)
            .expect("remove");
        assert_eq!(
            removed,
            BulkOutcome {
                changed: vec![e2.clone()],
                unchanged: vec![],
                linked: vec![e1],
                failed: vec![nobody],
            }
        );
        let trainer = state
            .change_training_membership(
                &sel,
                &[e2],
                TrainingRole::Trainer,
                false,
                now,
                Duration::ZERO,
            )
            .expect("remove trainer");
        assert_eq!(trainer.unchanged.len(), 1, "roles are held independently");
    }

    #[test]
    fn training_inputs_are_checked_all_or_nothing() {
        let mut state = tenant();
        let t = training(&mut state);
        let other = state
            .create_training(TrainingInput {
                ref_: Some("u".into()),
                title: Some("U".into()),
                ..TrainingInput::default()
            })
            .expect("second");
        let sel = Selector::Ref("u".into());
        let cases = [
            (
                "ref taken",
                TrainingInput {
                    ref_: Some("t".into()),
                    ..TrainingInput::default()
                },
                Some(ErrorCode::TrainingRefTaken),
            ),
            (
                "blank title",
                TrainingInput {
                    title: Some(" ".into()),
                    ..TrainingInput::default()
                },
                Some(ErrorCode::BadUserInput),
            ),
            (
                "bad date",
                TrainingInput {
                    start_date: Some("2026-13-01".into()),
                    ..TrainingInput::default()
                },
                Some(ErrorCode::BadUserInput),
            ),
            (
                "end before start",
                TrainingInput {
                    start_date: Some("2026-02-01".into()),
                    end_date: Some("2026-01-01".into()),
                    ..TrainingInput::default()
                },
                Some(ErrorCode::BadUserInput),
            ),
            (
                "retire",
                TrainingInput {
                    is_active: Some(false),
                    subtitle: Some("old".into()),
                    ..TrainingInput::default()
                },
                None,
            ),
        ];
        for (name, input, expected) in cases {
            let got = state.update_training(&sel, input).err().map(|e| e.code);
            assert_eq!(got, expected, "case {name}");
        }
        assert!(!state.trainings[other].is_active);
        assert_eq!(state.trainings[other].subtitle, "old");
        assert!(
            state.trainings[other].start_date.is_none(),
            "failed updates left no trace"
        );
        assert_eq!(state.trainings[t].ref_.as_deref(), Some("t"));
    }
}
