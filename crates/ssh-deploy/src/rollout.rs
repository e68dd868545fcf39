//! The one ending every deploy strategy shares: per host the release log, retention and unlock
//! (reconnecting once when a dropped connection left the lock held), and for the fleet the
//! `previous-release-id`, `hosts` and `result` outputs, the summary and the verdict.
//!
//! Strategies differ in how hosts are rolled out (batches, slots, compose services); they record
//! each host's [`HostResult`] here and end with [`Rollout::conclude`] and a [`FleetOutcome`].

use runner_protocol::console::Console;
use runner_protocol::{Runner, Verdict};

use crate::error::Error;
use crate::host_run::{HostContext, HostError, HostRun};
use crate::options::Connection;
use crate::quote::ReleaseId;
use crate::report::{HostReport, HostResult, PhaseSpan};

/// Milliseconds from `origin` to `at` (0 when `at` came first).
fn millis_since(origin: std::time::Instant, at: std::time::Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX)
}

/// How the whole rollout ended.
#[derive(Debug)]
pub(crate) enum FleetOutcome {
    /// Every host is on the release.
    Success,
    /// Hosts failed before anything was switched: exit 3, hosts unchanged.
    Failed(Vec<HostError>),
    /// A failure, and what was switched was put back. `infrastructure`: only the network or a
    /// host failed, not the release (exit 3 instead of 1).
    RolledBack {
        /// What failed and where it was rolled back.
        message: String,
        /// Every failure was an infrastructure one.
        infrastructure: bool,
    },
    /// A first deploy failed after its switch: there was no release to roll back to, so the
    /// new one was withdrawn (services stopped, `current` removed): `failed`, exit 1 like any
    /// failed gate.
    Withdrawn(String),
    /// A rollback did not complete.
    RollbackFailed(String),
    /// SIGINT/SIGTERM: these hosts were rolled back.
    Interrupted(Vec<String>),
    /// The rollout went through, but hosts failed within the failure budget (`--max-failed`)
    /// and were put back on their previous release (exit 1).
    Partial(String),
}

/// The hosts of one rollout and what became of them.
pub(crate) struct Rollout<'a> {
    connection: &'a Connection,
    release: &'a ReleaseId,
    checksum: &'a str,
    keep: Option<usize>,
    console: Console,
    reports: Vec<Option<HostReport>>,
    /// When the rollout started: the origin of the timeline's phases.
    started: std::time::Instant,
}

impl<'a> Rollout<'a> {
    /// A rollout of `release` (its artifact or deploy file `checksum` in the release log) to the
    /// hosts of `connection`; `keep`: retention after a successful host.
    pub(crate) fn new(
        connection: &'a Connection,
        release: &'a ReleaseId,
        checksum: &'a str,
        keep: Option<usize>,
        console: Console,
    ) -> Self {
        Self {
            reports: vec![None; connection.hosts.len()],
            connection,
            release,
            checksum,
            keep,
            console,
            started: std::time::Instant::now(),
        }
    }

    /// Records how host `index` ended (a later record replaces an earlier one).
    pub(crate) fn record(
        &mut self,
        index: usize,
        run: Option<&HostRun>,
        result: HostResult,
        error: Option<String>,
    ) {
        self.reports[index] = Some(HostReport {
            host: self.connection.hosts[index].label(),
            result,
            previous: run.and_then(|r| r.previous.as_ref().map(ToString::to_string)),
            error,
            seconds: run.map_or(0.0, |r| r.started.elapsed().as_secs_f64()),
            phases: run.map_or_else(Vec::new, |r| {
                r.phases
                    .iter()
                    .map(|phase| PhaseSpan {
                        name: phase.name,
                        start_ms: millis_since(self.started, phase.start),
                        end_ms: millis_since(self.started, phase.end),
                    })
                    .collect()
            }),
        });
    }

    /// The error recorded for host `index`.
    pub(crate) fn error(&self, index: usize) -> Option<&str> {
        self.reports[index].as_ref()?.error.as_deref()
    }

    /// What was recorded for host `index`.
    pub(crate) fn result(&self, index: usize) -> Option<&HostResult> {
        self.reports[index].as_ref().map(|r| &r.result)
    }

    /// Ends the work on host `index`: the release log (when `log` names the result to write),
    /// retention (when it succeeded) and the unlock, as one remote command. When the connection
    /// dropped (e.g. mid-upload) and the lock is still held, reconnects once to release it and
    /// remove this run's partial upload, so a re-run is not blocked. Failures are warnings.
    pub(crate) fn finish(
        &mut self,
        index: usize,
        run: &mut HostRun,
        context: &HostContext<'_>,
        log: Option<&str>,
    ) {
        let succeeded = self.result(index).is_some_and(HostResult::succeeded);
        let word = log.unwrap_or("failed");
        let entry = log.map(|_| (self.release, self.checksum));
        let keep = self.keep.filter(|_| succeeded);
        let mut errors = run.finish(context, entry, word, keep);
        if run.holds_lock() {
            if let Ok(remote) = self.connection.connect(&self.connection.hosts[index]) {
                self.console.log(&format!(
                    "[{}] reconnected to release the deploy lock",
                    run.label()
                ));
                run.reconnect(remote);
                errors = run.finish(context, None, word, None);
            }
        }
        for error in errors {
            self.console.warn(&error.to_string());
        }
    }

    /// Writes the outputs and the summary, and turns `outcome` into the verdict.
    pub(crate) fn conclude(
        self,
        runner: &mut Runner,
        title: &str,
        outcome: FleetOutcome,
    ) -> Result<Verdict, Error> {
        let reports: Vec<HostReport> = self
            .reports
            .into_iter()
            .enumerate()
            .map(|(index, report)| {
                report.unwrap_or_else(|| HostReport::skipped(self.connection.hosts[index].label()))
            })
            .collect();
        let previous = reports
            .iter()
            .find_map(|r| r.previous.clone())
            .unwrap_or_default();
        runner.set_output("previous-release-id", previous)?;
        crate::report::publish(runner, title, &reports)?;
        let (result, verdict) = match outcome {
            FleetOutcome::Success => ("success", Ok(Verdict::Success)),
            FleetOutcome::Failed(errors) => ("failed", Err(Error::Hosts(errors))),
            FleetOutcome::RolledBack {
                message,
                infrastructure: true,
            } => (
                "rolled-back",
                Err(Error::RestoredAfterInfrastructure(message)),
            ),
            FleetOutcome::RolledBack { message, .. } => {
                ("rolled-back", Ok(Verdict::RolledBack(message)))
            }
            FleetOutcome::Partial(message) => ("partial", Ok(Verdict::Failed(message))),
            FleetOutcome::Withdrawn(message) => ("failed", Ok(Verdict::Failed(message))),
            FleetOutcome::RollbackFailed(message) => {
                ("rollback-failed", Err(Error::RollbackFailed(message)))
            }
            FleetOutcome::Interrupted(rolled_back) => (
                "interrupted",
                Ok(Verdict::Interrupted(if rolled_back.is_empty() {
                    "interrupted: nothing was switched; locks released".to_owned()
                } else {
                    format!(
                        "interrupted: rolled back to the previous release on {}; locks released",
                        rolled_back.join(", ")
                    )
                })),
            ),
        };
        runner.set_output("result", result)?;
        verdict
    }
}
