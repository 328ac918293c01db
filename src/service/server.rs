//! The admin listener of `pluvo-sync run`: manual trigger, run status, health and metrics.
//!
//! Routes:
//! - `POST /v1/sync` starts a run now. It needs `Authorization: Bearer <server.trigger_token>`
//!   (401 without it), answers 409 while a run is in progress (in this process or another one
//!   on the same database) and 202 with the new run's id otherwise.
//! - `GET /v1/runs/latest`: the latest journaled run as JSON, 404 before the first. Without the
//!   bearer token only its status, times and counts: anything unauthenticated carries no
//!   personal data, and the error summary can quote an e-mail address.
//! - `GET /healthz`: the process is up and serving (the container's `HEALTHCHECK`).
//! - `GET /readyz`: the database answers, and the last `server.ready_window` finished runs did
//!   not all fail. Fewer finished runs than that is not enough evidence, so it counts as ready.
//! - `GET /metrics`: Prometheus text; the process's counters plus gauges read from the journal
//!   at scrape time, so they survive restarts.
//!
//! The listener is bound before anything else starts, so "address in use" is a start-up error
//! (exit 2), not a log line in a daemon that then runs without its trigger. It serves
//! connections itself (see [`Limits`]): a client gets a bounded time to send its headers, and
//! only so many connections are open at once, so slow or idle clients cannot hold it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::domain::{RunStatus, Trigger};
use crate::metrics::{Metrics, names};
use crate::service::lease::Lease;
use crate::service::scheduler::{LaunchError, Runs};
use crate::sync::journal::Journal;

/// The `[server]` settings as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Serve the admin listener from `pluvo-sync run`.
    pub enabled: bool,
    /// `host:port` to listen on. Keep the loopback default unless a proxy or the container's
    /// port mapping needs more.
    pub listen: String,
    /// The bearer token `POST /v1/sync` requires.
    pub trigger_token: Option<SecretString>,
    /// A file holding the token instead (a Docker or Kubernetes secret); surrounding whitespace
    /// is ignored.
    pub trigger_token_file: Option<PathBuf>,
    /// How many of the latest finished runs must all have failed for `/readyz` to say no; 0
    /// turns the check off.
    pub ready_window: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_LISTEN.to_owned(),
            trigger_token: None,
            trigger_token_file: None,
            ready_window: 3,
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why the `[server]` settings were refused. Each message names the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServerSettingsError {
    #[error("server.listen: '{0}' is not an address like 127.0.0.1:8080")]
    Listen(String),
    #[error(
        "server.trigger_token: a bearer token is required while server.enabled is true; \
         set server.trigger_token or server.trigger_token_file, or set server.enabled = false"
    )]
    MissingToken,
    #[error("server.trigger_token: set either the token or server.trigger_token_file, not both")]
    TwoTokens,
    #[error("server.trigger_token: the token is empty")]
    EmptyToken,
    #[error("server.trigger_token_file: cannot read {path}: {source}")]
    TokenFile { path: PathBuf, source: io::Error },
}

/// Resolved server settings: what [`bind`] and [`router`] need.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub trigger_token: SecretString,
    pub ready_window: u32,
}

impl ServerSettings {
    /// `None` when the listener is disabled.
    pub fn resolve(&self) -> Result<Option<ServerConfig>, ServerSettingsError> {
        if !self.enabled {
            return Ok(None);
        }
        let listen = parse_listen(&self.listen)?;
        let token = match (&self.trigger_token, &self.trigger_token_file) {
            (Some(_), Some(_)) => return Err(ServerSettingsError::TwoTokens),
            (Some(token), None) => token.expose_secret().trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| ServerSettingsError::TokenFile {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
            (None, None) => return Err(ServerSettingsError::MissingToken),
        };
        if token.is_empty() {
            return Err(ServerSettingsError::EmptyToken);
        }
        Ok(Some(ServerConfig {
            listen,
            trigger_token: SecretString::from(token),
            ready_window: self.ready_window,
        }))
    }
}

/// The `[server]` settings as resolved when the configuration is loaded, so every command
/// reports a bad address or token file with the rest of the configuration's problems.
#[derive(Debug, Clone)]
pub enum Listener {
    /// `server.enabled = false`.
    Disabled,
    Enabled(ServerConfig),
    /// Enabled, but no trigger token is set. Only `pluvo-sync run` serves the listener, so only
    /// it refuses this ([`Listener::for_run`]); `sync`, `plan` and `check` need no token.
    WithoutToken,
}

impl Listener {
    pub fn from_settings(settings: &ServerSettings) -> Result<Self, ServerSettingsError> {
        match settings.resolve() {
            Ok(Some(config)) => Ok(Self::Enabled(config)),
            Ok(None) => Ok(Self::Disabled),
            Err(ServerSettingsError::MissingToken) => Ok(Self::WithoutToken),
            Err(error) => Err(error),
        }
    }

    /// What `pluvo-sync run` serves: `None` when disabled; a missing token refused.
    pub fn for_run(&self) -> Result<Option<ServerConfig>, ServerSettingsError> {
        match self {
            Self::Disabled => Ok(None),
            Self::Enabled(config) => Ok(Some(config.clone())),
            Self::WithoutToken => Err(ServerSettingsError::MissingToken),
        }
    }
}

/// Parses `server.listen`; exposed so `pluvo-sync healthcheck` can read the same key.
pub fn parse_listen(listen: &str) -> Result<SocketAddr, ServerSettingsError> {
    listen
        .trim()
        .parse()
        .map_err(|_| ServerSettingsError::Listen(listen.to_owned()))
}

/// The listener could not be bound; a start-up error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {}", describe_bind_error(.source))]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

fn describe_bind_error(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address in use".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    journal: Journal,
    runs: Runs,
    lease: Lease,
    metrics: Arc<Metrics>,
    token_digest: [u8; 32],
    ready_window: u32,
}

impl AppState {
    /// `lease` is only read, for the in-progress gauge; runs take it through `runs`.
    pub fn new(
        config: &ServerConfig,
        journal: Journal,
        runs: Runs,
        lease: Lease,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            journal,
            runs,
            lease,
            metrics,
            token_digest: Sha256::digest(config.trigger_token.expose_secret().as_bytes()).into(),
            ready_window: config.ready_window,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/sync", post(trigger))
        .route("/v1/runs/latest", get(latest_run))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// What one client may hold of the admin listener. `axum::serve` has no bound on how long a
/// client may take to send its headers, nor on how many connections are open, so 500 clients
/// trickling bytes kept 500 connections (and file descriptors) for as long as they liked.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest a connection may take to send a request's headers, counted from when the
    /// server starts waiting for them; this also bounds how long a kept-alive connection may
    /// sit idle between requests. Then it is closed.
    pub header_read: Duration,
    /// The longest a connection may stay open at all, however busy; a trickled request body
    /// cannot hold one past it.
    pub lifetime: Duration,
    /// Connections served at once. A connection past the cap is closed as soon as it is
    /// accepted, so the listener stays responsive and the cap cannot be queued around.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            lifetime: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// Serves `listener` until `shutdown` fires, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> io::Result<()> {
    serve_with(listener, router(state), Limits::default(), shutdown).await
}

/// [`serve`] with explicit [`Limits`].
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: back off rather than spin.
                    tracing::warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                max_connections = limits.max_connections,
                "admin listener: too many open connections; closing a new one"
            );
            drop(stream);
            continue;
        };
        connections.spawn(serve_connection(
            stream,
            app.clone(),
            limits,
            shutdown.clone(),
            permit,
        ));
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            async move {
                let response =
                    tower_service::Service::call(&mut app, request.map(axum::body::Body::new))
                        .await;
                Ok::<_, std::convert::Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        result = connection.as_mut() => Some(result),
        () = shutdown.cancelled() => None,
        () = tokio::time::sleep(limits.lifetime) => None,
    };
    let result = match ended {
        Some(result) => result,
        None => {
            // Let a request being answered finish, briefly; an idle connection closes at once.
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_secs(5), connection).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "admin listener: connection ended with an error");
    }
}

fn error_body(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Compares the presented bearer token with the configured one in time independent of where they
/// differ: both are hashed first, so neither their contents nor their lengths leak, and the
/// digests are compared with `subtle`, whose comparison the optimiser cannot short-circuit.
fn authorized(headers: &HeaderMap, expected_digest: &[u8; 32]) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
    else {
        return false;
    };
    let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    presented.ct_eq(expected_digest).into()
}

async fn trigger(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.token_digest) {
        tracing::warn!("POST /v1/sync refused: missing or wrong bearer token");
        let mut response = error_body(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match state.runs.start(Trigger::Http).await {
        Ok(run_id) => {
            tracing::info!(%run_id, "run started over HTTP");
            (StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))).into_response()
        }
        Err(LaunchError::Busy { holder }) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": "a run is in progress", "holder": holder })),
        )
            .into_response(),
        Err(error @ LaunchError::ShuttingDown) => {
            error_body(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
        Err(error @ LaunchError::Failed(_)) => {
            tracing::error!(%error, "run requested over HTTP could not start");
            error_body(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        }
    }
}

/// Columns of `runs` that carry no personal data: ids, times, status and counts. Without the
/// token `/v1/runs/latest` serves only these; the rest (the error summary quotes Pluvo's error
/// texts, which can name a person's e-mail address, and the source's description) needs it. A
/// column added later stays behind the token until it is listed here.
const PUBLIC_RUN_COLUMNS: &[&str] = &[
    "id",
    "trigger",
    "started_at",
    "finished_at",
    "status",
    "rows_read",
    "rows_rejected",
    "ops_planned",
    "ops_ok",
    "ops_failed",
    "ops_skipped",
    "plan_summary",
];

async fn latest_run(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.journal.latest_run().await {
        Ok(Some(run)) => {
            let mut run = serde_json::to_value(run).unwrap_or(Value::Null);
            if !authorized(&headers, &state.token_digest)
                && let Value::Object(columns) = &mut run
            {
                columns.retain(|name, _| PUBLIC_RUN_COLUMNS.contains(&name.as_str()));
                columns.insert(
                    "details".to_owned(),
                    Value::from(
                        "send Authorization: Bearer <server.trigger_token> for the error summary",
                    ),
                );
            }
            Json(run).into_response()
        }
        Ok(None) => error_body(StatusCode::NOT_FOUND, "no run has been journaled yet"),
        Err(error) => {
            tracing::error!(%error, "cannot read the latest run");
            error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "the journal is unreachable",
            )
        }
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    match readiness(&state.journal, state.ready_window).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true }))).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        )
            .into_response(),
    }
}

async fn readiness(journal: &Journal, window: u32) -> Result<(), String> {
    journal
        .ping()
        .await
        .map_err(|error| format!("database unreachable: {error}"))?;
    if window == 0 {
        return Ok(());
    }
    let statuses = journal
        .latest_finished_statuses(window)
        .await
        .map_err(|error| format!("cannot read the journal: {error}"))?;
    if statuses.len() == window as usize && statuses.iter().all(|s| *s == RunStatus::Failed) {
        return Err(format!("the last {window} runs failed"));
    }
    Ok(())
}

async fn metrics(State(state): State<AppState>) -> Response {
    let journal = Metrics::new();
    if let Err(error) = journal_gauges(&state, &journal).await {
        // The process's own counters are still worth serving.
        tracing::warn!(%error, "cannot read the journal for /metrics");
    }
    let body = format!("{}{}", state.metrics.render(), journal.render());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Gauges read from the database at scrape time. The last-success time lives in the shared
/// registry, so the newer of the journal's and the engine's value wins.
async fn journal_gauges(state: &AppState, journal: &Metrics) -> Result<(), sqlx::Error> {
    journal.describe(
        names::JOURNAL_RUNS,
        crate::metrics::Kind::Gauge,
        "Runs in the journal, by status.",
    );
    journal.describe(
        names::RUN_IN_PROGRESS,
        crate::metrics::Kind::Gauge,
        "1 while a run holds the run lease, in any process.",
    );
    for (status, count) in state.journal.runs_by_status().await? {
        journal.set(names::JOURNAL_RUNS, vec![("status", status)], count as f64);
    }
    let last_success = state.journal.last_success_at().await?;
    if let Some(at) = last_success.and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok()) {
        let seconds = at.timestamp() as f64;
        if seconds > state.metrics.get(names::LAST_SUCCESS_TIMESTAMP, vec![]) {
            state
                .metrics
                .set(names::LAST_SUCCESS_TIMESTAMP, vec![], seconds);
        }
    }
    let in_progress = state.lease.holder().await?.is_some();
    journal.set(
        names::RUN_IN_PROGRESS,
        vec![],
        if in_progress { 1.0 } else { 0.0 },
    );
    Ok(())
}

/// Why `pluvo-sync healthcheck` failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("cannot reach http://{addr}/healthz: {source}")]
    Unreachable {
        addr: SocketAddr,
        #[source]
        source: reqwest::Error,
    },
    #[error("http://{addr}/healthz answered {status}")]
    Unhealthy {
        addr: SocketAddr,
        status: StatusCode,
    },
}

/// Asks the admin listener at `listen` (its `server.listen`) whether the process is up. A
/// wildcard address (`0.0.0.0`, `::`) is reached over loopback, as from inside the container.
pub async fn healthcheck(listen: SocketAddr, timeout: Duration) -> Result<(), HealthcheckError> {
    let addr = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    };
    let unreachable = |source| HealthcheckError::Unreachable { addr, source };
    let response = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(unreachable)?
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(HealthcheckError::Unhealthy { addr, status });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A launcher that takes the real run lease, so the trigger's 409 comes from the database the
    //! way it does in production.

    use super::*;
    use crate::domain::RunStatus;
    use crate::service::scheduler::{BoxFuture, Launched, Launcher};

    #[derive(Debug)]
    pub(crate) struct LeaseLauncher {
        pub(crate) lease: Lease,
    }

    impl Launcher for LeaseLauncher {
        fn launch(
            &self,
            _trigger: Trigger,
            cancel: CancellationToken,
        ) -> BoxFuture<'_, Result<Launched, LaunchError>> {
            Box::pin(async move {
                let run_id = uuid::Uuid::new_v4().to_string();
                let failed = |e: sqlx::Error| LaunchError::Failed(e.into());
                let Some(guard) = self.lease.try_acquire(&run_id).await.map_err(failed)? else {
                    let holder = self.lease.holder().await.map_err(failed)?;
                    return Err(LaunchError::Busy { holder });
                };
                let done = tokio::spawn(async move {
                    cancel.cancelled().await;
                    let _ = guard.release().await;
                    RunStatus::Aborted
                });
                Ok(Launched { run_id, done })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::LeaseLauncher;
    use super::*;
    use crate::clock::{SharedClock, SystemClock};
    use crate::service::lease::testing as db;
    use crate::service::scheduler::testing::FakeLauncher;
    use crate::sync::journal::testing::insert_run;
    use sqlx::SqlitePool;

    const TOKEN: &str = "s3cret-trigger-token";

    struct TestServer {
        base: String,
        pool: SqlitePool,
        metrics: Arc<Metrics>,
        runs: Runs,
        shutdown: CancellationToken,
        _dir: tempfile::TempDir,
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    fn config() -> ServerConfig {
        ServerSettings {
            listen: "127.0.0.1:0".into(),
            trigger_token: Some(SecretString::from(TOKEN)),
            ..ServerSettings::default()
        }
        .resolve()
        .unwrap()
        .unwrap()
    }

    /// Starts the real router on a random port; `launcher` is None for the lease-backed one.
    async fn start(launcher: Option<Arc<FakeLauncher>>) -> TestServer {
        let (dir, pool) = db::fresh().await;
        let clock: SharedClock = Arc::new(SystemClock);
        let lease = Lease::for_runs(pool.clone(), clock.clone());
        let runs = match launcher {
            Some(fake) => Runs::new(fake),
            None => Runs::new(Arc::new(LeaseLauncher {
                lease: lease.clone(),
            })),
        };
        let metrics = Arc::new(Metrics::new());
        crate::metrics::describe_all(&metrics);
        let config = config();
        let listener = bind(config.listen).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let journal = Journal::new(pool.clone(), clock);
        let state = AppState::new(&config, journal, runs.clone(), lease, metrics.clone());
        tokio::spawn(serve(listener, state, shutdown.clone()));
        TestServer {
            base,
            pool,
            metrics,
            runs,
            shutdown,
            _dir: dir,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    #[tokio::test]
    async fn trigger_needs_the_bearer_token() {
        let server = start(Some(Arc::new(FakeLauncher::default()))).await;
        let url = format!("{}/v1/sync", server.base);
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic czNjcmV0"),
            Some(TOKEN),
        ] {
            let mut request = client().post(&url);
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
        let response = client()
            .post(&url)
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "the scheme is case-insensitive");
    }

    #[tokio::test]
    async fn trigger_answers_202_with_the_run_id_then_409_while_it_runs() {
        let server = start(None).await;
        let url = format!("{}/v1/sync", server.base);
        let first = client().post(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(first.status(), 202);
        let body: Value = first.json().await.unwrap();
        let run_id = body["run_id"].as_str().expect("run_id").to_owned();

        let second = client().post(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(second.status(), 409);
        let body: Value = second.json().await.unwrap();
        assert_eq!(body["error"], "a run is in progress");
        assert_eq!(body["holder"]["run_id"], run_id.as_str(), "{body}");
        let owner = body["holder"]["owner"].as_str().unwrap();
        assert!(
            owner.contains(&format!(":{}:", std::process::id())),
            "{owner}"
        );

        // Once the run ends (here: cancelled), a new one may start.
        let report = server.runs.stop(Duration::from_secs(5)).await;
        assert_eq!(report.finished, 1);
        let after = client().post(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(after.status(), 503, "no new runs while shutting down");
    }

    #[tokio::test]
    async fn latest_run_is_404_then_the_newest_row() {
        let server = start(Some(Arc::new(FakeLauncher::default()))).await;
        let url = format!("{}/v1/runs/latest", server.base);
        assert_eq!(client().get(&url).send().await.unwrap().status(), 404);
        insert_run(&server.pool, "r1", "2026-05-01T02:30:00Z", "ok").await;
        insert_run(&server.pool, "r2", "2026-05-02T02:30:00Z", "partial").await;
        sqlx::query(
            "UPDATE runs SET rows_read = 42, plan_summary = '{\"create\":3}' WHERE id = 'r2'",
        )
        .execute(&server.pool)
        .await
        .unwrap();
        let response = client().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "r2");
        assert_eq!(body["status"], "partial");
        assert_eq!(body["trigger"], "schedule");
        assert_eq!(body["rows_read"], 42);
        assert_eq!(body["plan_summary"]["create"], 3);
        assert_eq!(body["error_summary"], Value::Null);
    }

    #[tokio::test]
    async fn latest_run_shows_its_errors_only_with_the_token() {
        let server = start(Some(Arc::new(FakeLauncher::default()))).await;
        let url = format!("{}/v1/runs/latest", server.base);
        insert_run(&server.pool, "r1", "2026-05-01T02:30:00Z", "partial").await;
        sqlx::query(
            "UPDATE runs SET ops_failed = 1, source = 'csv:/data/export.csv',
                 error_summary = 'employee 000123: Pluvo: email lotte.devries@example.com is taken'
             WHERE id = 'r1'",
        )
        .execute(&server.pool)
        .await
        .unwrap();
        // The body of GET `url` with `authorization` (if any) as the header.
        let get = async |authorization: Option<String>| -> Value {
            let mut request = client().get(&url);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            request.send().await.unwrap().json().await.unwrap()
        };
        let without = get(None).await;
        let text = without.to_string();
        assert!(
            !text.contains('@') && !text.contains("000123"),
            "{without:#}"
        );
        assert_eq!(without["error_summary"], Value::Null);
        assert_eq!(without["status"], "partial");
        assert_eq!(without["ops_failed"], 1);
        assert!(without["details"].as_str().unwrap().contains("Bearer"));

        for wrong in ["Bearer nope", "Basic czNjcmV0"] {
            let body = get(Some(wrong.to_owned())).await;
            assert_eq!(body["error_summary"], Value::Null, "{wrong}");
        }
        let with = get(Some(format!("Bearer {TOKEN}"))).await;
        assert!(
            with["error_summary"]
                .as_str()
                .unwrap()
                .contains("lotte.devries@example.com"),
            "{with:#}"
        );
        assert_eq!(with["source"], "csv:/data/export.csv");
    }

    /// The listener with small limits in front of a one-route app; its address.
    async fn limited(limits: Limits, shutdown: &CancellationToken) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        tokio::spawn(serve_with(listener, app, limits, shutdown.clone()));
        addr
    }

    /// A client that sends half a request and then nothing: a slowloris.
    async fn slow_client(addr: SocketAddr) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        stream
    }

    /// Waits up to `within` for the server to close `stream` (EOF or reset); false if it stays
    /// open.
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                // A 408 or similar before the close is fine; keep reading to the close.
                Ok(Ok(_)) => {}
            }
        }
    }

    #[tokio::test]
    async fn slow_clients_are_closed_once_the_header_time_is_up() {
        let shutdown = CancellationToken::new();
        let limits = Limits {
            header_read: Duration::from_millis(300),
            lifetime: Duration::from_secs(60),
            max_connections: 64,
        };
        let addr = limited(limits, &shutdown).await;
        let mut slow = Vec::new();
        for _ in 0..20 {
            slow.push(slow_client(addr).await);
        }
        // An idle kept-alive connection, too: one request, then silence.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut idle, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        slow.push(idle);
        let started = tokio::time::Instant::now();
        for (i, stream) in slow.iter_mut().enumerate() {
            assert!(
                closed_within(stream, Duration::from_secs(3)).await,
                "connection {i} still open after 3 s"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(3));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_at_once_and_service_resumes() {
        let shutdown = CancellationToken::new();
        let limits = Limits {
            header_read: Duration::from_millis(500),
            lifetime: Duration::from_secs(60),
            max_connections: 4,
        };
        let addr = limited(limits, &shutdown).await;
        let mut holding = Vec::new();
        for _ in 0..4 {
            holding.push(slow_client(addr).await);
        }
        // Let the server accept all four before the fifth arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fifth = slow_client(addr).await;
        assert!(
            closed_within(&mut fifth, Duration::from_millis(300)).await,
            "a connection past the cap is closed at once"
        );
        // Once the slow ones are timed out, the listener answers again.
        for stream in &mut holding {
            assert!(closed_within(stream, Duration::from_secs(3)).await);
        }
        let response = client()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn healthz_is_ok_and_the_healthcheck_sees_it() {
        let server = start(Some(Arc::new(FakeLauncher::default()))).await;
        let response = client()
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");

        let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
        healthcheck(addr, Duration::from_secs(2)).await.unwrap();
        // A wildcard listen address is checked over loopback.
        let wildcard = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
        healthcheck(wildcard, Duration::from_secs(2)).await.unwrap();

        server.shutdown.cancel();
        let mut down = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Err(error) = healthcheck(addr, Duration::from_millis(500)).await {
                assert!(
                    error
                        .to_string()
                        .starts_with(&format!("cannot reach http://{addr}/healthz")),
                    "{error}"
                );
                down = true;
                break;
            }
        }
        assert!(down, "the healthcheck must fail once the listener is gone");
    }

    #[tokio::test]
    async fn readyz_fails_only_when_the_whole_window_failed_or_the_database_is_gone() {
        let server = start(Some(Arc::new(FakeLauncher::default()))).await;
        let url = format!("{}/readyz", server.base);
        let get = || async {
            let response = client().get(&url).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        };
        assert_eq!(get().await.0, 200, "no runs yet is ready");

        insert_run(&server.pool, "r1", "2026-05-01T02:30:00Z", "failed").await;
        insert_run(&server.pool, "r2", "2026-05-02T02:30:00Z", "failed").await;
        assert_eq!(
            get().await.0,
            200,
            "two failures are not yet the window of three"
        );
        insert_run(&server.pool, "r3", "2026-05-03T02:30:00Z", "failed").await;
        insert_run(&server.pool, "r4", "2026-05-04T02:30:00Z", "running").await;
        let (status, body) = get().await;
        assert_eq!(status, 503);
        assert_eq!(body["reason"], "the last 3 runs failed");

        insert_run(&server.pool, "r5", "2026-05-05T02:30:00Z", "partial").await;
        assert_eq!(get().await.0, 200);

        server.pool.close().await;
        let (status, body) = get().await;
        assert_eq!(status, 503);
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .starts_with("database unreachable"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn metrics_render_counters_and_journal_gauges_in_prometheus_text() {
        let server = start(None).await;
        server
            .metrics
            .inc(names::RUNS_TOTAL, vec![("status", "ok".into())]);
        server.metrics.add(
            names::OPERATIONS_TOTAL,
            vec![("kind", "create".into()), ("status", "ok".into())],
            3.0,
        );
        server
            .metrics
            .inc(names::PLUVO_REQUESTS_TOTAL, vec![("status", "429".into())]);
        server.metrics.inc(names::PLUVO_RATE_LIMITED_TOTAL, vec![]);
        server
            .metrics
            .add(names::RATE_LIMITER_WAIT_SECONDS_TOTAL, vec![], 1.5);
        server
            .metrics
            .add(names::REJECTED_RECORDS_TOTAL, vec![], 2.0);
        server
            .metrics
            .set(names::RUN_DURATION, vec![("status", "ok".into())], 12.5);
        insert_run(&server.pool, "r1", "2026-05-01T02:30:00Z", "ok").await;
        insert_run(&server.pool, "r2", "2026-05-02T02:30:00Z", "failed").await;
        insert_run(&server.pool, "r3", "2026-05-03T02:30:00Z", "failed").await;
        // A run in progress holds the lease.
        let started = client()
            .post(format!("{}/v1/sync", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202);

        let response = client()
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        for line in [
            "# TYPE pluvo_sync_runs_total counter\n",
            "pluvo_sync_runs_total{status=\"ok\"} 1\n",
            "pluvo_sync_operations_total{kind=\"create\",status=\"ok\"} 3\n",
            "pluvo_requests_total{status=\"429\"} 1\n",
            "pluvo_rate_limited_total 1\n",
            "pluvo_rate_limiter_wait_seconds_total 1.5\n",
            "pluvo_sync_rejected_records_total 2\n",
            "pluvo_sync_run_duration_seconds{status=\"ok\"} 12.5\n",
            "# TYPE pluvo_sync_last_success_timestamp_seconds gauge\n",
            // 2026-05-01T02:30:00Z
            "pluvo_sync_last_success_timestamp_seconds 1777602600\n",
            "pluvo_sync_journal_runs{status=\"failed\"} 2\n",
            "pluvo_sync_journal_runs{status=\"ok\"} 1\n",
            "pluvo_sync_run_in_progress 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect(line);
            value.parse::<f64>().expect(line);
        }
    }

    #[tokio::test]
    async fn a_port_in_use_is_a_typed_bind_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind(addr).await.expect_err("the port is taken");
        assert_eq!(
            error.to_string(),
            format!("cannot listen on {addr}: address in use")
        );
    }

    #[test]
    fn settings_refuse_a_missing_token_and_a_bad_address() {
        let missing = ServerSettings::default().resolve().unwrap_err();
        assert!(
            missing.to_string().starts_with("server.trigger_token: "),
            "{missing}"
        );

        let disabled = ServerSettings {
            enabled: false,
            ..ServerSettings::default()
        };
        assert!(
            disabled.resolve().unwrap().is_none(),
            "no token needed when disabled"
        );

        let bad = ServerSettings {
            listen: "localhost".into(),
            trigger_token: Some(SecretString::from("t")),
            ..ServerSettings::default()
        };
        assert_eq!(
            bad.resolve().unwrap_err().to_string(),
            "server.listen: 'localhost' is not an address like 127.0.0.1:8080"
        );

        let blank = ServerSettings {
            trigger_token: Some(SecretString::from("  ")),
            ..ServerSettings::default()
        };
        assert!(matches!(
            blank.resolve(),
            Err(ServerSettingsError::EmptyToken)
        ));
    }

    #[test]
    fn the_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let settings = ServerSettings {
            trigger_token_file: Some(path.clone()),
            ..ServerSettings::default()
        };
        let config = settings.resolve().unwrap().unwrap();
        assert_eq!(config.trigger_token.expose_secret(), "from-file");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.ready_window, 3);

        let both = ServerSettings {
            trigger_token: Some(SecretString::from("x")),
            ..settings
        };
        assert!(matches!(
            both.resolve(),
            Err(ServerSettingsError::TwoTokens)
        ));

        let gone = ServerSettings {
            trigger_token_file: Some(dir.path().join("nope")),
            ..ServerSettings::default()
        };
        assert!(
            gone.resolve()
                .unwrap_err()
                .to_string()
                .starts_with("server.trigger_token_file: cannot read"),
        );
    }

    #[test]
    fn settings_deserialize_with_defaults_and_redact_the_token() {
        let parsed: ServerSettings =
            serde_json::from_str(r#"{"trigger_token": "abc", "ready_window": 5}"#).unwrap();
        assert!(parsed.enabled);
        assert_eq!(parsed.listen, DEFAULT_LISTEN);
        assert_eq!(parsed.ready_window, 5);
        assert!(!format!("{parsed:?}").contains("abc"));
    }
}
