//! The integration tests: one binary, one module per area.

mod check;
mod cli;
mod helpers;
mod lifecycle;
mod pluvo_client;
mod service;
mod sync_e2e;
