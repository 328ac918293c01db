//! `pluvo-sync run`: the long-lived process that composes the scheduler and the admin listener.
//!
//! Start-up binds the listener first, so a port in use fails the command (exit 2) before any
//! run starts. Then the scheduler and the listener run side by side, both starting runs through
//! one [`Runs`], until SIGTERM or SIGINT. **Shutdown** goes in this order:
//! 1. stop scheduling: no new fire starts a run, and `POST /v1/sync` answers 503;
//! 2. cancel the runs in flight and wait up to the grace period (`shutdown_grace_secs`, default
//!    10 s) while their requests to Pluvo finish; each run journals itself (`aborted` if the
//!    stop kept work from being done), and the next run does what remained. A run still going
//!    when the grace period ends is journaled `aborted` by the daemon, with the counts of the
//!    operations it journaled, before the process exits;
//! 3. stop the listener, which still answered `/healthz` and `/metrics` during the grace period;
//! 4. return `Ok`, so the process exits 0.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::service::lease::Lease;
use crate::service::schedule::Schedule;
use crate::service::scheduler::{Launcher, Runs, StopReport, run_scheduler};
use crate::service::server::{self, AppState, BindError, ServerConfig};
use crate::sync::journal::Journal;

pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long the listener gets, after the grace period, to answer the requests it is serving.
const LISTENER_DRAIN: Duration = Duration::from_secs(5);

/// Everything `pluvo-sync run` needs, resolved from settings by the CLI.
pub struct Daemon {
    pub schedule: Schedule,
    /// `None` when `server.enabled` is false.
    pub server: Option<ServerConfig>,
    pub shutdown_grace: Duration,
    /// The journal the admin listener reads, and where a run outliving the grace period is
    /// closed.
    pub journal: Journal,
    pub launcher: Arc<dyn Launcher>,
    /// The run lease, read by `/metrics`; runs take it through the launcher.
    pub lease: Lease,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The admin listener could not be bound; a start-up error (exit 2).
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] io::Error),
    #[error("the admin listener failed: {0}")]
    Listener(#[source] io::Error),
}

impl DaemonError {
    /// The process exit code: 2 for refused start-up input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Bind(_) => 2,
            DaemonError::Signals(_) | DaemonError::Listener(_) => 1,
        }
    }
}

/// SIGTERM and SIGINT, registered up front so a signal arriving during start-up is not lost.
pub struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    pub fn register() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first of the two; says which.
    pub async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down gracefully and returns `Ok`.
pub async fn serve(daemon: Daemon) -> Result<(), DaemonError> {
    let signals = ShutdownSignals::register().map_err(DaemonError::Signals)?;
    let started = start(daemon).await?;
    started
        .run_until(async move {
            let which = signals.recv().await;
            tracing::info!(signal = which, "shutdown requested");
        })
        .await?;
    Ok(())
}

/// Binds the listener; nothing runs yet.
pub async fn start(daemon: Daemon) -> Result<Started, BindError> {
    let listener = match &daemon.server {
        Some(config) => Some(server::bind(config.listen).await?),
        None => None,
    };
    Ok(Started { daemon, listener })
}

/// A daemon whose listener is bound.
pub struct Started {
    daemon: Daemon,
    listener: Option<TcpListener>,
}

/// What shutdown saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    pub runs: StopReport,
}

impl Started {
    /// The bound address of the admin listener, if enabled (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Runs the scheduler and the listener until `shutdown` resolves, then shuts down in order.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ShutdownReport, DaemonError> {
        let Started { daemon, listener } = self;
        let runs = Runs::new(daemon.launcher.clone());

        let listener_stop = CancellationToken::new();
        let mut listener_task = listener
            .zip(daemon.server.as_ref())
            .map(|(listener, config)| {
                let state = AppState::new(
                    config,
                    daemon.journal.clone(),
                    runs.clone(),
                    daemon.lease.clone(),
                    daemon.metrics.clone(),
                );
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(%addr, "admin listener ready");
                }
                tokio::spawn(server::serve(listener, state, listener_stop.clone()))
            });

        let scheduling_stop = CancellationToken::new();
        let scheduler = tokio::spawn(run_scheduler(
            daemon.schedule.clone(),
            runs.clone(),
            daemon.clock.clone(),
            scheduling_stop.clone(),
            daemon.metrics.clone(),
        ));

        let listener_failed = async {
            match listener_task.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        let failure = tokio::select! {
            () = shutdown => None,
            ended = listener_failed => Some(match ended {
                Ok(Ok(())) => io::Error::other("the listener stopped unexpectedly"),
                Ok(Err(error)) => error,
                Err(join) => io::Error::other(join.to_string()),
            }),
        };
        if failure.is_some() {
            listener_task = None;
        }

        scheduling_stop.cancel();
        if let Err(error) = scheduler.await {
            tracing::error!(%error, "the scheduler task ended abnormally");
        }
        let report = runs.stop(daemon.shutdown_grace).await;
        if report.timed_out {
            tracing::warn!(
                grace_secs = daemon.shutdown_grace.as_secs_f64(),
                "a run did not finish within the shutdown grace period; its lease expires on its \
                 own and the next run completes what remained"
            );
            // The process exits with the run unfinished: close it in the journal now, or it
            // would read `running` until the next run.
            for run_id in &report.unfinished {
                if let Err(error) = daemon.journal.close_abandoned_run(run_id).await {
                    tracing::error!(%run_id, %error, "cannot record the run as aborted");
                }
            }
        } else {
            tracing::info!(runs_stopped = report.finished, "runs stopped");
        }

        listener_stop.cancel();
        if let Some(task) = listener_task {
            match tokio::time::timeout(LISTENER_DRAIN, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(%error, "admin listener ended with an error"),
                Ok(Err(error)) => tracing::warn!(%error, "admin listener task ended abnormally"),
                Err(_) => tracing::warn!("admin listener did not drain in time"),
            }
        }

        match failure {
            Some(error) => Err(DaemonError::Listener(error)),
            None => {
                tracing::info!("shut down cleanly");
                Ok(ShutdownReport { runs: report })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;
    use std::sync::atomic::Ordering;

    use secrecy::SecretString;

    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::Trigger;
    use crate::service::lease::testing as db;
    use crate::service::schedule::ScheduleSettings;
    use crate::service::scheduler::testing::FakeLauncher;
    use crate::service::server::ServerSettings;

    fn daemon(pool: SqlitePool, launcher: Arc<FakeLauncher>, listen: &str) -> Daemon {
        let clock: SharedClock = Arc::new(SystemClock);
        Daemon {
            schedule: ScheduleSettings {
                // Never within a test: only run_on_start and the trigger start runs.
                cron: "0 0 3 1 1 * 2099".into(),
                time_zone: None,
                run_on_start: true,
            }
            .resolve(clock.now())
            .unwrap(),
            server: ServerSettings {
                listen: listen.into(),
                trigger_token: Some(SecretString::from("token")),
                ..ServerSettings::default()
            }
            .resolve()
            .unwrap(),
            shutdown_grace: Duration::from_secs(5),
            lease: Lease::for_runs(pool.clone(), clock.clone()),
            journal: Journal::new(pool, clock.clone()),
            launcher,
            clock,
            metrics: Arc::new(Metrics::new()),
        }
    }

    async fn wait_for(mut condition: impl FnMut() -> bool) {
        for _ in 0..200 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not met within 2 s");
    }

    #[tokio::test]
    async fn shutdown_stops_scheduling_aborts_the_run_and_closes_the_listener() {
        let (_dir, pool) = db::fresh().await;
        let launcher = Arc::new(FakeLauncher::default());
        launcher.hold_runs.store(true, Ordering::SeqCst);
        let started = start(daemon(pool, launcher.clone(), "127.0.0.1:0"))
            .await
            .unwrap();
        let addr = started.local_addr().expect("listener bound");
        let stop = CancellationToken::new();
        let task = tokio::spawn(started.run_until(stop.clone().cancelled_owned()));

        wait_for(|| launcher.launched() == vec![Trigger::Startup]).await;
        server::healthcheck(addr, Duration::from_secs(2))
            .await
            .unwrap();

        stop.cancel();
        let report = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("shutdown within the grace period")
            .unwrap()
            .expect("a clean shutdown is Ok");
        assert_eq!(report.runs.finished, 1);
        assert!(!report.runs.timed_out);
        assert_eq!(
            launcher.aborted.load(Ordering::SeqCst),
            1,
            "the run was cancelled"
        );
        assert!(
            server::healthcheck(addr, Duration::from_millis(500))
                .await
                .is_err(),
            "the listener is closed"
        );
    }

    #[tokio::test]
    async fn a_port_in_use_fails_start_up_with_exit_code_2() {
        let (_dir, pool) = db::fresh().await;
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let launcher = Arc::new(FakeLauncher::default());
        let Err(error) = start(daemon(pool, launcher.clone(), &addr.to_string())).await else {
            panic!("binding a taken port must fail");
        };
        let error = DaemonError::from(error);
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.to_string(),
            format!("cannot listen on {addr}: address in use")
        );
        assert!(launcher.launched().is_empty(), "nothing ran");
    }

    #[tokio::test]
    async fn sigterm_triggers_a_graceful_shutdown() {
        let (_dir, pool) = db::fresh().await;
        let launcher = Arc::new(FakeLauncher::default());
        launcher.hold_runs.store(true, Ordering::SeqCst);
        // serve() registers the handlers before it starts anything; once a run is in flight the
        // handler is certainly installed, so the signal cannot take the test process down.
        let task = tokio::spawn(serve(daemon(pool, launcher.clone(), "127.0.0.1:0")));
        wait_for(|| !launcher.launched().is_empty()).await;
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("shutdown after SIGTERM")
            .unwrap()
            .expect("exit 0");
        assert_eq!(launcher.aborted.load(Ordering::SeqCst), 1);
    }

    /// The image is built and run for real by `scripts/container-smoke.sh` (too slow for the
    /// suite); these check what can drift from the code in the meantime: the binary and package
    /// the Dockerfile and compose.yaml name, the paths they copy and use, the stop timeout
    /// against the grace period, and that the dependency-layer stubs satisfy cargo for the
    /// manifests as they are now, without network or a filled cargo cache.
    mod container {
        use std::collections::{BTreeMap, BTreeSet};
        use std::path::Path;

        use super::*;

        const ROOT: &str = env!("CARGO_MANIFEST_DIR");

        fn read(name: &str) -> String {
            std::fs::read_to_string(Path::new(ROOT).join(name)).unwrap()
        }

        #[test]
        fn the_dockerfile_builds_and_runs_this_binary_with_its_paths() {
            let dockerfile = read("Dockerfile");
            let binary = env!("CARGO_PKG_NAME");
            for expected in [
                format!("cargo build --release --locked --package {binary}"),
                format!("target/release/{binary} /out/{binary}"),
                format!(r#"ENTRYPOINT ["{binary}"]"#),
                r#"CMD ["run"]"#.to_owned(),
                format!(r#"CMD ["{binary}", "healthcheck"]"#),
                "ENV PLUVO_SYNC_CONFIG=/config/pluvo-sync.toml".to_owned(),
                "USER 10001:10001".to_owned(),
                r#"VOLUME ["/data"]"#.to_owned(),
                format!(
                    "EXPOSE {}",
                    crate::service::server::DEFAULT_LISTEN
                        .rsplit_once(':')
                        .unwrap()
                        .1
                ),
            ] {
                assert!(
                    dockerfile.contains(&expected),
                    "Dockerfile lacks {expected:?}"
                );
            }
            for line in dockerfile
                .lines()
                .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
            {
                let parts: Vec<&str> = line.split_whitespace().collect();
                for source in &parts[1..parts.len() - 1] {
                    assert!(
                        Path::new(ROOT).join(source).exists(),
                        "Dockerfile copies missing {source}"
                    );
                }
            }
        }

        #[test]
        fn compose_gives_the_daemon_longer_than_its_grace_period_to_stop() {
            let compose = read("compose.yaml");
            let stop = compose
                .lines()
                .find_map(|l| l.trim().strip_prefix("stop_grace_period: "))
                .expect("compose.yaml sets stop_grace_period");
            let secs: u64 = stop.trim_end_matches('s').parse().unwrap();
            assert!(Duration::from_secs(secs) > DEFAULT_SHUTDOWN_GRACE + LISTENER_DRAIN);
            assert!(compose.contains("target: runtime") && compose.contains("target: sim"));
            let dockerfile = read("Dockerfile");
            assert!(dockerfile.contains(" AS runtime") && dockerfile.contains(" AS sim"));
        }

        /// The targets cargo reports for the workspace at `dir`, as `package kind name`, each
        /// with whether its manifest names it in a `[[kind]]` table (rather than cargo
        /// discovering it). Metadata without dependencies needs no network and no downloaded
        /// crates, so this works on a fresh machine with an empty cargo home.
        fn targets(dir: &Path) -> BTreeMap<String, bool> {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = std::process::Command::new(cargo)
                .args([
                    "metadata",
                    "--no-deps",
                    "--offline",
                    "--format-version",
                    "1",
                ])
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "cargo refuses the workspace at {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut targets = BTreeMap::new();
            for package in metadata["packages"].as_array().unwrap() {
                let manifest =
                    std::fs::read_to_string(package["manifest_path"].as_str().unwrap()).unwrap();
                for target in package["targets"].as_array().unwrap() {
                    for kind in target["kind"].as_array().unwrap() {
                        let kind = kind.as_str().unwrap();
                        targets.insert(
                            format!(
                                "{} {kind} {}",
                                package["name"].as_str().unwrap(),
                                target["name"].as_str().unwrap()
                            ),
                            manifest.contains(&format!("[[{kind}]]")),
                        );
                    }
                }
            }
            targets
        }

        #[test]
        fn the_dependency_layer_stubs_satisfy_cargo() {
            let dockerfile = read("Dockerfile");
            assert!(
                dockerfile.contains("COPY scripts/stub-workspace.sh ")
                    && dockerfile.contains("RUN stub-workspace ."),
                "the Dockerfile stubs the workspace with scripts/stub-workspace.sh"
            );
            assert!(
                !dockerfile.contains("<<"),
                "no heredocs: podman/buildah before 1.35 cannot build them"
            );
            let dir = tempfile::tempdir().unwrap();
            // Exactly what the Dockerfile copies before the stubs.
            for file in [
                "Cargo.toml",
                "Cargo.lock",
                "build.rs",
                "pluvo-sim/Cargo.toml",
            ] {
                let to = dir.path().join(file);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(Path::new(ROOT).join(file), to).unwrap();
            }
            let stubbed = std::process::Command::new("sh")
                .arg(Path::new(ROOT).join("scripts/stub-workspace.sh"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(stubbed.success());
            // Cargo's metadata silently leaves out a named target whose file is missing (a build
            // then fails on it), so compare target lists: every library, binary, bench, example
            // and build script of the real workspace must exist in the stubbed one. Test targets
            // under tests/ are discovered, not named, and cargo does not miss them when absent.
            let stubbed = targets(dir.path());
            let missing: Vec<String> = targets(Path::new(ROOT))
                .into_iter()
                .filter(|(t, named)| (*named || !t.contains(" test ")) && !stubbed.contains_key(t))
                .map(|(t, _)| t)
                .collect();
            assert!(
                missing.is_empty(),
                "the stubbed workspace lacks targets cargo needs: {missing:?}"
            );
        }

        #[test]
        fn try_it_builds_every_binary_it_runs() {
            let script = read("scripts/try-it.sh");
            let build = script
                .lines()
                .find(|l| l.starts_with("cargo build"))
                .expect("try-it.sh builds the binaries");
            let run: BTreeSet<&str> = script
                .split("\"$bin/")
                .skip(1)
                .filter_map(|rest| rest.split_once('"').map(|(name, _)| name))
                .collect();
            assert!(run.contains("pluvo-sim") && run.contains(env!("CARGO_PKG_NAME")));
            for binary in run {
                // On a fresh clone no binary is left over from an earlier build.
                assert!(
                    build.contains(" --workspace")
                        || build.contains(&format!(" -p {binary}"))
                        || build.contains(&format!(" --package {binary}")),
                    "try-it.sh runs {binary} but `{build}` does not build it"
                );
            }
        }
    }
}
