//! Knobs of one simulator instance.
//!
//! [`SimConfig`] is what a test or the CLI starts the simulator with; [`Faults`] is the subset
//! that can be changed while it runs (`SimHandle::set_faults`, `POST /_sim/faults`), so a test
//! can, say, turn on 5xx answers halfway through a sync without restarting the server and
//! losing its state.

use serde::{Deserialize, Serialize};

use crate::seed::Seed;
use crate::style::ErrorStyle;

/// How an expired or unknown token is answered on `/graphql/`.
///
/// Pluvo's docs say both forms occur, so a client must handle each; `Mixed` alternates between
/// them (driven by the seeded fault RNG) to prove it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthErrorMode {
    /// HTTP 401 with a JSON `errors` body.
    #[default]
    Http401,
    /// HTTP 200 with `errors[0].extensions.code == "AuthenticationError"` and no `data`.
    Graphql,
    /// Either of the above, chosen per request by the seeded RNG.
    Mixed,
}

/// How `addUsersToTraining` / `removeUsersFromTraining` name people in their result lists.
///
/// The contract says results come "in both Ids and Refs forms" but not whether each person
/// shows in the form they were named in or in both, so a client must work with either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ResultForms {
    /// Each person in the list of the form they were named in (`addedRefs` for a ref).
    #[default]
    Given,
    /// Each known person in both lists: their id in `addedIds`, their ref (if any) in
    /// `addedRefs`. People who failed stay in the form they were named in.
    Both,
}

/// Everything needed to start a simulator: what is fixed for its lifetime, and the [`Faults`]
/// it starts with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The only OAuth client the token endpoint accepts.
    pub client_id: String,
    pub client_secret: String,
    /// Seed of the fault RNG: the same seed and request order give the same faults.
    pub fault_seed: u64,
    /// Serve `/_sim/*` to peers other than loopback. Off by default: the admin API has no auth
    /// and can rewrite the tenant. A container needs it, as published ports arrive from the
    /// bridge network; publish the port on the host's loopback only.
    pub allow_remote_admin: bool,
    pub seed: Seed,
    /// Rate limit, latency, token lifetime, auth-error style, fault probabilities and membership
    /// delay at start; changeable later through `SimHandle::set_faults` or `POST /_sim/faults`.
    pub faults: Faults,
    /// The SDL this tenant serves, validates against and answers introspection with, when it
    /// is not `schema/pluvo.graphql`: a tenant on another version of Pluvo's API, for testing
    /// what the client makes of a schema that differs from the one it was built against.
    pub schema_sdl: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::with_faults(Faults::default())
    }
}

impl SimConfig {
    /// The default client and an empty tenant, with these knobs.
    pub fn with_faults(faults: Faults) -> Self {
        Self {
            client_id: "pluvo-sync".to_owned(),
            client_secret: "sim-secret".to_owned(),
            fault_seed: 0,
            allow_remote_admin: false,
            seed: Seed::default(),
            faults,
            schema_sdl: None,
        }
    }

    /// The knobs the simulator starts with.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }
}

/// Knobs that can change while the simulator runs. The doc comments double as the CLI help of
/// the same-named flags.
///
/// `POST /_sim/faults` takes a JSON object with any subset of these fields and changes only
/// those; [`crate::SimHandle::set_faults`] replaces all of them (read the current ones with
/// [`crate::SimHandle::faults`] first to change one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Requests per second per client on /graphql/ (0 = unlimited).
    #[arg(long, default_value_t = Faults::default().rate)]
    pub rate: f64,
    /// Rate-limit burst (token-bucket capacity).
    #[arg(long, default_value_t = Faults::default().burst)]
    pub burst: u32,
    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = Faults::default().latency_ms)]
    pub latency_ms: u64,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = Faults::default().token_ttl)]
    pub token_ttl: u64,
    /// How an invalid or expired token is answered.
    #[arg(long, value_enum, default_value_t = Faults::default().auth_error)]
    pub auth_error: AuthErrorMode,
    /// How errors are worded: this simulator's codes, Django/graphene's or Apollo's.
    #[arg(long, value_enum, default_value_t = Faults::default().error_style)]
    #[serde(default)]
    pub error_style: ErrorStyle,
    /// How bulk training results name people: as they were named, or by id and ref both.
    #[arg(long, value_enum, default_value_t = Faults::default().result_forms)]
    #[serde(default)]
    pub result_forms: ResultForms,
    /// Probability of a 500/502/503 answer before execution.
    #[arg(long, default_value_t = Faults::default().fault_5xx)]
    pub fault_5xx: f64,
    /// Probability of dropping the connection before execution.
    #[arg(long, default_value_t = Faults::default().fault_reset)]
    pub fault_reset: f64,
    /// Probability of dropping the connection after a mutation was committed.
    #[arg(long, default_value_t = Faults::default().fault_after_commit)]
    pub fault_after_commit: f64,
    /// Probability of a slow answer (see --slow-ms).
    #[arg(long, default_value_t = Faults::default().fault_slow)]
    pub fault_slow: f64,
    /// Delay of a slow answer, in milliseconds.
    #[arg(long, default_value_t = Faults::default().slow_ms)]
    pub slow_ms: u64,
    /// Seconds before a membership change shows in group and user queries.
    #[arg(long, default_value_t = Faults::default().membership_delay)]
    pub membership_delay: u64,
    /// Refuse documents with more than this many root fields, as a server with a query
    /// complexity limit does (0 = no limit). Nothing in a refused document runs.
    #[arg(long, default_value_t = Faults::default().max_root_fields)]
    #[serde(default)]
    pub max_root_fields: usize,
    /// Refuse such documents with HTTP 413 and a plain body, as a proxy in front of the API
    /// would, instead of a GraphQL error.
    #[arg(long, default_value_t = Faults::default().too_big_413)]
    #[serde(default)]
    pub too_big_413: bool,
    /// Refuse requests over `--rate` with HTTP 200 and a GraphQL error (`RATE_LIMITED`, "Too
    /// many requests") instead of a 429, as some servers and gateways do.
    #[arg(long, default_value_t = Faults::default().rate_limit_in_body)]
    #[serde(default)]
    pub rate_limit_in_body: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rate: 0.0,
            burst: 10,
            latency_ms: 0,
            token_ttl: 86_400,
            auth_error: AuthErrorMode::Http401,
            error_style: ErrorStyle::Sim,
            result_forms: ResultForms::Given,
            fault_5xx: 0.0,
            fault_reset: 0.0,
            fault_after_commit: 0.0,
            fault_slow: 0.0,
            slow_ms: 2_000,
            membership_delay: 0,
            max_root_fields: 0,
            too_big_413: false,
            rate_limit_in_body: false,
        }
    }
}

impl Faults {
    /// Applies a partial JSON patch (the body of `POST /_sim/faults`).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Self, serde_json::Error> {
        let mut current = serde_json::to_value(self)?;
        if let (Some(current), Some(patch)) = (current.as_object_mut(), patch.as_object()) {
            for (key, value) in patch {
                current.insert(key.clone(), value.clone());
            }
        } else if !patch.is_object() {
            return Err(serde::de::Error::custom(
                "faults patch must be a JSON object",
            ));
        }
        serde_json::from_value(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_changes_only_named_knobs_and_rejects_unknown_ones() {
        let base = Faults::default();
        let cases: &[(&str, serde_json::Value, Option<Faults>)] = &[
            (
                "one knob",
                serde_json::json!({"fault_5xx": 0.5}),
                Some(Faults {
                    fault_5xx: 0.5,
                    ..Faults::default()
                }),
            ),
            (
                "enum knob",
                serde_json::json!({"auth_error": "mixed", "rate": 2.0}),
                Some(Faults {
                    auth_error: AuthErrorMode::Mixed,
                    rate: 2.0,
                    ..Faults::default()
                }),
            ),
            ("unknown knob", serde_json::json!({"fault_typo": 1}), None),
            ("wrong type", serde_json::json!({"burst": "many"}), None),
            ("not an object", serde_json::json!([1]), None),
        ];
        for (name, patch, expected) in cases {
            let got = base.patched(patch).ok();
            assert_eq!(&got, expected, "case {name}");
        }
    }
}
