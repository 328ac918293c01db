//! Resolvers for people: the `user` and `paginatedUsers` root fields, the user mutations, and
//! the `User` object.
//!
//! One room per area so that the learning side's resolvers (trainings, enrolments, ...) land
//! next to these instead of inside them; the rules themselves live in [`crate::state`].

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;

use super::args::{arg_bool, arg_str, arg_strs, user_input, user_selector};
use super::categories::values_of;
use super::groups::GroupObj;
use super::paging::{Connection, Kind};
use super::{Ctx, Resolved, bump, objects, opt_leaf};
use crate::state::{ApiError, ErrorCode, UpsertSelector, UserFilter, exactly_one};

/// `user(id | ref | email)`.
pub(super) fn user<'a>(ctx: &'a Ctx, args: &JsonMap) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let given = ["id", "ref", "email"]
        .iter()
        .filter(|k| arg_str(args, k).is_some())
        .count();
    if given != 1 {
        return Err(ApiError::new(
            ErrorCode::BadUserInput,
            "give exactly one of `id`, `ref`, `email`",
        ));
    }
    let found = match arg_str(args, "email") {
        Some(email) => state.user_by_email(&email),
        None => state.user_by_selector(&user_selector(args, "id")?)?,
    };
    Ok(ResolvedValue::nullable_object(
        found.map(|idx| UserObj { ctx, idx }),
    ))
}

/// `paginatedUsers(q, archived, userRoles, groupIds, lastLogin_*, first, after, offset)`.
pub(super) fn paginated_users<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let filter = UserFilter {
        q: arg_str(args, "q"),
        archived: arg_bool(args, "archived"),
        roles: arg_strs(args, "userRoles"),
        group_ids: arg_strs(args, "groupIds"),
        last_login_gt: arg_str(args, "lastLogin_Gt"),
        last_login_lt: arg_str(args, "lastLogin_Lt"),
    };
    let items = state.filter_users(&filter)?;
    Ok(ResolvedValue::object(Connection::new(
        ctx,
        Kind::User,
        &items,
        args,
        true,
    )?))
}

/// `updateOrCreateUser`; counts an invitation for a created user unless `sendInvite: false`.
pub(super) fn update_or_create_user<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    let selector = match exactly_one(
        arg_str(args, "ref"),
        arg_str(args, "email"),
        ("ref", "email"),
    )? {
        Ok(r) => UpsertSelector::Ref(r),
        Err(e) => UpsertSelector::Email(e),
    };
    let (idx, created) = state.update_or_create_user(selector, user_input(args))?;
    if created && arg_bool(args, "sendInvite").unwrap_or(true) {
        bump(&ctx.counts.invitations, 1);
    }
    Ok(ResolvedValue::object(UserPayload {
        ctx,
        idx,
        created: Some(created),
    }))
}

/// `updateUser`.
pub(super) fn update_user<'a>(ctx: &'a Ctx, args: &JsonMap) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    let idx = state.update_user(&user_selector(args, "id")?, user_input(args))?;
    Ok(ResolvedValue::object(UserPayload {
        ctx,
        idx,
        created: None,
    }))
}

struct UserPayload<'c> {
    ctx: &'c Ctx,
    idx: usize,
    /// `Some` for `UpdateOrCreateUser`, `None` for `UpdateUser`.
    created: Option<bool>,
}

impl ObjectValue for UserPayload<'_> {
    fn type_name(&self) -> &str {
        if self.created.is_some() {
            "UpdateOrCreateUser"
        } else {
            "UpdateUser"
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        match info.field_name() {
            "user" => Ok(ResolvedValue::object(UserObj {
                ctx: self.ctx,
                idx: self.idx,
            })),
            "created" => Ok(ResolvedValue::leaf(self.created.unwrap_or(false))),
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

pub(super) struct UserObj<'c> {
    pub(super) ctx: &'c Ctx,
    pub(super) idx: usize,
}

impl ObjectValue for UserObj<'_> {
    fn type_name(&self) -> &str {
        "User"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let state = ctx.state.borrow();
        let user = &state.users[self.idx];
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(user.id.to_string()),
            "ref" => opt_leaf(user.ref_.clone()),
            "email" => ResolvedValue::leaf(user.email.as_str()),
            "name" => ResolvedValue::leaf(user.name.as_str()),
            "archived" => ResolvedValue::leaf(user.archived),
            "roles" => ResolvedValue::list(
                user.roles
                    .iter()
                    .map(|r| ResolvedValue::leaf(r.as_str()))
                    .collect::<Vec<_>>(),
            ),
            "language" => opt_leaf(user.language.clone()),
            "lastLogin" => opt_leaf(user.last_login.map(|l| l.to_rfc3339())),
            "participantGroups" => objects(
                state
                    .visible_groups_of(self.idx)
                    .into_iter()
                    .map(|idx| GroupObj { ctx, idx }),
            ),
            "managerGroups" => objects(
                state
                    .managed_groups_of(self.idx)
                    .into_iter()
                    .map(|idx| GroupObj { ctx, idx }),
            ),
            "extraCategoryValues" => {
                drop(state);
                values_of(ctx, self.idx, None)
            }
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
