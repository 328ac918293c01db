//! The Pluvo API client: everything pluvo-sync says to Pluvo goes through [`PluvoClient`].
//!
//! Words: a *document* is one GraphQL request; a *batch* is a document holding several aliased
//! mutations (`u0: updateOrCreateUser(…)`, `u1: …`), each judged on its own by the `path` of its
//! errors; an *attempt* is one HTTP request. The rooms:
//!
//! - `settings`: the `[pluvo]` table and its resolution into checked values;
//! - `auth`: the cached OAuth client-credentials token, renewed before expiry or when refused;
//! - `pacing`: the rate limiter, in-flight bound, shared pause after a 429, and retry backoff;
//! - `operations`: the typed queries and mutations, checked against `schema/pluvo.graphql` by cynic;
//! - `batch` and `documents`: the aliased documents cynic cannot express (a batch of people's
//!   upserts each followed by their custom fields, memberships of several groups), and their
//!   per-alias results;
//! - `client`: the API's calls, each building its document and judging Pluvo's answer;
//! - `transport`: the one `execute` path (HTTP status and `errors` into [`PluvoError`]): pacing,
//!   retries and token renewal around every request;
//! - `sizing`: how many items go in one document: the adaptive batch size, and the membership cap;
//! - `trainings`: training membership per role, offer-event enrolments and their reads;
//! - `types`: what callers send and get back, in domain words;
//! - `introspection`: a tenant's schema, read by introspection, against what the client uses.
//!
//! Pluvo's behaviour around the schema is in CONTRACT.md: trailing slashes, async membership,
//! `sendInvite: false` on every upsert, errors per field.

mod auth;
mod batch;
mod client;
mod documents;
pub mod error;
pub mod introspection;
pub mod operations;
mod pacing;
pub mod settings;
mod sizing;
mod trainings;
mod transport;
mod types;

pub use client::{PluvoClient, SendFence};
pub use error::PluvoError;
pub use settings::{PluvoSettings, ResolvedPluvo};
pub use sizing::REFS_PER_MEMBERSHIP_FIELD;
pub use trainings::{
    EnrolmentStatus, Enrolments, RemoteOfferEvent, RemoteTraining, TrainingChange, TrainingOutcome,
    TrainingVerdict,
};
pub use types::{
    Batch, CategoryUpdate, Membership, MembershipChange, PersonWrite, PersonWritten,
    RemoteCategory, RemoteGroup, RemoteUser, Selector, UpsertedUser, UserFields, UserUpsert,
};

/// The vendored SDL (`schema/pluvo.graphql`), registered by `build.rs`; cynic's derives in
/// [`operations`] resolve against it.
#[cynic::schema("pluvo")]
pub mod schema {}

cynic::impl_scalar!(uuid::Uuid, schema::UUID);
cynic::impl_scalar!(chrono::DateTime<chrono::Utc>, schema::DateTime);
