//! Argument coercion: from the validated JSON arguments of a field to the typed inputs and
//! selectors of [`crate::state`].
//!
//! Validation has already checked the types, so these read leniently; the one rule they add is
//! Pluvo's "exactly one of id / ref" for selectors.

use apollo_compiler::response::{JsonMap, JsonValue};

use crate::state::{ApiError, Selector, UserInput, UserKey, UserSelector, ValueInput, exactly_one};

pub(super) fn arg_str(args: &JsonMap, name: &str) -> Option<String> {
    args.get(name)
        .and_then(JsonValue::as_str)
        .map(str::to_owned)
}

pub(super) fn arg_bool(args: &JsonMap, name: &str) -> Option<bool> {
    args.get(name).and_then(JsonValue::as_bool)
}

pub(super) fn arg_int(args: &JsonMap, name: &str) -> Option<i64> {
    args.get(name).and_then(JsonValue::as_i64)
}

pub(super) fn arg_strs(args: &JsonMap, name: &str) -> Option<Vec<String>> {
    args.get(name).and_then(JsonValue::as_array).map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// The people a bulk call names: `userIds`, then `userRefs`, each as given.
pub(super) fn user_keys(args: &JsonMap) -> Vec<UserKey> {
    let ids = arg_strs(args, "userIds")
        .unwrap_or_default()
        .into_iter()
        .map(UserKey::Id);
    let refs = arg_strs(args, "userRefs")
        .unwrap_or_default()
        .into_iter()
        .map(UserKey::Ref);
    ids.chain(refs).collect()
}

pub(super) fn user_input(args: &JsonMap) -> UserInput {
    let Some(input) = args.get("user").and_then(JsonValue::as_object) else {
        return UserInput::default();
    };
    UserInput {
        name: arg_str(input, "name"),
        email: arg_str(input, "email"),
        ref_: arg_str(input, "ref"),
        roles: arg_strs(input, "roles"),
        language: arg_str(input, "language"),
        archived: arg_bool(input, "archived"),
    }
}

pub(super) fn value_inputs(args: &JsonMap) -> Vec<ValueInput> {
    let items = args
        .get("values")
        .and_then(JsonValue::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    items
        .iter()
        .filter_map(JsonValue::as_object)
        .map(|v| ValueInput {
            category_id: arg_str(v, "categoryId"),
            category_ref: arg_str(v, "categoryRef"),
            string_value: arg_str(v, "stringValue"),
            boolean_value: arg_bool(v, "booleanValue"),
            datetime_value: arg_str(v, "datetimeValue"),
            choice_values: v
                .get("choiceValues")
                .and_then(JsonValue::as_array)
                .map(|options| {
                    options
                        .iter()
                        .filter_map(|o| o.as_object().and_then(|o| arg_str(o, "stringValue")))
                        .collect()
                }),
        })
        .collect()
}

pub(super) fn user_selector(args: &JsonMap, id: &str) -> Result<UserSelector, ApiError> {
    Ok(
        match exactly_one(arg_str(args, id), arg_str(args, "ref"), (id, "ref"))? {
            Ok(id) => UserSelector::Id(id),
            Err(r) => UserSelector::Ref(r),
        },
    )
}

pub(super) fn selector(args: &JsonMap, id: &str, r: &str) -> Result<Selector, ApiError> {
    Ok(
        match exactly_one(arg_str(args, id), arg_str(args, r), (id, r))? {
            Ok(id) => Selector::Id(id),
            Err(r) => Selector::Ref(r),
        },
    )
}

// ---- paging ----------------------------------------------------------------------------------
