//! The command line: one file per subcommand. Doc comments here are the `--help` text.

#[macro_use]
pub mod output;

pub mod check;
pub mod healthcheck;
pub mod journal;
pub mod plan;
pub mod run;
pub mod sync;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::pluvo::PluvoClient;
use crate::settings::{self, LogFormat, Settings};
use crate::sync::engine::Engine;
use crate::sync::journal::Journal;

/// Keeps Pluvo's users, custom fields and group memberships in step with your HR system.
///
/// Typical use: `pluvo-sync check`, then `pluvo-sync plan` to see what would change, then
/// `pluvo-sync sync` to apply it. In production, `pluvo-sync run` syncs on a schedule.
///
/// Exit codes: 0 ok · 1 the run failed · 2 usage or configuration error · 3 partial (some
/// people failed or were rejected, or archives were withheld) · 4 another run holds the lease.
#[derive(Debug, Parser)]
#[command(name = "pluvo-sync", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// The TOML configuration file. Environment variables PLUVO_SYNC__SECTION__KEY override it.
    #[arg(
        long,
        short,
        global = true,
        env = "PLUVO_SYNC_CONFIG",
        default_value = "config/pluvo-sync.toml"
    )]
    pub config: PathBuf,

    /// Log format; `auto` is human-readable on a terminal and JSON otherwise.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the source, plan, and apply the changes to Pluvo (one run).
    Sync(sync::Args),
    /// Show what `sync` would change, without sending anything to Pluvo.
    Plan(plan::Args),
    /// Read the audit journal: runs, one run's operations, one person's history.
    #[command(subcommand)]
    Journal(journal::Command),
    /// Check the configuration, the source, the Pluvo credentials, and that every group and
    /// custom field the mapping can produce exists in Pluvo. Reports every problem at once.
    /// With --schema, also compares the tenant's schema with the one pluvo-sync is built for.
    Check(check::Args),
    /// Run as a service: sync on the `[schedule]`, serve the admin listener (`[server]`), stop
    /// gracefully on SIGTERM/SIGINT.
    Run(run::Args),
    /// Exit 0 when the local service answers /healthz (for container health checks).
    Healthcheck(healthcheck::Args),
}

/// What a command's outcome means to the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    Usage = 2,
    Partial = 3,
    Busy = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// The parts of the program every command may need, built from settings once.
pub struct Context {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
}

impl Context {
    /// Loads and resolves the configuration; on failure prints every problem and gives exit 2.
    pub fn load(cli: &Cli) -> Result<Self, Exit> {
        let pinnable = matches!(cli.command, Command::Plan(_));
        let clock: SharedClock = crate::clock::from_environment(pinnable).map_err(|error| {
            errln!("error: {error}");
            Exit::Usage
        })?;
        let raw = settings::load(Some(&cli.config), None).map_err(report_config_error)?;
        let settings = raw.resolve_at(clock.now()).map_err(report_config_error)?;
        Ok(Self {
            settings: Arc::new(settings),
            clock,
            metrics: Arc::new(Metrics::new()),
        })
    }

    pub async fn journal(&self) -> Result<Journal, Exit> {
        let pool = crate::db::open(&self.settings.database)
            .await
            .map_err(|error| {
                errln!(
                    "error: cannot open the database {}: {error}",
                    self.settings.database.display()
                );
                Exit::Failed
            })?;
        Ok(Journal::new(pool, self.clock.clone()))
    }

    pub async fn engine(&self) -> Result<Engine, Exit> {
        let journal = self.journal().await?;
        let client = PluvoClient::new(self.settings.pluvo.clone(), self.metrics.clone()).map_err(
            |error| {
                errln!("error: {error}");
                Exit::Usage
            },
        )?;
        Ok(Engine::new(
            self.settings.clone(),
            journal,
            client,
            self.metrics.clone(),
            self.clock.clone(),
        ))
    }
}

/// Loads the configuration and builds the engine: what `plan`, `sync`, `check` and `run` start
/// with.
pub async fn load_engine(cli: &Cli) -> Result<(Context, Engine), Exit> {
    let context = Context::load(cli)?;
    let engine = context.engine().await?;
    Ok((context, engine))
}

/// `sync` and `run` refuse a config with `[[assign]]`/`[[enrol]]` rules: this version plans and
/// checks them but does not apply them yet, and a rule accepted then silently ignored would
/// leave an administrator believing people were assigned training they were never given.
pub fn refuse_unapplied_rules(settings: &Settings) -> Result<(), Exit> {
    let rules = &settings.rules;
    if rules.is_empty() {
        return Ok(());
    }
    errln!(
        "error: assign/enrol: this configuration has {} training rule(s) ({}); this version of \
         pluvo-sync can show them (`pluvo-sync plan`) and check them (`pluvo-sync check`) but \
         does not apply them yet; remove the [[assign]] and [[enrol]] sections to sync",
        rules.assign.len() + rules.enrol.len(),
        rules
            .assign
            .iter()
            .map(|r| r.name.as_str())
            .chain(rules.enrol.iter().map(|r| r.name.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Err(Exit::Usage)
}

fn report_config_error(error: settings::SettingsError) -> Exit {
    errln!("error: {error}");
    Exit::Usage
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Exit {
    match &cli.command {
        Command::Sync(args) => sync::run(&cli, args).await,
        Command::Plan(args) => plan::run(&cli, args).await,
        Command::Journal(command) => journal::run(&cli, command).await,
        Command::Check(args) => check::run(&cli, args).await,
        Command::Run(args) => run::run(&cli, args).await,
        Command::Healthcheck(args) => healthcheck::run(&cli, args).await,
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Exit {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            outln!("{text}");
            Exit::Ok
        }
        Err(error) => {
            errln!("error: cannot format JSON: {error}");
            Exit::Failed
        }
    }
}
