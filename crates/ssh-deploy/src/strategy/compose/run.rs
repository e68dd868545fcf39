//! Carries out the compose plan on one host and rolls it back on failure.

use std::time::Instant;

use runner_protocol::console::Console;

use crate::host_run::{HostContext, HostError, HostRun};
use crate::options::HostSpec;
use crate::remote::ExecOutput;

use super::ComposeOptions;
use super::dotenv::{self, KeyDiff};
use super::plan::{self, Commands, Running};

use crate::hooks::Event;

use super::chain::{self, Part};
use super::lifecycle::Lifecycle;
use super::plan::{HOST, Phase};

/// The title and action of the release log + unlock part that ends a successful host's last
/// command.
const FINISH: &str = "release log + unlock";

/// How a host run ended badly.
#[derive(Debug)]
pub(super) enum Failure {
    /// Failed before anything on the host changed (lock, pull, reading, snapshot).
    Untouched(HostError),
    /// Failed after changes, and everything was put back.
    RolledBack(HostError),
    /// Failed, and putting things back failed too (the second text).
    RollbackFailed(HostError, String),
}

/// Time spent on one service.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceTiming {
    /// The compose service.
    pub service: String,
    /// `pull`, `read env`, `snapshot`, `write env`, `validate` (service `(host)`), `drain`,
    /// `up`, `gate`, `undrain`, `rollback`.
    pub action: String,
    /// `ok` or `failed`.
    pub result: String,
    /// Seconds.
    pub seconds: f64,
}

/// One env file's change: keys only, never values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvReport {
    /// The file, relative to the project dir.
    pub path: String,
    /// The file existed before.
    pub existed: bool,
    /// The content changed (and was written).
    pub written: bool,
    /// Per key.
    pub keys: Vec<KeyDiff>,
}

/// What happened on one host: the `compose-report` output lists one per host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostComposeReport {
    /// Host label.
    pub host: String,
    /// `deployed`, `failed`, `rolled-back`, `rollback-failed`.
    pub result: String,
    /// The first error.
    pub error: Option<String>,
    /// Seconds on the host.
    pub seconds: f64,
    /// What ran before, per service (the rollback target).
    pub previous: Vec<Running>,
    /// Env file changes.
    pub env_files: Vec<EnvReport>,
    /// Per-service timings, in order.
    pub services: Vec<ServiceTiming>,
    /// Every remote command of the compose steps, exactly as run, in order (the lock, release
    /// log and unlock commands are those of every strategy and are left out).
    pub commands: Vec<String>,
}

struct Host<'a> {
    run: HostRun,
    /// This run's random token (temp file names, chain markers).
    token: String,
    context: HostContext<'a>,
    console: &'a Console,
    report: HostComposeReport,
}

impl Host<'_> {
    fn timed<T>(
        &mut self,
        service: &str,
        action: &str,
        work: impl FnOnce(&mut Self) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let started = Instant::now();
        let result = work(self);
        self.report.services.push(ServiceTiming {
            service: service.to_owned(),
            action: action.to_owned(),
            result: if result.is_ok() { "ok" } else { "failed" }.to_owned(),
            seconds: started.elapsed().as_secs_f64(),
        });
        result
    }

    /// Runs `parts` as one remote command ([`chain`]): records each part's command and its
    /// time on the host, plus the command's overhead (`ssh`: channel, login shell, markers),
    /// echoes what the parts printed (env file blocks never). With `stop_on_failure`, a failing
    /// part is the error, with the index of that part (or of the first that did not finish).
    fn chain(
        &mut self,
        parts: &[Part],
        input: Option<&[u8]>,
        stop_on_failure: bool,
    ) -> Result<chain::Parsed, (HostError, usize)> {
        self.chain_locking(parts, input, stop_on_failure, false)
    }

    /// [`Host::chain`]; with `lock`, the deploy lock is taken first, in the same remote command
    /// when it is free (one login shell fewer), else as [`HostRun::lock`] does (waiting, stale
    /// takeover) before the parts run on their own. A lock that cannot be taken is an error
    /// before any part ran.
    fn chain_locking(
        &mut self,
        parts: &[Part],
        input: Option<&[u8]>,
        stop_on_failure: bool,
        lock: bool,
    ) -> Result<chain::Parsed, (HostError, usize)> {
        let started = Instant::now();
        // The release log and unlock are every strategy's, left out of the report.
        for part in parts.iter().filter(|p| p.action != FINISH) {
            self.report.commands.push(part.command.clone());
        }
        let token = self.token.clone();
        let script = chain::script(parts, &token, stop_on_failure);
        // The lease is renewed while the command runs, except in the one that releases the
        // lock (a renewal racing the unlock's `rm -rf` could leave the lock directory behind).
        let renew = !parts.iter().any(|p| p.action == FINISH);
        let titles = parts
            .iter()
            .map(|p| p.title.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        let mut reader = input.map(std::io::Cursor::new);
        // Without the markers nobody knows how far the command got: every part may have run
        // (a rollback then brings back every service the command could have touched).
        let unknown = parts.len().saturating_sub(1);
        let locked = if lock {
            let context = &self.context;
            self.run
                .lock_and_run_quiet(context, &script)
                .map_err(|e| (e, unknown))?
        } else {
            None
        };
        let output = match locked {
            Some(output) => output,
            None => {
                let script = if renew {
                    self.run.lease_renewing(&self.context, &script)
                } else {
                    script
                };
                self.run
                    .exec_quiet(
                        &titles,
                        &script,
                        reader.as_mut().map(|r| r as &mut dyn std::io::Read),
                    )
                    .map_err(|e| (e, unknown))?
            }
        };
        let parsed = match chain::parse(&output.stdout, &token) {
            Ok(parsed) => parsed,
            Err(problem) => {
                let message = format!(
                    "exited with status {} and its output could not be read: {problem}",
                    output.status
                );
                return Err((self.error(&titles, message), unknown));
            }
        };
        let mut on_host = 0.0;
        for ended in &parsed.ended {
            let Some(part) = parts.get(ended.index) else {
                continue;
            };
            on_host += ended.seconds;
            self.report.services.push(ServiceTiming {
                service: part.service.clone(),
                action: part.action.clone(),
                result: if ended.status == 0 { "ok" } else { "failed" }.to_owned(),
                seconds: ended.seconds,
            });
            crate::host_run::echo(
                self.console,
                self.run.label(),
                &ExecOutput {
                    status: ended.status,
                    stdout: ended.output.clone(),
                    stderr: String::new(),
                },
            );
        }
        let unfinished = ExecOutput {
            status: output.status,
            stdout: parsed.trailing.clone(),
            stderr: output.stderr.clone(),
        };
        crate::host_run::echo(self.console, self.run.label(), &unfinished);
        self.report.services.push(ServiceTiming {
            service: HOST.to_owned(),
            action: "ssh".to_owned(),
            result: "ok".to_owned(),
            seconds: (started.elapsed().as_secs_f64() - on_host).max(0.0),
        });
        if !stop_on_failure || output.status == 0 {
            return Ok(parsed);
        }
        let (index, text) = match parsed.failed() {
            Some(index) => (
                index,
                parsed
                    .ended
                    .iter()
                    .find(|e| e.index == index)
                    .map(|e| e.output.clone())
                    .unwrap_or_default(),
            ),
            None => (
                parsed.ended.len(),
                format!("{}{}", parsed.trailing, output.stderr),
            ),
        };
        let Some(part) = parts.get(index) else {
            let message = format!("exited with status {}", output.status);
            return Err((self.error(&titles, message), index));
        };
        let tail = crate::host_run::last_lines(text.trim(), 5);
        let detail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", runner_protocol::console::visible_controls(tail))
        };
        let message = if output.status == 124 && part.command.contains("timeout -k") {
            format!("did not return within the up_timeout and was stopped (exit 124){detail}")
        } else {
            format!("exited with status {}{detail}", output.status)
        };
        Err((self.error(&part.title, message), index))
    }

    fn error(&self, stage: &str, message: String) -> HostError {
        HostError {
            host: self.run.label().to_owned(),
            stage: stage.to_owned(),
            message,
            infrastructure: false,
        }
    }
}

/// What the snapshot found, needed to roll back.
struct Before {
    present: Vec<bool>,
    running: Vec<Running>,
}

/// Deploys on one host; the report is filled in whatever happens. The host run is handed
/// back (unless the connection failed) for the rollout's shared ending: release log, unlock.
pub(super) fn deploy_host(
    options: &ComposeOptions,
    host: &HostSpec,
    index: usize,
    record: &str,
    console: &Console,
) -> (HostComposeReport, Result<(), Failure>, Option<HostRun>) {
    let started = Instant::now();
    let mut report = HostComposeReport {
        host: host.label(),
        result: "failed".into(),
        error: None,
        seconds: 0.0,
        previous: Vec::new(),
        env_files: Vec::new(),
        services: Vec::new(),
        commands: Vec::new(),
    };
    let run = match options.connection.open(host) {
        Ok(run) => run,
        Err(error) => {
            report.error = Some(error.to_string());
            return (report, Err(Failure::Untouched(error)), None);
        }
    };
    let token = runner_protocol::console::random_hex(8);
    let commands = Commands {
        spec: &options.spec,
        token: &token,
        record,
    };
    let mut h = Host {
        run,
        token: token.clone(),
        context: options
            .settings
            .context(options.connection.layout_for(host), console),
        console,
        report,
    };
    // A compose host runs about five commands (one per phase between gates, the lock in the
    // first, the release log in the last): each one's login shell starts while the one before
    // runs (issue 19), and renews the lease while it waits (through the gates).
    h.run.start_ahead(&h.context, true);
    let lifecycle = Lifecycle::new(
        &options.hooks,
        options.release.as_str(),
        &host.name(),
        index,
    );
    let mut before = None;
    let outcome = rollout(&mut h, options, host, &commands, &lifecycle, &mut before);
    let outcome = match (outcome, before) {
        (Ok(()), _) => Ok(()),
        (Err((error, _)), None) => Err(Failure::Untouched(error)),
        (Err((error, touched)), Some(before)) => {
            console.log(&format!(
                "[{}] {error}; rolling back: env files and image tags from {record}, then {}",
                h.run.label(),
                if touched.is_empty() {
                    "no service to bring back".to_owned()
                } else {
                    touched.iter().rev().cloned().collect::<Vec<_>>().join(", ")
                }
            ));
            match roll_back(&mut h, &commands, &before, &touched) {
                Ok(()) => Err(Failure::RolledBack(error)),
                Err(failed) => Err(Failure::RollbackFailed(error, failed)),
            }
        }
    };
    // post-deploy after success, on-rollback after a rollback: reported, never fatal.
    let after = match &outcome {
        Ok(()) => Some((Event::PostDeploy, "success")),
        Err(Failure::RolledBack(_)) => Some((Event::OnRollback, "rolled-back")),
        Err(Failure::RollbackFailed(..)) => Some((Event::OnRollback, "rollback-failed")),
        Err(Failure::Untouched(_)) => None,
    };
    if let Some((event, result)) = after {
        let parts = lifecycle.parts(&commands, event, result);
        if !parts.is_empty() {
            match h.chain(&parts, None, false) {
                Ok(parsed) => {
                    for ended in parsed.ended.iter().filter(|e| e.status != 0) {
                        console.warn(&format!(
                            "[{}] the {} hook exited with status {}",
                            h.run.label(),
                            event.name(),
                            ended.status
                        ));
                    }
                }
                Err((error, _)) => console.warn(&error.to_string()),
            }
        }
    }
    let mut report = h.report;
    report.result = match &outcome {
        Ok(()) => "deployed",
        Err(Failure::Untouched(_)) => "failed",
        Err(Failure::RolledBack(_)) => "rolled-back",
        Err(Failure::RollbackFailed(..)) => "rollback-failed",
    }
    .to_owned();
    report.error = match &outcome {
        Ok(()) => None,
        Err(Failure::Untouched(e) | Failure::RolledBack(e)) => Some(e.to_string()),
        Err(Failure::RollbackFailed(e, then)) => Some(format!("{e}; rollback: {then}")),
    };
    report.seconds = started.elapsed().as_secs_f64();
    // The release log and unlock come next, the last command: it uses the shell started
    // during the one before, and starts none.
    h.run.start_ahead(&h.context, false);
    (report, outcome, Some(h.run))
}

/// The rollout; `before` is set once the snapshot is taken (from then on a failure rolls back).
/// The error carries the services an `up` (or its drain) was started for.
fn rollout(
    h: &mut Host<'_>,
    options: &ComposeOptions,
    host: &HostSpec,
    commands: &Commands<'_>,
    lifecycle: &Lifecycle<'_>,
    before: &mut Option<Before>,
) -> Result<(), (HostError, Vec<String>)> {
    let spec = &options.spec;
    let strict = options.hooks.strict;
    let untouched = |e| (e, Vec::new());
    // 1. One command: the lock, then pull every new image first (a registry problem stops the deploy before
    //    any change), then copy the env files into the release record and read them back, and
    //    record the running images.
    //    The host's pre-deploy hooks go first.
    let mut first = lifecycle.parts(commands, Event::PreDeploy, "");
    first.extend(plan::prepare(commands));
    let parsed = h
        .chain_locking(&first, None, true, true)
        .map_err(|(e, _)| untouched(e))?;
    // 2. Compute the new env files (pure); nothing is written yet.
    let mut present = Vec::new();
    let mut updates = Vec::new();
    for (index, file) in spec.env_files.iter().enumerate() {
        let block = parsed.env.iter().find(|(i, _)| *i == index);
        let Some((_, content)) = block else {
            return Err(untouched(h.error(
                &format!("read {}", file.path),
                format!("{}: the snapshot did not send it back", file.path),
            )));
        };
        let exists = content.is_some();
        let old = content.clone().unwrap_or_default();
        let entries = dotenv::parse(&old).map_err(|e| {
            untouched(h.error(
                &format!("read {}", file.path),
                format!(
                    "{} on the host cannot be read as compose reads it: {e}",
                    file.path
                ),
            ))
        })?;
        for entry in entries {
            let managed =
                file.set.iter().any(|(k, _)| *k == entry.key) || file.unset.contains(&entry.key);
            if managed && entry.value.len() >= 8 && !super::is_image_variable(spec, &entry.key) {
                h.console.add_mask(&entry.value);
            }
        }
        let update = dotenv::apply(&old, &file.set, &file.unset).map_err(|e| {
            untouched(h.error(
                &format!("read {}", file.path),
                format!("{}: {e}", file.path),
            ))
        })?;
        present.push(exists);
        h.report.env_files.push(EnvReport {
            path: file.path.clone(),
            existed: exists,
            written: !update.is_noop(&old),
            keys: update.diff.clone(),
        });
        updates.push((old, update));
    }
    let running = plan::parse_running(&parsed.images);
    h.report.previous = running.clone();
    *before = Some(Before { present, running });
    // 3. The env files that change, all on one stdin, then `config --quiet`, then the services
    //    in order, one command up to each gate.
    let mut sizes = Vec::new();
    let mut input = Vec::new();
    for (file, (old, update)) in spec.env_files.iter().zip(&updates) {
        if update.is_noop(old) {
            sizes.push(None);
            continue;
        }
        sizes.push(Some(Some(update.text.len())));
        input.extend_from_slice(update.text.as_bytes());
        let changed: Vec<String> = update
            .diff
            .iter()
            .filter(|d| d.change != dotenv::KeyChange::Unchanged)
            .map(|d| {
                format!(
                    "{} {}",
                    d.key,
                    serde_json::to_value(d.change)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )
            })
            .collect();
        h.console.log(&format!(
            "[{}] {}: {}",
            h.run.label(),
            file.path,
            changed.join(", ")
        ));
    }
    let mut input = Some(input);
    let mut touched: Vec<String> = Vec::new();
    let mut phases = plan::phases(commands, &sizes, lifecycle.around(commands));
    // The release log and unlock end the last command when nothing runs after it on this host
    // (no runner post-switch hook, no post-deploy host hook): one login shell fewer. They run
    // only once every part before them succeeded, and their failure is a warning.
    let ends = lifecycle
        .parts(commands, Event::PostDeploy, "success")
        .is_empty();
    let mut finishing = None;
    if let (true, Some(Phase::Shell(parts))) = (ends, phases.last_mut()) {
        finishing = Some(parts.len());
        parts.push(Part {
            title: FINISH.into(),
            service: HOST.to_owned(),
            action: FINISH.into(),
            command: h
                .run
                .finish_command(&h.context, &options.release, &options.digest, "success"),
            touches: None,
        });
    }
    let last = phases.len().saturating_sub(1);
    for (at, phase) in phases.into_iter().enumerate() {
        match phase {
            Phase::Shell(parts) => {
                if at == last && finishing.is_some() {
                    // The last command of the host: no shell started for a next one (it would
                    // only hold up closing the connection, see `SshRemote`'s `Drop`).
                    h.run.start_ahead(&h.context, false);
                }
                let result = h.chain(&parts, input.take().as_deref(), true);
                let ran = match &result {
                    Ok(_) => parts.len(),
                    Err((_, failed)) => (*failed + 1).min(parts.len()),
                };
                touched.extend(parts[..ran].iter().filter_map(|p| p.touches.clone()));
                match result {
                    Ok(parsed) => {
                        let ended = finishing
                            .filter(|_| at == last)
                            .and_then(|index| parsed.ended.iter().find(|e| e.index == index));
                        if let Some(ended) = ended {
                            for warning in h.run.finished_by(&ended.output) {
                                h.console.warn(&warning.to_string());
                            }
                        }
                    }
                    // A post-switch hook comes last: the services are all up and gated.
                    Err((error, failed))
                        if !strict
                            && !error.infrastructure
                            && parts
                                .get(failed)
                                .is_some_and(|p| p.action == "hook post-switch") =>
                    {
                        h.console.warn(&format!(
                            "{error} (a post-switch hook: a warning without --hooks-strict)"
                        ));
                    }
                    Err((error, _)) => return Err((error, touched)),
                }
            }
            Phase::Runner(name) => {
                let event = if name == "pre-switch" {
                    Event::PreSwitch
                } else {
                    Event::PostSwitch
                };
                match lifecycle.on_runner(event) {
                    Ok(outputs) => {
                        for output in outputs {
                            crate::host_run::echo(
                                h.console,
                                h.run.label(),
                                &ExecOutput {
                                    status: 0,
                                    stdout: output,
                                    stderr: String::new(),
                                },
                            );
                        }
                    }
                    Err(message) if event == Event::PostSwitch && !strict => {
                        h.console.warn(&format!("[{}] {message}", h.run.label()))
                    }
                    Err(message) => {
                        let error = h.error(&format!("hook {name} (runner)"), message);
                        return Err((error, touched));
                    }
                }
            }
            Phase::Gate(unit) => {
                let service = spec
                    .services
                    .iter()
                    .find(|s| s.units().contains(&unit.as_str()));
                let Some(gate) = service.and_then(|s| s.gate.as_ref()) else {
                    continue;
                };
                let text = gate.replace("{service}", &unit);
                let name = host.name();
                h.timed(&unit, "gate", |h| {
                    crate::gate::run_gate(&text, &name)
                        .map_err(|m| h.error(&format!("gate {unit}"), m))
                })
                .map_err(|e| (e, touched.clone()))?;
            }
        }
    }
    Ok(())
}

/// Runs the rollback plan as one command; every step is tried, the failures are returned
/// together (a failed drain is a warning: the replica goes back to the previous version either
/// way, and the undrain after its `up` puts it in the pool again).
fn roll_back(
    h: &mut Host<'_>,
    commands: &Commands<'_>,
    before: &Before,
    touched: &[String],
) -> Result<(), String> {
    let steps = plan::rollback(commands, &before.present, &before.running, touched);
    let parts: Vec<Part> = steps
        .into_iter()
        .map(|step| {
            let (service, action) = match step.title.split_once(' ') {
                Some(("up", rest)) => (rest.trim_end_matches(" (previous)"), "rollback"),
                Some(("drain", unit)) => (unit, "drain"),
                Some(("undrain", unit)) => (unit, "undrain"),
                _ => (HOST, "restore"),
            };
            Part {
                service: service.to_owned(),
                action: action.to_owned(),
                title: step.title,
                command: step.command,
                touches: None,
            }
        })
        .collect();
    let parsed = match h.chain(&parts, None, false) {
        Ok(parsed) => parsed,
        Err((error, _)) => return Err(error.to_string()),
    };
    let mut failures = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let ended = parsed.ended.iter().find(|e| e.index == index);
        let problem = match ended {
            None => "did not run (the command ended early)".to_owned(),
            Some(e) if e.status != 0 => {
                let tail = crate::host_run::last_lines(e.output.trim(), 5);
                format!(
                    "exited with status {}: {}",
                    e.status,
                    runner_protocol::console::visible_controls(tail)
                )
            }
            Some(_) => continue,
        };
        let error = h.error(&part.title, problem);
        if part.action == "drain" {
            h.console.log(&format!(
                "[{}] warning: {error}; recreating it anyway",
                h.run.label()
            ));
        } else {
            failures.push(error.to_string());
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
