//! The integration tests: one binary, one module per area.

mod cli;
mod cut_off;
mod held_people;
mod helpers;
mod lifecycle;
mod pluvo_client;
mod run_report;
mod service;
mod sync_e2e;
