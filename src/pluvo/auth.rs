//! OAuth client credentials: one cached bearer token, renewed before it expires or when Pluvo
//! refuses it.
//!
//! Pluvo issues no refresh token; a new token is a new `client_credentials` grant. The cache is a
//! tokio mutex held across the token request, so concurrent callers wait for one refresh instead of
//! each asking for a token ("single flight"). Tokens carry a generation: a caller whose request was
//! refused invalidates only the token it used, so twenty tasks refused with the same expired
//! token cause one renewal, not twenty.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::PluvoError;
use super::error::excerpt;

/// Assumed lifetime when the token response has no `expires_in`: short enough to be safe.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// How long a refusal of the client credentials is remembered. Within it, callers get the same
/// error without another token request: wrong credentials do not fix themselves mid-run, and
/// hammering the token endpoint with them could get the client locked out.
const REFUSAL_MEMORY: Duration = Duration::from_secs(60);

/// A token as handed to one request.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) secret: SecretString,
    pub(crate) generation: u64,
    pub(crate) grant: Grant,
}

/// A freshly issued token.
pub(crate) struct Issued {
    pub(crate) secret: SecretString,
    pub(crate) ttl: Duration,
    pub(crate) grant: Grant,
}

/// What the token response said about the scopes `pluvo.scope` asked for. Kept with the token,
/// so that when Pluvo refuses it the error can say whether scope can be the cause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Grant {
    /// The response listed every scope asked for.
    All,
    /// The response listed scopes, and these asked-for ones were not among them.
    Missing(Vec<String>),
    /// The response did not list scopes.
    #[default]
    Unstated,
}

/// The error for a token Pluvo refused again right after renewing it: says what is known (how
/// Pluvo refused, and what the token response said about scopes) instead of guessing.
pub(crate) fn refused_after_renewal(how: &str, grant: &Grant) -> PluvoError {
    let advice = match grant {
        Grant::Missing(missing) => format!(
            "the token lacks scope(s) {} that pluvo.scope asks for: grant them to the API client \
             in Pluvo, or remove them from pluvo.scope",
            missing.join(" ")
        ),
        Grant::All => "the token carries every scope pluvo.scope asks for, so scope is not the \
             cause: check in Pluvo that the API client is active and allowed to make this call, \
             and that pluvo.url is the tenant that issued the token"
            .to_owned(),
        Grant::Unstated => "Pluvo did not say which scopes the token carries: check in Pluvo \
             that the API client is active, holds the scopes in pluvo.scope and is allowed to \
             make this call, and that pluvo.url is the tenant that issued the token"
            .to_owned(),
    };
    PluvoError::Auth(format!(
        "Pluvo refused a token it had just issued ({how}); {advice}"
    ))
}

#[derive(Default)]
struct State {
    current: Option<(SecretString, Instant, Grant)>,
    generation: u64,
    refused: Option<(PluvoError, Instant)>,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    state: Mutex<State>,
}

impl TokenCache {
    /// The cached token, or a new one from `fetch` when there is none or it is due for renewal.
    pub(crate) async fn get<F>(&self, fetch: impl FnOnce() -> F) -> Result<Token, PluvoError>
    where
        F: Future<Output = Result<Issued, PluvoError>>,
    {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some((secret, renew_at, grant)) = &state.current
            && now < *renew_at
        {
            return Ok(Token {
                secret: secret.clone(),
                generation: state.generation,
                grant: grant.clone(),
            });
        }
        if let Some((error, at)) = &state.refused
            && now.duration_since(*at) < REFUSAL_MEMORY
        {
            return Err(error.clone());
        }
        state.current = None;
        match fetch().await {
            Ok(issued) => {
                state.generation += 1;
                state.refused = None;
                // Measured from before the request, so the margin only grows.
                state.current = Some((
                    issued.secret.clone(),
                    now + renew_after(issued.ttl),
                    issued.grant.clone(),
                ));
                Ok(Token {
                    secret: issued.secret,
                    generation: state.generation,
                    grant: issued.grant,
                })
            }
            Err(error) => {
                if matches!(error, PluvoError::Auth(_)) {
                    state.refused = Some((error.clone(), Instant::now()));
                }
                Err(error)
            }
        }
    }

    /// Drops the token of `generation` if it is still the cached one.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.current = None;
        }
    }
}

/// When to renew a token that lives `ttl`: ahead of expiry by a tenth of its life, at most an
/// hour (a 24 h token is renewed after 23 h, as Pluvo's docs suggest).
pub(crate) fn renew_after(ttl: Duration) -> Duration {
    ttl.saturating_sub((ttl / 10).min(Duration::from_secs(3600)))
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Reads a 2xx token response. Scopes that were asked for but not granted are returned so the
/// caller can warn: calls needing them will fail later with a permission error.
pub(crate) fn parse_token(
    body: &str,
    requested_scope: &str,
) -> Result<(Issued, Vec<String>), PluvoError> {
    let parsed: TokenBody = serde_json::from_str(body).map_err(|e| {
        PluvoError::Decode(format!(
            "token response is not the expected JSON ({e}); check that pluvo.url points at the tenant"
        ))
    })?;
    if let Some(kind) = &parsed.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(PluvoError::Decode(format!(
            "token type '{}' is not Bearer",
            excerpt(kind)
        )));
    }
    let (missing, grant) = match &parsed.scope {
        Some(granted) => {
            let granted: Vec<&str> = granted.split_whitespace().collect();
            let missing: Vec<String> = requested_scope
                .split_whitespace()
                .filter(|s| !granted.contains(s))
                .map(str::to_owned)
                .collect();
            let grant = if missing.is_empty() {
                Grant::All
            } else {
                Grant::Missing(missing.clone())
            };
            (missing, grant)
        }
        None => (Vec::new(), Grant::Unstated),
    };
    let ttl = parsed
        .expires_in
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL);
    Ok((
        Issued {
            secret: parsed.access_token,
            ttl,
            grant,
        },
        missing,
    ))
}

/// Turns a refused token request (4xx other than 408/429) into an error that says what to fix.
pub(crate) fn token_refused(status: u16, body: &str) -> PluvoError {
    let parsed: Option<TokenErrorBody> = serde_json::from_str(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(|p| p.error_description.as_deref())
        .map(|d| format!(" ({})", excerpt(d)))
        .unwrap_or_default();
    match parsed.as_ref().map(|p| p.error.as_str()) {
        Some("invalid_client") => PluvoError::Auth(format!(
            "Pluvo refused the API client credentials (invalid_client){detail}; check pluvo.client_id and pluvo.client_secret / pluvo.client_secret_file (the secret may have been rotated in Pluvo)"
        )),
        Some("invalid_scope") => PluvoError::Auth(format!(
            "Pluvo refused the requested scope (invalid_scope){detail}; check pluvo.scope against the scopes granted to the API client"
        )),
        Some("unauthorized_client") => PluvoError::Auth(format!(
            "the API client may not use the client_credentials grant (unauthorized_client){detail}; enable it for the client in Pluvo"
        )),
        Some(other) => PluvoError::Auth(format!(
            "token request refused with HTTP {status}: {}{detail}",
            excerpt(other)
        )),
        None if matches!(status, 401 | 403) => PluvoError::Auth(format!(
            "token request refused with HTTP {status}; check pluvo.client_id and the client secret"
        )),
        None => PluvoError::http(status, body),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn renewal_margin_is_a_tenth_of_the_lifetime_at_most_an_hour() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(renew_after(h(24)), h(23));
        assert_eq!(
            renew_after(Duration::from_secs(600)),
            Duration::from_secs(540)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn token_responses_are_read_and_missing_scopes_reported() {
        let (issued, missing) = parse_token(
            r#"{"access_token": "t0k", "token_type": "Bearer", "expires_in": 86400, "scope": "users.read groups.read"}"#,
            "users.read users.write groups.read",
        )
        .unwrap();
        assert_eq!(issued.secret.expose_secret(), "t0k");
        assert_eq!(issued.ttl, Duration::from_secs(86400));
        assert_eq!(missing, ["users.write"]);
        assert_eq!(issued.grant, Grant::Missing(vec!["users.write".into()]));
        let (issued, _) = parse_token(r#"{"access_token": "t"}"#, "x").unwrap();
        assert_eq!(issued.ttl, DEFAULT_TTL);
        assert_eq!(issued.grant, Grant::Unstated);
        let (issued, _) = parse_token(r#"{"access_token": "t", "scope": "b a"}"#, "a b").unwrap();
        assert_eq!(issued.grant, Grant::All);
        assert!(matches!(
            parse_token("<html>", "x"),
            Err(PluvoError::Decode(_))
        ));
        assert!(parse_token(r#"{"access_token": "t", "token_type": "mac"}"#, "x").is_err());
    }

    #[test]
    fn refusals_tell_the_operator_which_setting_to_check() {
        let cases = [
            (
                "invalid_client",
                401,
                r#"{"error": "invalid_client"}"#,
                "pluvo.client_id",
            ),
            (
                "invalid_scope",
                400,
                r#"{"error": "invalid_scope"}"#,
                "pluvo.scope",
            ),
            ("bare 401", 401, "Unauthorized", "pluvo.client_id"),
        ];
        for (name, status, body, hint) in cases {
            match token_refused(status, body) {
                PluvoError::Auth(message) => {
                    assert!(message.contains(hint), "case {name}: {message}")
                }
                other => panic!("case {name}: {other:?}"),
            }
        }
        assert!(matches!(
            token_refused(404, "nope"),
            PluvoError::Http { status: 404, .. }
        ));
    }

    /// A second refusal names scope as the cause only when the token response says a scope is
    /// missing; otherwise it says what Pluvo answered and what else to check.
    #[test]
    fn a_refusal_after_renewal_says_what_is_known_about_scope() {
        let how = "HTTP 401: Authentication credentials were not provided";
        let text = |grant: Grant| refused_after_renewal(how, &grant).to_string();
        let all = text(Grant::All);
        assert!(all.contains(how), "{all}");
        assert!(all.contains("scope is not the cause"), "{all}");
        assert!(!all.contains("check that pluvo.scope is granted"), "{all}");
        let missing = text(Grant::Missing(vec!["users.write".into()]));
        assert!(missing.contains("lacks scope(s) users.write"), "{missing}");
        let unstated = text(Grant::Unstated);
        assert!(unstated.contains("did not say which scopes"), "{unstated}");
    }

    fn issued(secret: &str) -> Result<Issued, PluvoError> {
        Ok(Issued {
            secret: SecretString::from(secret),
            ttl: Duration::from_secs(86400),
            grant: Grant::Unstated,
        })
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_invalidation_is_per_generation() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        issued("a")
                    })
                    .await
                    .map(|t| t.generation)
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // A stale generation does not drop the current token; the current one does.
        cache.invalidate(0).await;
        assert_eq!(
            cache
                .get(|| async { issued("b") })
                .await
                .unwrap()
                .generation,
            1
        );
        cache.invalidate(1).await;
        let renewed = cache.get(|| async { issued("b") }).await.unwrap();
        assert_eq!(renewed.generation, 2);
        assert_eq!(renewed.secret.expose_secret(), "b");
    }

    #[tokio::test]
    async fn a_credential_refusal_is_remembered_but_a_transient_failure_is_not() {
        let cache = TokenCache::default();
        let refused = cache
            .get(|| async { Err(PluvoError::Auth("bad".into())) })
            .await;
        assert!(matches!(refused, Err(PluvoError::Auth(_))));
        let again = cache.get(|| async { issued("never asked") }).await;
        assert!(
            matches!(again, Err(PluvoError::Auth(_))),
            "refusal must be remembered"
        );

        let cache = TokenCache::default();
        let _ = cache.get(|| async { Err(PluvoError::Timeout) }).await;
        assert!(cache.get(|| async { issued("ok") }).await.is_ok());
    }
}
