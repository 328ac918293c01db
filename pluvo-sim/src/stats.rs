//! Counters a test uses to assert *how* a client talked to the API (how many requests, which
//! fields, how many invitations), not just what it wrote. Admin endpoints are not counted, so a
//! test reading stats does not disturb them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Every HTTP request to `/graphql/` and `/oauth/token/` (and their slash-less forms).
    pub requests_total: u64,
    /// Responses by HTTP status; dropped connections have no status and appear in `faults`.
    pub requests_by_status: BTreeMap<u16, u64>,
    /// Root query and mutation fields executed, by field name (not alias).
    pub fields: BTreeMap<String, u64>,
    /// Requests to the token endpoint.
    pub token_requests: u64,
    /// 429 responses sent.
    pub rate_limited: u64,
    /// Users created with `sendInvite` true or omitted.
    pub invitations: u64,
    /// People added to a training by `addUsersToTraining` with `sendInvites` true or omitted
    /// (Pluvo's default): each would have received an invitation. A sync keeps this at 0.
    #[serde(default)]
    pub training_invitations: u64,
    /// Enrollments created (or revived) by `createOfferEventEnrollments` with `sendMail` true or
    /// omitted (Pluvo's default): each would have sent a mail. A sync keeps this at 0.
    #[serde(default)]
    pub enrollment_mails: u64,
    /// Most API requests being handled at the same time.
    pub max_in_flight: u64,
    /// Injected faults by kind: `5xx`, `reset`, `slow`, `after_commit`.
    pub faults: BTreeMap<String, u64>,
    /// GraphQL request bodies that reached parsing (past auth, rate limit and faults).
    pub graphql_documents: u64,
    /// Documents refused for having more root fields than `--max-root-fields`.
    #[serde(default)]
    pub too_big: u64,
}
