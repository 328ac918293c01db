//! One page's GET, with retries.
//!
//! Transient trouble (429, 408, most 5xx, timeouts, refused or dropped connections, a body cut
//! off mid-stream) is retried with exponential backoff and jitter, honouring `Retry-After`. Anything
//! else, and transient trouble that outlasts its attempts, fails the page and with it the read.
//! Error details name the page and the URL *path* only: queries can carry tokens.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::http::{Backoff, retry_after};
use reqwest::{Client, StatusCode, Url};
use secrecy::ExposeSecret;

use super::settings::Auth;
use crate::sync::source::SourceError;

/// A page as the API sent it.
pub(super) struct Fetched {
    /// Where the body came from, after same-origin redirects; relative links resolve against it.
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// How hard to try.
#[derive(Debug, Clone)]
pub(super) struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The waits between attempts: the same exponential backoff with full jitter as the Pluvo
    /// client's, on top of any `Retry-After`.
    fn backoff(&self) -> Backoff {
        Backoff {
            base: self.initial_backoff,
            cap: self.max_backoff,
        }
    }
}

/// Everything a GET needs besides its URL.
pub(super) struct Fetcher {
    pub client: Client,
    pub auth: Auth,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt; `retry_after` is what the server asked for, if anything.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way.
    Fatal(String),
}

impl Fetcher {
    /// GETs `url` as page `page` (1-based), retrying transient failures.
    pub async fn get(&self, url: &Url, page: u32) -> Result<Fetched, SourceError> {
        let fail = |detail: String| SourceError::Page {
            page,
            detail: format!("GET {}: {detail}", url.path()),
        };
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let (reason, retry_after) = match self.attempt(url).await {
                Ok(fetched) => return Ok(fetched),
                Err(Failure::Fatal(reason)) => return Err(fail(reason)),
                Err(Failure::Transient {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            if attempt >= attempts {
                return Err(fail(format!(
                    "{reason} (gave up after {attempts} attempt{}; the HR API may be down or overloaded, the next run tries again)",
                    if attempts == 1 { "" } else { "s" }
                )));
            }
            let delay = match retry_after {
                Some(wait) if wait > self.retry.max_backoff => {
                    return Err(fail(format!(
                        "{reason}; the API asks to wait {}s, longer than max_backoff_secs ({}s); the next run tries again",
                        wait.as_secs(),
                        self.retry.max_backoff.as_secs()
                    )));
                }
                wait => self
                    .retry
                    .backoff()
                    .retry_delay(attempt, wait, &mut rand::rng()),
            };
            tracing::warn!(
                page,
                path = url.path(),
                attempt,
                of = attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason,
                "HR API request failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, url: &Url) -> Result<Fetched, Failure> {
        let mut request = self
            .client
            .get(url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            Auth::Header { name, value } => request.header(name, value),
        };
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        let headers = response.headers().clone();
        let final_url = response.url().clone();
        if status.is_success() {
            let body = response.bytes().await.map_err(transport_failure)?;
            return Ok(Fetched {
                url: final_url,
                headers,
                body: body.into(),
            });
        }
        let reason = format!("HTTP {status}");
        if is_transient(status) {
            return Err(Failure::Transient {
                reason,
                retry_after: retry_after(&headers),
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Failure::Fatal(format!(
                "{reason}: the HR API refused our credentials; check [source.rest.auth] and that the token or user may read this endpoint"
            )));
        }
        if status.is_redirection() {
            let target = headers
                .get(reqwest::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| final_url.join(location).ok())
                .map(|target| origin(&target))
                .unwrap_or_else(|| "an unreadable location".to_owned());
            return Err(Failure::Fatal(format!(
                "{reason}: the API redirects to {target}; credentials are only sent to the configured host, so set base_url to where it redirects"
            )));
        }
        if status == StatusCode::NOT_FOUND {
            return Err(Failure::Fatal(format!(
                "{reason}: check base_url and path in [source.rest]"
            )));
        }
        // The body of a 4xx usually says what was wrong with the request (a bad parameter, a
        // connector that does not exist); a short, single-line excerpt is worth showing.
        let excerpt = response
            .text()
            .await
            .map(|text| excerpt(&text))
            .unwrap_or_default();
        Err(Failure::Fatal(if excerpt.is_empty() {
            reason
        } else {
            format!("{reason}: {excerpt}")
        }))
    }
}

/// 408, 429 and the 5xx that mean "not now" rather than "never".
fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

fn transport_failure(error: reqwest::Error) -> Failure {
    // Builder errors (a URL reqwest cannot send) will not improve with time; timeouts, refused
    // connections and bodies cut off mid-stream might.
    let fatal = error.is_builder();
    let reason = error_chain(&error.without_url());
    if fatal {
        Failure::Fatal(reason)
    } else {
        Failure::Transient {
            reason,
            retry_after: None,
        }
    }
}

/// The error and its causes, `a: b: c`; reqwest's own message alone ("error sending request")
/// does not say whether the host was unknown or the connection refused.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// `scheme://host[:port]`, nothing that could be secret.
pub(super) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn excerpt(text: &str) -> String {
    const LIMIT: usize = 200;
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
        }
    }

    #[test]
    fn waits_grow_from_initial_backoff_and_stop_at_max_backoff() {
        // The policy's settings are the shared backoff's base and cap; the backoff's own
        // shape is tested in `crate::http`.
        let backoff = policy().backoff();
        assert_eq!(
            (backoff.base, backoff.cap),
            (Duration::from_millis(500), Duration::from_secs(4))
        );
        let mut rng = rand::rng();
        for attempt in [1, 4, 10, u32::MAX] {
            let wait = backoff.retry_delay(attempt, None, &mut rng);
            assert!(wait <= Duration::from_secs(4), "{attempt}: {wait:?}");
        }
        let asked = Some(Duration::from_secs(2));
        let wait = backoff.retry_delay(1, asked, &mut rng);
        assert!(
            (Duration::from_secs(2)..=Duration::from_millis(2_500)).contains(&wait),
            "a Retry-After is honoured, with jitter on top: {wait:?}"
        );
    }

    #[test]
    fn transient_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_transient(StatusCode::from_u16(code).expect("status")),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 422, 501, 505] {
            assert!(
                !is_transient(StatusCode::from_u16(code).expect("status")),
                "{code}"
            );
        }
    }

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(excerpt("  bad\n\tfilter  "), "bad filter");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), 201);
    }
}
