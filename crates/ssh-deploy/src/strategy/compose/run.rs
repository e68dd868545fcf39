//! Carries out the compose plan on one host and rolls it back on failure.

use std::time::Instant;

use runner_protocol::console::Console;

use crate::host_run::{HostContext, HostError, HostRun};
use crate::options::HostSpec;
use crate::remote::ExecOutput;

use super::ComposeOptions;
use super::dotenv::{self, KeyDiff};
use super::plan::{self, Commands, Running};

/// The `service` of a timing that is not one service's: read, snapshot, write, validate.
const HOST: &str = "(host)";

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
    context: HostContext<'a>,
    console: &'a Console,
    report: HostComposeReport,
}

impl Host<'_> {
    /// Runs a command, records it, echoes its (scrubbed) output unless `quiet`, and turns a
    /// non-zero exit into an error.
    fn exec(
        &mut self,
        stage: &str,
        command: &str,
        input: Option<&[u8]>,
        quiet: bool,
    ) -> Result<ExecOutput, HostError> {
        self.report.commands.push(command.to_owned());
        let mut reader = input.map(std::io::Cursor::new);
        let output = self.run.exec_quiet(
            stage,
            command,
            reader.as_mut().map(|r| r as &mut dyn std::io::Read),
        )?;
        if !quiet {
            crate::host_run::echo(self.console, self.run.label(), &output);
        }
        if output.status != 0 {
            // A quiet command's stdout may hold values; its stderr (cat, chown, mv) does not.
            let text = match output.stderr.trim() {
                "" if !quiet => output.stdout.trim(),
                stderr => stderr,
            };
            let tail = crate::host_run::last_lines(text, 5);
            let detail = if tail.is_empty() {
                String::new()
            } else {
                format!(": {}", runner_protocol::console::visible_controls(tail))
            };
            let message = if output.status == 124 && command.contains("timeout -k") {
                format!("did not return within the up_timeout and was stopped (exit 124){detail}")
            } else {
                format!("exited with status {}{detail}", output.status)
            };
            return Err(HostError {
                host: self.run.label().to_owned(),
                stage: stage.to_owned(),
                message,
                infrastructure: false,
            });
        }
        Ok(output)
    }

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
        context: options
            .settings
            .context(&options.connection.layout, console),
        console,
        report,
    };
    let mut before = None;
    let outcome = rollout(&mut h, options, host, &commands, &mut before);
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
    (report, outcome, Some(h.run))
}

/// The rollout; `before` is set once the snapshot is taken (from then on a failure rolls back).
/// The error carries the services an `up` was started for.
fn rollout(
    h: &mut Host<'_>,
    options: &ComposeOptions,
    host: &HostSpec,
    commands: &Commands<'_>,
    before: &mut Option<Before>,
) -> Result<(), (HostError, Vec<String>)> {
    let spec = &options.spec;
    let untouched = |e| (e, Vec::new());
    h.run.lock(&h.context).map_err(untouched)?;
    // 1. Pull every new image first: a registry problem stops the deploy before any change.
    let mut pulled: Vec<&str> = Vec::new();
    for service in &spec.services {
        if let Some(image) = &service.image {
            if !pulled.contains(&image.reference.as_str()) {
                pulled.push(&image.reference);
                let command = commands.pull(&image.reference);
                h.timed(&service.name, "pull", |h| {
                    h.exec(&format!("pull {}", image.reference), &command, None, false)
                })
                .map_err(untouched)?;
            }
        }
    }
    // 2. Read the env files and compute the new ones (pure); nothing is written yet.
    let mut present = Vec::new();
    let mut updates = Vec::new();
    for file in &spec.env_files {
        let (stage, read) = (format!("read {}", file.path), commands.read_env(&file.path));
        let output = h
            .timed(HOST, "read env", |h| h.exec(&stage, &read, None, true))
            .map_err(untouched)?;
        let (marker, old) = output
            .stdout
            .split_once('\n')
            .unwrap_or((&output.stdout, ""));
        let exists = marker.trim() == "present";
        let old = if exists {
            old.to_owned()
        } else {
            String::new()
        };
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
    // 3. Snapshot into the release record.
    let snapshot = commands.snapshot(&present);
    let output = h
        .timed(HOST, "snapshot", |h| {
            h.exec("snapshot", &snapshot, None, false)
        })
        .map_err(untouched)?;
    let running = plan::parse_running(&output.stdout);
    h.report.previous = running.clone();
    *before = Some(Before { present, running });
    // 4. Write the env files that change.
    for (file, (old, update)) in spec.env_files.iter().zip(&updates) {
        if update.is_noop(old) {
            continue;
        }
        let stage = format!("write {}", file.path);
        let write = commands.write_env(&file.path);
        h.timed(HOST, "write env", |h| {
            h.exec(&stage, &write, Some(update.text.as_bytes()), true)
        })
        .map_err(|e| (e, Vec::new()))?;
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
    // 5. The project must still parse with the new env files.
    let validate = commands.validate();
    h.timed(HOST, "validate", |h| {
        h.exec("validate", &validate, None, false)
    })
    .map_err(|e| (e, Vec::new()))?;
    // 6. One service per `up`, in order; replicas one at a time.
    let mut touched: Vec<String> = Vec::new();
    for service in &spec.services {
        let replica = !service.replicas.is_empty();
        for unit in service.units() {
            let fail = |e: HostError, touched: &Vec<String>| (e, touched.clone());
            // Touched from the drain on: a rollback brings it back and undrains it.
            touched.push(unit.to_owned());
            if let (true, Some(drain)) = (replica, &service.drain) {
                let command = commands.hook(drain, unit);
                h.timed(unit, "drain", |h| {
                    h.exec(&format!("drain {unit}"), &command, None, false)
                })
                .map_err(|e| fail(e, &touched))?;
            }
            let command = commands.up(unit);
            h.timed(unit, "up", |h| {
                h.exec(&format!("up {unit}"), &command, None, false)
            })
            .map_err(|e| fail(e, &touched))?;
            if let Some(gate) = &service.gate {
                let text = gate.replace("{service}", unit);
                let name = host.name();
                h.timed(unit, "gate", |h| {
                    crate::gate::run_gate(&text, &name)
                        .map_err(|m| h.error(&format!("gate {unit}"), m))
                })
                .map_err(|e| fail(e, &touched))?;
            }
            if let (true, Some(undrain)) = (replica, &service.undrain) {
                let command = commands.hook(undrain, unit);
                h.timed(unit, "undrain", |h| {
                    h.exec(&format!("undrain {unit}"), &command, None, false)
                })
                .map_err(|e| fail(e, &touched))?;
            }
        }
    }
    Ok(())
}

/// Runs the rollback plan; every step is tried, the failures are returned together.
fn roll_back(
    h: &mut Host<'_>,
    commands: &Commands<'_>,
    before: &Before,
    touched: &[String],
) -> Result<(), String> {
    let steps = plan::rollback(commands, &before.present, &before.running, touched);
    let mut failures = Vec::new();
    for step in steps {
        let service = step
            .title
            .strip_prefix("up ")
            .and_then(|t| t.strip_suffix(" (previous)"))
            .map(str::to_owned);
        let result = match &service {
            Some(service) => h
                .timed(service, "rollback", |h| {
                    h.exec(&step.title, &step.command, None, false)
                })
                .map(drop),
            None => h.exec(&step.title, &step.command, None, false).map(drop),
        };
        match result {
            // Best effort: the replica goes back to the previous version either way, and the
            // undrain after its `up` puts it in the pool again.
            Err(error) if step.title.starts_with("drain ") => h.console.log(&format!(
                "[{}] warning: {error}; recreating it anyway",
                h.run.label()
            )),
            Err(error) => failures.push(error.to_string()),
            Ok(()) => {}
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
