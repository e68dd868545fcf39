//! Readiness settings: the file's defaults merged with a check's own, validated.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::failure::FailureKind;

use super::defaults;
use super::error::{ConfigError, config_error};
use super::file::ReadinessConfig;

/// Validated readiness settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// Wait before the first attempt.
    pub initial_delay: Duration,
    /// Time between attempt starts (fixed rate unless backoff).
    pub interval: Duration,
    /// Interval multiplier after a failure.
    pub backoff_multiplier: f64,
    /// Interval cap.
    pub max_interval: Duration,
    /// Jitter fraction.
    pub jitter: f64,
    /// Consecutive successes needed.
    pub success_threshold: u32,
    /// Give up after this long (from the gate's start).
    pub deadline: Duration,
    /// Kinds that stop at once.
    pub fatal: BTreeSet<FailureKind>,
}

pub(super) fn merge_readiness(
    defaults: &ReadinessConfig,
    own: Option<&ReadinessConfig>,
    field: &str,
) -> Result<Readiness, ConfigError> {
    let own = own.cloned().unwrap_or_default();
    let backoff = own.backoff.or_else(|| defaults.backoff.clone());
    let readiness = Readiness {
        initial_delay: own
            .initial_delay
            .or(defaults.initial_delay)
            .map_or(Duration::ZERO, |d| d.0),
        interval: own
            .interval
            .or(defaults.interval)
            .map_or(defaults::INTERVAL, |d| d.0),
        backoff_multiplier: backoff.as_ref().map_or(1.0, |b| b.multiplier),
        max_interval: backoff
            .as_ref()
            .and_then(|b| b.max_interval)
            .map_or(defaults::MAX_INTERVAL, |d| d.0),
        jitter: backoff.as_ref().map_or(0.0, |b| b.jitter),
        success_threshold: own
            .success_threshold
            .or(defaults.success_threshold)
            .unwrap_or(1),
        deadline: own
            .deadline
            .or(defaults.deadline)
            .map_or(defaults::DEADLINE, |d| d.0),
        fatal: own
            .fatal
            .or_else(|| defaults.fatal.clone())
            .map(|kinds| kinds.into_iter().collect())
            .unwrap_or_else(|| {
                FailureKind::ALL
                    .into_iter()
                    .filter(|k| k.fatal_by_default())
                    .collect()
            }),
    };
    if readiness.interval.is_zero() {
        return Err(config_error(
            format!("{field}.interval"),
            "must be greater than zero",
        ));
    }
    if readiness.success_threshold == 0 {
        return Err(config_error(
            format!("{field}.success_threshold"),
            "must be at least 1",
        ));
    }
    if !(1.0..=10.0).contains(&readiness.backoff_multiplier) {
        return Err(config_error(
            format!("{field}.backoff.multiplier"),
            "must be between 1.0 (fixed rate) and 10.0",
        ));
    }
    if !(0.0..=1.0).contains(&readiness.jitter) {
        return Err(config_error(
            format!("{field}.backoff.jitter"),
            "must be between 0.0 and 1.0",
        ));
    }
    if readiness.deadline.is_zero() {
        return Err(config_error(
            format!("{field}.deadline"),
            "must be greater than zero",
        ));
    }
    Ok(readiness)
}
