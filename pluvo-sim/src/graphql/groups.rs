//! Resolvers for groups: the `group` and `paginatedGroups` root fields, the membership
//! mutations, and the `Group` object.
//!
//! One room per area so that each area's resolvers can grow on their own; membership rules,
//! including the delay before a change shows, live in [`crate::state`].

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;

use super::args::{arg_str, selector, user_keys};
use super::errors::field_error;
use super::paging::{Connection, Kind};
use super::{Ctx, Resolved, opt_leaf};
use crate::state::ApiError;

/// `group(id | ref)`.
pub(super) fn group<'a>(ctx: &'a Ctx, args: &JsonMap) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let found = state.group_by_selector(&selector(args, "id", "ref")?)?;
    Ok(ResolvedValue::nullable_object(
        found.map(|idx| GroupObj { ctx, idx }),
    ))
}

/// `paginatedGroups(q, first, after, offset)`.
pub(super) fn paginated_groups<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    let items = state.filter_groups(arg_str(args, "q").as_deref());
    Ok(ResolvedValue::object(Connection::new(
        ctx,
        Kind::Group,
        &items,
        args,
        true,
    )?))
}

/// `addUsersToGroup` (`add`) or `removeUsersFromGroup`.
pub(super) fn change_membership<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
    add: bool,
) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    let group = selector(args, "groupId", "groupRef")?;
    let users = user_keys(args);
    let outcome = state.change_membership(&group, &users, add, ctx.now, ctx.delay)?;
    let keys = if add {
        ["addedIds", "alreadyAddedIds", "failedIds"]
    } else {
        ["removedIds", "alreadyRemovedIds", "failedIds"]
    };
    let lists = [outcome.changed, outcome.unchanged, outcome.failed];
    let type_name = if add {
        "AddUsersToGroup"
    } else {
        "RemoveUsersFromGroup"
    };
    Ok(ResolvedValue::object(Lists::new(
        type_name,
        keys.into_iter().map(str::to_owned).zip(lists).collect(),
    )))
}

/// A payload of string lists (the group and training membership results).
pub(super) struct Lists {
    type_name: &'static str,
    fields: Vec<(String, Vec<String>)>,
}

impl Lists {
    pub(super) fn new(type_name: &'static str, fields: Vec<(String, Vec<String>)>) -> Self {
        Self { type_name, fields }
    }
}

impl ObjectValue for Lists {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        match self
            .fields
            .iter()
            .find(|(name, _)| *name == info.field_name())
        {
            Some((_, values)) => Ok(ResolvedValue::list(
                values.iter().map(|v| ResolvedValue::leaf(v.as_str())),
            )),
            None => Err(self.unknown_field_error(info)),
        }
    }
}

pub(super) struct GroupObj<'c> {
    pub(super) ctx: &'c Ctx,
    pub(super) idx: usize,
}

impl ObjectValue for GroupObj<'_> {
    fn type_name(&self) -> &str {
        "Group"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let state = ctx.state.borrow();
        let group = &state.groups[self.idx];
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(group.id.to_string()),
            "ref" => opt_leaf(group.ref_.clone()),
            "name" => ResolvedValue::leaf(group.name.as_str()),
            "userCount" => ResolvedValue::leaf(
                i64::try_from(group.members.visible().len()).unwrap_or(i64::MAX),
            ),
            "users" | "managers" => {
                let set = if info.field_name() == "users" {
                    group.members.visible()
                } else {
                    &group.managers
                };
                let items: Vec<usize> = set.iter().copied().collect();
                drop(state);
                ResolvedValue::object(
                    Connection::new(ctx, Kind::User, &items, info.arguments(), false)
                        .map_err(field_error)?,
                )
            }
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
