//! What became of each host, typed: the `hosts` output, the step summary table and the log lines
//! every subcommand that touches hosts ends with.

use runner_protocol::Runner;
use runner_protocol::summary::GanttTask;

use crate::error::Error;
use crate::quote::ReleaseId;

/// How one host ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostResult {
    /// The new release is live.
    Deployed,
    /// The release was already live.
    Unchanged,
    /// Put back on the release it ran before.
    RolledBack,
    /// Failed with nothing switched (or before it was reached).
    Failed,
    /// Not started: an earlier host or batch failed.
    Skipped,
    /// The rollback itself failed: the host needs a look.
    RollbackFailed,
    /// `rollback`: switched to this release.
    RolledBackTo(ReleaseId),
}

impl HostResult {
    /// Deployed or unchanged.
    pub(crate) fn succeeded(&self) -> bool {
        matches!(self, HostResult::Deployed | HostResult::Unchanged)
    }
}

impl std::fmt::Display for HostResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostResult::Deployed => f.write_str("deployed"),
            HostResult::Unchanged => f.write_str("unchanged"),
            HostResult::RolledBack => f.write_str("rolled-back"),
            HostResult::Failed => f.write_str("failed"),
            HostResult::Skipped => f.write_str("skipped"),
            HostResult::RollbackFailed => f.write_str("rollback-failed"),
            HostResult::RolledBackTo(release) => write!(f, "rolled back to {release}"),
        }
    }
}

impl serde::Serialize for HostResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The outcome of one host.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct HostReport {
    /// Host label.
    pub(crate) host: String,
    /// How it ended.
    pub(crate) result: HostResult,
    /// The release before.
    pub(crate) previous: Option<String>,
    /// Error text, if any.
    pub(crate) error: Option<String>,
    /// Seconds spent.
    pub(crate) seconds: f64,
    /// What was done when (the summary's timeline; not an output).
    #[serde(skip)]
    pub(crate) phases: Vec<PhaseSpan>,
}

/// One phase of a host, in milliseconds from the start of the rollout.
#[derive(Debug, Clone)]
pub(crate) struct PhaseSpan {
    /// upload, switch, gate, rollback, ...
    pub(crate) name: &'static str,
    /// Start.
    pub(crate) start_ms: u64,
    /// End.
    pub(crate) end_ms: u64,
}

impl HostReport {
    /// A host nothing was done on.
    pub(crate) fn skipped(host: String) -> Self {
        Self {
            host,
            result: HostResult::Skipped,
            previous: None,
            error: None,
            seconds: 0.0,
            phases: Vec::new(),
        }
    }
}

/// Writes the `hosts` output, a summary table under `title` (what ran where: result, previous
/// release, time, each phase's duration, error), a mermaid timeline of every host's phases, and
/// one log line per host.
pub(crate) fn publish(
    runner: &mut Runner,
    title: &str,
    reports: &[HostReport],
) -> Result<(), Error> {
    runner.set_output("hosts", serde_json::to_value(reports).unwrap_or_default())?;
    let summary = runner.summary();
    summary.heading(3, title);
    summary.table(
        &[
            "host",
            "result",
            "previous release",
            "time",
            "phases",
            "error",
        ],
        reports.iter().map(|r| {
            vec![
                r.host.clone(),
                r.result.to_string(),
                r.previous.clone().unwrap_or_else(|| "-".into()),
                format!("{:.1}s", r.seconds),
                r.phases
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {:.1}s",
                            p.name,
                            p.end_ms.saturating_sub(p.start_ms) as f64 / 1000.0
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                r.error.clone().unwrap_or_default(),
            ]
        }),
    );
    let tasks: Vec<GanttTask> = reports
        .iter()
        .flat_map(|r| {
            r.phases.iter().map(|p| GanttTask {
                section: r.host.clone(),
                name: p.name.to_owned(),
                start_ms: p.start_ms,
                end_ms: p.end_ms,
            })
        })
        .collect();
    if !tasks.is_empty() {
        summary.gantt(&format!("{title}: timeline"), &tasks);
    }
    for r in reports {
        runner.console().log(&format!(
            "{:<30} {:<16} previous={} {:.1}s",
            r.host,
            r.result.to_string(),
            r.previous.as_deref().unwrap_or("-"),
            r.seconds
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_serialize_as_the_words_the_outputs_always_had() {
        let id = ReleaseId::parse("v1").expect("id");
        let words: Vec<String> = [
            HostResult::Deployed,
            HostResult::Unchanged,
            HostResult::RolledBack,
            HostResult::Failed,
            HostResult::Skipped,
            HostResult::RollbackFailed,
            HostResult::RolledBackTo(id),
        ]
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .expect("json")
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
        assert_eq!(
            words,
            [
                "deployed",
                "unchanged",
                "rolled-back",
                "failed",
                "skipped",
                "rollback-failed",
                "rolled back to v1"
            ]
        );
    }
}
