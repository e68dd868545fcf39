//! Server-sent events probe: the stream must open with `200 text/event-stream` and deliver a
//! complete matching event (terminated by a blank line) within `first_event_within`.
//!
//! The parser is ours because the gate must count comment heartbeats (`: ping`), which the
//! event-stream crates drop silently, to tell "stream alive but no events" from "dead".

use std::time::{Duration, Instant};

use crate::config::{Check, SseSpec};
use crate::failure::{Failure, FailureKind, error_chain};

use crate::expect::json::check_json;

use super::http::{classify_reqwest, media_type_matches};
use super::{ResolvedHeaders, Sample, SetupError, apply_proxy, header_map};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `event:` name, `message` when absent.
    pub name: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Most bytes an event may hold before it completes (the unfinished line plus its `data:`
/// lines): a stream that never ends a line or an event must not grow without bound.
pub(crate) const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Incremental parser of the `text/event-stream` format.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    name: Option<String>,
    data: Vec<String>,
    /// Comment lines seen so far.
    pub heartbeats: u64,
}

impl SseParser {
    /// Feeds bytes; returns the events completed by them.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let terminator_len = match (self.buffer[end], self.buffer.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                // A CR at the very end may be the first half of CRLF: wait for more bytes.
                (b'\r', None) => break,
                _ => 1,
            };
            let line: Vec<u8> = self
                .buffer
                .drain(..end + terminator_len)
                .take(end)
                .collect();
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        events
    }

    /// Bytes held for the event being read: the unfinished line and the `data:` lines.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.buffer.len() + self.data.iter().map(String::len).sum::<usize>()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() && self.name.is_none() {
                return None;
            }
            let event = SseEvent {
                name: self.name.take().unwrap_or_else(|| "message".to_owned()),
                data: std::mem::take(&mut self.data).join("\n"),
            };
            return Some(event);
        }
        if line.starts_with(':') {
            self.heartbeats += 1;
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            // `id` and `retry` do not affect readiness; unknown fields are ignored per spec.
            _ => {}
        }
        None
    }
}

/// A built SSE probe.
#[derive(Debug)]
pub(crate) struct SseProbe {
    client: reqwest::Client,
    spec: SseSpec,
    attempt_timeout: Duration,
}

impl SseProbe {
    /// Builds the client; no whole-request timeout (it would cut the stream), per-phase
    /// deadlines are enforced in [`SseProbe::attempt`].
    pub(crate) fn build(
        spec: &SseSpec,
        check: &Check,
        headers: &ResolvedHeaders,
    ) -> Result<Self, SetupError> {
        let tls = super::tls::client_config(&spec.tls, &[b"h2", b"http/1.1"])?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(check.connect_timeout)
            .pool_max_idle_per_host(0)
            .default_headers(header_map(headers)?)
            .user_agent(concat!("health-gate/", env!("CARGO_PKG_VERSION")));
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

    /// Opens the stream and waits for the required events. Never reconnects by itself.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let request = self
            .client
            .get(self.spec.url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(reqwest::header::CACHE_CONTROL, "no-cache");
        let mut response = match tokio::time::timeout(self.attempt_timeout, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(classify_reqwest(&error)),
            Err(_) => {
                return Err(Failure::new(
                    FailureKind::Timeout,
                    format!(
                        "no response headers within {}",
                        humantime::format_duration(self.attempt_timeout)
                    ),
                ));
            }
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Failure::new(
                FailureKind::Status,
                format!("status {status}, expected 200"),
            ));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !media_type_matches(&content_type, "text/event-stream") {
            return Err(Failure::new(
                FailureKind::Assertion,
                format!(
                    "content type `{content_type}`, expected text/event-stream (is an SPA or proxy answering this path?)"
                ),
            ));
        }
        let first_deadline = start + self.spec.first_event_within;
        let mut parser = SseParser::default();
        let mut matched = 0u32;
        loop {
            let deadline = if matched == 0 {
                first_deadline
            } else {
                Instant::now() + self.spec.idle_timeout
            };
            let chunk = match tokio::time::timeout_at(deadline.into(), response.chunk()).await {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(error)) => return Err(classify_reqwest(&error)),
                Err(_) if matched == 0 => {
                    return Err(Failure::new(
                        FailureKind::NoEvent,
                        format!(
                            "stream open (200 text/event-stream) but no complete matching event within {}; {} heartbeat(s) seen",
                            humantime::format_duration(self.spec.first_event_within),
                            parser.heartbeats
                        ),
                    ));
                }
                Err(_) => {
                    return Err(Failure::new(
                        FailureKind::Stalled,
                        format!(
                            "stream stalled: {matched} of {} events, then nothing for {}",
                            self.spec.events,
                            humantime::format_duration(self.spec.idle_timeout)
                        ),
                    ));
                }
            };
            let Some(chunk) = chunk else {
                return Err(Failure::new(
                    FailureKind::Io,
                    format!(
                        "the server closed the stream after {matched} of {} events",
                        self.spec.events
                    ),
                ));
            };
            for event in parser.feed(&chunk) {
                if self.matches(&event) {
                    matched += 1;
                }
            }
            if parser.pending_bytes() > MAX_EVENT_BYTES {
                return Err(Failure::new(
                    FailureKind::BodyTooLarge,
                    format!(
                        "an event grew past {MAX_EVENT_BYTES} bytes without completing (no blank line); stopped reading"
                    ),
                ));
            }
            if matched >= self.spec.events || (self.spec.heartbeat_counts && parser.heartbeats > 0)
            {
                return Ok(Sample {
                    latency: start.elapsed(),
                });
            }
        }
    }

    fn matches(&self, event: &SseEvent) -> bool {
        if self
            .spec
            .event
            .as_ref()
            .is_some_and(|name| *name != event.name)
        {
            return false;
        }
        if self
            .spec
            .data_contains
            .as_ref()
            .is_some_and(|needle| !event.data.contains(needle.as_str()))
        {
            return false;
        }
        if !self.spec.json.is_empty() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.data) else {
                return false;
            };
            return check_json(&self.spec.json, &value).is_ok();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_across_chunks_and_line_endings() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b": hello\n\nevent: tele").is_empty());
        assert_eq!(parser.heartbeats, 1);
        assert!(parser.feed(b"metry\r\ndata: {\"a\":1}\r").is_empty());
        let events = parser.feed(b"\ndata: second line\r\n\r\n");
        assert_eq!(
            events,
            [SseEvent {
                name: "telemetry".into(),
                data: "{\"a\":1}\nsecond line".into()
            }]
        );
        // A CR at the end of the buffer may be half of a CRLF: nothing dispatches until the next
        // byte says which.
        assert!(parser.feed(b"data:no-space\rdata\r\r").is_empty());
        let events = parser.feed(b"\n");
        assert_eq!(
            events,
            [SseEvent {
                name: "message".into(),
                data: "no-space\n".into()
            }]
        );
    }

    #[test]
    fn comments_alone_dispatch_nothing() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b": ping\n\n: ping\n\n\n").is_empty());
        assert_eq!(parser.heartbeats, 2);
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_complete() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"data: partial\n").is_empty());
        assert_eq!(parser.feed(b"\n").len(), 1);
    }
}
