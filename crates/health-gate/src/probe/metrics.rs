//! Metrics probe: rules over Prometheus data, from a service's `/metrics` (text exposition,
//! scraped at the start and end of the window, deltas computed here) or from a Prometheus
//! server's HTTP API (instant queries, as Argo Rollouts and Flagger analyses do).
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
use std::time::{Duration, Instant};

use crate::config::{
    Check, ConfigError, DefaultsConfig, HeaderValue, MetricsConfig, config_error, merge_headers,
};
use crate::failure::{Failure, FailureKind, error_chain};
use crate::observe::{ObservationOutcome, ThresholdOutcome};

use super::http::classify_reqwest;
use super::{ResolvedHeaders, Sample, SetupError, header_map};

/// Default observation window.
pub const WINDOW: Duration = Duration::from_secs(30);

/// Default cap on a scrape or query response body (`max_body`): a large service's
/// `/metrics` is a few MiB; an endless one must fail the check, not exhaust the memory of
/// the process (ssh-deploy runs the gate in-process, after switching `current`).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A `/metrics` endpoint.
    Scrape(reqwest::Url),
    /// A Prometheus server.
    Prometheus(reqwest::Url),
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
    /// Bound.
    pub bound: Bound,
}

/// A validated metrics check.
#[derive(Debug, Clone)]
pub struct MetricsSpec {
    /// Source.
    pub source: Source,
    /// Window.
    pub window: Duration,
    /// Rules.
    pub rules: Vec<Rule>,
    /// A rule without data passes (default: fails).
    pub no_data_passes: bool,
    /// Headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// Response body limit in bytes.
    pub max_body: u64,
}

impl MetricsSpec {
    /// The source URL, for reports.
    pub fn source_url(&self) -> String {
        match &self.source {
            Source::Scrape(url) | Source::Prometheus(url) => crate::config::display_url(url),
        }
    }
}

/// Parses `512Mi`, `2G`, `0.05`, `1e6`.
pub fn parse_quantity(text: &str) -> Option<f64> {
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
pub fn resolve(
    config: MetricsConfig,
    defaults: &DefaultsConfig,
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
                    crate::config::display_url_text(text)
                ),
            ));
            None
        }
    };
    let source = match (&config.scrape, &config.prometheus) {
        (Some(scrape), None) => url(scrape, "scrape", &mut errors).map(Source::Scrape),
        (None, Some(prometheus)) => {
            url(prometheus, "prometheus", &mut errors).map(Source::Prometheus)
        }
        _ => {
            errors.push(config_error(field, "give exactly one of `scrape` (a /metrics URL) or `prometheus` (a Prometheus server URL)"));
            None
        }
    };
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
        let expr = if matches!(source, Some(Source::Scrape(_))) {
            match parse_expr(&rule.expr) {
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
            text: rule.expr.clone(),
            expr,
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
    let max_body = match config.max_body.as_deref().map(crate::config::parse_size) {
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
    let _ = defaults;
    match source {
        Some(source) if errors.is_empty() => Ok(MetricsSpec {
            source,
            window: config.window.map_or(WINDOW, |d| d.0),
            rules,
            no_data_passes,
            headers,
            max_body,
        }),
        _ => Err(errors),
    }
}

// ---------------------------------------------------------------------------------------
// Exposition format.

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

/// Parses the Prometheus text exposition format (comments and timestamps ignored).
pub fn parse_exposition(text: &str) -> Result<Vec<Series>, String> {
    let mut series = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: `{}`", number + 1, excerpt(line));
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| bad("no value"))?;
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let mut consumed = None;
            loop {
                while chars
                    .peek()
                    .is_some_and(|(_, c)| *c == ',' || c.is_whitespace())
                {
                    chars.next();
                }
                match chars.peek() {
                    Some((i, '}')) => {
                        consumed = Some(*i + 1);
                        break;
                    }
                    None => break,
                    _ => {}
                }
                let mut label = String::new();
                while let Some((_, c)) = chars.peek() {
                    if *c == '=' {
                        break;
                    }
                    label.push(*c);
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('=')
                    || chars.next().map(|(_, c)| c) != Some('"')
                {
                    return Err(bad("malformed labels"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(bad("unterminated label value")),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(bad("unterminated label value")),
                    }
                }
                labels.push((label.trim().to_owned(), value));
            }
            let consumed = consumed.ok_or_else(|| bad("unterminated labels"))?;
            rest = &inner[consumed..];
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value_text {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other.parse().map_err(|_| bad("value is not a number"))?,
        };
        series.push(Series {
            name,
            labels,
            value,
        });
    }
    Ok(series)
}

fn excerpt(text: &str) -> String {
    super::expect::excerpt(text, 120)
}

// ---------------------------------------------------------------------------------------
// Expressions (scrape source).

/// A label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub label: String,
    /// `=`, `!=`, `=~`, `!~`.
    pub op: MatchOp,
    /// Value or regex (anchored).
    pub value: String,
    regex: Option<regex::Regex>,
}

/// Matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl Matcher {
    fn matches(&self, labels: &[(String, String)]) -> bool {
        let value = labels
            .iter()
            .find(|(l, _)| *l == self.label)
            .map_or("", |(_, v)| v.as_str());
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

/// A series selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Metric name.
    pub name: String,
    /// Matchers.
    pub matchers: Vec<Matcher>,
}

impl Selector {
    fn select<'a>(&'a self, scrape: &'a [Series]) -> impl Iterator<Item = &'a Series> + 'a {
        scrape.iter().filter(move |s| {
            s.name == self.name && self.matchers.iter().all(|m| m.matches(&s.labels))
        })
    }
}

/// A scrape-source expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Number(f64),
    /// Sum of the matching series at the end of the window.
    Instant(Selector),
    /// Sum over matching series of their increase over the window (counter resets handled).
    Increase(Selector),
    /// Increase per second.
    Rate(Selector),
    /// `a / b`
    Div(Box<Expr>, Box<Expr>),
    /// `a * b`
    Mul(Box<Expr>, Box<Expr>),
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.text[self.position..].starts_with(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.position..].starts_with(token) {
            self.position += token.len();
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        let rest = &self.text[self.position..];
        let length = rest
            .char_indices()
            .find(|(i, c)| {
                !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    || (*i == 0 && c.is_ascii_digit())
            })
            .map_or(rest.len(), |(i, _)| i);
        (length > 0).then(|| {
            self.position += length;
            rest[..length].to_owned()
        })
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        loop {
            if self.eat("/") {
                left = Expr::Div(Box::new(left), Box::new(self.term()?));
            } else if self.eat("*") {
                left = Expr::Mul(Box::new(left), Box::new(self.term()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        self.skip_space();
        if self.eat("(") {
            let inner = self.expr()?;
            return if self.eat(")") {
                Ok(inner)
            } else {
                Err("missing `)`".into())
            };
        }
        let rest = &self.text[self.position..];
        let number_length = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
            .unwrap_or(rest.len());
        if number_length > 0 && rest.starts_with(|c: char| c.is_ascii_digit()) {
            let number = rest[..number_length]
                .parse()
                .map_err(|_| format!("`{}` is not a number", &rest[..number_length]))?;
            self.position += number_length;
            return Ok(Expr::Number(number));
        }
        let name = self
            .identifier()
            .ok_or_else(|| format!("unexpected `{}`", excerpt(rest)))?;
        match name.as_str() {
            "increase" | "rate" => {
                if !self.eat("(") {
                    return Err(format!("`{name}` needs `(`"));
                }
                let selector = self.selector_after_name(None)?;
                if self.eat("[") {
                    return Err(format!(
                        "`{name}(...[range])`: the range is the check's `window`; write `{name}({})`",
                        selector.name
                    ));
                }
                if !self.eat(")") {
                    return Err(format!("`{name}(` takes one selector"));
                }
                Ok(if name == "increase" {
                    Expr::Increase(selector)
                } else {
                    Expr::Rate(selector)
                })
            }
            "sum" | "avg" | "max" | "min" | "histogram_quantile" | "irate" | "delta" => Err(
                format!("`{name}()` is PromQL the scrape source does not evaluate"),
            ),
            _ => Ok(Expr::Instant(self.selector_after_name(Some(name))?)),
        }
    }

    fn selector_after_name(&mut self, name: Option<String>) -> Result<Selector, String> {
        let name = match name {
            Some(name) => name,
            None => self.identifier().ok_or("expected a metric name")?,
        };
        let mut matchers = Vec::new();
        if self.eat("{") {
            loop {
                if self.eat("}") {
                    break;
                }
                let label = self.identifier().ok_or("expected a label name")?;
                let op = if self.eat("=~") {
                    MatchOp::Regex
                } else if self.eat("!~") {
                    MatchOp::NotRegex
                } else if self.eat("!=") {
                    MatchOp::NotEqual
                } else if self.eat("=") {
                    MatchOp::Equal
                } else {
                    return Err(format!("expected =, !=, =~ or !~ after `{label}`"));
                };
                self.skip_space();
                if !self.eat("\"") {
                    return Err("label values are double-quoted".into());
                }
                let rest = &self.text[self.position..];
                let end = rest.find('"').ok_or("unterminated label value")?;
                let value = rest[..end].to_owned();
                self.position += end + 1;
                let regex = match op {
                    MatchOp::Regex | MatchOp::NotRegex => Some(
                        regex::Regex::new(&format!("^(?:{value})$"))
                            .map_err(|e| format!("label regex: {e}"))?,
                    ),
                    _ => None,
                };
                matchers.push(Matcher {
                    label,
                    op,
                    value,
                    regex,
                });
                self.eat(",");
            }
        }
        Ok(Selector { name, matchers })
    }
}

/// Parses a scrape-source expression.
pub fn parse_expr(text: &str) -> Result<Expr, String> {
    let mut parser = Parser { text, position: 0 };
    let expr = parser.expr()?;
    parser.skip_space();
    if parser.position != text.len() {
        return Err(format!(
            "unexpected `{}`",
            excerpt(&text[parser.position..])
        ));
    }
    Ok(expr)
}

/// Evaluates `expr` over a window; `None` when a selector matched no series (no data).
pub fn evaluate(
    expr: &Expr,
    start: Option<&[Series]>,
    end: &[Series],
    window: Duration,
) -> Option<f64> {
    match expr {
        Expr::Number(n) => Some(*n),
        Expr::Instant(selector) => {
            let values: Vec<f64> = selector.select(end).map(|s| s.value).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        }
        Expr::Increase(selector) | Expr::Rate(selector) => {
            let start = start.unwrap_or(end);
            let mut any = false;
            let mut total = 0.0;
            for series in selector.select(end) {
                any = true;
                let before = start
                    .iter()
                    .find(|s| s.name == series.name && s.labels == series.labels)
                    .map_or(0.0, |s| s.value);
                // A counter that went down was reset: everything it counted since is new.
                total += if series.value >= before {
                    series.value - before
                } else {
                    series.value
                };
            }
            if !any {
                return None;
            }
            Some(match expr {
                Expr::Rate(_) if !window.is_zero() => total / window.as_secs_f64(),
                _ => total,
            })
        }
        Expr::Div(a, b) => {
            let (a, b) = (
                evaluate(a, Some(start.unwrap_or(end)), end, window)?,
                evaluate(b, start, end, window)?,
            );
            // 0/0 (no traffic in the window) is no data, not a ratio of 0.
            (b != 0.0).then(|| a / b)
        }
        Expr::Mul(a, b) => {
            Some(evaluate(a, start, end, window)? * evaluate(b, start, end, window)?)
        }
    }
}

/// The first selector of `expr` that matches no series, by metric name.
pub fn missing_selector(expr: &Expr, series: &[Series]) -> Option<String> {
    match expr {
        Expr::Number(_) => None,
        Expr::Instant(selector) | Expr::Increase(selector) | Expr::Rate(selector) => selector
            .select(series)
            .next()
            .is_none()
            .then(|| selector.name.clone()),
        Expr::Div(a, b) | Expr::Mul(a, b) => {
            missing_selector(a, series).or_else(|| missing_selector(b, series))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fetching.

/// A built metrics probe.
#[derive(Debug)]
pub struct MetricsProbe {
    client: reqwest::Client,
    spec: MetricsSpec,
}

impl MetricsProbe {
    /// Builds the HTTP client.
    pub fn build(
        spec: &MetricsSpec,
        check: &Check,
        headers: &ResolvedHeaders,
    ) -> Result<Self, SetupError> {
        let tls = super::tls::client_config(
            &crate::config::TlsSpec {
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
        Ok(Self {
            client,
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
                format!("query `{expr}`: not JSON: {}", excerpt(&text)),
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
    pub async fn attempt(&self) -> Result<Sample, Failure> {
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
            Source::Prometheus(_) => self
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
        }
        Ok(values)
    }

    /// Observation: scrape (or wait), wait the window, evaluate every rule.
    pub async fn observe(&self, baseline: Option<&BTreeMap<String, f64>>) -> ObservationOutcome {
        let first = match &self.spec.source {
            Source::Scrape(url) => match self.scrape(url).await {
                Ok(series) => Some(series),
                Err(failure) => {
                    return ObservationOutcome::from_thresholds(vec![failed_fetch(&failure)]);
                }
            },
            Source::Prometheus(_) => None,
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
pub fn judge(
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

    const SCRAPE: &str = r#"
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a"} 1000
http_requests_total{code="503",path="/a"} 10
http_requests_total{code="500",path="/b"} 5 1712000000000
process_resident_memory_bytes 1.048576e+08
weird{label="with \"quote\" and \\ and\nnewline"} +Inf
"#;

    #[test]
    fn parses_the_exposition_format() {
        let series = parse_exposition(SCRAPE).expect("parses");
        assert_eq!(series.len(), 5);
        assert_eq!(
            series[0].labels,
            [("code".into(), "200".into()), ("path".into(), "/a".into())]
        );
        assert_eq!(series[3].value, 104_857_600.0);
        assert_eq!(series[4].labels[0].1, "with \"quote\" and \\ and\nnewline");
        assert!(series[4].value.is_infinite());
        assert!(parse_exposition("metric{a=\"b\" 1").is_err());
        assert!(parse_exposition("metric one").is_err());
    }

    #[test]
    fn error_ratio_over_the_window() {
        let start = parse_exposition(SCRAPE).expect("parses");
        let end_text = SCRAPE
            .replace("} 1000", "} 1190")
            .replace("path=\"/a\"} 10", "path=\"/a\"} 14")
            .replace("path=\"/b\"} 5 ", "path=\"/b\"} 11 ");
        let end = parse_exposition(&end_text).expect("parses");
        let ratio = parse_expr(
            r#"increase(http_requests_total{code=~"5.."}) / increase(http_requests_total)"#,
        )
        .expect("parses");
        // 5xx: +4 +6 = 10 of +200 in all: 5 %.
        let value = evaluate(&ratio, Some(&start), &end, Duration::from_secs(10)).expect("data");
        assert!((value - 0.05).abs() < 1e-12, "{value}");
        let rate = parse_expr("rate(http_requests_total)").expect("parses");
        assert_eq!(
            evaluate(&rate, Some(&start), &end, Duration::from_secs(10)),
            Some(20.0)
        );
    }

    #[test]
    fn counter_resets_and_missing_series() {
        let start = parse_exposition("c 100\n").expect("parses");
        let end = parse_exposition("c 7\n").expect("parses");
        let increase = parse_expr("increase(c)").expect("parses");
        assert_eq!(
            evaluate(&increase, Some(&start), &end, Duration::from_secs(1)),
            Some(7.0)
        );
        let missing = parse_expr("increase(nope)").expect("parses");
        assert_eq!(
            evaluate(&missing, Some(&start), &end, Duration::from_secs(1)),
            None
        );
        let idle = parse_expr("increase(c) / increase(c)").expect("parses");
        assert_eq!(
            evaluate(&idle, Some(&end), &end, Duration::from_secs(1)),
            None,
            "0/0 is no data"
        );
    }

    #[test]
    fn unsupported_promql_is_refused_with_a_pointer() {
        for text in [
            "sum(rate(x[1m]))",
            "increase(x[5m])",
            "x +",
            "x{a=b}",
            "histogram_quantile(0.9, x)",
        ] {
            assert!(parse_expr(text).is_err(), "{text}");
        }
        assert!(parse_expr(r#"process_resident_memory_bytes{job!="x"} * 2"#).is_ok());
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("2G"), Some(2e9));
        assert_eq!(parse_quantity("0.05"), Some(0.05));
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn judging_rules() {
        let rule = |bound| Rule {
            text: "m".into(),
            expr: None,
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
