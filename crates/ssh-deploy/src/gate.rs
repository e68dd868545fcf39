//! Gate files as ssh-deploy uses them: filled in per host (`{host}`, `{vars.NAME}`, and per slot
//! `{port}`/`{slot}`), checked before anything connects, and run from the runner through
//! health-gate's embedding API ([`health_gate::embed`]).

use health_gate::embed::{self, BaselineFile, Gate, GateFileError, Report};

use crate::interrupt::Interrupt;

/// Why a gate file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
    /// A `{tunnel:PORT}` placeholder that is malformed or not filled in here.
    #[error("{0}")]
    Placeholder(String),
    /// Not a valid gate: every problem at its line and column in the file.
    #[error(transparent)]
    File(#[from] GateFileError),
}

/// Parses and resolves a gate file for `host`.
pub(crate) fn resolve_gate(text: &str, host: &str) -> Result<Gate, GateError> {
    if !crate::tunnel::ports(text)
        .map_err(GateError::Placeholder)?
        .is_empty()
    {
        return Err(GateError::Placeholder(
            "{tunnel:PORT} is only filled in for the deploy gate (--gate-file) of the symlink \
             and blue-green strategies; use {host} here"
                .into(),
        ));
    }
    Ok(embed::parse(&text.replace("{host}", host))?)
}

/// Checks a gate file before any connection: `{tunnel:PORT}`, `{port}` and `{slot}` stand for
/// values known only at run time and are filled with stand-ins (on the same line: the
/// problems' lines are the file's).
pub(crate) fn check(text: &str, host: &str) -> Result<(), GateError> {
    let probe = crate::tunnel::probe(text)
        .map_err(GateError::Placeholder)?
        .replace("{port}", "1")
        .replace("{slot}", "blue");
    resolve_gate(&probe, host).map(drop)
}

/// Runs a health-gate file against `host` from the runner; `Err` carries the reasons.
pub(crate) fn run_gate(text: &str, host: &str) -> Result<(), String> {
    run_gate_until(text, host, &Interrupt::default())
}

/// [`run_gate`], stopped early (as a failure) when `interrupt` is set. A panic in a probe is a
/// failed gate (health-gate's embedding API catches it), never the end of the process with
/// `current` switched and the lock held.
pub(crate) fn run_gate_until(text: &str, host: &str, interrupt: &Interrupt) -> Result<(), String> {
    let gate = resolve_gate(text, host).map_err(|e| e.to_string())?;
    let report = evaluate(&gate, None, interrupt)?;
    if report.interrupted {
        return Err("health gate interrupted (SIGINT/SIGTERM)".into());
    }
    if embed::passed(&report) {
        return Ok(());
    }
    Err(format!(
        "health gate failed ({}/{} required checks passed): {}",
        report.passed,
        report.required,
        embed::failed_reasons(&report).join("; ")
    ))
}

/// Evaluates `gate` (against `baseline`), stopping early when `interrupt` is set.
pub(crate) fn evaluate(
    gate: &Gate,
    baseline: Option<&BaselineFile>,
    interrupt: &Interrupt,
) -> Result<Report, String> {
    embed::evaluate(gate, baseline, &|| interrupt.is_set()).map_err(|e| e.to_string())
}
