//! `env:NAME` and `file:/path` references in bundle props: finding, checking and resolving
//! them, without ever putting a resolved value into a message.

use std::path::Path;

use runner_protocol::Env;

use crate::problem::{FieldPath, Problem};

/// A reference found in a prop value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropReference<'a> {
    /// `env:NAME`: an environment variable.
    Env(&'a str),
    /// `file:/path`: a file's contents.
    File(&'a str),
}

/// The reference a string value makes, if any; anything else is a literal.
pub fn reference(value: &str) -> Option<PropReference<'_>> {
    if let Some(name) = value.strip_prefix("env:") {
        return Some(PropReference::Env(name));
    }
    value.strip_prefix("file:").map(PropReference::File)
}

/// True for a usable environment variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Visits every string value in `value` (a props tree) with its field path.
pub fn for_each_string<'v>(
    value: &'v serde_json::Value,
    path: &FieldPath,
    visit: &mut dyn FnMut(&FieldPath, &'v str),
) {
    match value {
        serde_json::Value::String(text) => visit(path, text),
        serde_json::Value::Array(items) => {
            for (position, item) in items.iter().enumerate() {
                for_each_string(item, &path.index(position), visit);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                for_each_string(item, &path.key(key), visit);
            }
        }
        _ => {}
    }
}

/// Checks the shape of every reference, and (with `check_targets`) that each variable is set
/// and each file is readable. Messages name the variable or file, never a value.
pub fn check(
    props: &serde_json::Map<String, serde_json::Value>,
    path: &FieldPath,
    env: &Env,
    check_targets: bool,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, value) in props {
        for_each_string(
            value,
            &path.key(key),
            &mut |field, text| match reference(text) {
                Some(PropReference::Env(name)) if !is_env_name(name) => problems.push(
                    Problem::error(
                        field.clone(),
                        format!(
                            "`{field}` references an invalid environment variable name `{name}`"
                        ),
                    )
                    .hint("write `env:NAME` with letters, digits and `_`, e.g. `env:DOCS_TOKEN`"),
                ),
                Some(PropReference::Env(name)) if check_targets && env.get(name).is_none() => {
                    problems.push(
                        Problem::error(
                            field.clone(),
                            format!("environment variable `{name}` referenced by `{field}` is not set"),
                        )
                        .label("unset variable")
                        .hint(format!("set `{name}` in the step's `env:` (from a secret), or make the prop a literal")),
                    );
                }
                Some(PropReference::File("")) => problems.push(
                    Problem::error(
                        field.clone(),
                        format!("`{field}` references an empty file path"),
                    )
                    .hint("write `file:/path/to/file`"),
                ),
                Some(PropReference::File(file)) if check_targets && !Path::new(file).is_file() => {
                    problems.push(
                        Problem::error(
                            field.clone(),
                            format!("file `{file}` referenced by `{field}` does not exist or is not a file"),
                        )
                        .label("missing file")
                        .hint("create the file before this step (e.g. from a secret), or fix the path"),
                    );
                }
                _ => {}
            },
        );
    }
    problems
}

/// A reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The variable is unset or empty.
    #[error("environment variable `{name}` referenced by `{field}` is not set")]
    MissingEnv {
        /// Variable name.
        name: String,
        /// Prop path.
        field: FieldPath,
    },
    /// The file cannot be read.
    #[error("cannot read file `{file}` referenced by `{field}`: {reason}")]
    File {
        /// File path.
        file: String,
        /// Prop path.
        field: FieldPath,
        /// The I/O error kind (never the contents).
        reason: String,
    },
}

impl ResolveError {
    /// The prop path.
    pub fn field(&self) -> &FieldPath {
        match self {
            ResolveError::MissingEnv { field, .. } | ResolveError::File { field, .. } => field,
        }
    }
}

/// Replaces every `env:`/`file:` string in `value` with what it references.
///
/// `mask` is called with each resolved value *before* it is stored anywhere, so the caller can
/// register it with the runner's masker (`Runner::secret`) before anything could print it.
/// A file's single trailing newline is dropped (`echo token > file` writes one).
/// All failures are collected.
pub fn resolve(
    value: &mut serde_json::Value,
    path: &FieldPath,
    env: &Env,
    mask: &mut dyn FnMut(&str),
    errors: &mut Vec<ResolveError>,
) {
    match value {
        serde_json::Value::String(text) => {
            let resolved = match reference(text) {
                None => return,
                Some(PropReference::Env(name)) => match env.get(name) {
                    Some(found) => found.to_owned(),
                    None => {
                        errors.push(ResolveError::MissingEnv {
                            name: name.to_owned(),
                            field: path.clone(),
                        });
                        return;
                    }
                },
                Some(PropReference::File(file)) => match crate::limits::read_text(
                    Path::new(file),
                    crate::limits::MAX_PROP_FILE_BYTES,
                ) {
                    Ok(mut contents) => {
                        if contents.ends_with('\n') {
                            contents.pop();
                            if contents.ends_with('\r') {
                                contents.pop();
                            }
                        }
                        contents
                    }
                    Err(error) => {
                        let reason = match error {
                            crate::limits::BoundedReadError::Io(error) => error.kind().to_string(),
                            other => other.to_string(),
                        };
                        errors.push(ResolveError::File {
                            file: file.to_owned(),
                            field: path.clone(),
                            reason,
                        });
                        return;
                    }
                },
            };
            mask(&resolved);
            *text = resolved;
        }
        serde_json::Value::Array(items) => {
            for (position, item) in items.iter_mut().enumerate() {
                resolve(item, &path.index(position), env, mask, errors);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                resolve(item, &path.key(key), env, mask, errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_prefixed_strings() {
        assert_eq!(reference("env:TOKEN"), Some(PropReference::Env("TOKEN")));
        assert_eq!(
            reference("file:/run/s"),
            Some(PropReference::File("/run/s"))
        );
        assert_eq!(reference("literal"), None);
        assert_eq!(reference("ENV:X"), None);
    }

    #[test]
    fn resolves_env_and_file_and_masks_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").expect("write");
        let env = Env::from_pairs([("TOKEN", "from-env")]);
        let mut value = serde_json::json!({
            "a": "env:TOKEN",
            "b": [format!("file:{}", file.display()), "plain"],
            "c": 3
        });
        let mut masked = Vec::new();
        let mut errors = Vec::new();
        resolve(
            &mut value,
            &FieldPath::root().key("props"),
            &env,
            &mut |v| masked.push(v.to_owned()),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            value,
            serde_json::json!({"a": "from-env", "b": ["from-file", "plain"], "c": 3})
        );
        assert_eq!(masked, ["from-env", "from-file"]);
    }

    #[test]
    fn collects_every_failure_with_its_path() {
        let env = Env::default();
        let mut value = serde_json::json!({"a": "env:NOPE", "b": {"c": "file:/nonexistent/x"}});
        let mut errors = Vec::new();
        resolve(
            &mut value,
            &FieldPath::root().key("props"),
            &env,
            &mut |_| {},
            &mut errors,
        );
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "environment variable `NOPE` referenced by `props.a` is not set",
                "cannot read file `/nonexistent/x` referenced by `props.b.c`: entity not found"
            ]
        );
    }
}
