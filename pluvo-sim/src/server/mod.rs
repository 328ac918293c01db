//! The HTTP face of the simulator: shared server state, the routes, and the running handle.
//!
//! An API request goes through, in order: latency, authentication, rate limit, injected faults,
//! body checks, GraphQL. Each stage can answer on its own, and none of the answers before
//! execution touch the tenant, so a client can safely retry them.
//!
//! This file holds what every endpoint shares ([`Shared`]), the router and [`start`]/[`SimHandle`].
//! The rooms by job: `api` (the GraphQL pipeline), `token` (OAuth), `admin` (`/_sim/*`) and
//! `connection` (our own accept loop, so a "reset" fault can drop a connection mid-request, plus
//! per-request bookkeeping and response helpers).

mod admin;
mod api;
mod connection;
mod token;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use apollo_compiler::Schema;
use apollo_compiler::validation::Valid;
use axum::Router;
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{RateLimiter, Tokens};
use crate::config::{Faults, SimConfig};
use crate::faults::FaultRng;
use crate::graphql::{self, DocCache};
use crate::seed::{Seed, SeedError, SeedUser};
use crate::state::State;
use crate::stats::Stats;
use crate::view::StateView;

use admin::{
    admin_certificates, admin_enrollments, admin_expire_tokens, admin_faults, admin_last_login,
    admin_progress, admin_reset, admin_state, admin_stats, admin_users, loopback_only, not_found,
};
use api::{add_slash, graphql_endpoint};
use connection::accept_loop;
use token::token_endpoint;

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
                .route("/_sim/progress", post(admin_progress))
                .route("/_sim/certificates", post(admin_certificates))
                .route("/_sim/last-login", post(admin_last_login))
                .route("/_sim/enrollments", post(admin_enrollments))
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
