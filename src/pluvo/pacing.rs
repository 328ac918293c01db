//! How fast the client may talk to Pluvo, and how long it waits before trying again.
//!
//! The [`Pacer`] admits every HTTP request, token requests included: at most `concurrency` in
//! flight, no faster than `rate_per_second` (a governor limiter with the configured burst), and
//! never before a shared "not before" instant. A 429 or a 503 with `Retry-After` moves that
//! instant, so one rate-limit answer slows every task rather than each task hammering on its own.
//!
//! [`Backoff`] computes the wait before a retry: exponential with full jitter ("AWS full jitter":
//! uniform in `[0, min(cap, base * 2^(n-1))]`), which spreads retries of concurrent tasks apart.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::header::HeaderMap;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::PluvoError;
use crate::metrics::{Kind, Metrics};

pub(crate) const LIMITER_WAIT: &str = crate::metrics::names::RATE_LIMITER_WAIT_SECONDS_TOTAL;

/// The longest `Retry-After` honoured as given; a larger value is taken as this. It keeps a
/// misconfigured proxy from parking a run for hours.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

pub(crate) struct Pacer {
    limiter: DefaultDirectRateLimiter,
    slots: Semaphore,
    not_before: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl Pacer {
    pub(crate) fn new(
        rate_per_second: f64,
        burst: NonZeroU32,
        concurrency: NonZeroUsize,
        metrics: Arc<Metrics>,
    ) -> Result<Self, PluvoError> {
        let quota = Duration::try_from_secs_f64(1.0 / rate_per_second)
            .ok()
            .and_then(Quota::with_period)
            .ok_or_else(|| PluvoError::Config {
                key: "pluvo.rate_per_second",
                reason: format!("{rate_per_second} cannot be used as a rate; use a number above 0"),
            })?
            .allow_burst(burst);
        metrics.describe(
            LIMITER_WAIT,
            Kind::Counter,
            "Seconds requests waited for the client-side rate limiter.",
        );
        Ok(Self {
            limiter: RateLimiter::direct(quota),
            slots: Semaphore::new(concurrency.get()),
            not_before: Mutex::new(None),
            metrics,
        })
    }

    /// Waits until one more request may be sent; the request counts as in flight while the
    /// returned permit lives. The permit is `None` only if the semaphore were closed, which
    /// nothing does: the request then goes out bounded by the rate limiter alone.
    pub(crate) async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.slots.acquire().await.ok();
        loop {
            let until = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
                _ => break,
            }
        }
        let started = Instant::now();
        self.limiter.until_ready().await;
        self.metrics
            .add(LIMITER_WAIT, vec![], started.elapsed().as_secs_f64());
        permit
    }

    /// No request starts before `now + pause`; an earlier pause is extended, never shortened.
    pub(crate) fn pause(&self, pause: Duration) {
        let at = Instant::now() + pause.min(MAX_RETRY_AFTER);
        let mut not_before = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if not_before.is_none_or(|current| current < at) {
            *not_before = Some(at);
        }
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first retry).
    pub(crate) fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

/// `Retry-After` (seconds or an HTTP date, see [`crate::http::retry_after`]), capped at
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::http::retry_after(headers).map(|wait| wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use reqwest::header::HeaderValue;

    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(500),
        cap: Duration::from_secs(30),
    };

    #[test]
    fn backoff_grows_exponentially_under_its_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=12u32 {
            let ceiling = (Duration::from_millis(500) * 2u32.pow(retry - 1)).min(BACKOFF.cap);
            let mut largest = Duration::ZERO;
            for _ in 0..200 {
                let delay = BACKOFF.delay(retry, &mut rng);
                assert!(delay <= ceiling, "retry {retry}: {delay:?} > {ceiling:?}");
                largest = largest.max(delay);
            }
            // 200 uniform draws all landing in the lower half has probability 2^-200.
            assert!(
                largest > ceiling / 2,
                "retry {retry}: jitter never reached the upper half"
            );
        }
    }

    #[test]
    fn backoff_is_deterministic_for_a_seed_and_survives_huge_retry_numbers() {
        let a: Vec<_> = (1..6)
            .map(|n| BACKOFF.delay(n, &mut StdRng::seed_from_u64(1)))
            .collect();
        let b: Vec<_> = (1..6)
            .map(|n| BACKOFF.delay(n, &mut StdRng::seed_from_u64(1)))
            .collect();
        assert_eq!(a, b);
        assert!(BACKOFF.delay(u32::MAX, &mut StdRng::seed_from_u64(1)) <= BACKOFF.cap);
        assert!(BACKOFF.delay(0, &mut StdRng::seed_from_u64(1)) <= BACKOFF.base);
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_what_it_cannot_read() {
        let cases = [
            ("seconds", Some("3"), Some(Duration::from_secs(3))),
            ("fraction", Some("0.5"), Some(Duration::from_millis(500))),
            ("huge", Some("999999"), Some(MAX_RETRY_AFTER)),
            ("negative", Some("-1"), None),
            (
                "http date without the response's Date",
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                None,
            ),
            ("absent", None, None),
        ];
        for (name, value, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(
                    reqwest::header::RETRY_AFTER,
                    HeaderValue::from_static(value),
                );
            }
            assert_eq!(retry_after(&headers), expected, "case {name}");
        }
    }

    #[tokio::test]
    async fn a_pause_holds_back_every_request_until_it_ends() {
        let pacer = Pacer::new(
            1000.0,
            NonZeroU32::MIN,
            NonZeroUsize::MIN.saturating_add(1),
            Arc::new(Metrics::new()),
        )
        .unwrap();
        pacer.pause(Duration::from_millis(200));
        pacer.pause(Duration::from_millis(10)); // a shorter pause must not cut the longer one
        let started = Instant::now();
        drop(pacer.admit().await);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
