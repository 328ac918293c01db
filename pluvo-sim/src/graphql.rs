//! GraphQL over the tenant: parse, validate and execute documents against the vendored SDL.
//!
//! The schema is `schema/pluvo.graphql`, the same file the client is generated from, so the
//! simulator rejects exactly what a schema-valid server would (unknown fields, wrong argument
//! types, missing variables) without a hand-written copy that could drift. Execution uses
//! apollo-compiler's synchronous resolvers: the caller holds the tenant lock for one document,
//! which also makes the aliased mutations of one document run in order, atomically as a batch.
//!
//! apollo-compiler's field errors carry only a message, so [`field_error`] appends the error code
//! after a separator and [`finish`] moves it to `extensions.code`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use apollo_compiler::executable::OperationType;
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{ExecutionResponse, GraphQLError, JsonMap, JsonValue};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::seed::CategoryType;
use crate::state::{
    ApiError, CategoryValue, ErrorCode, GroupSelector, State, UpsertSelector, UserFilter,
    UserInput, UserKey, UserSelector, ValueInput, exactly_one,
};
use crate::style::ErrorStyle;

/// The vendored SDL, compiled in.
pub const SDL: &str = include_str!("../../schema/pluvo.graphql");

/// Pluvo's documented page-size limit.
pub const MAX_PAGE: i64 = 50;

const CODE_SEP: char = '\u{1f}';
const RESOLVER_PREFIX: &str = "resolver error: ";

static SCHEMA: LazyLock<Result<Valid<Schema>, String>> = LazyLock::new(|| {
    Schema::parse_and_validate(SDL, "schema/pluvo.graphql").map_err(|e| e.errors.to_string())
});

/// The validated schema, or why the vendored SDL is not valid.
pub fn schema() -> Result<&'static Valid<Schema>, &'static str> {
    SCHEMA.as_ref().map_err(String::as_str)
}

/// Parsed and validated documents by query text. Clients send the same few documents over and
/// over; skipping parse and validation is most of the simulator's per-request cost.
pub struct DocCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (Arc<Valid<ExecutableDocument>>, u64)>,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, query: &str) -> Option<Arc<Valid<ExecutableDocument>>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(query).map(|(doc, used)| {
            *used = tick;
            Arc::clone(doc)
        })
    }

    /// Inserts, evicting the least recently used entry when full.
    pub fn insert(&mut self, query: String, doc: Arc<Valid<ExecutableDocument>>) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&query) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(query, (doc, self.tick));
    }
}

/// Parses and validates a document (no caching).
pub fn parse(
    schema: &Valid<Schema>,
    query: &str,
) -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>> {
    ExecutableDocument::parse_and_validate(schema, query, "request.graphql")
        .map_err(|e| e.errors.iter().map(|d| d.to_json()).collect())
}

/// Whether the operation `name` selects is a mutation; request errors for an unknown name.
pub fn is_mutation(
    doc: &Valid<ExecutableDocument>,
    name: Option<&str>,
) -> Result<bool, Vec<GraphQLError>> {
    doc.operations
        .get(name)
        .map(|op| op.operation_type == OperationType::Mutation)
        .map_err(|e| vec![e.to_graphql_error(&doc.sources)])
}

/// The most response fields a document may ask for, by [`estimated_nodes`]. The schema has
/// cycles (`User.participantGroups` ↔ `Group.users`), so a small document can ask for an
/// exponential number of nodes; real GraphQL servers refuse those with depth or complexity
/// limits, and the simulator must not compute them while it holds the tenant lock.
pub const MAX_NODES: u64 = 1_000_000;

/// An upper bound on the fields a selection set can produce: every field counts once, and a
/// list-typed field multiplies its sub-selection by [`MAX_PAGE`] (the page size for connection
/// edges, an assumed bound for plain lists). Fragment costs are memoised by name, so fragment
/// "bombs" cost linear time to estimate; validation has already rejected fragment cycles.
pub fn estimated_nodes(
    doc: &ExecutableDocument,
    set: &apollo_compiler::executable::SelectionSet,
    fragments: &mut HashMap<apollo_compiler::Name, u64>,
) -> u64 {
    use apollo_compiler::executable::Selection;
    let per_item = MAX_PAGE.unsigned_abs();
    let mut total: u64 = 0;
    for selection in &set.selections {
        let cost = match selection {
            // Introspection is answered from the schema, not the tenant's data: its size is
            // bounded by the schema, and its nesting by `introspection::check_max_depth`.
            Selection::Field(field) if field.name.starts_with("__") => 1,
            Selection::Field(field) => {
                let below = estimated_nodes(doc, &field.selection_set, fragments);
                let items = if field.definition.ty.is_list() {
                    per_item
                } else {
                    1
                };
                items.saturating_mul(below).saturating_add(1)
            }
            Selection::InlineFragment(inline) => {
                estimated_nodes(doc, &inline.selection_set, fragments)
            }
            Selection::FragmentSpread(spread) => {
                if let Some(&known) = fragments.get(&spread.fragment_name) {
                    known
                } else {
                    let cost = doc
                        .fragments
                        .get(&spread.fragment_name)
                        .map_or(0, |f| estimated_nodes(doc, &f.selection_set, fragments));
                    fragments.insert(spread.fragment_name.clone(), cost);
                    cost
                }
            }
        };
        total = total.saturating_add(cost);
    }
    total
}

/// A document that ran (possibly with field errors).
#[derive(Debug)]
pub struct Executed {
    /// The response; [`Executed::body`] words its errors.
    pub response: ExecutionResponse,
    /// Root field names executed, in order.
    pub fields: Vec<String>,
    pub invitations: u64,
}

/// Executes `doc` against the tenant. `Err` is a request error (e.g. a variable of the wrong
/// type): nothing ran and the response has no `data`.
pub fn execute(
    schema: &Valid<Schema>,
    doc: &Valid<ExecutableDocument>,
    operation_name: Option<&str>,
    variables: &JsonMap,
    state: &mut State,
    now: Instant,
    membership_delay: Duration,
) -> Result<Executed, Vec<GraphQLError>> {
    let operation = doc
        .operations
        .get(operation_name)
        .map_err(|e| vec![e.to_graphql_error(&doc.sources)])?;
    apollo_compiler::introspection::check_max_depth(doc, operation)
        .map_err(|e| vec![e.to_graphql_error(&doc.sources)])?;
    let cost = estimated_nodes(doc, &operation.selection_set, &mut HashMap::new());
    if cost > MAX_NODES {
        return Err(vec![GraphQLError::new(
            format!(
                "query is too complex: it could ask for about {cost} fields (limit {MAX_NODES}); \
                 select less or nest less, and page with `first`/`after`"
            ),
            operation.location(),
            &doc.sources,
        )]);
    }
    state.settle(now);
    // The resolvers share the tenant through a RefCell, so it is moved in for the duration of
    // the document and moved back out whatever happens.
    let ctx = Ctx {
        state: RefCell::new(std::mem::take(state)),
        now,
        delay: membership_delay,
        fields: RefCell::new(Vec::new()),
        invitations: Cell::new(0),
    };
    let root = Root {
        ctx: &ctx,
        mutation: operation.operation_type == OperationType::Mutation,
    };
    // Introspection (`__schema`, `__type`) is answered, as graphene and most servers do by
    // default: it is how an operator compares a tenant with schema/pluvo.graphql.
    let result = Execution::new(schema, doc)
        .operation(operation)
        .raw_variable_values(variables)
        .enable_schema_introspection(true)
        .execute_sync(&root);
    *state = ctx.state.into_inner();
    let response = result.map_err(|e| vec![e.to_graphql_error(&doc.sources)])?;
    Ok(Executed {
        response,
        fields: ctx.fields.into_inner(),
        invitations: ctx.invitations.get(),
    })
}

impl Executed {
    /// The JSON response body, its errors worded in `style`.
    pub fn body(self, style: ErrorStyle) -> Vec<u8> {
        finish(self.response, style)
    }
}

/// Serialises a response, moving error codes from messages into `extensions` worded as `style`
/// words them.
fn finish(mut response: ExecutionResponse, style: ErrorStyle) -> Vec<u8> {
    for error in &mut response.errors {
        if let Some((message, code)) = error.message.split_once(CODE_SEP) {
            // apollo-compiler prefixes resolver messages; Pluvo's messages have no such prefix.
            let message = message.strip_prefix(RESOLVER_PREFIX).unwrap_or(message);
            let (message, extensions) = match ErrorCode::parse(code) {
                Some(code) => style.field_error(code, message),
                None => (
                    message.to_owned(),
                    Some(serde_json::json!({ "code": code })),
                ),
            };
            if let Some(serde_json::Value::Object(extensions)) = extensions {
                for (key, value) in extensions {
                    if let Ok(value) = serde_json::from_value::<JsonValue>(value) {
                        error.extensions.insert(key.as_str(), value);
                    }
                }
            }
            error.message = message;
        }
    }
    // Serialising plain JSON values cannot fail; an empty body would still be a visible bug.
    serde_json::to_vec(&response).unwrap_or_default()
}

/// Body for request-level errors: `{"errors": [...]}` and no `data`.
pub fn errors_body(errors: Vec<GraphQLError>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "errors": errors })).unwrap_or_default()
}

/// A request error from a plain message (bad JSON, wrong content type, ...).
pub fn message_body(message: &str, code: Option<&str>) -> Vec<u8> {
    let mut error = serde_json::json!({ "message": message });
    if let Some(code) = code {
        error["extensions"] = serde_json::json!({ "code": code });
    }
    serde_json::to_vec(&serde_json::json!({ "errors": [error] })).unwrap_or_default()
}

fn field_error(e: ApiError) -> FieldError {
    FieldError {
        message: format!("{}{CODE_SEP}{}", e.message, e.code.as_str()),
    }
}

// ---- argument decoding -----------------------------------------------------------------------

fn arg_str(args: &JsonMap, name: &str) -> Option<String> {
    args.get(name)
        .and_then(JsonValue::as_str)
        .map(str::to_owned)
}

fn arg_bool(args: &JsonMap, name: &str) -> Option<bool> {
    args.get(name).and_then(JsonValue::as_bool)
}

fn arg_int(args: &JsonMap, name: &str) -> Option<i64> {
    args.get(name).and_then(JsonValue::as_i64)
}

fn arg_strs(args: &JsonMap, name: &str) -> Option<Vec<String>> {
    args.get(name).and_then(JsonValue::as_array).map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

fn user_input(args: &JsonMap) -> UserInput {
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

fn value_inputs(args: &JsonMap) -> Vec<ValueInput> {
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

fn user_selector(args: &JsonMap, id: &str) -> Result<UserSelector, ApiError> {
    Ok(
        match exactly_one(arg_str(args, id), arg_str(args, "ref"), (id, "ref"))? {
            Ok(id) => UserSelector::Id(id),
            Err(r) => UserSelector::Ref(r),
        },
    )
}

fn group_selector(args: &JsonMap, id: &str, r: &str) -> Result<GroupSelector, ApiError> {
    Ok(
        match exactly_one(arg_str(args, id), arg_str(args, r), (id, r))? {
            Ok(id) => GroupSelector::Id(id),
            Err(r) => GroupSelector::Ref(r),
        },
    )
}

// ---- paging ----------------------------------------------------------------------------------

/// Relay cursors in graphene's format (base64 of `arrayconnection:<index>`); clients must treat
/// them as opaque.
fn cursor(index: usize) -> String {
    BASE64.encode(format!("arrayconnection:{index}"))
}

fn decode_cursor(text: &str) -> Result<usize, ApiError> {
    BASE64
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| {
            s.strip_prefix("arrayconnection:")
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| ApiError::new(ErrorCode::BadUserInput, format!("invalid cursor `{text}`")))
}

/// One page of a connection over `items` (already filtered and ordered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items on this page with their absolute positions.
    pub items: Vec<(usize, usize)>,
    pub total: usize,
    pub has_next: bool,
    pub has_previous: bool,
}

/// Applies `first` (default and maximum [`MAX_PAGE`]; larger is an error rather than a silent
/// clamp, so a client that asks for more learns it at once), `after` and `offset`.
pub fn page(
    items: &[usize],
    first: Option<i64>,
    after: Option<&str>,
    offset: Option<i64>,
) -> Result<Page, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadUserInput, m);
    let first = first.unwrap_or(MAX_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(bad(format!(
            "`first` must be between 0 and {MAX_PAGE}, got {first}"
        )));
    }
    let offset = offset.unwrap_or(0);
    let offset = usize::try_from(offset)
        .map_err(|_| bad(format!("`offset` must not be negative, got {offset}")))?;
    let after = after.map(decode_cursor).transpose()?;
    let start = after
        .map_or(0, |a| a + 1)
        .saturating_add(offset)
        .min(items.len());
    let end = start
        .saturating_add(usize::try_from(first).unwrap_or(0))
        .min(items.len());
    Ok(Page {
        items: (start..end).map(|pos| (pos, items[pos])).collect(),
        total: items.len(),
        has_next: end < items.len(),
        has_previous: start > 0,
    })
}

// ---- resolvers -------------------------------------------------------------------------------

struct Ctx {
    state: RefCell<State>,
    now: Instant,
    delay: Duration,
    fields: RefCell<Vec<String>>,
    invitations: Cell<u64>,
}

type Resolved<'a> = Result<ResolvedValue<'a>, FieldError>;

fn opt_leaf<'a>(value: Option<String>) -> ResolvedValue<'a> {
    value.map_or_else(ResolvedValue::null, ResolvedValue::leaf)
}

fn objects<'a, T: ObjectValue + 'a>(items: impl IntoIterator<Item = T>) -> ResolvedValue<'a> {
    let items: Vec<ResolvedValue<'a>> = items.into_iter().map(ResolvedValue::object).collect();
    ResolvedValue::list(items)
}

struct Root<'c> {
    ctx: &'c Ctx,
    mutation: bool,
}

impl ObjectValue for Root<'_> {
    fn type_name(&self) -> &str {
        if self.mutation { "Mutation" } else { "Query" }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        self.ctx
            .fields
            .borrow_mut()
            .push(info.field_name().to_owned());
        let result = if self.mutation {
            self.mutate(info)
        } else {
            self.query(info)
        };
        result.map_err(field_error)
    }
}

impl<'c> Root<'c> {
    fn query<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, ApiError> {
        let ctx = self.ctx;
        let args = info.arguments();
        let state = ctx.state.borrow();
        match info.field_name() {
            "user" => {
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
            "paginatedUsers" => {
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
            "group" => {
                let found = state.group_by_selector(&group_selector(args, "id", "ref")?)?;
                Ok(ResolvedValue::nullable_object(
                    found.map(|idx| GroupObj { ctx, idx }),
                ))
            }
            "paginatedGroups" => {
                let items = state.filter_groups(arg_str(args, "q").as_deref());
                Ok(ResolvedValue::object(Connection::new(
                    ctx,
                    Kind::Group,
                    &items,
                    args,
                    true,
                )?))
            }
            "extraCategories" => {
                // Every seeded category is a user category.
                let for_users = arg_str(args, "contentType").is_none_or(|t| t == "USER");
                let count = if for_users { state.categories.len() } else { 0 };
                Ok(objects((0..count).map(|idx| CategoryObj { ctx, idx })))
            }
            other => Err(ApiError::new(
                ErrorCode::BadUserInput,
                format!("field `{other}` is not implemented"),
            )),
        }
    }

    fn mutate<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, ApiError> {
        let ctx = self.ctx;
        let args = info.arguments();
        let mut state = ctx.state.borrow_mut();
        match info.field_name() {
            "updateOrCreateUser" => {
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
                    ctx.invitations.set(ctx.invitations.get() + 1);
                }
                Ok(ResolvedValue::object(UserPayload {
                    ctx,
                    idx,
                    created: Some(created),
                }))
            }
            "updateUser" => {
                let idx = state.update_user(&user_selector(args, "id")?, user_input(args))?;
                Ok(ResolvedValue::object(UserPayload {
                    ctx,
                    idx,
                    created: None,
                }))
            }
            "updateExtraCategoryValues" => {
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
                let (user, categories) =
                    state.update_category_values(&selector, &value_inputs(args))?;
                Ok(ResolvedValue::object(ValuesPayload {
                    ctx,
                    user,
                    categories,
                }))
            }
            name @ ("addUsersToGroup" | "removeUsersFromGroup") => {
                let group = group_selector(args, "groupId", "groupRef")?;
                let ids = arg_strs(args, "userIds")
                    .unwrap_or_default()
                    .into_iter()
                    .map(UserKey::Id);
                let refs = arg_strs(args, "userRefs")
                    .unwrap_or_default()
                    .into_iter()
                    .map(UserKey::Ref);
                let users: Vec<UserKey> = ids.chain(refs).collect();
                let add = name == "addUsersToGroup";
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
                Ok(ResolvedValue::object(Lists {
                    type_name,
                    fields: keys.into_iter().zip(lists).collect(),
                }))
            }
            other => Err(ApiError::new(
                ErrorCode::BadUserInput,
                format!("field `{other}` is not implemented"),
            )),
        }
    }
}

/// A payload of string lists (the group membership results).
struct Lists {
    type_name: &'static str,
    fields: Vec<(&'static str, Vec<String>)>,
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
fn values_of<'a>(ctx: &'a Ctx, user: usize, only: Option<&[usize]>) -> ResolvedValue<'a> {
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

struct UserObj<'c> {
    ctx: &'c Ctx,
    idx: usize,
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

struct GroupObj<'c> {
    ctx: &'c Ctx,
    idx: usize,
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
            "userCount" => {
                ResolvedValue::leaf(i64::try_from(group.visible.len()).unwrap_or(i64::MAX))
            }
            "users" | "managers" => {
                let set = if info.field_name() == "users" {
                    &group.visible
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

#[derive(Clone, Copy)]
enum Kind {
    User,
    Group,
}

struct Connection<'c> {
    ctx: &'c Ctx,
    kind: Kind,
    page: Page,
}

impl<'c> Connection<'c> {
    /// `offset` is only an argument of the root `paginated*` fields.
    fn new(
        ctx: &'c Ctx,
        kind: Kind,
        items: &[usize],
        args: &JsonMap,
        with_offset: bool,
    ) -> Result<Self, ApiError> {
        let offset = if with_offset {
            arg_int(args, "offset")
        } else {
            None
        };
        let page = page(
            items,
            arg_int(args, "first"),
            arg_str(args, "after").as_deref(),
            offset,
        )?;
        Ok(Self { ctx, kind, page })
    }
}

impl ObjectValue for Connection<'_> {
    fn type_name(&self) -> &str {
        match self.kind {
            Kind::User => "UserConnection",
            Kind::Group => "GroupConnection",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let page = &self.page;
        Ok(match info.field_name() {
            "count" => ResolvedValue::leaf(i64::try_from(page.total).unwrap_or(i64::MAX)),
            "edges" => objects(page.items.iter().map(|&(pos, idx)| Edge {
                ctx: self.ctx,
                kind: self.kind,
                pos,
                idx,
            })),
            "pageInfo" => ResolvedValue::object(PageInfo { page }),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct Edge<'c> {
    ctx: &'c Ctx,
    kind: Kind,
    pos: usize,
    idx: usize,
}

impl ObjectValue for Edge<'_> {
    fn type_name(&self) -> &str {
        match self.kind {
            Kind::User => "UserEdge",
            Kind::Group => "GroupEdge",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let (ctx, idx) = (self.ctx, self.idx);
        Ok(match (info.field_name(), self.kind) {
            ("cursor", _) => ResolvedValue::leaf(cursor(self.pos)),
            ("node", Kind::User) => ResolvedValue::object(UserObj { ctx, idx }),
            ("node", Kind::Group) => ResolvedValue::object(GroupObj { ctx, idx }),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct PageInfo<'p> {
    page: &'p Page,
}

impl ObjectValue for PageInfo<'_> {
    fn type_name(&self) -> &str {
        "PageInfo"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let page = self.page;
        Ok(match info.field_name() {
            "hasNextPage" => ResolvedValue::leaf(page.has_next),
            "hasPreviousPage" => ResolvedValue::leaf(page.has_previous),
            "startCursor" => opt_leaf(page.items.first().map(|&(pos, _)| cursor(pos))),
            "endCursor" => opt_leaf(page.items.last().map(|&(pos, _)| cursor(pos))),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_schema_is_valid() {
        assert!(schema().is_ok(), "{:?}", schema().err());
    }

    #[test]
    fn paging_table() {
        let items: Vec<usize> = (0..120).collect();
        let c = |i| cursor(i);
        // (name, first, after, offset) -> (first pos, len, has_next, has_prev), or None for an error
        type Case<'a> = (
            &'a str,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<(usize, usize, bool, bool)>,
        );
        let cases: Vec<Case> = vec![
            ("default page", None, None, None, Some((0, 50, true, false))),
            (
                "small page",
                Some(10),
                None,
                None,
                Some((0, 10, true, false)),
            ),
            (
                "after cursor",
                Some(50),
                Some(c(49)),
                None,
                Some((50, 50, true, true)),
            ),
            (
                "last page",
                Some(50),
                Some(c(99)),
                None,
                Some((100, 20, false, true)),
            ),
            (
                "past the end",
                Some(50),
                Some(c(119)),
                None,
                Some((120, 0, false, true)),
            ),
            ("offset", Some(5), None, Some(7), Some((7, 5, true, true))),
            ("zero", Some(0), None, None, Some((0, 0, true, false))),
            ("too many", Some(51), None, None, None),
            ("negative first", Some(-1), None, None, None),
            ("negative offset", None, None, Some(-3), None),
            ("garbage cursor", None, Some("nope".into()), None, None),
        ];
        for (name, first, after, offset, expected) in cases {
            let got = page(&items, first, after.as_deref(), offset).ok().map(|p| {
                (
                    p.items.first().map_or(p.items.len() + 120, |&(pos, _)| pos),
                    p.items.len(),
                    p.has_next,
                    p.has_previous,
                )
            });
            let expected =
                expected.map(|(start, len, n, p)| (if len == 0 { 120 } else { start }, len, n, p));
            assert_eq!(got, expected, "case {name}");
        }
    }

    #[test]
    fn doc_cache_evicts_least_recently_used() {
        let schema = schema().expect("schema");
        let doc = |q: &str| Arc::new(parse(schema, q).expect("valid"));
        let mut cache = DocCache::new(2);
        cache.insert("a".into(), doc("{ extraCategories { id } }"));
        cache.insert("b".into(), doc("{ extraCategories { ref } }"));
        assert!(cache.get("a").is_some());
        cache.insert("c".into(), doc("{ extraCategories { title } }"));
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
    }
}
