//! The one path every HTTP request to Pluvo takes, token requests included.
//!
//! [`Inner::exchange`] sends one request: admitted by the [`Pacer`], timed, counted in metrics, and
//! its status reported back to the pacer (a 429 pauses and slows every task). [`Inner::run`] wraps
//! attempts in the retry policy: transient failures (429, 5xx, timeouts, dropped connections) wait
//! their `Retry-After` plus a jittered backoff and try again up to `max_attempts`; a refused token
//! (HTTP 401 or a GraphQL error whose code mentions "auth") is renewed and the call repeated once,
//! outside that budget; anything else fails at once. It exists apart from [`super::client`] so the
//! API's operations (what to send, how to read the answer) and the transport (how a request gets
//! there, however often) can each be read on their own.

use std::sync::Arc;
use std::time::Duration;

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
use super::batch::RawResponse;
use super::error::{
    Signals, error_root, excerpt, from_graphql, is_auth_error, is_retryable_status,
};
use super::pacing::{Pacer, Ticket, retry_after};
use super::settings::ResolvedPluvo;
use super::sizing::BatchSizer;
use crate::http::Backoff;
use crate::metrics::{Kind, Metrics};

pub(crate) const REQUESTS: &str = crate::metrics::names::PLUVO_REQUESTS_TOTAL;
pub(crate) const RATE_LIMITED: &str = crate::metrics::names::PLUVO_RATE_LIMITED_TOTAL;
pub(crate) const RETRIES: &str = crate::metrics::names::PLUVO_RETRIES_TOTAL;

/// How often one call may renew a refused token before giving up: once is enough for an expired
/// token; a second refusal of a fresh token means missing rights, not staleness.
const MAX_RENEWALS: u32 = 1;

/// Asked right before every request; `false` stops it as a cancellation would (the run lease's
/// [`crate::service::lease::LeaseFence`], in practice).
pub type SendFence = Arc<dyn Fn() -> bool + Send + Sync>;

/// When a client's calls stop sending: its run's cancellation, and its send fence.
#[derive(Clone, Default)]
pub(super) struct Stop {
    pub(super) token: CancellationToken,
    pub(super) fence: Option<SendFence>,
}

impl Stop {
    pub(super) fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Checked again after the pacer admits a request: the wait may have been long (or the
    /// process paused), and what held when it began need not hold now.
    pub(super) fn may_send(&self) -> bool {
        !self.token.is_cancelled() && self.fence.as_ref().is_none_or(|fence| fence())
    }
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) graphql_url: Url,
    pub(super) token_url: Url,
    pub(super) client_id: String,
    pub(super) client_secret: SecretString,
    pub(super) scope: String,
    pub(super) pacer: Pacer,
    pub(super) backoff: Backoff,
    pub(super) max_attempts: u32,
    pub(super) sizer: BatchSizer,
    pub(super) concurrency: usize,
    pub(super) tokens: TokenCache,
    pub(super) metrics: Arc<Metrics>,
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

impl Inner {
    pub(super) fn new(settings: ResolvedPluvo, metrics: Arc<Metrics>) -> Result<Self, PluvoError> {
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
        Ok(Inner {
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
            sizer: BatchSizer::new(settings.batch_size.get(), settings.max_batch_size.get()),
            concurrency: settings.concurrency.get(),
            tokens: TokenCache::default(),
            metrics,
        })
    }

    /// The one typed path for single-field operations: any GraphQL error fails the call.
    pub(super) async fn execute<Q, V>(
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
    pub(super) async fn graphql(
        &self,
        operation: &str,
        request: &impl serde::Serialize,
        cancel: &Stop,
    ) -> (Result<RawResponse, PluvoError>, u32) {
        self.graphql_document(operation, request, cancel, false)
            .await
    }

    /// [`Inner::graphql`] for a document that may be split: when `splittable`, a timeout fails
    /// at once instead of being retried, so the caller re-sends the work in smaller documents
    /// (a document too big to answer in time is no smaller on the next attempt).
    pub(super) async fn graphql_document(
        &self,
        operation: &str,
        request: &impl serde::Serialize,
        cancel: &Stop,
        splittable: bool,
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
            self.graphql_attempt(operation, &body, attempt, cancel, splittable)
        })
        .await
    }

    async fn graphql_attempt(
        &self,
        operation: &str,
        body: &str,
        attempt: u32,
        cancel: &Stop,
        splittable: bool,
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
            Err(PluvoError::Timeout) if splittable => return Step::Fail(PluvoError::Timeout),
            Err(error) => return Step::from_error(error),
        };
        // A gateway that gave up waiting for the document: smaller documents, not the same again.
        if splittable && matches!(reply.status, 408 | 504) {
            return Step::Fail(PluvoError::http(reply.status, &reply.body));
        }
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
    pub(super) async fn token(&self, cancel: &Stop) -> Result<Token, PluvoError> {
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

    /// Tells the pacer how a request was answered (`status` 429 for any refusal for the
    /// rate), and counts such refusals.
    fn heard(&self, ticket: &Ticket, status: u16, retry_after: Option<Duration>) {
        if status == 429 {
            self.metrics.inc(RATE_LIMITED, vec![]);
        }
        self.pacer.answered(ticket, status, retry_after);
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
            let retry_after = retry_after(response.headers());
            let answered = (200..=299).contains(&status);
            if !answered {
                // Before the body is read: the other tasks must stop at once.
                self.heard(&admission.ticket, status, retry_after);
            }
            // A connection dropped mid-body is as transient as one dropped before the headers.
            let body = response.text().await.map_err(|e| transport_error(&e));
            // An answer is heard once its body is read: a GraphQL answer may refuse the request
            // for its rate (HTTP 200, `RATE_LIMITED`), and that is a 429 in all but status.
            let status = match &body {
                Ok(body) if answered && graphql_says_rate_limited(body) => 429,
                _ => status,
            };
            if answered {
                self.heard(&admission.ticket, status, retry_after);
            }
            let body = body?;
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

/// Whether a GraphQL answer refuses the whole request for its rate: an error without a path
/// (about the document, not one of its fields) that says so by code or message
/// ([`Signals::is_rate_limit`]).
fn graphql_says_rate_limited(body: &str) -> bool {
    let Ok(response) = serde_json::from_str::<RawResponse>(body) else {
        return false;
    };
    response
        .errors()
        .iter()
        .any(|e| error_root(e).is_none() && Signals::of(e, None).is_rate_limit())
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
