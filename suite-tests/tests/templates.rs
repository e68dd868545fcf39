//! action-templates/: the reusable workflows and the workflow-template files keep the rules
//! the JSON schema and zizmor cannot state: `workflow_call` with typed inputs, minimal
//! permissions, checkouts without persisted credentials, third-party actions pinned by SHA,
//! no `${{ }}` inside scripts, and a valid `.properties.json` beside every workflow template.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

const REUSABLE: [&str; 3] = ["monorepo-ci", "bare-metal-release", "ecs-release"];

fn templates_dir() -> PathBuf {
    test_support::workspace_root().join("action-templates")
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `steps[]` entry of every job.
fn steps(workflow: &Yaml) -> Vec<(String, Yaml)> {
    let mut all = Vec::new();
    for (job, body) in workflow["jobs"].as_mapping().expect("jobs") {
        if let Some(steps) = body["steps"].as_sequence() {
            for step in steps {
                all.push((job.as_str().unwrap_or_default().to_owned(), step.clone()));
            }
        }
    }
    all
}

fn is_full_sha(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn reusable_workflows_are_called_with_typed_inputs_and_minimal_permissions() {
    for name in REUSABLE {
        let path = templates_dir().join(format!("{name}.yml"));
        let workflow = yaml(&path);
        let call = &workflow["on"]["workflow_call"];
        let inputs = call["inputs"].as_mapping().expect("workflow_call.inputs");
        assert!(!inputs.is_empty(), "{name}: no inputs");
        for (input, spec) in inputs {
            let kind = spec["type"].as_str().unwrap_or_default();
            assert!(
                ["string", "boolean", "number"].contains(&kind),
                "{name}: input {input:?} has type {kind:?}"
            );
            assert!(
                spec["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: input {input:?} has no description"
            );
        }
        assert_eq!(
            workflow["permissions"],
            Yaml::Mapping(Default::default()),
            "{name}: top-level `permissions: {{}}`"
        );
        for (job, body) in workflow["jobs"].as_mapping().expect("jobs") {
            assert!(
                body["permissions"].is_mapping(),
                "{name}: job {job:?} states its permissions"
            );
            assert!(
                body["timeout-minutes"].is_number(),
                "{name}: job {job:?} has a timeout"
            );
        }
    }
}

#[test]
fn deploy_jobs_run_in_github_environments() {
    let bare_metal = yaml(&templates_dir().join("bare-metal-release.yml"));
    for job in ["staging", "production"] {
        assert!(
            bare_metal["jobs"][job]["environment"]["name"].is_string(),
            "bare-metal-release: {job} uses an environment (approval)"
        );
    }
    let ecs = yaml(&templates_dir().join("ecs-release.yml"));
    assert!(ecs["jobs"]["deploy"]["environment"]["name"].is_string());
}

#[test]
fn steps_pin_third_party_actions_keep_no_credentials_and_put_no_expressions_in_scripts() {
    let mut files: Vec<PathBuf> = REUSABLE
        .iter()
        .map(|name| templates_dir().join(format!("{name}.yml")))
        .collect();
    files.extend(REUSABLE.iter().map(|name| {
        templates_dir()
            .join("workflow-templates")
            .join(format!("{name}.yml"))
    }));
    for path in files {
        let workflow = yaml(&path);
        let file = path.display();
        for (job, step) in steps(&workflow) {
            if let Some(uses) = step["uses"].as_str() {
                let (action, reference) = uses.split_once('@').expect("uses has a ref");
                if let Some(own) = action.strip_prefix("deploy-suite/actions/actions/") {
                    assert_eq!(reference, "v1", "{file}: {job}: {uses}");
                    assert!(
                        test_support::workspace_root()
                            .join("actions")
                            .join(own)
                            .join("action.yml")
                            .is_file(),
                        "{file}: {job}: {uses} names an action this repository has"
                    );
                } else {
                    assert!(
                        is_full_sha(reference),
                        "{file}: {job}: {uses} is not pinned by a full SHA"
                    );
                }
                if action == "actions/checkout" {
                    assert_eq!(
                        step["with"]["persist-credentials"],
                        Yaml::Bool(false),
                        "{file}: {job}: checkout keeps no credentials"
                    );
                }
            }
            if let Some(script) = step["run"].as_str() {
                assert!(
                    !script.contains("${{"),
                    "{file}: {job}: pass values to scripts through env:, not ${{{{ }}}}:\n{script}"
                );
            }
        }
    }
}

#[test]
fn reusable_workflows_use_only_inputs_their_actions_declare() {
    let root = test_support::workspace_root();
    for name in REUSABLE {
        let workflow = yaml(&templates_dir().join(format!("{name}.yml")));
        for (job, step) in steps(&workflow) {
            let Some(own) = step["uses"]
                .as_str()
                .and_then(|uses| uses.strip_prefix("deploy-suite/actions/actions/"))
                .and_then(|rest| rest.split_once('@'))
                .map(|(action, _)| action.to_owned())
            else {
                continue;
            };
            let action = yaml(&root.join("actions").join(&own).join("action.yml"));
            let declared = action["inputs"].as_mapping().expect("action inputs");
            if let Some(with) = step["with"].as_mapping() {
                for key in with.keys() {
                    assert!(
                        declared.contains_key(key),
                        "{name}: {job}: {own} has no input {key:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_workflow_template_has_valid_properties() {
    let dir = templates_dir().join("workflow-templates");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("workflow-templates/")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let workflows: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".yml"))
        .collect();
    let properties: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".properties.json"))
        .collect();
    assert_eq!(workflows, properties, "one properties file per template");
    let mut expected: Vec<&str> = REUSABLE.to_vec();
    expected.sort_unstable();
    assert_eq!(
        workflows, expected,
        "a workflow template per reusable workflow"
    );
    for name in workflows {
        let path = dir.join(format!("{name}.properties.json"));
        let text = std::fs::read_to_string(&path).expect("properties");
        let json: Json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let object = json.as_object().expect("an object");
        for key in object.keys() {
            assert!(
                [
                    "name",
                    "description",
                    "iconName",
                    "categories",
                    "filePatterns",
                    "creator"
                ]
                .contains(&key.as_str()),
                "{name}: unknown property {key:?}"
            );
        }
        for key in ["name", "description"] {
            assert!(
                object
                    .get(key)
                    .and_then(Json::as_str)
                    .is_some_and(|v| !v.is_empty()),
                "{name}: `{key}` is a non-empty string"
            );
        }
        assert!(
            object["iconName"]
                .as_str()
                .is_some_and(|icon| icon.starts_with("octicon ")),
            "{name}: iconName is an octicon (no SVG ships beside the template)"
        );
        for key in ["categories", "filePatterns"] {
            let list = object[key]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {key} list"));
            assert!(!list.is_empty(), "{name}: {key} is empty");
            assert!(
                list.iter().all(Json::is_string),
                "{name}: {key} holds strings"
            );
        }
        // The template calls the reusable workflow of the same name.
        let template = yaml(&dir.join(format!("{name}.yml")));
        let calls: Vec<&str> = template["jobs"]
            .as_mapping()
            .expect("jobs")
            .values()
            .filter_map(|job| job["uses"].as_str())
            .collect();
        assert_eq!(
            calls,
            [format!("$/.github/workflows/{name}.yml").as_str()],
            "{name}"
        );
    }
}
