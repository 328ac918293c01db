//! Offer events (dated moments of an offer) and enrollments in them.
//!
//! People enroll in an event, never in the offer itself. Enrolling is idempotent: someone
//! already holding a seat or a waitlist place gets that enrollment back, never a second one. An
//! event with `maxSubscriptions` enrolls people past that number as `WAITLISTED`. Unknown users
//! are left out of the result rather than failing the call (the contract's assumption).

use uuid::Uuid;

use super::{ApiError, Selector, State, UserKey, parse_uuid};

/// Pluvo's `EnrollmentStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    Enrolled,
    Waitlisted,
    Cancelled,
    Declined,
}

impl EnrollmentStatus {
    const ALL: [Self; 4] = [
        Self::Enrolled,
        Self::Waitlisted,
        Self::Cancelled,
        Self::Declined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "ENROLLED",
            Self::Waitlisted => "WAITLISTED",
            Self::Cancelled => "CANCELLED",
            Self::Declined => "DECLINED",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ApiError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| ApiError::bad_input(format!("unknown enrollment status `{text}`")))
    }

    /// Whether the enrollment still stands (a seat or a waitlist place).
    fn stands(self) -> bool {
        matches!(self, Self::Enrolled | Self::Waitlisted)
    }
}

#[derive(Debug, Clone)]
pub struct EnrollmentRec {
    pub id: Uuid,
    pub user: usize,
    pub status: EnrollmentStatus,
}

#[derive(Debug, Clone)]
pub struct OfferEventRec {
    pub id: Uuid,
    pub ref_: Option<String>,
    pub title: String,
    pub max_subscriptions: Option<u32>,
    /// The training the event belongs to: enrolled people reach it "via object".
    pub training: Option<usize>,
    /// In enrollment order; at most one per user.
    pub enrollments: Vec<EnrollmentRec>,
}

impl OfferEventRec {
    /// Seats taken (`ENROLLED`), which is what `maxSubscriptions` limits.
    pub fn enrolled_count(&self) -> usize {
        self.enrollments
            .iter()
            .filter(|e| e.status == EnrollmentStatus::Enrolled)
            .count()
    }

    fn status_for_newcomer(&self) -> EnrollmentStatus {
        let full = self
            .max_subscriptions
            .is_some_and(|max| self.enrolled_count() >= usize::try_from(max).unwrap_or(usize::MAX));
        if full {
            EnrollmentStatus::Waitlisted
        } else {
            EnrollmentStatus::Enrolled
        }
    }
}

/// Result of `createOfferEventEnrollments`: the event, and per named user (deduplicated, in the
/// order named) the index of their enrollment in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub event: usize,
    pub enrollments: Vec<usize>,
    /// Enrollments created or revived by this call: each would have been sent a mail.
    pub new: u64,
}

impl State {
    pub fn offer_event_by_selector(&self, selector: &Selector) -> Result<Option<usize>, ApiError> {
        Ok(match selector {
            Selector::Id(text) => self
                .offer_event_by_id
                .get(&parse_uuid(text, "an offer event id")?)
                .copied(),
            Selector::Ref(r) => self.offer_event_by_ref.get(r).copied(),
        })
    }

    pub fn require_offer_event(&self, selector: &Selector) -> Result<usize, ApiError> {
        self.offer_event_by_selector(selector)?.ok_or_else(|| {
            ApiError::not_found(format!("no offer event with {}", selector.describe()))
        })
    }

    /// Enrolls the named people. A standing enrollment is returned as it is; a cancelled or
    /// declined one is revived (same id), as enrolling someone again would in Pluvo's interface.
    pub fn enroll(&mut self, event: &Selector, users: &[UserKey]) -> Result<Enrolled, ApiError> {
        let e = self.require_offer_event(event)?;
        let mut result = Enrolled {
            event: e,
            enrollments: Vec::new(),
            new: 0,
        };
        for key in users {
            let Some(user) = self.user_of_key(key) else {
                continue;
            };
            let existing = self.offer_events[e]
                .enrollments
                .iter()
                .position(|en| en.user == user);
            let idx = match existing {
                Some(idx) => {
                    let event = &self.offer_events[e];
                    if !event.enrollments[idx].status.stands() {
                        let status = event.status_for_newcomer();
                        self.offer_events[e].enrollments[idx].status = status;
                        result.new += 1;
                    }
                    idx
                }
                None => {
                    let id = self.next_id();
                    let event = &mut self.offer_events[e];
                    let status = event.status_for_newcomer();
                    event.enrollments.push(EnrollmentRec { id, user, status });
                    result.new += 1;
                    event.enrollments.len() - 1
                }
            };
            if !result.enrollments.contains(&idx) {
                result.enrollments.push(idx);
            }
        }
        Ok(result)
    }

    /// Admin: sets the status of someone's enrollment (e.g. cancelled by hand in Pluvo).
    pub fn set_enrollment_status(
        &mut self,
        event: &Selector,
        user: &UserKey,
        status: EnrollmentStatus,
    ) -> Result<(), ApiError> {
        let e = self.require_offer_event(event)?;
        let u = self
            .user_of_key(user)
            .ok_or_else(|| ApiError::not_found(format!("no user `{}`", user.as_given())))?;
        let enrollment = self.offer_events[e]
            .enrollments
            .iter_mut()
            .find(|en| en.user == u)
            .ok_or_else(|| ApiError::not_found(format!("`{}` is not enrolled", user.as_given())))?;
        enrollment.status = status;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::tenant;
    use super::*;

    #[test]
    fn enrolment_is_idempotent_waitlists_past_the_maximum_and_revives_cancellations() {
        let mut state = tenant();
        let id = state.next_id();
        state.offer_event_by_ref.insert("ev".into(), 0);
        state.offer_events.push(OfferEventRec {
            id,
            ref_: Some("ev".into()),
            title: "Ev".into(),
            max_subscriptions: Some(1),
            training: None,
            enrollments: Vec::new(),
        });
        let ev = Selector::Ref("ev".into());
        let (e1, e2) = (UserKey::Ref("E1".into()), UserKey::Ref("E2".into()));
        let statuses = |state: &State| -> Vec<&str> {
            state.offer_events[0]
                .enrollments
                .iter()
                .map(|e| e.status.as_str())
                .collect()
        };
        let first = state
            .enroll(
                &ev,
                &[
                    e1.clone(),
                    UserKey::Ref("E404".into()),
                    e2.clone(),
                    e1.clone(),
                ],
            )
            .expect("enroll");
        assert_eq!(
            first.enrollments,
            vec![0, 1],
            "unknown left out, duplicate once"
        );
        assert_eq!(first.new, 2);
        assert_eq!(statuses(&state), ["ENROLLED", "WAITLISTED"]);
        let again = state.enroll(&ev, std::slice::from_ref(&e2)).expect("again");
        assert_eq!((again.enrollments, again.new), (vec![1], 0), "idempotent");
        state
            .set_enrollment_status(&ev, &e1, EnrollmentStatus::Cancelled)
            .expect("cancel");
        let revived = state.enroll(&ev, &[e1]).expect("revive");
        assert_eq!((revived.enrollments, revived.new), (vec![0], 1));
        assert_eq!(
            statuses(&state),
            ["ENROLLED", "WAITLISTED"],
            "seat free again"
        );
        assert!(state.enroll(&Selector::Ref("nope".into()), &[e2]).is_err());
    }
}
