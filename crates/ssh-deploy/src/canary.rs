//! Canary-first rolling (issue #11, part 2): the first host is deployed alone, observed against a
//! baseline recorded from the old release on that host just before, and only then do the other
//! hosts follow batch by batch. A failed canary rolls back the canary alone and stops.
//!
//! The observation is a health-gate file whose thresholds may be relative to the baseline
//! (`p95: "< 2x baseline"`); [`quick_gate`] writes the one users ask for from a URL.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use health_gate::baseline::BaselineFile;
use health_gate::config::Gate;
use health_gate::gate::{CheckInputs, Progress, baseline_from, build_report, run_gate};
use health_gate::report::{Decision, Report};

use crate::deploy::{HostError, HostRun, Shared, resolve_gate};

/// Validated canary settings.
#[derive(Debug, Clone)]
pub struct Canary {
    /// The observation gate for the canary host (`{vars.NAME}` filled in; `{host}` left).
    pub gate: String,
    /// Where the text came from, for the plan (`--canary-url ...` or the file).
    pub origin: String,
}

/// The gate `--canary-url` stands for: ready, then `requests` requests at concurrency 4 with
/// "error rate < 5 %" and "p95 < 2x baseline".
pub fn quick_gate(url: &str, requests: u64) -> String {
    // The URL goes in as a single-quoted YAML scalar: `'` doubled, nothing else special.
    let url = url.replace('\'', "''");
    format!(
        "checks:\n  - name: canary\n    attempt_timeout: 2s\n    http: {{ url: '{url}' }}\n    \
         readiness: {{ interval: 100ms, deadline: 60s }}\n    \
         observe: {{ requests: {requests}, concurrency: 4, warmup: 5, \
         thresholds: {{ error_rate: \"< 5%\", latency: {{ p95: \"< 2x baseline\" }} }} }}\n"
    )
}

/// Deploys the canary host: records the baseline from the release it runs now, runs the
/// normal per-host deploy (`deploy`), then observes the canary against the baseline.
pub fn deploy_canary(
    run: &mut HostRun,
    shared: &Shared<'_>,
    canary: &Canary,
    host_name: &str,
    prepare: impl FnOnce(&mut HostRun) -> Result<(), HostError>,
    deploy: impl FnOnce(&mut HostRun) -> Result<(), HostError>,
) -> Result<(), HostError> {
    let error = |label: &str, message: String| HostError {
        host: label.to_owned(),
        stage: "canary".into(),
        message,
        infrastructure: false,
    };
    let label = run.label().to_owned();
    let gate = resolve_gate(&canary.gate, host_name).map_err(|e| error(&label, e))?;
    // Lock and status first, so the baseline is read from the release serving now and no other
    // deploy can change it meanwhile.
    prepare(run)?;
    let recorded = match &run.status.current {
        Some(current) => {
            record_baseline(&gate, shared).map_err(|reason| format!("{reason} (release {current})"))
        }
        None => Err("first deploy: no release runs on the host yet".to_owned()),
    };
    let baseline = match recorded {
        Ok(baseline) => {
            shared.console.log(&format!(
                "[{label}] canary baseline recorded from the current release: {}",
                describe(&baseline)
            ));
            Some(baseline)
        }
        Err(reason) => {
            shared.console.log(&format!(
                "warning: [{label}] no canary baseline ({reason}); relative thresholds will fail, \
                 absolute ones still apply"
            ));
            None
        }
    };
    deploy(run)?;
    shared.console.log(&format!(
        "[{label}] observing the canary against the baseline ({})",
        canary.origin
    ));
    let report = observe(&gate, baseline.as_ref(), shared).map_err(|e| error(&label, e))?;
    if report.decision == Decision::Go {
        shared.console.log(&format!(
            "[{label}] canary passed; continuing batch by batch"
        ));
        return Ok(());
    }
    let reasons: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} ({}): {}", c.name, c.target, c.failure_reason()))
        .collect();
    Err(error(
        &label,
        format!(
            "canary failed against the baseline{}: {}",
            if report.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            reasons.join("; ")
        ),
    ))
}

fn describe(baseline: &BaselineFile) -> String {
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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the gate's runtime: {e}"))
}

fn execute(gate: &Gate, inputs: &CheckInputs, shared: &Shared<'_>) -> Result<Report, String> {
    let progress: Progress = Arc::new(Mutex::new(vec![None; gate.checks.len()]));
    let started = Instant::now();
    let finished = runtime()?.block_on(shared.interrupt.until(run_gate(
        gate,
        inputs,
        progress.clone(),
    )));
    Ok(build_report(
        gate,
        &progress,
        finished.is_none(),
        started.elapsed(),
    ))
}

/// Runs the observation against the release serving now and keeps its statistics. Relative
/// thresholds cannot pass without a baseline, so the burst is not cut short for them.
fn record_baseline(gate: &Gate, shared: &Shared<'_>) -> Result<BaselineFile, String> {
    let mut recording = gate.clone();
    for check in &mut recording.checks {
        if let Some(observation) = &mut check.observe {
            observation.abort_early = false;
        }
    }
    let report = execute(&recording, &CheckInputs::default(), shared)?;
    if report.interrupted {
        return Err("interrupted".into());
    }
    if let Some(check) = report.checks.iter().find(|c| !c.readiness.ready) {
        return Err(format!(
            "check `{}` is not ready on the current release: {}",
            check.name,
            check.failure_reason()
        ));
    }
    let baseline = baseline_from(&recording, &report);
    if baseline.checks.is_empty() {
        return Err("the canary gate observes nothing (add `observe:` to a check)".into());
    }
    Ok(baseline)
}

fn observe(
    gate: &Gate,
    baseline: Option<&BaselineFile>,
    shared: &Shared<'_>,
) -> Result<Report, String> {
    let mut inputs = CheckInputs::default();
    if let Some(file) = baseline {
        for check in &gate.checks {
            if let (Some(recorded), Some(observation)) =
                (file.checks.get(&check.name), &check.observe)
            {
                recorded
                    .check_comparable(check, observation)
                    .map_err(|e| e.to_string())?;
                inputs
                    .baselines
                    .insert(check.name.clone(), recorded.clone());
            }
        }
    }
    execute(gate, &inputs, shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_gate_parses_with_the_thresholds_users_ask_for() {
        let text = quick_gate("http://{host}:8080/it's", 50);
        let gate = resolve_gate(&text, "10.0.0.5").expect("valid gate");
        let check = &gate.checks[0];
        assert_eq!(check.probe.target(), "http://10.0.0.5:8080/it's");
        let observation = check.observe.as_ref().expect("observes");
        assert_eq!(observation.requests, Some(50));
        assert_eq!(observation.latency.len(), 1);
    }
}
