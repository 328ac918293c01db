//! The integration tests: one binary, one module per area.

mod batching;
mod check;
mod cli;
mod cli_safety;
mod cut_off;
mod error_styles;
mod golden;
mod held_people;
mod helpers;
mod learning_client;
mod lease_loss;
mod lifecycle;
mod pluvo_client;
mod rate_limit_in_body;
mod request_goal;
mod run_report;
mod run_status;
mod service;
mod sync_e2e;
mod tenant;
mod training_rules;
