//! The `pluvo-sync` binary: parse the command line, install logging, run one command, and turn
//! its outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use pluvo_sync::cli::{self, Cli};
use pluvo_sync::settings::LogSettings;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logging comes up before the configuration is resolved so that configuration problems are
    // logged too; a log format in the file applies when no flag is given.
    let file_log = pluvo_sync::settings::load(Some(&cli.config), None)
        .map(|raw| raw.log)
        .unwrap_or_else(|_| LogSettings::default());
    pluvo_sync::telemetry::init(cli.log_format.unwrap_or(file_log.format), &file_log.level);
    cli::run(cli).await.into()
}
