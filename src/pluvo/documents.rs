//! The batched documents the client sends: n × `updateOrCreateUser`, n × `updateExtraCategoryValues`,
//! people's upserts each followed by their custom fields ([`write_people`]), and membership
//! documents mixing `removeUsersFromGroup` and `addUsersToGroup` fields.
//!
//! Each takes its selection set from the cynic one-field operation in [`super::operations`] and its
//! variable values from the cynic input types, so only the argument list is written here; the
//! tests validate every shape against `schema/pluvo.graphql`.

use cynic::MutationBuilder;
use serde::Serialize;
use serde_json::Value;

use super::PluvoError;
use super::batch::{AliasedDocument, Arg, FieldShape};
use super::operations::{
    AddUsersToGroup, GroupMembersVariables, RemoveUsersFromGroup, SetCategoryValues,
    SetCategoryValuesVariables, UpsertUser, UpsertUserVariables, UserInput,
};
use super::types::{CategoryUpdate, PersonWrite, Selector, UserUpsert, category_value_input};
use crate::domain::{EmployeeRef, GroupRef};

pub(crate) const UPSERT_USERS: &str = "UpsertUsers";
pub(crate) const SET_CATEGORY_VALUES: &str = "SetCategoryValues";
pub(crate) const CHANGE_MEMBERSHIPS: &str = "ChangeMemberships";
pub(crate) const WRITE_PEOPLE: &str = "WritePeople";

/// One membership root field: at most [`super::REFS_PER_MEMBERSHIP_FIELD`] users of one group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MembershipField<'a> {
    pub(crate) group: &'a GroupRef,
    pub(crate) adding: bool,
    pub(crate) users: &'a [EmployeeRef],
}

/// `r0: removeUsersFromGroup(groupRef: $r0_groupRef, userRefs: $r0_userRefs) { … }` or
/// `a1: addUsersToGroup(…) { … }` per field, in the order given: Pluvo runs a mutation
/// document's root fields in order, so removals put first happen first.
pub(crate) fn change_memberships(
    fields: &[MembershipField<'_>],
) -> Result<AliasedDocument, PluvoError> {
    let members = || GroupMembersVariables {
        group_ref: String::new(),
        user_refs: Some(Vec::new()),
    };
    let add = FieldShape {
        field: "addUsersToGroup",
        alias_prefix: "a",
        selection: super::batch::root_selection(&AddUsersToGroup::build(members()).query)?,
    };
    let remove = FieldShape {
        field: "removeUsersFromGroup",
        alias_prefix: "r",
        selection: super::batch::root_selection(&RemoveUsersFromGroup::build(members()).query)?,
    };
    let mut document = AliasedDocument::with_shape(CHANGE_MEMBERSHIPS, add.clone());
    for field in fields {
        let users: Vec<&str> = field.users.iter().map(EmployeeRef::as_str).collect();
        document.push_field(
            if field.adding { &add } else { &remove },
            vec![
                Arg::Variable {
                    name: "groupRef",
                    graphql_type: "String!",
                    value: Value::String(field.group.as_str().to_owned()),
                },
                Arg::Variable {
                    name: "userRefs",
                    graphql_type: "[String!]",
                    value: to_json(users)?,
                },
            ],
        );
    }
    Ok(document)
}

fn to_json(value: impl Serialize) -> Result<Value, PluvoError> {
    serde_json::to_value(value).map_err(|e| PluvoError::InvalidDocument {
        code: None,
        message: format!("internal: cannot encode variables ({e}); this is a bug in pluvo-sync"),
    })
}

/// `u0: updateOrCreateUser(ref: $u0_ref, sendInvite: false, user: $u0_user) { … }` per item.
pub(crate) fn upsert_users(items: &[UserUpsert]) -> Result<AliasedDocument, PluvoError> {
    let mut document = AliasedDocument::with_shape(UPSERT_USERS, upsert_shape()?);
    for item in items {
        document.push(upsert_args(item)?);
    }
    Ok(document)
}

/// Per person, `u0: updateOrCreateUser(ref: $u0_ref, …) { … }` and then
/// `c1: updateExtraCategoryValues(contentType: USER, modelRef: $c1_modelRef, …) { … }`, each only
/// when the person has that part. Pluvo runs a mutation document's root fields in order, so a
/// person created here exists by the time their custom fields are set; both name the same ref.
pub(crate) fn write_people(items: &[PersonWrite]) -> Result<AliasedDocument, PluvoError> {
    let upsert = upsert_shape()?;
    let categories = categories_shape()?;
    let mut document = AliasedDocument::with_shape(WRITE_PEOPLE, upsert.clone());
    for item in items {
        if let Some(fields) = &item.user {
            let args = upsert_args(&UserUpsert {
                selector: Selector::Ref(item.employee_ref.clone()),
                fields: fields.clone(),
            })?;
            document.push_field(&upsert, args);
        }
        if !item.categories.is_empty() {
            let args = category_args(&CategoryUpdate {
                user: item.employee_ref.clone(),
                values: item.categories.clone(),
            })?;
            document.push_field(&categories, args);
        }
    }
    Ok(document)
}

fn upsert_shape() -> Result<FieldShape, PluvoError> {
    let template = UpsertUser::build(UpsertUserVariables {
        user_ref: None,
        email: None,
        user: UserInput::default(),
    });
    Ok(FieldShape {
        field: "updateOrCreateUser",
        alias_prefix: "u",
        selection: super::batch::root_selection(&template.query)?,
    })
}

fn categories_shape() -> Result<FieldShape, PluvoError> {
    let template = SetCategoryValues::build(SetCategoryValuesVariables {
        model_ref: String::new(),
        values: Vec::new(),
    });
    Ok(FieldShape {
        field: "updateExtraCategoryValues",
        alias_prefix: "c",
        selection: super::batch::root_selection(&template.query)?,
    })
}

fn upsert_args(item: &UserUpsert) -> Result<Vec<Arg>, PluvoError> {
    {
        let selector = match &item.selector {
            Selector::Ref(r) => Arg::Variable {
                name: "ref",
                graphql_type: "String!",
                value: Value::String(r.as_str().to_owned()),
            },
            Selector::Email(e) => Arg::Variable {
                name: "email",
                graphql_type: "String!",
                value: Value::String(e.as_str().to_owned()),
            },
        };
        Ok(vec![
            selector,
            // The one place sendInvite is written; no input can change it.
            Arg::Literal {
                name: "sendInvite",
                value: "false",
            },
            Arg::Variable {
                name: "user",
                graphql_type: "UserInput!",
                value: to_json(UserInput::from(&item.fields))?,
            },
        ])
    }
}

/// `c0: updateExtraCategoryValues(contentType: USER, modelRef: $c0_modelRef, values: $c0_values) { … }`.
/// The user is named by ref (`modelRef`), so a user created earlier in the same document is found.
pub(crate) fn set_category_values(
    items: &[&CategoryUpdate],
) -> Result<AliasedDocument, PluvoError> {
    let mut document = AliasedDocument::with_shape(SET_CATEGORY_VALUES, categories_shape()?);
    for item in items {
        document.push(category_args(item)?);
    }
    Ok(document)
}

fn category_args(item: &CategoryUpdate) -> Result<Vec<Arg>, PluvoError> {
    let values: Vec<_> = item
        .values
        .iter()
        .map(|(category, value)| category_value_input(category, value))
        .collect();
    Ok(vec![
        Arg::Literal {
            name: "contentType",
            value: "USER",
        },
        Arg::Variable {
            name: "modelRef",
            graphql_type: "String!",
            value: Value::String(item.user.as_str().to_owned()),
        },
        Arg::Variable {
            name: "values",
            graphql_type: "[ExtraCategoryValueInput!]!",
            value: to_json(values)?,
        },
    ])
}

/// Every document the client can send, by operation name: the cynic operations and the batched
/// documents (with each selector). `check --schema` compares what they use with a tenant's
/// schema; the tests validate them against `schema/pluvo.graphql`.
pub(crate) fn every_document() -> Result<Vec<(&'static str, String)>, PluvoError> {
    use cynic::QueryBuilder;

    use super::operations::{
        AddUsersToGroup, GroupMembersVariables, GroupsPage, GroupsPageVariables,
        RemoveUsersFromGroup, UserByEmail, UserByEmailVariables, UserByRef, UserByRefVariables,
        UserCategories,
    };
    use super::types::UserFields;
    use crate::domain::CategoryValue;
    use crate::domain::{CategoryRef, Email};

    let members = || GroupMembersVariables {
        group_ref: "g".into(),
        user_refs: Some(vec!["1".into()]),
    };
    let user = |selector| UserUpsert {
        selector,
        fields: UserFields::default(),
    };
    let internal = |what: &str| PluvoError::InvalidDocument {
        code: None,
        message: format!("internal: {what}; this is a bug in pluvo-sync"),
    };
    let by_ref = Selector::Ref(EmployeeRef::parse("1").map_err(|_| internal("a ref"))?);
    let by_email =
        Selector::Email(Email::parse("a@example.com").map_err(|_| internal("an address"))?);
    let category = CategoryRef::parse("c").map_err(|_| internal("a category ref"))?;
    let update = CategoryUpdate {
        user: EmployeeRef::parse("1").map_err(|_| internal("a ref"))?,
        values: vec![(category, CategoryValue::Boolean(true))],
    };
    Ok(vec![
        (
            "UserByEmail",
            UserByEmail::build(UserByEmailVariables {
                email: "a@b.c".into(),
            })
            .query,
        ),
        (
            "UserByRef",
            UserByRef::build(UserByRefVariables {
                user_ref: "1".into(),
            })
            .query,
        ),
        (
            "GroupsPage",
            GroupsPage::build(GroupsPageVariables {
                first: 50,
                after: None,
            })
            .query,
        ),
        ("UserCategories", UserCategories::build(()).query),
        ("AddUsersToGroup", AddUsersToGroup::build(members()).query),
        (
            "RemoveUsersFromGroup",
            RemoveUsersFromGroup::build(members()).query,
        ),
        (
            UPSERT_USERS,
            upsert_users(&[user(by_ref), user(by_email)])?
                .into_request()
                .query,
        ),
        (
            SET_CATEGORY_VALUES,
            set_category_values(&[&update])?.into_request().query,
        ),
        (
            WRITE_PEOPLE,
            write_people(&[
                PersonWrite {
                    employee_ref: update.user.clone(),
                    user: Some(UserFields::default()),
                    categories: update.values.clone(),
                },
                PersonWrite {
                    employee_ref: update.user.clone(),
                    user: None,
                    categories: update.values.clone(),
                },
            ])?
            .into_request()
            .query,
        ),
        (CHANGE_MEMBERSHIPS, {
            let group = GroupRef::parse("g").map_err(|_| internal("a group ref"))?;
            let users = [EmployeeRef::parse("1").map_err(|_| internal("a ref"))?];
            let field = |adding| MembershipField {
                group: &group,
                adding,
                users: &users,
            };
            change_memberships(&[field(false), field(true)])?
                .into_request()
                .query
        }),
    ]
    .into_iter()
    .chain(super::trainings::documents())
    .collect())
}

#[cfg(test)]
mod tests {
    use apollo_compiler::validation::Valid;
    use apollo_compiler::{ExecutableDocument, Schema};
    use chrono::NaiveDate;
    use serde_json::json;

    use super::super::types::UserFields;
    use super::*;
    use crate::domain::CategoryValue;
    use crate::domain::{CategoryRef, Email, EmployeeRef, GroupRef, Language, Role};

    fn schema() -> Valid<Schema> {
        let sdl = include_str!("../../schema/pluvo.graphql");
        Schema::parse_and_validate(sdl, "pluvo.graphql").expect("the vendored SDL is valid")
    }

    fn assert_valid(schema: &Valid<Schema>, name: &str, query: &str) {
        if let Err(errors) = ExecutableDocument::parse_and_validate(schema, query, "op.graphql") {
            panic!("{name} does not validate against schema/pluvo.graphql:\n{errors}\n{query}");
        }
    }

    fn upserts(n: usize) -> Vec<UserUpsert> {
        (0..n)
            .map(|i| UserUpsert {
                selector: if i % 2 == 0 {
                    Selector::Ref(EmployeeRef::parse(&format!("00{i}")).unwrap())
                } else {
                    Selector::Email(Email::parse(&format!("p{i}@example.com")).unwrap())
                },
                fields: UserFields {
                    name: Some(format!("Person {i}")),
                    roles: Some(vec![Role::Participant]),
                    language: Some(Language::En),
                    archived: Some(false),
                    ..UserFields::default()
                },
            })
            .collect()
    }

    fn category_updates(n: usize) -> Vec<CategoryUpdate> {
        (0..n)
            .map(|i| CategoryUpdate {
                user: EmployeeRef::parse(&format!("{i}")).unwrap(),
                values: vec![
                    (
                        CategoryRef::parse("dept").unwrap(),
                        CategoryValue::String("Sales".into()),
                    ),
                    (
                        CategoryRef::parse("site").unwrap(),
                        CategoryValue::Choice("North".into()),
                    ),
                    (
                        CategoryRef::parse("remote").unwrap(),
                        CategoryValue::Boolean(true),
                    ),
                    (
                        CategoryRef::parse("start").unwrap(),
                        CategoryValue::Date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()),
                    ),
                ],
            })
            .collect()
    }

    /// Every variable the document declares is supplied, and every value has the declared name.
    fn assert_variables_match(query: &str, variables: &serde_json::Map<String, Value>) {
        for name in variables.keys() {
            assert!(
                query.contains(&format!("${name}:")),
                "{name} supplied but not declared"
            );
        }
        let declared = query.matches(": $").count();
        assert_eq!(
            declared,
            variables.len(),
            "declared vs supplied variables in\n{query}"
        );
    }

    #[test]
    fn every_batched_document_validates_against_the_sdl() {
        let schema = schema();
        for n in [1, 3] {
            let request = upsert_users(&upserts(n)).unwrap().into_request();
            assert_valid(&schema, &format!("UpsertUsers x{n}"), &request.query);
            assert_variables_match(&request.query, &request.variables);

            let updates = category_updates(n);
            let refs: Vec<&CategoryUpdate> = updates.iter().collect();
            let request = set_category_values(&refs).unwrap().into_request();
            assert_valid(&schema, &format!("SetCategoryValues x{n}"), &request.query);
            assert_variables_match(&request.query, &request.variables);

            let people: Vec<PersonWrite> = upserts(n)
                .into_iter()
                .zip(category_updates(n))
                .enumerate()
                .map(|(i, (upsert, update))| PersonWrite {
                    employee_ref: update.user,
                    // A create, an update without custom fields, one with custom fields only.
                    user: (i % 3 != 2).then_some(upsert.fields),
                    categories: if i % 3 == 1 {
                        Vec::new()
                    } else {
                        update.values
                    },
                })
                .collect();
            let request = write_people(&people).unwrap().into_request();
            assert_valid(&schema, &format!("WritePeople x{n}"), &request.query);
            assert_variables_match(&request.query, &request.variables);

            let groups: Vec<GroupRef> = (0..n)
                .map(|i| GroupRef::parse(&format!("g{i}")).unwrap())
                .collect();
            let users: Vec<EmployeeRef> = (0..=n)
                .map(|i| EmployeeRef::parse(&format!("{i}")).unwrap())
                .collect();
            let fields: Vec<MembershipField<'_>> = groups
                .iter()
                .flat_map(|group| {
                    [false, true].map(|adding| MembershipField {
                        group,
                        adding,
                        users: &users,
                    })
                })
                .collect();
            let request = change_memberships(&fields).unwrap().into_request();
            assert_valid(&schema, &format!("ChangeMemberships x{n}"), &request.query);
            assert_variables_match(&request.query, &request.variables);
        }
    }

    #[test]
    fn membership_documents_mix_removals_and_additions_in_the_order_given() {
        let group = GroupRef::parse("sales").unwrap();
        let users = [EmployeeRef::parse("7").unwrap()];
        let field = |adding| MembershipField {
            group: &group,
            adding,
            users: &users,
        };
        let request = change_memberships(&[field(false), field(true)])
            .unwrap()
            .into_request();
        let remove = request
            .query
            .find("r0: removeUsersFromGroup(groupRef: $r0_groupRef, userRefs: $r0_userRefs)")
            .expect("removal field");
        let add = request
            .query
            .find("a1: addUsersToGroup(groupRef: $a1_groupRef, userRefs: $a1_userRefs)")
            .expect("addition field");
        assert!(remove < add, "{}", request.query);
        assert_eq!(
            json!(request.variables),
            json!({"r0_groupRef": "sales", "r0_userRefs": ["7"], "a1_groupRef": "sales", "a1_userRefs": ["7"]})
        );
    }

    #[test]
    fn a_persons_custom_fields_follow_their_upsert_and_name_the_same_ref() {
        let dept = CategoryRef::parse("dept").unwrap();
        let people = [
            PersonWrite {
                employee_ref: EmployeeRef::parse("7").unwrap(),
                user: Some(UserFields {
                    name: Some("Ann".into()),
                    ..UserFields::default()
                }),
                categories: vec![(dept.clone(), CategoryValue::String("Sales".into()))],
            },
            PersonWrite {
                employee_ref: EmployeeRef::parse("8").unwrap(),
                user: None,
                categories: vec![(dept, CategoryValue::String("IT".into()))],
            },
        ];
        let request = write_people(&people).unwrap().into_request();
        let upsert = request
            .query
            .find("u0: updateOrCreateUser(ref: $u0_ref, sendInvite: false, user: $u0_user)")
            .expect("the upsert");
        let fields = request
            .query
            .find("c1: updateExtraCategoryValues(contentType: USER, modelRef: $c1_modelRef, values: $c1_values)")
            .expect("its custom fields");
        assert!(upsert < fields, "the create runs first:\n{}", request.query);
        assert!(request.query.contains("c2: updateExtraCategoryValues"));
        assert_eq!(request.variables["u0_ref"], json!("7"));
        assert_eq!(request.variables["c1_modelRef"], json!("7"));
        assert_eq!(request.variables["c2_modelRef"], json!("8"));
        assert_eq!(request.query.matches("updateOrCreateUser").count(), 1);
    }

    #[test]
    fn every_document_validates_against_the_sdl() {
        // cynic checks field names at compile time; this also checks the variable definitions and
        // literal arguments it writes, with the same validator as the batched documents.
        let schema = schema();
        let documents = every_document().unwrap();
        assert!(documents.len() >= 8, "{documents:?}");
        for (name, query) in documents {
            assert_valid(&schema, name, &query);
        }
    }

    #[test]
    fn upserts_always_send_invite_false_and_only_the_chosen_selector() {
        let request = upsert_users(&upserts(2)).unwrap().into_request();
        assert_eq!(request.query.matches("sendInvite: false").count(), 2);
        assert!(!request.query.contains("sendInvite: true"));
        assert!(
            request.query.contains(
                "u0: updateOrCreateUser(ref: $u0_ref, sendInvite: false, user: $u0_user)"
            )
        );
        assert!(request.query.contains(
            "u1: updateOrCreateUser(email: $u1_email, sendInvite: false, user: $u1_user)"
        ));
        assert_eq!(
            json!(request.variables),
            json!({
                "u0_ref": "000",
                "u0_user": {"name": "Person 0", "roles": ["PARTICIPANT"], "language": "EN", "archived": false},
                "u1_email": "p1@example.com",
                "u1_user": {"name": "Person 1", "roles": ["PARTICIPANT"], "language": "EN", "archived": false},
            })
        );
    }

    #[test]
    fn the_batched_selection_is_the_one_cynic_deserialises() {
        // The alias's selection must be exactly the payload fragment, or the per-alias
        // deserialisation into UpsertUserPayload would miss fields.
        let request = upsert_users(&upserts(1)).unwrap().into_request();
        for field in ["user {", "id", "ref", "created"] {
            assert!(
                request.query.contains(field),
                "{field} missing in\n{}",
                request.query
            );
        }
        let payload: super::super::operations::UpsertUserPayload = serde_json::from_value(json!({
            "user": {"id": "6f1c1f9e-8a43-4d6b-9d2e-6f2d0c3b8a11", "ref": "000"},
            "created": true
        }))
        .unwrap();
        assert_eq!(payload.created, Some(true));
    }
}
