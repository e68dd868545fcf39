//! Find which services changed: named glob filters over git diffs, per event (push, pull request, merge queue, tags).
//!
//! [`run`] maps the command line to [`options::Options`], then:
//!
//! 1. parses the filters ([`config`]; dorny/paths-filter's YAML, picomatch globs in [`glob`]);
//! 2. decides what to compare from the event ([`plan`], pure);
//! 3. lists the changes with git or the REST API ([`collect`], [`git`], [`api`]);
//! 4. matches filters x changes ([`matcher`], pure, compiled globs indexed by directory),
//!    on worker threads while git is still listing;
//! 5. writes outputs, the step summary and a table on stderr ([`report`], [`format`]).

pub mod api;
pub mod base_source;
pub mod change;
pub mod ci;
mod cli;
pub mod collect;
pub mod config;
pub mod decision;
mod error;
pub mod filter;
pub mod format;
pub mod git;
pub mod github;
pub mod glob;
pub mod jsregex;
pub mod last_deployment;
pub mod last_success;
pub mod lookaheads;
pub mod matcher;
pub mod options;
pub mod outputs;
pub mod picomatch;
pub mod plan;
pub mod report;

pub use cli::Cli;
pub use error::Error;

use std::path::Path;

use runner_protocol::event::EventContext;
use runner_protocol::{Runner, Verdict};

use crate::api::ApiTarget;
use crate::config::{FiltersError, Origin, limits};
use crate::decision::Plan;
use crate::filter::Filter;
use crate::format::ListFormat;
use crate::git::{EarlyDiff, Git};
use crate::matcher::{Matcher, Pipeline};
use crate::options::Options;
use crate::report::Report;

/// The step outputs this tool always writes; `action.yml` must declare exactly these.
///
/// Per-filter outputs (`<filter>`, `<filter>_count`, `<filter>_files`) are written too, but
/// their names come from the filters file, so a composite action cannot re-export them: the
/// `filters` output carries the same data as JSON.
pub const OUTPUTS: &[&str] = outputs::STATIC_OUTPUTS;

/// Lists whose step outputs would take more than this (bytes, as GitHub counts them) are
/// written to files instead: GitHub accepts 1 MB of outputs per job.
const LIST_OUTPUT_LIMIT: usize = runner_protocol::output::GITHUB_OUTPUT_JOB_LIMIT;

/// The default REST API root when `GITHUB_API_URL` is not set.
const DEFAULT_API_URL: &str = "https://api.github.com";

/// Runs `change-detect` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let mut options = Options::from_cli(cli)?;
    options.ci = ci::CiContext::from_env(runner.env());
    let token = options.token.as_deref().map(|t| runner.secret(t));
    // git is the long pole: start the diff the plan will most likely ask for before
    // anything else, so that parsing the filters and checking the repository overlap it.
    // Errors keep their order: the event's are reported after the filters'.
    let event = runner.event();
    // The two "last good commit" bases become a commit (or, with none, the event's own base).
    let mut resolved_source = None;
    let context = event.as_ref().ok().and_then(Option::as_ref);
    if options.base.as_deref() == Some(last_success::LAST_SUCCESS) {
        if resolve_last_success(&mut options, runner, context, token.clone())? {
            resolved_source = Some(base_source::BaseSource::LastSuccess);
        }
    } else if let Some(environment) = options
        .base
        .as_deref()
        .and_then(last_deployment::environment)
        .map(str::to_owned)
    {
        if resolve_last_deployment(&mut options, runner, context, token.clone(), environment)? {
            resolved_source = Some(base_source::BaseSource::LastDeployment);
        }
    }
    let early = early_diff(&options, event.as_ref().ok().and_then(Option::as_ref));
    let (filters, origin) = load_filters(&options)?;
    tracing::debug!(filters = filters.len(), ?origin, "filters parsed");
    // Compile the patterns while git runs, and match the changes while git writes them.
    let compiling = {
        let filters = filters.clone();
        let quantifier = options.quantifier;
        std::thread::spawn(move || Matcher::new(&filters, quantifier))
    };

    let event = event?;
    let mut git = Git::open(&options.working_directory)?;
    if let Some(git) = git.as_mut() {
        git.adopt(early);
    }
    let mut decision = plan::decide(event.as_ref(), &options, git.is_some())?;
    if let Some(source) = resolved_source {
        decision.source = source;
    }
    for notice in &decision.notices {
        runner.notice(notice);
    }
    for warning in &decision.warnings {
        runner.warn(warning);
    }
    tracing::debug!(plan = ?decision.plan, "range decided");
    let api = match (token, event.as_ref().and_then(|e| e.repository.clone())) {
        (Some(token), Some(repository)) => Some(ApiTarget {
            url: api_url(runner.env()),
            repository,
            token,
        }),
        _ => None,
    };
    let mut pipeline = Pipeline::new(compiling);
    let collected = {
        let _group = runner.group("Listing changes");
        let collected = collect::collect(
            &decision.plan,
            &options,
            collect::Sources {
                git: git.as_mut(),
                api,
            },
            &mut |change| pipeline.push(change),
        );
        if let Some(git) = &git {
            for command in &git.fetch_log {
                runner.console().log(command);
            }
        }
        collected
    };
    let collected = collected?;
    let matcher::Listed { changes, matches } = pipeline.finish()?;
    if git.as_ref().is_some_and(Git::used_safe_directory) {
        runner.notice(
            "git refused the repository (dubious ownership, usual in container jobs); it was \
             read with `-c safe.directory` for this step only, without changing git config",
        );
    }
    for notice in &collected.notices {
        runner.notice(notice);
    }
    for warning in &collected.warnings {
        runner.warn(warning);
    }

    let report = Report::new(
        &filters,
        &changes,
        &matches,
        collected.range.clone(),
        collected.base.clone(),
        collected.head.clone(),
        collected.base_source.unwrap_or(decision.source),
    );
    // Lists GitHub would not accept as step outputs (1 MB per job) go to files instead,
    // streamed; nothing the size of the lists is ever held in memory.
    let list_size = report.list_output_size(options.list_files);
    let oversized = list_size > LIST_OUTPUT_LIMIT;
    let files_dir = match &options.files_dir {
        Some(dir) => Some(options.working_directory.join(dir)),
        None if oversized => Some(default_files_dir(runner)),
        None => None,
    };
    let in_outputs = if oversized {
        ListFormat::None
    } else {
        options.list_files
    };
    report.set_outputs(runner, in_outputs)?;
    if let (true, Some(dir)) = (oversized, &files_dir) {
        runner.warn(&format!(
            "the file lists would take about {} MB as step outputs, more than the 1 MB GitHub \
             accepts per job: `<filter>_files` and the `files` of the `filters` output are left \
             out, and every list is in {} (`<filter>.txt`, NUL-separated, and `<filter>.json`); \
             set `files-dir` to choose the directory",
            list_size.div_ceil(1_000_000),
            dir.display()
        ));
    }
    report.write_summary(runner);
    report.log_table(runner);
    if let Some(dir) = files_dir {
        report
            .write_files(&dir)
            .map_err(|source| Error::FilesDir { path: dir, source })?;
    }
    // The process ends right after this: freeing 100,000 paths one by one would only add
    // milliseconds after the work is done, so the change list and the matches are left to
    // the operating system.
    drop(report);
    std::mem::forget(changes);
    std::mem::forget(matches);
    Ok(Verdict::Success)
}

/// Starts the diff of a two-dot plan between full SHAs (push and merge queue events, or
/// `--base`/`--ref` SHAs), assuming the working directory is a repository; when it is not,
/// or the plan turns out different, the diff is dropped unread.
fn early_diff(options: &Options, event: Option<&EventContext>) -> Option<EarlyDiff> {
    match plan::decide(event, options, true).ok()?.plan {
        Plan::TwoDot { base, head } => {
            EarlyDiff::start(&options.working_directory, &base, &head, options.renames)
        }
        _ => None,
    }
}

/// Reads and parses the filters (inline, or a file relative to the working directory).
fn load_filters(options: &Options) -> Result<(Vec<Filter>, Origin), Error> {
    let (text, origin) = if options.filters_are_inline() {
        (options.filters.clone(), Origin::Inline)
    } else {
        let path = options.working_directory.join(&options.filters);
        let origin = Origin::File(Path::new(&options.filters).to_owned());
        // A huge file is refused before it is read.
        if let Ok(metadata) = std::fs::metadata(&path) {
            let length = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
            if let Err(error) = limits::check_size(length) {
                return Err(Error::Config(Box::new(FiltersError {
                    origin,
                    text: String::new(),
                    error,
                })));
            }
        }
        let text = read_file(&path).map_err(|source| Error::FiltersFile {
            path: path.clone(),
            source,
        })?;
        (text, origin)
    };
    match config::parse(&text) {
        Ok(filters) => Ok((filters, origin)),
        Err(error) => Err(Error::Config(Box::new(FiltersError {
            origin,
            text,
            error,
        }))),
    }
}

fn read_file(path: &Path) -> std::io::Result<String> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file",
        ));
    }
    std::fs::read_to_string(path)
}

/// Where oversized lists go when `files-dir` is not set: the runner's temporary directory
/// (cleaned after the job), else the system's.
fn default_files_dir(runner: &Runner) -> std::path::PathBuf {
    let base = runner
        .env()
        .path("RUNNER_TEMP")
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("change-detect-lists-{}", std::process::id()))
}

/// `GITHUB_API_URL` without a trailing `/`, or github.com's API.
fn api_url(env: &runner_protocol::Env) -> String {
    env.get("GITHUB_API_URL")
        .unwrap_or(DEFAULT_API_URL)
        .trim_end_matches('/')
        .to_owned()
}

/// `base: last-deployment:<environment>`: the commit of the newest successful deployment to the
/// environment becomes the base; with none, the event decides as without `base` (with a notice).
fn resolve_last_deployment(
    options: &mut Options,
    runner: &Runner,
    event: Option<&EventContext>,
    token: Option<runner_protocol::Secret>,
    environment: String,
) -> Result<bool, Error> {
    use last_deployment::LastDeploymentError::Setup;
    if environment.trim().is_empty() {
        return Err(Setup {
            missing: "an environment name after `last-deployment:`",
        }
        .into());
    }
    let context = event.ok_or(Setup {
        missing: "GitHub Actions (no GITHUB_EVENT_NAME)",
    })?;
    let token = token.ok_or(Setup {
        missing: "a `token` (with `deployments: read`)",
    })?;
    let repository = context.repository.clone().ok_or(Setup {
        missing: "the repository (GITHUB_REPOSITORY)",
    })?;
    let query = last_deployment::Query {
        url: api_url(runner.env()),
        repository,
        environment: environment.clone(),
        token,
    };
    match last_deployment::find(&query)? {
        Some(deployment) => {
            runner.notice(&format!(
                "base from the last successful deployment to `{environment}`: deployment {} of {} \
                 (ref `{}`, created {})",
                deployment.id, deployment.sha, deployment.git_ref, deployment.created_at
            ));
            options.base = Some(deployment.sha);
            Ok(true)
        }
        None => {
            runner.notice(&format!(
                "`base: last-deployment:{environment}` found no successful deployment among the \
                 newest {} (a new environment, or only failed ones): comparing as the {} event \
                 does without `base`",
                last_deployment::SCANNED,
                context.name
            ));
            options.base = None;
            Ok(false)
        }
    }
}

/// `base: last-success`: the head commit of the last successful run of this workflow on this
/// branch becomes the base; with none, the event decides as without `base` (with a notice).
fn resolve_last_success(
    options: &mut Options,
    runner: &Runner,
    event: Option<&EventContext>,
    token: Option<runner_protocol::Secret>,
) -> Result<bool, Error> {
    use last_success::LastSuccessError::Setup;
    let context = event.ok_or(Setup {
        missing: "GitHub Actions (no GITHUB_EVENT_NAME)",
    })?;
    let token = token.ok_or(Setup {
        missing: "a `token` (with `actions: read`)",
    })?;
    let repository = context.repository.clone().ok_or(Setup {
        missing: "the repository (GITHUB_REPOSITORY)",
    })?;
    let env = runner.env();
    let workflow = env
        .get("GITHUB_WORKFLOW_REF")
        .and_then(last_success::workflow_file)
        .ok_or(Setup {
            missing: "the workflow file (GITHUB_WORKFLOW_REF)",
        })?;
    // Pull requests: their head branch; other events: the branch they ran on.
    let branch = env
        .get("GITHUB_HEAD_REF")
        .map(str::to_owned)
        .or_else(|| {
            context
                .git_ref
                .as_deref()
                .and_then(|r| r.strip_prefix("refs/heads/"))
                .map(str::to_owned)
        })
        .ok_or(Setup {
            missing: "a branch (this run is not on one)",
        })?;
    let query = last_success::Query {
        url: api_url(runner.env()),
        repository,
        workflow: workflow.clone(),
        branch: branch.clone(),
        current_run: env.get("GITHUB_RUN_ID").and_then(|id| id.parse().ok()),
        token,
    };
    match last_success::find(&query)? {
        Some(run) => {
            runner.notice(&format!(
                "base from the last successful run of `{workflow}` on `{branch}`: run #{} at {} ({})",
                run.run_number, run.head_sha, run.html_url
            ));
            options.base = Some(run.head_sha);
            Ok(true)
        }
        None => {
            runner.notice(&format!(
                "`base: last-success` found no successful run of `{workflow}` on `{branch}` (the \
                 first run, or older runs expired): comparing as the {} event does without `base`",
                context.name
            ));
            options.base = None;
            Ok(false)
        }
    }
}
