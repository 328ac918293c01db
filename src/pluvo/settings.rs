//! The `[pluvo]` settings table, and its resolution into [`ResolvedPluvo`].
//!
//! Raw settings are what an operator writes; resolving them checks every value once, reads the
//! client secret from its file, and derives the two endpoint URLs, so the client never handles a
//! value that could still be wrong. Errors name the offending key.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::PluvoError;

/// The scopes a user sync needs (CONTRACT.md, "Endpoints and auth").
pub const DEFAULT_SCOPE: &str =
    "users.read users.write groups.read groups.write extra_categories.write";

/// `[pluvo]` as written in the configuration file. `Debug` never shows the secret: `SecretString`
/// redacts itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluvoSettings {
    /// The tenant's base URL, e.g. `https://acme.pluvo.com`.
    pub url: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Requests per second, token requests included. Fractions are allowed (0.5 = one every 2 s).
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    #[serde(default = "default_burst")]
    pub burst: u32,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// People per GraphQL document to start with.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The most people per document the batch size may grow to while Pluvo accepts them.
    #[serde(default = "default_max_batch_size")]
    pub max_batch_size: usize,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
}

fn default_scope() -> String {
    DEFAULT_SCOPE.to_owned()
}
fn default_rate() -> f64 {
    5.0
}
fn default_burst() -> u32 {
    1
}
fn default_concurrency() -> usize {
    4
}
fn default_batch_size() -> usize {
    25
}
fn default_max_batch_size() -> usize {
    100
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_max_attempts() -> u32 {
    6
}
fn default_backoff_base_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    30_000
}

/// Checked settings, ready for [`super::PluvoClient::new`].
#[derive(Debug, Clone)]
pub struct ResolvedPluvo {
    /// `{base}/graphql/`, trailing slash included.
    pub graphql_url: Url,
    /// `{base}/oauth/token/`, trailing slash included.
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scope: String,
    pub rate_per_second: f64,
    pub burst: NonZeroU32,
    pub concurrency: NonZeroUsize,
    /// The batch size to start with.
    pub batch_size: NonZeroUsize,
    /// The batch size grows up to this while Pluvo accepts the documents.
    pub max_batch_size: NonZeroUsize,
    pub timeout: Duration,
    pub max_attempts: NonZeroU32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// The most people one document may ever hold (`pluvo.max_batch_size`'s own limit); past this a
/// slow field delays every item, and a refusal costs a large document.
const MAX_BATCH_SIZE: usize = 500;

fn config(key: &'static str, reason: impl Into<String>) -> PluvoError {
    PluvoError::Config {
        key,
        reason: reason.into(),
    }
}

impl PluvoSettings {
    /// Settings for a tenant with every tunable at its default, e.g. for tests against the
    /// local stand-in.
    pub fn new(
        url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self {
            url: url.into(),
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            client_secret_file: None,
            scope: default_scope(),
            rate_per_second: default_rate(),
            burst: default_burst(),
            concurrency: default_concurrency(),
            batch_size: default_batch_size(),
            max_batch_size: default_max_batch_size(),
            timeout_secs: default_timeout_secs(),
            max_attempts: default_max_attempts(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
        }
    }

    /// Checks every value and reads the secret file. Errors name the `pluvo.*` key to fix.
    pub fn resolve(self) -> Result<ResolvedPluvo, PluvoError> {
        let (graphql_url, token_url) = endpoints(&self.url)?;

        let client_id = self.client_id.trim().to_owned();
        if client_id.is_empty() {
            return Err(config(
                "pluvo.client_id",
                "is empty; copy the API client's id from Pluvo's admin settings",
            ));
        }

        let client_secret = match (self.client_secret, self.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(config(
                    "pluvo.client_secret",
                    "set either client_secret or client_secret_file, not both",
                ));
            }
            (None, None) => {
                return Err(config(
                    "pluvo.client_secret",
                    "missing; set client_secret_file (preferred) or client_secret",
                ));
            }
            (Some(secret), None) => {
                let trimmed = secret.expose_secret().trim();
                if trimmed.is_empty() {
                    return Err(config("pluvo.client_secret", "is empty"));
                }
                SecretString::from(trimmed)
            }
            (None, Some(path)) => {
                let raw = std::fs::read_to_string(&path).map_err(|e| {
                    config(
                        "pluvo.client_secret_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let raw = SecretString::from(raw);
                let trimmed = raw.expose_secret().trim();
                if trimmed.is_empty() {
                    return Err(config(
                        "pluvo.client_secret_file",
                        format!("{} is empty", path.display()),
                    ));
                }
                SecretString::from(trimmed)
            }
        };

        let scope = self.scope.split_whitespace().collect::<Vec<_>>().join(" ");
        if scope.is_empty() {
            return Err(config(
                "pluvo.scope",
                format!("is empty; a user sync needs \"{DEFAULT_SCOPE}\""),
            ));
        }

        // The pacer spaces requests by 1/rate; a million a second is far above any real limit.
        if !(self.rate_per_second.is_finite()
            && self.rate_per_second > 0.0
            && self.rate_per_second <= 1_000_000.0)
        {
            return Err(config(
                "pluvo.rate_per_second",
                format!(
                    "must be a number above 0 (got {}); Pluvo's default client limit is unknown, 5 is a safe start",
                    self.rate_per_second
                ),
            ));
        }
        let burst = NonZeroU32::new(self.burst)
            .ok_or_else(|| config("pluvo.burst", "must be at least 1"))?;
        let concurrency = NonZeroUsize::new(self.concurrency)
            .ok_or_else(|| config("pluvo.concurrency", "must be at least 1"))?;
        let max_batch_size = NonZeroUsize::new(self.max_batch_size)
            .filter(|n| n.get() <= MAX_BATCH_SIZE)
            .ok_or_else(|| {
                config(
                    "pluvo.max_batch_size",
                    format!("must be between 1 and {MAX_BATCH_SIZE}"),
                )
            })?;
        let batch_size = NonZeroUsize::new(self.batch_size)
            .filter(|n| *n <= max_batch_size)
            .ok_or_else(|| {
                config(
                    "pluvo.batch_size",
                    format!(
                        "must be between 1 and pluvo.max_batch_size ({max_batch_size}); it is \
                         where the batch size starts, and it grows from there"
                    ),
                )
            })?;
        if self.timeout_secs == 0 {
            return Err(config("pluvo.timeout_secs", "must be at least 1"));
        }
        let max_attempts = NonZeroU32::new(self.max_attempts)
            .ok_or_else(|| config("pluvo.max_attempts", "must be at least 1"))?;
        if self.backoff_base_ms == 0 {
            return Err(config("pluvo.backoff_base_ms", "must be at least 1"));
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err(config(
                "pluvo.backoff_max_ms",
                "must not be below pluvo.backoff_base_ms",
            ));
        }

        Ok(ResolvedPluvo {
            graphql_url,
            token_url,
            client_id,
            client_secret,
            scope,
            rate_per_second: self.rate_per_second,
            burst,
            concurrency,
            batch_size,
            max_batch_size,
            timeout: Duration::from_secs(self.timeout_secs),
            max_attempts,
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
        })
    }
}

/// Derives `{base}/graphql/` and `{base}/oauth/token/` from what an operator may paste: the bare
/// host, the base URL with or without a trailing slash, or the GraphQL endpoint itself. Both
/// endpoints need their trailing slash (Pluvo redirects or fails without it).
pub fn endpoints(raw: &str) -> Result<(Url, Url), PluvoError> {
    const KEY: &str = "pluvo.url";
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(config(
            KEY,
            "is empty; set it to the tenant, e.g. https://acme.pluvo.com",
        ));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| {
        config(
            KEY,
            format!("'{trimmed}' is not a URL ({e}); expected e.g. https://acme.pluvo.com"),
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(config(
            KEY,
            format!("scheme '{}' is not http(s)", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config(KEY, format!("'{trimmed}' has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(
            KEY,
            "must not contain '?' or '#'; give the tenant's base URL only",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            KEY,
            "must not contain credentials; use client_id and client_secret",
        ));
    }
    let mut path = url.path().trim_end_matches('/').to_owned();
    if let Some(base) = path.strip_suffix("/graphql") {
        path = base.to_owned();
    }
    let mut graphql = url.clone();
    graphql.set_path(&format!("{path}/graphql/"));
    url.set_path(&format!("{path}/oauth/token/"));
    Ok((graphql, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings arrive through the `config` crate in production; JSON exercises the same serde
    /// derive without depending on the file format.
    fn settings(json: &str) -> Result<PluvoSettings, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn urls_are_normalised_to_both_endpoints_with_trailing_slash() {
        let cases = [
            ("bare host", "acme.pluvo.com", "https://acme.pluvo.com/"),
            ("base", "https://acme.pluvo.com", "https://acme.pluvo.com/"),
            (
                "base slash",
                "https://acme.pluvo.com/",
                "https://acme.pluvo.com/",
            ),
            (
                "endpoint",
                "https://acme.pluvo.com/graphql",
                "https://acme.pluvo.com/",
            ),
            (
                "endpoint slash",
                " https://acme.pluvo.com/graphql/ ",
                "https://acme.pluvo.com/",
            ),
            (
                "local sim with port",
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/",
            ),
            (
                "path prefix",
                "http://localhost:9/sim/",
                "http://localhost:9/sim/",
            ),
        ];
        for (name, raw, base) in cases {
            let (graphql, token) = endpoints(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(graphql.as_str(), format!("{base}graphql/"), "case {name}");
            assert_eq!(token.as_str(), format!("{base}oauth/token/"), "case {name}");
        }
    }

    #[test]
    fn bad_urls_name_the_key() {
        for raw in [
            "",
            "ftp://acme.pluvo.com",
            "https://acme.pluvo.com/?x=1",
            "https://u:p@acme.pluvo.com",
            "http://",
        ] {
            match endpoints(raw) {
                Err(PluvoError::Config { key, .. }) => assert_eq!(key, "pluvo.url", "{raw}"),
                other => panic!("{raw}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_apply_and_secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let raw = settings(&format!(
            r#"{{"url": "https://acme.pluvo.com", "client_id": "abc", "client_secret_file": {:?}}}"#,
            path.display().to_string()
        ))
        .unwrap();
        let resolved = raw.resolve().unwrap();
        assert_eq!(resolved.client_secret.expose_secret(), "s3cret");
        assert_eq!(resolved.scope, DEFAULT_SCOPE);
        assert_eq!(resolved.rate_per_second, 5.0);
        assert_eq!(resolved.burst.get(), 1);
        assert_eq!(resolved.concurrency.get(), 4);
        assert_eq!(resolved.batch_size.get(), 25);
        assert_eq!(resolved.max_batch_size.get(), 100);
        assert_eq!(resolved.timeout, Duration::from_secs(30));
        assert_eq!(resolved.max_attempts.get(), 6);
        assert_eq!(resolved.backoff_base, Duration::from_millis(500));
        assert_eq!(resolved.backoff_max, Duration::from_secs(30));
        assert!(
            !format!("{resolved:?}").contains("s3cret"),
            "Debug must redact"
        );
    }

    #[test]
    fn the_constructor_uses_the_same_defaults_as_the_config_file() {
        let built = PluvoSettings::new("acme.pluvo.com", "a", SecretString::from("x"));
        let parsed =
            settings(r#"{"url": "acme.pluvo.com", "client_id": "a", "client_secret": "x"}"#)
                .unwrap();
        assert_eq!(format!("{built:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn exactly_one_secret_source_is_required() {
        let both = settings(
            r#"{"url": "acme.pluvo.com", "client_id": "a", "client_secret": "x", "client_secret_file": "/nope"}"#,
        )
        .unwrap();
        let neither = settings(r#"{"url": "acme.pluvo.com", "client_id": "a"}"#).unwrap();
        let missing_file = settings(
            r#"{"url": "acme.pluvo.com", "client_id": "a", "client_secret_file": "/definitely/not/here"}"#,
        )
        .unwrap();
        for (name, raw, want) in [
            ("both", both, "pluvo.client_secret"),
            ("neither", neither, "pluvo.client_secret"),
            ("missing file", missing_file, "pluvo.client_secret_file"),
        ] {
            match raw.resolve() {
                Err(PluvoError::Config { key, .. }) => assert_eq!(key, want, "case {name}"),
                other => panic!("case {name}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_numbers_are_rejected() {
        assert!(
            settings(r#"{"url": "a.b", "client_id": "a", "client_secret": "x", "rate": 3}"#)
                .is_err()
        );
        let cases = [
            (r#""rate_per_second": 0"#, "pluvo.rate_per_second"),
            (r#""burst": 0"#, "pluvo.burst"),
            (r#""concurrency": 0"#, "pluvo.concurrency"),
            (r#""batch_size": 0"#, "pluvo.batch_size"),
            (r#""batch_size": 1000"#, "pluvo.batch_size"),
            (r#""batch_size": 200"#, "pluvo.batch_size"),
            (r#""max_batch_size": 0"#, "pluvo.max_batch_size"),
            (r#""max_batch_size": 501"#, "pluvo.max_batch_size"),
            (
                r#""batch_size": 30, "max_batch_size": 20"#,
                "pluvo.batch_size",
            ),
            (r#""max_attempts": 0"#, "pluvo.max_attempts"),
            (r#""backoff_max_ms": 10"#, "pluvo.backoff_max_ms"),
        ];
        for (extra, key) in cases {
            let raw = settings(&format!(
                r#"{{"url": "a.example", "client_id": "a", "client_secret": "x", {extra}}}"#
            ))
            .unwrap();
            match raw.resolve() {
                Err(PluvoError::Config { key: got, .. }) => assert_eq!(got, key, "{extra}"),
                other => panic!("{extra}: {other:?}"),
            }
        }
        let fractional = settings(
            r#"{"url": "a.example", "client_id": "a", "client_secret": "x", "rate_per_second": 0.5}"#,
        )
        .unwrap();
        assert_eq!(fractional.resolve().unwrap().rate_per_second, 0.5);
    }
}
