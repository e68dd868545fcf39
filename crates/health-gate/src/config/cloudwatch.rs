//! The `cloudwatch` metrics source: where GetMetricData is called, and the metric and
//! statistic each rule reads.

use std::time::Duration;

use aws_sdk_cloudwatch::types::StandardUnit;

use crate::url::display_url_text;

use super::error::{ConfigError, config_error};
use super::file::{CloudWatchConfig, CloudWatchMetricConfig};

/// Default length of one datapoint: CloudWatch's standard resolution.
pub(crate) const PERIOD: Duration = Duration::from_secs(60);

/// Where GetMetricData is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchSource {
    /// `None`: `AWS_REGION` or the profile's region.
    pub region: Option<String>,
    /// `None`: `AWS_ENDPOINT_URL` or AWS's own endpoint.
    pub endpoint_url: Option<String>,
    pub period: Duration,
}

impl CloudWatchSource {
    /// For reports and baselines: `cloudwatch` with the region and endpoint when given.
    pub(crate) fn display(&self) -> String {
        let mut text = "cloudwatch".to_owned();
        if let Some(region) = &self.region {
            text.push_str(&format!(" {region}"));
        }
        if let Some(url) = &self.endpoint_url {
            text.push_str(&format!(" {}", display_url_text(url)));
        }
        text
    }
}

/// A statistic GetMetricData computes per period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statistic {
    Sum,
    Average,
    Minimum,
    Maximum,
    SampleCount,
    /// `p99`, `p99.9`, as written.
    Percentile(String),
}

impl Statistic {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Sum" => Statistic::Sum,
            "Average" => Statistic::Average,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "SampleCount" => Statistic::SampleCount,
            _ => {
                let number = text.strip_prefix('p')?;
                let valid = !number.starts_with(['+', '-'])
                    && number
                        .parse::<f64>()
                        .is_ok_and(|p| (0.0..=100.0).contains(&p));
                return valid.then(|| Statistic::Percentile(text.to_owned()));
            }
        })
    }

    /// The name GetMetricData takes.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Statistic::Sum => "Sum",
            Statistic::Average => "Average",
            Statistic::Minimum => "Minimum",
            Statistic::Maximum => "Maximum",
            Statistic::SampleCount => "SampleCount",
            Statistic::Percentile(text) => text,
        }
    }

    /// One value for the window from one value per period: counts add up, extremes stay
    /// extreme; an average is the mean of the period averages and a percentile the highest
    /// period's (CloudWatch does not return what an exact merge would need).
    pub(crate) fn combine(&self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let max = || values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(match self {
            Statistic::Sum | Statistic::SampleCount => values.iter().sum(),
            Statistic::Maximum | Statistic::Percentile(_) => max(),
            Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Statistic::Average => values.iter().sum::<f64>() / values.len() as f64,
        })
    }
}

/// The metric a rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchMetric {
    pub namespace: String,
    pub name: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
    pub stat: Statistic,
    pub unit: Option<String>,
}

impl CloudWatchMetric {
    /// How the rule is shown in reports and keyed in baselines:
    /// `AWS/ApplicationELB HTTPCode_Target_5XX_Count{LoadBalancer="app/web/1"} Sum`.
    pub(crate) fn display(&self) -> String {
        let dimensions = self
            .dimensions
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let unit = self
            .unit
            .as_deref()
            .map(|unit| format!(" ({unit})"))
            .unwrap_or_default();
        format!(
            "{} {}{{{dimensions}}} {}{unit}",
            self.namespace,
            self.name,
            self.stat.as_str()
        )
    }
}

/// Validates `metrics.cloudwatch`; the window must hold at least one period.
pub(super) fn resolve_source(
    config: &CloudWatchConfig,
    window: Duration,
    field: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<CloudWatchSource> {
    let before = errors.len();
    let period = config.period.map_or(PERIOD, |d| d.0);
    let seconds = period.as_secs();
    let valid_period = period.subsec_nanos() == 0
        && (matches!(seconds, 1 | 5 | 10 | 30) || (seconds > 0 && seconds % 60 == 0));
    if !valid_period {
        errors.push(config_error(
            format!("{field}.period"),
            format!(
                "`{}` is not a CloudWatch period: use 1s, 5s, 10s, 30s (high-resolution metrics) or a multiple of 60s",
                humantime::format_duration(period)
            ),
        ));
    } else if window < period {
        errors.push(config_error(
            format!("{field}.period"),
            format!(
                "the window ({}) is shorter than one period ({}): lengthen `window` or shorten `period`",
                humantime::format_duration(window),
                humantime::format_duration(period)
            ),
        ));
    }
    if config
        .region
        .as_deref()
        .is_some_and(|r| r.trim().is_empty())
    {
        errors.push(config_error(
            format!("{field}.region"),
            "empty: leave it out to use AWS_REGION or the profile's region",
        ));
    }
    if let Some(text) = &config.endpoint_url {
        let valid = reqwest::Url::parse(text)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
        if !valid {
            errors.push(config_error(
                format!("{field}.endpoint_url"),
                format!("`{}` must be an http(s) URL", display_url_text(text)),
            ));
        }
    }
    (errors.len() == before).then(|| CloudWatchSource {
        region: config.region.clone(),
        endpoint_url: config.endpoint_url.clone(),
        period,
    })
}

/// Validates a rule's `metric`.
pub(super) fn resolve_metric(
    config: &CloudWatchMetricConfig,
    field: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<CloudWatchMetric> {
    let before = errors.len();
    for (key, value) in [("namespace", &config.namespace), ("name", &config.name)] {
        if value.trim().is_empty() || value.len() > 255 {
            errors.push(config_error(
                format!("{field}.{key}"),
                "must be 1 to 255 characters",
            ));
        }
    }
    if config.dimensions.len() > 30 {
        errors.push(config_error(
            format!("{field}.dimensions"),
            format!(
                "{} dimensions: CloudWatch allows 30",
                config.dimensions.len()
            ),
        ));
    }
    for (name, value) in &config.dimensions {
        if name.is_empty() || value.is_empty() || name.len() > 255 || value.len() > 1024 {
            errors.push(config_error(
                format!("{field}.dimensions.{name}"),
                "a dimension name is 1 to 255 characters, its value 1 to 1024",
            ));
        }
    }
    let stat = Statistic::parse(&config.stat);
    if stat.is_none() {
        errors.push(config_error(
            format!("{field}.stat"),
            format!(
                "`{}` is not a statistic: use Sum, Average, Minimum, Maximum, SampleCount or a percentile such as p99",
                config.stat
            ),
        ));
    }
    if let Some(unit) = &config.unit {
        if !StandardUnit::values().contains(&unit.as_str()) {
            errors.push(config_error(
                format!("{field}.unit"),
                format!(
                    "`{unit}` is not a CloudWatch unit: use one of {}",
                    StandardUnit::values().join(", ")
                ),
            ));
        }
    }
    let stat = stat?;
    (errors.len() == before).then(|| CloudWatchMetric {
        namespace: config.namespace.clone(),
        name: config.name.clone(),
        dimensions: config
            .dimensions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        stat,
        unit: config.unit.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        for text in [
            "Sum",
            "Average",
            "Minimum",
            "Maximum",
            "SampleCount",
            "p99",
            "p99.9",
            "p0",
        ] {
            assert_eq!(
                Statistic::parse(text).map(|s| s.as_str().to_owned()),
                Some(text.into())
            );
        }
        for text in ["sum", "p", "p101", "p-1", "p+5", "tm99", "IQM", ""] {
            assert_eq!(Statistic::parse(text), None, "{text}");
        }
    }

    #[test]
    fn combining_periods() {
        let values = [1.0, 4.0, 2.0];
        assert_eq!(Statistic::Sum.combine(&values), Some(7.0));
        assert_eq!(Statistic::SampleCount.combine(&values), Some(7.0));
        assert_eq!(Statistic::Maximum.combine(&values), Some(4.0));
        assert_eq!(
            Statistic::Percentile("p99".into()).combine(&values),
            Some(4.0)
        );
        assert_eq!(Statistic::Minimum.combine(&values), Some(1.0));
        assert_eq!(Statistic::Average.combine(&values), Some(7.0 / 3.0));
        assert_eq!(Statistic::Sum.combine(&[]), None);
    }
}
