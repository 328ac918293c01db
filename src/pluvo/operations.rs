//! The typed GraphQL operations, checked against `schema/pluvo.graphql` at compile time by cynic.
//!
//! Queries and the group mutations are sent as cynic builds them. The two mutations that are
//! batched (`updateOrCreateUser`, `updateExtraCategoryValues`) are declared here as one-field
//! operations too: the batch builder (`batch.rs`) takes their selection set from cynic, their
//! variables are serialised through the [`cynic::InputObject`] types below, and each alias's
//! result is deserialised into the payload [`cynic::QueryFragment`]s below. So the SDL and these
//! types stay the single source of truth even for the documents cynic cannot express.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::schema;
use crate::domain::{Language, Role, TrainingRole};

// ---- enums ----

#[derive(cynic::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[cynic(graphql_type = "Role")]
pub enum RoleValue {
    Participant,
    Trainer,
    Manager,
    Planner,
    Author,
}

impl From<Role> for RoleValue {
    fn from(role: Role) -> Self {
        match role {
            Role::Participant => RoleValue::Participant,
            Role::Trainer => RoleValue::Trainer,
            Role::Manager => RoleValue::Manager,
            Role::Planner => RoleValue::Planner,
            Role::Author => RoleValue::Author,
        }
    }
}

#[derive(cynic::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[cynic(graphql_type = "Language")]
pub enum LanguageValue {
    Nl,
    En,
    De,
}

impl From<Language> for LanguageValue {
    fn from(language: Language) -> Self {
        match language {
            Language::Nl => LanguageValue::Nl,
            Language::En => LanguageValue::En,
            Language::De => LanguageValue::De,
        }
    }
}

// ---- user lookups ----

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "User")]
pub struct UserNode {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub user_ref: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub archived: bool,
    /// Read when an existing account is adopted, so memberships an administrator gave it in
    /// groups the sync manages are known and can be reconciled.
    pub participant_groups: Option<Vec<GroupRefNode>>,
}

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Group")]
pub struct GroupRefNode {
    #[cynic(rename = "ref")]
    pub group_ref: Option<String>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct UserByEmailVariables {
    pub email: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "UserByEmailVariables")]
pub struct UserByEmail {
    #[arguments(email: $email)]
    pub user: Option<UserNode>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct UserByRefVariables {
    pub user_ref: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "UserByRefVariables")]
pub struct UserByRef {
    #[arguments(ref: $user_ref)]
    pub user: Option<UserNode>,
}

// ---- groups ----

/// Pluvo's maximum page size (CONTRACT.md, "Pagination").
pub const PAGE_SIZE: i32 = 50;

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct GroupsPageVariables {
    pub first: i32,
    pub after: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "GroupsPageVariables")]
pub struct GroupsPage {
    #[arguments(first: $first, after: $after)]
    pub paginated_groups: Option<GroupConnection>,
}

#[derive(cynic::QueryFragment, Debug)]
pub struct GroupConnection {
    pub edges: Vec<Option<GroupEdge>>,
    pub page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
pub struct GroupEdge {
    pub node: Option<GroupNode>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Group")]
pub struct GroupNode {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub group_ref: Option<String>,
    pub name: String,
}

#[derive(cynic::QueryFragment, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

// ---- extra categories ----

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query")]
pub struct UserCategories {
    #[arguments(contentType: USER)]
    pub extra_categories: Option<Vec<CategoryNode>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "ExtraCategory")]
pub struct CategoryNode {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub category_ref: Option<String>,
    pub title: String,
    pub category_type: String,
    pub choice_options: Option<Vec<ChoiceOption>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "ExtraCategoryChoiceOption")]
pub struct ChoiceOption {
    pub string_value: String,
}

// ---- updateOrCreateUser (batched) ----

/// `UserInput`. A field left `None` is left out of the request, so Pluvo keeps its value
/// (CONTRACT.md: "a field left out is left unchanged"); it is never sent as `null`.
#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
#[cynic(graphql_type = "UserInput")]
pub struct UserInput {
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[cynic(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub user_ref: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RoleValue>>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub language: Option<LanguageValue>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct UpsertUserVariables {
    pub user_ref: Option<String>,
    pub email: Option<String>,
    pub user: UserInput,
}

/// One `updateOrCreateUser`, the template of a batch. `sendInvite: false` is a literal here and in
/// the batch builder: a sync must never mail invitations (CONTRACT.md, "Users").
#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "UpsertUserVariables")]
pub struct UpsertUser {
    #[arguments(ref: $user_ref, email: $email, sendInvite: false, user: $user)]
    pub update_or_create_user: Option<UpsertUserPayload>,
}

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "UpdateOrCreateUser")]
pub struct UpsertUserPayload {
    pub user: Option<UpsertedUserNode>,
    pub created: Option<bool>,
}

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "User")]
pub struct UpsertedUserNode {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub user_ref: Option<String>,
}

// ---- updateExtraCategoryValues (batched) ----

/// `ExtraCategoryValueInput`: a category by ref and exactly one value field.
#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
#[cynic(graphql_type = "ExtraCategoryValueInput")]
pub struct CategoryValueInput {
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub category_ref: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub boolean_value: Option<bool>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub datetime_value: Option<DateTime<Utc>>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub choice_values: Option<Vec<ChoiceValueInput>>,
}

#[derive(cynic::InputObject, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "ExtraCategoryChoiceValueInput")]
pub struct ChoiceValueInput {
    pub string_value: String,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SetCategoryValuesVariables {
    pub model_ref: String,
    pub values: Vec<CategoryValueInput>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "SetCategoryValuesVariables")]
pub struct SetCategoryValues {
    #[arguments(contentType: USER, modelRef: $model_ref, values: $values)]
    pub update_extra_category_values: Option<SetCategoryValuesPayload>,
}

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "UpdateExtraCategoryValues")]
pub struct SetCategoryValuesPayload {
    pub extra_category_values: Option<Vec<StoredCategoryValue>>,
}

/// What Pluvo stored, by category; only the ref is read back (the plan already knows the value).
#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ExtraCategoryValue")]
pub struct StoredCategoryValue {
    pub category: StoredCategory,
}

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "ExtraCategory")]
pub struct StoredCategory {
    #[cynic(rename = "ref")]
    pub category_ref: Option<String>,
}

// ---- group membership ----

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct GroupMembersVariables {
    pub group_ref: String,
    /// Nullable in the schema; always `Some` when sent.
    pub user_refs: Option<Vec<String>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "GroupMembersVariables")]
pub struct AddUsersToGroup {
    #[arguments(groupRef: $group_ref, userRefs: $user_refs)]
    pub add_users_to_group: Option<AddUsersToGroupPayload>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "AddUsersToGroup")]
pub struct AddUsersToGroupPayload {
    pub added_ids: Option<Vec<String>>,
    pub already_added_ids: Option<Vec<String>>,
    pub failed_ids: Option<Vec<String>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "GroupMembersVariables")]
pub struct RemoveUsersFromGroup {
    #[arguments(groupRef: $group_ref, userRefs: $user_refs)]
    pub remove_users_from_group: Option<RemoveUsersFromGroupPayload>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "RemoveUsersFromGroup")]
pub struct RemoveUsersFromGroupPayload {
    pub removed_ids: Option<Vec<String>>,
    pub already_removed_ids: Option<Vec<String>>,
    pub failed_ids: Option<Vec<String>>,
}

// ---- trainings and offer events ----

#[derive(cynic::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[cynic(graphql_type = "TrainingRole")]
pub enum TrainingRoleValue {
    Participant,
    Trainer,
    Mentor,
}

impl From<TrainingRole> for TrainingRoleValue {
    fn from(role: TrainingRole) -> Self {
        match role {
            TrainingRole::Participant => TrainingRoleValue::Participant,
            TrainingRole::Trainer => TrainingRoleValue::Trainer,
            TrainingRole::Mentor => TrainingRoleValue::Mentor,
        }
    }
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct TrainingByRefVariables {
    pub training_ref: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "TrainingByRefVariables")]
pub struct TrainingByRef {
    #[arguments(ref: $training_ref)]
    pub training: Option<TrainingNode>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Training")]
pub struct TrainingNode {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub training_ref: Option<String>,
    pub title: String,
    pub is_active: bool,
    pub archived: bool,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct OfferEventByRefVariables {
    pub offer_event_ref: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "OfferEventByRefVariables")]
pub struct OfferEventByRef {
    #[arguments(ref: $offer_event_ref)]
    pub offer_event: Option<OfferEventNode>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "OfferEvent")]
pub struct OfferEventNode {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub offer_event_ref: Option<String>,
    pub title: String,
    pub max_subscriptions: Option<i32>,
    pub enrollment_count: Option<i32>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct TrainingMembersVariables {
    pub training_ref: String,
    /// Nullable in the schema; always `Some` when sent.
    pub user_refs: Option<Vec<String>>,
    pub role: TrainingRoleValue,
}

/// `addUsersToTraining` with `sendInvites: false` as a literal: the schema's default is `true`
/// (CONTRACT.md, "Trainings"), and a sync must never mail invitations.
#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "TrainingMembersVariables")]
pub struct AddUsersToTraining {
    #[arguments(trainingRef: $training_ref, userRefs: $user_refs, role: $role, sendInvites: false)]
    pub add_users_to_training: Option<AddUsersToTrainingPayload>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "AddUsersToTraining")]
pub struct AddUsersToTrainingPayload {
    pub added_ids: Option<Vec<Uuid>>,
    pub added_refs: Option<Vec<String>>,
    pub already_added_ids: Option<Vec<Uuid>>,
    pub already_added_refs: Option<Vec<String>>,
    pub failed_ids: Option<Vec<String>>,
    pub failed_refs: Option<Vec<String>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "TrainingMembersVariables")]
pub struct RemoveUsersFromTraining {
    #[arguments(trainingRef: $training_ref, userRefs: $user_refs, role: $role)]
    pub remove_users_from_training: Option<RemoveUsersFromTrainingPayload>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "RemoveUsersFromTraining")]
pub struct RemoveUsersFromTrainingPayload {
    pub removed_ids: Option<Vec<Uuid>>,
    pub removed_refs: Option<Vec<String>>,
    pub already_removed_ids: Option<Vec<Uuid>>,
    pub already_removed_refs: Option<Vec<String>>,
    pub ids_linked_via_object: Option<Vec<Uuid>>,
    pub refs_linked_via_object: Option<Vec<String>>,
    pub failed_ids: Option<Vec<String>>,
    pub failed_refs: Option<Vec<String>>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct EnrolVariables {
    pub offer_event_ref: String,
    /// Nullable in the schema; always `Some` when sent.
    pub user_refs: Option<Vec<String>>,
}

/// `createOfferEventEnrollments` with `sendMail: false` as a literal: the schema's default is
/// `true` (CONTRACT.md, "Offer events and enrollments").
#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "EnrolVariables")]
pub struct CreateEnrollments {
    #[arguments(offerEventRef: $offer_event_ref, userRefs: $user_refs, sendMail: false)]
    pub create_offer_event_enrollments: Option<Vec<EnrollmentNode>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Enrollment")]
pub struct EnrollmentNode {
    pub id: Uuid,
    pub user: EnrolledUser,
    pub status: EnrollmentStatusValue,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "User")]
pub struct EnrolledUser {
    pub id: Uuid,
    #[cynic(rename = "ref")]
    pub user_ref: Option<String>,
}

/// `EnrollmentStatus`. A status added later by Pluvo reads as `Other` rather than failing the
/// whole answer: the enrolment itself exists either way.
#[derive(cynic::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[cynic(graphql_type = "EnrollmentStatus")]
pub enum EnrollmentStatusValue {
    Enrolled,
    Waitlisted,
    Cancelled,
    Declined,
    #[cynic(fallback)]
    Other,
}
