//! When runs start in `pluvo-sync run`: a dumb loop around one testable tick.
//!
//! The words:
//! - A [`Launcher`] starts one run of the pipeline in the background if none is in progress (it
//!   takes the run lease); the engine implements it. Everything that starts runs in the daemon,
//!   the schedule and `POST /v1/sync` alike, goes through one.
//! - [`Runs`] wraps the launcher for the daemon: it hands every run a child of one cancellation
//!   token and keeps track of runs in flight, so shutdown can stop them all and wait for them.
//! - A **fire** is an instant the [`Schedule`] names. [`Scheduler::tick`] decides, for a given
//!   "now", whether a fire is due and what came of it (started, or skipped because a run is in
//!   progress). [`run_scheduler`] only waits for the next fire and calls `tick`; tests call
//!   `tick` with a [`crate::clock::ManualClock`]'s instants instead of sleeping.
//!
//! The waiting is done by tokio-cron-scheduler's `JobScheduler`, as one-shot jobs at the instants
//! our [`Schedule`] computes. Its own cron-with-time-zone jobs are not used: `Job::new_async_tz`
//! freezes the zone's UTC offset when the job is created (tokio-cron-scheduler 0.15.1,
//! `src/job/mod.rs`), so a job made in winter for 02:00 Amsterdam would run at 03:00 all summer.
//! [`Schedule`] computes every fire in the zone itself and is tested across both changes.
//!
//! Overlap policy: a fire that finds a run in progress is **skipped**, logged and counted
//! (`pluvo_sync_scheduled_runs_skipped_total{reason="busy"}`), not queued: the run in progress
//! already reads the latest export. A fire missed while the process was suspended runs once, late,
//! when the loop wakes; the fires in between are not made up.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, timestamp};
use crate::domain::{RunStatus, Trigger};
use crate::metrics::{Metrics, names};
use crate::service::lease::LeaseHolder;
use crate::service::schedule::Schedule;

/// A boxed, sendable future, so [`Launcher`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A run that has started: its id (the journal key) and its completion.
#[derive(Debug)]
pub struct Launched {
    pub run_id: String,
    pub done: JoinHandle<RunStatus>,
}

/// Why no run was started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Another run holds the lease, in this process or another. `holder` is `None` when the
    /// lease was released between the failed take and the look-up.
    #[error("a run is in progress{}", holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    Busy { holder: Option<LeaseHolder> },
    /// The daemon is shutting down and starts no more runs.
    #[error("shutting down; no new runs are started")]
    ShuttingDown,
    /// The run could not be started at all (the database is unreachable, …).
    #[error("could not start a run: {0:#}")]
    Failed(anyhow::Error),
}

/// Starts runs of the pipeline; implemented by the engine.
pub trait Launcher: Send + Sync + 'static {
    /// Takes the run lease and starts a run in the background, returning once the run has an id
    /// (its `runs` row exists). Returns [`LaunchError::Busy`] without waiting when the lease is
    /// held.
    ///
    /// When `cancel` fires the run starts no new operations, lets requests in flight finish,
    /// journals itself `aborted` with what remained, releases the lease and completes `done`.
    fn launch(
        &self,
        trigger: Trigger,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Launched, LaunchError>>;
}

/// The daemon's handle on its runs: one launcher, one cancellation token, and the runs in flight.
#[derive(Clone)]
pub struct Runs {
    launcher: Arc<dyn Launcher>,
    cancel: CancellationToken,
    in_flight: Arc<Mutex<JoinSet<()>>>,
    /// Ids of the runs in flight, so that shutdown can close in the journal any it gives up on.
    running: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs")
            .field("stopping", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// What [`Runs::stop`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// Runs that finished within the grace period.
    pub finished: usize,
    /// True when the grace period ran out with runs still in flight.
    pub timed_out: bool,
    /// The runs still in flight when it did.
    pub unfinished: Vec<String>,
}

impl Runs {
    pub fn new(launcher: Arc<dyn Launcher>) -> Self {
        Self {
            launcher,
            cancel: CancellationToken::new(),
            in_flight: Arc::new(Mutex::new(JoinSet::new())),
            running: Arc::default(),
        }
    }

    /// Starts a run unless one is in progress or the daemon is stopping; returns its id.
    pub async fn start(&self, trigger: Trigger) -> Result<String, LaunchError> {
        if self.cancel.is_cancelled() {
            return Err(LaunchError::ShuttingDown);
        }
        let Launched { run_id, done } = self
            .launcher
            .launch(trigger, self.cancel.child_token())
            .await?;
        let id = run_id.clone();
        let running = self.running.clone();
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .spawn(async move {
                let ended = done.await;
                running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                match ended {
                    Ok(status) => tracing::info!(run_id = %id, %trigger, %status, "run finished"),
                    Err(error) => {
                        tracing::error!(run_id = %id, %trigger, %error, "run task ended abnormally")
                    }
                }
            });
        Ok(run_id)
    }

    /// True once [`Runs::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Cancels every run in flight and waits up to `grace` for them to finish.
    pub async fn stop(&self, grace: Duration) -> StopReport {
        self.cancel.cancel();
        let mut in_flight =
            std::mem::take(&mut *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()));
        let mut finished = 0;
        let all_done = tokio::time::timeout(grace, async {
            while in_flight.join_next().await.is_some() {
                finished += 1;
            }
        })
        .await;
        let unfinished = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        StopReport {
            finished,
            timed_out: all_done.is_err(),
            unfinished,
        }
    }
}

/// What one [`Scheduler::tick`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// No fire due yet.
    Idle { next: DateTime<Utc> },
    /// A fire was due and started a run.
    Started { fire: DateTime<Utc>, run_id: String },
    /// A fire was due but started no run.
    Skipped { fire: DateTime<Utc>, reason: String },
    /// The schedule never fires again.
    Exhausted,
}

/// The decision half of the scheduler: which fire is next, and what to do when it is due.
#[derive(Debug)]
pub struct Scheduler {
    schedule: Schedule,
    runs: Runs,
    metrics: Arc<Metrics>,
    next: Option<DateTime<Utc>>,
}

impl Scheduler {
    /// A scheduler whose first fire is the schedule's first after `now`.
    pub fn new(schedule: Schedule, runs: Runs, metrics: Arc<Metrics>, now: DateTime<Utc>) -> Self {
        let next = schedule.next_after(now);
        Self {
            schedule,
            runs,
            metrics,
            next,
        }
    }

    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// Starts a run if a fire is due at `now`; either way, moves on to the next fire after `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Tick {
        let Some(fire) = self.next else {
            return Tick::Exhausted;
        };
        if now < fire {
            return Tick::Idle { next: fire };
        }
        // From `now`, not `fire`: after a suspension we run once, late, rather than once per
        // missed fire.
        self.next = self.schedule.next_after(now);
        let next = self.next.map(timestamp).unwrap_or_else(|| "never".into());
        let late_by = (now - fire).num_seconds();
        match self.runs.start(Trigger::Schedule).await {
            Ok(run_id) => {
                tracing::info!(%run_id, fire = %timestamp(fire), late_by, %next, "scheduled run started");
                Tick::Started { fire, run_id }
            }
            Err(error) => {
                let reason = match &error {
                    LaunchError::Busy { .. } => "busy",
                    LaunchError::ShuttingDown => "shutting_down",
                    LaunchError::Failed(_) => "error",
                };
                self.metrics.inc(
                    names::SCHEDULED_RUNS_SKIPPED_TOTAL,
                    vec![("reason", reason.to_owned())],
                );
                if matches!(error, LaunchError::Failed(_)) {
                    tracing::error!(fire = %timestamp(fire), reason, %error, %next, "scheduled run skipped");
                } else {
                    tracing::warn!(fire = %timestamp(fire), reason, %error, %next, "scheduled run skipped");
                }
                Tick::Skipped {
                    fire,
                    reason: error.to_string(),
                }
            }
        }
    }
}

/// The longest nap between looks at the clock, so a wall-clock jump (NTP, suspend) delays a fire
/// by at most this much.
const MAX_NAP: Duration = Duration::from_secs(30);

/// Runs `run_on_start`, then sleeps until each fire and ticks, until `shutdown` fires.
pub async fn run_scheduler(
    schedule: Schedule,
    runs: Runs,
    clock: SharedClock,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) {
    if schedule.run_on_start() {
        match runs.start(Trigger::Startup).await {
            Ok(run_id) => tracing::info!(%run_id, "start-up run started"),
            Err(error) => tracing::warn!(%error, "start-up run not started"),
        }
    }
    let mut scheduler = Scheduler::new(schedule, runs, metrics, clock.now());
    match scheduler.next_fire() {
        Some(next) => tracing::info!(
            cron = scheduler.schedule.expression(),
            zone = scheduler.schedule.zone().name(),
            next = %timestamp(next),
            "scheduler started"
        ),
        None => tracing::warn!(
            cron = scheduler.schedule.expression(),
            "the schedule never fires again; only manual runs will happen"
        ),
    }
    let mut timer = Timer::start().await;
    loop {
        let Some(next) = scheduler.next_fire() else {
            shutdown.cancelled().await;
            break;
        };
        let wait = (next - clock.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = timer.wait(wait.min(MAX_NAP)) => {}
        }
        scheduler.tick(clock.now()).await;
    }
    timer.stop().await;
    tracing::info!("scheduler stopped");
}

/// Wakes the scheduler loop: a one-shot tokio-cron-scheduler job per wait. Should the job
/// scheduler fail to start, a plain tokio sleep does the same job, so a scheduling library problem
/// never stops nightly syncs.
struct Timer {
    jobs: Option<tokio_cron_scheduler::JobScheduler>,
}

impl Timer {
    async fn start() -> Self {
        let jobs = match tokio_cron_scheduler::JobScheduler::new().await {
            Ok(jobs) => match jobs.start().await {
                Ok(()) => Some(jobs),
                Err(error) => {
                    tracing::warn!(%error, "job scheduler did not start; using plain timers");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "job scheduler did not start; using plain timers");
                None
            }
        };
        Self { jobs }
    }

    async fn wait(&mut self, wait: Duration) {
        let Some(jobs) = &self.jobs else {
            return tokio::time::sleep(wait).await;
        };
        let (fired, woken) = tokio::sync::oneshot::channel::<()>();
        let fired = Arc::new(Mutex::new(Some(fired)));
        let job = tokio_cron_scheduler::Job::new_one_shot_at_instant_async(
            std::time::Instant::now() + wait,
            move |_, _| {
                let fired = fired.lock().unwrap_or_else(|p| p.into_inner()).take();
                Box::pin(async move {
                    if let Some(fired) = fired {
                        let _ = fired.send(());
                    }
                })
            },
        );
        let added = match job {
            Ok(job) => jobs.add(job).await,
            Err(error) => Err(error),
        };
        match added {
            // Dropping this future (shutdown) drops `woken`; the one-shot job then fires into a
            // closed channel and is gone.
            Ok(_) => {
                let _ = woken.await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot schedule the next wake-up; using a plain timer");
                tokio::time::sleep(wait).await;
            }
        }
    }

    async fn stop(self) {
        if let Some(mut jobs) = self.jobs
            && let Err(error) = jobs.shutdown().await
        {
            tracing::debug!(%error, "job scheduler shutdown");
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fake [`Launcher`] for the scheduler, server and daemon tests.

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// Counts launches by trigger; can be made busy; its runs last until cancelled when
    /// `hold_runs` is set, and otherwise finish at once.
    #[derive(Debug, Default)]
    pub(crate) struct FakeLauncher {
        pub(crate) busy: AtomicBool,
        pub(crate) hold_runs: AtomicBool,
        pub(crate) launches: Mutex<Vec<Trigger>>,
        pub(crate) aborted: Arc<AtomicUsize>,
        next_id: AtomicUsize,
    }

    impl FakeLauncher {
        pub(crate) fn launched(&self) -> Vec<Trigger> {
            self.launches.lock().unwrap().clone()
        }
    }

    impl Launcher for FakeLauncher {
        fn launch(
            &self,
            trigger: Trigger,
            cancel: CancellationToken,
        ) -> BoxFuture<'_, Result<Launched, LaunchError>> {
            Box::pin(async move {
                if self.busy.load(Ordering::SeqCst) {
                    return Err(LaunchError::Busy {
                        holder: Some(LeaseHolder {
                            owner: "other:7:00000000".into(),
                            run_id: Some("run-busy".into()),
                            acquired_at: "2026-03-01T12:00:00Z".into(),
                            expires_at: "2026-03-01T12:01:00Z".into(),
                        }),
                    });
                }
                self.launches.lock().unwrap().push(trigger);
                let n = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
                let hold = self.hold_runs.load(Ordering::SeqCst);
                let aborted = self.aborted.clone();
                let done = tokio::spawn(async move {
                    if hold {
                        cancel.cancelled().await;
                        aborted.fetch_add(1, Ordering::SeqCst);
                        RunStatus::Aborted
                    } else {
                        RunStatus::Ok
                    }
                });
                Ok(Launched {
                    run_id: format!("run-{n}"),
                    done,
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use chrono::TimeZone;

    use super::testing::FakeLauncher;
    use super::*;
    use crate::clock::{Clock, ManualClock, SystemClock};
    use crate::service::schedule::ScheduleSettings;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    fn schedule(cron: &str, zone: &str, run_on_start: bool) -> Schedule {
        ScheduleSettings {
            cron: cron.into(),
            time_zone: Some(zone.into()),
            run_on_start,
        }
        .resolve(utc(2026, 1, 1, 0, 0))
        .unwrap()
    }

    fn skipped(metrics: &Metrics, reason: &str) -> f64 {
        metrics.get(
            names::SCHEDULED_RUNS_SKIPPED_TOTAL,
            vec![("reason", reason.into())],
        )
    }

    #[tokio::test]
    async fn a_due_fire_starts_one_run_and_moves_to_the_next() {
        let launcher = Arc::new(FakeLauncher::default());
        let metrics = Arc::new(Metrics::new());
        let runs = Runs::new(launcher.clone());
        let mut scheduler = Scheduler::new(
            schedule("30 2 * * *", "UTC", false),
            runs,
            metrics,
            utc(2026, 5, 1, 0, 0),
        );
        assert_eq!(scheduler.next_fire(), Some(utc(2026, 5, 1, 2, 30)));
        assert_eq!(
            scheduler.tick(utc(2026, 5, 1, 2, 29)).await,
            Tick::Idle {
                next: utc(2026, 5, 1, 2, 30)
            }
        );
        assert!(launcher.launched().is_empty());
        assert_eq!(
            scheduler.tick(utc(2026, 5, 1, 2, 30)).await,
            Tick::Started {
                fire: utc(2026, 5, 1, 2, 30),
                run_id: "run-1".into()
            }
        );
        assert_eq!(launcher.launched(), vec![Trigger::Schedule]);
        assert_eq!(scheduler.next_fire(), Some(utc(2026, 5, 2, 2, 30)));
        // Ticking again in the same minute does nothing.
        assert!(matches!(
            scheduler.tick(utc(2026, 5, 1, 2, 30)).await,
            Tick::Idle { .. }
        ));
        assert_eq!(launcher.launched().len(), 1);
    }

    #[tokio::test]
    async fn a_fire_during_a_run_is_skipped_logged_and_counted() {
        let launcher = Arc::new(FakeLauncher::default());
        let metrics = Arc::new(Metrics::new());
        let mut scheduler = Scheduler::new(
            schedule("0 * * * *", "UTC", false),
            Runs::new(launcher.clone()),
            metrics.clone(),
            utc(2026, 5, 1, 0, 30),
        );
        launcher.busy.store(true, Ordering::SeqCst);
        let tick = scheduler.tick(utc(2026, 5, 1, 1, 0)).await;
        let Tick::Skipped { fire, reason } = tick else {
            panic!("expected a skip, got {tick:?}");
        };
        assert_eq!(fire, utc(2026, 5, 1, 1, 0));
        assert!(
            reason.contains("a run is in progress: held by other:7"),
            "{reason}"
        );
        assert_eq!(skipped(&metrics, "busy"), 1.0);
        assert!(launcher.launched().is_empty());
        // The skipped fire is not retried; the next one starts normally once the run is over.
        assert_eq!(scheduler.next_fire(), Some(utc(2026, 5, 1, 2, 0)));
        launcher.busy.store(false, Ordering::SeqCst);
        assert!(matches!(
            scheduler.tick(utc(2026, 5, 1, 2, 0)).await,
            Tick::Started { .. }
        ));
        assert_eq!(skipped(&metrics, "busy"), 1.0);
        assert!(
            metrics
                .render()
                .contains("pluvo_sync_scheduled_runs_skipped_total{reason=\"busy\"} 1\n")
        );
    }

    #[tokio::test]
    async fn missed_fires_after_a_suspension_run_once() {
        let launcher = Arc::new(FakeLauncher::default());
        let mut scheduler = Scheduler::new(
            schedule("0 * * * *", "UTC", false),
            Runs::new(launcher.clone()),
            Arc::new(Metrics::new()),
            utc(2026, 5, 1, 0, 30),
        );
        // Asleep from 00:30 to 05:10: five hourly fires missed, one run.
        assert!(matches!(
            scheduler.tick(utc(2026, 5, 1, 5, 10)).await,
            Tick::Started { .. }
        ));
        assert_eq!(scheduler.next_fire(), Some(utc(2026, 5, 1, 6, 0)));
        assert_eq!(launcher.launched().len(), 1);
    }

    /// A nightly job in Amsterdam across both 2026 transitions, ticked once a minute by an
    /// injected clock as the loop would: exactly one run per night.
    #[tokio::test]
    async fn one_run_per_night_across_amsterdam_daylight_saving_changes() {
        for (cron, start) in [
            ("30 2 * * *", utc(2026, 3, 27, 12, 0)),
            ("0 2 * * *", utc(2026, 3, 27, 12, 0)),
            ("30 2 * * *", utc(2026, 10, 23, 12, 0)),
            ("0 0 2 * * *", utc(2026, 10, 23, 12, 0)),
        ] {
            let launcher = Arc::new(FakeLauncher::default());
            let clock = ManualClock::new(start);
            let mut scheduler = Scheduler::new(
                schedule(cron, "Europe/Amsterdam", false),
                Runs::new(launcher.clone()),
                Arc::new(Metrics::new()),
                clock.now(),
            );
            let mut fires = Vec::new();
            // Four nights, one tick a minute.
            for _ in 0..(4 * 24 * 60) {
                clock.advance(chrono::Duration::minutes(1));
                if let Tick::Started { fire, .. } = scheduler.tick(clock.now()).await {
                    fires.push(
                        fire.with_timezone(&chrono_tz::Europe::Amsterdam)
                            .format("%m-%d %H:%M %Z")
                            .to_string(),
                    );
                }
            }
            let spring = start.format("%m").to_string() == "03";
            let expected: Vec<String> = match (spring, cron.contains("30")) {
                (true, true) => vec![
                    "03-28 02:30 CET",
                    "03-29 03:00 CEST",
                    "03-30 02:30 CEST",
                    "03-31 02:30 CEST",
                ],
                (true, false) => vec![
                    "03-28 02:00 CET",
                    "03-29 03:00 CEST",
                    "03-30 02:00 CEST",
                    "03-31 02:00 CEST",
                ],
                (false, true) => vec![
                    "10-24 02:30 CEST",
                    "10-25 02:30 CEST",
                    "10-26 02:30 CET",
                    "10-27 02:30 CET",
                ],
                (false, false) => vec![
                    "10-24 02:00 CEST",
                    "10-25 02:00 CEST",
                    "10-26 02:00 CET",
                    "10-27 02:00 CET",
                ],
            }
            .into_iter()
            .map(String::from)
            .collect();
            assert_eq!(fires, expected, "cron {cron:?} from {start}");
            assert_eq!(launcher.launched().len(), 4);
        }
    }

    #[tokio::test]
    async fn the_loop_fires_on_a_fast_cron_runs_on_start_and_stops_on_shutdown() {
        let launcher = Arc::new(FakeLauncher::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_scheduler(
            schedule("* * * * * *", "UTC", true),
            Runs::new(launcher.clone()),
            Arc::new(SystemClock),
            shutdown.clone(),
            Arc::new(Metrics::new()),
        ));
        // Every second: within 5 s there must be at least two scheduled runs.
        let mut scheduled = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            scheduled = launcher
                .launched()
                .iter()
                .filter(|t| **t == Trigger::Schedule)
                .count();
            if scheduled >= 2 {
                break;
            }
        }
        assert!(scheduled >= 2, "only {scheduled} scheduled runs in 5 s");
        assert_eq!(launcher.launched().first(), Some(&Trigger::Startup));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the loop stops promptly on shutdown")
            .unwrap();
        let after = launcher.launched().len();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(launcher.launched().len(), after, "no runs after shutdown");
    }

    #[tokio::test]
    async fn stop_cancels_runs_in_flight_and_waits_within_the_grace_period() {
        let launcher = Arc::new(FakeLauncher::default());
        launcher.hold_runs.store(true, Ordering::SeqCst);
        let runs = Runs::new(launcher.clone());
        runs.start(Trigger::Http).await.unwrap();
        let report = runs.stop(Duration::from_secs(5)).await;
        assert_eq!(
            report,
            StopReport {
                finished: 1,
                timed_out: false,
                unfinished: Vec::new(),
            }
        );
        assert_eq!(launcher.aborted.load(Ordering::SeqCst), 1);
        assert!(matches!(
            runs.start(Trigger::Http).await,
            Err(LaunchError::ShuttingDown)
        ));
        assert_eq!(launcher.launched().len(), 1);
    }

    #[derive(Debug)]
    struct StubbornLauncher;

    impl Launcher for StubbornLauncher {
        fn launch(
            &self,
            _trigger: Trigger,
            _cancel: CancellationToken,
        ) -> BoxFuture<'_, Result<Launched, LaunchError>> {
            Box::pin(async {
                let done = tokio::spawn(async {
                    std::future::pending::<()>().await;
                    RunStatus::Ok
                });
                Ok(Launched {
                    run_id: "stubborn".into(),
                    done,
                })
            })
        }
    }

    #[tokio::test]
    async fn stop_gives_up_after_the_grace_period() {
        let runs = Runs::new(Arc::new(StubbornLauncher));
        runs.start(Trigger::Schedule).await.unwrap();
        let started = tokio::time::Instant::now();
        let report = runs.stop(Duration::from_millis(100)).await;
        assert!(report.timed_out);
        assert_eq!(report.finished, 0);
        assert_eq!(report.unfinished, ["stubborn"]);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
