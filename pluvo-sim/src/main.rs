//! `pluvo-sim`: run the Pluvo stand-in as a process (for manual runs and end-to-end tests).
//!
//! Prints `listening on http://127.0.0.1:<port>` as its first stdout line, so a parent process
//! that asked for port 0 can find it; logs go to stderr. SIGTERM and SIGINT stop it gracefully
//! (exit 0).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use pluvo_sim::{Faults, Seed, SimConfig};

/// A strict, stateful local stand-in for Pluvo's GraphQL API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed file (TOML) with groups, extra categories and existing users; empty tenant if absent.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// OAuth client id the token endpoint accepts.
    #[arg(long, default_value = "pluvo-sync")]
    client_id: String,
    /// OAuth client secret the token endpoint accepts.
    #[arg(long, default_value = "sim-secret")]
    client_secret: String,
    /// Seed of the fault RNG (same seed and request order, same faults).
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Serve the unauthenticated admin API (/_sim/*) to non-loopback peers too (containers).
    #[arg(long)]
    allow_remote_admin: bool,
    /// Serve this SDL instead of schema/pluvo.graphql: a tenant on another version of the API,
    /// e.g. to see what `pluvo-sync check --schema` reports for it.
    #[arg(long)]
    schema: Option<PathBuf>,
    #[command(flatten)]
    knobs: Faults,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<(SocketAddr, SimConfig)> {
        let seed = match &self.seed {
            Some(path) => Seed::from_file(path)
                .with_context(|| format!("while loading seed {}", path.display()))?,
            None => Seed::default(),
        };
        let schema_sdl = match &self.schema {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("while reading the schema {}", path.display()))?,
            ),
            None => None,
        };
        let config = SimConfig {
            schema_sdl,
            client_id: self.client_id,
            client_secret: self.client_secret,
            fault_seed: self.fault_seed,
            allow_remote_admin: self.allow_remote_admin,
            seed,
            ..SimConfig::with_faults(self.knobs)
        };
        Ok((self.listen, config))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let (listen, config) = Cli::parse().into_config()?;
    let sim = pluvo_sim::start(listen, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", sim.base_url())?;
    stdout.flush()?;
    drop(stdout);
    stop_requested().await?;
    sim.shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (`docker stop`, Kubernetes). As PID 1 in a container the kernel
/// applies no default action to SIGTERM, so without a handler the container ignored its stop
/// and was killed after the timeout.
async fn stop_requested() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).context("while installing the SIGTERM handler")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("while waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}
