//! pluvo-sim: a strict, stateful local stand-in for Pluvo's GraphQL API.
//!
//! Pluvo has no sandbox, so the sync is developed and tested against this. It serves the same
//! endpoints (`/oauth/token/`, `/graphql/`), validates every document against the vendored
//! `schema/pluvo.graphql`, enforces the rules of CONTRACT.md (unique refs and emails, typed
//! extra categories, admin-made groups and trainings, idempotent enrolment), and can misbehave
//! on purpose: rate limits, expired tokens, 5xx answers, dropped connections, and memberships
//! that show up late. Admin endpoints under `/_sim/` let tests read and steer it.
//!
//! Modules: [`config`] (knobs), [`seed`] (starting tenant), `state` (data and rules, one room
//! per area: users, groups, categories, trainings, offer events, reports), `graphql` (schema,
//! documents, resolvers, one room per area), `auth` (tokens, rate limit), `faults`, [`view`]
//! and [`stats`] (what tests read), `server` (HTTP: `api`, `token`, `admin`, `connection`).

mod auth;
pub mod config;
mod faults;
mod graphql;
pub mod seed;
mod server;
mod state;
pub mod stats;
pub mod style;
pub mod view;

pub use config::{AuthErrorMode, Faults, ResultForms, SimConfig};
pub use graphql::SDL;
pub use seed::{
    CategoryType, Seed, SeedCategory, SeedCertificate, SeedError, SeedGroup, SeedOfferEvent,
    SeedProgress, SeedTraining, SeedUser, SetEnrollmentStatus, SetLastLogin,
};
pub use server::{AUTH_ERROR_CODE, MAX_BODY, SimHandle, start};
pub use stats::Stats;
pub use style::ErrorStyle;
pub use view::{EnrollmentView, OfferEventView, StateView, TrainingView, UserView};
