//! Process-wide counters, shared by the stages that produce them and the `/metrics` endpoint that
//! renders them in Prometheus text format.
//!
//! Counters are keyed by a metric name and a sorted label set, so a new label value (an HTTP
//! status never seen before, say) needs no code. The registry is a mutex over a `BTreeMap`: the
//! sync makes at most a few dozen requests a second, so contention is not a concern, and the
//! sorted map renders deterministically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Label pairs, e.g. `[("status", "429")]`.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    help: Mutex<BTreeMap<&'static str, (Kind, &'static str)>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a metric's type and help text; optional, but makes `/metrics` self-describing.
    pub fn describe(&self, name: &'static str, kind: Kind, help: &'static str) {
        self.help
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name, (kind, help));
    }

    pub fn add(&self, name: &'static str, labels: Labels, by: f64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        *series.entry((name, sorted(labels))).or_insert(0.0) += by;
    }

    pub fn inc(&self, name: &'static str, labels: Labels) {
        self.add(name, labels, 1.0);
    }

    pub fn set(&self, name: &'static str, labels: Labels, value: f64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.insert((name, sorted(labels)), value);
    }

    /// The current value of one series, 0 when it was never touched.
    pub fn get(&self, name: &'static str, labels: Labels) -> f64 {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.get(&(name, sorted(labels))).copied().unwrap_or(0.0)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let help = self.help.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut last_name = "";
        for ((name, labels), value) in series.iter() {
            if *name != last_name {
                if let Some((kind, text)) = help.get(name) {
                    let kind = match kind {
                        Kind::Counter => "counter",
                        Kind::Gauge => "gauge",
                    };
                    let _ = writeln!(out, "# HELP {name} {text}");
                    let _ = writeln!(out, "# TYPE {name} {kind}");
                }
                last_name = name;
            }
            out.push_str(name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (key, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let escaped = value
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    let _ = write!(out, "{key}=\"{escaped}\"");
                }
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
        out
    }
}

/// Metric names shared by the stages that record them and the `/metrics` endpoint, so a typo
/// becomes a compile error instead of a silently empty series.
pub mod names {
    /// Runs finished, by `status` (ok, partial, failed, aborted).
    pub const RUNS_TOTAL: &str = "pluvo_sync_runs_total";
    /// Operations attempted, by `kind` (create, update, …) and `status` (ok, failed, skipped, rejected).
    pub const OPERATIONS_TOTAL: &str = "pluvo_sync_operations_total";
    /// Unix time of the last run that ended ok or partial.
    pub const LAST_SUCCESS_TIMESTAMP: &str = "pluvo_sync_last_success_timestamp_seconds";
    /// Duration of the last finished run, by `status`.
    pub const RUN_DURATION: &str = "pluvo_sync_run_duration_seconds";
    /// HTTP responses from Pluvo, by `status` code (or `error` when none arrived).
    pub const PLUVO_REQUESTS_TOTAL: &str = "pluvo_requests_total";
    /// Responses with HTTP 429 from Pluvo.
    pub const PLUVO_RATE_LIMITED_TOTAL: &str = "pluvo_rate_limited_total";
    /// Requests to Pluvo repeated after a retryable failure.
    pub const PLUVO_RETRIES_TOTAL: &str = "pluvo_retries_total";
    /// Seconds spent waiting on the client-side rate limiter.
    pub const RATE_LIMITER_WAIT_SECONDS_TOTAL: &str = "pluvo_rate_limiter_wait_seconds_total";
    /// Requests per second the client allows itself now: `pluvo.rate_per_second`, lowered while
    /// Pluvo answers 429 and raised again slowly.
    pub const PLUVO_EFFECTIVE_RATE: &str = "pluvo_request_rate_per_second";
    /// Source records rejected by mapping (bad email, missing ref, …).
    pub const REJECTED_RECORDS_TOTAL: &str = "pluvo_sync_rejected_records_total";
    /// Scheduled fires that did not start a run, by `reason` (busy, error).
    pub const SCHEDULED_RUNS_SKIPPED_TOTAL: &str = "pluvo_sync_scheduled_runs_skipped_total";
    /// Runs in the journal, by `status`, counted from the database at scrape time.
    pub const JOURNAL_RUNS: &str = "pluvo_sync_journal_runs";
    /// 1 while a run holds the run lease (in any process), else 0; read at scrape time.
    pub const RUN_IN_PROGRESS: &str = "pluvo_sync_run_in_progress";
}

/// Registers type and help text for every metric in [`names`], so `/metrics` explains itself.
pub fn describe_all(metrics: &Metrics) {
    use names::*;
    let all: [(&'static str, Kind, &'static str); 13] = [
        (
            RUNS_TOTAL,
            Kind::Counter,
            "Runs finished since start, by status.",
        ),
        (
            OPERATIONS_TOTAL,
            Kind::Counter,
            "Operations attempted since start, by kind and status.",
        ),
        (
            LAST_SUCCESS_TIMESTAMP,
            Kind::Gauge,
            "Unix time of the last run that ended ok or partial.",
        ),
        (
            RUN_DURATION,
            Kind::Gauge,
            "Duration in seconds of the last finished run, by status.",
        ),
        (
            PLUVO_REQUESTS_TOTAL,
            Kind::Counter,
            "HTTP responses from Pluvo, by status code.",
        ),
        (
            PLUVO_RATE_LIMITED_TOTAL,
            Kind::Counter,
            "HTTP 429 responses from Pluvo.",
        ),
        (
            PLUVO_RETRIES_TOTAL,
            Kind::Counter,
            "Requests to Pluvo repeated after a retryable failure.",
        ),
        (
            RATE_LIMITER_WAIT_SECONDS_TOTAL,
            Kind::Counter,
            "Seconds spent waiting on the client-side rate limiter.",
        ),
        (
            PLUVO_EFFECTIVE_RATE,
            Kind::Gauge,
            "Requests per second the client allows itself: pluvo.rate_per_second, lowered while Pluvo answers 429.",
        ),
        (
            REJECTED_RECORDS_TOTAL,
            Kind::Counter,
            "Source records rejected by mapping.",
        ),
        (
            SCHEDULED_RUNS_SKIPPED_TOTAL,
            Kind::Counter,
            "Scheduled fires that started no run, by reason.",
        ),
        (JOURNAL_RUNS, Kind::Gauge, "Runs in the journal, by status."),
        (
            RUN_IN_PROGRESS,
            Kind::Gauge,
            "1 while a run holds the run lease, in any process.",
        ),
    ];
    for (name, kind, help) in all {
        metrics.describe(name, kind, help);
    }
}

fn sorted(mut labels: Labels) -> Labels {
    labels.sort();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_sorted_escaped_labels() {
        let metrics = Metrics::new();
        metrics.describe(
            "pluvo_requests_total",
            Kind::Counter,
            "Requests sent to Pluvo.",
        );
        metrics.inc("pluvo_requests_total", vec![("status", "200".into())]);
        metrics.inc("pluvo_requests_total", vec![("status", "200".into())]);
        metrics.inc("odd", vec![("z", "1".into()), ("a", "say \"hi\"".into())]);
        let text = metrics.render();
        assert!(
            text.contains("# TYPE pluvo_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("pluvo_requests_total{status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("odd{a=\"say \\\"hi\\\"\",z=\"1\"} 1\n"),
            "{text}"
        );
        assert_eq!(
            metrics.get("pluvo_requests_total", vec![("status", "200".into())]),
            2.0
        );
    }
}
