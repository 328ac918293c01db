//! [`PluvoError`]: everything that can go wrong talking to Pluvo, as one type.
//!
//! Callers branch on two questions: may the same request succeed later ([`PluvoError::is_retryable`]),
//! and did Pluvo reject one item for a reason it named ([`PluvoError::code`], e.g. `EMAIL_TAKEN`).
//! Each message ends with what the operator can do about it.

use std::time::Duration;

use cynic::{GraphQlError, GraphQlErrorPathSegment};

/// A GraphQL error as Pluvo sends it; `extensions` is kept raw because only `code` is read.
pub type GraphqlError = GraphQlError<serde_json::Value>;

/// The longest excerpt of an unexpected response body kept in an error.
const BODY_EXCERPT: usize = 300;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluvoError {
    /// A `[pluvo]` setting is wrong; `key` is its full name, e.g. `pluvo.url`.
    #[error("setting {key} {reason}")]
    Config { key: &'static str, reason: String },

    /// An HTTP status the client does not handle more specifically.
    #[error("Pluvo answered HTTP {status}: {body}{}", http_hint(*status))]
    Http { status: u16, body: String },

    /// No HTTP response: connection refused or reset, DNS, TLS, or a body cut off mid-read.
    #[error("could not talk to Pluvo: {0}; check the network, any proxy, and pluvo.url")]
    Transport(String),

    /// No complete answer within `pluvo.timeout_secs`.
    #[error(
        "Pluvo did not answer within the timeout; it may be overloaded (raise pluvo.timeout_secs or lower pluvo.batch_size)"
    )]
    Timeout,

    /// HTTP 429.
    #[error("Pluvo is rate-limiting this client (HTTP 429{}); lower pluvo.rate_per_second or ask Pluvo for a higher limit", retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },

    /// Credentials, token or permissions were refused.
    #[error("authentication with Pluvo failed: {0}")]
    Auth(String),

    /// Pluvo rejected one field (one item of a batch) and named why; the others may have succeeded.
    #[error("Pluvo rejected the item{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Field {
        code: Option<String>,
        message: String,
    },

    /// Pluvo rejected the whole document: it does not validate against the tenant's schema, or a
    /// variable was refused. Nothing in it was applied.
    #[error("Pluvo rejected the whole request{}: {message}; if this is a schema error, compare schema/pluvo.graphql with the tenant's schema", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    InvalidDocument {
        code: Option<String>,
        message: String,
    },

    /// The response is not what the schema promises.
    #[error(
        "unexpected response from Pluvo: {0}; compare schema/pluvo.graphql with the tenant's schema"
    )]
    Decode(String),

    /// The run is stopping (shutdown, or the run lease was lost): the call was not sent, or
    /// not repeated, and is left for the next run.
    #[error("not sent: the run is stopping; the next run repeats this call")]
    Cancelled,

    /// A retryable failure persisted through every attempt (`pluvo.max_attempts`).
    #[error("gave up after {attempts} attempts; last error: {last}")]
    Exhausted {
        attempts: u32,
        last: Box<PluvoError>,
    },
}

fn http_hint(status: u16) -> &'static str {
    match status {
        300..=399 => {
            "; Pluvo redirected the request: check pluvo.url (https and the tenant's own host)"
        }
        403 => {
            "; the API client lacks a permission: check pluvo.scope and the client's rights in Pluvo"
        }
        404 => "; check pluvo.url (the tenant's base URL, e.g. https://acme.pluvo.com)",
        500..=599 => "; Pluvo has a problem, try again later",
        _ => "",
    }
}

impl PluvoError {
    /// True when sending the same request again, unchanged, may succeed (after a pause).
    pub fn is_retryable(&self) -> bool {
        match self {
            PluvoError::Http { status, .. } => is_retryable_status(*status),
            PluvoError::Transport(_)
            | PluvoError::Timeout
            | PluvoError::RateLimited { .. }
            | PluvoError::Cancelled => true,
            PluvoError::Exhausted { last, .. } => last.is_retryable(),
            PluvoError::Config { .. }
            | PluvoError::Auth(_)
            | PluvoError::Field { .. }
            | PluvoError::InvalidDocument { .. }
            | PluvoError::Decode(_) => false,
        }
    }

    /// True when Pluvo refused this one field (e.g. an e-mail address taken) rather than the
    /// request as a whole: the data, not the connection, must change.
    pub fn is_field_error(&self) -> bool {
        matches!(self, PluvoError::Field { .. })
    }

    /// The `extensions.code` Pluvo gave for a rejected field or document, e.g. `EMAIL_TAKEN`.
    pub fn code(&self) -> Option<&str> {
        match self {
            PluvoError::Field { code, .. } | PluvoError::InvalidDocument { code, .. } => {
                code.as_deref()
            }
            PluvoError::Exhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// Builds an error from an HTTP status and the (possibly long) body that came with it.
    pub(crate) fn http(status: u16, body: &str) -> Self {
        PluvoError::Http {
            status,
            body: excerpt(body),
        }
    }
}

/// Statuses worth another attempt: overload and transient server failures.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A bounded, single-line excerpt of a response body, safe to put in a log line.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_EXCERPT)
        .collect();
    if body.chars().count() > BODY_EXCERPT {
        format!("{}…", one_line.trim_end())
    } else {
        one_line.trim().to_owned()
    }
}

/// The error's `extensions.code`, when it is a string.
pub(crate) fn error_code(error: &GraphqlError) -> Option<&str> {
    error.extensions.as_ref()?.get("code")?.as_str()
}

/// Pluvo signals an expired or revoked token with a code containing "auth" (any case), e.g.
/// `AuthenticationError` or `UNAUTHENTICATED`.
pub(crate) fn is_auth_error(error: &GraphqlError) -> bool {
    error_code(error).is_some_and(|code| code.to_ascii_lowercase().contains("auth"))
}

/// The root field (alias) an error belongs to, if it has a path.
pub(crate) fn error_root(error: &GraphqlError) -> Option<&str> {
    match error.path.as_deref()?.first()? {
        GraphQlErrorPathSegment::Field(name) => Some(name),
        GraphQlErrorPathSegment::Index(_) => None,
    }
}

/// Classifies one GraphQL error: with a path it concerns one field, without one the document.
pub(crate) fn from_graphql(error: &GraphqlError) -> PluvoError {
    let code = error_code(error).map(str::to_owned);
    let message = excerpt(&error.message);
    if is_auth_error(error) {
        return PluvoError::Auth(format!(
            "{message}; the token was renewed and still refused: check that pluvo.scope is granted to the API client"
        ));
    }
    if error_root(error).is_some() {
        PluvoError::Field { code, message }
    } else {
        PluvoError::InvalidDocument { code, message }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(value: serde_json::Value) -> GraphqlError {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn graphql_errors_are_classified_by_path_and_code() {
        let field = from_graphql(&error(json!({
            "message": "email taken", "path": ["u1", "user"], "extensions": {"code": "EMAIL_TAKEN"}
        })));
        assert_eq!(field.code(), Some("EMAIL_TAKEN"));
        assert!(matches!(field, PluvoError::Field { .. }));
        assert!(!field.is_retryable());

        let document = from_graphql(&error(json!({
            "message": "Cannot query field \"nope\"", "locations": [{"line": 1, "column": 3}]
        })));
        assert!(matches!(
            document,
            PluvoError::InvalidDocument { code: None, .. }
        ));

        let auth =
            error(json!({"message": "expired", "extensions": {"code": "AuthenticationError"}}));
        assert!(is_auth_error(&auth));
        assert!(matches!(from_graphql(&auth), PluvoError::Auth(_)));
        assert!(!is_auth_error(&error(
            json!({"message": "x", "extensions": {"code": "NOT_FOUND"}})
        )));
        assert!(!is_auth_error(&error(
            json!({"message": "x", "extensions": {"code": 401}})
        )));
    }

    #[test]
    fn retryability_follows_the_kind_of_failure() {
        let cases = [
            ("429", PluvoError::http(429, ""), true),
            ("503", PluvoError::http(503, ""), true),
            ("400", PluvoError::http(400, ""), false),
            ("404", PluvoError::http(404, ""), false),
            ("timeout", PluvoError::Timeout, true),
            ("transport", PluvoError::Transport("reset".into()), true),
            ("auth", PluvoError::Auth("no".into()), false),
            ("decode", PluvoError::Decode("x".into()), false),
            (
                "exhausted on 503",
                PluvoError::Exhausted {
                    attempts: 6,
                    last: Box::new(PluvoError::http(503, "")),
                },
                true,
            ),
        ];
        for (name, error, retryable) in cases {
            assert_eq!(error.is_retryable(), retryable, "case {name}");
        }
    }

    #[test]
    fn body_excerpts_are_bounded_and_single_line() {
        let long = "x\n".repeat(1000);
        let short = excerpt(&long);
        assert!(!short.contains('\n'));
        assert!(short.chars().count() <= BODY_EXCERPT + 1);
        assert!(short.ends_with('…'));
        assert_eq!(excerpt(" ok\n"), "ok");
    }
}
