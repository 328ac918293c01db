//! The run lease: at most one run at a time, across processes sharing one SQLite file.
//!
//! A **lease** is a row in `run_lease` naming its **owner** (`host:pid:random`, new for every
//! acquisition), the run it is for, when it was taken and when it **expires**. Taking it is one
//! atomic `INSERT … ON CONFLICT DO UPDATE … WHERE expires_at <= now`: SQLite serialises writers
//! across processes, so of two takers exactly one sees a changed row. While held, a
//! **heartbeat** pushes the expiry forward every third of the TTL; a holder that crashes or
//! hangs stops renewing, and once its expiry passes the next taker steals the row. So a dead
//! daemon blocks runs for at most one TTL, never forever.
//!
//! Renewal and release are conditional on the owner, so a holder that lost its lease (it stalled
//! past the expiry and someone else took over) can neither extend nor delete the new holder's.
//! Renewal is also conditional on the lease not having lapsed: once its expiry has passed,
//! another process may already be taking it, so a holder never revives a lapsed lease.
//! It learns of the loss through [`LeaseGuard::lost`] and should stop its run.
//!
//! The heartbeat only notices a loss when it next runs, and a process that was paused (SIGSTOP,
//! a frozen VM, a laptop lid) resumes everything at once: calls waiting to be sent may go before
//! the heartbeat gets a turn. So a holder also has a [`LeaseFence`], asked right before every
//! request: it compares the clock with the last expiry written, without touching the database,
//! and once that has (nearly) passed it counts the lease as lost and refuses.
//!
//! Cross-process use needs a file database opened with a busy timeout (sqlx's default is 5 s)
//! and preferably WAL, so readers do not block the heartbeat.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, timestamp};

/// The one lease that guards runs of the pipeline.
pub const RUN_LEASE: &str = "run";

/// The default time-to-live: how long a crashed holder can block the next run.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// A named lease in one database.
#[derive(Clone)]
pub struct Lease {
    pool: SqlitePool,
    name: String,
    ttl: Duration,
    clock: SharedClock,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Who holds a lease, for messages like "a run is in progress: held by …".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseHolder {
    pub owner: String,
    pub run_id: Option<String>,
    pub acquired_at: String,
    pub expires_at: String,
}

impl LeaseHolder {
    /// `host:pid` of the owner, without the random part that only tells acquisitions apart.
    pub fn host_pid(&self) -> &str {
        match self.owner.rsplit_once(':') {
            Some((host_pid, _random)) if host_pid.contains(':') => host_pid,
            _ => &self.owner,
        }
    }
}

impl fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "held by {}", self.host_pid())?;
        if let Some(run_id) = &self.run_id {
            write!(f, " for run {run_id}")?;
        }
        write!(
            f,
            " since {}, expires {}",
            self.acquired_at, self.expires_at
        )
    }
}

/// A fresh owner id: `host:pid:random`.
pub fn new_owner() -> String {
    format!(
        "{}:{}:{:08x}",
        hostname(),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// True when `owner` (`host:pid:random`) names this host and a process id that does not exist.
/// Linux only (`/proc`); elsewhere nobody is presumed dead.
fn holder_is_dead_here(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(_random), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == hostname()
        && pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

fn hostname() -> String {
    // Linux (and so the container) exposes it here; HOSTNAME covers shells elsewhere.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().replace(':', "_"))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

impl Lease {
    pub fn new(
        pool: SqlitePool,
        name: impl Into<String>,
        ttl: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            pool,
            name: name.into(),
            ttl,
            clock,
        }
    }

    /// The run lease with the default TTL.
    pub fn for_runs(pool: SqlitePool, clock: SharedClock) -> Self {
        Self::new(pool, RUN_LEASE, DEFAULT_TTL, clock)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // A TTL too large for chrono is a configuration mistake; capping keeps it a long lease.
        now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(365))
    }

    /// Takes the lease for `run_id` if it is free or expired; `None` while someone else holds it.
    /// The returned guard renews the lease in the background until released or dropped.
    pub async fn try_acquire(&self, run_id: &str) -> Result<Option<LeaseGuard>, sqlx::Error> {
        let owner = new_owner();
        let now = self.clock.now();
        let taken = sqlx::query(
            "INSERT INTO run_lease (name, owner, run_id, acquired_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO UPDATE SET
                 owner = excluded.owner,
                 run_id = excluded.run_id,
                 acquired_at = excluded.acquired_at,
                 expires_at = excluded.expires_at
             WHERE run_lease.expires_at <= excluded.acquired_at",
        )
        .bind(&self.name)
        .bind(&owner)
        .bind(run_id)
        .bind(timestamp(now))
        .bind(timestamp(self.expiry(now)))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if !taken {
            return self.take_from_dead_holder(run_id, owner, now).await;
        }
        tracing::debug!(lease = %self.name, %owner, run_id, "lease acquired");
        Ok(Some(LeaseGuard::start(
            self.clone(),
            owner,
            self.expiry(now),
        )))
    }

    /// A holder on this host whose process no longer exists (killed with SIGKILL, say) cannot be
    /// running anything: take its lease now instead of making everyone wait for the expiry. A
    /// holder on another host (another container sharing the volume) is left to its expiry, as
    /// its liveness cannot be seen from here.
    async fn take_from_dead_holder(
        &self,
        run_id: &str,
        owner: String,
        now: DateTime<Utc>,
    ) -> Result<Option<LeaseGuard>, sqlx::Error> {
        let Some(holder) = self.holder().await? else {
            return Ok(None);
        };
        if !holder_is_dead_here(&holder.owner) {
            return Ok(None);
        }
        let taken = sqlx::query(
            "UPDATE run_lease SET owner = ?1, run_id = ?2, acquired_at = ?3, expires_at = ?4
             WHERE name = ?5 AND owner = ?6",
        )
        .bind(&owner)
        .bind(run_id)
        .bind(timestamp(now))
        .bind(timestamp(self.expiry(now)))
        .bind(&self.name)
        .bind(&holder.owner)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if !taken {
            return Ok(None);
        }
        tracing::warn!(lease = %self.name, previous = %holder.owner, "took over the lease of a process that no longer exists");
        Ok(Some(LeaseGuard::start(
            self.clone(),
            owner,
            self.expiry(now),
        )))
    }

    /// Like [`Lease::try_acquire`], but polls every `poll` until the lease is free. `None` when
    /// `cancel` fires first.
    pub async fn acquire_waiting(
        &self,
        run_id: &str,
        poll: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<LeaseGuard>, sqlx::Error> {
        loop {
            if let Some(guard) = self.try_acquire(run_id).await? {
                return Ok(Some(guard));
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Who holds the lease now; `None` when it is free or its holder's expiry has passed.
    pub async fn holder(&self) -> Result<Option<LeaseHolder>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT owner, run_id, acquired_at, expires_at FROM run_lease
             WHERE name = ?1 AND expires_at > ?2",
        )
        .bind(&self.name)
        .bind(timestamp(self.clock.now()))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(LeaseHolder {
                owner: row.try_get("owner")?,
                run_id: row.try_get("run_id")?,
                acquired_at: row.try_get("acquired_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Pushes the expiry forward; the new expiry, or `None` when `owner` no longer holds the
    /// lease or it has lapsed (its expiry passed, so another process may be taking it over).
    async fn renew(&self, owner: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let now = self.clock.now();
        let expires = self.expiry(now);
        let renewed = sqlx::query(
            "UPDATE run_lease SET expires_at = ?3 WHERE name = ?1 AND owner = ?2 AND expires_at > ?4",
        )
        .bind(&self.name)
        .bind(owner)
        .bind(timestamp(expires))
        .bind(timestamp(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((renewed == 1).then_some(expires))
    }

    /// Deletes the row if `owner` still holds it; false when someone else does (or nobody).
    async fn release_as(&self, owner: &str) -> Result<bool, sqlx::Error> {
        let deleted = sqlx::query("DELETE FROM run_lease WHERE name = ?1 AND owner = ?2")
            .bind(&self.name)
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }
}

/// A held lease. Renews itself every TTL/3 until [`LeaseGuard::release`]d; dropping it without
/// releasing stops the heartbeat and releases in the background when a runtime is available, and
/// otherwise leaves the row to expire.
pub struct LeaseGuard {
    lease: Lease,
    owner: String,
    stop: CancellationToken,
    lost: CancellationToken,
    /// The last expiry written, in whole seconds since the epoch (the database's precision).
    expires: Arc<AtomicI64>,
    heartbeat: Option<JoinHandle<()>>,
    released: bool,
}

impl fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("lease", &self.lease.name)
            .field("owner", &self.owner)
            .field("lost", &self.lost.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl LeaseGuard {
    fn start(lease: Lease, owner: String, expires: DateTime<Utc>) -> Self {
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let written = Arc::new(AtomicI64::new(expires.timestamp()));
        let heartbeat = tokio::spawn(heartbeat(
            lease.clone(),
            owner.clone(),
            written.clone(),
            stop.clone(),
            lost.clone(),
        ));
        Self {
            lease,
            owner,
            stop,
            lost,
            expires: written,
            heartbeat: Some(heartbeat),
            released: false,
        }
    }

    /// The check to make right before sending anything on this lease's behalf.
    pub fn fence(&self) -> LeaseFence {
        LeaseFence {
            name: self.lease.name.clone(),
            clock: self.lease.clock.clone(),
            expires: self.expires.clone(),
            margin: fence_margin(self.lease.ttl),
            lost: self.lost.clone(),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Cancelled when a renewal finds that someone else took the lease over; the run should stop,
    /// since another run may now be working on the same people.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Renews now rather than waiting for the heartbeat; false when the lease was lost.
    pub async fn renew(&self) -> Result<bool, sqlx::Error> {
        match self.lease.renew(&self.owner).await? {
            Some(expires) => {
                self.expires.store(expires.timestamp(), Ordering::SeqCst);
                Ok(true)
            }
            None => {
                self.lost.cancel();
                Ok(false)
            }
        }
    }

    /// Stops the heartbeat and deletes the row if we still own it; false when we no longer did.
    pub async fn release(mut self) -> Result<bool, sqlx::Error> {
        self.stop.cancel();
        if let Some(heartbeat) = self.heartbeat.take() {
            // The heartbeat only ends by itself on a lost lease; a panic there is not ours to
            // re-raise while releasing.
            let _ = heartbeat.await;
        }
        self.released = true;
        self.lease.release_as(&self.owner).await
    }
}

/// The engine's view of the lease: its fence before every request, its loss as a stop.
impl crate::sync::guard::RunGuard for LeaseGuard {
    fn send_fence(&self) -> crate::pluvo::SendFence {
        let fence = self.fence();
        Arc::new(move || fence.holds())
    }

    fn lost(&self) -> CancellationToken {
        LeaseGuard::lost(self)
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let lease = self.lease.clone();
            let owner = std::mem::take(&mut self.owner);
            runtime.spawn(async move {
                if let Err(error) = lease.release_as(&owner).await {
                    tracing::warn!(lease = %lease.name, %error, "could not release a dropped lease; it will expire");
                }
            });
        }
    }
}

/// How long before the written expiry a holder stops sending: requests take a moment to reach
/// Pluvo, and clocks of hosts sharing the database differ a little. A tenth of the TTL (6 s for
/// the default) is far inside the two thirds of a TTL a healthy heartbeat always leaves.
fn fence_margin(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl / 10).unwrap_or(chrono::Duration::MAX)
}

/// Asked right before every request made under a lease: is it still surely ours? Cheap (no
/// database), so it can guard each send. It says no once the heartbeat found the lease lost, or
/// once the clock is within a margin of the last expiry written, which is what a process sees
/// when it resumes after being paused past its lease; it then marks the lease lost, so the run
/// stops the way a shutdown stops it.
#[derive(Clone)]
pub struct LeaseFence {
    name: String,
    clock: SharedClock,
    expires: Arc<AtomicI64>,
    margin: chrono::Duration,
    lost: CancellationToken,
}

impl fmt::Debug for LeaseFence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseFence")
            .field("lease", &self.name)
            .field("expires", &self.expires.load(Ordering::SeqCst))
            .field("lost", &self.lost.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl LeaseFence {
    /// True while the lease is surely still held; false from the moment it may not be.
    pub fn holds(&self) -> bool {
        if self.lost.is_cancelled() {
            return false;
        }
        let expires = self.expires.load(Ordering::SeqCst);
        let deadline = DateTime::from_timestamp(expires, 0)
            .map_or(DateTime::<Utc>::MIN_UTC, |at| at - self.margin);
        if self.clock.now() < deadline {
            return true;
        }
        if !self.lost.is_cancelled() {
            self.lost.cancel();
            tracing::error!(lease = %self.name, expires, "the lease ran out before it was renewed (was this process paused?); stopping the run");
        }
        false
    }
}

/// Renews every TTL/3. A renewal that fails (a busy or unreachable database) is retried on the
/// next tick, but only while the lease is surely still ours: once the next tick would come after
/// the last expiry that was written, another process may take the lease over before we can
/// renew, so the run is told it lost the lease rather than carry on beside a new holder.
async fn heartbeat(
    lease: Lease,
    owner: String,
    written: Arc<AtomicI64>,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let period = (lease.ttl / 3).max(Duration::from_millis(10));
    let margin = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if lost.is_cancelled() {
            // The fence found the lease lapsed; reviving it would be too late.
            return;
        }
        let expires = DateTime::from_timestamp(written.load(Ordering::SeqCst), 0)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        match lease.renew(&owner).await {
            Ok(Some(renewed)) => written.store(renewed.timestamp(), Ordering::SeqCst),
            Ok(None) => {
                tracing::error!(lease = %lease.name, %owner, "lease lost to another holder, or lapsed while this process was stalled; stopping the run");
                lost.cancel();
                return;
            }
            // A busy or briefly unreachable database: the next tick retries, and the TTL is three
            // periods long, so one failed renewal does not cost the lease. Failing until the
            // expiry is near does.
            Err(error) if lease.clock.now() + margin < expires => {
                tracing::warn!(lease = %lease.name, %error, "could not renew lease");
            }
            Err(error) => {
                tracing::error!(lease = %lease.name, %owner, %error, %expires, "could not renew the lease before it expires; stopping the run, as another process may take it over");
                lost.cancel();
                return;
            }
        }
    }
}

/// Test helpers shared by the service modules' tests: a migrated SQLite file opened the way the
/// daemon opens it.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;
    use std::str::FromStr;

    use sqlx::SqlitePool;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    pub(crate) async fn open(path: &Path) -> SqlitePool {
        open_with(path, true).await
    }

    pub(crate) async fn open_with(path: &Path, foreign_keys: bool) -> SqlitePool {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .expect("sqlite url")
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5))
            .foreign_keys(foreign_keys);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("open test database");
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .expect("migrate test database");
        pool
    }

    /// A fresh migrated database in a temp dir that lives as long as the returned guard.
    pub(crate) async fn fresh() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = open(&dir.path().join("pluvo-sync.db")).await;
        (dir, pool)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    fn manual() -> ManualClock {
        ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap())
    }

    /// A fresh database and a 60 s run lease on a manual clock.
    async fn minute_lease() -> (tempfile::TempDir, SqlitePool, ManualClock, Lease) {
        let (dir, pool) = testing::fresh().await;
        let clock = manual();
        let lease = Lease::new(
            pool.clone(),
            RUN_LEASE,
            Duration::from_secs(60),
            Arc::new(clock.clone()),
        );
        (dir, pool, clock, lease)
    }

    async fn row_owner(pool: &SqlitePool) -> Option<String> {
        sqlx::query_scalar("SELECT owner FROM run_lease WHERE name = 'run'")
            .fetch_optional(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn of_two_takers_on_separate_pools_exactly_one_wins() {
        let (dir, pool_a) = testing::fresh().await;
        // A second pool on the same file stands in for a second process.
        let pool_b = testing::open(&dir.path().join("pluvo-sync.db")).await;
        let clock: SharedClock = Arc::new(SystemClock);
        let a = Lease::for_runs(pool_a.clone(), clock.clone());
        let b = Lease::for_runs(pool_b, clock);

        let (got_a, got_b) = tokio::join!(a.try_acquire("run-a"), b.try_acquire("run-b"));
        let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
        assert!(
            got_a.is_some() != got_b.is_some(),
            "exactly one must win: a={got_a:?} b={got_b:?}"
        );
        let winner = got_a.as_ref().or(got_b.as_ref()).unwrap();
        assert_eq!(row_owner(&pool_a).await.as_deref(), Some(winner.owner()));

        // The loser sees who holds it.
        let holder = a.holder().await.unwrap().expect("held");
        assert_eq!(holder.owner, winner.owner());
        assert!(
            holder.run_id.as_deref() == Some("run-a") || holder.run_id.as_deref() == Some("run-b")
        );

        // Once released, the other side can take it.
        let winner = got_a.or(got_b).unwrap();
        assert!(winner.release().await.unwrap());
        assert!(a.holder().await.unwrap().is_none());
        assert!(b.try_acquire("run-c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_lease_whose_holder_died_on_this_host_is_taken_at_once() {
        let (_dir, pool) = testing::fresh().await;
        let clock: SharedClock = Arc::new(SystemClock);
        let until = timestamp(clock.now() + chrono::Duration::minutes(5));
        // No process can have this id: it is above Linux's pid_max.
        let cases = [
            (
                "dead here",
                format!("{}:999999999:0000dead", hostname()),
                true,
            ),
            (
                "another host",
                "some-other-host:999999999:0000dead".to_owned(),
                false,
            ),
            ("alive here", new_owner(), false),
        ];
        for (name, owner, taken) in cases {
            sqlx::query("DELETE FROM run_lease")
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO run_lease (name, owner, run_id, acquired_at, expires_at) VALUES ('run', ?1, 'old', ?2, ?3)",
            )
            .bind(&owner)
            .bind(timestamp(clock.now()))
            .bind(&until)
            .execute(&pool)
            .await
            .unwrap();
            let guard = Lease::for_runs(pool.clone(), clock.clone())
                .try_acquire("new")
                .await
                .unwrap();
            assert_eq!(guard.is_some(), taken, "case {name}");
            if let Some(guard) = guard {
                guard.release().await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn an_expired_lease_is_stolen_and_the_old_holder_learns_it_lost() {
        let (_dir, pool, clock, lease) = minute_lease().await;

        let first = lease
            .try_acquire("run-1")
            .await
            .unwrap()
            .expect("free lease");
        clock.advance(chrono::Duration::seconds(59));
        assert!(
            lease.try_acquire("run-2").await.unwrap().is_none(),
            "still valid at 59 s"
        );

        clock.advance(chrono::Duration::seconds(1));
        let second = lease
            .try_acquire("run-2")
            .await
            .unwrap()
            .expect("expired at 60 s");
        assert_ne!(first.owner(), second.owner());
        assert_eq!(row_owner(&pool).await.as_deref(), Some(second.owner()));

        assert!(!first.renew().await.unwrap(), "the old holder cannot renew");
        assert!(first.lost().is_cancelled());
        assert!(
            !first.release().await.unwrap(),
            "nor delete the new holder's row"
        );
        assert_eq!(row_owner(&pool).await.as_deref(), Some(second.owner()));
        assert!(!second.lost().is_cancelled());
        assert!(second.release().await.unwrap());
        assert_eq!(row_owner(&pool).await, None);
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_not_revived_by_its_holder() {
        let (_dir, _pool, clock, lease) = minute_lease().await;
        let guard = lease.try_acquire("run-1").await.unwrap().unwrap();
        // Paused past the expiry; nobody has taken the lease yet, but anyone could be doing so.
        clock.advance(chrono::Duration::seconds(61));
        assert!(!guard.renew().await.unwrap(), "a lapsed lease stays lapsed");
        assert!(guard.lost().is_cancelled());
        assert!(lease.try_acquire("run-2").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_fence_says_no_from_just_before_the_written_expiry() {
        let (_dir, _pool, clock, lease) = minute_lease().await;
        let guard = lease.try_acquire("run-1").await.unwrap().unwrap();
        let fence = guard.fence();
        // Named cases, in clock order: seconds after acquiring, and whether sends may go.
        let cases = [
            ("fresh", 0, true),
            ("before the margin", 53, true),
            ("inside the 6 s margin", 54, false),
            ("and after it, whatever the clock does", -54, false),
        ];
        for (name, advance, holds) in cases {
            clock.advance(chrono::Duration::seconds(advance));
            assert_eq!(fence.holds(), holds, "case {name}");
        }
        assert!(
            guard.lost().is_cancelled(),
            "the fence marks the lease lost"
        );

        // A renewal moves the fence's deadline with the expiry.
        let other = lease_after_release(guard, &lease).await;
        let fence = other.fence();
        clock.advance(chrono::Duration::seconds(50));
        assert!(other.renew().await.unwrap());
        clock.advance(chrono::Duration::seconds(50));
        assert!(fence.holds(), "renewed at +50 s, so held at +100 s");
    }

    async fn lease_after_release(guard: LeaseGuard, lease: &Lease) -> LeaseGuard {
        guard.release().await.unwrap();
        lease.try_acquire("run-2").await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn release_by_a_non_owner_does_nothing() {
        let (_dir, pool) = testing::fresh().await;
        let lease = Lease::for_runs(pool.clone(), Arc::new(manual()));
        let guard = lease.try_acquire("run-1").await.unwrap().unwrap();
        assert!(!lease.release_as("otherhost:1:deadbeef").await.unwrap());
        assert_eq!(row_owner(&pool).await.as_deref(), Some(guard.owner()));
        assert!(lease.try_acquire("run-2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_heartbeat_keeps_a_held_lease_alive_past_its_ttl() {
        let (_dir, pool) = testing::fresh().await;
        let clock = manual();
        let lease = Lease::new(
            pool.clone(),
            RUN_LEASE,
            Duration::from_secs(3),
            Arc::new(clock.clone()),
        );
        let guard = lease.try_acquire("run-1").await.unwrap().unwrap();
        let mut expiry = lease.holder().await.unwrap().unwrap().expires_at;

        // Twice: move the clock most of the way to the expiry, then give the heartbeat (every
        // TTL/3 = 1 s of real time) a chance to push it forward again; four seconds in all.
        for round in 1..=2 {
            clock.advance(chrono::Duration::seconds(2));
            let mut renewed = None;
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let held = lease.holder().await.unwrap();
                if let Some(holder) = held.filter(|holder| holder.expires_at > expiry) {
                    renewed = Some(holder.expires_at);
                    break;
                }
            }
            expiry = renewed.unwrap_or_else(|| panic!("round {round}: no renewal"));
        }
        assert!(lease.try_acquire("run-2").await.unwrap().is_none());
        guard.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_dropped_guard_releases_in_the_background() {
        let (_dir, pool) = testing::fresh().await;
        let lease = Lease::for_runs(pool.clone(), Arc::new(manual()));
        drop(lease.try_acquire("run-1").await.unwrap().unwrap());
        let mut freed = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if row_owner(&pool).await.is_none() {
                freed = true;
                break;
            }
        }
        assert!(freed);
    }

    #[tokio::test]
    async fn acquire_waiting_gets_the_lease_once_freed_or_gives_up_on_cancel() {
        let (_dir, pool) = testing::fresh().await;
        let lease = Lease::for_runs(pool, Arc::new(SystemClock));
        let held = lease.try_acquire("run-1").await.unwrap().unwrap();

        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(
            lease
                .acquire_waiting("run-2", Duration::from_millis(10), &cancel)
                .await
                .unwrap()
                .is_none()
        );

        let waiter = {
            let lease = lease.clone();
            tokio::spawn(async move {
                lease
                    .acquire_waiting(
                        "run-2",
                        Duration::from_millis(10),
                        &CancellationToken::new(),
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "must wait while the lease is held");
        held.release().await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter finishes")
            .unwrap()
            .unwrap()
            .expect("acquired");
        assert_eq!(
            lease.holder().await.unwrap().unwrap().run_id.as_deref(),
            Some("run-2")
        );
        got.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_holder_that_cannot_renew_gives_up_before_its_lease_can_be_taken() {
        let (dir, pool_a) = testing::fresh().await;
        let pool_b = testing::open(&dir.path().join("pluvo-sync.db")).await;
        let clock = manual();
        let ttl = Duration::from_millis(300);
        let a = Lease::new(pool_a.clone(), RUN_LEASE, ttl, Arc::new(clock.clone()));
        let b = Lease::new(pool_b, RUN_LEASE, ttl, Arc::new(clock.clone()));
        let guard = a.try_acquire("run-a").await.unwrap().expect("free lease");
        // A's database goes away (a broken volume, a locked file): every renewal fails.
        pool_a.close().await;
        clock.advance(chrono::Duration::seconds(1));
        // B may now take the lease over; A must have stopped believing it holds it.
        assert!(b.try_acquire("run-b").await.unwrap().is_some());
        tokio::time::timeout(Duration::from_secs(5), guard.lost().cancelled())
            .await
            .expect("a holder whose renewals fail past its expiry must count the lease as lost");
    }

    #[test]
    fn holder_messages_name_host_and_pid() {
        let holder = LeaseHolder {
            owner: "box-1:4242:0badcafe".into(),
            run_id: Some("r-9".into()),
            acquired_at: "2026-03-01T12:00:00Z".into(),
            expires_at: "2026-03-01T12:01:00Z".into(),
        };
        assert_eq!(
            holder.to_string(),
            "held by box-1:4242 for run r-9 since 2026-03-01T12:00:00Z, expires 2026-03-01T12:01:00Z"
        );
        let owner = new_owner();
        let parts: Vec<&str> = owner.split(':').collect();
        assert_eq!(parts.len(), 3, "{owner}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert_ne!(new_owner(), owner, "each acquisition gets its own owner id");
    }
}
