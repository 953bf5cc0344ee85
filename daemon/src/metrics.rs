//! The daemon's metrics, kept in memory and written in the Prometheus text format for `/metrics`,
//! named after Flux's: installs by result, stage durations as histograms (by stage and result),
//! image probe outcomes, watch rescans (by cause) and the time of the last successful install.
//! Nothing here is per object or per release, so no series goes stale.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Histogram buckets of stage durations, in seconds: from 10 ms to 30 min, as Flux's
/// `ExponentialBucketsRange(10e-3, 1800, 10)`.
pub const STAGE_BUCKETS: [f64; 10] = [
    0.01, 0.0383, 0.1467, 0.5618, 2.151, 8.238, 31.55, 120.8, 462.7, 1800.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; STAGE_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Values {
    installs: BTreeMap<&'static str, u64>,
    stages: BTreeMap<(String, &'static str), Histogram>,
    probes: BTreeMap<String, u64>,
    rescans: BTreeMap<&'static str, u64>,
    last_success_unix: Option<f64>,
    pull_secret_copies: u64,
}

/// The daemon's counters and histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<Values>,
}

impl Metrics {
    fn with<T>(&self, change: impl FnOnce(&mut Values) -> T) -> T {
        // A panic while holding the lock only ever interrupted a counter update.
        let mut values = self
            .values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut values)
    }

    /// An install ended with `result` (`completed` or `failed`).
    pub fn install_finished(&self, result: &'static str, at_unix: f64) {
        self.with(|values| {
            *values.installs.entry(result).or_default() += 1;
            if result == "completed" {
                values.last_success_unix = Some(at_unix);
            }
        });
    }

    /// A stage attempt took `seconds` and ended with `result` (`completed` or `failed`).
    pub fn stage_finished(&self, stage: &str, result: &'static str, seconds: f64) {
        self.with(|values| {
            let histogram = values
                .stages
                .entry((stage.to_string(), result))
                .or_default();
            for (bucket, bound) in histogram.buckets.iter_mut().zip(STAGE_BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            histogram.sum += seconds;
            histogram.count += 1;
        });
    }

    /// An install probed images with these outcomes (one entry per image).
    pub fn probes(&self, outcomes: impl IntoIterator<Item = String>) {
        self.with(|values| {
            for outcome in outcomes {
                *values.probes.entry(outcome).or_default() += 1;
            }
        });
    }

    /// The watched directory was rescanned in full, because of `cause` (`start`, `event`,
    /// `overflow`, `timer`, `poll`, `quiet_period`, `after_install`).
    pub fn rescanned(&self, cause: &'static str) {
        self.with(|values| *values.rescans.entry(cause).or_default() += 1);
    }

    /// A pull secret was copied into a namespace created after its install.
    pub fn pull_secret_copied(&self) {
        self.with(|values| values.pull_secret_copies += 1);
    }

    /// How many installs ended with `result`.
    pub fn installs(&self, result: &str) -> u64 {
        self.with(|values| values.installs.get(result).copied().unwrap_or(0))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let values = self.with(|values| {
            (
                values.installs.clone(),
                values.stages.clone(),
                values.probes.clone(),
                values.rescans.clone(),
                values.last_success_unix,
                values.pull_secret_copies,
            )
        });
        let (installs, stages, probes, rescans, last_success, copies) = values;
        let mut out = String::new();
        out.push_str(
            "# HELP windlass_installs_total Installs the daemon ran to an end, by result.\n",
        );
        out.push_str("# TYPE windlass_installs_total counter\n");
        for result in ["completed", "failed"] {
            let _ = writeln!(
                out,
                "windlass_installs_total{{result=\"{result}\"}} {}",
                installs.get(result).copied().unwrap_or(0)
            );
        }
        out.push_str(
            "# HELP windlass_stage_duration_seconds How long stage attempts took, by stage and result.\n",
        );
        out.push_str("# TYPE windlass_stage_duration_seconds histogram\n");
        for ((stage, result), histogram) in &stages {
            let labels = format!("stage=\"{}\",result=\"{result}\"", escape(stage));
            for (bound, count) in STAGE_BUCKETS.iter().zip(histogram.buckets) {
                let _ = writeln!(
                    out,
                    "windlass_stage_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "windlass_stage_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "windlass_stage_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "windlass_stage_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out.push_str(
            "# HELP windlass_image_probes_total Images the daemon's installs probed, by outcome.\n",
        );
        out.push_str("# TYPE windlass_image_probes_total counter\n");
        for (outcome, count) in &probes {
            let _ = writeln!(
                out,
                "windlass_image_probes_total{{outcome=\"{}\"}} {count}",
                escape(outcome)
            );
        }
        out.push_str(
            "# HELP windlass_watch_rescans_total Full rescans of the watched directory, by cause.\n",
        );
        out.push_str("# TYPE windlass_watch_rescans_total counter\n");
        for (cause, count) in &rescans {
            let _ = writeln!(
                out,
                "windlass_watch_rescans_total{{cause=\"{cause}\"}} {count}"
            );
        }
        out.push_str("# HELP windlass_pull_secret_copies_total Pull secrets copied into namespaces created after their install (additionalNamespaces: [\"*\"]).\n");
        out.push_str("# TYPE windlass_pull_secret_copies_total counter\n");
        let _ = writeln!(out, "windlass_pull_secret_copies_total {copies}");
        out.push_str("# HELP windlass_release_last_applied_timestamp Unix time of the last install that completed.\n");
        out.push_str("# TYPE windlass_release_last_applied_timestamp gauge\n");
        let _ = writeln!(
            out,
            "windlass_release_last_applied_timestamp {}",
            last_success.unwrap_or(0.0)
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.stage_finished("fetch_base", "completed", 0.02);
        metrics.stage_finished("fetch_base", "completed", 5.0);
        let text = metrics.render();
        assert!(text.contains(
            "windlass_stage_duration_seconds_bucket{stage=\"fetch_base\",result=\"completed\",le=\"0.01\"} 0"
        ));
        assert!(text.contains(
            "windlass_stage_duration_seconds_bucket{stage=\"fetch_base\",result=\"completed\",le=\"0.0383\"} 1"
        ));
        assert!(text.contains(
            "windlass_stage_duration_seconds_bucket{stage=\"fetch_base\",result=\"completed\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains(
            "windlass_stage_duration_seconds_count{stage=\"fetch_base\",result=\"completed\"} 2"
        ));
    }
}
