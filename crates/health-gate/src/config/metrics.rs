//! A `metrics:` check: its validated spec (source, window, rules with bounds) and how it is resolved.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::promql::{Expr, parse_expr};

use super::cloudwatch::{CloudWatchMetric, CloudWatchSource, resolve_metric, resolve_source};
use super::error::{ConfigError, config_error};
use super::file::MetricsConfig;
use super::headers::{HeaderValue, merge_headers};
use super::units::parse_size;

/// Default observation window.
pub(super) const WINDOW: Duration = Duration::from_secs(30);

/// Default cap on a scrape or query response body (`max_body`): a large service's
/// `/metrics` is a few MiB; an endless one must fail the check, not exhaust the memory of
/// the process (ssh-deploy runs the gate in-process, after switching `current`).
pub(super) const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A `/metrics` endpoint.
    Scrape(reqwest::Url),
    /// A Prometheus server.
    Prometheus(reqwest::Url),
    /// Amazon CloudWatch.
    CloudWatch(CloudWatchSource),
}

/// A rule's upper bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// value < limit
    Below(f64),
    /// value < factor x baseline
    BelowBaseline(f64),
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The expression as written.
    pub text: String,
    /// Parsed (scrape source only).
    pub expr: Option<Expr>,
    /// The metric read (cloudwatch source only).
    pub metric: Option<CloudWatchMetric>,
    pub bound: Bound,
}

/// A validated metrics check.
#[derive(Debug, Clone)]
pub struct MetricsSpec {
    pub source: Source,
    pub window: Duration,
    pub rules: Vec<Rule>,
    /// A rule without data passes (default: fails).
    pub no_data_passes: bool,
    pub headers: Vec<(String, HeaderValue)>,
    /// Response body limit in bytes.
    pub max_body: u64,
}

impl MetricsSpec {
    /// The source URL, for reports.
    pub fn source_url(&self) -> String {
        match &self.source {
            Source::Scrape(url) | Source::Prometheus(url) => crate::url::display_url(url),
            Source::CloudWatch(source) => source.display(),
        }
    }
}

/// Parses `512Mi`, `2G`, `0.05`, `1e6`.
pub(super) fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ]
    .iter()
    .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
    .unwrap_or((text, 1.0));
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * factor)
}

/// Validates a `metrics:` config.
pub(crate) fn resolve_metrics(
    config: MetricsConfig,
    field: &str,
) -> Result<MetricsSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let url = |text: &str, key: &str, errors: &mut Vec<ConfigError>| match reqwest::Url::parse(text)
    {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            errors.push(config_error(
                format!("{field}.{key}"),
                format!(
                    "`{}` must be an http(s) URL",
                    crate::url::display_url_text(text)
                ),
            ));
            None
        }
    };
    let window = config.window.map_or(WINDOW, |d| d.0);
    let source = match (&config.scrape, &config.prometheus, &config.cloudwatch) {
        (Some(scrape), None, None) => url(scrape, "scrape", &mut errors).map(Source::Scrape),
        (None, Some(prometheus), None) => {
            url(prometheus, "prometheus", &mut errors).map(Source::Prometheus)
        }
        (None, None, Some(cloudwatch)) => {
            if !config.headers.is_empty() || config.max_body.is_some() {
                errors.push(config_error(
                    field,
                    "`headers` and `max_body` apply to `scrape` and `prometheus`; the cloudwatch source signs its requests with AWS credentials",
                ));
            }
            resolve_source(
                cloudwatch,
                window,
                &format!("{field}.cloudwatch"),
                &mut errors,
            )
            .map(Source::CloudWatch)
        }
        _ => {
            errors.push(config_error(field, "give exactly one of `scrape` (a /metrics URL), `prometheus` (a Prometheus server URL) or `cloudwatch` (Amazon CloudWatch)"));
            None
        }
    };
    let cloudwatch = matches!(source, Some(Source::CloudWatch(_)))
        || (source.is_none() && config.cloudwatch.is_some());
    if config.rules.is_empty() {
        errors.push(config_error(format!("{field}.rules"), "at least one rule"));
    }
    let mut rules = Vec::new();
    for (index, rule) in config.rules.iter().enumerate() {
        let rule_field = format!("{field}.rules[{index}]");
        let bound = match (&rule.below, &rule.below_baseline) {
            (Some(value), None) => {
                let text = match value {
                    serde_yaml_ng::Value::Number(n) => n.to_string(),
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                match parse_quantity(&text) {
                    Some(limit) => Bound::Below(limit),
                    None => {
                        errors.push(config_error(
                            format!("{rule_field}.below"),
                            format!("`{text}` is not a number (0.05, 512Mi, 2G)"),
                        ));
                        continue;
                    }
                }
            }
            (None, Some(factor)) => match factor
                .trim()
                .strip_suffix(['x', '×'])
                .and_then(|f| f.trim().parse::<f64>().ok())
            {
                Some(factor) if factor > 0.0 => Bound::BelowBaseline(factor),
                _ => {
                    errors.push(config_error(
                        format!("{rule_field}.below_baseline"),
                        format!("`{factor}` must look like `2x`"),
                    ));
                    continue;
                }
            },
            _ => {
                errors.push(config_error(
                    &rule_field,
                    "give exactly one of `below` or `below_baseline`",
                ));
                continue;
            }
        };
        let (text, metric) = match (&rule.expr, &rule.metric, cloudwatch) {
            (Some(expr), None, false) => (expr.clone(), None),
            (None, Some(metric), true) => {
                match resolve_metric(metric, &format!("{rule_field}.metric"), &mut errors) {
                    Some(metric) => (metric.display(), Some(metric)),
                    None => continue,
                }
            }
            (_, _, false) => {
                errors.push(config_error(
                    &rule_field,
                    "a rule of the scrape and prometheus sources has an `expr` (and no `metric`)",
                ));
                continue;
            }
            (_, _, true) => {
                errors.push(config_error(
                    &rule_field,
                    "a rule of the cloudwatch source has a `metric` ({ namespace, name, dimensions, stat }) and no `expr`",
                ));
                continue;
            }
        };
        let expr = if matches!(source, Some(Source::Scrape(_))) {
            match parse_expr(&text) {
                Ok(expr) => Some(expr),
                Err(reason) => {
                    errors.push(config_error(
                        format!("{rule_field}.expr"),
                        format!("{reason}; the scrape source supports metric{{labels}}, increase(), rate(), numbers, / and * (use `prometheus:` for full PromQL)"),
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        rules.push(Rule {
            text,
            expr,
            metric,
            bound,
        });
    }
    let no_data_passes = match config.no_data.as_deref() {
        None | Some("fail") => false,
        Some("pass") => true,
        Some(other) => {
            errors.push(config_error(
                format!("{field}.no_data"),
                format!("`{other}` must be `fail` or `pass`"),
            ));
            false
        }
    };
    let headers = merge_headers(&BTreeMap::new(), &config.headers, field)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let max_body = match config.max_body.as_deref().map(parse_size) {
        None => MAX_BODY,
        Some(Ok(0)) => {
            errors.push(config_error(
                format!("{field}.max_body"),
                "must be greater than zero",
            ));
            MAX_BODY
        }
        Some(Ok(size)) => size,
        Some(Err(message)) => {
            errors.push(config_error(format!("{field}.max_body"), message));
            MAX_BODY
        }
    };
    match source {
        Some(source) if errors.is_empty() => Ok(MetricsSpec {
            source,
            window,
            rules,
            no_data_passes,
            headers,
            max_body,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("2G"), Some(2e9));
        assert_eq!(parse_quantity("0.05"), Some(0.05));
        assert_eq!(parse_quantity("lots"), None);
    }
}
