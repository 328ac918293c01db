//! The HTTP face of the simulator: routes, the request pipeline, and the connection loop.
//!
//! An API request goes through, in order: latency, authentication, rate limit, injected faults,
//! body checks, GraphQL. Each stage can answer on its own, and none of the answers before
//! execution touch the tenant, so a client can safely retry them.
//!
//! Connections are served by our own accept loop instead of `axum::serve` for one reason: a
//! "reset" fault must end the TCP connection without any HTTP response, and that needs a handle
//! on the connection from inside the handler (the [`Kill`] extension).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use apollo_compiler::Schema;
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::auth::{RateLimiter, Tokens};
use crate::config::{AuthErrorMode, Faults, SimConfig};
use crate::faults::FaultRng;
use crate::graphql::{self, DocCache};
use crate::seed::{Seed, SeedError, SeedUser};
use crate::state::State;
use crate::stats::Stats;
use crate::view::StateView;

/// Largest accepted request body.
pub const MAX_BODY: usize = 2 * 1024 * 1024;
/// Parsed documents kept; a sync uses a handful, so this only bounds abuse.
const DOC_CACHE: usize = 256;
/// The code clients look for (it contains `Auth`, per the contract).
pub const AUTH_ERROR_CODE: &str = "AuthenticationError";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a simulator bug; keep serving rather than cascade.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the handlers share.
struct Shared {
    client_id: String,
    client_secret: String,
    seed: Seed,
    fault_seed: u64,
    knobs: Mutex<Faults>,
    state: Mutex<State>,
    docs: Mutex<DocCache>,
    stats: Mutex<Stats>,
    in_flight: AtomicU64,
    tokens: Mutex<Tokens>,
    limiter: Mutex<RateLimiter>,
    faults: Mutex<FaultRng>,
    allow_remote_admin: bool,
    /// What this tenant validates and executes documents against (see `SimConfig::schema_sdl`).
    schema: Arc<Valid<Schema>>,
}

impl Shared {
    fn knobs(&self) -> Faults {
        lock(&self.knobs).clone()
    }
}

/// The TCP peer of a request; inserted into every request by the accept loop.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

/// The admin API has no authentication and can rewrite the tenant, so it answers loopback peers
/// only, unless the operator allowed otherwise (`--allow-remote-admin`).
async fn loopback_only(
    AxState(shared): AxState<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request.extensions().get::<Peer>().map(|peer| peer.0.ip());
    if admin_allowed(shared.allow_remote_admin, peer) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": "the admin API answers loopback clients only; start pluvo-sim with --allow-remote-admin to change that"
        })),
    )
        .into_response()
}

/// Whether a peer may use the admin API. A request without a known peer did not come through
/// the accept loop (an in-process router), so it is local by construction. A dual-stack socket
/// bound to `[::]` sees an IPv4 client as an IPv4-mapped address (`::ffff:127.0.0.1`), which
/// `Ipv6Addr::is_loopback` does not count, so the address is canonicalised first.
fn admin_allowed(allow_remote_admin: bool, peer: Option<std::net::IpAddr>) -> bool {
    allow_remote_admin || peer.is_none_or(|ip| ip.to_canonical().is_loopback())
}

/// Drops the current connection when fired; inserted into every request by the accept loop.
#[derive(Clone, Default)]
struct Kill(Arc<Notify>);

/// Per-request bookkeeping: stats, in-flight gauge and the one log line, written on drop so
/// requests whose connection is dropped are logged too.
struct Tracker {
    shared: Arc<Shared>,
    counted: bool,
    method: Method,
    path: String,
    start: Instant,
    status: Option<u16>,
    fields: Vec<String>,
}

impl Tracker {
    fn new(shared: &Arc<Shared>, req: &Request, counted: bool) -> Self {
        if counted {
            let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let mut stats = lock(&shared.stats);
            stats.requests_total += 1;
            stats.max_in_flight = stats.max_in_flight.max(now);
        }
        Self {
            shared: Arc::clone(shared),
            counted,
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            start: Instant::now(),
            status: None,
            fields: Vec::new(),
        }
    }

    fn respond(&mut self, response: Response) -> Response {
        let status = response.status().as_u16();
        self.status = Some(status);
        if self.counted {
            *lock(&self.shared.stats)
                .requests_by_status
                .entry(status)
                .or_default() += 1;
        }
        response
    }

    fn fault(&self, kind: &str) {
        *lock(&self.shared.stats)
            .faults
            .entry(kind.to_owned())
            .or_default() += 1;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.counted {
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let status = self
            .status
            .map_or_else(|| "dropped".to_owned(), |s| s.to_string());
        tracing::info!(
            method = %self.method,
            path = %self.path,
            status = %status,
            duration_ms = %format_args!("{:.3}", self.start.elapsed().as_secs_f64() * 1000.0),
            fields = %self.fields.join(","),
            "request"
        );
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn error_response(status: StatusCode, message: &str, code: Option<&str>) -> Response {
    json_response(status, graphql::message_body(message, code))
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Ends the connection without a response. The accept loop drops the connection when fired;
/// this future never completes, so it is dropped along with it.
async fn drop_connection(req_kill: Option<Kill>) -> Response {
    match req_kill {
        Some(kill) => {
            kill.0.notify_one();
            std::future::pending().await
        }
        // Only reachable if the router is served by something other than our accept loop.
        None => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot drop connection here",
            None,
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Option<serde_json_bytes::Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

async fn graphql_endpoint(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, true);
    let response = graphql_pipeline(&shared, &mut track, req).await;
    track.respond(response)
}

async fn graphql_pipeline(shared: &Arc<Shared>, track: &mut Tracker, req: Request) -> Response {
    let knobs = shared.knobs();
    sleep_ms(knobs.latency_ms).await;
    if req.method() != Method::POST {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST for GraphQL requests",
            None,
        );
    }
    let kill = req.extensions().get::<Kill>().cloned();

    let now = Instant::now();
    let client = bearer(req.headers())
        .and_then(|t| lock(&shared.tokens).client_of(t, now).map(str::to_owned));
    let Some(client) = client else {
        let as_http = match knobs.auth_error {
            AuthErrorMode::Http401 => true,
            AuthErrorMode::Graphql => false,
            AuthErrorMode::Mixed => lock(&shared.faults).coin(),
        };
        let body =
            serde_json::to_vec(&knobs.error_style.token_refusal(as_http)).unwrap_or_default();
        return if as_http {
            let mut response = json_response(StatusCode::UNAUTHORIZED, body);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        } else {
            json_response(StatusCode::OK, body)
        };
    };

    if let Err(retry_after) = lock(&shared.limiter).check(&client, knobs.rate, knobs.burst, now) {
        lock(&shared.stats).rate_limited += 1;
        let mut response = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded",
            Some("RATE_LIMITED"),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }

    let draw = lock(&shared.faults).draw(&knobs);
    if let Some(status) = draw.error_5xx {
        track.fault("5xx");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, status.canonical_reason().unwrap_or("server error")).into_response();
    }
    if draw.reset {
        track.fault("reset");
        return drop_connection(kill).await;
    }
    if draw.slow {
        track.fault("slow");
        sleep_ms(knobs.slow_ms).await;
    }

    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            None,
        );
    }
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body exceeds 2 MiB",
            None,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_BODY).await else {
        return too_large();
    };
    let body: GraphqlBody = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("request body is not a GraphQL JSON request: {e}"),
                None,
            );
        }
    };
    let variables: JsonMap = match body.variables {
        None | Some(serde_json_bytes::Value::Null) => JsonMap::new(),
        Some(serde_json_bytes::Value::Object(map)) => map,
        Some(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "`variables` must be a JSON object",
                None,
            );
        }
    };
    lock(&shared.stats).graphql_documents += 1;

    let schema = &*shared.schema;
    let cached = lock(&shared.docs).get(&body.query);
    let doc = match cached {
        Some(doc) => doc,
        None => match graphql::parse(schema, &body.query) {
            Ok(doc) => {
                let doc = Arc::new(doc);
                lock(&shared.docs).insert(body.query.clone(), Arc::clone(&doc));
                doc
            }
            Err(errors) => {
                return json_response(StatusCode::BAD_REQUEST, graphql::errors_body(errors));
            }
        },
    };
    let operation = body.operation_name.as_deref();
    let is_mutation = match graphql::is_mutation(&doc, operation) {
        Ok(m) => m,
        Err(errors) => return json_response(StatusCode::BAD_REQUEST, graphql::errors_body(errors)),
    };
    if let Some(refused) = too_many_root_fields(shared, &knobs, &doc, operation) {
        return refused;
    }
    let delay = Duration::from_secs(knobs.membership_delay);
    let executed = {
        let mut state = lock(&shared.state);
        graphql::execute(
            schema,
            &doc,
            operation,
            &variables,
            &mut state,
            Instant::now(),
            delay,
        )
    };
    let mut executed = match executed {
        Ok(executed) => executed,
        Err(errors) => return json_response(StatusCode::BAD_REQUEST, graphql::errors_body(errors)),
    };
    {
        let mut stats = lock(&shared.stats);
        for field in &executed.fields {
            *stats.fields.entry(field.clone()).or_default() += 1;
        }
        stats.invitations += executed.invitations;
    }
    track.fields = std::mem::take(&mut executed.fields);
    if is_mutation && draw.after_commit {
        track.fault("after_commit");
        return drop_connection(kill).await;
    }
    json_response(StatusCode::OK, executed.body(knobs.error_style))
}

/// `--max-root-fields`: a document with more root fields is refused before anything runs, with
/// a GraphQL error worded as complexity limits usually are (HTTP 200, no `path`), or with a
/// proxy's plain HTTP 413 under `--too-big-413`.
fn too_many_root_fields(
    shared: &Shared,
    knobs: &Faults,
    doc: &Valid<apollo_compiler::ExecutableDocument>,
    operation: Option<&str>,
) -> Option<Response> {
    let fields = graphql::root_fields(doc, operation);
    if knobs.max_root_fields == 0 || fields <= knobs.max_root_fields {
        return None;
    }
    lock(&shared.stats).too_big += 1;
    if knobs.too_big_413 {
        return Some(
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large",
            )
                .into_response(),
        );
    }
    Some(error_response(
        StatusCode::OK,
        &format!(
            "Query is too complex: the document has {fields} root fields, more than the {} \
             allowed per request; send fewer operations per request",
            knobs.max_root_fields
        ),
        Some("DOCUMENT_TOO_COMPLEX"),
    ))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// Client credentials from the form or, as OAuth also allows, HTTP Basic.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    )
    .ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    json_response(
        status,
        serde_json::to_vec(&serde_json::json!({ "error": error })).unwrap_or_default(),
    )
}

async fn token_endpoint(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, true);
    lock(&shared.stats).token_requests += 1;
    let knobs = shared.knobs();
    sleep_ms(knobs.latency_ms).await;
    let response = if req.method() != Method::POST {
        oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request")
    } else {
        let basic = basic_credentials(req.headers());
        match axum::Form::<TokenForm>::from_request(req, &()).await {
            Err(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
            Ok(axum::Form(form)) => issue_token(&shared, &knobs, form, basic),
        }
    };
    track.respond(response)
}

fn issue_token(
    shared: &Shared,
    knobs: &Faults,
    form: TokenForm,
    basic: Option<(String, String)>,
) -> Response {
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let (id, secret) = match (form.client_id, form.client_secret, basic) {
        (Some(id), Some(secret), _) => (id, secret),
        (_, _, Some(basic)) => basic,
        _ => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    };
    if id != shared.client_id || secret != shared.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let token =
        lock(&shared.tokens).issue(&id, Duration::from_secs(knobs.token_ttl), Instant::now());
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": knobs.token_ttl,
        "scope": form.scope.unwrap_or_default(),
    });
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// Pluvo's paths end in a slash; without it Django answers with a permanent redirect.
async fn add_slash(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, true);
    let mut location = format!("{}/", req.uri().path());
    if let Some(query) = req.uri().query() {
        location = format!("{location}?{query}");
    }
    let response = match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    };
    track.respond(response)
}

// ---- admin ---------------------------------------------------------------------------------

async fn admin_state(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let view = StateView::of(&lock(&shared.state));
    track.respond(axum::Json(view).into_response())
}

async fn admin_stats(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let stats = lock(&shared.stats).clone();
    track.respond(axum::Json(stats).into_response())
}

async fn admin_reset(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = match reset(&shared) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    track.respond(response)
}

async fn admin_users(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = match axum::Json::<Vec<SeedUser>>::from_request(req, &()).await {
        Err(rejection) => rejection.into_response(),
        Ok(axum::Json(users)) => match lock(&shared.state).add_seed_users(&users) {
            Ok(()) => axum::Json(serde_json::json!({ "added": users.len() })).into_response(),
            Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
        },
    };
    track.respond(response)
}

async fn admin_faults(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = if req.method() == Method::GET {
        axum::Json(shared.knobs()).into_response()
    } else {
        match axum::Json::<serde_json::Value>::from_request(req, &()).await {
            Err(rejection) => rejection.into_response(),
            Ok(axum::Json(patch)) => {
                let mut knobs = lock(&shared.knobs);
                match knobs.patched(&patch) {
                    Ok(next) => {
                        *knobs = next.clone();
                        axum::Json(next).into_response()
                    }
                    Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
                }
            }
        }
    };
    track.respond(response)
}

async fn admin_expire_tokens(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    lock(&shared.tokens).expire_all();
    track.respond(StatusCode::NO_CONTENT.into_response())
}

async fn not_found(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    track.respond(StatusCode::NOT_FOUND.into_response())
}

/// Back to the seed: data, stats, rate buckets and the fault sequence. Tokens and knobs stay,
/// so a client running across a reset keeps working.
fn reset(shared: &Shared) -> Result<(), SeedError> {
    let state = State::from_seed(&shared.seed)?;
    *lock(&shared.state) = state;
    *lock(&shared.stats) = Stats::default();
    lock(&shared.limiter).clear();
    *lock(&shared.faults) = FaultRng::new(shared.fault_seed);
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/graphql/", any(graphql_endpoint))
        .route("/oauth/token/", any(token_endpoint))
        .route("/graphql", any(add_slash))
        .route("/oauth/token", any(add_slash))
        .merge(
            Router::new()
                .route("/_sim/state", get(admin_state))
                .route("/_sim/stats", get(admin_stats))
                .route("/_sim/reset", post(admin_reset))
                .route("/_sim/users", post(admin_users))
                .route("/_sim/faults", get(admin_faults).post(admin_faults))
                .route("/_sim/expire-tokens", post(admin_expire_tokens))
                .route_layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&shared),
                    loopback_only,
                )),
        )
        .fallback(not_found)
        // Body limits are enforced by the handlers, which answer in GraphQL's error shape.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(shared)
}

// ---- serving -------------------------------------------------------------------------------

/// A running simulator. Dropping it stops the server; [`SimHandle::shutdown`] also waits.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts a simulator on `addr` (use port 0 for a free port).
pub async fn start(addr: SocketAddr, config: SimConfig) -> anyhow::Result<SimHandle> {
    use anyhow::Context as _;
    let schema = match &config.schema_sdl {
        None => graphql::schema()
            .map_err(|e| anyhow::anyhow!("vendored schema is invalid: {e}"))?
            .clone(),
        Some(sdl) => Schema::parse_and_validate(sdl.as_str(), "tenant.graphql")
            .map_err(|e| anyhow::anyhow!("the tenant's schema is invalid: {}", e.errors))?,
    };
    let state = State::from_seed(&config.seed).context("while applying the seed")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding {addr}"))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        knobs: Mutex::new(config.faults()),
        client_id: config.client_id,
        client_secret: config.client_secret,
        seed: config.seed,
        fault_seed: config.fault_seed,
        state: Mutex::new(state),
        docs: Mutex::new(DocCache::new(DOC_CACHE)),
        stats: Mutex::new(Stats::default()),
        in_flight: AtomicU64::new(0),
        tokens: Mutex::new(Tokens::default()),
        limiter: Mutex::new(RateLimiter::default()),
        faults: Mutex::new(FaultRng::new(config.fault_seed)),
        allow_remote_admin: config.allow_remote_admin,
        schema: Arc::new(schema),
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, router(Arc::clone(&shared)), stopped));
    tracing::info!(%addr, "pluvo-sim listening");
    Ok(SimHandle {
        addr,
        shared,
        stop,
        task,
    })
}

async fn accept_loop(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            // A send or a dropped handle both mean stop.
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, router.clone(), stopped.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    // Small request/response pairs: Nagle would add tens of milliseconds per round trip.
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok().map(Peer);
    let kill = Kill::default();
    let per_request = kill.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(per_request.clone());
            if let Some(peer) = peer {
                req.extensions_mut().insert(peer);
            }
            let mut router = router.clone();
            async move {
                let response = tower_service::Service::call(&mut router, req.map(Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        // Dropping the connection future closes the socket with no response written.
        () = kill.0.notified() => {}
        _ = stopped.changed() => {}
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The committed tenant, as `GET /_sim/state` returns it.
    pub fn state(&self) -> StateView {
        StateView::of(&lock(&self.shared.state))
    }

    /// As `GET /_sim/stats` returns them.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    pub fn faults(&self) -> Faults {
        self.shared.knobs()
    }

    /// Replaces all runtime knobs.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.knobs) = faults;
    }

    /// Back to the seed state with zeroed stats (see `POST /_sim/reset`).
    pub fn reset(&self) {
        // The seed was applied successfully at start, so applying it again cannot fail.
        if let Err(e) = reset(&self.shared) {
            tracing::error!(error = %e, "reset failed");
        }
    }

    /// Adds people as an admin would (all or nothing).
    pub fn add_users(&self, users: Vec<SeedUser>) -> Result<(), SeedError> {
        lock(&self.shared.state).add_seed_users(&users)
    }

    /// Invalidates every issued token.
    pub fn expire_tokens(&self) {
        lock(&self.shared.tokens).expire_all();
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod admin_access_tests {
    use super::admin_allowed;

    #[test]
    fn the_admin_api_answers_loopback_peers_unless_remote_admin_is_allowed() {
        let cases = [
            ("ipv4 loopback", false, Some("127.0.0.1"), true),
            ("ipv6 loopback", false, Some("::1"), true),
            (
                "ipv4 loopback on a dual-stack socket",
                false,
                Some("::ffff:127.0.0.1"),
                true,
            ),
            (
                "ipv4 loopback range",
                false,
                Some("::ffff:127.0.0.53"),
                true,
            ),
            (
                "ipv4-mapped lan peer",
                false,
                Some("::ffff:192.168.1.20"),
                false,
            ),
            ("bridge network peer", false, Some("172.17.0.1"), false),
            ("lan peer", false, Some("192.168.1.20"), false),
            ("lan peer, allowed", true, Some("192.168.1.20"), true),
            ("in-process, no peer", false, None, true),
        ];
        for (name, allow, peer, expected) in cases {
            let peer = peer.map(|ip| ip.parse().unwrap());
            assert_eq!(admin_allowed(allow, peer), expected, "case {name}");
        }
    }
}
