//! Canary-first rolling (issue #11, part 2): the first host is deployed alone, observed against a
//! baseline recorded from the old release on that host just before, and only then do the other
//! hosts follow batch by batch. A failed canary rolls back the canary alone and stops.
//!
//! The observation is a health-gate file whose thresholds may be relative to the baseline
//! (`p95: "< 2x baseline"`); [`quick_gate`] writes the one users ask for from a URL.

use health_gate::embed::{self, BaselineFile};

use crate::gate::{evaluate, resolve_gate};
use crate::host_run::{HostContext, HostError, HostRun};

/// Validated canary settings.
#[derive(Debug, Clone)]
pub(crate) struct Canary {
    /// The observation gate for the canary host (`{vars.NAME}` filled in; `{host}` left).
    pub(crate) gate: String,
    /// Where the text came from, for the plan (`--canary-url ...` or the file).
    pub(crate) origin: String,
}

/// The gate `--canary-url` stands for: ready, then `requests` requests at concurrency 4 with
/// "error rate < 5 %" and "p95 < 2x baseline".
pub(crate) fn quick_gate(url: &str, requests: u64) -> String {
    // The URL goes in as a single-quoted YAML scalar: `'` doubled, nothing else special.
    let url = url.replace('\'', "''");
    format!(
        "checks:\n  - name: canary\n    attempt_timeout: 2s\n    http: {{ url: '{url}' }}\n    \
         readiness: {{ interval: 100ms, deadline: 60s }}\n    \
         observe: {{ requests: {requests}, concurrency: 4, warmup: 5, \
         thresholds: {{ error_rate: \"< 5%\", latency: {{ p95: \"< 2x baseline\" }} }} }}\n"
    )
}

fn error(run: &HostRun, message: String) -> HostError {
    HostError {
        host: run.label().to_owned(),
        stage: "canary".into(),
        message,
        infrastructure: false,
    }
}

/// Records the baseline from the release the canary host serves now (call it after the lock and
/// status, before the deploy). `None`, with a warning, when there is none to record from:
/// relative thresholds will then fail, absolute ones still apply.
pub(crate) fn record_baseline(
    run: &HostRun,
    context: &HostContext<'_>,
    canary: &Canary,
    host_name: &str,
) -> Result<Option<BaselineFile>, HostError> {
    let label = run.label().to_owned();
    let gate = resolve_gate(&canary.gate, host_name).map_err(|e| error(run, e.to_string()))?;
    let recorded = match &run.status.current {
        Some(current) => embed::record_baseline(&gate, &|| context.interrupt.is_set())
            .map_err(|reason| format!("{reason} (release {current})")),
        None => Err("first deploy: no release runs on the host yet".to_owned()),
    };
    Ok(match recorded {
        Ok(baseline) => {
            context.console.log(&format!(
                "[{label}] canary baseline recorded from the current release: {}",
                embed::describe_baseline(&baseline)
            ));
            Some(baseline)
        }
        Err(reason) => {
            context.console.warn(&format!(
                "[{label}] no canary baseline ({reason}); relative thresholds will fail, \
                 absolute ones still apply"
            ));
            None
        }
    })
}

/// Observes the deployed canary against `baseline`; `Err` when it failed (the caller rolls the
/// canary back and stops).
pub(crate) fn observe(
    run: &HostRun,
    context: &HostContext<'_>,
    canary: &Canary,
    baseline: Option<&BaselineFile>,
    host_name: &str,
) -> Result<(), HostError> {
    let label = run.label().to_owned();
    let gate = resolve_gate(&canary.gate, host_name).map_err(|e| error(run, e.to_string()))?;
    context.console.log(&format!(
        "[{label}] observing the canary against the baseline ({})",
        canary.origin
    ));
    let report = evaluate(&gate, baseline, context.interrupt).map_err(|e| error(run, e))?;
    if embed::passed(&report) {
        context.console.log(&format!(
            "[{label}] canary passed; continuing batch by batch"
        ));
        return Ok(());
    }
    Err(error(
        run,
        format!(
            "canary failed against the baseline{}: {}",
            if report.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            embed::failed_reasons(&report).join("; ")
        ),
    ))
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
