//! Deploy to Amazon ECS: new task definition revisions, service update, honest wait, rollback.
//!
//! - [`plan`]: flags or a deploy file (`deploy_file`, every problem placed at its line) ->
//!   validated service plans; [`plan_error`] says what is wrong with them.
//! - [`taskdef`]: the register-API field model, describe-only stripping, edits, image references.
//! - [`diff`]: per-container changes, secrets and long values redacted.
//! - [`watch`]: the wait decision over DescribeServices observations.
//! - [`service_plan`] -> [`prepare`] (describe, render, check images; nothing changes) ->
//!   [`prepared`] -> [`fleet`] (register, update, wait, roll back), behind the [`api::EcsApi`]
//!   seam, configured by [`fleet_config`], reporting to a [`sink`] and into a [`fleet_report`].
//! - [`native`]: blue/green, linear and canary services: the service-deployment wait.
//! - [`migration`]: a one-off task on the new revision that gates every update.
//! - [`aws`]: the seam over the SDK; [`replay`]: a scripted one for tests and benchmarks.

pub mod api;
pub mod aws;
mod cli;
mod deploy_file;
pub mod diff;
pub mod fleet;
pub mod fleet_config;
pub mod fleet_report;
pub mod limits;
pub mod migration;
pub mod native;
mod native_deploy;
pub mod plan;
pub mod plan_error;
mod plan_values;
pub mod prepare;
pub mod prepared;
pub mod replay;
mod retry;
mod rollback_end;
pub mod service_plan;
pub mod sink;
pub mod taskdef;
pub mod watch;

mod error;
pub use error::Error;

use std::collections::BTreeMap;
use std::path::Path;

pub use cli::{Args, Cli, Command};
use runner_protocol::signal::Interrupts;
use runner_protocol::{Runner, Verdict};
use serde_json::{Value, json};

use crate::api::{EcsApi, SystemClock};
use crate::aws::{Aws, Connection};
use crate::fleet_config::FleetConfig;
use crate::fleet_report::{FleetOutcome, FleetReport};
use crate::plan_error::PlanError;
use crate::prepare::PrepareError;
use crate::service_plan::{Base, ServicePlan};
use crate::sink::Sink;
use crate::watch::WatchConfig;

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[
    "result",
    "task-definition-arn",
    "previous-task-definition-arn",
    "image-digests",
    "task-definition",
    "diff",
];

/// Progress to the log; warnings also as annotations.
struct LogSink<'a>(&'a Runner);

impl Sink for LogSink<'_> {
    fn line(&mut self, service: &str, text: &str) {
        tracing::info!("{service}: {text}");
    }

    fn warn(&mut self, service: &str, text: &str) {
        self.0.warn(&format!("{service}: {text}"));
    }

    fn notice(&mut self, service: &str, text: &str) {
        self.0.notice(&format!("{service}: {text}"));
    }

    fn untrusted(&mut self, service: &str, heading: &str, lines: &[String]) {
        tracing::info!("{service}: {heading}");
        // Workflow commands are suspended around the block; each line is scrubbed of secrets
        // and its control characters are made visible.
        let block = self.0.console().untrusted();
        for line in lines.iter().flat_map(|l| l.lines()) {
            block.line(&format!("{service}: | {line}"));
        }
    }
}

/// Runs `ecs-taskdef-update` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let args = cli.command.args().clone();
    let plan = plan::from_args(&args, Path::new("."))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(execute(&cli.command, &args, plan, runner))
}

fn config(args: &Args, sequential: bool, migration: Option<migration::Migration>) -> FleetConfig {
    FleetConfig {
        poll_interval: args.poll_interval,
        watch: WatchConfig {
            timeout: args.timeout,
            max_failed_tasks: args.max_failed_tasks,
            allow_zero_desired: args.allow_zero_desired,
        },
        pin_digest: args.pin_digest,
        sequential,
        rollback: args.rollback,
        max_attempts: 5,
        pause_timeout: args.pause_timeout,
        migration,
    }
}

async fn connect(args: &Args) -> Result<Aws, Error> {
    Ok(Aws::connect(&Connection {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
    })
    .await?)
}

async fn execute(
    command: &Command,
    args: &Args,
    plan: plan::Plan,
    runner: &mut Runner,
) -> Result<Verdict, Error> {
    let config = config(args, plan.sequential, plan.migration.clone());
    match command {
        Command::Render(_) | Command::Diff(_) => {
            let offline = plan
                .services
                .iter()
                .all(|s| matches!(s.base, Base::Document(_)));
            let aws = if offline {
                None
            } else {
                Some(connect(args).await?)
            };
            render(
                matches!(command, Command::Diff(_)),
                args,
                (&plan.services, plan.migration.as_ref()),
                aws.as_ref(),
                runner,
            )
            .await
        }
        Command::Deploy(_) => {
            let interrupts = Interrupts::listen().map_err(Error::Runtime)?;
            let aws = connect(args).await?;
            let clock = SystemClock::default();
            let report =
                deploy_with(&aws, &clock, &plan.services, &config, &interrupts, runner).await?;
            finish(report, runner)
        }
        Command::Rollback(_) => {
            let interrupts = Interrupts::listen().map_err(Error::Runtime)?;
            let aws = connect(args).await?;
            let clock = SystemClock::default();
            let mut results = Vec::new();
            for service in &plan.services {
                let outcome = fleet::roll_back_to(
                    &aws,
                    &clock,
                    service,
                    args.to_revision.as_deref(),
                    &config,
                    &interrupts,
                    &mut LogSink(runner),
                )
                .await
                .map_err(|reason| Error::RollbackCommand {
                    service: service.service.clone(),
                    reason,
                })?;
                results.push((service.service.clone(), outcome));
            }
            let result: Vec<Value> = results
                .iter()
                .map(|(service, (from, to))| {
                    json!({"service": service, "previous-task-definition-arn": from,
                           "task-definition-arn": to, "status": "rolled-back"})
                })
                .collect();
            if let [(_, (from, to))] = results.as_slice() {
                runner.set_output("task-definition-arn", to.clone())?;
                runner.set_output("previous-task-definition-arn", from.clone())?;
            }
            runner.set_output("result", Value::Array(result))?;
            Ok(Verdict::Success)
        }
    }
}

/// Prepares and deploys with any [`EcsApi`]; writes nothing to the runner but logs.
/// An interrupt during the deploy rolls back what changed; a later one stops that wait.
pub async fn deploy_with(
    api: &impl EcsApi,
    clock: &impl api::Clock,
    services: &[ServicePlan],
    config: &FleetConfig,
    interrupts: &Interrupts,
    runner: &Runner,
) -> Result<FleetReport, Error> {
    let started = clock.now();
    let prepared = prepare::prepare(api, clock, services, config, &mut LogSink(runner)).await?;
    let mut hidden = false;
    for service in &prepared {
        for change in diff::diff(&service.base, &service.rendered) {
            hidden |= diff::hides_a_value(&change);
            tracing::info!("{}: {change}", service.plan.service);
        }
    }
    if hidden {
        tracing::info!("note: {}", diff::HIDDEN_NOTE);
    }
    let report = fleet::deploy(
        api,
        clock,
        &prepared,
        config,
        interrupts,
        &mut LogSink(runner),
    )
    .await;
    tracing::info!(
        "finished in {}",
        humantime::format_duration(clock.now().saturating_sub(started))
    );
    Ok(report)
}

/// Writes outputs and the summary of a deploy and maps its outcome.
fn finish(report: FleetReport, runner: &mut Runner) -> Result<Verdict, Error> {
    let mut digests = BTreeMap::new();
    let masker = runner.console().masker().clone();
    let result: Vec<Value> = report
        .services
        .iter()
        .map(|s| {
            digests.extend(s.image_digests.clone());
            json!({
                "cluster": s.cluster,
                "service": s.service,
                "task-definition-arn": s.task_definition,
                "previous-task-definition-arn": s.previous_task_definition,
                "image-digests": s.image_digests,
                "status": s.status.as_str(),
                "reason": s.reason,
                "migration": s.migration.as_ref().map(|m| json!({
                    "task": m.task,
                    "exit-codes": m.exit_codes,
                    "stopped-reason": m.stopped_reason,
                    "log": m.log,
                    // From the container: scrubbed of every registered secret.
                    "log-tail": m.log_tail.iter().map(|l| masker.scrub(l)).collect::<Vec<_>>(),
                })),
            })
        })
        .collect();
    runner.set_output("result", Value::Array(result))?;
    runner.set_output("image-digests", json!(digests))?;
    if let [single] = report.services.as_slice() {
        runner.set_output(
            "task-definition-arn",
            single.task_definition.clone().unwrap_or_default(),
        )?;
        runner.set_output(
            "previous-task-definition-arn",
            single.previous_task_definition.clone(),
        )?;
    }
    let summary = runner.summary();
    summary.heading(2, "ECS deploy");
    summary.table(
        &["service", "status", "task definition", "previous", "reason"],
        report.services.iter().map(|s| {
            vec![
                s.service.clone(),
                s.status.as_str().to_owned(),
                s.task_definition.clone().unwrap_or_default(),
                s.previous_task_definition.clone(),
                s.reason.clone().unwrap_or_default(),
            ]
        }),
    );
    match report.outcome {
        FleetOutcome::Deployed => Ok(Verdict::Success),
        FleetOutcome::RolledBack(reason) => Ok(Verdict::RolledBack(format!(
            "{reason}; every changed service is back on its previous revision"
        ))),
        FleetOutcome::Failed(reason) => Ok(Verdict::Failed(reason)),
        FleetOutcome::RollbackFailed(reason) => Err(Error::RollbackFailed(reason)),
        FleetOutcome::Interrupted(reason) => Ok(Verdict::Interrupted(reason)),
    }
}

/// The base and the rendered task definition of one service; `api` is needed unless the base
/// is a document. Changes nothing.
pub async fn render_service(
    api: Option<&impl EcsApi>,
    service: &ServicePlan,
) -> Result<(taskdef::RegisterInput, taskdef::RegisterInput), Error> {
    let api_error = |source| Error::Api {
        service: service.service.clone(),
        source,
    };
    let document = match (&service.base, api) {
        (Base::Document(document), _) => document.clone(),
        (Base::Reference(reference), Some(api)) => api
            .describe_task_definition(reference)
            .await
            .map_err(api_error)?,
        (Base::Current, Some(api)) => {
            let state = api
                .describe_service(&service.cluster, &service.service)
                .await
                .map_err(api_error)?;
            if state.status != "ACTIVE" {
                return Err(PrepareError::NotActive {
                    cluster: service.cluster.clone(),
                    service: service.service.clone(),
                    status: state.status,
                }
                .into());
            }
            api.describe_task_definition(&state.task_definition)
                .await
                .map_err(api_error)?
        }
        (_, None) => {
            return Err(PlanError::Usage(
                "render and diff without AWS access need --task-definition FILE".into(),
            )
            .into());
        }
    };
    let taskdef_error = |source| Error::TaskDef {
        service: service.service.clone(),
        source,
    };
    let base = taskdef::from_describe(&document).map_err(taskdef_error)?;
    let rendered =
        taskdef::render(&base, &service.task_edit, &service.edits).map_err(taskdef_error)?;
    Ok((base, rendered))
}

/// `render` and `diff`.
async fn render(
    diff_only: bool,
    args: &Args,
    (services, migration): (&[ServicePlan], Option<&migration::Migration>),
    aws: Option<&Aws>,
    runner: &mut Runner,
) -> Result<Verdict, Error> {
    let mut files = BTreeMap::new();
    let mut diff_lines = Vec::new();
    let mut hidden = false;
    for service in services {
        let (base, rendered) = render_service(aws, service).await?;
        if diff_only {
            let changes = diff::diff(&base, &rendered);
            if changes.is_empty() {
                diff_lines.push(format!("{}: no changes", service.service));
            }
            for change in changes {
                hidden |= diff::hides_a_value(&change);
                diff_lines.push(format!("{}: {change}", service.service));
            }
            continue;
        }
        let path = args.output_dir.join(format!("{}.json", service.service));
        let text = serde_json::to_string_pretty(&rendered.to_value()).unwrap_or_default();
        std::fs::create_dir_all(&args.output_dir)
            .and_then(|()| std::fs::write(&path, text + "\n"))
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        tracing::info!("{}: wrote {}", service.service, path.display());
        files.insert(service.service.clone(), path.display().to_string());
    }
    if let (true, Some(migration)) = (diff_only, migration) {
        diff_lines.push(format!(
            "{}: migration before any service is updated: one task on the new revision, \
             container {} runs {} (timeout {}); a non-zero exit code changes no service",
            migration.service,
            migration.container,
            serde_json::to_string(&migration.command).unwrap_or_default(),
            humantime::format_duration(migration.timeout)
        ));
    }
    if diff_only {
        if hidden {
            diff_lines.push(format!("note: {}", diff::HIDDEN_NOTE));
        }
        for line in &diff_lines {
            tracing::info!("{line}");
        }
        let text = diff_lines.join("\n");
        runner.summary().heading(2, "ECS task definition diff");
        runner
            .summary()
            .push_markdown(&format!("```\n{text}\n```\n"));
        runner.set_output("diff", text)?;
    } else {
        let value: runner_protocol::output::OutputValue = match files.values().next() {
            Some(path) if files.len() == 1 => path.clone().into(),
            _ => json!(files).into(),
        };
        runner.set_output("task-definition", value)?;
    }
    Ok(Verdict::Success)
}
