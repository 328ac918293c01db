//! GraphQL over the tenant: parse, validate and execute documents against the vendored SDL.
//!
//! The schema is `schema/pluvo.graphql`, the same file the client is generated from, so the
//! simulator rejects exactly what a schema-valid server would (unknown fields, wrong argument
//! types, missing variables) without a hand-written copy that could drift. Execution uses
//! apollo-compiler's synchronous resolvers: the caller holds the tenant lock for one document,
//! which also makes the aliased mutations of one document run in order, atomically as a batch.
//!
//! This file is the entry: [`execute`] runs one document and the root object sends each root
//! field to its area's resolvers. The other rooms: [`document`] (schema, parsing, validation and
//! the document cache), [`limits`] (introspection depth and query complexity), [`errors`] (error
//! codes and their wording in the configured error style), [`args`] (argument coercion),
//! [`paging`] (Relay connections and cursors), and one resolver room per area: [`users`],
//! [`groups`], [`categories`]. A new area adds a resolver room and a few dispatch lines here.

mod args;
mod categories;
mod document;
mod errors;
mod groups;
mod limits;
mod paging;
mod users;

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use apollo_compiler::executable::OperationType;
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{ExecutionResponse, GraphQLError, JsonMap};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};

use crate::state::{ApiError, ErrorCode, State};
use crate::style::ErrorStyle;

pub use document::{DocCache, SDL, is_mutation, parse, root_fields, schema};
pub use errors::{errors_body, message_body};

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
    limits::check(doc, operation)?;
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
        errors::finish(self.response, style)
    }
}

/// What every resolver of one document shares: the tenant (moved in for the document), the
/// clock and delay for membership changes, and what the server counts.
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
        result.map_err(errors::field_error)
    }
}

impl<'c> Root<'c> {
    fn query<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, ApiError> {
        let (ctx, args) = (self.ctx, info.arguments());
        match info.field_name() {
            "user" => users::user(ctx, args),
            "paginatedUsers" => users::paginated_users(ctx, args),
            "group" => groups::group(ctx, args),
            "paginatedGroups" => groups::paginated_groups(ctx, args),
            "extraCategories" => categories::extra_categories(ctx, args),
            other => Err(not_implemented(other)),
        }
    }

    fn mutate<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, ApiError> {
        let (ctx, args) = (self.ctx, info.arguments());
        match info.field_name() {
            "updateOrCreateUser" => users::update_or_create_user(ctx, args),
            "updateUser" => users::update_user(ctx, args),
            "updateExtraCategoryValues" => categories::update_extra_category_values(ctx, args),
            name @ ("addUsersToGroup" | "removeUsersFromGroup") => {
                groups::change_membership(ctx, args, name == "addUsersToGroup")
            }
            other => Err(not_implemented(other)),
        }
    }
}

/// A root field the schema has but the simulator does not serve yet.
fn not_implemented(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BadUserInput,
        format!("field `{field}` is not implemented"),
    )
}
