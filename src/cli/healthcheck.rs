//! `pluvo-sync healthcheck`: asks the local admin listener's `/healthz`, for the container's
//! HEALTHCHECK (the image has no curl). Reads only `server.listen`, so a missing secret cannot
//! make a healthy container look sick.

use std::time::Duration;

use super::{Cli, Exit};
use crate::service::server;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

pub async fn run(cli: &Cli, args: &Args) -> Exit {
    let listen = crate::settings::load(Some(&cli.config), None)
        .map(|raw| raw.server.listen)
        .unwrap_or_else(|_| server::DEFAULT_LISTEN.to_owned());
    let addr = match server::parse_listen(&listen) {
        Ok(addr) => addr,
        Err(error) => {
            errln!("error: {error}");
            return Exit::Usage;
        }
    };
    match server::healthcheck(addr, Duration::from_secs(args.timeout)).await {
        Ok(()) => Exit::Ok,
        Err(error) => {
            errln!("unhealthy: {error}");
            Exit::Failed
        }
    }
}
