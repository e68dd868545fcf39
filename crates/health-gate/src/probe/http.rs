//! HTTP(S) probe: status, content type, body and JSON assertions, bounded body reads,
//! redirect policy, TLS policy, fixed address (`connect_to`), proxy policy.

use std::time::{Duration, Instant};

use crate::config::{Check, HttpSpec};
use crate::expect::json::check_json;
use crate::failure::{Failure, FailureKind, classify_connect_error, error_chain};

use super::{Phase, ResolvedHeaders, Sample, SetupError, apply_proxy, header_map};

/// A built HTTP probe.
#[derive(Debug)]
pub(crate) struct HttpProbe {
    client: reqwest::Client,
    spec: HttpSpec,
    attempt_timeout: Duration,
}

/// Marks a redirect refused by our policy, so the error is classified as `redirect_loop`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RedirectRefused(String);

impl HttpProbe {
    /// Builds the client for `spec`.
    pub(crate) fn build(
        spec: &HttpSpec,
        check: &Check,
        headers: &ResolvedHeaders,
        phase: Phase,
    ) -> Result<Self, SetupError> {
        let tls = super::tls::client_config(&spec.tls, &[b"h2", b"http/1.1"])?;
        let redirect = if spec.follow_redirects {
            let max = spec.max_redirects;
            let same_host_only = spec.same_host_only;
            let origin_host = spec.url.host_str().map(str::to_owned);
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    let error = RedirectRefused(format!("more than {max} redirects"));
                    return attempt.error(error);
                }
                if same_host_only && attempt.url().host_str().map(str::to_owned) != origin_host {
                    let error = RedirectRefused(format!(
                        "redirect to another host: {}",
                        crate::url::display_url(attempt.url())
                    ));
                    return attempt.error(error);
                }
                attempt.follow()
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(check.attempt_timeout)
            .connect_timeout(check.connect_timeout)
            .redirect(redirect)
            .default_headers(header_map(headers)?)
            .user_agent(concat!("health-gate/", env!("CARGO_PKG_VERSION")));
        if phase == Phase::Readiness {
            // Every readiness attempt opens a new connection: a pooled one would hide a
            // restarted or refusing server.
            builder = builder.pool_max_idle_per_host(0);
        }
        if let (Some(addr), Some(host)) = (spec.connect_to, spec.url.host_str()) {
            builder = builder.resolve(host, addr);
        }
        builder = apply_proxy(builder, &spec.proxy, &spec.url, spec.connect_to)?;
        let client = builder
            .build()
            .map_err(|e| SetupError::Client(error_chain(&e)))?;
        Ok(Self {
            client,
            spec: spec.clone(),
            attempt_timeout: check.attempt_timeout,
        })
    }

    /// One request, judged against the expectations.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let mut request = self
            .client
            .request(self.spec.method.clone(), self.spec.url.clone());
        if let Some(body) = &self.spec.body {
            request = request.body(body.clone());
        }
        let work = async {
            let mut response = request.send().await.map_err(|e| classify_reqwest(&e))?;
            check_head(&self.spec, response.status().as_u16(), response.headers())?;
            let mut sink = BodySink::new(&self.spec);
            while let Some(chunk) = response.chunk().await.map_err(|e| classify_reqwest(&e))? {
                sink.push(&chunk)?;
            }
            sink.finish(&self.spec)?;
            Ok(Sample {
                latency: start.elapsed(),
            })
        };
        match tokio::time::timeout(self.attempt_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(timeout_failure(self.attempt_timeout)),
        }
    }
}

/// Judges a response head: the status, then the content type.
pub(crate) fn check_head(
    spec: &HttpSpec,
    status: u16,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), Failure> {
    if !spec.statuses.contains(status) {
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| format!(" (redirect to {l})"))
            .unwrap_or_default();
        return Err(Failure::new(
            FailureKind::Status,
            format!(
                "status {status}{location}, expected {}",
                describe_statuses(spec)
            ),
        ));
    }
    if let Some(expected) = &spec.content_type {
        let actual = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !media_type_matches(actual, expected) {
            return Err(Failure::new(
                FailureKind::Assertion,
                format!("content type `{actual}`, expected `{expected}`"),
            ));
        }
    }
    Ok(())
}

/// Takes a response body chunk by chunk: enforces `max_body`, and keeps the bytes only when an
/// assertion needs them.
#[derive(Debug)]
pub(crate) struct BodySink {
    max_body: u64,
    keep: bool,
    read: u64,
    body: Vec<u8>,
}

impl BodySink {
    /// A sink for `spec`'s body.
    pub(crate) fn new(spec: &HttpSpec) -> Self {
        Self {
            max_body: spec.max_body,
            keep: !spec.body_contains.is_empty()
                || spec.body_regex.is_some()
                || !spec.json.is_empty(),
            read: 0,
            body: Vec::new(),
        }
    }

    /// One chunk; fails once the body exceeds `max_body` (reading stops there).
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        self.read += chunk.len() as u64;
        if self.read > self.max_body {
            let max_body = self.max_body;
            return Err(Failure::new(
                FailureKind::BodyTooLarge,
                format!("body exceeded max_body ({max_body} bytes); stopped reading"),
            ));
        }
        if self.keep {
            self.body.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// The body assertions, once the body is complete.
    pub(crate) fn finish(self, spec: &HttpSpec) -> Result<(), Failure> {
        if self.keep {
            check_body(spec, &self.body)?;
        }
        Ok(())
    }
}

fn timeout_failure(timeout: Duration) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!(
            "no complete response within the attempt timeout ({})",
            humantime::format_duration(timeout)
        ),
    )
}

fn describe_statuses(spec: &HttpSpec) -> String {
    spec.statuses
        .0
        .iter()
        .map(|(low, high)| {
            if low == high {
                low.to_string()
            } else {
                format!("{low}-{high}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares media types, ignoring parameters and case (`application/json; charset=utf-8`).
pub(crate) fn media_type_matches(actual: &str, expected: &str) -> bool {
    let essence = |t: &str| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    essence(actual) == essence(expected)
}

fn check_body(spec: &HttpSpec, body: &[u8]) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(body);
    for needle in &spec.body_contains {
        if !text.contains(needle.as_str()) {
            return Err(Failure::new(
                FailureKind::Assertion,
                format!("body does not contain `{needle}`"),
            ));
        }
    }
    if let Some(regex) = &spec.body_regex {
        if !regex.is_match(&text) {
            return Err(Failure::new(
                FailureKind::Assertion,
                format!("body does not match /{}/", regex.as_str()),
            ));
        }
    }
    if !spec.json.is_empty() {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Failure::new(FailureKind::Assertion, format!("body is not JSON: {e}")))?;
        check_json(&spec.json, &value)?;
    }
    Ok(())
}

/// Classifies a reqwest error.
pub(crate) fn classify_reqwest(error: &reqwest::Error) -> Failure {
    let chain = error_chain(error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if err.downcast_ref::<RedirectRefused>().is_some() {
            return Failure::new(FailureKind::RedirectLoop, chain);
        }
        source = err.source();
    }
    let kind = if error.is_redirect() {
        FailureKind::RedirectLoop
    } else if error.is_connect() {
        match classify_connect_error(error) {
            FailureKind::Io if error.is_timeout() => FailureKind::ConnectTimeout,
            kind => kind,
        }
    } else if error.is_timeout() {
        FailureKind::Timeout
    } else {
        match classify_connect_error(error) {
            FailureKind::Refused | FailureKind::ConnectTimeout => FailureKind::Io,
            kind => kind,
        }
    };
    Failure::new(kind, chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert!(media_type_matches(
            "application/json; charset=utf-8",
            "application/json"
        ));
        assert!(media_type_matches("Text/Event-Stream", "text/event-stream"));
        assert!(!media_type_matches("text/html", "text/event-stream"));
        assert!(!media_type_matches("", "application/json"));
    }
}
