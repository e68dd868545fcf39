//! The runtime bundle descriptor (`AGENTIC_BUNDLES_JSON`) and its output forms.
//!
//! Every form carries the same JSON text: compact JSON in which `'` is written `\u0027`
//! (valid JSON, the same value), so it can sit inside single quotes in a compose `.env` file,
//! where neither compose nor a POSIX shell interprets anything (`$`, `\`, `#`).

use release_model::{BundleItem, Bundles};
use serde_json::{Map, Value};

/// How bundles reach the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Copied into the processor and exec images: `path` is the bundles root in the image.
    Baked,
    /// Fetched by the runtime itself: `repo`/`ref`/`subdir`/`module`, no `path`.
    Git,
}

fn entry(item: &BundleItem, mode: Mode, bundles_root: &str) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), item.id.clone().into());
    if let Some(name) = &item.name {
        object.insert("name".into(), name.clone().into());
    }
    if let Some(description) = &item.description {
        object.insert("description".into(), description.clone().into());
    }
    if let Some(singleton) = item.singleton {
        object.insert("singleton".into(), singleton.into());
    }
    if mode == Mode::Baked {
        object.insert("path".into(), bundles_root.into());
    }
    object.insert("module".into(), item.module.clone().into());
    object.insert("repo".into(), item.repo.clone().into());
    object.insert("ref".into(), item.git_ref.clone().into());
    if let Some(subdir) = &item.subdir {
        object.insert("subdir".into(), subdir.clone().into());
    }
    if !item.props.is_empty() {
        object.insert("props".into(), Value::Object(item.props.clone()));
    }
    Value::Object(object)
}

/// The runtime descriptor, in descriptor order: `{"default_bundle_id": ..., "bundles": {...}}`.
/// An empty list gives `{"bundles": {}}`.
pub fn runtime_descriptor(bundles: &Bundles, mode: Mode, bundles_root: &str) -> Value {
    let mut object = Map::new();
    if let Some(default) = &bundles.default_bundle_id {
        object.insert("default_bundle_id".into(), default.clone().into());
    }
    let entries: Map<String, Value> = bundles
        .items
        .iter()
        .map(|item| (item.id.clone(), entry(item, mode, bundles_root)))
        .collect();
    object.insert("bundles".into(), Value::Object(entries));
    Value::Object(object)
}

fn quote_safe(json: String) -> String {
    json.replace('\'', "\\u0027")
}

/// Compact or pretty JSON text of `value` (with `'` as `\u0027`).
pub fn json_text(value: &Value, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    quote_safe(text.unwrap_or_default())
}

/// `NAME='<compact json>'`: one line that docker compose (`env_file:`, `--env-file`) and a
/// POSIX shell (`set -a; . ./.env.proc`) both read back as the exact JSON text.
pub fn dotenv_line(name: &str, value: &Value) -> String {
    format!("{name}='{}'", json_text(value, false))
}

/// The ECS container-definition environment entry: `{"name": NAME, "value": "<json>"}`.
pub fn ecs_entry(name: &str, value: &Value, pretty: bool) -> String {
    let entry = serde_json::json!({"name": name, "value": json_text(value, false)});
    json_text(&entry, pretty)
}

/// `text` of a `.env` file with `line` replacing the existing `NAME=` line (or appended).
pub fn update_env_file(text: &str, name: &str, line: &str) -> String {
    let prefix = format!("{name}=");
    let mut replaced = false;
    let mut out: Vec<String> = Vec::new();
    for existing in text.lines() {
        let trimmed = existing.trim_start();
        let key = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        if key.starts_with(&prefix) {
            if !replaced {
                out.push(line.to_owned());
                replaced = true;
            }
        } else {
            out.push(existing.to_owned());
        }
    }
    if !replaced {
        out.push(line.to_owned());
    }
    let mut result = out.join("\n");
    result.push('\n');
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundles() -> Bundles {
        Bundles {
            default_bundle_id: Some("my-bundle@2.0.0".into()),
            items: vec![BundleItem {
                id: "my-bundle@2.0.0".into(),
                name: Some("My Bundle".into()),
                repo: "https://git.example.com/org/my-bundle.git".into(),
                git_ref: "v2.0.0".into(),
                subdir: Some("bundles".into()),
                module: "my-bundle@2.0.0.entrypoint".into(),
                ..BundleItem::default()
            }],
        }
    }

    #[test]
    fn baked_mode_matches_the_documented_example_byte_for_byte() {
        let value = runtime_descriptor(&bundles(), Mode::Baked, "/bundles");
        assert_eq!(
            json_text(&value, false),
            r#"{"default_bundle_id":"my-bundle@2.0.0","bundles":{"my-bundle@2.0.0":{"id":"my-bundle@2.0.0","name":"My Bundle","path":"/bundles","module":"my-bundle@2.0.0.entrypoint","repo":"https://git.example.com/org/my-bundle.git","ref":"v2.0.0","subdir":"bundles"}}}"#
        );
    }

    #[test]
    fn git_mode_has_no_path() {
        let value = runtime_descriptor(&bundles(), Mode::Git, "/bundles");
        assert!(value["bundles"]["my-bundle@2.0.0"].get("path").is_none());
        assert_eq!(value["bundles"]["my-bundle@2.0.0"]["subdir"], "bundles");
    }

    #[test]
    fn empty_bundles_give_an_empty_object_and_no_default() {
        let value = runtime_descriptor(&Bundles::default(), Mode::Baked, "/bundles");
        assert_eq!(json_text(&value, false), r#"{"bundles":{}}"#);
    }

    #[test]
    fn single_quotes_are_escaped_inside_json_strings() {
        let value = serde_json::json!({"name": "Bob's bundle"});
        let text = json_text(&value, false);
        assert_eq!(text, r#"{"name":"Bob\u0027s bundle"}"#);
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), value);
    }

    #[test]
    fn env_files_get_the_line_replaced_or_appended() {
        let text = "A=1\nAGENTIC_BUNDLES_JSON='old'\nB=2\n";
        assert_eq!(
            update_env_file(text, "AGENTIC_BUNDLES_JSON", "AGENTIC_BUNDLES_JSON='new'"),
            "A=1\nAGENTIC_BUNDLES_JSON='new'\nB=2\n"
        );
        assert_eq!(update_env_file("", "X", "X='1'"), "X='1'\n");
    }
}
