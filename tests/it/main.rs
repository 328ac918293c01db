//! The integration tests: one binary, one module per area.

mod helpers;
mod lifecycle;
mod pluvo_client;
mod sync_e2e;
