//! The one place that reads the wall clock.
//!
//! Everything that depends on time (lifecycle dates, journal timestamps, lease expiry, the
//! schedule) takes a [`Clock`], so tests can pin "now" to a daylight-saving change or to the
//! minute before midnight in Amsterdam without sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that may
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is put; for tests and benchmarks.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Pins the command line's clock, for tests only: an RFC 3339 time such as
/// `2026-11-23T09:00:00Z`. The golden test (`tests/it/golden.rs`) compares `plan --json` byte for
/// byte, and a plan names today and the events of the coming week. Never set it in production:
/// the program would think it is always that moment, so it says so on every start.
pub const PIN_VARIABLE: &str = "PLUVO_SYNC_TEST_NOW";

/// The clock the command line runs on: the system clock, or a [`ManualClock`] at the moment
/// [`PIN_VARIABLE`] names. Only a command that changes nothing may run on a pinned clock
/// (`pinnable`): a sync or a service whose clock stood still would judge leases, end dates and
/// retention wrongly. A value that is not a time, or a pin where none is allowed, is an error, not
/// a silent fallback.
pub fn from_environment(pinnable: bool) -> Result<SharedClock, String> {
    let Some(raw) = std::env::var_os(PIN_VARIABLE) else {
        return Ok(Arc::new(SystemClock));
    };
    let raw = raw.to_string_lossy();
    if !pinnable {
        return Err(format!(
            "{PIN_VARIABLE} is set, and only `plan` may run on a pinned clock (it is for \
             tests); unset it"
        ));
    }
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|error| {
            format!("{PIN_VARIABLE}={raw} is not an RFC 3339 time ({error}); unset it")
        })?
        .with_timezone(&Utc);
    tracing::warn!(
        "the clock is pinned to {} by {PIN_VARIABLE}; that is for tests only",
        timestamp(at)
    );
    Ok(Arc::new(ManualClock::new(at)))
}

/// RFC 3339 with second precision and a `Z`, the format of every timestamp in the database.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
