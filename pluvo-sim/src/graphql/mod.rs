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
//! [`groups`], [`categories`], [`trainings`], [`events`] (offer events and enrollments) and
//! [`reports`]. A new area adds a resolver room and a few dispatch lines here.

mod args;
mod categories;
mod document;
mod errors;
mod events;
mod groups;
mod limits;
mod paging;
mod reports;
mod trainings;
mod users;

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use apollo_compiler::executable::OperationType;
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{ExecutionResponse, GraphQLError, JsonMap};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};

use crate::config::ResultForms;
use crate::state::{ApiError, ErrorCode, ReportRow, State};
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
    /// Users created with `sendInvite` true or omitted.
    pub invitations: u64,
    /// People added to a training with `sendInvites` true or omitted.
    pub training_invitations: u64,
    /// Enrollments created or revived with `sendMail` true or omitted.
    pub enrollment_mails: u64,
}

/// The clock and the knobs that shape how one document runs.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    pub now: Instant,
    /// How long membership changes take to show in reads.
    pub membership_delay: Duration,
    pub result_forms: ResultForms,
}

/// Executes `doc` against the tenant. `Err` is a request error (e.g. a variable of the wrong
/// type): nothing ran and the response has no `data`.
pub fn execute(
    schema: &Valid<Schema>,
    doc: &Valid<ExecutableDocument>,
    operation_name: Option<&str>,
    variables: &JsonMap,
    state: &mut State,
    options: ExecOptions,
) -> Result<Executed, Vec<GraphQLError>> {
    let ExecOptions {
        now,
        membership_delay,
        result_forms,
    } = options;
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
        result_forms,
        fields: RefCell::new(Vec::new()),
        counts: Counts::default(),
        report_rows: RefCell::new(Vec::new()),
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
        invitations: ctx.counts.invitations.get(),
        training_invitations: ctx.counts.training_invitations.get(),
        enrollment_mails: ctx.counts.enrollment_mails.get(),
    })
}

impl Executed {
    /// The JSON response body, its errors worded in `style`.
    pub fn body(self, style: ErrorStyle) -> Vec<u8> {
        errors::finish(self.response, style)
    }
}

/// What every resolver of one document shares: the tenant (moved in for the document), the
/// clock and delay for membership changes, what the server counts, and the rows of the
/// document's reports.
struct Ctx {
    state: RefCell<State>,
    now: Instant,
    delay: Duration,
    result_forms: ResultForms,
    fields: RefCell<Vec<String>>,
    counts: Counts,
    /// Rows computed by `portfolioReport` fields, addressed by position (see [`reports`]).
    report_rows: RefCell<Vec<ReportRow>>,
}

/// Messages the tenant would have sent people: what a sync must keep at zero.
#[derive(Default)]
struct Counts {
    invitations: Cell<u64>,
    training_invitations: Cell<u64>,
    enrollment_mails: Cell<u64>,
}

/// Adds `n` to a counter of [`Counts`].
fn bump(counter: &Cell<u64>, n: u64) {
    counter.set(counter.get().saturating_add(n));
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
            "training" => trainings::training(ctx, args),
            "paginatedTrainings" => trainings::paginated_trainings(ctx, args),
            "offerEvent" => events::offer_event(ctx, args),
            "portfolioReport" => reports::portfolio_report(ctx, args),
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
            name @ ("createTraining" | "updateTraining") => {
                trainings::save_training(ctx, args, name == "createTraining")
            }
            name @ ("addUsersToTraining" | "removeUsersFromTraining") => {
                trainings::change_membership(ctx, args, name == "addUsersToTraining")
            }
            "createOfferEventEnrollments" => events::create_enrollments(ctx, args),
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
