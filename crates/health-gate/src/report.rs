//! The gate's report: JSON for machines, a markdown table for the step summary, and a table
//! for the terminal.

use serde::Serialize;

use crate::outcome::ObservationOutcome;
use crate::outcome::ReadinessOutcome;
use crate::probe::cold::ColdRequest;

/// `go` or `rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Every required check passed.
    Go,
    /// The deploy should be rolled back.
    Rollback,
}

impl Decision {
    /// `go` / `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Go => "go",
            Decision::Rollback => "rollback",
        }
    }
}

/// One check's results.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Name.
    pub name: String,
    /// `http`, `grpc`, `sse`, `tcp`.
    pub kind: &'static str,
    /// URL or address.
    pub target: String,
    /// Passed both phases.
    pub passed: bool,
    /// Readiness phase.
    pub readiness: ReadinessOutcome,
    /// The cold request after readiness, timed phase by phase (http, sse and tcp checks).
    pub cold: Option<ColdRequest>,
    /// Observation phase, when configured and reached.
    pub observation: Option<ObservationOutcome>,
    /// A setup error (bad TLS file, unset header variable) that prevented probing.
    pub error: Option<String>,
}

impl CheckReport {
    /// One line saying why the check failed (empty when it passed).
    pub fn failure_reason(&self) -> String {
        if self.passed {
            return String::new();
        }
        if let Some(error) = &self.error {
            return error.clone();
        }
        if !self.readiness.ready {
            let stopped = match &self.readiness.stopped {
                Some(crate::outcome::Stopped::Fatal) => "stopped on a fatal failure",
                Some(crate::outcome::Stopped::Cancelled) => "cancelled",
                _ => "not ready by the deadline",
            };
            return match &self.readiness.last_failure {
                Some(failure) => format!(
                    "{stopped} after {} attempts; last: {failure}",
                    self.readiness.attempts
                ),
                None => format!("{stopped} after {} attempts", self.readiness.attempts),
            };
        }
        match &self.observation {
            Some(observation) => observation
                .thresholds
                .iter()
                .filter(|t| !t.passed)
                .map(|t| format!("{} failed: {}", t.threshold, t.detail))
                .collect::<Vec<_>>()
                .join("; "),
            None => "failed".into(),
        }
    }
}

/// The whole gate.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The decision.
    pub decision: Decision,
    /// Checks that must pass (`all` or a number).
    pub required: String,
    /// Checks that passed.
    pub passed: usize,
    /// Per check, in configuration order (unfinished checks are absent when interrupted).
    pub checks: Vec<CheckReport>,
    /// The gate was interrupted by a signal.
    pub interrupted: bool,
    /// Gate duration in milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    /// Rows for the summary and terminal tables.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.checks
            .iter()
            .map(|check| {
                let ready = match (&check.readiness.ready_after, check.readiness.ready) {
                    (Some(after), true) => format!(
                        "{:.0} ms ({} attempts)",
                        after.by.as_secs_f64() * 1000.0,
                        check.readiness.attempts
                    ),
                    _ => format!("no ({} attempts)", check.readiness.attempts),
                };
                let (errors, latency) = match &check.observation {
                    Some(o) => (
                        format!("{}/{}", o.failed, o.counted),
                        format!(
                            "{:.1} / {:.1} / {:.1}",
                            o.latency_ms.p50, o.latency_ms.p95, o.latency_ms.p99
                        ),
                    ),
                    None => ("-".into(), "-".into()),
                };
                vec![
                    check.name.clone(),
                    check.kind.to_owned(),
                    if check.passed {
                        "pass".into()
                    } else {
                        "FAIL".into()
                    },
                    ready,
                    check
                        .cold
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), ColdRequest::summary),
                    errors,
                    latency,
                    check.failure_reason(),
                ]
            })
            .collect()
    }

    /// Table headers matching [`Report::rows`].
    pub const HEADERS: [&'static str; 8] = [
        "check",
        "kind",
        "result",
        "ready after",
        "cold dns / connect / tls / ttfb / total ms",
        "failed/total",
        "p50 / p95 / p99 ms",
        "reason",
    ];

    /// A plain-text table for the terminal.
    pub fn text_table(&self) -> String {
        let rows = self.rows();
        let mut widths: Vec<usize> = Self::HEADERS.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut text = line(Self::HEADERS.iter().map(|h| (*h).to_owned()).collect());
        for row in rows {
            text.push('\n');
            text.push_str(&line(row));
        }
        text
    }
}
