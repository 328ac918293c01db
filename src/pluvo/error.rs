//! [`PluvoError`]: everything that can go wrong talking to Pluvo, as one type, and the one place
//! that reads what Pluvo's errors mean.
//!
//! Callers branch on three questions: may the same request succeed later
//! ([`PluvoError::is_retryable`]), did Pluvo refuse one item rather than the request
//! ([`PluvoError::is_refusal`]), and what was the refusal about ([`PluvoError::refusal`]: an
//! e-mail address already taken, a conflict, something not found, an invalid value). Each message
//! ends with what the operator can do about it.
//!
//! Pluvo's contract names no error codes, and the stacks a GraphQL API is built on word them
//! differently: our own pluvo-sim says `EMAIL_TAKEN`, a Django/graphene server
//! `{"code": "Conflict", "field": "email"}` with "User with this Email address already exists.",
//! an Apollo-style one `BAD_USER_INPUT` and "already in use". So nothing here trusts one code:
//! the recognisers in [`Signals`] weigh every signal an error carries (the code, the field it
//! names, the HTTP status, the message) and are the only code that interprets them.

use std::time::Duration;

use cynic::{GraphQlError, GraphQlErrorPathSegment};

/// A GraphQL error as Pluvo sends it; `extensions` is kept raw: servers put different keys there.
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
        /// What the refusal was about, recognised from every signal the error carried.
        refusal: Refusal,
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

    /// True when Pluvo answered and refused this one item (a conflict, an invalid value, …): a
    /// problem of one person's data, not of the connection, the credentials or the schema.
    pub fn is_refusal(&self) -> bool {
        self.is_field_error()
    }

    /// What an item refusal was about; `None` for anything that is not an item refusal.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            PluvoError::Field { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }

    /// True when Pluvo refused the item because its e-mail address belongs to another account.
    pub fn is_email_conflict(&self) -> bool {
        self.refusal() == Some(Refusal::EmailTaken)
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

/// What an item refusal was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The e-mail address belongs to another account.
    EmailTaken,
    /// Another unique value (e.g. the ref) belongs to another record.
    Conflict,
    /// Something the item names does not exist (a user, a group, a category).
    NotFound,
    /// A value was refused as invalid (an address Pluvo does not accept, an unknown option, …).
    Invalid,
    /// Refused for a reason none of the recognisers knows.
    Other,
}

/// The signals one GraphQL error carries, lower-cased, ready for the recognisers.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// `extensions.code` (also `classification` or `type`, as other servers name it), as text.
    code: String,
    /// Input fields the error names: `extensions.field` / `fields` / `argumentName` / `param`,
    /// and the keys of `extensions.validation` / `errors` / `fieldErrors`. (The `path` names
    /// the selection, not the input, so it is no signal here.)
    fields: Vec<String>,
    message: String,
    /// The HTTP status the error came with, when it was not 200.
    status: Option<u16>,
}

/// Words in a code that name a conflict with an existing record.
const CONFLICT_CODES: &[&str] = &[
    "conflict",
    "duplicate",
    "unique",
    "taken",
    "exist",
    "in_use",
    "inuse",
    "already",
];
/// Phrases in a message that name a conflict with an existing record.
const CONFLICT_PHRASES: &[&str] = &[
    "already exists",
    "already in use",
    "already taken",
    "already used",
    "already registered",
    "already been taken",
    "is taken",
    "duplicate",
    "unique constraint",
    "must be unique",
    "not unique",
];
const EMAIL_WORDS: &[&str] = &["email", "e-mail", "mail address", "mailadres"];
const AUTH_CODES: &[&str] = &[
    "auth",
    "forbidden",
    "permission",
    "token",
    "401",
    "403",
    "login",
];
const AUTH_PHRASES: &[&str] = &[
    "authenticat",
    "unauthori",
    "not authorized",
    "credentials were not provided",
    "permission to perform",
    "permission denied",
    "signature has expired",
    "error decoding signature",
    "token has expired",
    "token is expired",
    "token expired",
    "expired token",
    "invalid token",
    "token is invalid",
    "access token",
    "bearer",
    "login required",
];
const NOT_FOUND_CODES: &[&str] = &["not_found", "notfound", "doesnotexist", "does_not_exist"];
const NOT_FOUND_PHRASES: &[&str] = &["does not exist", "not found", "no such", "unknown"];
const INVALID_CODES: &[&str] = &[
    "invalid",
    "validation",
    "bad_user_input",
    "bad_request",
    "unprocessable",
    "value_error",
];
const INVALID_PHRASES: &[&str] = &[
    "not a valid",
    "enter a valid",
    "is invalid",
    "invalid",
    "select a valid choice",
    "not one of the available choices",
    "not allowed",
];

/// Words in a code that say the client is sending too fast.
const RATE_LIMIT_CODES: &[&str] = &[
    "rate_limit",
    "ratelimit",
    "rate-limit",
    "throttl",
    "too_many_requests",
    "toomanyrequests",
    "429",
];
/// Phrases in a message that say the client is sending too fast.
const RATE_LIMIT_PHRASES: &[&str] = &[
    "rate limit",
    "rate-limit",
    "ratelimit",
    "too many requests",
    "throttl",
    "slow down",
];

/// Whether `text` contains any of `needles` (the recognisers' one primitive).
pub(crate) fn any_in(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|needle| text.contains(needle))
}

impl Signals {
    pub(crate) fn of(error: &GraphqlError, status: Option<u16>) -> Self {
        let extensions = error.extensions.as_ref();
        let text = |value: &serde_json::Value| match value {
            serde_json::Value::String(s) => Some(s.to_lowercase()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let code = ["code", "classification", "type"]
            .iter()
            .filter_map(|key| extensions?.get(*key).and_then(text))
            .collect::<Vec<_>>()
            .join(" ");
        let mut fields = Vec::new();
        let mut details = vec![error.message.to_lowercase()];
        if let Some(extensions) = extensions {
            for key in ["field", "fields", "argumentName", "param"] {
                match extensions.get(key) {
                    Some(serde_json::Value::Array(items)) => {
                        fields.extend(items.iter().filter_map(text));
                    }
                    Some(value) => fields.extend(text(value)),
                    None => {}
                }
            }
            for key in ["validation", "errors", "fieldErrors", "field_errors"] {
                if let Some(serde_json::Value::Object(map)) = extensions.get(key) {
                    fields.extend(map.keys().map(|k| k.to_lowercase()));
                    // Django forms put the real reasons here, under a generic message.
                    for value in map.values() {
                        match value {
                            serde_json::Value::Array(items) => {
                                details.extend(items.iter().filter_map(text));
                            }
                            other => details.extend(text(other)),
                        }
                    }
                }
            }
        }
        Self {
            code,
            fields,
            message: details.join(" "),
            status: status.filter(|s| *s != 200),
        }
    }

    /// The codes the error carries (`extensions.code`, `classification`, `type`), lower-cased.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The message, with any detailed reasons the extensions carried, lower-cased.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The token (or the client behind it) was refused: HTTP 401, a code naming authentication,
    /// a permission or a token, or a message saying so ("Authentication credentials were not
    /// provided", "You do not have permission to perform this action", "Signature has expired").
    pub(crate) fn is_auth(&self) -> bool {
        self.status == Some(401)
            || any_in(&self.code, AUTH_CODES)
            || any_in(&self.message, AUTH_PHRASES)
    }

    /// The request was refused for the rate it came at, as a 429 would say (some servers and
    /// gateways say it with HTTP 200 and a GraphQL error): a code such as `RATE_LIMITED` or
    /// `THROTTLED`, or a message saying "rate limit", "too many requests" or "throttled".
    pub(crate) fn is_rate_limit(&self) -> bool {
        any_in(&self.code, RATE_LIMIT_CODES) || any_in(&self.message, RATE_LIMIT_PHRASES)
    }

    /// What an item refusal was about, by code, field, status and message. A code naming "not
    /// found" is trusted first (`DoesNotExist` contains "exist"); a conflict beats a generic
    /// "invalid input" code, as Apollo-style servers report a taken address as `BAD_USER_INPUT`.
    pub(crate) fn refusal(&self) -> Refusal {
        if any_in(&self.code, NOT_FOUND_CODES) {
            return Refusal::NotFound;
        }
        if any_in(&self.code, CONFLICT_CODES)
            || self.status == Some(409)
            || any_in(&self.message, CONFLICT_PHRASES)
        {
            return if self.about_email() {
                Refusal::EmailTaken
            } else {
                Refusal::Conflict
            };
        }
        if any_in(&self.code, INVALID_CODES) {
            return Refusal::Invalid;
        }
        if self.status == Some(404) || any_in(&self.message, NOT_FOUND_PHRASES) {
            return Refusal::NotFound;
        }
        if matches!(self.status, Some(400 | 422)) || any_in(&self.message, INVALID_PHRASES) {
            return Refusal::Invalid;
        }
        Refusal::Other
    }

    /// Whether the error concerns the e-mail address. The most specific signal decides: the
    /// fields it names, else its code, else its message (which may quote an address of
    /// `gmail.com`, so a bare "mail" does not count).
    fn about_email(&self) -> bool {
        if !self.fields.is_empty() {
            return self.fields.iter().any(|f| any_in(f, EMAIL_WORDS));
        }
        if any_in(&self.code, EMAIL_WORDS) {
            return true;
        }
        if any_in(&self.code, &["ref", "name"]) {
            return false;
        }
        any_in(&self.message, EMAIL_WORDS)
    }
}

/// The error's `extensions.code`, when it is a string.
pub(crate) fn error_code(error: &GraphqlError) -> Option<&str> {
    error.extensions.as_ref()?.get("code")?.as_str()
}

/// Whether `error`, received with HTTP `status`, says the token was refused; see
/// [`Signals::is_auth`].
pub(crate) fn is_auth_error(error: &GraphqlError, status: u16) -> bool {
    Signals::of(error, Some(status)).is_auth()
}

/// The root field (alias) an error belongs to, if it has a path.
pub(crate) fn error_root(error: &GraphqlError) -> Option<&str> {
    match error.path.as_deref()?.first()? {
        GraphQlErrorPathSegment::Field(name) => Some(name),
        GraphQlErrorPathSegment::Index(_) => None,
    }
}

/// Classifies one GraphQL error: with a path it concerns one field, without one the document.
/// An error that still says "not authorised" reaches here only after the token was renewed and
/// refused again, so the refusal is about this call, not about a stale token.
pub(crate) fn from_graphql(error: &GraphqlError) -> PluvoError {
    let code = error_code(error).map(str::to_owned);
    let message = excerpt(&error.message);
    let signals = Signals::of(error, None);
    if signals.is_auth() {
        return PluvoError::Auth(format!(
            "Pluvo refused this call with a freshly issued token: {message}{}; the API client \
             lacks a right this call needs: check its rights and granted scopes in Pluvo",
            code.as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ));
    }
    if error_root(error).is_some() {
        PluvoError::Field {
            code,
            message,
            refusal: signals.refusal(),
        }
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
        assert!(field.is_refusal() && field.is_email_conflict());
        assert!(!field.is_retryable());

        let document = from_graphql(&error(json!({
            "message": "Cannot query field \"nope\"", "locations": [{"line": 1, "column": 3}]
        })));
        assert!(matches!(
            document,
            PluvoError::InvalidDocument { code: None, .. }
        ));
        assert!(!document.is_refusal());

        let auth =
            error(json!({"message": "expired", "extensions": {"code": "AuthenticationError"}}));
        assert!(is_auth_error(&auth, 200));
        assert!(matches!(from_graphql(&auth), PluvoError::Auth(_)));
        assert!(!is_auth_error(
            &error(json!({"message": "x", "extensions": {"code": "NOT_FOUND"}})),
            200
        ));
    }

    /// The same conditions as three plausible servers word them: our pluvo-sim, Django/graphene
    /// and an Apollo-style server. Each must be recognised by what it says, not by one code.
    #[test]
    fn refusals_are_recognised_whatever_the_wording() {
        let cases = [
            (
                "sim: taken address",
                json!({"message": "email `a@example.com` is already used by another user",
                       "path": ["u0"], "extensions": {"code": "EMAIL_TAKEN"}}),
                Refusal::EmailTaken,
            ),
            (
                "graphene: taken address",
                json!({"message": "User with this Email address already exists.",
                       "path": ["u0"], "extensions": {"code": "Conflict", "field": "email"}}),
                Refusal::EmailTaken,
            ),
            (
                "apollo: taken address",
                json!({"message": "This email address is already in use by another account.",
                       "path": ["u0"], "extensions": {"code": "BAD_USER_INPUT"}}),
                Refusal::EmailTaken,
            ),
            (
                "no code, validation map",
                json!({"message": "Please correct the errors below.", "path": ["u0"],
                       "extensions": {"validation": {"email": ["This e-mail address is taken."]}}}),
                Refusal::EmailTaken,
            ),
            (
                "duplicate code naming the address",
                json!({"message": "Duplicate entry", "path": ["u0"],
                       "extensions": {"code": "DUPLICATE_EMAIL"}}),
                Refusal::EmailTaken,
            ),
            (
                "graphene: taken ref",
                json!({"message": "User with this Ref already exists.",
                       "path": ["u0"], "extensions": {"code": "Conflict", "field": "ref"}}),
                Refusal::Conflict,
            ),
            (
                "sim: taken ref quoting a gmail address",
                json!({"message": "ref `7` is already used by jan@gmail.com",
                       "path": ["u0"], "extensions": {"code": "REF_TAKEN"}}),
                Refusal::Conflict,
            ),
            (
                "sim: invalid address",
                json!({"message": "`x` is not a valid email address", "path": ["u0"],
                       "extensions": {"code": "INVALID_EMAIL"}}),
                Refusal::Invalid,
            ),
            (
                "graphene: invalid address",
                json!({"message": "Enter a valid email address.", "path": ["u0"],
                       "extensions": {"code": "ValidationError", "field": "email"}}),
                Refusal::Invalid,
            ),
            (
                "graphene: unknown choice",
                json!({"message": "Select a valid choice. Delft is not one of the available choices.",
                       "path": ["c0"]}),
                Refusal::Invalid,
            ),
            (
                "django: not found without a code",
                json!({"message": "User matching query does not exist.", "path": ["user"]}),
                Refusal::NotFound,
            ),
            (
                "graphene: DoesNotExist is not a conflict",
                json!({"message": "x", "path": ["user"], "extensions": {"code": "DoesNotExist"}}),
                Refusal::NotFound,
            ),
            (
                "sim: not found",
                json!({"message": "no group with ref `x`", "path": ["g"],
                       "extensions": {"code": "NOT_FOUND"}}),
                Refusal::NotFound,
            ),
            (
                "something else",
                json!({"message": "the moon is in the wrong phase", "path": ["u0"]}),
                Refusal::Other,
            ),
        ];
        for (name, raw, expected) in cases {
            let classified = from_graphql(&error(raw));
            assert_eq!(
                classified.refusal(),
                Some(expected),
                "case {name}: {classified:?}"
            );
            assert_eq!(
                classified.is_email_conflict(),
                expected == Refusal::EmailTaken,
                "case {name}"
            );
        }
    }

    #[test]
    fn token_refusals_are_recognised_whatever_the_wording() {
        let cases = [
            (
                "sim",
                json!({"message": "Authentication credentials were not provided or have expired", "extensions": {"code": "AuthenticationError"}}),
                401,
                true,
            ),
            (
                "sim over 200",
                json!({"message": "expired", "extensions": {"code": "AuthenticationError"}}),
                200,
                true,
            ),
            (
                "apollo",
                json!({"message": "Unauthenticated", "extensions": {"code": "UNAUTHENTICATED"}}),
                200,
                true,
            ),
            (
                "graphene permission",
                json!({"message": "You do not have permission to perform this action", "path": ["u0"]}),
                200,
                true,
            ),
            (
                "graphql-jwt",
                json!({"message": "Signature has expired"}),
                200,
                true,
            ),
            (
                "numeric code",
                json!({"message": "x", "extensions": {"code": 401}}),
                200,
                true,
            ),
            (
                "any message with 401",
                json!({"message": "nope"}),
                401,
                true,
            ),
            (
                "conflict",
                json!({"message": "User with this Email address already exists.", "path": ["u0"], "extensions": {"code": "Conflict", "field": "email"}}),
                200,
                false,
            ),
            (
                "not found",
                json!({"message": "x", "extensions": {"code": "NOT_FOUND"}}),
                200,
                false,
            ),
            (
                "validation",
                json!({"message": "Enter a valid email address."}),
                400,
                false,
            ),
        ];
        for (name, raw, status, expected) in cases {
            assert_eq!(is_auth_error(&error(raw), status), expected, "case {name}");
        }
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
