//! [`PluvoClient`]: typed calls to Pluvo over one `execute` path.
//!
//! Every HTTP request, token requests included, goes through [`Inner::exchange`]: admitted by the
//! [`Pacer`], timed, counted in metrics, and its status reported back to the pacer (a 429 pauses
//! and slows every task). [`Inner::run`] wraps attempts in the retry policy: transient failures
//! (429, 5xx, timeouts, dropped connections) wait their `Retry-After` plus a jittered backoff and
//! try again up to `max_attempts`; a refused token (HTTP 401 or a GraphQL error whose code mentions "auth") is
//! renewed and the call repeated once, outside that budget; anything else fails at once. A
//! client made with [`PluvoClient::with_cancel`] stops waiting (for the limiter, a pause or a
//! backoff) as soon as its run is stopped, so shutdown never waits out a `Retry-After`. A client
//! made with [`PluvoClient::with_send_fence`] also asks its fence right before every request, so a
//! run whose lease has lapsed sends nothing more, even before anyone has noticed and cancelled it.

use std::sync::Arc;
use std::time::Duration;

use cynic::{MutationBuilder, QueryBuilder};
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, debug_span, warn};

use super::PluvoError;
use super::auth::{
    Grant, Issued, Token, TokenCache, parse_token, refused_after_renewal, token_refused,
};
use super::batch::{AliasedDocument, RawResponse, split};
use super::documents;
use super::error::{Refusal, excerpt, from_graphql, is_auth_error, is_retryable_status};
use super::operations::{
    AddUsersToGroup, GroupMembersVariables, GroupsPage, GroupsPageVariables, PAGE_SIZE,
    RemoveUsersFromGroup, SetCategoryValuesPayload, UpsertUserPayload, UserByEmail,
    UserByEmailVariables, UserByRef, UserByRefVariables, UserCategories, UserNode,
};
use super::pacing::{Backoff, Pacer, retry_after};
use super::settings::ResolvedPluvo;
use super::types::{
    Batch, CategoryUpdate, Membership, RemoteCategory, RemoteGroup, RemoteUser, UpsertedUser,
    UserUpsert,
};
use crate::domain::{Email, EmployeeRef, GroupRef};
use crate::metrics::{Kind, Metrics};

pub(crate) const REQUESTS: &str = crate::metrics::names::PLUVO_REQUESTS_TOTAL;
pub(crate) const RATE_LIMITED: &str = crate::metrics::names::PLUVO_RATE_LIMITED_TOTAL;
pub(crate) const RETRIES: &str = crate::metrics::names::PLUVO_RETRIES_TOTAL;

/// How often one call may renew a refused token before giving up: once is enough for an expired
/// token; a second refusal of a fresh token means missing rights, not staleness.
const MAX_RENEWALS: u32 = 1;

/// User refs per `addUsersToGroup` / `removeUsersFromGroup` request; keeps one request well
/// inside the timeout for large groups.
const REFS_PER_MEMBERSHIP_CALL: usize = 100;

/// Guards `groups()` against a server that keeps saying "next page" (50 × 10 000 groups).
const MAX_PAGES: usize = 10_000;

/// The Pluvo API client. Cheap to clone; clones share the token, rate limiter and metrics.
#[derive(Clone)]
pub struct PluvoClient {
    inner: Arc<Inner>,
    /// Once cancelled, no request is started any more: calls waiting for the rate limiter, a
    /// `Retry-After` pause or a backoff sleep end with [`PluvoError::Cancelled`]. A request
    /// already sent is waited for.
    cancel: Stop,
}

/// Asked right before every request; `false` stops it as a cancellation would (the run lease's
/// [`crate::service::lease::LeaseFence`], in practice).
pub type SendFence = Arc<dyn Fn() -> bool + Send + Sync>;

/// When a client's calls stop sending: its run's cancellation, and its send fence.
#[derive(Clone, Default)]
struct Stop {
    token: CancellationToken,
    fence: Option<SendFence>,
}

impl Stop {
    fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Checked again after the pacer admits a request: the wait may have been long (or the
    /// process paused), and what held when it began need not hold now.
    fn may_send(&self) -> bool {
        !self.token.is_cancelled() && self.fence.as_ref().is_none_or(|fence| fence())
    }
}

impl std::fmt::Debug for PluvoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluvoClient")
            .field("graphql_url", &self.inner.graphql_url.as_str())
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    graphql_url: Url,
    token_url: Url,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    pacer: Pacer,
    backoff: Backoff,
    max_attempts: u32,
    batch_size: usize,
    concurrency: usize,
    tokens: TokenCache,
    metrics: Arc<Metrics>,
}

/// What one attempt asks the retry loop to do next.
enum Step<T> {
    Done(T),
    /// A transient failure: back off (at least `retry_after`) and try again if attempts remain.
    Retry {
        error: PluvoError,
        retry_after: Option<Duration>,
    },
    /// The token of this generation was refused: renew it and try again at once. `answer` is
    /// the GraphQL response that said so, if any: when the renewed token is refused alike, the
    /// refusal is the answer's own (an `Auth…` error on one field of a batch), and it is
    /// returned to be judged field by field.
    Renew {
        generation: u64,
        answer: Option<T>,
        /// How Pluvo refused it (status, message), for the error if renewal does not help.
        how: String,
        grant: Grant,
    },
    Fail(PluvoError),
}

impl<T> Step<T> {
    fn from_error(error: PluvoError) -> Self {
        if error.is_retryable() && error != PluvoError::Cancelled {
            Step::Retry {
                error,
                retry_after: None,
            }
        } else {
            Step::Fail(error)
        }
    }
}

/// An HTTP response with its body read completely.
struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

impl PluvoClient {
    pub fn new(settings: ResolvedPluvo, metrics: Arc<Metrics>) -> Result<Self, PluvoError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // A redirect means pluvo.url is wrong (Pluvo redirects paths without their trailing
            // slash); following it would turn a POST into a GET and hide the cause.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pluvo-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PluvoError::Transport(format!("cannot set up the HTTP client: {e}")))?;
        metrics.describe(
            REQUESTS,
            Kind::Counter,
            "HTTP requests sent to Pluvo, by response status.",
        );
        metrics.describe(RATE_LIMITED, Kind::Counter, "HTTP 429 answers from Pluvo.");
        metrics.describe(
            RETRIES,
            Kind::Counter,
            "Requests to Pluvo repeated after a transient failure.",
        );
        let pacer = Pacer::new(
            settings.rate_per_second,
            settings.burst,
            settings.concurrency,
            // A 429 that does not say how long to wait pauses everyone for the backoff base.
            settings.backoff_base,
            metrics.clone(),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                graphql_url: settings.graphql_url,
                token_url: settings.token_url,
                client_id: settings.client_id,
                client_secret: settings.client_secret,
                scope: settings.scope,
                pacer,
                backoff: Backoff {
                    base: settings.backoff_base,
                    cap: settings.backoff_max,
                },
                max_attempts: settings.max_attempts.get(),
                batch_size: settings.batch_size.get(),
                concurrency: settings.concurrency.get(),
                tokens: TokenCache::default(),
                metrics,
            }),
            cancel: Stop::default(),
        })
    }

    /// A clone whose calls stop sending once `cancel` fires: a call waiting to be admitted by the
    /// rate limiter, paused by a 429's `Retry-After`, or sleeping before a retry ends at once
    /// with [`PluvoError::Cancelled`] instead of waiting (possibly minutes) to send again. A
    /// request already on the wire is waited for, so its answer can still be recorded. Every
    /// call the sync makes is idempotent, so the next run simply repeats what was left.
    pub fn with_cancel(&self, cancel: CancellationToken) -> Self {
        Self {
            inner: self.inner.clone(),
            cancel: Stop {
                token: cancel,
                fence: self.cancel.fence.clone(),
            },
        }
    }

    /// A clone that asks `fence` right before every request (token requests and retries
    /// included) and sends nothing once it says no; the call ends with
    /// [`PluvoError::Cancelled`], so what was not sent is journaled skipped.
    pub fn with_send_fence(&self, fence: SendFence) -> Self {
        Self {
            inner: self.inner.clone(),
            cancel: Stop {
                token: self.cancel.token.clone(),
                fence: Some(fence),
            },
        }
    }

    /// Aliased mutations per document (`pluvo.batch_size`).
    pub fn batch_size(&self) -> usize {
        self.inner.batch_size
    }

    /// Requests allowed in flight at once (`pluvo.concurrency`); callers may run this many batches
    /// concurrently, more would only queue.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Obtains a token (or reuses the cached one): proves the URL, credentials and scope work.
    pub async fn check_token(&self) -> Result<(), PluvoError> {
        self.inner.token(&self.cancel).await.map(drop)
    }

    /// `updateOrCreateUser` for each item, `batch_size` items per document (one document for a
    /// chunk as the caller sized it). Each item succeeds or fails on its own.
    pub async fn upsert_users(&self, items: &[UserUpsert]) -> Batch<UpsertedUser> {
        let started = Instant::now();
        let (results, attempts) = self
            .batches(
                items,
                documents::upsert_users,
                |payload: UpsertUserPayload| {
                    let user = payload.user.ok_or_else(|| {
                        PluvoError::Decode(
                            "updateOrCreateUser returned no user and no error".into(),
                        )
                    })?;
                    Ok(UpsertedUser {
                        id: user.id.to_string(),
                        r#ref: user.user_ref,
                        // Pluvo documents `created` as always present; if it is not, "updated" is the
                        // answer that cannot make the caller record a user twice.
                        created: payload.created.unwrap_or(false),
                    })
                },
            )
            .await;
        Batch {
            attempts,
            elapsed: started.elapsed(),
            items: results,
        }
    }

    /// `updateExtraCategoryValues` for each item. Items without values need no request and succeed.
    pub async fn set_category_values(&self, items: &[CategoryUpdate]) -> Batch<()> {
        let started = Instant::now();
        let to_send: Vec<&CategoryUpdate> = items.iter().filter(|i| !i.values.is_empty()).collect();
        let (sent, attempts) = self
            .batches(
                &to_send,
                documents::set_category_values,
                |_: SetCategoryValuesPayload| Ok(()),
            )
            .await;
        let mut sent = sent.into_iter();
        let results = items
            .iter()
            .map(|item| {
                if item.values.is_empty() {
                    Ok(())
                } else {
                    sent.next().unwrap_or_else(|| {
                        Err(PluvoError::Decode(
                            "internal: result missing for an item".into(),
                        ))
                    })
                }
            })
            .collect();
        Batch {
            attempts,
            elapsed: started.elapsed(),
            items: results,
        }
    }

    /// Adds users (by ref) to a group. Pluvo applies this asynchronously.
    pub async fn add_to_group(
        &self,
        group: &GroupRef,
        users: &[EmployeeRef],
    ) -> Result<Membership, PluvoError> {
        self.membership::<AddUsersToGroup>(group, users).await
    }

    /// Removes users (by ref) from a group. Pluvo applies this asynchronously.
    pub async fn remove_from_group(
        &self,
        group: &GroupRef,
        users: &[EmployeeRef],
    ) -> Result<Membership, PluvoError> {
        self.membership::<RemoveUsersFromGroup>(group, users).await
    }

    /// Sends the refs in chunks of [`REFS_PER_MEMBERSHIP_CALL`] and adds up the answers. A failing
    /// chunk fails the call; chunks before it were applied (both mutations are idempotent, so the
    /// caller can simply repeat the whole change).
    async fn membership<M: MembershipChange>(
        &self,
        group: &GroupRef,
        users: &[EmployeeRef],
    ) -> Result<Membership, PluvoError> {
        let mut total = Membership::default();
        for chunk in users.chunks(REFS_PER_MEMBERSHIP_CALL) {
            let variables = GroupMembersVariables {
                group_ref: group.as_str().to_owned(),
                user_refs: Some(chunk.iter().map(|u| u.as_str().to_owned()).collect()),
            };
            let (data, attempts) = self
                .inner
                .execute(M::operation(variables), &self.cancel)
                .await?;
            total.attempts += attempts;
            let [done, already, failed] = data.lists().ok_or_else(|| {
                PluvoError::Decode(format!("{} returned nothing and no error", M::FIELD))
            })?;
            total.done.extend(done.unwrap_or_default());
            total.already.extend(already.unwrap_or_default());
            total.failed.extend(failed.unwrap_or_default());
        }
        Ok(total)
    }

    pub async fn find_user_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<RemoteUser>, PluvoError> {
        let op = UserByEmail::build(UserByEmailVariables {
            email: email.as_str().to_owned(),
        });
        not_found_as_none(
            self.inner
                .execute(op, &self.cancel)
                .await
                .map(|(data, _)| data.user),
        )
    }

    pub async fn find_user_by_ref(
        &self,
        r: &EmployeeRef,
    ) -> Result<Option<RemoteUser>, PluvoError> {
        let op = UserByRef::build(UserByRefVariables {
            user_ref: r.as_str().to_owned(),
        });
        not_found_as_none(
            self.inner
                .execute(op, &self.cancel)
                .await
                .map(|(data, _)| data.user),
        )
    }

    /// Every group, following `endCursor` 50 at a time.
    pub async fn groups(&self) -> Result<Vec<RemoteGroup>, PluvoError> {
        let mut groups = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let op = GroupsPage::build(GroupsPageVariables {
                first: PAGE_SIZE,
                after: after.clone(),
            });
            let (data, _) = self.inner.execute(op, &self.cancel).await?;
            let Some(page) = data.paginated_groups else {
                return Ok(groups);
            };
            groups.extend(
                page.edges
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.node)
                    .map(|g| RemoteGroup {
                        id: g.id.to_string(),
                        r#ref: g.group_ref,
                        name: g.name,
                    }),
            );
            if !page.page_info.has_next_page {
                return Ok(groups);
            }
            match page.page_info.end_cursor {
                Some(cursor) if Some(&cursor) != after.as_ref() => after = Some(cursor),
                _ => {
                    return Err(PluvoError::Decode(
                        "paginatedGroups says there is a next page but gives no new endCursor"
                            .into(),
                    ));
                }
            }
        }
        Err(PluvoError::Decode(format!(
            "paginatedGroups did not end after {MAX_PAGES} pages"
        )))
    }

    /// Reads the tenant's schema by introspection and compares it with what every document
    /// of this client uses of `schema/pluvo.graphql` (see [`super::introspection`]).
    pub async fn compare_schema(&self) -> Result<super::introspection::SchemaReport, PluvoError> {
        let request = serde_json::json!({
            "query": super::introspection::QUERY,
            "operationName": "Introspection",
        });
        let (response, _) = self
            .inner
            .graphql("Introspection", &request, &self.cancel)
            .await;
        let response = response?;
        if let Some(error) = response.errors().first() {
            return Err(from_graphql(error));
        }
        let data = response
            .data
            .ok_or_else(|| PluvoError::Decode("Introspection: no data and no errors".to_owned()))?;
        super::introspection::compare(&data, &super::documents::every_document()?)
    }

    /// The custom fields defined for users (`extraCategories(contentType: USER)`).
    pub async fn user_categories(&self) -> Result<Vec<RemoteCategory>, PluvoError> {
        let (data, _) = self
            .inner
            .execute(UserCategories::build(()), &self.cancel)
            .await?;
        Ok(data
            .extra_categories
            .unwrap_or_default()
            .into_iter()
            .map(|c| RemoteCategory {
                id: c.id.to_string(),
                r#ref: c.category_ref,
                title: c.title,
                category_type: c.category_type,
                choices: c
                    .choice_options
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| o.string_value)
                    .collect(),
            })
            .collect())
    }

    /// Sends `items` in documents of at most `batch_size` aliases, one after the other, and
    /// judges each alias on its own. Results are in input order.
    async fn batches<I, P, T>(
        &self,
        items: &[I],
        build: impl Fn(&[I]) -> Result<AliasedDocument, PluvoError>,
        finish: impl Fn(P) -> Result<T, PluvoError>,
    ) -> (Vec<Result<T, PluvoError>>, u32)
    where
        P: DeserializeOwned,
    {
        let mut results = Vec::with_capacity(items.len());
        let mut attempts = 0;
        for chunk in items.chunks(self.inner.batch_size) {
            let document = match build(chunk) {
                Ok(document) => document,
                Err(error) => {
                    results.extend(chunk.iter().map(|_| Err(error.clone())));
                    continue;
                }
            };
            let aliases = document.aliases().to_vec();
            let request = document.into_request();
            let (response, sent) = self
                .inner
                .graphql(request.operation_name, &request, &self.cancel)
                .await;
            attempts += sent;
            let judged: Vec<Result<T, PluvoError>> = match response {
                Ok(response) => split::<P>(&aliases, &response)
                    .into_iter()
                    .map(|r| r.and_then(&finish))
                    .collect(),
                Err(error) => aliases.iter().map(|_| Err(error.clone())).collect(),
            };
            debug!(
                operation = request.operation_name,
                items = judged.len(),
                failed = judged.iter().filter(|r| r.is_err()).count(),
                attempts = sent,
                "batch sent"
            );
            results.extend(judged);
        }
        (results, attempts)
    }
}

/// `addUsersToGroup` and `removeUsersFromGroup` answer the same three lists under other names.
trait MembershipChange: DeserializeOwned {
    const FIELD: &'static str;
    fn operation(variables: GroupMembersVariables)
    -> cynic::Operation<Self, GroupMembersVariables>;
    /// Done, already so, failed.
    fn lists(self) -> Option<[Option<Vec<String>>; 3]>;
}

impl MembershipChange for AddUsersToGroup {
    const FIELD: &'static str = "addUsersToGroup";
    fn operation(
        variables: GroupMembersVariables,
    ) -> cynic::Operation<Self, GroupMembersVariables> {
        <Self as MutationBuilder<_>>::build(variables)
    }
    fn lists(self) -> Option<[Option<Vec<String>>; 3]> {
        self.add_users_to_group
            .map(|p| [p.added_ids, p.already_added_ids, p.failed_ids])
    }
}

impl MembershipChange for RemoveUsersFromGroup {
    const FIELD: &'static str = "removeUsersFromGroup";
    fn operation(
        variables: GroupMembersVariables,
    ) -> cynic::Operation<Self, GroupMembersVariables> {
        <Self as MutationBuilder<_>>::build(variables)
    }
    fn lists(self) -> Option<[Option<Vec<String>>; 3]> {
        self.remove_users_from_group
            .map(|p| [p.removed_ids, p.already_removed_ids, p.failed_ids])
    }
}

/// A lookup of a user who does not exist answers `null`, or (some servers) an error saying so:
/// `NOT_FOUND`, `DoesNotExist`, "User matching query does not exist.".
fn not_found_as_none(
    result: Result<Option<UserNode>, PluvoError>,
) -> Result<Option<RemoteUser>, PluvoError> {
    match result {
        Ok(user) => Ok(user.map(|u| RemoteUser {
            id: u.id.to_string(),
            r#ref: u.user_ref,
            email: u.email,
            name: u.name,
            archived: u.archived,
            groups: u
                .participant_groups
                .unwrap_or_default()
                .into_iter()
                .filter_map(|g| g.group_ref)
                .collect(),
        })),
        Err(error) if error.refusal() == Some(Refusal::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

impl Inner {
    /// The one typed path for single-field operations: any GraphQL error fails the call.
    async fn execute<Q, V>(
        &self,
        op: cynic::Operation<Q, V>,
        cancel: &Stop,
    ) -> Result<(Q, u32), PluvoError>
    where
        Q: DeserializeOwned,
        V: serde::Serialize,
    {
        let name = op.operation_name.clone().unwrap_or_default();
        let (response, attempts) = self.graphql(&name, &op, cancel).await;
        let response = response?;
        if let Some(error) = response.errors().first() {
            return Err(from_graphql(error));
        }
        let data = response
            .data
            .ok_or_else(|| PluvoError::Decode(format!("{name}: no data and no errors")))?;
        let data = Q::deserialize(data).map_err(|e| PluvoError::Decode(format!("{name}: {e}")))?;
        Ok((data, attempts))
    }

    /// POSTs a GraphQL request with retries and token renewal; returns the response (possibly
    /// with field errors) and the number of HTTP requests it took.
    async fn graphql(
        &self,
        operation: &str,
        request: &impl serde::Serialize,
        cancel: &Stop,
    ) -> (Result<RawResponse, PluvoError>, u32) {
        let body = match serde_json::to_string(request) {
            Ok(body) => body,
            Err(e) => {
                return (
                    Err(PluvoError::InvalidDocument {
                        code: None,
                        message: format!("internal: cannot encode the request ({e})"),
                    }),
                    0,
                );
            }
        };
        self.run(operation, cancel, |attempt| {
            self.graphql_attempt(operation, &body, attempt, cancel)
        })
        .await
    }

    async fn graphql_attempt(
        &self,
        operation: &str,
        body: &str,
        attempt: u32,
        cancel: &Stop,
    ) -> Step<RawResponse> {
        let token = match self.token(cancel).await {
            Ok(token) => token,
            // The token request had its own retries; repeating them here would multiply them.
            Err(error) => return Step::Fail(error),
        };
        let request = self
            .http
            .post(self.graphql_url.clone())
            .bearer_auth(token.secret.expose_secret())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        let reply = match self.exchange(operation, attempt, request, cancel).await {
            Ok(reply) => reply,
            Err(error) => return Step::from_error(error),
        };
        if let Some(step) = self.transient(&reply) {
            return step;
        }
        let parsed = serde_json::from_str::<RawResponse>(&reply.body)
            .ok()
            .filter(|r| r.data.is_some() || r.errors.is_some());
        let refusal = parsed
            .as_ref()
            .and_then(|response| {
                response
                    .errors()
                    .iter()
                    .find(|e| is_auth_error(e, reply.status))
                    .map(|e| excerpt(&e.message))
            })
            // Any 401, or a 403 whose (non-GraphQL) body speaks of authentication, as Django
            // REST framework answers a missing or expired token.
            .or_else(|| {
                (reply.status == 401
                    || (reply.status == 403
                        && parsed.is_none()
                        && body_mentions_authentication(&reply.body)))
                .then(|| excerpt(&reply.body))
            });
        if let Some(message) = refusal {
            let answered = matches!(reply.status, 200..=299);
            return Step::Renew {
                generation: token.generation,
                answer: parsed.filter(|_| answered),
                how: format!("HTTP {}: {message}", reply.status),
                grant: token.grant,
            };
        }
        match (reply.status, parsed) {
            (200..=299, Some(response)) => Step::Done(response),
            (200..=299, None) => Step::Fail(PluvoError::Decode(format!(
                "{operation}: the answer is not a GraphQL response: {}",
                excerpt(&reply.body)
            ))),
            // Some servers answer a document that does not validate, or a conflict, with a 4xx and
            // an errors list: the errors say what was refused, to be judged like any other.
            (400 | 409 | 422, Some(response)) if !response.errors().is_empty() => {
                Step::Done(response)
            }
            (status, _) => Step::Fail(PluvoError::http(status, &reply.body)),
        }
    }

    /// The cached token, or a new one; concurrent callers share one token request.
    async fn token(&self, cancel: &Stop) -> Result<Token, PluvoError> {
        self.tokens.get(|| self.fetch_token(cancel)).await
    }

    async fn fetch_token(&self, cancel: &Stop) -> Result<Issued, PluvoError> {
        let (result, _) = self
            .run("oauth_token", cancel, |attempt| {
                self.token_attempt(attempt, cancel)
            })
            .await;
        result
    }

    async fn token_attempt(&self, attempt: u32, cancel: &Stop) -> Step<Issued> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        let request = self.http.post(self.token_url.clone()).form(&form);
        let reply = match self.exchange("oauth_token", attempt, request, cancel).await {
            Ok(reply) => reply,
            Err(error) => return Step::from_error(error),
        };
        if let Some(step) = self.transient(&reply) {
            return step;
        }
        match reply.status {
            200..=299 => match parse_token(&reply.body, &self.scope) {
                Ok((issued, missing)) => {
                    if !missing.is_empty() {
                        warn!(
                            missing = %missing.join(" "),
                            "Pluvo granted fewer scopes than pluvo.scope asks for; calls needing them will be refused"
                        );
                    }
                    Step::Done(issued)
                }
                Err(error) => Step::Fail(error),
            },
            status => Step::Fail(token_refused(status, &reply.body)),
        }
    }

    /// 429 and retryable 5xx ask for a retry. (The pacer has already heard the answer, and
    /// paused everyone for its `Retry-After` and slowed down where it asked for that.)
    fn transient<T>(&self, reply: &Reply) -> Option<Step<T>> {
        match reply.status {
            429 => Some(Step::Retry {
                error: PluvoError::RateLimited {
                    retry_after: reply.retry_after,
                },
                retry_after: reply.retry_after,
            }),
            status if is_retryable_status(status) => Some(Step::Retry {
                error: PluvoError::http(status, &reply.body),
                retry_after: reply.retry_after,
            }),
            _ => None,
        }
    }

    /// Repeats `attempt` as its [`Step`]s ask, within `max_attempts` transient failures and
    /// [`MAX_RENEWALS`] token renewals. Returns the outcome and the number of requests sent.
    ///
    /// `attempt` is a plain closure returning a future, not an async closure: the futures of
    /// async closures are not provably `Send` for every lifetime, and callers spawn these calls.
    async fn run<T, F>(
        &self,
        operation: &str,
        cancel: &Stop,
        mut attempt: impl FnMut(u32) -> F,
    ) -> (Result<T, PluvoError>, u32)
    where
        F: Future<Output = Step<T>>,
    {
        let mut requests = 0;
        let mut failures = 0;
        let mut renewals = 0;
        loop {
            requests += 1;
            match attempt(requests).await {
                Step::Done(value) => return (Ok(value), requests),
                Step::Fail(error) => return (Err(error), requests),
                Step::Renew {
                    generation,
                    answer,
                    how,
                    grant,
                } => {
                    if renewals >= MAX_RENEWALS {
                        if let Some(answer) = answer {
                            return (Ok(answer), requests);
                        }
                        return (Err(refused_after_renewal(&how, &grant)), requests);
                    }
                    renewals += 1;
                    debug!(operation, "token refused, renewing it");
                    self.tokens.invalidate(generation).await;
                }
                Step::Retry { error, retry_after } => {
                    failures += 1;
                    if failures >= self.max_attempts {
                        let error = PluvoError::Exhausted {
                            attempts: failures,
                            last: Box::new(error),
                        };
                        return (Err(error), requests);
                    }
                    let delay = self
                        .backoff
                        .retry_delay(failures, retry_after, &mut rand::rng());
                    self.metrics.inc(RETRIES, vec![]);
                    warn!(
                        operation,
                        attempt = requests,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "transient failure talking to Pluvo; retrying"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => {
                            debug!(operation, error = %error, "stopping: not retrying");
                            return (Err(PluvoError::Cancelled), requests);
                        }
                    }
                }
            }
        }
    }

    /// One HTTP request: admitted by the pacer, counted by status, body read completely.
    async fn exchange(
        &self,
        operation: &str,
        attempt: u32,
        request: reqwest::RequestBuilder,
        cancel: &Stop,
    ) -> Result<Reply, PluvoError> {
        let span = debug_span!("pluvo_request", operation, attempt);
        async {
            // Nothing is sent once the run is stopping, however long admission would take.
            if !cancel.may_send() {
                return Err(PluvoError::Cancelled);
            }
            let admission = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(PluvoError::Cancelled),
                admission = self.pacer.admit() => admission,
            };
            if !cancel.may_send() {
                return Err(PluvoError::Cancelled);
            }
            let started = Instant::now();
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    self.metrics
                        .inc(REQUESTS, vec![("status", "transport_error".into())]);
                    debug!(elapsed_ms = elapsed_ms(started), error = %error, "no response");
                    return Err(transport_error(&error));
                }
            };
            let status = response.status().as_u16();
            self.metrics
                .inc(REQUESTS, vec![("status", status.to_string())]);
            if status == 429 {
                self.metrics.inc(RATE_LIMITED, vec![]);
            }
            let retry_after = retry_after(response.headers());
            // Before the body is read: the other tasks must stop (or may speed up) at once.
            self.pacer.answered(&admission.ticket, status, retry_after);
            // A connection dropped mid-body is as transient as one dropped before the headers.
            let body = response.text().await.map_err(|e| transport_error(&e))?;
            debug!(status, elapsed_ms = elapsed_ms(started), "response");
            Ok(Reply {
                status,
                retry_after,
                body,
            })
        }
        .instrument(span)
        .await
    }
}

/// Whether a non-GraphQL error body speaks of authentication (e.g. Django REST framework's
/// `{"detail": "Authentication credentials were not provided."}` with HTTP 403).
fn body_mentions_authentication(body: &str) -> bool {
    let body = body.to_lowercase();
    ["authenticat", "token", "credentials"]
        .iter()
        .any(|word| body.contains(word))
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn transport_error(error: &reqwest::Error) -> PluvoError {
    if error.is_timeout() {
        return PluvoError::Timeout;
    }
    if error.is_builder() {
        return PluvoError::Config {
            key: "pluvo.url",
            reason: format!("cannot be used for a request: {error}"),
        };
    }
    // reqwest's own message is generic ("error sending request"); the cause is in the chain.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    PluvoError::Transport(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The apply stage spawns these calls on tokio tasks, so their futures must be `Send`.
    #[allow(dead_code)]
    fn public_futures_are_send(client: &PluvoClient, group: &GroupRef, r: &EmployeeRef, e: &Email) {
        fn send<T: Send>(_: T) {}
        send(client.check_token());
        send(client.upsert_users(&[]));
        send(client.set_category_values(&[]));
        send(client.add_to_group(group, &[]));
        send(client.remove_from_group(group, &[]));
        send(client.find_user_by_email(e));
        send(client.find_user_by_ref(r));
        send(client.groups());
        send(client.user_categories());
    }
}
