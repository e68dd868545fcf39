//! Task definitions as JSON: load (raw describe output or its wrapper), strip describe-only
//! fields, check against the complete RegisterTaskDefinition model, and apply edits.
//!
//! Everything is done on `serde_json::Value`: the Rust SDK types have no serde support, and a
//! hand-written describe -> register mapping drops every field it forgets, silently. That is the
//! bug class (`enableFaultInjection`, `environmentFiles`) that broke the aws-actions, so here an
//! unknown field is an error that names it.

use serde_json::{Map, Value};

/// Fields DescribeTaskDefinition returns that RegisterTaskDefinition rejects.
pub const DESCRIBE_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// Every top-level member of the RegisterTaskDefinition request.
pub const REGISTER_FIELDS: &[&str] = &[
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// Every member of `ContainerDefinition`.
pub const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "repositoryCredentials",
    "cpu",
    "memory",
    "memoryReservation",
    "links",
    "portMappings",
    "essential",
    "restartPolicy",
    "entryPoint",
    "command",
    "environment",
    "environmentFiles",
    "mountPoints",
    "volumesFrom",
    "linuxParameters",
    "secrets",
    "dependsOn",
    "startTimeout",
    "stopTimeout",
    "versionConsistency",
    "hostname",
    "user",
    "workingDirectory",
    "disableNetworking",
    "privileged",
    "readonlyRootFilesystem",
    "dnsServers",
    "dnsSearchDomains",
    "extraHosts",
    "dockerSecurityOptions",
    "interactive",
    "pseudoTerminal",
    "dockerLabels",
    "ulimits",
    "logConfiguration",
    "healthCheck",
    "systemControls",
    "resourceRequirements",
    "firelensConfiguration",
    "credentialSpecs",
];

/// Errors about a task definition document or an edit of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskDefError {
    /// Not a JSON object.
    #[error("the task definition is not a JSON object")]
    NotAnObject,
    /// A field the register API does not have.
    #[error(
        "unknown task definition field `{field}`: RegisterTaskDefinition has no such member, and it is never dropped silently"
    )]
    UnknownField {
        /// Dotted path of the field.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("task definition field `{field}` must be {expected}")]
    WrongType {
        /// Dotted path.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A required field is missing.
    #[error("task definition field `{field}` is required")]
    Missing {
        /// Dotted path.
        field: String,
    },
    /// An edit names a container the task definition does not have.
    #[error("container `{name}` is not in task definition family `{family}` (containers: {known})")]
    NoSuchContainer {
        /// The requested name.
        name: String,
        /// The family.
        family: String,
        /// The existing names, comma-separated.
        known: String,
    },
    /// A new image is not a valid image reference (checked before anything is registered).
    #[error(
        "container `{container}`: image `{image}` is not a valid image reference: {reason}; \
         expected [registry[:port]/]repository[:tag][@algorithm:hex], the repository in lowercase"
    )]
    InvalidImage {
        /// The container.
        container: String,
        /// The rejected reference.
        image: String,
        /// Which part of the grammar it breaks.
        reason: &'static str,
    },
}

/// A task definition ready for RegisterTaskDefinition: describe-only fields stripped, every
/// field known.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterInput(pub Map<String, Value>);

impl RegisterInput {
    /// The family.
    pub fn family(&self) -> &str {
        self.0.get("family").and_then(Value::as_str).unwrap_or("")
    }

    /// The container definitions.
    pub fn containers(&self) -> &[Value] {
        self.0
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The request body as JSON.
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Turns describe output (`{"taskDefinition": …, "tags": […]}`, or the bare task definition)
/// into a register input: tags carried over, the 8 describe-only fields stripped, every other
/// field checked against the register model.
pub fn from_describe(document: &Value) -> Result<RegisterInput, TaskDefError> {
    let object = document.as_object().ok_or(TaskDefError::NotAnObject)?;
    let mut definition = match object.get("taskDefinition") {
        Some(Value::Object(inner)) => {
            let mut inner = inner.clone();
            if let Some(tags) = object.get("tags").filter(|t| !is_empty_array(t)) {
                inner.insert("tags".into(), tags.clone());
            }
            inner
        }
        Some(_) => {
            return Err(TaskDefError::WrongType {
                field: "taskDefinition".into(),
                expected: "an object",
            });
        }
        None => object.clone(),
    };
    for field in DESCRIBE_ONLY_FIELDS {
        // `shift_remove`: `remove` swaps the last key into the gap, and the output keeps the
        // input's key order.
        definition.shift_remove(*field);
    }
    // Register rejects an empty tag list; an absent one means the same.
    if definition.get("tags").is_some_and(is_empty_array) {
        definition.shift_remove("tags");
    }
    validate(definition)
}

fn is_empty_array(value: &Value) -> bool {
    value.as_array().is_some_and(Vec::is_empty)
}

/// Checks a register input against the model: known top-level and container fields, the
/// required ones present, containers named.
pub fn validate(definition: Map<String, Value>) -> Result<RegisterInput, TaskDefError> {
    for key in definition.keys() {
        if !REGISTER_FIELDS.contains(&key.as_str()) {
            return Err(TaskDefError::UnknownField { field: key.clone() });
        }
    }
    match definition.get("family") {
        Some(Value::String(family)) if !family.is_empty() => {}
        Some(_) => {
            return Err(TaskDefError::WrongType {
                field: "family".into(),
                expected: "a non-empty string",
            });
        }
        None => {
            return Err(TaskDefError::Missing {
                field: "family".into(),
            });
        }
    }
    let containers = match definition.get("containerDefinitions") {
        Some(Value::Array(containers)) => containers,
        Some(_) => {
            return Err(TaskDefError::WrongType {
                field: "containerDefinitions".into(),
                expected: "an array",
            });
        }
        None => {
            return Err(TaskDefError::Missing {
                field: "containerDefinitions".into(),
            });
        }
    };
    for (index, container) in containers.iter().enumerate() {
        let container = container.as_object().ok_or(TaskDefError::WrongType {
            field: format!("containerDefinitions[{index}]"),
            expected: "an object",
        })?;
        let name = container.get("name").and_then(Value::as_str);
        let path = match name {
            Some(name) => format!("containerDefinitions[{name}]"),
            None => format!("containerDefinitions[{index}]"),
        };
        for key in container.keys() {
            if !CONTAINER_FIELDS.contains(&key.as_str()) {
                return Err(TaskDefError::UnknownField {
                    field: format!("{path}.{key}"),
                });
            }
        }
        if name.is_none() {
            return Err(TaskDefError::Missing {
                field: format!("{path}.name"),
            });
        }
        for list in ["environment", "secrets"] {
            if let Some(value) = container.get(list) {
                if !value.is_array() {
                    return Err(TaskDefError::WrongType {
                        field: format!("{path}.{list}"),
                        expected: "an array",
                    });
                }
            }
        }
    }
    Ok(RegisterInput(definition))
}

/// How a container's image changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageEdit {
    /// A full reference.
    Full(String),
    /// A new tag for the current repository.
    Tag(String),
    /// A digest (`sha256:…`) for the current repository.
    Digest(String),
}

/// The edits for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerEdit {
    /// Container name.
    pub name: String,
    /// New image.
    pub image: Option<ImageEdit>,
    /// Environment variables to set (added or changed, in order).
    pub env_set: Vec<(String, String)>,
    /// Environment variables to remove.
    pub env_unset: Vec<String>,
    /// Secrets to set: name -> `valueFrom`.
    pub secrets_set: Vec<(String, String)>,
    /// Secrets to remove.
    pub secrets_unset: Vec<String>,
    /// New command.
    pub command: Option<Vec<String>>,
    /// S3 environment files (ARNs): replace `environmentFiles` as a whole, as the aws-actions
    /// render step does.
    pub env_files: Option<Vec<String>>,
    /// `logConfiguration.logDriver`.
    pub log_driver: Option<String>,
    /// `logConfiguration.options` to set (merged by key, in order).
    pub log_options: Vec<(String, String)>,
    /// `dockerLabels` to set (merged by key, in order).
    pub docker_labels: Vec<(String, String)>,
}

/// Edits of the task definition itself (not of a container).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskEdit {
    /// `taskRoleArn`.
    pub task_role_arn: Option<String>,
    /// `executionRoleArn`.
    pub execution_role_arn: Option<String>,
}

/// The log drivers ECS accepts in `logConfiguration.logDriver` (API_LogConfiguration).
pub const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "syslog",
    "journald",
    "logentries",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "awsfirelens",
];

/// Checks a log driver name against [`LOG_DRIVERS`].
pub fn check_log_driver(driver: &str) -> Result<(), String> {
    if LOG_DRIVERS.contains(&driver) {
        Ok(())
    } else {
        Err(format!(
            "log driver `{}` is not valid; valid drivers: {}",
            driver.escape_debug(),
            LOG_DRIVERS.join(", ")
        ))
    }
}

/// Checks an IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<name>`, the partitions
/// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-iso-e`, `aws-iso-f` (the same
/// rule as amazon-ecs-render-task-definition v1.9.0).
pub fn check_role_arn(field: &str, arn: &str) -> Result<(), String> {
    let valid = (|| {
        let rest = arn.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        let partitions = [
            "aws",
            "aws-cn",
            "aws-us-gov",
            "aws-iso",
            "aws-iso-b",
            "aws-iso-e",
            "aws-iso-f",
        ];
        if !partitions.contains(&partition) {
            return None;
        }
        let rest = rest.strip_prefix("iam::")?;
        let (account, rest) = rest.split_once(':')?;
        let name = rest.strip_prefix("role/")?;
        let ok = account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && !name.contains(['\n', '\r']);
        ok.then_some(())
    })()
    .is_some();
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field} `{}` is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name> \
             (partitions aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f)",
            arn.escape_debug()
        ))
    }
}

/// Sets the task-level fields; new keys are appended, existing ones keep their place.
pub fn apply_task(input: RegisterInput, edit: &TaskEdit) -> Result<RegisterInput, TaskDefError> {
    let mut definition = input.0;
    if let Some(arn) = &edit.task_role_arn {
        definition.insert("taskRoleArn".into(), Value::String(arn.clone()));
    }
    if let Some(arn) = &edit.execution_role_arn {
        definition.insert("executionRoleArn".into(), Value::String(arn.clone()));
    }
    validate(definition)
}

/// Container edits, then task edits.
pub fn render(
    input: &RegisterInput,
    task: &TaskEdit,
    edits: &[ContainerEdit],
) -> Result<RegisterInput, TaskDefError> {
    apply_task(apply(input, edits)?, task)
}

/// Applies container edits to a register input; containers not named stay untouched.
pub fn apply(
    input: &RegisterInput,
    edits: &[ContainerEdit],
) -> Result<RegisterInput, TaskDefError> {
    let mut definition = input.0.clone();
    let family = input.family().to_owned();
    let containers = definition
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .ok_or(TaskDefError::Missing {
            field: "containerDefinitions".into(),
        })?;
    for edit in edits {
        let known: Vec<String> = containers
            .iter()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let container = containers
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|c| c.get("name").and_then(Value::as_str) == Some(edit.name.as_str()))
            .ok_or_else(|| TaskDefError::NoSuchContainer {
                name: edit.name.clone(),
                family: family.clone(),
                known: known.join(", "),
            })?;
        if let Some(image) = &edit.image {
            let current = container.get("image").and_then(Value::as_str).unwrap_or("");
            let new = match image {
                ImageEdit::Full(reference) => reference.clone(),
                ImageEdit::Tag(tag) => {
                    format!("{}:{tag}", ImageRef::parse(current).repository_uri())
                }
                ImageEdit::Digest(digest) => {
                    format!("{}@{digest}", ImageRef::parse(current).repository_uri())
                }
            };
            check_image_reference(&new).map_err(|reason| TaskDefError::InvalidImage {
                container: edit.name.clone(),
                image: new.clone(),
                reason,
            })?;
            container.insert("image".into(), Value::String(new));
        }
        if let Some(command) = &edit.command {
            container.insert(
                "command".into(),
                Value::Array(command.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(files) = &edit.env_files {
            let files = files
                .iter()
                .map(|arn| {
                    let mut entry = Map::new();
                    entry.insert("value".into(), Value::String(arn.clone()));
                    entry.insert("type".into(), Value::String("s3".into()));
                    Value::Object(entry)
                })
                .collect();
            container.insert("environmentFiles".into(), Value::Array(files));
        }
        set_pairs(
            container,
            "environment",
            "value",
            &edit.env_set,
            &edit.env_unset,
        );
        set_pairs(
            container,
            "secrets",
            "valueFrom",
            &edit.secrets_set,
            &edit.secrets_unset,
        );
        if edit.log_driver.is_some() || !edit.log_options.is_empty() {
            let field = format!("containerDefinitions[{}].logConfiguration", edit.name);
            let log = container
                .entry("logConfiguration")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or(TaskDefError::WrongType {
                    field: field.clone(),
                    expected: "an object",
                })?;
            if let Some(driver) = &edit.log_driver {
                log.insert("logDriver".into(), Value::String(driver.clone()));
            }
            set_keys(log, "options", &edit.log_options, &field)?;
        }
        let field = format!("containerDefinitions[{}]", edit.name);
        set_keys(container, "dockerLabels", &edit.docker_labels, &field)?;
    }
    validate(definition)
}

/// Merges `key: value` strings into an object member (created when absent): existing keys
/// change in place, new ones are appended, others stay.
fn set_keys(
    parent: &mut Map<String, Value>,
    member: &str,
    pairs: &[(String, String)],
    field: &str,
) -> Result<(), TaskDefError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let object = parent
        .entry(member)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(TaskDefError::WrongType {
            field: format!("{field}.{member}"),
            expected: "an object",
        })?;
    for (key, value) in pairs {
        object.insert(key.clone(), Value::String(value.clone()));
    }
    Ok(())
}

/// Merges `name`/`value_key` pairs into a container list: update in place, append new ones,
/// remove unset ones. Empty values are kept (`EMPTY=` is a real value).
fn set_pairs(
    container: &mut Map<String, Value>,
    list: &str,
    value_key: &str,
    set: &[(String, String)],
    unset: &[String],
) {
    if set.is_empty() && unset.is_empty() {
        return;
    }
    let entries = container
        .entry(list)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entries.is_array() {
        *entries = Value::Array(Vec::new());
    }
    let Some(entries) = entries.as_array_mut() else {
        return;
    };
    entries.retain(|entry| {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
        !unset.iter().any(|u| u == name)
    });
    for (name, value) in set {
        let existing = entries
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name.as_str()));
        match existing {
            Some(entry) => {
                entry.insert(value_key.into(), Value::String(value.clone()));
            }
            None => {
                let mut entry = Map::new();
                entry.insert("name".into(), Value::String(name.clone()));
                entry.insert(value_key.into(), Value::String(value.clone()));
                entries.push(Value::Object(entry));
            }
        }
    }
}

/// Checks `reference` against the Docker image reference grammar (distribution/reference,
/// `reference.go`): `[domain/]path[:tag][@digest]`, where the domain is `host[:port]` (DNS
/// labels or `[IPv6]`), each path component is lowercase alphanumerics joined by `.`, `_`,
/// `__` or runs of `-`, a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` and a digest
/// `algorithm:hex` with at least 32 hex digits. The name is at most 255 characters.
pub fn check_image_reference(reference: &str) -> Result<(), &'static str> {
    if reference.is_empty() {
        return Err("it is empty");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if name.len() > 255 {
        return Err("the name is longer than 255 characters");
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':', '['])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), path)
        }
        _ => (None, name),
    };
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    if path.is_empty() {
        return Err("the repository is empty");
    }
    path.split('/').try_for_each(check_path_component)
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    let (host, port) = match domain.strip_prefix('[') {
        Some(inner) => {
            let (address, after) = inner
                .split_once(']')
                .ok_or("the registry's `[` is not closed")?;
            if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                return Err("the registry's IPv6 address is invalid");
            }
            match after {
                "" => (None, None),
                _ => (
                    None,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("the registry port must follow `:`")?,
                    ),
                ),
            }
        }
        None => match domain.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the registry port must be digits");
        }
    }
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(
                "the registry host must be DNS labels (letters, digits, `-`) joined by `.`",
            );
        }
    }
    Ok(())
}

fn check_path_component(component: &str) -> Result<(), &'static str> {
    const MESSAGE: &str = "repository path components are lowercase letters and digits joined by `.`, `_`, `__` or `-`";
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !component.starts_with(alphanumeric) || !component.ends_with(alphanumeric) {
        return Err(MESSAGE);
    }
    for separator in component.split(alphanumeric).filter(|run| !run.is_empty()) {
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return Err(MESSAGE);
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), &'static str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err("a tag is letters, digits, `_`, `.` and `-` (not first), at most 128 characters")
    }
}

fn check_digest(digest: &str) -> Result<(), &'static str> {
    const MESSAGE: &str = "a digest is `algorithm:hex` with at least 32 hex digits (`sha256:…`)";
    let (algorithm, hex) = digest.split_once(':').ok_or(MESSAGE)?;
    let component_ok = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(component_ok);
    if algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(MESSAGE)
    }
}

/// A parsed image reference: `[registry[:port]/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (with port), when the reference names one.
    pub registry: Option<String>,
    /// Repository path.
    pub repository: String,
    /// Tag.
    pub tag: Option<String>,
    /// Digest (`sha256:…`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference; a first path component with `.` or `:` or `localhost` is a registry.
    pub fn parse(reference: &str) -> Self {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (reference, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_owned()), path)
            }
            _ => (None, rest),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) => (repository.to_owned(), Some(tag.to_owned())),
            None => (path.to_owned(), None),
        };
        Self {
            registry,
            repository,
            tag,
            digest,
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_uri(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The ECR registry of this image: `(account, region)` for `<acct>.dkr.ecr.<region>.amazonaws.com`.
    pub fn ecr(&self) -> Option<(String, String)> {
        let host = self.registry.as_deref()?;
        let mut parts = host.split('.');
        let account = parts.next()?;
        if parts.next()? != "dkr" {
            return None;
        }
        let ecr = parts.next()?;
        if ecr != "ecr" && ecr != "ecr-fips" {
            return None;
        }
        let region = parts.next()?;
        let is_aws = parts.next().is_some_and(|d| d == "amazonaws");
        (is_aws && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
            .then(|| (account.to_owned(), region.to_owned()))
    }

    /// The reference pinned to a digest: `registry/repository@digest`.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository_uri())
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository_uri())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A describe response holding every current TaskDefinition member.
    pub(crate) fn full_describe() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/describe-full.json")).expect("fixture")
    }

    #[test]
    fn strips_exactly_the_describe_only_fields_and_keeps_everything_else() {
        let describe = full_describe();
        let input = from_describe(&describe).expect("valid");
        let original = describe["taskDefinition"].as_object().expect("object");
        for key in original.keys() {
            let stripped = DESCRIBE_ONLY_FIELDS.contains(&key.as_str());
            assert_eq!(input.0.contains_key(key), !stripped, "{key}");
        }
        // The fixture really holds every register field, tags from the wrapper included.
        for field in REGISTER_FIELDS {
            assert!(input.0.contains_key(*field), "fixture lacks {field}");
        }
        let container = &input.containers()[0];
        for field in CONTAINER_FIELDS {
            assert!(
                container.get(*field).is_some(),
                "fixture container lacks {field}"
            );
        }
        assert_eq!(input.0["tags"], describe["tags"]);
        assert_eq!(input.0["enableFaultInjection"], json!(false));
    }

    #[test]
    fn stripping_keeps_the_key_order_of_the_input() {
        let document = json!({
            "family": "f", "revision": 3, "containerDefinitions": [{"name": "a", "image": "x"}],
            "status": "ACTIVE", "tags": [{"key": "k", "value": "v"}], "cpu": "256"
        });
        let input = from_describe(&document).expect("valid");
        let keys: Vec<&str> = input.0.keys().map(String::as_str).collect();
        assert_eq!(keys, ["family", "containerDefinitions", "tags", "cpu"]);
    }

    #[test]
    fn env_files_log_configuration_labels_and_roles_merge_like_the_render_action() {
        let base = from_describe(&json!({
            "family": "f",
            "containerDefinitions": [
                {"name": "web", "image": "x", "environmentFiles": [{"value": "arn:aws:s3:::b/old.env", "type": "s3"}],
                 "logConfiguration": {"logDriver": "json-file", "options": {"keep": "1", "tag": ""}},
                 "dockerLabels": {"a": "1", "b": "2"}},
                {"name": "sidecar", "image": "y", "dockerLabels": {"a": "1"}}
            ]
        }))
        .expect("valid");
        let edit = |name: &str| ContainerEdit {
            name: name.into(),
            env_files: Some(vec!["arn:aws:s3:::b/new.env".into()]),
            log_driver: Some("awslogs".into()),
            log_options: vec![
                ("awslogs-group".into(), "/ecs/web=x".into()),
                ("keep".into(), "2".into()),
            ],
            docker_labels: vec![("b".into(), "3".into()), ("c".into(), "4".into())],
            ..ContainerEdit::default()
        };
        let task = TaskEdit {
            task_role_arn: Some("arn:aws:iam::123456789012:role/t".into()),
            execution_role_arn: None,
        };
        let out = render(&base, &task, &[edit("web")]).expect("renders");
        let web = &out.containers()[0];
        assert_eq!(
            web["environmentFiles"],
            json!([{"value": "arn:aws:s3:::b/new.env", "type": "s3"}])
        );
        assert_eq!(
            web["logConfiguration"],
            json!({"logDriver": "awslogs", "options": {"keep": "2", "tag": "", "awslogs-group": "/ecs/web=x"}})
        );
        assert_eq!(web["dockerLabels"], json!({"a": "1", "b": "3", "c": "4"}));
        assert_eq!(
            out.containers()[1],
            base.containers()[1],
            "other containers untouched"
        );
        assert_eq!(
            out.0["taskRoleArn"],
            json!("arn:aws:iam::123456789012:role/t")
        );
        assert!(!out.0.contains_key("executionRoleArn"));
    }

    #[test]
    fn role_arns_and_log_drivers_are_checked() {
        for valid in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-cn:iam::123456789012:role/path/to/r",
            "arn:aws-iso-f:iam::123456789012:role/r",
        ] {
            assert_eq!(check_role_arn("task-role-arn", valid), Ok(()), "{valid}");
        }
        for invalid in [
            "not-a-valid-arn",
            "arn:aws:iam::12345:role/too-short-account",
            "arn:aws:s3::123456789012:role/r",
            "arn:aws-xx:iam::123456789012:role/r",
            "arn:aws:iam::123456789012:user/u",
            "arn:aws:iam::123456789012:role/",
        ] {
            let error = check_role_arn("task-role-arn", invalid).expect_err(invalid);
            assert!(
                error.contains("arn:aws:iam::<12-digit account>:role/<name>"),
                "{error}"
            );
        }
        assert_eq!(check_log_driver("awsfirelens"), Ok(()));
        let error = check_log_driver("loki").expect_err("not an ECS driver");
        assert!(
            error.contains("awslogs") && error.contains("`loki`"),
            "{error}"
        );
    }

    #[test]
    fn unknown_top_level_field_is_an_error_naming_it() {
        let mut describe = full_describe();
        describe["taskDefinition"]["someFutureField"] = json!(true);
        assert_eq!(
            from_describe(&describe),
            Err(TaskDefError::UnknownField {
                field: "someFutureField".into()
            })
        );
    }

    #[test]
    fn unknown_container_field_is_an_error_naming_container_and_field() {
        let mut describe = full_describe();
        describe["taskDefinition"]["containerDefinitions"][0]["gpuMagic"] = json!(1);
        let error = from_describe(&describe).expect_err("unknown");
        assert_eq!(
            error,
            TaskDefError::UnknownField {
                field: "containerDefinitions[web].gpuMagic".into()
            }
        );
        assert!(error.to_string().contains("never dropped silently"));
    }

    #[test]
    fn bare_task_definition_is_accepted_like_the_wrapper() {
        let describe = full_describe();
        let bare = describe["taskDefinition"].clone();
        let from_bare = from_describe(&bare).expect("bare");
        let mut from_wrapper = from_describe(&describe).expect("wrapper");
        from_wrapper.0.remove("tags");
        let mut from_bare_no_tags = from_bare.clone();
        from_bare_no_tags.0.remove("tags");
        assert_eq!(from_bare_no_tags, from_wrapper);
    }

    #[test]
    fn missing_family_and_containers_are_named() {
        assert_eq!(
            from_describe(&json!({"containerDefinitions": []})),
            Err(TaskDefError::Missing {
                field: "family".into()
            })
        );
        assert_eq!(
            from_describe(&json!({"family": "x"})),
            Err(TaskDefError::Missing {
                field: "containerDefinitions".into()
            })
        );
        assert_eq!(from_describe(&json!([])), Err(TaskDefError::NotAnObject));
    }

    fn small() -> RegisterInput {
        from_describe(&json!({
            "family": "proc",
            "containerDefinitions": [
                {"name": "app", "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/proc:1.0",
                 "environment": [{"name": "A", "value": "1"}, {"name": "OLD", "value": "x"}],
                 "secrets": [{"name": "DB", "valueFrom": "arn:old"}]},
                {"name": "sidecar", "image": "envoy:1", "environment": [{"name": "A", "value": "1"}]}
            ]
        }))
        .expect("valid")
    }

    #[test]
    fn edits_merge_env_and_secrets_and_touch_only_the_named_container() {
        let bundles = "{\n  \"bundles\": [{\"id\": \"a=b\"}]\n}";
        let edit = ContainerEdit {
            name: "app".into(),
            image: Some(ImageEdit::Tag("2.0".into())),
            env_set: vec![
                ("A".into(), "2".into()),
                ("AGENTIC_BUNDLES_JSON".into(), bundles.into()),
                ("EMPTY".into(), String::new()),
            ],
            env_unset: vec!["OLD".into()],
            secrets_set: vec![
                ("DB".into(), "arn:new".into()),
                ("K".into(), "arn:k".into()),
            ],
            secrets_unset: vec![],
            command: Some(vec!["sh".into(), "-c".into(), "echo 'hi there'".into()]),
            ..ContainerEdit::default()
        };
        let out = apply(&small(), &[edit]).expect("applies");
        let app = &out.containers()[0];
        assert_eq!(
            app["image"],
            json!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/proc:2.0")
        );
        assert_eq!(
            app["environment"],
            json!([{"name": "A", "value": "2"},
                   {"name": "AGENTIC_BUNDLES_JSON", "value": bundles},
                   {"name": "EMPTY", "value": ""}])
        );
        assert_eq!(
            app["secrets"],
            json!([{"name": "DB", "valueFrom": "arn:new"}, {"name": "K", "valueFrom": "arn:k"}])
        );
        assert_eq!(app["command"], json!(["sh", "-c", "echo 'hi there'"]));
        assert_eq!(out.containers()[1], small().containers()[1]);
    }

    #[test]
    fn missing_container_names_the_known_ones() {
        let edit = ContainerEdit {
            name: "web".into(),
            ..ContainerEdit::default()
        };
        assert_eq!(
            apply(&small(), &[edit]),
            Err(TaskDefError::NoSuchContainer {
                name: "web".into(),
                family: "proc".into(),
                known: "app, sidecar".into()
            })
        );
    }

    #[test]
    fn image_references_follow_the_docker_grammar() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for valid in [
            "nginx".to_owned(),
            "nginx:1.27-alpine".to_owned(),
            "library/nginx:latest".to_owned(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/proc:2026.11.24".to_owned(),
            "localhost:5000/a/b__c.d-e--f:v_1".to_owned(),
            "[::1]:5000/app:1".to_owned(),
            "Registry.Example.com/app".to_owned(),
            format!("ghcr.io/o/app@{digest}"),
            format!("app:1@{digest}"),
        ] {
            assert_eq!(check_image_reference(&valid), Ok(()), "{valid}");
        }
        for invalid in [
            "",
            "app:1\n::warning::x",
            "app:$(touch x)",
            "a b",
            "App",
            "app:",
            "app:-x",
            "app@sha256:abc",
            "app@:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "host:port/app",
            "-bad.io/app",
            "ghcr.io/",
            "a..b",
            "a___b",
            "[zz]/app",
        ] {
            assert!(check_image_reference(invalid).is_err(), "{invalid:?}");
        }
        let long = format!("a/{}", "b".repeat(254));
        assert!(check_image_reference(&long).is_err());
    }

    #[test]
    fn an_invalid_new_image_is_refused_before_registering() {
        let input = small();
        let edit = |image: ImageEdit| ContainerEdit {
            name: "app".into(),
            image: Some(image),
            ..ContainerEdit::default()
        };
        for image in [
            ImageEdit::Full("app:1\n::warning::x".into()),
            ImageEdit::Tag("2 ##[warning]x".into()),
            ImageEdit::Digest("sha256:$(id)".into()),
        ] {
            let error = apply(&input, &[edit(image.clone())]).expect_err("refused");
            assert!(
                matches!(error, TaskDefError::InvalidImage { .. }),
                "{image:?}: {error}"
            );
        }
        apply(&input, &[edit(ImageEdit::Tag("2.0".into()))]).expect("a valid tag");
    }

    #[test]
    fn image_references_parse_with_ports_tags_and_digests() {
        let cases = [
            ("nginx", None, "nginx", None, None),
            ("nginx:1.27", None, "nginx", Some("1.27"), None),
            (
                "localhost:5000/team/app",
                Some("localhost:5000"),
                "team/app",
                None,
                None,
            ),
            (
                "host:5000/app:v1@sha256:ab",
                Some("host:5000"),
                "app",
                Some("v1"),
                Some("sha256:ab"),
            ),
            (
                "ghcr.io/o/app@sha256:cd",
                Some("ghcr.io"),
                "o/app",
                None,
                Some("sha256:cd"),
            ),
        ];
        for (text, registry, repository, tag, digest) in cases {
            let image = ImageRef::parse(text);
            assert_eq!(image.registry.as_deref(), registry, "{text}");
            assert_eq!(image.repository, repository, "{text}");
            assert_eq!(image.tag.as_deref(), tag, "{text}");
            assert_eq!(image.digest.as_deref(), digest, "{text}");
            assert_eq!(image.to_string(), text);
        }
        let ecr = ImageRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/kdcube/proc:1");
        assert_eq!(ecr.ecr(), Some(("123456789012".into(), "eu-west-1".into())));
        assert_eq!(
            ecr.pinned("sha256:ff"),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kdcube/proc@sha256:ff"
        );
        assert_eq!(ImageRef::parse("ghcr.io/o/app:1").ecr(), None);
        assert_eq!(ImageRef::parse("docker.io/library/nginx").ecr(), None);
    }
}
