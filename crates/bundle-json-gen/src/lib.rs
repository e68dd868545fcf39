//! Derive the runtime bundle descriptor AGENTIC_BUNDLES_JSON from release.yaml, and stage baked bundles.
//!
//! The descriptor is loaded and validated by [`release_model`] (the same checks as
//! release-descriptor-render: shared code). [`descriptor`] builds the runtime JSON and its
//! output forms; [`stage`] copies bundle folders. Only this file talks to the runner.

pub(crate) mod bundles_yaml;
mod cli;
pub(crate) mod descriptor;
pub(crate) mod dotenv;
pub(crate) mod json_text;
pub(crate) mod platform;
pub(crate) mod stage;

mod error;
pub use error::Error;

use std::path::{Path, PathBuf};

pub use cli::{Cli, Command, GenerateArgs, StageArgs};
use release_model::props::{self, ResolveError};
use release_model::{Document, FieldPath, Problem, check_file};
use runner_protocol::input::LineList;
use runner_protocol::output::OutputValue;
use runner_protocol::{Diagnostic, Runner, Verdict};

use crate::descriptor::Mode;
use crate::stage::{CheckoutMap, StageOptions};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &[
    "bundles-json",
    "bundles-yaml",
    "dotenv-line",
    "ecs-environment",
    "default-bundle-id",
    "bundle-ids",
    "staged",
    "manifest",
];

/// Options of `generate`.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Mode, bundles root, traceability, target platform.
    pub shaping: descriptor::Shaping,
    /// Resolve `env:`/`file:` props.
    pub resolve_props: bool,
    /// Variable name for the dotenv and ECS forms.
    pub env_name: String,
    /// Pretty JSON.
    pub pretty: bool,
    /// `bundles.json` path.
    pub output_file: Option<PathBuf>,
    /// `bundles.yaml` path.
    pub bundles_yaml_file: Option<PathBuf>,
    /// Compose env file to update.
    pub dotenv_file: Option<PathBuf>,
    /// ECS entry file.
    pub ecs_file: Option<PathBuf>,
}

/// Runs `bundle-json-gen` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    match cli.command {
        Command::Generate(args) => {
            let mut checks = args.descriptor.checks(None);
            // `generate` checks out nothing: the platform and frontend repositories are not
            // used, nor the bundles' in baked mode without traceability.
            checks.pins_unused = true;
            checks.item_repos_unused = args.mode == Mode::Baked && !args.traceability;
            let document = check_file(runner, &args.descriptor.descriptor, checks, None)?;
            let options = GenerateOptions {
                shaping: descriptor::Shaping {
                    mode: args.mode,
                    bundles_root: args.bundles_root,
                    traceability: args.traceability,
                    platform: args.platform_revision,
                },
                resolve_props: args.resolve_props,
                env_name: args.env_name,
                pretty: args.pretty,
                output_file: args.output_file,
                bundles_yaml_file: args.bundles_yaml_file,
                dotenv_file: args.dotenv_file,
                ecs_file: args.ecs_file,
            };
            generate(runner, &document, &options)
        }
        Command::Stage(args) => {
            let mut checks = args.descriptor.checks(None);
            // Staging copies bundles from the checkouts it is given: the platform and frontend
            // repositories are not used.
            checks.pins_unused = true;
            let document = check_file(runner, &args.descriptor.descriptor, checks, None)?;
            let mut checkouts = CheckoutMap::default();
            if let Some(json) = &args.checkouts {
                checkouts.add_json(json)?;
            }
            checkouts.add_pairs(&LineList::flatten(args.checkout))?;
            let options = StageOptions {
                dest: args.dest,
                replace: args.replace,
            };
            stage_command(runner, &document, &checkouts, &options, &args.manifest)
        }
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let write = || -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    };
    write().map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

/// Resolves every prop reference, masking each value before it is stored.
fn resolve_props(runner: &Runner, document: &Document) -> Result<release_model::Bundles, Error> {
    let mut bundles = document.release.bundles.clone();
    let mut errors: Vec<ResolveError> = Vec::new();
    let items_path = FieldPath::root().key("bundles").key("items");
    for (position, item) in bundles.items.iter_mut().enumerate() {
        let mut value = serde_json::Value::Object(std::mem::take(&mut item.props));
        props::resolve(
            &mut value,
            &items_path.index(position).key("props"),
            runner.env(),
            &mut |secret| {
                runner.secret(secret);
            },
            &mut errors,
        );
        if let serde_json::Value::Object(map) = value {
            item.props = map;
        }
    }
    if errors.is_empty() {
        return Ok(bundles);
    }
    let diagnostics = errors
        .iter()
        .map(|error| {
            let item = error.field().segments().get(2).and_then(|s| match s {
                release_model::problem::Segment::Index(i) => document.release.bundles.items.get(*i),
                release_model::problem::Segment::Key(_) => None,
            });
            let problem = Problem::error(error.field().clone(), error.to_string()).hint(format!(
                "bundle `{}`: set the variable or create the file before this step, or run without --resolve-props so the runtime resolves it",
                item.map_or("?", |i| i.id.as_str())
            ));
            document.source.diagnostic(&problem, &document.index)
        })
        .collect();
    Err(Error::Props(diagnostics))
}

/// `generate`: the runtime descriptor in every form asked for.
pub fn generate(
    runner: &mut Runner,
    document: &Document,
    options: &GenerateOptions,
) -> Result<Verdict, Error> {
    let bundles = if options.resolve_props {
        resolve_props(runner, document)?
    } else {
        document.release.bundles.clone()
    };
    let shaping = &options.shaping;
    descriptor::check(&bundles, shaping)?;
    let mut notes = Vec::new();
    for item in descriptor::json_skipped(&bundles) {
        notes.push(Diagnostic::new(format!(
            "bundle `{}` has only `config`: it is in bundles.yaml, not in {} (platform revisions that read the variable refuse an entry with neither `path` nor `repo`)",
            item.id, options.env_name
        )));
    }
    if shaping.mode == Mode::Baked && shaping.traceability && shaping.platform.is_none() {
        notes.push(Diagnostic::new(format!(
            "--traceability keeps `repo` on baked entries of {}: they load only on platform revisions before 2026-04-07 (from kdcube-ai-app ec362c0ab `path` is recomputed from `repo`), with BUNDLE_GIT_RESOLUTION_ENABLED=0 on the processor (otherwise `repo` is cloned and loaded instead of the image)",
            options.env_name
        )).with_hint("pass --platform-revision=YYYY-MM-DD to have this checked, or drop --traceability"));
    }
    if let Some(platform) = &shaping.platform {
        if platform.reads(platform::Revision::BundlesYamlOnly)
            && options.bundles_yaml_file.is_none()
        {
            notes.push(Diagnostic::new(format!(
                "platform revision {platform} does not read {} (since 2026-04-19, kdcube-ai-app ee8f10248): it reads bundles.yaml",
                options.env_name
            )).with_hint("pass --bundles-yaml-file and mount it at /config/bundles.yaml (BUNDLES_YAML_DESCRIPTOR_PATH)"));
        }
    }
    release_model::show_warnings(runner, &notes);
    let value = descriptor::runtime_descriptor(&bundles, shaping);
    let text = descriptor::json_text(&value, options.pretty);
    let dotenv = descriptor::dotenv_line(&options.env_name, &value);
    let ecs = descriptor::ecs_entry(&options.env_name, &value, options.pretty);
    let yaml = bundles_yaml::bundles_yaml(&bundles, shaping, &document.source.name);
    // Typed in `--output-format json`; GitHub gets the text as written (pretty or not).
    runner.set_output("bundles-json", OutputValue::json_text(text.clone()))?;
    runner.set_output("bundles-yaml", yaml.clone())?;
    runner.set_output("dotenv-line", dotenv.clone())?;
    runner.set_output("ecs-environment", OutputValue::json_text(ecs.clone()))?;
    runner.set_output(
        "default-bundle-id",
        bundles.default_bundle_id.clone().unwrap_or_default(),
    )?;
    let ids: Vec<&str> = bundles.items.iter().map(|i| i.id.as_str()).collect();
    runner.set_output("bundle-ids", serde_json::json!(ids))?;
    if let Some(path) = &options.output_file {
        write_file(path, &format!("{text}\n"))?;
    }
    if let Some(path) = &options.bundles_yaml_file {
        write_file(path, &yaml)?;
    }
    if let Some(path) = &options.dotenv_file {
        use release_model::limits::{BoundedReadError, MAX_DESCRIPTOR_BYTES, read_text};
        let existing = match read_text(path, MAX_DESCRIPTOR_BYTES) {
            Ok(text) => text,
            Err(BoundedReadError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                String::new()
            }
            Err(BoundedReadError::Io(source)) => {
                return Err(Error::Write {
                    path: path.clone(),
                    source,
                });
            }
            Err(other) => {
                return Err(Error::Write {
                    path: path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, other),
                });
            }
        };
        let updated =
            dotenv::set_variable(&existing, &options.env_name, &dotenv).map_err(|source| {
                Error::Dotenv {
                    path: path.clone(),
                    source,
                }
            })?;
        write_file(path, &updated)?;
    }
    if let Some(path) = &options.ecs_file {
        write_file(path, &format!("{ecs}\n"))?;
    }
    let mode = match shaping.mode {
        Mode::Baked => format!("baked, root `{}`", shaping.bundles_root),
        Mode::Git => "git".to_owned(),
    };
    let summary = runner.summary();
    summary.heading(3, &format!("{} ({mode})", options.env_name));
    summary.table(
        &["bundle", "name", "module", "repository", "ref", "default"],
        bundles.items.iter().map(|item| {
            vec![
                item.id.clone(),
                item.name.clone().unwrap_or_default(),
                item.module.clone(),
                item.repo.clone(),
                item.git_ref.clone(),
                if bundles.default_bundle_id.as_deref() == Some(item.id.as_str()) {
                    "yes".to_owned()
                } else {
                    String::new()
                },
            ]
        }),
    );
    Ok(Verdict::Success)
}

fn stage_command(
    runner: &mut Runner,
    document: &Document,
    checkouts: &CheckoutMap,
    options: &StageOptions,
    manifest_path: &Path,
) -> Result<Verdict, Error> {
    // Only git items have code in a checkout; `path` and config-only items are not staged.
    let items: Vec<release_model::BundleItem> = document
        .release
        .bundles
        .items
        .iter()
        .filter(|item| item.kind() == release_model::ItemKind::Git)
        .cloned()
        .collect();
    let manifest = stage::stage(&items, checkouts, options)?;
    let mut text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    text.push('\n');
    write_file(manifest_path, &text)?;
    let ids: Vec<&str> = manifest.bundles.iter().map(|b| b.id.as_str()).collect();
    runner.set_output("staged", serde_json::json!(ids))?;
    runner.set_output("manifest", manifest_path.display().to_string())?;
    let rows: Vec<Vec<String>> = manifest
        .bundles
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                format!("{}/{}", manifest.dest, b.folder),
                b.status.to_owned(),
                b.files.len().to_string(),
            ]
        })
        .collect();
    let summary = runner.summary();
    summary.heading(3, "Staged bundles");
    summary.table(&["bundle", "folder", "status", "files"], rows);
    Ok(Verdict::Success)
}
