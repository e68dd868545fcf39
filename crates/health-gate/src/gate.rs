//! Runs every check (readiness, then observation) concurrently and decides go or rollback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::baseline::{BaselineFile, CheckBaseline};
use crate::config::{Check, Gate, Require};
use crate::failure::Failure;
use crate::observe::observe;
use crate::outcome::ReadinessOutcome;
use crate::probe::{Phase, Probe, ResolvedHeaders, Sample, cold, dial};
use crate::readiness::{Attempt, wait_ready};
use crate::report::{CheckReport, Decision, Report};

impl Attempt for Probe {
    async fn attempt(&self) -> Result<Sample, Failure> {
        Probe::attempt(self).await
    }
}

/// Check reports filled in as checks finish, so an interrupted gate can still report them.
pub type Progress = Arc<Mutex<Vec<Option<CheckReport>>>>;

/// Everything a check needs besides its configuration.
#[derive(Debug, Clone, Default)]
pub struct CheckInputs {
    /// Resolved headers / metadata per check name.
    pub headers: BTreeMap<String, ResolvedHeaders>,
    /// Baseline per check name.
    pub baselines: BTreeMap<String, CheckBaseline>,
}

/// Runs the gate. Results land in `progress` as each check completes.
pub async fn run_gate(gate: &Gate, inputs: &CheckInputs, progress: Progress) {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, check) in gate.checks.iter().enumerate() {
        let check = check.clone();
        let headers = inputs.headers.get(&check.name).cloned().unwrap_or_default();
        let baseline = inputs.baselines.get(&check.name).cloned();
        let progress = progress.clone();
        tasks.spawn(async move {
            let report = run_check(&check, &headers, baseline.as_ref(), start).await;
            if let Ok(mut slots) = progress.lock() {
                slots[index] = Some(report);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn run_check(
    check: &Check,
    headers: &ResolvedHeaders,
    baseline: Option<&CheckBaseline>,
    start: Instant,
) -> CheckReport {
    let mut report = CheckReport {
        name: check.name.clone(),
        kind: check.probe.kind(),
        target: check.probe.target(),
        passed: false,
        readiness: ReadinessOutcome {
            ready: false,
            attempts: 0,
            ready_after: None,
            stopped: None,
            last_failure: None,
            failures: BTreeMap::new(),
        },
        cold: None,
        observation: None,
        error: None,
    };
    let probe = match Probe::build(check, headers, Phase::Readiness) {
        Ok(probe) => probe,
        Err(error) => {
            report.error = Some(error.to_string());
            return report;
        }
    };
    report.readiness = wait_ready(&check.readiness, check.attempt_timeout, start, &probe).await;
    if !report.readiness.ready {
        return report;
    }
    report.cold = cold::measure(check, headers, &dial::env_proxy_applies).await;
    // A metrics check observes its window of data rather than sending a burst.
    if let Probe::Metrics(metrics) = &probe {
        let outcome = metrics.observe(baseline.map(|b| &b.metrics)).await;
        report.passed = outcome.passed;
        report.observation = Some(outcome);
        return report;
    }
    drop(probe);
    let Some(observation) = &check.observe else {
        report.passed = true;
        return report;
    };
    // Plain http checks get a keep-alive connection per worker, dialled by hand (as wrk and
    // hey do); redirects and proxies stay with reqwest's pooled client.
    let outcome = if let Some(direct) =
        dial::DirectHttpFactory::for_check(check, headers, &dial::env_proxy_applies)
    {
        observe(
            observation,
            check.attempt_timeout,
            || direct.worker(),
            baseline,
        )
        .await
    } else {
        let probe = match Probe::build(check, headers, Phase::Observation) {
            Ok(probe) => Arc::new(probe),
            Err(error) => {
                report.error = Some(error.to_string());
                return report;
            }
        };
        observe(
            observation,
            check.attempt_timeout,
            || probe.clone(),
            baseline,
        )
        .await
    };
    report.passed = outcome.passed;
    report.observation = Some(outcome);
    report
}

/// Builds the report from whatever finished.
pub fn build_report(
    gate: &Gate,
    progress: &Progress,
    interrupted: bool,
    elapsed: Duration,
) -> Report {
    let checks: Vec<CheckReport> = progress
        .lock()
        .map(|slots| slots.iter().flatten().cloned().collect())
        .unwrap_or_default();
    let passed = checks.iter().filter(|c| c.passed).count();
    let (needed, required) = match gate.require {
        Require::All => (gate.checks.len(), "all".to_owned()),
        Require::Quorum(n) => (n, n.to_string()),
    };
    let decision = if !interrupted && passed >= needed {
        Decision::Go
    } else {
        Decision::Rollback
    };
    Report {
        decision,
        required,
        passed,
        checks,
        interrupted,
        elapsed_ms: elapsed.as_millis() as u64,
    }
}

/// A baseline file from a report's observations.
pub fn baseline_from(gate: &Gate, report: &Report) -> BaselineFile {
    let mut file = BaselineFile {
        version: 1,
        checks: BTreeMap::new(),
    };
    for check in &gate.checks {
        if let crate::config::ProbeSpec::Metrics(_) = &check.probe {
            let values = report
                .checks
                .iter()
                .find(|c| c.name == check.name)
                .and_then(|c| c.observation.as_ref())
                .map(|o| {
                    o.thresholds
                        .iter()
                        .filter_map(|t| {
                            Some((t.threshold.split(" < ").next()?.to_owned(), t.value?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            file.checks.insert(
                check.name.clone(),
                CheckBaseline::for_metrics(check, values),
            );
            continue;
        }
        let (Some(observation), Some(outcome)) = (
            &check.observe,
            report
                .checks
                .iter()
                .find(|c| c.name == check.name)
                .and_then(|c| c.observation.as_ref()),
        ) else {
            continue;
        };
        file.checks.insert(
            check.name.clone(),
            CheckBaseline::record(check, observation, outcome),
        );
    }
    file
}
