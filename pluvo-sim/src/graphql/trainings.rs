//! Resolvers for trainings: the `training` and `paginatedTrainings` root fields, the training
//! mutations (create, update, add and remove people per role), and the `Training` object.
//!
//! The rules, including the delay before a membership change shows and who is linked via a
//! group, live in [`crate::state`]; this room turns arguments into calls and results into the
//! schema's payloads.

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{JsonMap, JsonValue};

use super::args::{arg_bool, arg_str, arg_strs, selector, user_keys};
use super::groups::{GroupObj, Lists};
use super::paging::{Connection, Kind};
use super::users::UserObj;
use super::{Ctx, Resolved, bump, objects, opt_leaf};
use crate::config::ResultForms;
use crate::state::{ApiError, State, TrainingFilter, TrainingInput, TrainingRole, UserKey};

/// `training(id | ref)`.
pub(super) fn training<'a>(ctx: &'a Ctx, args: &JsonMap) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let found = state.training_by_selector(&selector(args, "id", "ref")?)?;
    Ok(ResolvedValue::nullable_object(found.map(|idx| {
        TrainingObj {
            ctx,
            idx,
            user: None,
        }
    })))
}

/// `paginatedTrainings(q, active, archived, userId, trainingUserRoles, first, after, offset)`.
pub(super) fn paginated_trainings<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let filter = TrainingFilter {
        q: arg_str(args, "q"),
        active: arg_bool(args, "active"),
        archived: arg_bool(args, "archived"),
        user_id: arg_str(args, "userId"),
        roles: arg_strs(args, "trainingUserRoles"),
    };
    let (items, user) = state.filter_trainings(&filter)?;
    Ok(ResolvedValue::object(Connection::new(
        ctx,
        Kind::Training { user },
        &items,
        args,
        true,
    )?))
}

fn training_input(args: &JsonMap) -> TrainingInput {
    let Some(input) = args.get("training").and_then(JsonValue::as_object) else {
        return TrainingInput::default();
    };
    TrainingInput {
        ref_: arg_str(input, "ref"),
        title: arg_str(input, "title"),
        subtitle: arg_str(input, "subtitle"),
        introduction: arg_str(input, "introduction"),
        start_date: arg_str(input, "startDate"),
        end_date: arg_str(input, "endDate"),
        is_active: arg_bool(input, "isActive"),
        archived: arg_bool(input, "archived"),
        show_participants: arg_bool(input, "showParticipants"),
        show_shared_files: arg_bool(input, "showSharedFiles"),
        enable_chat: arg_bool(input, "enableChat"),
    }
}

/// `createTraining` (`create`) or `updateTraining`.
pub(super) fn save_training<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
    create: bool,
) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    let idx = if create {
        state.create_training(training_input(args))?
    } else {
        state.update_training(&selector(args, "id", "ref")?, training_input(args))?
    };
    Ok(ResolvedValue::object(TrainingPayload { ctx, idx, create }))
}

/// `addUsersToTraining` (`add`) or `removeUsersFromTraining`; with `sendInvites` true (the
/// default) every person added would have been sent an invitation, which the stats count.
pub(super) fn change_membership<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
    add: bool,
) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    let training = selector(args, "trainingId", "trainingRef")?;
    let role =
        arg_str(args, "role").map_or(Ok(TrainingRole::Participant), |r| TrainingRole::parse(&r))?;
    let users = user_keys(args);
    let outcome =
        state.change_training_membership(&training, &users, role, add, ctx.now, ctx.delay)?;
    if add && arg_bool(args, "sendInvites").unwrap_or(true) {
        let invited = u64::try_from(outcome.changed.len()).unwrap_or(u64::MAX);
        bump(&ctx.counts.training_invitations, invited);
    }
    let (type_name, lists) = if add {
        (
            "AddUsersToTraining",
            vec![
                (["addedIds", "addedRefs"], outcome.changed),
                (["alreadyAddedIds", "alreadyAddedRefs"], outcome.unchanged),
                (["failedIds", "failedRefs"], outcome.failed),
            ],
        )
    } else {
        (
            "RemoveUsersFromTraining",
            vec![
                (["removedIds", "removedRefs"], outcome.changed),
                (
                    ["alreadyRemovedIds", "alreadyRemovedRefs"],
                    outcome.unchanged,
                ),
                (
                    ["idsLinkedViaObject", "refsLinkedViaObject"],
                    outcome.linked,
                ),
                (["failedIds", "failedRefs"], outcome.failed),
            ],
        )
    };
    Ok(ResolvedValue::object(Lists::by_form(
        type_name,
        lists,
        ctx.result_forms,
        &state,
    )))
}

impl Lists {
    /// Splits each result list into its pair of fields (`addedIds`, `addedRefs`), by how each
    /// person was named or, under [`ResultForms::Both`], into both for every known person.
    fn by_form(
        type_name: &'static str,
        lists: Vec<([&str; 2], Vec<UserKey>)>,
        forms: ResultForms,
        state: &State,
    ) -> Self {
        let mut fields = Vec::new();
        for ([ids_field, refs_field], keys) in lists {
            let (mut ids, mut refs) = (Vec::new(), Vec::new());
            for key in &keys {
                let known = match forms {
                    ResultForms::Given => None,
                    ResultForms::Both => state.user_of_key(key).map(|u| &state.users[u]),
                };
                match (known, key) {
                    (Some(user), _) => {
                        ids.push(user.id.to_string());
                        refs.extend(user.ref_.clone());
                    }
                    (None, UserKey::Id(id)) => ids.push(id.clone()),
                    (None, other) => refs.push(other.as_given().to_owned()),
                }
            }
            fields.push((ids_field.to_owned(), ids));
            fields.push((refs_field.to_owned(), refs));
        }
        Self::new(type_name, fields)
    }
}

struct TrainingPayload<'c> {
    ctx: &'c Ctx,
    idx: usize,
    create: bool,
}

impl ObjectValue for TrainingPayload<'_> {
    fn type_name(&self) -> &str {
        if self.create {
            "CreateTraining"
        } else {
            "UpdateTraining"
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        match info.field_name() {
            "training" => Ok(ResolvedValue::object(TrainingObj {
                ctx: self.ctx,
                idx: self.idx,
                user: None,
            })),
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

pub(super) struct TrainingObj<'c> {
    pub(super) ctx: &'c Ctx,
    pub(super) idx: usize,
    /// The user `paginatedTrainings` was filtered on: `userData` is about them.
    pub(super) user: Option<usize>,
}

impl ObjectValue for TrainingObj<'_> {
    fn type_name(&self) -> &str {
        "Training"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let state = ctx.state.borrow();
        let t = &state.trainings[self.idx];
        let date = |d: Option<chrono::NaiveDate>| opt_leaf(d.map(|d| d.to_string()));
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(t.id.to_string()),
            "ref" => opt_leaf(t.ref_.clone()),
            "title" => ResolvedValue::leaf(t.title.as_str()),
            "subtitle" => ResolvedValue::leaf(t.subtitle.as_str()),
            "introduction" => ResolvedValue::leaf(t.introduction.as_str()),
            "isActive" => ResolvedValue::leaf(t.is_active),
            "archived" => ResolvedValue::leaf(t.archived),
            "startDate" => date(t.start_date),
            "endDate" => date(t.end_date),
            "showParticipants" => ResolvedValue::leaf(t.show_participants),
            "showSharedFiles" => ResolvedValue::leaf(t.show_shared_files),
            "enableChat" => ResolvedValue::leaf(t.enable_chat),
            "users" => objects(
                state
                    .training_users(self.idx)
                    .into_iter()
                    .map(|idx| UserObj { ctx, idx }),
            ),
            "groups" => objects(t.groups.iter().map(|&idx| GroupObj { ctx, idx })),
            // An API client is no user of the tenant, and the simulator plans no events.
            "rolesForCurrentUser" | "nextEvent" | "progress" => ResolvedValue::null(),
            "userData" => match self.user {
                None => ResolvedValue::null(),
                Some(user) => {
                    let progress = t.progress.get(&user).map_or(0.0, |p| p.progress);
                    let roles = state.training_roles_of(self.idx, user);
                    ResolvedValue::object(UserData { progress, roles })
                }
            },
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct UserData {
    progress: f64,
    roles: Vec<TrainingRole>,
}

impl ObjectValue for UserData {
    fn type_name(&self) -> &str {
        "TrainingUserData"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        Ok(match info.field_name() {
            "progress" => ResolvedValue::leaf(self.progress),
            "roles" => {
                ResolvedValue::list(self.roles.iter().map(|r| ResolvedValue::leaf(r.as_str())))
            }
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
