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

pub mod chain;
pub mod dotenv;
mod fields;
mod lifecycle;
pub mod plan;
mod run;
pub mod spec;

use runner_protocol::{Runner, Verdict};
use sha2::{Digest, Sha256};

use crate::cli::DeployArgs;
use crate::error::{Error, usage};
use crate::hooks::{Hooks, MigrateOn};
use crate::options::{Connection, ServiceSettings};
use crate::quote::ReleaseId;
use crate::report::HostResult;
use crate::rollout::{FleetOutcome, Rollout};
use crate::schedule::{Budget, Schedule};

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
    /// Hooks and the migration (`--hook`, `--migrate`, `--migrate-on`, `--hooks-strict`).
    pub(crate) hooks: Hooks,
    /// Host indexes per batch: one host at a time, or `--schedule`'s steps (the hosts of a
    /// batch deploy in parallel, up to `--max-parallel`).
    pub(crate) batches: Vec<Vec<usize>>,
    /// `--schedule`, for the plan.
    pub(crate) schedule: Option<Schedule>,
    /// `--max-failed`: failed hosts (each rolled back) tolerated across every batch.
    pub(crate) budget: Budget,
    /// `--max-parallel`.
    pub(crate) max_parallel: usize,
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
        let hooks = crate::options::hooks_from_args(args)?;
        if args.batch_size != 0 {
            return Err(usage(
                "--batch-size does not apply to --strategy compose: hosts go one at a time, or \
                 as --schedule says (`--schedule 2` is batches of two)",
            ));
        }
        let schedule = args
            .schedule
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(Schedule::parse)
            .transpose()
            .map_err(usage)?;
        let budget = Budget::parse(&args.max_failed).map_err(usage)?;
        let total = connection.hosts.len();
        let mut batches = match &schedule {
            Some(schedule) => schedule.batches(0, total, total),
            None => (0..total).map(|i| vec![i]).collect(),
        };
        // A migration on the first host runs before any other host changes: that host goes
        // alone, as the first batch.
        if matches!(hooks.migrate, Some((_, MigrateOn::First))) && batches[0].len() > 1 {
            let rest: Vec<usize> = batches[0].split_off(1);
            batches.insert(1, rest);
        }
        Ok(Self {
            connection,
            settings,
            spec,
            release,
            digest,
            hooks,
            batches,
            schedule,
            budget,
            max_parallel: args.max_parallel.max(1),
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

/// Where the host's release record lives (env file copies, image ids): under its deploy root
/// (`--root`, or its inventory `root`).
pub(crate) fn record_dir(options: &ComposeOptions, host: &crate::options::HostSpec) -> String {
    options
        .connection
        .layout_for(host)
        .root()
        .join(&format!(".ssh-deploy/compose/{}", options.release))
}

/// The `--dry-run` plan: the batches and the failure budget, then per host the exact
/// commands, one block per remote command, with the hooks and the migration where they run.
pub(crate) fn render(options: &ComposeOptions) -> String {
    let mut text = options.settings.lock_plan();
    let hosts = &options.connection.hosts;
    let allowed = options.budget.allowed(hosts.len());
    text.push_str(&format!(
        "plan: {} batch(es){}: {}; failure budget: {allowed} host(s) (--max-failed), each rolled back on its own\n",
        options.batches.len(),
        options
            .schedule
            .as_ref()
            .map(|s| format!(" from --schedule `{s}`"))
            .unwrap_or_else(|| " (one host at a time)".into()),
        options
            .batches
            .iter()
            .map(|b| format!(
                "[{}]",
                b.iter()
                    .map(|&i| hosts[i].label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(" then "),
    ));
    text.push_str(&lifecycle::plan(&options.hooks));
    for (index, host) in hosts.iter().enumerate() {
        let record = record_dir(options, host);
        let commands = plan::Commands {
            spec: &options.spec,
            token: "<token>",
            record: &record,
        };
        let lifecycle = lifecycle::Lifecycle::new(
            &options.hooks,
            options.release.as_str(),
            &host.name(),
            index,
        );
        let before = lifecycle.parts(&commands, crate::hooks::Event::PreDeploy, "");
        let steps = plan::rollout(&commands, before, lifecycle.around(&commands));
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

/// Runs the compose deploy batch by batch (the hosts of a batch in parallel, up to
/// `--max-parallel`). A failed host is rolled back on its own; the rollout goes on while the
/// failed hosts fit the failure budget (`--max-failed`, across every batch), and stops at the
/// first failure beyond it (or at any rollback that did not complete).
pub(crate) fn deploy(options: &ComposeOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let hosts = &options.connection.hosts;
    let allowed = options.budget.allowed(hosts.len());
    let mut rollout = Rollout::new(
        &options.connection,
        &options.release,
        &options.digest,
        None,
        console.clone(),
    );
    let mut reports: Vec<HostComposeReport> = Vec::new();
    let mut outcome = FleetOutcome::Success;
    let mut tolerated: Vec<String> = Vec::new();
    'batches: for batch in &options.batches {
        for chunk in batch.chunks(options.max_parallel) {
            let labels: Vec<String> = chunk.iter().map(|&i| hosts[i].label()).collect();
            let _group = runner.group(&format!(
                "compose {} on {}",
                options.release,
                labels.join(", ")
            ));
            let ran: Vec<_> = std::thread::scope(|scope| {
                let started: Vec<_> = chunk
                    .iter()
                    .map(|&index| {
                        let console = console.clone();
                        scope.spawn(move || {
                            let host = &hosts[index];
                            let record = record_dir(options, host);
                            run::deploy_host(options, host, index, &record, &console)
                        })
                    })
                    .collect();
                started
                    .into_iter()
                    .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            let mut stop: Option<FleetOutcome> = None;
            for (&index, (report, ended, run)) in chunk.iter().zip(ran) {
                let host = &hosts[index];
                let context = options
                    .settings
                    .context(options.connection.layout_for(host), &console);
                let (result, log, failed) = match ended {
                    Ok(()) => (HostResult::Deployed, Some("success"), None),
                    Err(run::Failure::Untouched(error)) => (
                        HostResult::Failed,
                        None,
                        Some((error.to_string(), FleetOutcome::Failed(vec![error]))),
                    ),
                    Err(run::Failure::RolledBack(error)) => (
                        HostResult::RolledBack,
                        Some("rolled-back"),
                        Some((
                            error.to_string(),
                            FleetOutcome::RolledBack {
                                message: format!(
                                    "{error}; env files, image tags and the touched services were restored"
                                ),
                                infrastructure: false,
                            },
                        )),
                    ),
                    Err(run::Failure::RollbackFailed(error, rollback)) => {
                        let text = format!("{error}; then: {rollback}");
                        (
                            HostResult::RollbackFailed,
                            Some("rollback-failed"),
                            Some((text.clone(), FleetOutcome::RollbackFailed(text))),
                        )
                    }
                };
                rollout.record(index, run.as_ref(), result, report.error.clone());
                if let Some(mut run) = run {
                    // The release log records every run that changed something on the host
                    // (a successful one wrote it, and unlocked, in its last command: then only
                    // an unlock that failed there is tried again).
                    if !run.is_finished() {
                        rollout.finish(index, &mut run, &context, log);
                    } else if run.holds_lock() {
                        rollout.finish(index, &mut run, &context, None);
                    }
                }
                reports.push(report);
                if let Some((text, failure)) = failed {
                    tolerated.push(format!("{}: {text}", host.label()));
                    // A host left half-way always stops the rollout, and says so first.
                    let half_way = matches!(failure, FleetOutcome::RollbackFailed(_));
                    if half_way || (tolerated.len() > allowed && stop.is_none()) {
                        stop = Some(failure);
                    }
                }
            }
            if let Some(failure) = stop {
                outcome = failure;
                break 'batches;
            }
        }
    }
    if matches!(outcome, FleetOutcome::Success) && !tolerated.is_empty() {
        outcome = FleetOutcome::Partial(format!(
            "{} host(s) failed within the failure budget ({} of {allowed}), each rolled back: {}; every other host is on {}",
            tolerated.len(),
            tolerated.len(),
            tolerated.join("; "),
            options.release
        ));
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
