//! A narrow API for a tool that runs gates inside its own flow (ssh-deploy): read a gate from
//! its text, evaluate it (against a baseline when one is given), say why it failed, and record
//! a baseline from the release serving now.
//!
//! It wraps the engine's public pieces ([`crate::gate::run_gate`], [`crate::gate::build_report`],
//! [`crate::gate::baseline_from`]) so an embedder never builds a runtime, a progress table or a
//! report by hand, and a panic inside a probe is a failed evaluation, never the end of the
//! embedder's process (which may be holding a deploy lock with a release switched).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::baseline::BaselineFile;
pub use crate::config::{Gate, GateFileError};
pub use crate::report::Report;

use crate::config::GateFile;
use crate::gate::{CheckInputs, Progress, baseline_from, build_report, run_gate};
use crate::report::Decision;

/// Why a gate could not be evaluated (a gate that ran and said no is a [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The async runtime the probes need could not start.
    #[error("cannot start the gate's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A baseline does not fit the check it is for (other target, other burst).
    #[error("{0}")]
    Incomparable(String),
    /// A probe panicked.
    #[error("the health gate crashed ({0}); counted as a failed gate")]
    Crashed(String),
}

/// Parses and validates a gate file's text (placeholders already filled in). The error holds
/// every problem with its line and column in `text`; [`GateFileError::diagnostics`] places
/// them in the file the text came from.
pub fn parse(text: &str) -> Result<Gate, GateFileError> {
    let file = GateFile::parse(text).map_err(|error| GateFileError::from_parse(&error))?;
    file.resolve()
        .map_err(|errors| GateFileError::from_config(&errors, text))
}

/// Runs `gate` to its decision, comparing against `baseline` where its thresholds are relative.
/// `cancelled` is polled every 50 ms; once it returns true the evaluation stops and the report
/// says `interrupted` (a gate that did not finish never passes).
pub fn evaluate(
    gate: &Gate,
    baseline: Option<&BaselineFile>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Report, EmbedError> {
    let mut inputs = CheckInputs::default();
    if let Some(file) = baseline {
        for check in &gate.checks {
            if let (Some(recorded), Some(observation)) =
                (file.checks.get(&check.name), &check.observe)
            {
                recorded
                    .check_comparable(check, observation)
                    .map_err(|e| EmbedError::Incomparable(e.to_string()))?;
                inputs
                    .baselines
                    .insert(check.name.clone(), recorded.clone());
            }
        }
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute(gate, &inputs, cancelled)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(EmbedError::Crashed(what.to_owned()))
    })
}

fn execute(
    gate: &Gate,
    inputs: &CheckInputs,
    cancelled: &dyn Fn() -> bool,
) -> Result<Report, EmbedError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EmbedError::Runtime)?;
    let progress: Progress = Arc::new(Mutex::new(vec![None; gate.checks.len()]));
    let started = Instant::now();
    let finished = runtime.block_on(async {
        let watch = async {
            while !cancelled() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            () = run_gate(gate, inputs, progress.clone()) => true,
            () = watch => false,
        }
    });
    Ok(build_report(gate, &progress, !finished, started.elapsed()))
}

/// The report said go.
pub fn passed(report: &Report) -> bool {
    report.decision == Decision::Go
}

/// One line per failed check: `name (target): reason`.
pub fn failed_reasons(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} ({}): {}", c.name, c.target, c.failure_reason()))
        .collect()
}

/// Why a baseline could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Evaluating the gate failed.
    #[error(transparent)]
    Evaluate(#[from] EmbedError),
    /// Cancelled while recording.
    #[error("interrupted")]
    Interrupted,
    /// A check never became ready on the release serving now.
    #[error("check `{check}` is not ready on the current release: {reason}")]
    NotReady {
        /// The check.
        check: String,
        /// Its failure.
        reason: String,
    },
    /// No check has an `observe:` block.
    #[error("the canary gate observes nothing (add `observe:` to a check)")]
    ObservesNothing,
}

/// Runs the gate's observation against the release serving now and keeps its statistics.
/// Relative thresholds cannot pass without a baseline, so the burst is not cut short for them.
pub fn record_baseline(
    gate: &Gate,
    cancelled: &dyn Fn() -> bool,
) -> Result<BaselineFile, BaselineError> {
    let mut recording = gate.clone();
    for check in &mut recording.checks {
        if let Some(observation) = &mut check.observe {
            observation.abort_early = false;
        }
    }
    let report = evaluate(&recording, None, cancelled)?;
    if report.interrupted {
        return Err(BaselineError::Interrupted);
    }
    if let Some(check) = report.checks.iter().find(|c| !c.readiness.ready) {
        return Err(BaselineError::NotReady {
            check: check.name.clone(),
            reason: check.failure_reason(),
        });
    }
    let baseline = baseline_from(&recording, &report);
    if baseline.checks.is_empty() {
        return Err(BaselineError::ObservesNothing);
    }
    Ok(baseline)
}

/// A one-line summary of a baseline: `name: p95 1.2 ms over 50 requests`, per check.
pub fn describe_baseline(baseline: &BaselineFile) -> String {
    baseline
        .checks
        .iter()
        .map(|(name, check)| {
            let p95 = check.latency_us.get("p95").map_or("-".to_owned(), |us| {
                format!("{:.1} ms", *us as f64 / 1000.0)
            });
            format!("{name}: p95 {p95} over {} requests", check.samples)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_places_a_syntax_error_and_every_validation_problem() {
        let text = "checks:\n  - name: a\n    tcp: { addr: [x }\n";
        let syntax = parse(text)
            .expect_err("unclosed")
            .diagnostics("g.yaml", text);
        let location = syntax[0].location.as_ref().expect("placed");
        assert_eq!(
            (location.file.as_str(), location.line, location.column),
            ("g.yaml", Some(3), Some(18)),
            "{syntax:?}"
        );
        assert!(
            syntax[0].message.starts_with("invalid gate file: "),
            "{syntax:?}"
        );
        let text = "checks:\n  - name: a\n  - name: b\n    tcp: { addr: nope }\n";
        let invalid = parse(text)
            .expect_err("two problems")
            .diagnostics("g.yaml", text);
        let places: Vec<_> = invalid
            .iter()
            .map(|d| {
                let location = d.location.as_ref().expect("placed");
                (d.field.as_deref(), location.line)
            })
            .collect();
        assert_eq!(places.len(), 2, "{invalid:?}");
        assert_eq!(places[0], (Some("checks[0]"), Some(2)), "{invalid:?}");
        assert_eq!(places[1].1, Some(4), "{invalid:?}");
    }

    #[test]
    fn a_cancelled_evaluation_is_interrupted_and_does_not_pass() {
        // A TCP check on a port nothing listens on never becomes ready within its deadline.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let gate = parse(&format!(
            "checks:\n  - name: down\n    tcp: {{ addr: '127.0.0.1:{port}' }}\n    \
             readiness: {{ interval: 50ms, deadline: 60s }}\n"
        ))
        .expect("valid gate");
        let started = Instant::now();
        let report = evaluate(&gate, None, &|| {
            started.elapsed() > Duration::from_millis(200)
        })
        .expect("evaluated");
        assert!(report.interrupted);
        assert!(!passed(&report));
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
