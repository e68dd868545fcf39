//! Observation settings: the file's defaults merged with a check's own, validated.

use std::time::Duration;

use crate::threshold::{ErrorRateLimit, K6Threshold, LatencyThreshold, ThresholdError};

use super::defaults;
use super::error::{ConfigError, config_error};
use super::file::{ObserveConfig, ThresholdsConfig};

/// Validated observation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Number of requests, or
    pub requests: Option<u64>,
    /// a duration.
    pub duration: Option<Duration>,
    /// In flight at once.
    pub concurrency: u32,
    /// Samples ignored at the start.
    pub warmup: u64,
    /// Minimum counted samples.
    pub min_samples: u64,
    /// Stop once lost.
    pub abort_early: bool,
    /// Error-rate limit.
    pub error_rate: ErrorRateLimit,
    /// Latency limits.
    pub latency: Vec<LatencyThreshold>,
}

pub(super) fn merge_observe(
    defaults: &ObserveConfig,
    own: Option<&ObserveConfig>,
    field: &str,
) -> Result<Observation, Vec<ConfigError>> {
    let own = own.cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let duration = own.duration.or(defaults.duration).map(|d| d.0);
    let requests = own
        .requests
        .or(defaults.requests)
        .or(if duration.is_some() {
            None
        } else {
            Some(defaults::REQUESTS)
        });
    if requests.is_some() && duration.is_some() && own.requests.is_some() && own.duration.is_some()
    {
        errors.push(config_error(
            field,
            "give `requests` or `duration`, not both",
        ));
    }
    let concurrency = own
        .concurrency
        .or(defaults.concurrency)
        .unwrap_or(defaults::CONCURRENCY);
    if concurrency == 0 || concurrency > 1000 {
        errors.push(config_error(
            format!("{field}.concurrency"),
            "must be between 1 and 1000",
        ));
    }
    let warmup = own.warmup.or(defaults.warmup).unwrap_or(defaults::WARMUP);
    if let Some(requests) = requests {
        if requests <= warmup {
            errors.push(config_error(
                format!("{field}.requests"),
                format!("{requests} requests leave no sample after {warmup} warm-up"),
            ));
        }
    }
    let min_samples = own
        .min_samples
        .or(defaults.min_samples)
        .unwrap_or_else(|| requests.map_or(10, |r| r.saturating_sub(warmup)));
    let thresholds = own.thresholds.or_else(|| defaults.thresholds.clone());
    let mut error_rate = None;
    let mut latency = Vec::new();
    let mut push_threshold_error =
        |e: ThresholdError| errors.push(config_error(format!("{field}.thresholds"), e.to_string()));
    match thresholds {
        Some(ThresholdsConfig::K6(lines)) => {
            for line in lines {
                match K6Threshold::parse(&line) {
                    Ok(K6Threshold::ErrorRate(limit)) => error_rate = Some(limit),
                    Ok(K6Threshold::Latency(threshold)) => latency.push(threshold),
                    Err(e) => push_threshold_error(e),
                }
            }
        }
        Some(ThresholdsConfig::Map(map)) => {
            if let Some(text) = map.error_rate {
                match ErrorRateLimit::parse(&text) {
                    Ok(limit) => error_rate = Some(limit),
                    Err(e) => push_threshold_error(e),
                }
            }
            for (statistic, text) in map.latency {
                match LatencyThreshold::parse_entry(&statistic, &text) {
                    Ok(threshold) => latency.push(threshold),
                    Err(e) => push_threshold_error(e),
                }
            }
        }
        None => {}
    }
    let error_rate = match error_rate {
        Some(limit) => limit,
        None => match ErrorRateLimit::parse(defaults::ERROR_RATE) {
            Ok(limit) => limit,
            Err(e) => {
                errors.push(config_error(field, e.to_string()));
                return Err(errors);
            }
        },
    };
    if errors.is_empty() {
        Ok(Observation {
            requests,
            duration,
            concurrency,
            warmup,
            min_samples,
            abort_early: own.abort_early.or(defaults.abort_early).unwrap_or(true),
            error_rate,
            latency,
        })
    } else {
        Err(errors)
    }
}
