//! Thresholds for the observation phase, parsed from the gate file or flags, evaluated with
//! integer arithmetic so "12 failures of 200 at a 5 % limit" is decided exactly.
//!
//! Accepted spellings:
//! - error rate: `<= 5%`, `< 0.05`, `5%` (means `<=`), `== 0%`; k6: `rate<0.05`
//! - latency: `p95: "< 200ms"`, `max: "<= 2s"`, relative `p95: "< 2x baseline"`;
//!   k6: `p(95)<200` (milliseconds), `p(99.9)<=1500`, `max<500`, `med<100`, `avg<80`
//!
//! Only upper bounds exist for both: a gate fails on too many errors or too much latency.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A threshold that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid threshold `{text}`: {reason}")]
pub struct ThresholdError {
    /// What was written.
    pub text: String,
    /// Why it is invalid and what would be valid.
    pub reason: String,
}

fn invalid(text: &str, reason: impl Into<String>) -> ThresholdError {
    ThresholdError {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

/// `<` or `<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Bound {
    /// Strictly below.
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Bound {
    /// Does `left <= right` (or `<`) hold, for cross-multiplied integers.
    fn holds(self, left: u128, right: u128) -> bool {
        match self {
            Bound::Below => left < right,
            Bound::AtMost => left <= right,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Bound::Below => "<",
            Bound::AtMost => "<=",
        }
    }
}

/// A non-negative decimal as an exact fraction (`2.5` = 25/10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ratio {
    pub numerator: u64,
    /// Denominator (a power of ten).
    pub denominator: u64,
}

impl Ratio {
    /// Parses `12`, `0.05`, `2.5` exactly.
    pub fn parse_decimal(text: &str) -> Option<Ratio> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        if !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        if fraction.len() > 9 {
            return None;
        }
        let denominator = 10u64.pow(u32::try_from(fraction.len()).ok()?);
        let digits = format!("{whole}{fraction}");
        let numerator = if digits.is_empty() {
            0
        } else {
            digits.parse::<u64>().ok()?
        };
        Some(Ratio {
            numerator,
            denominator,
        })
    }

    fn scaled(self, factor: u64) -> Ratio {
        Ratio {
            numerator: self.numerator,
            denominator: self.denominator.saturating_mul(factor),
        }
    }

    fn as_f64(self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

/// An upper bound on the share of failed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorRateLimit {
    /// `<` or `<=`.
    pub bound: Bound,
    /// The limit as a fraction of 1 (5 % = 5/100).
    pub limit: Ratio,
}

impl ErrorRateLimit {
    /// Parses `<= 5%`, `< 0.05`, `5%`, `== 0%`, `rate<0.05`.
    pub fn parse(text: &str) -> Result<Self, ThresholdError> {
        let body = text.trim();
        let body = body.strip_prefix("rate").map_or(body, str::trim_start);
        let (bound, value) = split_bound(body).ok_or_else(|| {
            invalid(
                text,
                "write an upper bound such as `<= 5%`, `< 0.05` or `rate<0.05`",
            )
        })?;
        let bound = match bound {
            Some(BoundText::Equal) => {
                let limit = parse_rate_value(value)
                    .ok_or_else(|| invalid(text, "expected a number or percentage"))?;
                if limit.numerator != 0 {
                    return Err(invalid(
                        text,
                        "`==` is only meaningful for `== 0%`; use `<=` for a limit",
                    ));
                }
                return Ok(Self {
                    bound: Bound::AtMost,
                    limit,
                });
            }
            Some(BoundText::Bound(bound)) => bound,
            None => Bound::AtMost,
        };
        let limit = parse_rate_value(value)
            .ok_or_else(|| invalid(text, "expected a number like 0.05 or a percentage like 5%"))?;
        if limit.numerator > limit.denominator {
            return Err(invalid(text, "an error rate is between 0% and 100%"));
        }
        Ok(Self { bound, limit })
    }

    /// True when `failed` of `total` is within the limit. Zero requests never pass.
    pub fn passes(&self, failed: u64, total: u64) -> bool {
        total > 0
            && self.bound.holds(
                u128::from(failed) * u128::from(self.limit.denominator),
                u128::from(self.limit.numerator) * u128::from(total),
            )
    }

    /// True when, with `planned` requests in all, `failed` failures already lose the gate.
    pub fn already_lost(&self, failed: u64, planned: u64) -> bool {
        !self.passes(failed, planned)
    }
}

impl fmt::Display for ErrorRateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error rate {} {}%",
            self.bound.symbol(),
            self.limit.as_f64() * 100.0
        )
    }
}

enum BoundText {
    Bound(Bound),
    Equal,
}

fn split_bound(text: &str) -> Option<(Option<BoundText>, &str)> {
    let text = text.trim();
    for (prefix, bound) in [
        ("<=", BoundText::Bound(Bound::AtMost)),
        ("<", BoundText::Bound(Bound::Below)),
        ("===", BoundText::Equal),
        ("==", BoundText::Equal),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Some((Some(bound), rest.trim()));
        }
    }
    if text.starts_with('>') || text.starts_with("!=") {
        return None;
    }
    Some((None, text))
}

fn parse_rate_value(text: &str) -> Option<Ratio> {
    match text.trim().strip_suffix('%') {
        Some(percent) => Ratio::parse_decimal(percent).map(|r| r.scaled(100)),
        None => Ratio::parse_decimal(text),
    }
}

/// Which latency statistic a threshold applies to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// A percentile, 0 < p <= 100 (`p95` = 95.0).
    Percentile(f64),
    /// The slowest sample.
    Max,
    /// The arithmetic mean.
    Mean,
}

impl Statistic {
    /// Parses `p50`, `p99.9`, `p(95)`, `max`, `med`, `avg`, `mean`.
    pub fn parse(text: &str) -> Option<Statistic> {
        let text = text.trim();
        match text {
            "max" => return Some(Statistic::Max),
            "med" | "median" => return Some(Statistic::Percentile(50.0)),
            "avg" | "mean" => return Some(Statistic::Mean),
            _ => {}
        }
        let number = text
            .strip_prefix("p(")
            .and_then(|t| t.strip_suffix(')'))
            .or_else(|| text.strip_prefix('p'))?;
        let value: f64 = number.parse().ok()?;
        (value > 0.0 && value <= 100.0).then_some(Statistic::Percentile(value))
    }

    /// The label used in reports: `p95`, `p99.9`, `max`, `mean`.
    pub fn label(&self) -> String {
        match self {
            Statistic::Percentile(p) => format!("p{p}"),
            Statistic::Max => "max".into(),
            Statistic::Mean => "mean".into(),
        }
    }
}

/// What a latency statistic is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyLimit {
    /// A fixed duration.
    Absolute(#[serde(serialize_with = "serialize_duration_ms")] Duration),
    /// A multiple of the same statistic in the recorded baseline (`2x baseline`).
    Baseline(Ratio),
}

fn serialize_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// An upper bound on one latency statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyThreshold {
    /// The statistic.
    pub statistic: Statistic,
    /// `<` or `<=`.
    pub bound: Bound,
    /// The limit.
    pub limit: LatencyLimit,
}

impl LatencyThreshold {
    /// Parses the value of a map entry: `statistic` is the key (`p95`), `text` the bound
    /// (`< 200ms`, `<= 2x baseline`).
    pub fn parse_entry(statistic: &str, text: &str) -> Result<Self, ThresholdError> {
        let full = format!("{statistic}: {text}");
        let statistic = Statistic::parse(statistic).ok_or_else(|| {
            invalid(
                &full,
                "the statistic must be p50, p90, p95, p99 (any pNN), max, med or avg",
            )
        })?;
        let (bound, value) = match split_bound(text) {
            Some((Some(BoundText::Bound(bound)), value)) => (bound, value),
            _ => {
                return Err(invalid(
                    &full,
                    "write an upper bound such as `< 200ms` or `<= 2x baseline`",
                ));
            }
        };
        let limit = parse_latency_limit(value).ok_or_else(|| {
            invalid(
                &full,
                "the limit is a duration (`200ms`, `1.5s`) or a baseline multiple (`2x baseline`)",
            )
        })?;
        Ok(Self {
            statistic,
            bound,
            limit,
        })
    }

    /// Parses a k6 threshold (`p(95)<200`, `max<=500`): numbers are milliseconds.
    pub fn parse_k6(text: &str) -> Result<Self, ThresholdError> {
        let position = text.find('<').ok_or_else(|| {
            invalid(
                text,
                "k6 latency thresholds look like `p(95)<200` (milliseconds)",
            )
        })?;
        let (statistic, rest) = text.split_at(position);
        let (bound, value) = match split_bound(rest) {
            Some((Some(BoundText::Bound(bound)), value)) => (bound, value),
            _ => return Err(invalid(text, "only `<` and `<=` are supported")),
        };
        let statistic = Statistic::parse(statistic)
            .ok_or_else(|| invalid(text, "the statistic must be p(N), max, med or avg"))?;
        let limit = match Ratio::parse_decimal(value) {
            Some(ms) => LatencyLimit::Absolute(Duration::from_secs_f64(ms.as_f64() / 1000.0)),
            None => parse_latency_limit(value)
                .ok_or_else(|| invalid(text, "the limit is milliseconds, e.g. `p(95)<200`"))?,
        };
        Ok(Self {
            statistic,
            bound,
            limit,
        })
    }

    /// Decides the threshold for an observed value; `baseline` is the same statistic in the
    /// baseline, needed for relative limits (`None` then fails with an explanation).
    pub fn evaluate(&self, observed: Duration, baseline: Option<Duration>) -> Result<bool, String> {
        let observed_us = observed.as_micros();
        match self.limit {
            LatencyLimit::Absolute(limit) => Ok(self.bound.holds(observed_us, limit.as_micros())),
            LatencyLimit::Baseline(factor) => {
                let baseline = baseline.ok_or_else(|| {
                    format!(
                        "{} needs a baseline: record one with --record-baseline",
                        self
                    )
                })?;
                Ok(self.bound.holds(
                    observed_us * u128::from(factor.denominator),
                    baseline.as_micros() * u128::from(factor.numerator),
                ))
            }
        }
    }
}

impl fmt::Display for LatencyThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            LatencyLimit::Absolute(d) => write!(
                f,
                "{} {} {}",
                self.statistic.label(),
                self.bound.symbol(),
                humantime::format_duration(d)
            ),
            LatencyLimit::Baseline(factor) => write!(
                f,
                "{} {} {}x baseline",
                self.statistic.label(),
                self.bound.symbol(),
                factor
            ),
        }
    }
}

fn parse_latency_limit(text: &str) -> Option<LatencyLimit> {
    let text = text.trim();
    if let Some(factor) = text.strip_suffix("baseline") {
        let factor = factor.trim().strip_suffix(['x', '×'])?.trim();
        return Ratio::parse_decimal(factor).map(LatencyLimit::Baseline);
    }
    humantime::parse_duration(text)
        .ok()
        .map(LatencyLimit::Absolute)
}

/// A k6-style threshold line: error rate or latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum K6Threshold {
    /// `rate<0.05`
    ErrorRate(ErrorRateLimit),
    /// `p(95)<200`
    Latency(LatencyThreshold),
}

impl K6Threshold {
    /// Parses one k6 threshold.
    pub(crate) fn parse(text: &str) -> Result<Self, ThresholdError> {
        let trimmed = text.trim();
        if trimmed.starts_with("rate") {
            ErrorRateLimit::parse(trimmed).map(K6Threshold::ErrorRate)
        } else {
            LatencyThreshold::parse_k6(trimmed).map(K6Threshold::Latency)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_percent_of_two_hundred_is_decided_exactly() {
        let limit = ErrorRateLimit::parse("<= 5%").expect("valid");
        assert!(limit.passes(8, 200), "4 % passes");
        assert!(limit.passes(10, 200), "exactly 5 % passes an at-most limit");
        assert!(!limit.passes(11, 200));
        assert!(!limit.passes(12, 200), "6 % fails");
        let strict = ErrorRateLimit::parse("rate<0.05").expect("valid");
        assert!(!strict.passes(10, 200), "exactly 5 % fails a strict limit");
        assert!(strict.passes(9, 200));
    }

    #[test]
    fn error_rate_spellings() {
        let cases: [(&str, Bound, u64, u64); 5] = [
            ("5%", Bound::AtMost, 5, 100),
            ("< 0.05", Bound::Below, 5, 100),
            ("<=2.5%", Bound::AtMost, 25, 1000),
            ("== 0%", Bound::AtMost, 0, 100),
            ("rate<=0.1", Bound::AtMost, 1, 10),
        ];
        for (text, bound, numerator, denominator) in cases {
            let limit = ErrorRateLimit::parse(text).expect(text);
            assert_eq!(limit.bound, bound, "{text}");
            assert_eq!(
                u128::from(limit.limit.numerator) * u128::from(denominator),
                u128::from(numerator) * u128::from(limit.limit.denominator),
                "{text}"
            );
        }
        assert!(ErrorRateLimit::parse("== 0%").expect("valid").passes(0, 10));
        assert!(
            !ErrorRateLimit::parse("== 0%")
                .expect("valid")
                .passes(1, 10_000)
        );
    }

    #[test]
    fn rejects_lower_bounds_and_nonsense_with_reasons() {
        for text in ["> 5%", "!= 0", "== 5%", "abc", "150%", "5%%", "-1%", "<"] {
            let error = ErrorRateLimit::parse(text).expect_err(text);
            assert!(!error.reason.is_empty());
        }
    }

    #[test]
    fn zero_requests_never_pass() {
        assert!(
            !ErrorRateLimit::parse("<= 100%")
                .expect("valid")
                .passes(0, 0)
        );
    }

    #[test]
    fn early_abort_when_the_limit_is_already_lost() {
        let limit = ErrorRateLimit::parse("<= 5%").expect("valid");
        assert!(!limit.already_lost(10, 200));
        assert!(limit.already_lost(11, 200));
    }

    #[test]
    fn latency_entries_absolute_and_relative() {
        let absolute = LatencyThreshold::parse_entry("p95", "< 200ms").expect("valid");
        assert_eq!(
            absolute.evaluate(Duration::from_millis(199), None),
            Ok(true)
        );
        assert_eq!(
            absolute.evaluate(Duration::from_millis(200), None),
            Ok(false)
        );
        let at_most = LatencyThreshold::parse_entry("max", "<= 2s").expect("valid");
        assert_eq!(at_most.evaluate(Duration::from_secs(2), None), Ok(true));

        let relative = LatencyThreshold::parse_entry("p95", "< 2x baseline").expect("valid");
        let baseline = Some(Duration::from_millis(50));
        assert_eq!(
            relative.evaluate(Duration::from_millis(99), baseline),
            Ok(true)
        );
        assert_eq!(
            relative.evaluate(Duration::from_millis(100), baseline),
            Ok(false)
        );
        let missing = relative
            .evaluate(Duration::from_millis(1), None)
            .expect_err("no baseline");
        assert!(missing.contains("--record-baseline"), "{missing}");

        let fractional = LatencyThreshold::parse_entry("p99.9", "<= 1.5x baseline").expect("valid");
        assert_eq!(fractional.statistic, Statistic::Percentile(99.9));
        assert_eq!(
            fractional.evaluate(Duration::from_millis(150), Some(Duration::from_millis(100))),
            Ok(true)
        );
        assert_eq!(
            fractional.evaluate(
                Duration::from_micros(150_001),
                Some(Duration::from_millis(100))
            ),
            Ok(false)
        );
    }

    #[test]
    fn k6_spellings() {
        let cases = [
            ("p(95)<200", Statistic::Percentile(95.0), 200),
            ("p(99.9) <= 1500", Statistic::Percentile(99.9), 1500),
            ("max<500", Statistic::Max, 500),
            ("med<100", Statistic::Percentile(50.0), 100),
            ("avg<80", Statistic::Mean, 80),
        ];
        for (text, statistic, ms) in cases {
            let K6Threshold::Latency(threshold) = K6Threshold::parse(text).expect(text) else {
                panic!("{text} is a latency threshold")
            };
            assert_eq!(threshold.statistic, statistic, "{text}");
            assert_eq!(
                threshold.limit,
                LatencyLimit::Absolute(Duration::from_millis(ms)),
                "{text}"
            );
        }
        assert!(matches!(
            K6Threshold::parse("rate<0.01"),
            Ok(K6Threshold::ErrorRate(_))
        ));
        for bad in ["p(101)<5", "p(0)<5", "p95>5", "count<5", "p(95)<fast"] {
            assert!(K6Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_read_like_the_input() {
        assert_eq!(
            ErrorRateLimit::parse("<= 5%").expect("valid").to_string(),
            "error rate <= 5%"
        );
        assert_eq!(
            LatencyThreshold::parse_entry("p95", "< 2x baseline")
                .expect("valid")
                .to_string(),
            "p95 < 2x baseline"
        );
        assert_eq!(
            LatencyThreshold::parse_entry("p50", "< 100ms")
                .expect("valid")
                .to_string(),
            "p50 < 100ms"
        );
    }
}
