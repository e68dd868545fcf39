//! The compose deploy file: which project, which env files change how, which services roll
//! in which order. Every problem is reported at once, each with file:line:column, the field's
//! dotted path and what would be valid.
//!
//! ```yaml
//! project_dir: /opt/agentic            # where docker compose runs (absolute)
//! compose_files: [docker-compose.yaml] # optional; compose's default lookup otherwise
//! env_files:
//!   - path: .env.proc
//!     set:
//!       AGENTIC_BUNDLES_JSON: { file: out/bundles.json }   # from bundle-json-gen
//!       OPENAI_API_KEY: { env: OPENAI_API_KEY }             # from the runner's environment
//!       LOG_LEVEL: info
//!     unset: [OLD_FLAG]
//! services:                            # in this order
//!   - name: chat-proc
//!     image: { ref: "ghcr.io/org/proc:${TAG}", var: PROC_IMAGE }   # var lands in `.env`
//!   - name: api
//!     replicas: [api-1, api-2, api-3]  # one at a time
//!     gate: gates/api.yaml             # health-gate file; {host} and {service} filled in
//! ```

use std::path::Path;
use std::time::Duration;

use runner_protocol::Diagnostic;
use yaml_spans::{Node, NodeKind, Span};

use super::fields::{Loader, join};

use crate::quote::{RemotePath, relative_path};

/// The env variable that carries the bundle descriptor; it belongs to the processor only.
pub const BUNDLES_VARIABLE: &str = "AGENTIC_BUNDLES_JSON";

/// A validated compose deploy file with every value resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Where `docker compose` runs.
    pub project_dir: RemotePath,
    /// `-p`.
    pub project_name: Option<String>,
    /// `-f`, in order.
    pub compose_files: Vec<String>,
    /// The docker CLI on the host.
    pub docker: String,
    /// Exported before every command (`DOCKER_HOST` for Podman, `PATH`).
    pub remote_env: Vec<(String, String)>,
    /// `--wait-timeout` of every `up`.
    pub wait_timeout: Duration,
    /// Hard limit around every `up` (`timeout(1)`): compose's `--wait` can hang.
    pub up_timeout: Duration,
    /// Managed env files, image variables included.
    pub env_files: Vec<EnvFile>,
    /// Services in rollout order.
    pub services: Vec<Service>,
}

/// One managed env file and its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    /// Relative to the project dir (or absolute).
    pub path: String,
    /// `KEY -> value`, in file order.
    pub set: Vec<(String, String)>,
    /// Keys to remove.
    pub unset: Vec<String>,
    /// Keys of `set` whose value is written in the deploy file itself (`LOG_LEVEL: info`): it
    /// is in the repository, so it is not masked. Values from `{ env: }` and `{ file: }` are
    /// masked before anything prints (masking a literal such as `info` or `api-2` would blank
    /// that word out of every log line, service names included).
    pub literal: Vec<String>,
}

/// A service (or a group of replicas) in rollout order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The compose service, or the replica group's label.
    pub name: String,
    /// Compose services rolled one at a time; empty for a singleton.
    pub replicas: Vec<String>,
    /// The image pulled before anything is touched.
    pub image: Option<Image>,
    /// health-gate file text, `{host}` and `{service}` still in it.
    pub gate: Option<String>,
    /// Run on the host before a replica is recreated (`{service}` filled in).
    pub drain: Option<String>,
    /// Run on the host after a replica passed its gate.
    pub undrain: Option<String>,
}

impl Service {
    /// The compose services this entry rolls, in order.
    pub fn units(&self) -> Vec<&str> {
        if self.replicas.is_empty() {
            vec![self.name.as_str()]
        } else {
            self.replicas.iter().map(String::as_str).collect()
        }
    }
}

/// An image reference and the variable the compose file reads it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `registry/name:tag` or `...@sha256:...`, `${VAR}` expanded.
    pub reference: String,
    /// The variable (`image: ${API_IMAGE}` in the compose file).
    pub variable: String,
    /// The env file holding the variable (the project `.env` by default).
    pub env_file: String,
}

/// The deploy file is invalid; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(yaml_spans::diagnostic::one_line).collect::<Vec<_>>().join("\n"))]
pub struct SpecError {
    /// Each problem at its `file:line:col`, with its hint.
    pub problems: Vec<Diagnostic>,
}

impl From<SpecError> for crate::error::Error {
    fn from(error: SpecError) -> Self {
        crate::error::Error::Invalid(error.problems)
    }
}

const TOP: &[&str] = &[
    "project_dir",
    "project_name",
    "compose_files",
    "docker",
    "remote_env",
    "wait_timeout",
    "up_timeout",
    "env_files",
    "services",
];
const ENV_FILE: &[&str] = &["path", "set", "unset"];
const SERVICE: &[&str] = &["name", "replicas", "image", "gate", "drain", "undrain"];
const IMAGE: &[&str] = &["ref", "var", "env_file"];

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn valid_service(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Loads `text` (read from `path`); `lookup` reads the runner's environment.
pub fn load(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec, SpecError> {
    let file = path.display().to_string();
    let root = yaml_spans::parse(text).map_err(|e| SpecError {
        problems: vec![e.diagnostic(&file, text)],
    })?;
    let mut loader = Loader {
        file,
        text,
        base: path.parent().map(Path::to_owned).unwrap_or_default(),
        lookup,
        problems: Vec::new(),
    };
    let spec = build(&mut loader, &root);
    match spec {
        Some(spec) if loader.problems.is_empty() => Ok(spec),
        _ => Err(SpecError {
            problems: loader.problems,
        }),
    }
}

#[derive(Default)]
struct Top<'n> {
    project_dir: Option<(String, Span)>,
    env_files: Option<&'n Node>,
    services: Option<&'n Node>,
}

fn build(loader: &mut Loader<'_>, root: &Node) -> Option<Spec> {
    let mut top = Top::default();
    let mut spec = Spec {
        project_dir: RemotePath::parse("/x").ok()?,
        project_name: None,
        compose_files: Vec::new(),
        docker: "docker".into(),
        remote_env: Vec::new(),
        wait_timeout: Duration::from_secs(120),
        up_timeout: Duration::ZERO,
        env_files: Vec::new(),
        services: Vec::new(),
    };
    let mut up_timeout = None;
    for (key, node, _) in loader.mapping(root, "", TOP) {
        match key.as_str() {
            "project_dir" => {
                top.project_dir = loader.string(node, &key).map(|s| (s, node.span));
            }
            "project_name" => {
                if let Some(name) = loader.string(node, &key) {
                    let ok = name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                        && name.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
                        });
                    if ok {
                        spec.project_name = Some(name);
                    } else {
                        loader.problem(
                            node.span,
                            &key,
                            &format!("`{name}` is not a compose project name"),
                            "lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                        );
                    }
                }
            }
            "compose_files" => {
                for (file, span) in loader.strings(node, &key) {
                    if file.is_empty() || file.chars().any(char::is_control) {
                        loader.problem(span, &key, "holds an empty or unprintable path", "");
                    } else {
                        spec.compose_files.push(file);
                    }
                }
            }
            "docker" => {
                if let Some(docker) = loader.string(node, &key) {
                    if !docker.is_empty()
                        && docker.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')
                        })
                    {
                        spec.docker = docker;
                    } else {
                        loader.problem(
                            node.span,
                            &key,
                            &format!("`{docker}` is not a program path"),
                            "e.g. `docker` or `/usr/bin/docker`; set DOCKER_HOST under `remote_env` for Podman",
                        );
                    }
                }
            }
            "remote_env" => {
                for (name, value, span) in loader.mapping(node, &key, &[]) {
                    let field = join(&key, &name);
                    if !valid_key(&name) || name.contains('.') {
                        loader.problem(span, &field, "is not an environment variable name", "");
                        continue;
                    }
                    if let Some(value) = loader.string(value, &field) {
                        spec.remote_env.push((name, value));
                    }
                }
            }
            "wait_timeout" => {
                if let Some(d) = loader.duration(node, &key) {
                    spec.wait_timeout = d;
                }
            }
            "up_timeout" => up_timeout = loader.duration(node, &key).map(|d| (d, node.span)),
            "env_files" => top.env_files = Some(node),
            "services" => top.services = Some(node),
            _ => {}
        }
    }
    match &top.project_dir {
        Some((text, span)) => match RemotePath::parse(text) {
            Ok(dir) => spec.project_dir = dir,
            Err(e) => loader.problem(*span, "project_dir", &e, "e.g. /opt/agentic-backend"),
        },
        None => loader.problem(
            root.span,
            "project_dir",
            "is missing",
            "the directory on the host where `docker compose` runs, e.g. /opt/agentic-backend",
        ),
    }
    spec.up_timeout = spec.wait_timeout + Duration::from_secs(60);
    if let Some((d, span)) = up_timeout {
        if d <= spec.wait_timeout {
            loader.problem(
                span,
                "up_timeout",
                "must be longer than `wait_timeout`",
                "it is the hard stop around `up --wait`; compose gives up at `wait_timeout` first",
            );
        }
        spec.up_timeout = d;
    }
    let mut bundles_at: Vec<(String, Span)> = Vec::new();
    if let Some(node) = top.env_files {
        let NodeKind::Sequence(items) = &node.kind else {
            loader.problem(node.span, "env_files", "must be a list", "");
            return None;
        };
        for (index, item) in items.iter().enumerate() {
            let field = format!("env_files[{index}]");
            let mut env = EnvFile {
                path: String::new(),
                set: Vec::new(),
                unset: Vec::new(),
                literal: Vec::new(),
            };
            for (key, value, _) in loader.mapping(item, &field, ENV_FILE) {
                let path = join(&field, &key);
                match key.as_str() {
                    "path" => {
                        if let Some(p) = loader.string(value, &path) {
                            match env_path(&p) {
                                Ok(p) => env.path = p,
                                Err(e) => loader.problem(value.span, &path, &e, ""),
                            }
                        }
                    }
                    "set" => {
                        for (name, value, key_span) in loader.mapping(value, &path, &[]) {
                            let field = join(&path, &name);
                            if !valid_key(&name) {
                                loader.problem(
                                    key_span,
                                    &field,
                                    "is not a variable name compose reads",
                                    "letters, digits, `_` and `.`, not starting with a digit",
                                );
                                continue;
                            }
                            let Some(resolved) = loader.value(value, &field) else {
                                continue;
                            };
                            if name == BUNDLES_VARIABLE {
                                if let Err(e) = serde_json::from_str::<serde_json::Value>(&resolved)
                                {
                                    loader.problem(
                                        value.span,
                                        &field,
                                        &format!("is not JSON: {e}"),
                                        "give the file bundle-json-gen wrote (`--output-file`)",
                                    );
                                }
                                bundles_at.push((field.clone(), key_span));
                            }
                            if matches!(value.kind, NodeKind::Scalar(..)) {
                                env.literal.push(name.clone());
                            }
                            env.set.push((name, resolved));
                        }
                    }
                    "unset" => {
                        for (name, span) in loader.strings(value, &path) {
                            if valid_key(&name) {
                                env.unset.push(name);
                            } else {
                                loader.problem(
                                    span,
                                    &path,
                                    &format!("`{name}` is not a variable name"),
                                    "",
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
            if env.path.is_empty() {
                loader.problem(item.span, &field, "has no `path`", "e.g. `path: .env.proc`");
            } else if spec.env_files.iter().any(|e| e.path == env.path) {
                loader.problem(
                    item.span,
                    &field,
                    &format!("lists `{}` a second time", env.path),
                    "put every change of one file under one entry",
                );
            } else {
                spec.env_files.push(env);
            }
        }
    }
    if bundles_at.len() > 1 {
        let first = bundles_at[0].0.clone();
        for (field, span) in bundles_at.iter().skip(1) {
            loader.problem(
                *span,
                field,
                &format!("sets {BUNDLES_VARIABLE} again (first at `{first}`)"),
                "the bundle descriptor belongs in the processor's env file only (e.g. .env.proc)",
            );
        }
    }
    let Some(services) = top.services else {
        loader.problem(
            root.span,
            "services",
            "is missing",
            "list the services in rollout order, e.g. `- name: chat-ingress`",
        );
        return None;
    };
    let NodeKind::Sequence(items) = &services.kind else {
        loader.problem(services.span, "services", "must be a list", "");
        return None;
    };
    if items.is_empty() {
        loader.problem(
            services.span,
            "services",
            "is empty",
            "list at least one service",
        );
    }
    let mut seen: Vec<String> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("services[{index}]");
        if let Some(service) = service(loader, item, &field, &mut seen) {
            spec.services.push(service);
        }
    }
    // Image variables go to their env file (the project `.env` by default).
    let images: Vec<Image> = spec
        .services
        .iter()
        .filter_map(|s| s.image.clone())
        .collect();
    for image in images {
        let index = match spec.env_files.iter().position(|e| e.path == image.env_file) {
            Some(index) => index,
            None => {
                spec.env_files.push(EnvFile {
                    path: image.env_file.clone(),
                    set: Vec::new(),
                    unset: Vec::new(),
                    literal: Vec::new(),
                });
                spec.env_files.len() - 1
            }
        };
        let file = &mut spec.env_files[index];
        match file.set.iter().find(|(k, _)| *k == image.variable) {
            Some((_, value)) if *value == image.reference => {}
            Some(_) => loader.problem(
                services.span,
                "services",
                &format!(
                    "set `{}` in `{}` to two different values",
                    image.variable, image.env_file
                ),
                "replicas of one image share one variable; give other images their own",
            ),
            None => file
                .set
                .push((image.variable.clone(), image.reference.clone())),
        }
    }
    Some(spec)
}

fn env_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        RemotePath::parse(text).map(|p| p.as_str().to_owned())
    } else {
        relative_path(text)
    }
}

fn service(
    loader: &mut Loader<'_>,
    item: &Node,
    field: &str,
    seen: &mut Vec<String>,
) -> Option<Service> {
    let mut service = Service {
        name: String::new(),
        replicas: Vec::new(),
        image: None,
        gate: None,
        drain: None,
        undrain: None,
    };
    let mut name_span = item.span;
    let mut check_name = |loader: &mut Loader<'_>, name: &str, span: Span, path: &str| {
        if !valid_service(name) {
            loader.problem(
                span,
                path,
                &format!("`{name}` is not a compose service name"),
                "letters, digits, `.`, `_` and `-`",
            );
            false
        } else if seen.iter().any(|s| s == name) {
            loader.problem(span, path, &format!("names `{name}` twice"), "");
            false
        } else {
            seen.push(name.to_owned());
            true
        }
    };
    for (key, value, _) in loader.mapping(item, field, SERVICE) {
        let path = join(field, &key);
        match key.as_str() {
            "name" => {
                if let Some(name) = loader.string(value, &path) {
                    name_span = value.span;
                    service.name = name;
                }
            }
            "replicas" => {
                let list = loader.strings(value, &path);
                if list.is_empty() {
                    loader.problem(
                        value.span,
                        &path,
                        "is empty",
                        "e.g. `[api-1, api-2, api-3]`",
                    );
                }
                for (replica, span) in list {
                    if check_name(loader, &replica, span, &path) {
                        service.replicas.push(replica);
                    }
                }
            }
            "image" => {
                let mut reference = None;
                let mut variable = None;
                let mut env_file = ".env".to_owned();
                for (k, v, _) in loader.mapping(value, &path, IMAGE) {
                    let p = join(&path, &k);
                    match k.as_str() {
                        "ref" => {
                            if let Some(text) = loader.string(v, &p) {
                                reference = loader.expand(v, &p, &text);
                                if let Some(r) = &reference {
                                    if r.is_empty()
                                        || r.chars().any(|c| c.is_whitespace() || c.is_control())
                                    {
                                        loader.problem(
                                            v.span,
                                            &p,
                                            &format!("`{r}` is not an image reference"),
                                            "e.g. ghcr.io/org/api:v1.2.3",
                                        );
                                        reference = None;
                                    }
                                }
                            }
                        }
                        "var" => {
                            if let Some(text) = loader.string(v, &p) {
                                if valid_key(&text) {
                                    variable = Some(text);
                                } else {
                                    loader.problem(
                                        v.span,
                                        &p,
                                        &format!("`{text}` is not a variable name"),
                                        "the compose file reads it as `image: ${API_IMAGE}`",
                                    );
                                }
                            }
                        }
                        "env_file" => {
                            if let Some(text) = loader.string(v, &p) {
                                match env_path(&text) {
                                    Ok(e) => env_file = e,
                                    Err(e) => loader.problem(v.span, &p, &e, ""),
                                }
                            }
                        }
                        _ => {}
                    }
                }
                match (reference, variable) {
                    (Some(reference), Some(variable)) => {
                        service.image = Some(Image {
                            reference,
                            variable,
                            env_file,
                        });
                    }
                    (_, None) => loader.problem(
                        value.span,
                        &path,
                        "needs `ref` and `var`",
                        "e.g. `{ ref: \"ghcr.io/org/api:${TAG}\", var: API_IMAGE }` with `image: ${API_IMAGE}` in the compose file",
                    ),
                    _ => {}
                }
            }
            "gate" => {
                if let Some(text) = loader.string(value, &path) {
                    let local = loader.local_path(&text);
                    match std::fs::read_to_string(&local) {
                        Ok(gate) => {
                            let probe = gate.replace("{service}", "service");
                            match crate::gate::resolve_gate(&probe, "127.0.0.1") {
                                Ok(_) => service.gate = Some(gate),
                                // The gate file's own problems, each at its line and column in
                                // that file (GitHub annotates the gate file's line).
                                Err(crate::gate::GateError::File(e)) => loader
                                    .problems
                                    .extend(e.diagnostics(&local.display().to_string(), &gate)),
                                Err(e) => loader.problem(
                                    value.span,
                                    &path,
                                    &format!("{}: {e}", local.display()),
                                    "",
                                ),
                            }
                        }
                        Err(e) => loader.problem(
                            value.span,
                            &path,
                            &format!("cannot read {}: {e}", local.display()),
                            "paths are relative to the deploy file's directory",
                        ),
                    }
                }
            }
            "drain" => service.drain = loader.string(value, &path),
            "undrain" => service.undrain = loader.string(value, &path),
            _ => {}
        }
    }
    if service.name.is_empty() {
        loader.problem(
            item.span,
            field,
            "has no `name`",
            "e.g. `name: chat-ingress`",
        );
        return None;
    }
    if service.replicas.is_empty() {
        let name = service.name.clone();
        if !check_name(loader, &name, name_span, &join(field, "name")) {
            return None;
        }
    }
    Some(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("v2".into()),
            "OPENAI_API_KEY" => Some("sk-test".into()),
            _ => None,
        }
    }

    #[test]
    fn loads_a_seed_style_file() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("bundles.json"), "{\"bundles\":{}}\n").expect("write");
        let path = dir.path().join("compose-deploy.yaml");
        let text = "project_dir: /opt/app\nenv_files:\n  - path: .env.proc\n    set:\n      AGENTIC_BUNDLES_JSON: { file: bundles.json }\n      KEY: { env: OPENAI_API_KEY }\n      N: 3\nservices:\n  - name: chat-proc\n    image: { ref: \"ghcr.io/o/proc:${TAG}\", var: PROC_IMAGE }\n  - name: api\n    replicas: [api-1, api-2]\n    image: { ref: \"ghcr.io/o/api:${TAG}\", var: API_IMAGE }\n";
        let spec = load(&path, text, &env).expect("valid");
        assert_eq!(spec.env_files.len(), 2);
        assert_eq!(
            spec.env_files[0].set,
            [
                ("AGENTIC_BUNDLES_JSON".into(), "{\"bundles\":{}}".into()),
                ("KEY".into(), "sk-test".into()),
                ("N".into(), "3".into())
            ]
        );
        // Only the value written in the file itself is public; `env:` and `file:` get masked.
        assert_eq!(spec.env_files[0].literal, ["N"]);
        assert_eq!(spec.env_files[1].path, ".env");
        assert_eq!(
            spec.env_files[1].set,
            [
                ("PROC_IMAGE".into(), "ghcr.io/o/proc:v2".into()),
                ("API_IMAGE".into(), "ghcr.io/o/api:v2".into())
            ]
        );
        assert_eq!(spec.services[1].units(), ["api-1", "api-2"]);
        assert_eq!(spec.up_timeout, Duration::from_secs(180));
    }

    #[test]
    fn reports_every_problem_with_line_column_and_field() {
        let text = "project_dir: opt/app\nwait_timout: 5s\nenv_files:\n  - path: .env.ingress\n    set:\n      AGENTIC_BUNDLES_JSON: '{}'\n      SECRET: { env: MISSING }\n  - path: .env.proc\n    set:\n      AGENTIC_BUNDLES_JSON: 'not json'\nservices:\n  - name: api\n    replicas: [api-1, api-1]\n    image: { ref: \"x:${NOPE}\" }\n";
        let error = load(Path::new("deploy.yaml"), text, &env).expect_err("invalid");
        insta::assert_snapshot!(error.to_string(), @r#"
        deploy.yaml:2:1: `wait_timout` is not a known field
          hint: did you mean `wait_timeout`? valid: project_dir, project_name, compose_files, docker, remote_env, wait_timeout, up_timeout, env_files, services
        deploy.yaml:1:14: `project_dir` remote path `opt/app` must be absolute
          hint: e.g. /opt/agentic-backend
        deploy.yaml:7:22: `env_files[0].set.SECRET.env` names `MISSING`, which is not set in the environment
          hint: set it in the step's `env:` (for a secret: `env: { NAME: ${{ secrets.NAME }} }`)
        deploy.yaml:10:29: `env_files[1].set.AGENTIC_BUNDLES_JSON` is not JSON: expected ident at line 1 column 2
          hint: give the file bundle-json-gen wrote (`--output-file`)
        deploy.yaml:10:7: `env_files[1].set.AGENTIC_BUNDLES_JSON` sets AGENTIC_BUNDLES_JSON again (first at `env_files[0].set.AGENTIC_BUNDLES_JSON`)
          hint: the bundle descriptor belongs in the processor's env file only (e.g. .env.proc)
        deploy.yaml:13:23: `services[0].replicas` names `api-1` twice
        deploy.yaml:14:19: `services[0].image.ref` uses `${NOPE}`, which is not set in the environment
          hint: set it in the step's `env:`
        deploy.yaml:14:12: `services[0].image` needs `ref` and `var`
          hint: e.g. `{ ref: "ghcr.io/org/api:${TAG}", var: API_IMAGE }` with `image: ${API_IMAGE}` in the compose file
        "#);
    }
}
