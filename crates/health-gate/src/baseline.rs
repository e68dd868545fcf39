//! Baselines: latency statistics recorded from a good deploy (`--record-baseline`), compared
//! with by relative thresholds (`p95 < 2x baseline`). A baseline is only comparable when it was
//! recorded with the same target, request count, concurrency and warm-up; otherwise it is
//! refused with what differs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Check, Observation};
use crate::outcome::ObservationOutcome;
use crate::threshold::Statistic;

/// A baseline problem.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Reading or writing failed.
    #[error("cannot {action} the baseline {path}: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a baseline file.
    #[error("{path} is not a health-gate baseline: {source}")]
    Parse {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Recorded under other conditions.
    #[error(
        "the baseline for check `{check}` is not comparable: {difference}; record a new one with --record-baseline"
    )]
    Mismatch {
        /// Check.
        check: String,
        /// What differs.
        difference: String,
    },
}

/// The baseline file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineFile {
    /// Format version (1).
    pub version: u32,
    /// Per check name.
    pub checks: BTreeMap<String, CheckBaseline>,
}

/// One check's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckBaseline {
    /// Target (URL or address).
    pub target: String,
    /// Requests per burst (`None` for duration-based bursts).
    pub requests: Option<u64>,
    /// Duration of a duration-based burst, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Concurrency.
    pub concurrency: u32,
    /// Warm-up samples.
    pub warmup: u64,
    /// Counted samples.
    pub samples: u64,
    /// Statistic label (`p95`, `max`, `mean`) to microseconds.
    pub latency_us: BTreeMap<String, u64>,
    /// Metrics checks: rule expression to the value seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// Statistics always recorded, beside any a threshold names.
const RECORDED: [Statistic; 7] = [
    Statistic::Percentile(50.0),
    Statistic::Percentile(90.0),
    Statistic::Percentile(95.0),
    Statistic::Percentile(99.0),
    Statistic::Percentile(99.9),
    Statistic::Max,
    Statistic::Mean,
];

impl CheckBaseline {
    /// The baseline of an observation outcome.
    pub fn record(check: &Check, observation: &Observation, outcome: &ObservationOutcome) -> Self {
        let mut latency_us = BTreeMap::new();
        let statistics = RECORDED
            .iter()
            .copied()
            .chain(observation.latency.iter().map(|t| t.statistic));
        for statistic in statistics {
            if let Some(value) = outcome.statistic_us(statistic) {
                latency_us.insert(statistic.label(), value);
            }
        }
        Self {
            target: check.probe.target(),
            requests: observation.requests,
            duration_ms: observation.duration.map(|d| d.as_millis() as u64),
            concurrency: observation.concurrency,
            warmup: observation.warmup,
            samples: outcome.counted,
            latency_us,
            metrics: BTreeMap::new(),
        }
    }

    /// The baseline of a metrics check: the value of every rule.
    pub fn for_metrics(check: &Check, metrics: BTreeMap<String, f64>) -> Self {
        Self {
            target: check.probe.target(),
            requests: None,
            duration_ms: None,
            concurrency: 0,
            warmup: 0,
            samples: 0,
            latency_us: BTreeMap::new(),
            metrics,
        }
    }

    /// Refuses a metrics baseline recorded from another source.
    pub fn check_same_target(&self, check: &Check) -> Result<(), BaselineError> {
        let target = check.probe.target();
        if self.target == target {
            Ok(())
        } else {
            Err(BaselineError::Mismatch {
                check: check.name.clone(),
                difference: format!("recorded from {} but this gate reads {target}", self.target),
            })
        }
    }

    /// Refuses a baseline recorded under other conditions.
    pub fn check_comparable(
        &self,
        check: &Check,
        observation: &Observation,
    ) -> Result<(), BaselineError> {
        let mut differences = Vec::new();
        let target = check.probe.target();
        if self.target != target {
            differences.push(format!("target {} vs {}", self.target, target));
        }
        if self.requests != observation.requests {
            differences.push(format!(
                "requests {:?} vs {:?}",
                self.requests, observation.requests
            ));
        }
        let duration_ms = observation.duration.map(|d| d.as_millis() as u64);
        if self.duration_ms != duration_ms {
            differences.push(format!(
                "duration {:?} ms vs {:?} ms",
                self.duration_ms, duration_ms
            ));
        }
        if self.concurrency != observation.concurrency {
            differences.push(format!(
                "concurrency {} vs {}",
                self.concurrency, observation.concurrency
            ));
        }
        if self.warmup != observation.warmup {
            differences.push(format!("warmup {} vs {}", self.warmup, observation.warmup));
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(BaselineError::Mismatch {
                check: check.name.clone(),
                difference: format!(
                    "recorded with {} (baseline vs this gate)",
                    differences.join(", ")
                ),
            })
        }
    }

    /// A baseline matching `observation`, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(observation: &Observation) -> Self {
        Self {
            target: "test".into(),
            requests: observation.requests,
            duration_ms: None,
            concurrency: observation.concurrency,
            warmup: observation.warmup,
            samples: 0,
            latency_us: BTreeMap::new(),
            metrics: BTreeMap::new(),
        }
    }
}

impl BaselineFile {
    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let text =
            crate::limits::read_text(path, crate::limits::MAX_BASELINE_BYTES).map_err(|error| {
                BaselineError::Io {
                    action: "read",
                    path: path.display().to_string(),
                    source: match error {
                        crate::limits::ReadError::Io(source) => source,
                        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
                    },
                }
            })?;
        serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes a baseline file (pretty JSON), through a temp file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let io_error = |source| BaselineError::Io {
            action: "write",
            path: path.display().to_string(),
            source,
        };
        let text =
            serde_json::to_string_pretty(self).map_err(|e| io_error(std::io::Error::other(e)))?;
        let temporary = path.with_extension("json.tmp");
        // A directory that does not exist yet is created, as for every file the suite writes.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        std::fs::write(&temporary, text + "\n").map_err(io_error)?;
        std::fs::rename(&temporary, path).map_err(io_error)
    }
}
