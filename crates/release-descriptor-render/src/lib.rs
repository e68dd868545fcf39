//! Validate release.yaml and render what CI needs from it: versions, checkouts, images, lock file, templates.
//!
//! `run` maps the clap [`Cli`] into validated options per subcommand, then calls the logic:
//! [`release_model`] loads and validates (every error at once), [`checkouts`], [`images`],
//! [`templates`], [`lock`] and [`diff`] compute, and only this file talks to the runner.

pub(crate) mod checkouts;
mod cli;
pub(crate) mod diff;
pub(crate) mod github;
pub(crate) mod images;
pub(crate) mod lock;
pub(crate) mod resolve;
pub(crate) mod templates;

mod error;
pub use error::Error;

use std::path::{Path, PathBuf};

pub use cli::{Cli, Command, DiffArgs, LockArgs, RemoteArgs, RenderArgs, SchemeArg, ValidateArgs};
use release_model::version::version_from_tag;
use release_model::{CheckError, Checks, Document, RefLookup, Release, VersionScheme, check_file};
use runner_protocol::{Runner, Verdict};

use crate::images::ImageSet;
use crate::lock::CachedLookup;
use crate::resolve::Resolver;
use crate::templates::TemplateJob;

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[
    "valid",
    "release-name",
    "version",
    "tag",
    "checkouts",
    "images",
    "image-matrix",
    "rendered",
    "lock-file",
    "locked",
    "changed",
    "diff",
    "diff-markdown",
];

/// Options shared by the subcommands that validate.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The descriptor file.
    pub descriptor: PathBuf,
    /// What to check.
    pub checks: Checks,
    /// Ask remotes about refs.
    pub remote_refs: bool,
}

/// Options of `render`.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Validation.
    pub check: CheckOptions,
    /// Checkout directory.
    pub checkout_dir: String,
    /// Images.
    pub images: ImageSet,
    /// The customer commit.
    pub customer_sha: Option<String>,
    /// Templates.
    pub templates: Vec<TemplateJob>,
    /// Build time, RFC 3339.
    pub build_time: String,
}

fn check_options(args: &ValidateArgs) -> CheckOptions {
    let scheme = match args.version_scheme {
        SchemeArg::None => None,
        SchemeArg::Semver => Some(VersionScheme::Semver),
        SchemeArg::Pep440 => Some(VersionScheme::Pep440),
    };
    CheckOptions {
        descriptor: args.descriptor.descriptor.clone(),
        checks: args.descriptor.checks(scheme),
        remote_refs: args.remote_refs,
    }
}

fn resolver(runner: &Runner, remote: &RemoteArgs) -> Resolver {
    // Masked before anything could print it.
    let token = remote
        .token
        .as_ref()
        .map(|token| runner.secret(token.clone()));
    Resolver::new(token, &remote.github_api_url, &remote.git_base_url)
}

fn build_time(runner: &Runner, flag: Option<&str>) -> Result<String, Error> {
    if let Some(time) = flag {
        return Ok(time.to_owned());
    }
    let seconds = match runner.env().get("SOURCE_DATE_EPOCH") {
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| Error::SourceDateEpoch(text.to_owned()))?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    };
    Ok(templates::rfc3339_utc(seconds))
}

/// Runs `release-descriptor-render` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    match cli.command {
        Command::Validate(args) => {
            let resolver = resolver(runner, &args.remote);
            let options = check_options(&args);
            let document = checked(runner, &options, &resolver)?;
            release_outputs(runner, &document.release)?;
            summary(runner, &document, &[], &[]);
            Ok(Verdict::Success)
        }
        Command::Render(args) => {
            let resolver = resolver(runner, &args.validate.remote);
            let options = RenderOptions {
                check: check_options(&args.validate),
                checkout_dir: args.checkout_dir.clone(),
                images: ImageSet {
                    registry: args.registry.clone().unwrap_or_default(),
                    platform: runner_protocol::input::LineList::flatten(args.platform_images),
                    customer: runner_protocol::input::LineList::flatten(args.customer_images),
                },
                customer_sha: args
                    .customer_sha
                    .or_else(|| runner.env().get("GITHUB_SHA").map(str::to_owned)),
                templates: templates::parse_jobs(&runner_protocol::input::LineList::flatten(
                    args.template,
                ))?,
                build_time: build_time(runner, args.build_time.as_deref())?,
            };
            render(runner, &options, &resolver)
        }
        Command::Lock(args) => {
            let resolver = resolver(runner, &args.validate.remote);
            let mut options = check_options(&args.validate);
            options.remote_refs = true;
            lock_command(runner, &options, &resolver, &args.lock_file)
        }
        Command::Diff(args) => {
            let mut checks = args.descriptor.checks(None);
            // A diff compares refs; it checks nothing out: a value that is not a repository
            // (the platform's docs write the bare `kdcube-ai-app`) is a warning here.
            checks.pins_unused = true;
            checks.item_repos_unused = true;
            let options = CheckOptions {
                descriptor: args.descriptor.descriptor.clone(),
                checks,
                remote_refs: false,
            };
            diff_command(runner, &options, &args.base)
        }
    }
}

/// Loads and validates, recording `valid` either way.
fn checked(
    runner: &mut Runner,
    options: &CheckOptions,
    resolver: &Resolver,
) -> Result<Document, Error> {
    let cached = CachedLookup::new(resolver);
    let lookup: Option<&dyn RefLookup> = options.remote_refs.then_some(&cached as &dyn RefLookup);
    let result = check_file(runner, &options.descriptor, options.checks, lookup);
    runner.set_output("valid", result.is_ok())?;
    Ok(result?)
}

fn release_outputs(runner: &mut Runner, release: &Release) -> Result<(), Error> {
    if let Some(name) = &release.release_name {
        runner.set_output("release-name", name.clone())?;
    }
    if let Some(platform) = &release.platform {
        runner.set_output("tag", platform.git_ref.clone())?;
        runner.set_output("version", version_from_tag(&platform.git_ref))?;
    }
    Ok(())
}

/// A typed output value: an array or object in `--output-format json`, its compact JSON text
/// for GitHub.
fn json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The template context: every value of the release, nothing from the environment.
pub fn template_context(
    release: &Release,
    checkouts: &[checkouts::Checkout],
    images: &[images::Image],
    customer_sha: Option<&str>,
    build_time: &str,
) -> serde_json::Value {
    let mut context = serde_json::json!({
        "bundles": release.bundles,
        "checkouts": checkouts,
        "images": images::references(images),
        "image_list": images,
        "build_time": build_time,
    });
    if let Some(object) = context.as_object_mut() {
        if let Some(name) = &release.release_name {
            object.insert("release_name".into(), name.clone().into());
        }
        if let Some(platform) = &release.platform {
            object.insert("platform".into(), serde_json::json!(platform));
            object.insert("tag".into(), platform.git_ref.clone().into());
            object.insert("version".into(), version_from_tag(&platform.git_ref).into());
        }
        if let Some(frontend) = &release.frontend {
            object.insert("frontend".into(), serde_json::json!(frontend));
        }
        if let Some(sha) = customer_sha {
            object.insert("git_sha".into(), sha.into());
        }
    }
    context
}

/// `render`: outputs, templates and the summary.
pub fn render(
    runner: &mut Runner,
    options: &RenderOptions,
    resolver: &Resolver,
) -> Result<Verdict, Error> {
    let document = checked(runner, &options.check, resolver)?;
    let release = &document.release;
    release_outputs(runner, release)?;
    let checkouts = checkouts::checkouts(release, &options.checkout_dir);
    runner.set_output("checkouts", json(&checkouts))?;
    let has_images = !options.images.platform.is_empty() || !options.images.customer.is_empty();
    let platform_ref = release.platform.as_ref().map(|p| p.git_ref.as_str());
    let images = match (has_images, platform_ref) {
        (false, _) => Vec::new(),
        (true, Some(platform_ref)) => images::images(
            &options.images,
            platform_ref,
            options.customer_sha.as_deref(),
        )?,
        (true, None) if options.images.platform.is_empty() => {
            images::images(&options.images, "", options.customer_sha.as_deref())?
        }
        (true, None) => {
            return Err(Error::NotARelease {
                file: document.source.name.clone(),
                what: "--platform-images",
            });
        }
    };
    runner.set_output("images", images::references(&images))?;
    runner.set_output("image-matrix", images::matrix(&images))?;
    let context = template_context(
        release,
        &checkouts,
        &images,
        options.customer_sha.as_deref(),
        &options.build_time,
    );
    let mut rendered = Vec::new();
    for job in &options.templates {
        templates::render_job(job, &context)?;
        rendered.push(job.destination.display().to_string());
    }
    runner.set_output("rendered", json(&rendered))?;
    summary(runner, &document, &checkouts, &images);
    Ok(Verdict::Success)
}

fn lock_command(
    runner: &mut Runner,
    options: &CheckOptions,
    resolver: &Resolver,
    path: &Path,
) -> Result<Verdict, Error> {
    let cached = CachedLookup::new(resolver);
    let result = check_file(runner, &options.descriptor, options.checks, Some(&cached));
    runner.set_output("valid", result.is_ok())?;
    let document = result?;
    release_outputs(runner, &document.release)?;
    let locked = lock::lock(&document.release, resolver, &cached)?;
    let mut text = serde_json::to_string_pretty(&locked).unwrap_or_default();
    text.push('\n');
    let write = || -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, &text)
    };
    write().map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    runner.set_output("lock-file", path.display().to_string())?;
    runner.set_output("locked", json(&locked))?;
    let rows: Vec<Vec<String>> = locked
        .repositories
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.repository.clone(),
                r.git_ref.clone(),
                r.kind.as_str().to_owned(),
                r.commit.clone(),
            ]
        })
        .collect();
    let summary = runner.summary();
    summary.heading(3, "Release lock");
    summary.table(&["checkout", "repository", "ref", "kind", "commit"], rows);
    Ok(Verdict::Success)
}

fn diff_command(
    runner: &mut Runner,
    options: &CheckOptions,
    base: &Path,
) -> Result<Verdict, Error> {
    let new = checked(runner, options, &Resolver::new(None, "", ""))?;
    let base_document = release_model::read(base).map_err(CheckError::from)?;
    let base_errors: Vec<_> = base_document
        .problems
        .iter()
        .filter(|p| p.is_error())
        .cloned()
        .collect();
    if let Err((invalid, _)) = release_model::into_result(base_document.clone(), &base_errors) {
        return Err(CheckError::Invalid(invalid).into());
    }
    let result = diff::diff(&base_document.release, &new.release);
    let markdown = diff::markdown(&result);
    runner.set_output("changed", result.changed)?;
    runner.set_output("diff", json(&result))?;
    runner.set_output("diff-markdown", markdown.clone())?;
    runner.summary().push_markdown(&format!("{markdown}\n"));
    Ok(Verdict::Success)
}

fn pin_cell(pin: Option<&release_model::RepoPin>) -> String {
    pin.map_or_else(
        || "(none)".into(),
        |p| format!("{} @ {}", p.repo, p.git_ref),
    )
}

/// The step summary: the release, its bundles, checkouts and images.
fn summary(
    runner: &mut Runner,
    document: &Document,
    checkouts: &[checkouts::Checkout],
    images: &[images::Image],
) {
    let release = &document.release;
    let summary = runner.summary();
    summary.heading(
        3,
        &format!(
            "Release {}",
            release
                .release_name
                .as_deref()
                .unwrap_or(&document.source.name)
        ),
    );
    let mut rows = vec![vec!["descriptor".to_owned(), document.source.name.clone()]];
    if release.platform.is_some() || release.frontend.is_some() {
        rows.push(vec!["platform".into(), pin_cell(release.platform.as_ref())]);
        rows.push(vec!["frontend".into(), pin_cell(release.frontend.as_ref())]);
    }
    rows.push(vec![
        "default bundle".into(),
        release
            .bundles
            .default_bundle_id
            .clone()
            .unwrap_or_else(|| "(none)".into()),
    ]);
    summary.table(&["field", "value"], rows);
    if !release.bundles.items.is_empty() {
        summary.table(
            &["bundle", "repository", "ref", "subdir", "module"],
            release.bundles.items.iter().map(|item| {
                vec![
                    item.id.clone(),
                    item.repo.clone(),
                    item.git_ref.clone(),
                    item.subdir.clone().unwrap_or_default(),
                    item.module.clone(),
                ]
            }),
        );
    }
    if !checkouts.is_empty() {
        summary.table(
            &["checkout", "repository", "ref", "path"],
            checkouts.iter().map(|c| {
                vec![
                    c.name.clone(),
                    c.repository.clone(),
                    c.git_ref.clone(),
                    c.path.clone(),
                ]
            }),
        );
    }
    if !images.is_empty() {
        summary.table(
            &["image", "reference", "from"],
            images.iter().map(|i| {
                vec![
                    i.name.clone(),
                    i.image.clone(),
                    match i.source {
                        images::ImageSource::Platform => "platform".to_owned(),
                        images::ImageSource::Customer => "customer".to_owned(),
                    },
                ]
            }),
        );
    }
}
