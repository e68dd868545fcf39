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
use crate::error::{Error, usage};
use crate::options::{Connection, ServiceSettings};
use crate::quote::ReleaseId;
use crate::report::HostResult;
use crate::rollout::{FleetOutcome, Rollout};

pub use run::{HostComposeReport, ServiceTiming};

/// Validated `deploy --strategy compose` options.
#[derive(Debug)]
pub struct ComposeOptions {
    /// Hosts and credentials.
    pub connection: Connection,
    /// Lock, dry run, who and which run.
    pub(crate) settings: ServiceSettings,
    /// The deploy file, values resolved.
    pub spec: spec::Spec,
    /// The release id (`--release-id`, or the first 12 hex digits of [`Self::digest`]).
    pub release: ReleaseId,
    /// sha256 over the deploy file and every resolved value: the release log's checksum.
    pub digest: String,
}

impl ComposeOptions {
    /// Validates the flags and loads the deploy file (before any connection). Values read from
    /// the environment or files are masked before anything can print them.
    pub(crate) fn from_args(args: &DeployArgs, runner: &Runner) -> Result<Self, Error> {
        let connection = Connection::from_args(&args.hosts, runner)?;
        let settings = ServiceSettings::from_args(&args.change, None, runner, false)?;
        if settings.gate.is_some() {
            return Err(usage(
                "--gate-file does not apply to --strategy compose: give each service its \
                 `gate:` in the --compose-file",
            ));
        }
        if !settings.services.is_empty() {
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
        let spec = spec::load(path, &text, &lookup)?;
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
        let release = crate::options::release_id(args.release_id.as_deref(), &digest)?;
        Ok(Self {
            connection,
            settings,
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

/// Where the host's release record lives (env file copies, image ids).
pub(crate) fn record_dir(options: &ComposeOptions) -> String {
    options
        .connection
        .layout
        .root()
        .join(&format!(".ssh-deploy/compose/{}", options.release))
}

/// The `--dry-run` plan: per host the exact commands.
pub(crate) fn render(options: &ComposeOptions) -> String {
    let record = record_dir(options);
    let commands = plan::Commands {
        spec: &options.spec,
        token: "<token>",
        record: &record,
    };
    let steps = plan::rollout(&commands);
    let mut text = options.settings.lock_plan();
    for host in &options.connection.hosts {
        text.push_str(&format!(
            "plan: compose release {} on {} (on failure: restore env files and image tags from {record}, then bring the touched services back newest first)\n",
            options.release,
            host.label()
        ));
        for step in &steps {
            text.push_str(&format!(
                "  [{}] {}: {}\n",
                host.label(),
                step.title,
                step.command
            ));
        }
    }
    text
}

/// Runs the compose deploy on every host, one host at a time; stops at the first failure.
pub(crate) fn deploy(options: &ComposeOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let record = record_dir(options);
    let console = runner.console().clone();
    let context = options
        .settings
        .context(&options.connection.layout, &console);
    let mut rollout = Rollout::new(
        &options.connection,
        &options.release,
        &options.digest,
        None,
        console.clone(),
    );
    let mut reports: Vec<HostComposeReport> = Vec::new();
    let mut outcome = FleetOutcome::Success;
    for (index, host) in options.connection.hosts.iter().enumerate() {
        let _group = runner.group(&format!("compose {} on {}", options.release, host.label()));
        let (report, ended, run) = run::deploy_host(options, host, &record, &console);
        let (result, log) = match ended {
            Ok(()) => (HostResult::Deployed, Some("success")),
            Err(run::Failure::Untouched(error)) => {
                outcome = FleetOutcome::Failed(vec![error]);
                (HostResult::Failed, None)
            }
            Err(run::Failure::RolledBack(error)) => {
                outcome = FleetOutcome::RolledBack {
                    message: format!(
                        "{error}; env files, image tags and the touched services were restored"
                    ),
                    infrastructure: false,
                };
                (HostResult::RolledBack, Some("rolled-back"))
            }
            Err(run::Failure::RollbackFailed(error, rollback)) => {
                outcome = FleetOutcome::RollbackFailed(format!("{error}; then: {rollback}"));
                (HostResult::RollbackFailed, Some("rollback-failed"))
            }
        };
        rollout.record(index, run.as_ref(), result, report.error.clone());
        if let Some(mut run) = run {
            // The release log records every run that changed something on the host.
            rollout.finish(index, &mut run, &context, log);
        }
        reports.push(report);
        if !matches!(outcome, FleetOutcome::Success) {
            break;
        }
    }
    runner.set_output(
        "compose-report",
        serde_json::to_value(&reports).unwrap_or_default(),
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
    rollout.conclude(
        runner,
        &format!("ssh-deploy compose {}", options.release),
        outcome,
    )
}
