//! One host being worked on ([`HostRun`]): its connection and deploy lock, and the steps every
//! strategy is built from (lock + status, stage, switch + restarts, gate, revert, finish), each
//! a remote command whose output is echoed as untrusted text and whose failure names its step.

use std::fs::File;
use std::time::{Duration, Instant};

use runner_protocol::console::Console;

use crate::commands::{LOCK_ACQUIRED, Layout, ReleaseContext, ServiceManager};
use crate::quote::ReleaseId;
use crate::remote::{ExecOutput, Remote, RemoteError};
use crate::status::{HostStatus, LockHolder, parse_status};

/// A failure on one host.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host}: {stage}: {message}")]
pub struct HostError {
    /// Host label.
    pub host: String,
    /// What was being done.
    pub stage: String,
    /// What went wrong.
    pub message: String,
    /// The connection itself failed (infrastructure) rather than a command.
    pub infrastructure: bool,
}

/// What the steps on one host work with: its layout (inventory root), its gate (inventory vars
/// filled in), the services and their manager, the lock settings, the console.
#[derive(Debug)]
pub(crate) struct HostContext<'a> {
    /// Paths and commands.
    pub layout: &'a Layout,
    /// Restarts.
    pub manager: &'a dyn ServiceManager,
    /// Services in restart order.
    pub services: &'a [String],
    /// health-gate file text (with `{host}` placeholders).
    pub gate: Option<&'a str>,
    /// Lock takeover age.
    pub lock_stale_after: Duration,
    /// How long a lock another run holds is waited for (0: refuse at once).
    pub lock_wait: Duration,
    /// Who deploys (release log, lock owner).
    pub who: &'a str,
    /// The CI run (lock owner).
    pub run: &'a str,
    /// Logs.
    pub console: &'a Console,
    /// Set by SIGINT/SIGTERM: no forward step starts once it is set.
    pub interrupt: &'a crate::interrupt::Interrupt,
}

/// One host being worked on; holds the connection and the lock until [`HostRun::finish`].
pub(crate) struct HostRun {
    remote: Box<dyn Remote>,
    token: String,
    locked: bool,
    /// The release that was current before this run.
    pub previous: Option<ReleaseId>,
    /// `current` was switched by this run.
    pub switched: bool,
    /// Services were restarted on the new release (a rollback must restart them again).
    restarted: bool,
    /// What the host had.
    pub status: HostStatus,
    /// When work on the host started.
    pub started: Instant,
    /// Rolling back or finishing: these steps run even after an interrupt.
    reverting: bool,
    /// Finishing (log, retention, unlock): no lease renewal around these steps.
    finishing: bool,
    /// The host file that grows while the running step makes progress (the partial upload).
    progress: Option<String>,
    /// What was done on the host and when (the step summary's timeline).
    pub phases: Vec<Phase>,
}

/// One timed phase of a host's deploy (upload, switch, gate, rollback, ...).
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    /// What it was.
    pub name: &'static str,
    /// When it started.
    pub start: Instant,
    /// When it ended.
    pub end: Instant,
}

impl std::fmt::Debug for HostRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRun")
            .field("host", &self.remote.label())
            .field("previous", &self.previous)
            .field("switched", &self.switched)
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    runner_protocol::console::random_hex(8)
}

impl HostRun {
    /// Wraps a connection.
    pub(crate) fn new(remote: Box<dyn Remote>) -> Self {
        Self {
            remote,
            token: random_token(),
            locked: false,
            previous: None,
            switched: false,
            restarted: false,
            status: HostStatus::default(),
            started: Instant::now(),
            reverting: false,
            finishing: false,
            progress: None,
            phases: Vec::new(),
        }
    }

    /// Runs `work` and records it as the phase `name`.
    pub(crate) fn timed<T>(&mut self, name: &'static str, work: impl FnOnce(&mut Self) -> T) -> T {
        let start = Instant::now();
        let result = work(self);
        self.phases.push(Phase {
            name,
            start,
            end: Instant::now(),
        });
        result
    }

    /// The host label.
    pub(crate) fn label(&self) -> &str {
        self.remote.label()
    }

    /// With `on`, from now on each remote command starts the next one's login shell ahead (see
    /// [`Remote::start_ahead`]); off before the last command.
    /// A shell started ahead renews the lock's lease while it waits (between commands: during
    /// a gate), as [`HostRun::gate`]'s held command does.
    pub(crate) fn start_ahead(&mut self, context: &HostContext<'_>, on: bool) {
        let idle = context.layout.renewer(&self.token);
        self.remote.start_ahead(on, &idle);
    }

    /// `command` with the lock's lease renewed while it runs (as every step of
    /// [`HostRun::step`]), when the lock is held; unchanged otherwise.
    pub(crate) fn lease_renewing(&self, context: &HostContext<'_>, command: &str) -> String {
        if self.locked && !self.finishing {
            context.layout.renewing(&self.token, None, command)
        } else {
            command.to_owned()
        }
    }

    /// This run still holds the host's deploy lock.
    pub(crate) fn holds_lock(&self) -> bool {
        self.locked
    }

    /// Replaces a dropped connection; the lock token stays, so the lock is still ours.
    pub(crate) fn reconnect(&mut self, remote: Box<dyn Remote>) {
        self.remote = remote;
    }

    fn error(&self, stage: &str, message: impl Into<String>) -> HostError {
        HostError {
            host: self.label().to_owned(),
            stage: stage.to_owned(),
            message: message.into(),
            infrastructure: false,
        }
    }

    /// Runs one step, echoing its output as untrusted text prefixed with the host.
    pub(crate) fn step(
        &mut self,
        context: &HostContext<'_>,
        stage: &str,
        command: &str,
        input: Option<&mut dyn std::io::Read>,
    ) -> Result<ExecOutput, HostError> {
        let output = self.exec_step(context, stage, command, input)?;
        self.judge(context, stage, output)
    }

    /// Runs several steps in one remote command (one login shell, one round trip), stopping at
    /// the first that fails; an error names that step. Output is echoed like [`HostRun::step`].
    pub(crate) fn steps(
        &mut self,
        context: &HostContext<'_>,
        parts: &[(String, String)],
        input: Option<&mut dyn std::io::Read>,
    ) -> Result<ExecOutput, HostError> {
        let (title, command) = crate::commands::combined(parts, true);
        let mut output = self.exec_step(context, &title, &command, input)?;
        let failed = crate::commands::failed_part(&output.stdout);
        output.stdout = without_part_markers(&output.stdout);
        let stage = failed
            .and_then(|index| parts.get(index))
            .map_or(title.as_str(), |(stage, _)| stage.as_str());
        self.judge(context, stage, output)
    }

    /// Runs `command` (nothing is judged yet); refuses to start a forward step after a signal.
    fn exec_step(
        &mut self,
        context: &HostContext<'_>,
        stage: &str,
        command: &str,
        input: Option<&mut dyn std::io::Read>,
    ) -> Result<ExecOutput, HostError> {
        if context.interrupt.is_set() && !self.reverting {
            return Err(HostError {
                host: self.label().to_owned(),
                stage: stage.to_owned(),
                message: REFUSED_AFTER_SIGNAL.into(),
                infrastructure: true,
            });
        }
        tracing::debug!(host = self.label(), stage, command, "remote command");
        // While the lock is held, the host renews its lease for as long as the step runs (an
        // upload only while it makes progress); a deploy that dies stops renewing, and its lock
        // can be taken over once the lease has passed.
        let renewing;
        let command = if self.locked && !self.finishing {
            renewing = context
                .layout
                .renewing(&self.token, self.progress.as_deref(), command);
            renewing.as_str()
        } else {
            command
        };
        // A forward upload stops at a signal; a rollback's commands always complete.
        self.remote
            .watch_interrupt((!self.reverting).then_some(context.interrupt));
        self.remote
            .exec(command, input)
            .map_err(|error: RemoteError| HostError {
                host: self.label().to_owned(),
                stage: stage.to_owned(),
                message: error.to_string(),
                infrastructure: error.is_unreachable(),
            })
    }

    /// Echoes a step's output and turns a non-zero exit status into an error naming `stage`.
    fn judge(
        &self,
        context: &HostContext<'_>,
        stage: &str,
        output: ExecOutput,
    ) -> Result<ExecOutput, HostError> {
        echo(context.console, self.label(), &output);
        if output.status != 0 {
            let detail = output.stderr.trim();
            let detail = if detail.is_empty() {
                output.stdout.trim()
            } else {
                detail
            };
            return Err(self.error(
                stage,
                format!(
                    "exited with status {}: {}",
                    output.status,
                    runner_protocol::console::visible_controls(last_lines(detail, 5))
                ),
            ));
        }
        Ok(output)
    }

    /// Runs one command without echoing its output (it may hold env file values) and without
    /// judging its exit status; the caller decides what to show.
    pub(crate) fn exec_quiet(
        &mut self,
        stage: &str,
        command: &str,
        input: Option<&mut dyn std::io::Read>,
    ) -> Result<ExecOutput, HostError> {
        tracing::debug!(host = self.label(), stage, command, "remote command");
        self.remote.exec(command, input).map_err(|error| HostError {
            host: self.label().to_owned(),
            stage: stage.to_owned(),
            message: error.to_string(),
            infrastructure: true,
        })
    }

    /// From now on a signal ends the wait for a command's output at once (`exec`; see
    /// [`crate::remote::Remote::stop_waiting_on_interrupt`]).
    pub(crate) fn stop_waiting_on_interrupt(&mut self, interrupt: &crate::interrupt::Interrupt) {
        self.remote.stop_waiting_on_interrupt(interrupt);
    }

    /// Runs `status` quietly and returns its output.
    pub(crate) fn remote_status(&mut self, layout: &Layout) -> Result<String, HostError> {
        self.quiet("status", &layout.status(None))
    }

    /// Removes the lock whoever holds it and returns the owner file.
    pub(crate) fn remote_force_unlock(&mut self, layout: &Layout) -> Result<String, HostError> {
        self.quiet("unlock", &layout.force_unlock())
    }

    fn quiet(&mut self, stage: &str, command: &str) -> Result<String, HostError> {
        let output = self.remote.exec(command, None).map_err(|error| HostError {
            host: self.label().to_owned(),
            stage: stage.to_owned(),
            message: error.to_string(),
            infrastructure: true,
        })?;
        if output.status != 0 {
            return Err(self.error(stage, output.stderr.trim().to_owned()));
        }
        Ok(output.stdout)
    }

    /// Takes the deploy lock (taking over a stale one with a warning).
    pub(crate) fn lock(&mut self, context: &HostContext<'_>) -> Result<(), HostError> {
        self.take_lock(context, None).map(drop)
    }

    /// Takes the deploy lock and reads what the host has, in one remote command (see
    /// [`crate::commands::Layout::lock_and_status`]).
    pub(crate) fn lock_and_read_status(
        &mut self,
        context: &HostContext<'_>,
        sha256: Option<&str>,
    ) -> Result<(), HostError> {
        let output = self.take_lock(context, Some(sha256))?;
        self.status = parse_status(&output);
        self.previous = self.status.current.clone();
        Ok(())
    }

    /// Tries to take the lock and run `command` in the same remote command (one login shell
    /// fewer), without echoing anything `command` prints (it may hold env file values). Taken:
    /// the output, with the lock's own lines taken out (the caller judges `command`'s status).
    /// Not taken (held by another run, stale, or the lock command failed): `None`, after taking
    /// the lock as [`HostRun::lock`] does (waiting, stale takeover, errors), so the caller runs
    /// `command` on its own.
    pub(crate) fn lock_and_run_quiet(
        &mut self,
        context: &HostContext<'_>,
        command: &str,
    ) -> Result<Option<ExecOutput>, HostError> {
        let renewing = context.layout.renewing(&self.token, None, command);
        let locking = context
            .layout
            .lock_and(&self.token, context.who, context.run, &renewing);
        let mut output = match self.exec_quiet("lock", &locking, None) {
            Ok(output) => output,
            Err(error) => {
                // The lock may have been taken before the connection failed: the ending
                // releases it (only if it is this run's, see `Layout::unlock`).
                self.locked = true;
                return Err(error);
            }
        };
        if !output.stdout.lines().any(|l| l == LOCK_ACQUIRED) {
            self.lock(context)?;
            return Ok(None);
        }
        self.locked = true;
        let mut cleaned = Vec::new();
        let mut rest = String::new();
        for line in output.stdout.split_inclusive('\n') {
            let bare = line.trim_end_matches('\n');
            if bare == LOCK_ACQUIRED {
                continue;
            }
            match bare.strip_prefix(crate::commands::CLEANED) {
                // The cleanup's lines come before anything `command` prints.
                Some(name) if rest.is_empty() => cleaned.push(name.to_owned()),
                _ => rest.push_str(line),
            }
        }
        if !cleaned.is_empty() {
            context.console.untrusted().line(&format!(
                "[{}] removed what an earlier deploy left when it died: {}",
                self.label(),
                cleaned.join(", ")
            ));
        }
        output.stdout = rest;
        Ok(Some(output))
    }

    /// Takes the lock (running the status command too when `status` is set); returns the
    /// output of the command that took it. A lock another run holds is waited for, for up to
    /// `--lock-wait`, its holder named once (and again when another run takes it over); a
    /// stale one is taken over. Nothing is changed on the host while waiting.
    fn take_lock(
        &mut self,
        context: &HostContext<'_>,
        status: Option<Option<&str>>,
    ) -> Result<String, HostError> {
        let started = Instant::now();
        let mut taken_over = false;
        let mut announced: Option<String> = None;
        loop {
            let command = match status {
                Some(sha256) => {
                    context
                        .layout
                        .lock_and_status(&self.token, context.who, context.run, sha256)
                }
                None => context.layout.lock(&self.token, context.who, context.run),
            };
            let output = self.exec_step(context, "lock", &command, None)?;
            let acquired = output.stdout.lines().any(|l| l == LOCK_ACQUIRED);
            // While waiting, the holder's lines are not echoed again at every attempt.
            let output = if announced.is_none() || acquired || output.status != 0 {
                self.judge(context, "lock", output)?
            } else {
                output
            };
            if acquired {
                self.locked = true;
                let cleaned: Vec<&str> = output
                    .stdout
                    .lines()
                    .filter_map(|line| line.strip_prefix(crate::commands::CLEANED))
                    .collect();
                if !cleaned.is_empty() {
                    let block = context.console.untrusted();
                    block.line(&format!(
                        "[{}] removed what an earlier deploy left when it died: {}",
                        self.label(),
                        cleaned.join(", ")
                    ));
                }
                return Ok(output.stdout);
            }
            let holder = LockHolder::parse(&output.stdout);
            if let Some(reason) = holder.stale(context.lock_stale_after) {
                if taken_over {
                    return Err(self.error(
                        "lock",
                        "the lock was taken again while taking over a stale one",
                    ));
                }
                taken_over = true;
                context.console.warn(&format!(
                    "{}: taking over the deploy lock held by {} (run {}): {reason}",
                    self.label(),
                    holder.owner,
                    holder.run,
                ));
                self.step(
                    context,
                    "unlock stale",
                    &context.layout.force_unlock(),
                    None,
                )?;
                continue;
            }
            if taken_over {
                return Err(self.error(
                    "lock",
                    "the lock was taken again while taking over a stale one",
                ));
            }
            let waited = started.elapsed();
            if context.lock_wait.is_zero() {
                return Err(self.error(
                    "lock",
                    format!(
                        "another deploy holds the lock: {}; wait for it (--lock-wait), or run \
                         `ssh-deploy unlock` if it is gone (a lock is taken over once its holder \
                         stops renewing its lease, or after {}s in any case)",
                        holder.describe(),
                        context.lock_stale_after.as_secs()
                    ),
                ));
            }
            if waited >= context.lock_wait {
                return Err(HostError {
                    host: self.label().to_owned(),
                    stage: "lock".into(),
                    message: format!(
                        "another deploy still holds the lock after waiting {}s (--lock-wait): \
                         {}; nothing was changed on this host",
                        context.lock_wait.as_secs(),
                        holder.describe()
                    ),
                    // Not the release's fault: the host was busy (exit 3, as for a lost host).
                    infrastructure: true,
                });
            }
            let who = format!("{} (run {})", holder.owner, holder.run);
            if announced.as_deref() != Some(who.as_str()) {
                context.console.log(&format!(
                    "[{}] waiting up to {}s for the deploy lock held by {}",
                    self.label(),
                    context.lock_wait.saturating_sub(waited).as_secs(),
                    holder.describe()
                ));
                announced = Some(who);
            }
            // Poll about once a second; a signal ends the wait at once (the next attempt is
            // then refused, so nothing is taken).
            let pause = LOCK_POLL.min(context.lock_wait - waited);
            let until = Instant::now() + pause;
            while Instant::now() < until && !context.interrupt.is_set() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Uploads (unless the host has it), verifies, unpacks and installs units, in one remote
    /// command: stdin carries the artifact, and the steps after the upload start once it ends.
    pub(crate) fn stage(
        &mut self,
        context: &HostContext<'_>,
        artifact: &std::path::Path,
        sha256: &str,
        release: &ReleaseId,
        shared_paths: &[String],
    ) -> Result<(), HostError> {
        self.timed("upload", |run| {
            run.stage_then(context, artifact, sha256, release, shared_paths, false)
        })
    }

    /// [`HostRun::stage`], then the switch of `current`, in the same remote command; then
    /// restarts and checks like [`HostRun::activate`].
    pub(crate) fn stage_and_activate(
        &mut self,
        context: &HostContext<'_>,
        artifact: &std::path::Path,
        sha256: &str,
        release: &ReleaseId,
        shared_paths: &[String],
    ) -> Result<(), HostError> {
        self.timed("upload", |run| {
            run.stage_then(context, artifact, sha256, release, shared_paths, true)
        })?;
        self.timed("switch", |run| run.restart_services(context, release))
    }

    fn stage_then(
        &mut self,
        context: &HostContext<'_>,
        artifact: &std::path::Path,
        sha256: &str,
        release: &ReleaseId,
        shared_paths: &[String],
        switch: bool,
    ) -> Result<(), HostError> {
        let token = self.token.clone();
        let mut file = None;
        if self.status.artifact_present {
            context.console.log(&format!(
                "[{}] artifact {} already on the host, upload skipped",
                self.label(),
                &sha256[..12]
            ));
        } else {
            file = Some(
                File::open(artifact)
                    .map_err(|e| self.error("upload", format!("{}: {e}", artifact.display())))?,
            );
        }
        let compression = crate::pack::Compression::detect(artifact)
            .map_err(|e| self.error("unpack", e.to_string()))?;
        let ctx = ReleaseContext {
            layout: context.layout,
            release,
        };
        let parts = context.layout.stage_parts(
            release,
            sha256,
            &token,
            shared_paths,
            compression,
            file.is_some(),
            context.manager.prepare(&ctx),
        );
        let mut parts = parts;
        if switch {
            parts.push(("switch".to_owned(), context.layout.switch(release, &token)));
        }
        let label = self.label().to_owned();
        let mut upload = file.map(|file| {
            let total = file.metadata().map_or(0, |m| m.len());
            crate::progress::Progress::new(
                StopOnSignal {
                    inner: file,
                    interrupt: context.interrupt,
                },
                total,
                context.console,
                &label,
            )
        });
        let input = upload.as_mut().map(|f| f as &mut dyn std::io::Read);
        self.progress = input
            .is_some()
            .then(|| context.layout.upload_path(sha256, &token));
        let staged = self.steps(context, &parts, input);
        self.progress = None;
        staged?;
        if switch {
            self.switched = self.previous.as_ref() != Some(release);
        }
        Ok(())
    }

    /// Switches `current`, restarts in order and checks each service, in one remote command.
    pub(crate) fn activate(
        &mut self,
        context: &HostContext<'_>,
        release: &ReleaseId,
    ) -> Result<(), HostError> {
        let token = self.token.clone();
        let switch = ("switch".to_owned(), context.layout.switch(release, &token));
        if self.reverting {
            return self.restart_after(context, release, Some(switch));
        }
        self.timed("switch", |run| {
            run.restart_after(context, release, Some(switch))
        })
    }

    /// Restarts the services in order, checking each (journal tail on failure).
    fn restart_services(
        &mut self,
        context: &HostContext<'_>,
        release: &ReleaseId,
    ) -> Result<(), HostError> {
        self.restart_after(context, release, None)
    }

    /// Runs `first` (the switch) and every service's restart and check as one remote command
    /// that stops at the first failure; a failed service gets its journal tail printed.
    fn restart_after(
        &mut self,
        context: &HostContext<'_>,
        release: &ReleaseId,
        first: Option<(String, String)>,
    ) -> Result<(), HostError> {
        let ctx = ReleaseContext {
            layout: context.layout,
            release,
        };
        let switching = first.is_some();
        let mut parts: Vec<(String, String)> = first.into_iter().collect();
        parts.extend(crate::commands::restart_parts(
            context.manager,
            context.services,
            &ctx,
        ));
        if parts.is_empty() {
            return Ok(());
        }
        if !self.reverting && !context.interrupt.is_set() && !context.services.is_empty() {
            self.restarted = true;
        }
        let result = self.steps(context, &parts, None);
        // The service whose restart or check failed, for its journal tail.
        let failed = result.as_ref().err().and_then(|error| {
            context.services.iter().find(|service| {
                error.stage == format!("restart {service}")
                    || error.stage == format!("check {service}")
            })
        });
        // The switch is the first part. It happened when a later part failed; it did not when
        // it failed itself or the command was refused before it started; when the connection
        // broke, assume it did, so the rollback puts `current` back (switching back to the
        // release that is current is harmless; a host left switched without its gate is not).
        let switch_happened = match &result {
            Ok(_) => true,
            Err(error) if error.stage == "switch" => false,
            Err(error) if parts.iter().any(|(stage, _)| *stage == error.stage) => true,
            Err(error) => !error.message.starts_with(REFUSED_AFTER_SIGNAL),
        };
        if switching && switch_happened {
            self.switched = self.previous.as_ref() != Some(release);
        }
        if let Some(service) = failed {
            if let Some(logs) = context.manager.logs(service) {
                let _ = self.step(context, &format!("logs {service}"), &logs, None);
            }
        }
        result.map(drop)
    }

    /// Runs the gate for this host.
    pub(crate) fn gate(
        &mut self,
        context: &HostContext<'_>,
        host_name: &str,
    ) -> Result<(), HostError> {
        let Some(text) = context.gate else {
            return Ok(());
        };
        // The gate runs on the runner, with no remote command to renew the lock's lease: a
        // held command renews it until the gate ends (or this process dies).
        let _lease = if self.locked {
            self.remote.hold(&context.layout.holding(&self.token)).ok()
        } else {
            None
        };
        // The re-check during a rollback always completes; a forward gate stops on a signal.
        let interrupt = if self.reverting {
            crate::interrupt::Interrupt::default()
        } else {
            context.interrupt.clone()
        };
        if self.reverting {
            return self
                .run_gate_text(text, host_name, &interrupt)
                .map_err(|message| self.error("gate", message));
        }
        let start = Instant::now();
        let result = self
            .run_gate_text(text, host_name, &interrupt)
            .map_err(|message| self.error("gate", message));
        self.phases.push(Phase {
            name: "gate",
            start,
            end: Instant::now(),
        });
        result
    }

    /// Runs the gate file `text` against `host_name`, with its `{tunnel:PORT}` placeholders
    /// forwarded over this host's connection for as long as the gate runs.
    pub(crate) fn run_gate_text(
        &self,
        text: &str,
        host_name: &str,
        interrupt: &crate::interrupt::Interrupt,
    ) -> Result<(), String> {
        let (text, _tunnels) = crate::tunnel::open(text, |port| self.remote.tunnel(port))?;
        crate::gate::run_gate_until(&text, host_name, interrupt)
    }

    /// Puts `current` back on `target`, restarts and re-checks.
    pub(crate) fn revert(
        &mut self,
        context: &HostContext<'_>,
        target: &ReleaseId,
        host_name: &str,
    ) -> Result<(), HostError> {
        let start = Instant::now();
        self.reverting = true;
        let result = if self.switched && !self.restarted {
            // Only `current` moved (a signal came between the switch and the restarts): the
            // services still run the release they ran before, so switching back is enough.
            let token = self.token.clone();
            self.step(
                context,
                "switch",
                &context.layout.switch(target, &token),
                None,
            )
            .map(drop)
        } else {
            self.activate(context, target)
        }
        .and_then(|()| self.gate(context, host_name));
        self.reverting = false;
        self.phases.push(Phase {
            name: "rollback",
            start,
            end: Instant::now(),
        });
        result?;
        self.switched = false;
        Ok(())
    }

    /// A first deploy that failed after its switch has no release to go back to: stops the new
    /// release's services (newest first, each that has a way to stop) and removes `current`,
    /// as one remote command. Returns the services left running (no stop command known).
    pub(crate) fn withdraw(
        &mut self,
        context: &HostContext<'_>,
        release: &ReleaseId,
    ) -> Result<Vec<String>, HostError> {
        let ctx = ReleaseContext {
            layout: context.layout,
            release,
        };
        let mut parts: Vec<(String, String)> = Vec::new();
        let mut left_running = Vec::new();
        if self.restarted {
            for service in context.services.iter().rev() {
                match context.manager.stop(service, &ctx) {
                    Some(command) => parts.push((format!("stop {service}"), command)),
                    None => left_running.push(service.clone()),
                }
            }
        }
        parts.push((
            "remove current".to_owned(),
            context.layout.unswitch(release),
        ));
        self.reverting = true;
        let result = self.timed("withdraw", |run| run.steps(context, &parts, None));
        self.reverting = false;
        result?;
        self.switched = false;
        Ok(left_running)
    }

    /// The release log line for `release` (`result`) and the unlock, as one command that always
    /// exits 0 and prints which failed ([`crate::commands::sequence`]): for a strategy that
    /// ends its last remote command with them (one login shell fewer). Then
    /// [`HostRun::finished_by`] with what it printed.
    pub(crate) fn finish_command(
        &self,
        context: &HostContext<'_>,
        release: &ReleaseId,
        checksum: &str,
        result: &str,
    ) -> String {
        let parts = [
            (
                "release log".to_owned(),
                context.layout.log(release, checksum, context.who, result),
            ),
            ("unlock".to_owned(), context.layout.unlock(&self.token)),
        ];
        crate::commands::combined(&parts, false).1
    }

    /// After a [`HostRun::finish_command`] ran: the run is finished (the lock stays held only
    /// if its unlock failed); the failures, as warnings.
    pub(crate) fn finished_by(&mut self, output: &str) -> Vec<HostError> {
        self.reverting = true;
        self.finishing = true;
        let failed = crate::commands::failed_parts(output);
        if !failed.contains(&1) {
            self.locked = false;
        }
        failed
            .iter()
            .map(|&index| {
                let stage = if index == 0 { "release log" } else { "unlock" };
                self.error(stage, "failed")
            })
            .collect()
    }

    /// The release log and unlock already ran ([`HostRun::finished_by`]).
    pub(crate) fn is_finished(&self) -> bool {
        self.finishing
    }

    /// Appends to the release log, prunes old releases (on success) and releases the lock.
    pub(crate) fn finish(
        &mut self,
        context: &HostContext<'_>,
        release: Option<(&ReleaseId, &str)>,
        result: &str,
        keep: Option<usize>,
    ) -> Vec<HostError> {
        self.reverting = true;
        self.finishing = true;
        // One remote command for all three (one login shell): each part runs even when an
        // earlier one failed, and says so.
        let mut parts: Vec<(String, String)> = Vec::new();
        if let Some((id, sha)) = release {
            parts.push((
                "release log".to_owned(),
                context.layout.log(id, sha, context.who, result),
            ));
        }
        if let (Some(keep), Some((id, _))) = (keep, release) {
            let mut newest_first: Vec<ReleaseId> = vec![id.clone()];
            newest_first.extend(
                self.status
                    .releases
                    .iter()
                    .map(|(r, _)| r.clone())
                    .filter(|r| r != id),
            );
            let mut protect = vec![id];
            if let Some(previous) = &self.previous {
                protect.push(previous);
            }
            let remove = crate::commands::releases_to_remove(&newest_first, keep, &protect);
            if !remove.is_empty() {
                parts.push((
                    "retention".to_owned(),
                    context.layout.remove_releases(&remove),
                ));
            }
            parts.push((
                "artifact retention".to_owned(),
                context.layout.prune_artifacts(),
            ));
        }
        if self.locked {
            parts.push(("unlock".to_owned(), context.layout.unlock(&self.token)));
        }
        if parts.is_empty() {
            return Vec::new();
        }
        let (title, command) = crate::commands::combined(&parts, false);
        let mut output = match self.exec_step(context, &title, &command, None) {
            Ok(output) => output,
            Err(error) => return vec![error],
        };
        let failed = crate::commands::failed_parts(&output.stdout);
        output.stdout = without_part_markers(&output.stdout);
        echo(context.console, self.label(), &output);
        let detail =
            runner_protocol::console::visible_controls(last_lines(output.stderr.trim(), 5));
        let mut errors: Vec<HostError> = failed
            .iter()
            .filter_map(|index| parts.get(*index))
            .map(|(stage, _)| self.error(stage, format!("failed: {detail}")))
            .collect();
        if output.status != 0 {
            errors.push(self.error(
                &title,
                format!("exited with status {}: {detail}", output.status),
            ));
        } else if self.locked && !failed.contains(&(parts.len() - 1)) {
            self.locked = false;
        }
        errors
    }
}

/// How often a held lock is tried again while `--lock-wait` runs.
const LOCK_POLL: Duration = Duration::from_secs(1);

/// Why a step did not start.
const REFUSED_AFTER_SIGNAL: &str = "interrupted (SIGINT/SIGTERM) before this step";

/// The artifact as the upload reads it: a signal ends the upload at once (the host then sees a
/// short file, whose checksum fails, so nothing after the upload runs).
struct StopOnSignal<'a> {
    inner: File,
    interrupt: &'a crate::interrupt::Interrupt,
}

impl std::io::Read for StopOnSignal<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.interrupt.is_set() {
            // Not `ErrorKind::Interrupted`: readers retry that one.
            return Err(std::io::Error::other(
                "interrupted (SIGINT/SIGTERM) during the upload",
            ));
        }
        self.inner.read(buffer)
    }
}

/// `stdout` without the lines [`crate::commands::sequence`] adds.
fn without_part_markers(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|line| !line.starts_with(crate::commands::PART_FAILED))
        .map(|line| format!("{line}\n"))
        .collect()
}

pub(crate) fn last_lines(text: &str, n: usize) -> &str {
    let mut start = text.len();
    for _ in 0..n {
        match text[..start].rfind('\n') {
            Some(i) => start = i,
            None => return text,
        }
    }
    &text[start + 1..]
}

/// Echoes remote output: stop-commands around it, control characters made visible, one prefix
/// per host.
pub(crate) fn echo(console: &Console, host: &str, output: &ExecOutput) {
    if output.stdout.trim().is_empty() && output.stderr.trim().is_empty() {
        return;
    }
    let block = console.untrusted();
    for line in output.stdout.lines().chain(output.stderr.lines()) {
        block.line(&format!("[{host}] {line}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Runs commands with the local `sh` and counts them: each would be one exec channel, and
    /// so one login shell, on a real host.
    struct Counting {
        inner: crate::remote::LocalRemote,
        commands: Arc<Mutex<Vec<String>>>,
    }

    impl Remote for Counting {
        fn label(&self) -> &str {
            self.inner.label()
        }

        fn exec(
            &mut self,
            command: &str,
            input: Option<&mut dyn std::io::Read>,
        ) -> Result<ExecOutput, RemoteError> {
            if let Ok(mut commands) = self.commands.lock() {
                commands.push(command.to_owned());
            }
            self.inner.exec(command, input)
        }

        fn hold(&mut self, command: &str) -> Result<crate::remote::Hold, RemoteError> {
            self.inner.hold(command)
        }
    }

    /// A deploy root in a temp dir, driven through the local `sh` (no SSH): what `HostRun`
    /// sends and in which order, without a network.
    struct Host {
        dir: tempfile::TempDir,
        layout: Layout,
        console: Console,
        interrupt: crate::interrupt::Interrupt,
        commands: Arc<Mutex<Vec<String>>>,
    }

    impl Host {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("root");
            let layout = Layout::new(
                crate::quote::RemotePath::parse(root.to_str().expect("utf-8")).expect("root"),
            );
            let console = Console::new(
                false,
                None,
                runner_protocol::testing::Capture::default().writer(),
                runner_protocol::testing::Capture::default().writer(),
                runner_protocol::secret::Masker::default(),
            );
            Self {
                dir,
                layout,
                console,
                interrupt: crate::interrupt::Interrupt::default(),
                commands: Arc::new(Mutex::new(Vec::new())),
            }
        }

        fn root(&self) -> std::path::PathBuf {
            self.dir.path().join("root")
        }

        fn file(&self, name: &str) -> std::path::PathBuf {
            self.dir.path().join(name)
        }

        /// Packs a release whose `VERSION` says `version`; returns its id, file and sha256.
        fn artifact(&self, version: &str) -> (ReleaseId, std::path::PathBuf, String) {
            let source = self.file(&format!("tree-{version}"));
            std::fs::create_dir_all(&source).expect("mkdir");
            std::fs::write(source.join("VERSION"), version).expect("write");
            let artifact = self.file(&format!("{version}.tar.gz"));
            let sha = crate::pack::pack(&source, &artifact, &self.file("manifest.json"), 0)
                .expect("pack")
                .archive_sha256;
            (ReleaseId::parse(version).expect("id"), artifact, sha)
        }

        fn context<'a>(
            &'a self,
            manager: &'a crate::commands::Custom,
            services: &'a [String],
        ) -> HostContext<'a> {
            HostContext {
                layout: &self.layout,
                manager,
                services,
                gate: None,
                lock_stale_after: Duration::from_secs(60),
                lock_wait: Duration::ZERO,
                who: "tester",
                run: "run-1",
                console: &self.console,
                interrupt: &self.interrupt,
            }
        }

        /// A connection that records every command it runs in `commands`.
        fn run(&self) -> HostRun {
            HostRun::new(Box::new(Counting {
                inner: crate::remote::LocalRemote::default(),
                commands: self.commands.clone(),
            }))
        }

        fn command_count(&self) -> usize {
            self.commands.lock().map(|c| c.len()).unwrap_or_default()
        }

        fn current(&self) -> std::path::PathBuf {
            std::fs::read_link(self.root().join("current")).expect("current")
        }
    }

    fn no_services() -> crate::commands::Custom {
        crate::commands::Custom {
            restart: Vec::new(),
            check: Vec::new(),
            stop: Vec::new(),
        }
    }

    #[test]
    fn a_deploy_runs_three_remote_commands_and_a_redeploy_skips_the_upload() {
        let host = Host::new();
        let manager = no_services();
        let context = host.context(&manager, &[]);
        let (_, artifact, sha) = host.artifact("v1");
        let deploy = |id: &str| {
            let before = host.command_count();
            let mut run = host.run();
            let release = ReleaseId::parse(id).expect("id");
            run.lock_and_read_status(&context, Some(&sha))
                .expect("lock");
            let uploaded = !run.status.artifact_present;
            run.stage_and_activate(&context, &artifact, &sha, &release, &[])
                .expect("stage and switch");
            let errors = run.finish(&context, Some((&release, &sha)), "success", Some(5));
            assert!(errors.is_empty(), "{errors:?}");
            assert!(!run.holds_lock());
            (host.command_count() - before, uploaded)
        };
        assert_eq!(deploy("r1"), (3, true), "lock+status, stage+switch, finish");
        assert_eq!(deploy("r2"), (3, false), "the artifact is on the host");
        assert!(host.current().ends_with("releases/r2"));
        assert_eq!(
            std::fs::read_to_string(host.root().join("current/VERSION")).expect("version"),
            "v1"
        );
        assert!(!host.root().join(".ssh-deploy/lock").exists(), "unlocked");
        let log = std::fs::read_to_string(host.root().join(".ssh-deploy/log")).expect("log");
        assert_eq!(log.lines().count(), 2, "{log}");
    }

    #[test]
    fn a_failed_part_of_the_stage_is_named_and_nothing_after_it_runs() {
        let host = Host::new();
        let manager = no_services();
        let context = host.context(&manager, &[]);
        // gzip around bytes that are no tar archive: it passes the upload and the checksum,
        // and tar on the host refuses it.
        let artifact = host.file("broken.tar.gz");
        let mut gzip = flate2::write::GzEncoder::new(
            std::fs::File::create(&artifact).expect("create"),
            flate2::Compression::default(),
        );
        std::io::Write::write_all(&mut gzip, &[b'x'; 1000]).expect("write");
        gzip.finish().expect("finish");
        let sha = crate::pack::sha256_file(&artifact).expect("sha").0;
        let mut run = host.run();
        let release = ReleaseId::parse("r1").expect("id");
        run.lock_and_read_status(&context, Some(&sha))
            .expect("lock");
        let error = run
            .stage(&context, &artifact, &sha, &release, &[])
            .expect_err("tar refuses it");
        assert_eq!(error.stage, "unpack", "{error}");
        assert!(!host.root().join("releases/r1").exists());
        // The upload and its check passed: the artifact is kept for the next attempt.
        assert!(
            host.root()
                .join(format!(".ssh-deploy/artifacts/{sha}.tar.gz"))
                .exists()
        );
        assert!(run.finish(&context, None, "failed", None).is_empty());
        assert!(!host.root().join(".ssh-deploy/lock").exists(), "unlocked");
    }

    #[test]
    fn a_signal_between_switch_and_restarts_reverts_by_switching_back_only() {
        let host = Host::new();
        let restarts = host.file("restarts");
        let manager = crate::commands::Custom {
            restart: vec![(
                "web".into(),
                format!("echo \"$(cat VERSION)\" >> '{}'", restarts.display()),
            )],
            check: Vec::new(),
            stop: Vec::new(),
        };
        let services = ["web".to_owned()];
        let context = host.context(&manager, &services);
        let restarted = || std::fs::read_to_string(&restarts).unwrap_or_default();
        let (v1, v1_artifact, v1_sha) = host.artifact("v1");
        let mut run = host.run();
        run.lock_and_read_status(&context, Some(&v1_sha))
            .expect("lock");
        run.stage_and_activate(&context, &v1_artifact, &v1_sha, &v1, &[])
            .expect("v1");
        run.finish(&context, Some((&v1, &v1_sha)), "success", None);
        assert_eq!(restarted(), "v1\n");

        let (v2, v2_artifact, v2_sha) = host.artifact("v2");
        let mut run = host.run();
        run.lock_and_read_status(&context, Some(&v2_sha))
            .expect("lock");
        run.stage_then(&context, &v2_artifact, &v2_sha, &v2, &[], true)
            .expect("staged and switched");
        assert!(run.switched);
        host.interrupt.set();
        let refused = run
            .restart_services(&context, &v2)
            .expect_err("no new step");
        assert!(refused.message.contains("interrupted"), "{refused}");
        run.revert(&context, &v1, "localhost")
            .expect("switched back");
        assert_eq!(host.current(), std::path::Path::new("releases/v1"));
        assert_eq!(restarted(), "v1\n", "v1 kept running: no restart at all");
        assert!(run.finish(&context, None, "interrupted", None).is_empty());
    }

    #[test]
    fn switch_and_restarts_run_as_one_command_and_a_failing_service_is_named() {
        let host = Host::new();
        let order = host.file("order");
        let manager = crate::commands::Custom {
            restart: vec![
                ("api".into(), format!("echo api >> '{}'", order.display())),
                (
                    "web".into(),
                    format!("echo web >> '{}'; exit 3", order.display()),
                ),
                ("late".into(), format!("echo late >> '{}'", order.display())),
            ],
            check: vec![(
                "api".into(),
                format!("echo api-ok >> '{}'", order.display()),
            )],
            stop: Vec::new(),
        };
        let services = ["api".to_owned(), "web".to_owned(), "late".to_owned()];
        let context = host.context(&manager, &services);
        let (release, artifact, sha) = host.artifact("v1");
        let mut run = host.run();
        run.lock_and_read_status(&context, Some(&sha))
            .expect("lock");
        run.stage(&context, &artifact, &sha, &release, &[])
            .expect("stage");
        let error = run.activate(&context, &release).expect_err("web fails");
        assert_eq!(error.stage, "restart web", "{error}");
        assert!(error.message.contains("status 3"), "{error}");
        assert!(run.switched, "the switch ran before the restarts");
        assert_eq!(
            std::fs::read_to_string(&order).expect("order"),
            "api\napi-ok\nweb\n",
            "in order, stopping at the failure"
        );
        // lock+status, stage, then switch and every restart and check in one command.
        assert_eq!(host.command_count(), 3);
    }

    #[test]
    fn the_upload_stops_at_a_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("artifact");
        std::fs::write(&path, [7u8; 4096]).expect("write");
        let interrupt = crate::interrupt::Interrupt::default();
        let mut reader = StopOnSignal {
            inner: File::open(&path).expect("open"),
            interrupt: &interrupt,
        };
        let mut buffer = [0u8; 1024];
        assert_eq!(
            std::io::Read::read(&mut reader, &mut buffer).expect("read"),
            1024
        );
        interrupt.set();
        let error = std::io::Read::read(&mut reader, &mut buffer).expect_err("stops");
        assert_ne!(
            error.kind(),
            std::io::ErrorKind::Interrupted,
            "would be retried"
        );
        assert!(error.to_string().contains("interrupted"), "{error}");
    }
}
