//! What the observation phase of one check found: counts, latency statistics, threshold verdicts.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::failure::{Failure, FailureKind};
use crate::threshold::Statistic;

/// Latency statistics in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdOutcome {
    /// The threshold as written.
    pub threshold: String,
    /// Held.
    pub passed: bool,
    /// Observed value and what it was compared with.
    pub detail: String,
    /// The observed number, when the threshold has one (metrics rules; recorded in baselines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// The observation result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservationOutcome {
    /// Passed every threshold.
    pub passed: bool,
    /// Requests counted (after warm-up).
    pub counted: u64,
    /// Counted requests that failed.
    pub failed: u64,
    /// Requests left out as warm-up.
    pub warmup: u64,
    /// Concurrency used.
    pub concurrency: u32,
    /// Stopped early because a threshold was already lost.
    pub aborted_early: bool,
    /// Latency statistics of counted requests.
    pub latency_ms: LatencySummary,
    /// Failed requests per kind.
    pub failures: BTreeMap<FailureKind, u64>,
    /// The first few failures, for the log.
    pub first_failures: Vec<Failure>,
    /// Threshold verdicts.
    pub thresholds: Vec<ThresholdOutcome>,
    /// Requests per second over the burst.
    pub requests_per_second: f64,
    #[serde(skip)]
    pub(crate) histogram: Option<Histogram<u64>>,
}

/// Highest latency the histogram tracks (1 hour, in microseconds).
pub(crate) const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

pub(crate) fn new_histogram() -> Histogram<u64> {
    // 3 significant figures: percentiles within 0.1 %.
    match Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3) {
        Ok(histogram) => histogram,
        Err(_) => unreachable!("constant histogram bounds are valid"),
    }
}

impl ObservationOutcome {
    /// An outcome decided by rules alone (metrics checks observe a window, not a burst).
    pub fn from_thresholds(thresholds: Vec<ThresholdOutcome>) -> Self {
        Self {
            passed: thresholds.iter().all(|t| t.passed),
            counted: 0,
            failed: 0,
            warmup: 0,
            concurrency: 0,
            aborted_early: false,
            latency_ms: LatencySummary::default(),
            failures: BTreeMap::new(),
            first_failures: Vec::new(),
            thresholds,
            requests_per_second: 0.0,
            histogram: None,
        }
    }

    /// The value of `statistic` in microseconds.
    pub fn statistic_us(&self, statistic: Statistic) -> Option<u64> {
        let histogram = self.histogram.as_ref()?;
        if histogram.is_empty() {
            return None;
        }
        Some(match statistic {
            Statistic::Percentile(p) => histogram.value_at_quantile(p / 100.0),
            Statistic::Max => histogram.max(),
            Statistic::Mean => histogram.mean().round() as u64,
        })
    }
}
