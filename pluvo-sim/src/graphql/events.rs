//! Resolvers for offer events and enrollments: the `offerEvent` root field,
//! `createOfferEventEnrollments`, and the `OfferEvent` and `Enrollment` objects.
//!
//! Idempotence, the waitlist and leaving unknown people out are rules of [`crate::state`]; this
//! room counts the mails a call would have sent (`sendMail` defaults to true).

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;

use super::args::{arg_bool, selector, user_keys};
use super::users::UserObj;
use super::{Ctx, Resolved, bump, objects, opt_leaf};
use crate::state::ApiError;

/// `offerEvent(id | ref)`.
pub(super) fn offer_event<'a>(ctx: &'a Ctx, args: &JsonMap) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let found = state.offer_event_by_selector(&selector(args, "id", "ref")?)?;
    Ok(ResolvedValue::nullable_object(
        found.map(|idx| OfferEventObj { ctx, idx }),
    ))
}

/// `createOfferEventEnrollments`: the enrollment of every known person named, once each.
pub(super) fn create_enrollments<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    let event = selector(args, "offerEventId", "offerEventRef")?;
    let enrolled = state.enroll(&event, &user_keys(args))?;
    if arg_bool(args, "sendMail").unwrap_or(true) {
        bump(&ctx.counts.enrollment_mails, enrolled.new);
    }
    Ok(objects(enrolled.enrollments.into_iter().map(|idx| {
        EnrollmentObj {
            ctx,
            event: enrolled.event,
            idx,
        }
    })))
}

struct OfferEventObj<'c> {
    ctx: &'c Ctx,
    idx: usize,
}

impl ObjectValue for OfferEventObj<'_> {
    fn type_name(&self) -> &str {
        "OfferEvent"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let state = self.ctx.state.borrow();
        let event = &state.offer_events[self.idx];
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(event.id.to_string()),
            "ref" => opt_leaf(event.ref_.clone()),
            "title" => ResolvedValue::leaf(event.title.as_str()),
            "maxSubscriptions" => event
                .max_subscriptions
                .map_or_else(ResolvedValue::null, |m| ResolvedValue::leaf(i64::from(m))),
            "enrollmentCount" => {
                ResolvedValue::leaf(i64::try_from(event.enrolled_count()).unwrap_or(i64::MAX))
            }
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct EnrollmentObj<'c> {
    ctx: &'c Ctx,
    event: usize,
    idx: usize,
}

impl ObjectValue for EnrollmentObj<'_> {
    fn type_name(&self) -> &str {
        "Enrollment"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let state = ctx.state.borrow();
        let enrollment = &state.offer_events[self.event].enrollments[self.idx];
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(enrollment.id.to_string()),
            "status" => ResolvedValue::leaf(enrollment.status.as_str()),
            "user" => ResolvedValue::object(UserObj {
                ctx,
                idx: enrollment.user,
            }),
            "offerEvent" => ResolvedValue::object(OfferEventObj {
                ctx,
                idx: self.event,
            }),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
