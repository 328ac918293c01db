//! The integration tests: one binary, one module per area.

mod cli;
mod error_styles;
mod helpers;
mod lifecycle;
mod pluvo_client;
mod run_status;
mod service;
mod sync_e2e;
