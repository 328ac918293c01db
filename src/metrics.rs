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

/// Metric names, shared by the code that records them and the tests that read them.
pub mod names {
    pub const RUNS: &str = "pluvo_sync_runs_total";
    pub const OPERATIONS: &str = "pluvo_sync_operations_total";
    pub const LAST_SUCCESS: &str = "pluvo_sync_last_success_timestamp_seconds";
    pub const RUN_DURATION: &str = "pluvo_sync_run_duration_seconds";
    pub const REJECTED_RECORDS: &str = "pluvo_sync_rejected_records_total";
    pub const SCHEDULED_SKIPPED: &str = "pluvo_sync_scheduled_runs_skipped_total";
    pub const PLUVO_REQUESTS: &str = "pluvo_requests_total";
    pub const PLUVO_RATE_LIMITED: &str = "pluvo_rate_limited_total";
    pub const PLUVO_LIMITER_WAIT: &str = "pluvo_rate_limiter_wait_seconds_total";
}

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
