//! Who may call the API and how often.
//!
//! Tokens are opaque random strings with an expiry; there is one configured client. The rate
//! limit is a token bucket per client (`rate` per second, `burst` capacity), because Pluvo only
//! says "standard rate limits apply per API client" and a bucket is the usual shape of that.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngCore;

#[derive(Debug, Clone)]
struct Token {
    client_id: String,
    expires_at: Instant,
}

/// Issued access tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    tokens: HashMap<String, Token>,
}

impl Tokens {
    pub fn issue(&mut self, client_id: &str, ttl: Duration, now: Instant) -> String {
        let mut bytes = [0u8; 20];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // Expired tokens are dropped here rather than on a timer: issuing is rare.
        self.tokens.retain(|_, t| t.expires_at > now);
        self.tokens.insert(
            token.clone(),
            Token {
                client_id: client_id.to_owned(),
                expires_at: now + ttl,
            },
        );
        token
    }

    /// The client a live token belongs to.
    pub fn client_of(&self, token: &str, now: Instant) -> Option<&str> {
        self.tokens
            .get(token)
            .filter(|t| t.expires_at > now)
            .map(|t| t.client_id.as_str())
    }

    /// Invalidates every token (to test re-authentication).
    pub fn expire_all(&mut self) {
        self.tokens.clear();
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    level: f64,
    last: Instant,
}

/// Token buckets per client.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// Takes one request's worth from `client`'s bucket, or says how many whole seconds to wait
    /// (rounded up, at least 1, as `Retry-After` needs an integer). `rate <= 0` is unlimited.
    pub fn check(&mut self, client: &str, rate: f64, burst: u32, now: Instant) -> Result<(), u64> {
        if rate <= 0.0 {
            return Ok(());
        }
        let capacity = f64::from(burst.max(1));
        let bucket = self.buckets.entry(client.to_owned()).or_insert(Bucket {
            level: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.level = (bucket.level + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.level >= 1.0 {
            bucket.level -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.level) / rate).ceil();
        // `wait` is a small positive float; the cast cannot truncate meaningfully.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Err((wait as u64).max(1))
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_limits_then_refills() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                limiter.check("c", 1.0, 3, t0),
                Ok(()),
                "request {i} within burst"
            );
        }
        assert_eq!(limiter.check("c", 1.0, 3, t0), Err(1));
        assert_eq!(
            limiter.check("other", 1.0, 3, t0),
            Ok(()),
            "buckets are per client"
        );
        assert_eq!(
            limiter.check("c", 1.0, 3, t0 + Duration::from_millis(1100)),
            Ok(())
        );
        assert_eq!(limiter.check("slow", 0.25, 1, t0), Ok(()));
        assert_eq!(
            limiter.check("slow", 0.25, 1, t0),
            Err(4),
            "retry-after rounds up"
        );
        assert_eq!(limiter.check("free", 0.0, 0, t0), Ok(()));
    }

    #[test]
    fn tokens_expire_and_can_be_revoked() {
        let mut tokens = Tokens::default();
        let t0 = Instant::now();
        let token = tokens.issue("pluvo-sync", Duration::from_secs(10), t0);
        assert_eq!(tokens.client_of(&token, t0), Some("pluvo-sync"));
        assert_eq!(tokens.client_of(&token, t0 + Duration::from_secs(10)), None);
        assert_eq!(tokens.client_of("made-up", t0), None);
        tokens.expire_all();
        assert_eq!(tokens.client_of(&token, t0), None);
    }
}
