//! The `pluvo-sync` binary: parse the command line, install logging, run one command, and turn
//! its outcome into an exit code. Everything else lives in the library.

use clap::Parser;
use mimalloc::MiMalloc;
use pluvo_sync::cli::{self, Cli};
use pluvo_sync::settings::LogSettings;

/// glibc's malloc keeps an arena per thread (the runtime's workers, SQLite's) and returns little of
/// it; mimalloc was measured against it with `cargo bench --bench whole_command` (README).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() {
    let cli = Cli::parse();
    // Logging comes up before the configuration is resolved so that configuration problems are
    // logged too; a log format in the file applies when no flag is given.
    let file_log = pluvo_sync::settings::load(Some(&cli.config), None)
        .map(|raw| raw.log)
        .unwrap_or_else(|_| LogSettings::default());
    pluvo_sync::telemetry::init(cli.log_format.unwrap_or(file_log.format), &file_log.level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::exit(cli::Exit::Failed as i32);
        }
    };
    let exit = runtime.block_on(cli::run(cli));
    // The command's work is done and its output written (`outln!` flushes every line; the
    // journal is committed). Exit now instead of returning: returning would first tear down the
    // runtime and free whatever the command still holds, which for 100k people is a tenth of a
    // second of work nobody waits for.
    std::process::exit(exit as i32);
}
