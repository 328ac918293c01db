//! What both HTTP clients (the Pluvo client and the HR REST source) read from a response the same
//! way. One parser, so both honour every form of `Retry-After` a server may send.

use std::time::Duration;

use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};

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
    use reqwest::header::HeaderValue;

    use super::*;

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
