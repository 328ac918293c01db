//! What both HTTP clients (the Pluvo client and the HR REST source) do the same way: read
//! `Retry-After` from a response, and wait before a retry ([`Backoff`]). One parser, so both
//! honour every form of `Retry-After` a server may send; one backoff, so both spread their
//! retries alike.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};

/// Exponential backoff with full jitter ("AWS full jitter"): the wait before retry `n` is uniform
/// in `[0, min(cap, base * 2^(n-1))]`. Full rather than partial jitter because it spreads the
/// retries of tasks refused together the widest, so they do not wake on the same millisecond
/// and get refused together again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The jitter before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// The wait before retry number `retry`: what the server asked for (`Retry-After`, already
    /// capped by the caller as its policy says), plus [`Backoff::delay`] on top. Never just the
    /// `Retry-After`: tasks refused together would all wake on the same millisecond and be
    /// refused together again.
    pub fn retry_delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        retry_after
            .unwrap_or_default()
            .saturating_add(self.delay(retry, rng))
    }
}

/// `Retry-After` as a wait: delta-seconds (fractions accepted, negative or unreadable values
/// ignored), or an HTTP date measured against the response's own `Date` header, so our clock and
/// its skew against the server's play no part. `None` when absent or unreadable; callers then use
/// their own backoff, and apply their own ceiling.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = headers
        .get(DATE)?
        .to_str()
        .ok()
        .and_then(|date| chrono::DateTime::parse_from_rfc2822(date.trim()).ok())?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
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

    /// The storm's cause: 362 of 432 waits were exactly the 1 s `Retry-After`, so the tasks
    /// refused together retried together. Every wait must honour it, and they must spread.
    #[test]
    fn retries_after_a_retry_after_wait_at_least_that_long_and_spread_beyond_it() {
        let mut rng = StdRng::seed_from_u64(3);
        let asked = Some(Duration::from_secs(1));
        let waits: Vec<Duration> = (0..400)
            .map(|_| BACKOFF.retry_delay(1, asked, &mut rng))
            .collect();
        let (shortest, longest) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*shortest >= Duration::from_secs(1), "{shortest:?}");
        assert!(*longest <= Duration::from_millis(1_500), "{longest:?}");
        let exact = waits.iter().filter(|w| w.as_millis() == 1_000).count();
        assert!(
            exact <= 4,
            "{exact} of 400 waits were exactly the Retry-After"
        );
        assert!(*longest - *shortest > Duration::from_millis(400));
        // Later retries spread wider; without Retry-After the jitter alone remains.
        assert!(BACKOFF.retry_delay(4, asked, &mut rng) <= Duration::from_secs(5));
        assert!(BACKOFF.retry_delay(1, None, &mut rng) <= BACKOFF.base);
        // The caller caps what it honours; here a huge wait only must not overflow.
        assert_eq!(
            BACKOFF.retry_delay(1, Some(Duration::MAX), &mut rng),
            Duration::MAX
        );
    }

    #[test]
    fn retry_after_cases() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let cases = [
            ("seconds", headers(&[("retry-after", "7")]), Some(7_000)),
            ("fraction", headers(&[("retry-after", "0.5")]), Some(500)),
            ("negative", headers(&[("retry-after", "-1")]), None),
            ("not a number", headers(&[("retry-after", "NaN")]), None),
            (
                "http date against the response date",
                headers(&[
                    ("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"),
                    ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ]),
                Some(30_000),
            ),
            (
                "a date in the past means now",
                headers(&[
                    ("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT"),
                    ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ]),
                Some(0),
            ),
            (
                "a date without a Date header is ignored",
                headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")]),
                None,
            ),
            ("garbage", headers(&[("retry-after", "soon")]), None),
            ("absent", headers(&[]), None),
        ];
        for (name, map, millis) in cases {
            assert_eq!(
                retry_after(&map),
                millis.map(Duration::from_millis),
                "case {name}"
            );
        }
    }
}
