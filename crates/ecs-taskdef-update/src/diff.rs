//! What a rendered task definition changes, per container, with secret and long values redacted.
//!
//! An env value is hidden when its name looks like a secret (`DB_PASSWORD`, `API_TOKEN`,
//! `AWS_SECRET_ACCESS_KEY`, ...) or the value carries a URL password (`postgres://u:p@h`), in
//! the new definition and in the live one alike; [`HIDDEN_NOTE`] says how to see them.

use serde_json::Value;

use crate::taskdef::RegisterInput;

/// Values longer than this are shown by length only.
pub const LONG_VALUE: usize = 64;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The image changed.
    Image {
        /// Container.
        container: String,
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// An env var, secret or command entry was added, changed or removed.
    Entry {
        /// Container.
        container: String,
        /// `env`, `secret`, `command`.
        kind: &'static str,
        /// Name.
        name: String,
        /// Before (shown form), `None` when added.
        from: Option<String>,
        /// After (shown form), `None` when removed.
        to: Option<String>,
    },
    /// A container appeared or disappeared, or a task-level field changed.
    Other {
        /// Dotted path.
        path: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Image {
                container,
                from,
                to,
            } => write!(f, "~ {container}: image {from} -> {to}"),
            Change::Entry {
                container,
                kind,
                name,
                from,
                to,
            } => match (from, to) {
                (None, Some(to)) => write!(f, "+ {container}: {kind} {name} = {to}"),
                (Some(from), None) => write!(f, "- {container}: {kind} {name} (was {from})"),
                (Some(from), Some(to)) => {
                    write!(f, "~ {container}: {kind} {name} = {to} (was {from})")
                }
                (None, None) => write!(f, "~ {container}: {kind} {name}"),
            },
            Change::Other { path } => write!(f, "~ {path} changed"),
        }
    }
}

/// What a hidden value is shown as.
pub const HIDDEN: &str = "<hidden>";

/// Said once after a diff that hid a value.
pub const HIDDEN_NOTE: &str = "values of secret-looking env names are shown as <hidden>; \
     `ecs-taskdef-update render` writes the full task definitions to --output-dir, and \
     `aws ecs describe-task-definition` shows the live one";

/// Words that make an env name secret-looking, matched against the `_`/`-`/`.`-separated
/// words of the upper-cased name (`DB_PASSWORD`, `GITHUB_TOKEN`, `STRIPE_API_KEY`).
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "TOKENS",
    "KEY",
    "KEYS",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "AUTH",
    "PRIVATE",
    "SIGNATURE",
    "SALT",
    "DSN",
    "COOKIE",
    "SESSION",
    "CERT",
];

/// Substrings that make a name secret-looking wherever they appear (`DBPASSWORD`).
const SECRET_PARTS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "APIKEY",
];

/// True for an env name that looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_PARTS.iter().any(|part| upper.contains(part))
        || upper
            .split(['_', '-', '.'])
            .any(|word| SECRET_WORDS.contains(&word))
}

/// True for a value holding a URL with a password (`scheme://user:password@host`).
pub fn has_url_password(value: &str) -> bool {
    value.match_indices("://").any(|(at, _)| {
        let rest = &value[at + 3..];
        let authority = rest.split(['/', '?', '#', ' ', '"']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// How an env value is shown: hidden for a secret-looking name or a URL password, else
/// [`shown`].
pub fn shown_env(name: &str, value: &str) -> String {
    if is_secret_name(name) || has_url_password(value) {
        HIDDEN.to_owned()
    } else {
        shown(value)
    }
}

/// True when a change hides a value.
pub fn hides_a_value(change: &Change) -> bool {
    matches!(change, Change::Entry { kind: "env", from, to, .. }
        if from.as_deref() == Some(HIDDEN) || to.as_deref() == Some(HIDDEN))
}

/// How a value is shown: short plain values as they are, long ones by length.
pub fn shown(value: &str) -> String {
    if value.contains('\n') || value.chars().count() > LONG_VALUE {
        format!("<{} bytes>", value.len())
    } else {
        format!("{value:?}")
    }
}

/// Secrets never show their `valueFrom`: it is only a reference, but names of parameters and
/// secrets say more than a log should.
fn shown_secret(_name: &str, _value_from: &str) -> String {
    "<redacted>".into()
}

fn pairs(container: &Value, list: &str, key: &str) -> Vec<(String, String)> {
    container
        .get(list)
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        e.get(key).and_then(Value::as_str).unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn diff_pairs(
    changes: &mut Vec<Change>,
    container: &str,
    kind: &'static str,
    before: &[(String, String)],
    after: &[(String, String)],
    show: fn(&str, &str) -> String,
) {
    for (name, value) in after {
        match before.iter().find(|(n, _)| n == name) {
            None => changes.push(Change::Entry {
                container: container.into(),
                kind,
                name: name.clone(),
                from: None,
                to: Some(show(name, value)),
            }),
            Some((_, old)) if old != value => changes.push(Change::Entry {
                container: container.into(),
                kind,
                name: name.clone(),
                from: Some(show(name, old)),
                to: Some(show(name, value)),
            }),
            Some(_) => {}
        }
    }
    for (name, value) in before {
        if !after.iter().any(|(n, _)| n == name) {
            changes.push(Change::Entry {
                container: container.into(),
                kind,
                name: name.clone(),
                from: Some(show(name, value)),
                to: None,
            });
        }
    }
}

/// The changes from `before` to `after`.
pub fn diff(before: &RegisterInput, after: &RegisterInput) -> Vec<Change> {
    let mut changes = Vec::new();
    for (key, value) in &after.0 {
        if key != "containerDefinitions" && before.0.get(key) != Some(value) {
            changes.push(Change::Other { path: key.clone() });
        }
    }
    for key in before.0.keys() {
        if !after.0.contains_key(key) {
            changes.push(Change::Other { path: key.clone() });
        }
    }
    let name_of = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    for new in after.containers() {
        let name = name_of(new);
        let Some(old) = before.containers().iter().find(|c| name_of(c) == name) else {
            changes.push(Change::Other {
                path: format!("containerDefinitions[{name}] added"),
            });
            continue;
        };
        let image = |c: &Value| {
            c.get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        if image(old) != image(new) {
            changes.push(Change::Image {
                container: name.clone(),
                from: image(old),
                to: image(new),
            });
        }
        diff_pairs(
            &mut changes,
            &name,
            "env",
            &pairs(old, "environment", "value"),
            &pairs(new, "environment", "value"),
            shown_env,
        );
        diff_pairs(
            &mut changes,
            &name,
            "secret",
            &pairs(old, "secrets", "valueFrom"),
            &pairs(new, "secrets", "valueFrom"),
            shown_secret,
        );
        if old.get("command") != new.get("command") {
            changes.push(Change::Entry {
                container: name.clone(),
                kind: "command",
                name: String::new(),
                from: old.get("command").map(Value::to_string),
                to: new.get("command").map(Value::to_string),
            });
        }
        if let (Some(old), Some(new)) = (old.as_object(), new.as_object()) {
            for key in old.keys().chain(new.keys()) {
                let handled = ["image", "environment", "secrets", "command", "name"];
                if !handled.contains(&key.as_str()) && old.get(key) != new.get(key) {
                    let path = format!("containerDefinitions[{name}].{key}");
                    if !changes
                        .iter()
                        .any(|c| matches!(c, Change::Other { path: p } if *p == path))
                    {
                        changes.push(Change::Other { path });
                    }
                }
            }
        }
    }
    for old in before.containers() {
        let name = name_of(old);
        if !after.containers().iter().any(|c| name_of(c) == name) {
            changes.push(Change::Other {
                path: format!("containerDefinitions[{name}] removed"),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::{ContainerEdit, ImageEdit, apply, from_describe};

    #[test]
    fn diff_of_a_full_fixture_names_each_change_and_redacts() {
        let describe: Value =
            serde_json::from_str(include_str!("../tests/fixtures/describe-full.json"))
                .expect("fixture");
        let before = from_describe(&describe).expect("valid");
        let bundles = format!("{{\"bundles\": [{}]}}", "\"x\",".repeat(40));
        let after = apply(
            &before,
            &[ContainerEdit {
                name: "web".into(),
                image: Some(ImageEdit::Tag("2.0".into())),
                env_set: vec![
                    ("LOG_LEVEL".into(), "debug".into()),
                    ("AGENTIC_BUNDLES_JSON".into(), bundles.clone()),
                ],
                env_unset: vec!["EMPTY".into()],
                secrets_set: vec![(
                    "DB_PASSWORD".into(),
                    "arn:aws:ssm:eu-west-1:123456789012:parameter/db2".into(),
                )],
                ..ContainerEdit::default()
            }],
        )
        .expect("applies");
        let lines: Vec<String> = diff(&before, &after)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "~ web: image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.0 -> 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:2.0",
                "~ web: env LOG_LEVEL = \"debug\" (was \"info\")",
                &format!(
                    "+ web: env AGENTIC_BUNDLES_JSON = <{} bytes>",
                    bundles.len()
                ),
                "- web: env EMPTY (was \"\")",
                "~ web: secret DB_PASSWORD = <redacted> (was <redacted>)",
            ]
        );
        assert!(!lines.join("\n").contains("parameter/db2"));
    }

    #[test]
    fn secret_looking_env_values_are_hidden_old_and_new_issue_25() {
        let describe: Value =
            serde_json::from_str(include_str!("../tests/fixtures/describe-full.json"))
                .expect("fixture");
        let mut describe_live = describe.clone();
        // The live definition already holds a plain-text password (as issue 25 found).
        describe_live["taskDefinition"]["containerDefinitions"][0]["environment"]
            .as_array_mut()
            .expect("environment")
            .push(serde_json::json!({"name": "DB_PASSWORD", "value": "hunter2"}));
        let before = from_describe(&describe_live).expect("valid");
        let after = apply(
            &before,
            &[ContainerEdit {
                name: "web".into(),
                env_set: vec![
                    ("DB_PASSWORD".into(), "hunter3".into()),
                    ("STRIPE_API_KEY".into(), "sk_live_1".into()),
                    (
                        "DATABASE_URL".into(),
                        "postgres://app:s3cr3t@db:5432/app".into(),
                    ),
                    ("LOG_LEVEL".into(), "debug".into()),
                ],
                ..ContainerEdit::default()
            }],
        )
        .expect("applies");
        let changes = diff(&before, &after);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        let joined = text.join("\n");
        for secret in ["hunter2", "hunter3", "sk_live_1", "s3cr3t"] {
            assert!(!joined.contains(secret), "{secret} shown: {joined}");
        }
        assert!(
            text.contains(&"~ web: env DB_PASSWORD = <hidden> (was <hidden>)".to_owned()),
            "{joined}"
        );
        assert!(
            text.contains(&"~ web: env LOG_LEVEL = \"debug\" (was \"info\")".to_owned()),
            "{joined}"
        );
        assert!(changes.iter().any(hides_a_value));
    }

    #[test]
    fn secret_names_and_url_passwords() {
        for name in [
            "DB_PASSWORD",
            "db_password",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "STRIPE_API_KEY",
            "SENTRY_DSN",
            "MYSQLPASSWORD",
            "JWT_SIGNING-KEY",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "LOG_LEVEL",
            "AGENTIC_BUNDLES_JSON",
            "WORKERS",
            "MONKEY_COUNT",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
        assert!(has_url_password("postgres://u:p@h/db"));
        assert!(has_url_password("{\"url\": \"redis://:pw@cache:6379\"}"));
        assert!(!has_url_password("https://example.com/a@b"));
        assert!(!has_url_password("https://user@example.com/"));
    }

    #[test]
    fn unchanged_definition_has_no_changes() {
        let describe: Value =
            serde_json::from_str(include_str!("../tests/fixtures/describe-full.json"))
                .expect("fixture");
        let before = from_describe(&describe).expect("valid");
        assert!(diff(&before, &before).is_empty());
    }
}
