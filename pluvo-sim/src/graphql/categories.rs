//! Resolvers for extra categories: the `extraCategories` root field, the
//! `updateExtraCategoryValues` mutation, and the category, choice option and value objects.
//!
//! One room per area; a value object's GraphQL type follows its category's type, which is the
//! one rule this side adds to those in [`crate::state`].

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;

use super::args::{arg_str, value_inputs};
use super::{Ctx, Resolved, objects};
use crate::seed::CategoryType;
use crate::state::{ApiError, CategoryValue, ErrorCode, UserSelector, exactly_one};

/// `extraCategories(contentType)`.
pub(super) fn extra_categories<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let state = ctx.state.borrow();
    // Every seeded category is a user category.
    let for_users = arg_str(args, "contentType").is_none_or(|t| t == "USER");
    let count = if for_users { state.categories.len() } else { 0 };
    Ok(objects((0..count).map(|idx| CategoryObj { ctx, idx })))
}

/// `updateExtraCategoryValues` (users only).
pub(super) fn update_extra_category_values<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let mut state = ctx.state.borrow_mut();
    if arg_str(args, "contentType").as_deref() != Some("USER") {
        return Err(ApiError::new(
            ErrorCode::BadUserInput,
            "only contentType USER has extra categories here",
        ));
    }
    let selector = match exactly_one(
        arg_str(args, "modelId"),
        arg_str(args, "modelRef"),
        ("modelId", "modelRef"),
    )? {
        Ok(id) => UserSelector::Id(id),
        Err(r) => UserSelector::Ref(r),
    };
    let (user, categories) = state.update_category_values(&selector, &value_inputs(args))?;
    Ok(ResolvedValue::object(ValuesPayload {
        ctx,
        user,
        categories,
    }))
}

struct ValuesPayload<'c> {
    ctx: &'c Ctx,
    user: usize,
    categories: Vec<usize>,
}

impl ObjectValue for ValuesPayload<'_> {
    fn type_name(&self) -> &str {
        "UpdateExtraCategoryValues"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        match info.field_name() {
            "extraCategoryValues" => Ok(values_of(self.ctx, self.user, Some(&self.categories))),
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

/// The value objects of a user, for all categories or only `only`.
pub(super) fn values_of<'a>(
    ctx: &'a Ctx,
    user: usize,
    only: Option<&[usize]>,
) -> ResolvedValue<'a> {
    let state = ctx.state.borrow();
    let mut out = Vec::new();
    for (&category, value) in &state.users[user].values {
        if only.is_some_and(|only| !only.contains(&category)) {
            continue;
        }
        match value {
            CategoryValue::Choice(options) => {
                out.extend(options.iter().map(|&o| ValueObj {
                    ctx,
                    user,
                    category,
                    choice: Some(o),
                }));
            }
            _ => out.push(ValueObj {
                ctx,
                user,
                category,
                choice: None,
            }),
        }
    }
    objects(out)
}

struct CategoryObj<'c> {
    ctx: &'c Ctx,
    idx: usize,
}

impl ObjectValue for CategoryObj<'_> {
    fn type_name(&self) -> &str {
        "ExtraCategory"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let state = ctx.state.borrow();
        let category = &state.categories[self.idx];
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(category.id.to_string()),
            "ref" => ResolvedValue::leaf(category.ref_.as_str()),
            "title" => ResolvedValue::leaf(category.title.as_str()),
            "categoryType" => ResolvedValue::leaf(category.kind.as_str()),
            "forModelTypes" => ResolvedValue::list([ResolvedValue::leaf("USER")]),
            "choiceOptions" => objects((0..category.options.len()).map(|option| OptionObj {
                ctx,
                category: self.idx,
                option,
            })),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct OptionObj<'c> {
    ctx: &'c Ctx,
    category: usize,
    option: usize,
}

impl ObjectValue for OptionObj<'_> {
    fn type_name(&self) -> &str {
        "ExtraCategoryChoiceOption"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let state = self.ctx.state.borrow();
        let option = &state.categories[self.category].options[self.option];
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(option.id.to_string()),
            // Seeded options have no ref of their own; the option text is what clients match.
            "ref" => ResolvedValue::null(),
            "stringValue" => ResolvedValue::leaf(option.value.as_str()),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct ValueObj<'c> {
    ctx: &'c Ctx,
    user: usize,
    category: usize,
    choice: Option<usize>,
}

impl ObjectValue for ValueObj<'_> {
    fn type_name(&self) -> &str {
        match self.ctx.state.borrow().categories[self.category].kind {
            CategoryType::String => "ExtraCategoryStringValue",
            CategoryType::Choice => "ExtraCategoryChoiceValue",
            CategoryType::Boolean => "ExtraCategoryBooleanValue",
            CategoryType::Datetime => "ExtraCategoryDatetimeValue",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let state = ctx.state.borrow();
        let value = state.users[self.user].values.get(&self.category);
        Ok(match (info.field_name(), value) {
            ("category", _) => ResolvedValue::object(CategoryObj {
                ctx,
                idx: self.category,
            }),
            ("modelId", _) => ResolvedValue::leaf(state.users[self.user].id.to_string()),
            ("stringValue", Some(CategoryValue::String(s))) => ResolvedValue::leaf(s.as_str()),
            ("booleanValue", Some(CategoryValue::Boolean(b))) => ResolvedValue::leaf(*b),
            ("datetimeValue", Some(CategoryValue::Datetime(s))) => ResolvedValue::leaf(s.as_str()),
            ("choiceValue", Some(CategoryValue::Choice(_))) => match self.choice {
                Some(option) => ResolvedValue::object(OptionObj {
                    ctx,
                    category: self.category,
                    option,
                }),
                None => return Err(self.unknown_field_error(info)),
            },
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
