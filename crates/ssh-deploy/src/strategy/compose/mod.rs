//! `--strategy compose`: docker compose hosts (issue #11, part 3).
//!
//! Per host, one at a time: lock -> pull every new image (a failure stops here, nothing
//! touched) -> read the managed env files and compute the new ones ([`dotenv`], pure) ->
//! snapshot into the release record (`<root>/.ssh-deploy/compose/<release>/`: copies of every
//! managed env file, the image id and reference each service runs) -> write the env files
//! atomically (content on stdin, never on a command line) -> `docker compose config --quiet`
//! -> one `up -d --no-deps --wait` per service in the configured order, replicas one at a time
//! (drain hook, up, health-gate, undrain hook) -> on any failure: restore the env files and
//! image tags from the record and bring the touched services back, newest first.
//! The commands are spelled by [`plan`] (pure, snapshot-tested); [`run`] carries them out.

pub mod dotenv;
mod fields;
pub mod plan;
mod run;
pub mod spec;

use runner_protocol::{Runner, Verdict};
use sha2::{Digest, Sha256};

use crate::cli::DeployArgs;
use crate::options::{Change, Connection, Error, HostReport};
use crate::quote::ReleaseId;

pub use run::{HostComposeReport, ServiceTiming};

/// Validated `deploy --strategy compose` options.
#[derive(Debug)]
pub struct ComposeOptions {
    /// Hosts and credentials.
    pub connection: Connection,
    /// Lock, dry run, who and which run.
    pub change: Change,
    /// The deploy file, values resolved.
    pub spec: spec::Spec,
    /// The release id (`--release-id`, or the first 12 hex digits of [`Self::digest`]).
    pub release: ReleaseId,
    /// sha256 over the deploy file and every resolved value: the release log's checksum.
    pub digest: String,
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

impl ComposeOptions {
    /// Validates the flags and loads the deploy file (before any connection). Values read from
    /// the environment or files are masked before anything can print them.
    pub fn from_args(args: &DeployArgs, runner: &Runner) -> Result<Self, Error> {
        let connection = Connection::from_args(&args.hosts, runner)?;
        let change = Change::from_args(&args.change, None, runner, false)?;
        if change.gate.is_some() {
            return Err(usage(
                "--gate-file does not apply to --strategy compose: give each service its \
                 `gate:` in the --compose-file",
            ));
        }
        if !change.services.is_empty() {
            return Err(usage(
                "--services does not apply to --strategy compose: the --compose-file lists \
                 the services in rollout order",
            ));
        }
        let path = args.compose_file.as_ref().ok_or_else(|| {
            usage("--strategy compose needs --compose-file (the compose deploy file)")
        })?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--compose-file {}: {e}", path.display())))?;
        let env = runner.env();
        let lookup = |name: &str| env.get(name).map(str::to_owned);
        let spec = spec::load(path, &text, &lookup).map_err(|e| usage(e.to_string()))?;
        for file in &spec.env_files {
            for (key, value) in &file.set {
                if !is_image_variable(&spec, key) && !file.literal.contains(key) {
                    let _ = runner.secret(value.clone());
                }
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(text.as_bytes());
        for file in &spec.env_files {
            hasher.update(file.path.as_bytes());
            for (key, value) in &file.set {
                hasher.update(format!("\0{key}\0{}\0", value.len()).as_bytes());
                hasher.update(value.as_bytes());
            }
        }
        let digest = crate::pack::hex(&hasher.finalize());
        let release = match &args.release_id {
            Some(id) if !id.is_empty() => {
                ReleaseId::parse(id).map_err(|e| usage(format!("--release-id: {e}")))?
            }
            _ => ReleaseId::parse(&digest[..12]).map_err(usage)?,
        };
        Ok(Self {
            connection,
            change,
            spec,
            release,
            digest,
        })
    }
}

/// True when `key` is an image variable (image references are not secret and stay readable).
fn is_image_variable(spec: &spec::Spec, key: &str) -> bool {
    spec.services
        .iter()
        .filter_map(|s| s.image.as_ref())
        .any(|i| i.variable == key)
}

/// Runs the compose deploy on every host, one host at a time; stops at the first failure.
pub fn deploy(options: &ComposeOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    runner.set_output("release-id", options.release.as_str())?;
    let record = options
        .connection
        .layout
        .root()
        .join(&format!(".ssh-deploy/compose/{}", options.release));
    if options.change.dry_run {
        let commands = plan::Commands {
            spec: &options.spec,
            token: "<token>",
            record: &record,
        };
        let steps = plan::rollout(&commands);
        for host in &options.connection.hosts {
            runner.console().log(&format!(
                "plan: compose release {} on {} (on failure: restore env files and image tags from {record}, then bring the touched services back newest first)",
                options.release,
                host.label()
            ));
            for step in &steps {
                runner.console().log(&format!(
                    "  [{}] {}: {}",
                    host.label(),
                    step.title,
                    step.command
                ));
            }
        }
        runner.set_output("result", "dry-run")?;
        return Ok(Verdict::Success);
    }
    let console = runner.console().clone();
    let mut reports: Vec<HostComposeReport> = Vec::new();
    let mut host_reports: Vec<HostReport> = Vec::new();
    let mut failure: Option<run::Failure> = None;
    for host in &options.connection.hosts {
        if failure.is_some() {
            host_reports.push(HostReport {
                host: host.label(),
                result: "skipped".into(),
                previous: None,
                error: None,
                seconds: 0.0,
            });
            continue;
        }
        let _group = runner.group(&format!("compose {} on {}", options.release, host.label()));
        let (report, outcome) = run::deploy_host(options, host, &record, &console);
        host_reports.push(HostReport {
            host: host.label(),
            result: report.result.clone(),
            previous: None,
            error: report.error.clone(),
            seconds: report.seconds,
        });
        reports.push(report);
        if let Err(error) = outcome {
            failure = Some(error);
        }
    }
    runner.set_output(
        "compose-report",
        serde_json::to_string(&reports).unwrap_or_default(),
    )?;
    let summary = runner.summary();
    for report in &reports {
        summary.heading(4, &format!("{} ({})", report.host, report.result));
        summary.table(
            &["service", "action", "result", "time"],
            report.services.iter().map(|t| {
                vec![
                    t.service.clone(),
                    t.action.clone(),
                    t.result.clone(),
                    format!("{:.1}s", t.seconds),
                ]
            }),
        );
    }
    crate::options::report_hosts(
        runner,
        &format!("ssh-deploy compose {}", options.release),
        &host_reports,
    )?;
    match failure {
        None => {
            runner.set_output("result", "success")?;
            Ok(Verdict::Success)
        }
        Some(run::Failure::Untouched(error)) => {
            runner.set_output("result", "failed")?;
            Err(Error::Hosts(vec![error]))
        }
        Some(run::Failure::RolledBack(error)) => {
            runner.set_output("result", "rolled-back")?;
            Ok(Verdict::RolledBack(format!(
                "{error}; env files, image tags and the touched services were restored"
            )))
        }
        Some(run::Failure::RollbackFailed(error, rollback)) => {
            runner.set_output("result", "rollback-failed")?;
            Err(Error::RollbackFailed(format!("{error}; then: {rollback}")))
        }
    }
}
