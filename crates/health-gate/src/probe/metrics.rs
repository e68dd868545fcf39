//! Metrics probe: rules over Prometheus data, from a service's `/metrics` (text exposition,
//! scraped at the start and end of the window, deltas computed here) or from a Prometheus
//! server's HTTP API (instant queries, as Argo Rollouts and Flagger analyses do), or over
//! CloudWatch metrics (GetMetricData over the window ending now, as Argo Rollouts' CloudWatch
//! provider does).
//!
//! Readiness: the source answers and every rule has data. Observation: after `window`, every
//! rule is evaluated against its bound (absolute, or a multiple of the recorded baseline).
//! No data fails by default.
//!
//! The scrape source understands a small expression language, enough for the rollback rules
//! runbooks name: `metric{label="v",code=~"5.."}` (sum of matching series), `increase(m)`,
//! `rate(m)` over the window, numbers, and `/`, `*`, parentheses. Anything else is a
//! configuration error that says to use the `prometheus` source for full PromQL.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::{Bound, Check, CloudWatchMetric, MetricsSpec, Rule, Source, TlsSpec};
use crate::expect::text::excerpt;
use crate::exposition::{Series, parse_exposition};
use crate::failure::{Failure, FailureKind, error_chain};
use crate::outcome::{ObservationOutcome, ThresholdOutcome};
use crate::promql::{evaluate, missing_selector};

use super::cloudwatch::CloudWatchReader;
use super::http::classify_reqwest;
use super::{ResolvedHeaders, Sample, SetupError, header_map};

/// A built metrics probe.
#[derive(Debug)]
pub(crate) struct MetricsProbe {
    client: reqwest::Client,
    cloudwatch: Option<CloudWatchReader>,
    spec: MetricsSpec,
}

impl MetricsProbe {
    /// Builds the HTTP client.
    pub(crate) fn build(
        spec: &MetricsSpec,
        check: &Check,
        headers: &ResolvedHeaders,
    ) -> Result<Self, SetupError> {
        let tls = super::tls::client_config(
            &TlsSpec {
                verify: true,
                ..Default::default()
            },
            &[b"http/1.1"],
        )?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(check.attempt_timeout)
            .connect_timeout(check.connect_timeout)
            .default_headers(header_map(headers)?)
            .no_proxy()
            .build()
            .map_err(|e| SetupError::Client(error_chain(&e)))?;
        let cloudwatch = match &spec.source {
            Source::CloudWatch(source) => Some(CloudWatchReader::new(
                source,
                check.connect_timeout,
                check.attempt_timeout,
            )),
            Source::Scrape(_) | Source::Prometheus(_) => None,
        };
        Ok(Self {
            client,
            cloudwatch,
            spec: spec.clone(),
        })
    }

    async fn scrape(&self, url: &reqwest::Url) -> Result<Vec<Series>, Failure> {
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| classify_reqwest(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Failure::new(
                FailureKind::Status,
                format!("scrape answered {status}"),
            ));
        }
        let body = read_capped(response, self.spec.max_body, "scrape").await?;
        let text = String::from_utf8_lossy(&body);
        parse_exposition(&text).map_err(|reason| {
            Failure::new(
                FailureKind::Assertion,
                format!("not Prometheus text format: {reason}"),
            )
        })
    }

    async fn query(&self, base: &reqwest::Url, expr: &str) -> Result<Option<f64>, Failure> {
        let mut url = base
            .join("api/v1/query")
            .map_err(|e| Failure::new(FailureKind::Io, format!("query URL: {e}")))?;
        url.query_pairs_mut().append_pair("query", expr);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| classify_reqwest(&e))?;
        let status = response.status().as_u16();
        let bytes = read_capped(response, self.spec.max_body, "query response").await?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            let text = String::from_utf8_lossy(&bytes);
            Failure::new(
                FailureKind::Assertion,
                format!("query `{expr}`: not JSON: {}", excerpt(&text, 120)),
            )
        })?;
        if status != 200 || body["status"] != "success" {
            return Err(Failure::new(
                FailureKind::Assertion,
                format!(
                    "query `{expr}` failed ({status}): {}",
                    body["error"].as_str().unwrap_or("no error message")
                ),
            ));
        }
        let result = &body["data"]["result"];
        // Prometheus answers NaN for 0/0 (no traffic in range): that is no data, not a value.
        let value = |sample: &serde_json::Value| {
            sample[1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| !v.is_nan())
        };
        match body["data"]["resultType"].as_str() {
            Some("scalar") => Ok(value(result)),
            Some("vector") => match result.as_array().map(Vec::as_slice) {
                Some([]) | None => Ok(None),
                Some([one]) => Ok(value(&one["value"])),
                Some(many) => Err(Failure::new(
                    FailureKind::Assertion,
                    format!(
                        "query `{expr}` returned {} series; aggregate it to one (e.g. with sum())",
                        many.len()
                    ),
                )),
            },
            other => Err(Failure::new(
                FailureKind::Assertion,
                format!("query `{expr}` returned {other:?}, not a vector or scalar"),
            )),
        }
    }

    /// Readiness: the source answers and every rule has data (for the scrape source: every
    /// series a rule names exists; a ratio over an idle window is judged in observation).
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let missing = match &self.spec.source {
            Source::Scrape(url) => {
                let series = self.scrape(url).await?;
                self.spec.rules.iter().find_map(|rule| {
                    rule.expr
                        .as_ref()
                        .and_then(|e| missing_selector(e, &series))
                        .map(|name| format!("no series `{name}` for `{}`", rule.text))
                })
            }
            Source::Prometheus(_) | Source::CloudWatch(_) => self
                .values(None)
                .await?
                .into_iter()
                .find(|(_, value)| value.is_none())
                .map(|(rule, _)| format!("no data for `{}`", rule.text)),
        };
        match missing {
            Some(detail) if !self.spec.no_data_passes => {
                Err(Failure::new(FailureKind::NoData, detail))
            }
            _ => Ok(Sample {
                latency: start.elapsed(),
            }),
        }
    }

    async fn values(
        &self,
        start_scrape: Option<&[Series]>,
    ) -> Result<Vec<(Rule, Option<f64>)>, Failure> {
        let mut values = Vec::new();
        match &self.spec.source {
            Source::Scrape(url) => {
                let end = self.scrape(url).await?;
                for rule in &self.spec.rules {
                    let value = rule
                        .expr
                        .as_ref()
                        .and_then(|e| evaluate(e, start_scrape, &end, self.spec.window));
                    values.push((rule.clone(), value));
                }
            }
            Source::Prometheus(base) => {
                for rule in &self.spec.rules {
                    values.push((rule.clone(), self.query(base, &rule.text).await?));
                }
            }
            Source::CloudWatch(_) => {
                let metrics: Vec<&CloudWatchMetric> = self
                    .spec
                    .rules
                    .iter()
                    .filter_map(|rule| rule.metric.as_ref())
                    .collect();
                let read = match &self.cloudwatch {
                    Some(reader) => reader.values(&metrics, self.spec.window).await?,
                    None => Vec::new(),
                };
                values.extend(self.spec.rules.iter().cloned().zip(read));
            }
        }
        Ok(values)
    }

    /// Observation: scrape (or wait), wait the window, evaluate every rule.
    pub(crate) async fn observe(
        &self,
        baseline: Option<&BTreeMap<String, f64>>,
    ) -> ObservationOutcome {
        let first = match &self.spec.source {
            Source::Scrape(url) => match self.scrape(url).await {
                Ok(series) => Some(series),
                Err(failure) => {
                    return ObservationOutcome::from_thresholds(vec![failed_fetch(&failure)]);
                }
            },
            Source::Prometheus(_) | Source::CloudWatch(_) => None,
        };
        tokio::time::sleep(self.spec.window).await;
        let values = match self.values(first.as_deref()).await {
            Ok(values) => values,
            Err(failure) => {
                return ObservationOutcome::from_thresholds(vec![failed_fetch(&failure)]);
            }
        };
        let thresholds = values
            .into_iter()
            .map(|(rule, value)| {
                judge(
                    &rule,
                    value,
                    baseline.and_then(|b| b.get(&rule.text)).copied(),
                    self.spec.no_data_passes,
                )
            })
            .collect();
        ObservationOutcome::from_thresholds(thresholds)
    }
}

fn failed_fetch(failure: &Failure) -> ThresholdOutcome {
    ThresholdOutcome {
        threshold: "metrics source answers".into(),
        passed: false,
        detail: failure.to_string(),
        value: None,
    }
}

/// Judges one rule's value.
pub(crate) fn judge(
    rule: &Rule,
    value: Option<f64>,
    baseline: Option<f64>,
    no_data_passes: bool,
) -> ThresholdOutcome {
    let (threshold, limit) = match rule.bound {
        Bound::Below(limit) => (format!("{} < {}", rule.text, limit), Some(limit)),
        Bound::BelowBaseline(factor) => (
            format!("{} < {factor}x baseline", rule.text),
            baseline.map(|b| b * factor),
        ),
    };
    let Some(value) = value else {
        return ThresholdOutcome {
            threshold,
            passed: no_data_passes,
            detail: "no data".into(),
            value: None,
        };
    };
    match limit {
        Some(limit) => ThresholdOutcome {
            threshold,
            passed: value < limit,
            detail: match baseline {
                Some(b) if matches!(rule.bound, Bound::BelowBaseline(_)) => {
                    format!("value {value} (baseline {b}, limit {limit})")
                }
                _ => format!("value {value}"),
            },
            value: Some(value),
        },
        None => ThresholdOutcome {
            threshold,
            passed: false,
            detail: format!(
                "value {value}, but no baseline recorded for this rule: record one with --record-baseline"
            ),
            value: Some(value),
        },
    }
}

/// Reads a response body chunk by chunk, failing as soon as it passes `max_body` bytes: an
/// endless or huge body costs at most `max_body` of memory, never an allocation abort.
async fn read_capped(
    mut response: reqwest::Response,
    max_body: u64,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let too_large = || {
        Failure::new(
            FailureKind::BodyTooLarge,
            format!(
                "{what} body exceeded max_body ({max_body} bytes); stopped reading (raise `metrics.max_body` if the endpoint is really that large)"
            ),
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > max_body)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify_reqwest(&e))? {
        if body.len() as u64 + chunk.len() as u64 > max_body {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_rules() {
        let rule = |bound| Rule {
            text: "m".into(),
            expr: None,
            metric: None,
            bound,
        };
        assert!(judge(&rule(Bound::Below(0.05)), Some(0.04), None, false).passed);
        assert!(!judge(&rule(Bound::Below(0.05)), Some(0.06), None, false).passed);
        assert!(
            !judge(&rule(Bound::Below(0.05)), None, None, false).passed,
            "no data fails"
        );
        assert!(
            judge(&rule(Bound::Below(0.05)), None, None, true).passed,
            "unless configured"
        );
        let doubled = judge(
            &rule(Bound::BelowBaseline(2.0)),
            Some(2.0e8),
            Some(1.0e8),
            false,
        );
        assert!(!doubled.passed, "memory doubling fails 2x");
        assert!(
            judge(
                &rule(Bound::BelowBaseline(2.0)),
                Some(1.9e8),
                Some(1.0e8),
                false
            )
            .passed
        );
        let unrecorded = judge(&rule(Bound::BelowBaseline(2.0)), Some(1.0), None, false);
        assert!(!unrecorded.passed && unrecorded.detail.contains("--record-baseline"));
    }
}
