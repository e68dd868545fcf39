//! health-gate against real servers on loopback: scripted HTTP(S)/SSE servers, a tonic-health
//! gRPC server, refused and blackholed ports, and the binary itself.

mod bounds;
mod cli;
mod cloudwatch;
mod cold;
mod command;
mod grpc;
mod http;
mod metrics;
mod proxy;
mod sse;
mod ws;

use std::sync::{Arc, Mutex};

use health_gate::config::GateFile;
use health_gate::failure::FailureKind;
use health_gate::gate::{CheckInputs, build_report, run_gate};
use health_gate::report::{CheckReport, Report};

/// Runs a gate file (YAML) to completion and returns its report.
pub fn run_yaml(yaml: &str) -> Report {
    let gate = GateFile::parse(yaml)
        .expect("gate parses")
        .resolve()
        .expect("gate is valid");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let progress = Arc::new(Mutex::new(vec![None; gate.checks.len()]));
    let start = std::time::Instant::now();
    runtime.block_on(run_gate(&gate, &CheckInputs::default(), progress.clone()));
    build_report(&gate, &progress, false, start.elapsed())
}

/// The only check of a report.
pub fn only(report: &Report) -> &CheckReport {
    assert_eq!(report.checks.len(), 1, "{report:?}");
    &report.checks[0]
}

/// The last readiness failure of a report's only check (panics when it has none).
pub fn last_failure(report: &Report) -> health_gate::failure::Failure {
    only(report)
        .readiness
        .last_failure
        .clone()
        .expect("the check has a readiness failure")
}

/// The kind of the last readiness failure.
pub fn last_kind(check: &CheckReport) -> Option<FailureKind> {
    check.readiness.last_failure.as_ref().map(|f| f.kind)
}
