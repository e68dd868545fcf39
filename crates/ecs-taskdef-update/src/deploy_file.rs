//! The deploy file: its model, read with serde and placed with a spanned tree, so that every
//! problem is a Diagnostic at the line and column of its field.
//!
//! ```yaml
//! cluster: prod
//! order: [processor, ingress, metrics]   # optional: one after the other
//! services:
//!   - name: processor
//!     desired-count: 2                   # optional
//!     force-new-deployment: false        # optional
//!     task-definition: proc:41           # optional base: ref or JSON file
//!     containers:
//!       - name: chat-proc
//!         image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/kdcube-chat-proc-bundled:2026.11.24
//!         env: {LOG_LEVEL: info}
//!         env-from-file: {AGENTIC_BUNDLES_JSON: bundles.json}
//!         unset-env: [OLD_FLAG]
//!         secrets: {DB_PASSWORD: arn:aws:secretsmanager:…}
//!         command: [python, -m, proc]
//! migration:                             # optional: gates every update (issue 22)
//!   service: processor                   # optional: default the first service
//!   container: chat-proc                 # optional when the service edits one container
//!   command: [python, -m, migrate]
//!   timeout: 20m                         # optional: default --migration-timeout
//! ```

use std::path::Path;
use std::time::Duration;

use runner_protocol::Diagnostic;
use serde::Deserialize;
use yaml_spans::{Node, Position, Span};

use crate::cli::Args;
use crate::migration::Migration;
use crate::plan_error::PlanError;
use crate::plan_values::{base, check_service_name, image_edit, names, read, task_edit};
use crate::service_plan::ServicePlan;
use crate::taskdef::{self, ContainerEdit, ImageEdit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DeployFile {
    cluster: Option<String>,
    #[serde(default)]
    order: Vec<String>,
    services: Vec<ServiceEntry>,
    migration: Option<MigrationEntry>,
}

/// `migration:` of the deploy file; the same as the `--migration-*` flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MigrationEntry {
    service: Option<String>,
    container: Option<String>,
    command: Vec<String>,
    /// A duration, read after serde so that a bad one is placed at its value.
    timeout: Option<String>,
}

/// The deploy file's text and its spanned tree: every problem found in it is placed at the
/// line and column of the field it is about.
#[derive(Debug)]
struct Source {
    /// The path as given.
    origin: String,
    text: String,
    /// `None` when the spanned parser refuses what serde accepted: problems then name the
    /// file without a line.
    tree: Option<Node>,
}

impl Source {
    /// `message` at the node of `field` (a dotted path, `services[0].containers[1].env`; a
    /// missing part gives the mapping that lacks it), with the field named.
    fn error(&self, field: &str, message: String) -> PlanError {
        let diagnostic = Diagnostic::new(message);
        let diagnostic = match &self.tree {
            Some(root) => yaml_spans::diagnostic::place(
                diagnostic,
                &self.origin,
                &self.text,
                root.locate(field).span,
                None,
            ),
            None => diagnostic.at(self.origin.clone(), None, None),
        };
        PlanError::DeployFile(Box::new(diagnostic.for_field(field)))
    }

    /// `message` at a 1-based line and column (serde's and the depth check's positions).
    fn error_at(&self, (line, column): (usize, usize), message: String) -> PlanError {
        let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let start = Position {
            line: number(line),
            column: number(column),
            offset: 0,
        };
        PlanError::DeployFile(Box::new(yaml_spans::diagnostic::place(
            Diagnostic::new(message),
            &self.origin,
            &self.text,
            Span { start, end: start },
            None,
        )))
    }
}

/// The migration of a deploy file, and the file that places its problems.
#[derive(Debug)]
pub(crate) struct FileMigration {
    entry: MigrationEntry,
    source: Source,
}

impl FileMigration {
    /// `migration.FIELD: message`, at the field's value (else the block).
    pub(crate) fn error(&self, field: &str, message: &str) -> PlanError {
        let field = format!("migration.{field}");
        self.source.error(&field, format!("{field}: {message}"))
    }

    /// The migration, checked against the plan's services: the named service (default the
    /// first), the container (default the one the service edits), the timeout (default
    /// `default_timeout`).
    pub(crate) fn resolve(
        &self,
        services: &[ServicePlan],
        default_timeout: Duration,
    ) -> Result<Migration, PlanError> {
        let entry = &self.entry;
        if entry.command.iter().all(|c| c.trim().is_empty()) {
            return Err(self.error("command", "is empty: give the command as a list of words"));
        }
        let timeout = match entry.timeout.as_deref() {
            Some(text) => humantime::parse_duration(text).map_err(|e| {
                self.error(
                    "timeout",
                    &format!(
                        "`{}` is not a duration ({e}): write e.g. `90s`, `20m`, `1h 30m`",
                        text.escape_debug()
                    ),
                )
            })?,
            None => default_timeout,
        };
        let service = match entry.service.as_deref() {
            Some(name) => services.iter().find(|s| s.service == name).ok_or_else(|| {
                self.error(
                    "service",
                    &format!(
                        "`{}` is not a service of this file (services: {})",
                        name.escape_debug(),
                        names(services)
                    ),
                )
            })?,
            None => services
                .first()
                .ok_or_else(|| self.error("service", "no service to run the migration on"))?,
        };
        let container = match (entry.container.as_deref(), service.edits.as_slice()) {
            (Some(container), _) if !container.is_empty() => container.to_owned(),
            (_, [only]) => only.name.clone(),
            _ => {
                return Err(self.error(
                    "container",
                    &format!(
                        "give the container whose command the migration overrides (service `{}` edits {} containers)",
                        service.service,
                        service.edits.len()
                    ),
                ));
            }
        };
        Ok(Migration {
            service: service.service.clone(),
            container,
            command: entry.command.clone(),
            timeout,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServiceEntry {
    name: String,
    cluster: Option<String>,
    task_definition: Option<String>,
    desired_count: Option<i32>,
    #[serde(default)]
    force_new_deployment: bool,
    task_role_arn: Option<String>,
    execution_role_arn: Option<String>,
    register: Option<bool>,
    #[serde(default)]
    containers: Vec<ContainerEntry>,
}

/// Maps (`env`, `secrets`, ...) are read as YAML mappings, so entries keep the order the user
/// wrote them in (new entries are appended in that order).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ContainerEntry {
    name: String,
    image: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
    #[serde(default)]
    env: serde_yaml_ng::Mapping,
    #[serde(default)]
    env_from_file: serde_yaml_ng::Mapping,
    #[serde(default)]
    unset_env: Vec<String>,
    #[serde(default)]
    secrets: serde_yaml_ng::Mapping,
    #[serde(default)]
    unset_secrets: Vec<String>,
    command: Option<Vec<String>>,
    env_files: Option<Vec<String>>,
    log_driver: Option<String>,
    #[serde(default)]
    log_options: serde_yaml_ng::Mapping,
    #[serde(default)]
    docker_labels: serde_yaml_ng::Mapping,
}

/// A problem with one entry of a mapping field: the entry's key (`None`: the field as a
/// whole), what is wrong (prefixed by the field's name when shown), and what would be valid.
type EntryError = (Option<String>, String, &'static str);

const NAME_VALUE: &str = "write `NAME: value` entries, the value a string (quote it when YAML would read a list or a mapping)";

/// The entries of a YAML mapping in the order written, values as strings: scalars as written
/// (`null` is empty), structures as JSON only where `structures` allows it (env values).
fn entries(
    mapping: serde_yaml_ng::Mapping,
    structures: bool,
) -> Result<Vec<(String, String)>, EntryError> {
    use serde_yaml_ng::Value as Yaml;
    mapping
        .into_iter()
        .map(|(key, value)| {
            let key = match key {
                Yaml::String(key) => key,
                Yaml::Number(n) => n.to_string(),
                Yaml::Bool(b) => b.to_string(),
                _ => return Err((None, "keys must be names".into(), NAME_VALUE)),
            };
            let value = match value {
                Yaml::String(text) => text,
                Yaml::Bool(b) => b.to_string(),
                Yaml::Number(n) => n.to_string(),
                Yaml::Null => String::new(),
                Yaml::Tagged(_) => {
                    return Err((
                        Some(key),
                        "YAML tags are not supported".into(),
                        "remove the `!tag` in front of the value",
                    ));
                }
                other if structures => match serde_json::to_string(&other) {
                    Ok(json) => json,
                    Err(error) => return Err((Some(key), error.to_string(), NAME_VALUE)),
                },
                _ => return Err((Some(key), "must be a string".into(), NAME_VALUE)),
            };
            Ok((key, value))
        })
        .collect()
}

/// The services and `order:` of a deploy file, and its migration block.
pub(crate) type FilePlan = ((Vec<ServicePlan>, Vec<String>), Option<FileMigration>);

/// Reads and checks a deploy file; every problem is placed at its line and column.
pub(crate) fn from_file(path: &Path, args: &Args) -> Result<FilePlan, PlanError> {
    let text = read(path, crate::limits::MAX_DEPLOY_FILE_BYTES)?;
    let mut source = Source {
        origin: path.display().to_string(),
        text,
        tree: None,
    };
    // Refused in linear time before libyaml sees it (deep nesting takes it minutes).
    crate::limits::check_yaml_depth(&source.text).map_err(|deep| {
        // No snippet: the line may be the whole (megabyte) file.
        let number = |n: usize| Some(u32::try_from(n).unwrap_or(u32::MAX));
        PlanError::DeployFile(Box::new(
            Diagnostic::new(format!(
                "YAML nested more than {} levels deep",
                crate::limits::MAX_YAML_DEPTH
            ))
            .at(
                source.origin.clone(),
                number(deep.line),
                number(deep.column),
            ),
        ))
    })?;
    let file: DeployFile = serde_yaml_ng::from_str(&source.text).map_err(|error| {
        let at = error.location().map_or((1, 1), |l| (l.line(), l.column()));
        // serde_yaml_ng appends " at line L column C"; the diagnostic carries the position.
        let message = error.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        source.error_at(at, message.to_owned())
    })?;
    // The same text as a spanned tree, for the problems found after serde.
    source.tree = yaml_spans::parse(&source.text).ok();
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut services = Vec::new();
    for (service_index, entry) in file.services.into_iter().enumerate() {
        let service_field = format!("services[{service_index}]");
        let in_service = |what: &str| format!("{service_field}.{what}");
        check_service_name(&entry.name)
            .map_err(|e| source.error(&in_service("name"), e.to_string()))?;
        if services
            .iter()
            .any(|s: &ServicePlan| s.service == entry.name)
        {
            return Err(source.error(
                &in_service("name"),
                format!("service `{}` is listed twice", entry.name),
            ));
        }
        let mut edits = Vec::new();
        for (container_index, container) in entry.containers.into_iter().enumerate() {
            // Messages name the service and container; the field is their position.
            let named = format!("services[{}].containers[{}]", entry.name, container.name);
            let field = in_service(&format!("containers[{container_index}]"));
            let image = match (container.image, container.tag, container.digest) {
                (Some(image), None, None) => Some(image_edit(&image)),
                (None, Some(tag), None) => Some(ImageEdit::Tag(tag)),
                (None, None, Some(digest)) => Some(ImageEdit::Digest(digest)),
                (None, None, None) => None,
                _ => {
                    return Err(
                        source.error(&field, format!("{named}: give one of image, tag, digest"))
                    );
                }
            };
            let mapping = |what: &str, mapping, structures| {
                entries(mapping, structures).map_err(|(key, message, hint)| {
                    let what = match key {
                        Some(key) => format!("{what}.{key}"),
                        None => what.to_owned(),
                    };
                    source
                        .error(
                            &format!("{field}.{what}"),
                            format!("{named}.{what}: {message}"),
                        )
                        .with_hint(hint)
                })
            };
            let mut env_set = mapping("env", container.env, true)?;
            for (name, file) in mapping("env-from-file", container.env_from_file, false)? {
                let text = read(&dir.join(file), crate::limits::MAX_INPUT_FILE_BYTES).map_err(
                    |error| {
                        source.error(
                            &format!("{field}.env-from-file.{name}"),
                            format!("{named}.env-from-file.{name}: {error}"),
                        )
                    },
                )?;
                env_set.push((name, text));
            }
            if let Some(driver) = &container.log_driver {
                taskdef::check_log_driver(driver).map_err(|e| {
                    source.error(
                        &format!("{field}.log-driver"),
                        format!("{named}.log-driver: {e}"),
                    )
                })?;
            }
            edits.push(ContainerEdit {
                name: container.name.clone(),
                image,
                env_set,
                env_unset: container.unset_env,
                secrets_set: mapping("secrets", container.secrets, false)?,
                secrets_unset: container.unset_secrets,
                command: container.command,
                env_files: container.env_files,
                log_driver: container.log_driver,
                log_options: mapping("log-options", container.log_options, false)?,
                docker_labels: mapping("docker-labels", container.docker_labels, false)?,
            });
        }
        let task_edit = task_edit(
            entry.task_role_arn.as_deref(),
            entry.execution_role_arn.as_deref(),
        )
        .map_err(|(role, e)| {
            source.error(&in_service(role), format!("services[{}]: {e}", entry.name))
        })?;
        let base = base(entry.task_definition.as_deref(), dir).map_err(|error| {
            source.error(
                &in_service("task-definition"),
                format!("services[{}].task-definition: {error}", entry.name),
            )
        })?;
        services.push(ServicePlan {
            cluster: entry
                .cluster
                .or_else(|| file.cluster.clone())
                .unwrap_or_else(|| args.cluster.clone()),
            service: entry.name,
            base,
            edits,
            task_edit,
            register: entry.register.unwrap_or(args.register),
            desired_count: entry.desired_count,
            force_new_deployment: entry.force_new_deployment || args.force_new_deployment,
        });
    }
    if services.is_empty() {
        return Err(source.error("services", "`services` is empty".into()));
    }
    let migration = file.migration.map(|entry| FileMigration { entry, source });
    Ok(((services, file.order), migration))
}
