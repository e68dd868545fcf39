//! Checks where act is more lenient than GitHub, made without act:
//! - act lets a workflow read composite outputs the action.yml does not declare (GitHub drops
//!   them): every `steps.<id>.outputs.<name>` the suite's workflows and the templates read of
//!   one of our actions is declared in its action.yml, and every `with:` key is an input.
//! - `$/` (self-repository refs) is rejected by act, actionlint and GHES: wherever the docs
//!   and workflow templates call a template as `$/.github/workflows/<name>.yml`, the `./` form
//!   stands beside it, and the act suite's caller is the workflow template with `$/` -> `./`.
//!   (GitHub's `##[` rule is checked on act's raw log lines in `log.rs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use test_support::workspace_root;

const TEMPLATES: [&str; 3] = ["monorepo-ci", "bare-metal-release", "ecs-release"];

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Inputs and outputs an action.yml declares.
fn declared(action: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let doc = yaml(&workspace_root().join(format!("actions/{action}/action.yml")));
    let keys = |value: &Value| -> BTreeSet<String> {
        value
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    (keys(&doc["inputs"]), keys(&doc["outputs"]))
}

/// Our action a `uses:` names, in either form (`./actions/x`, `deploy-suite/actions/actions/x@ref`).
fn our_action(uses: &str) -> Option<String> {
    let path = uses
        .strip_prefix("./actions/")
        .or_else(|| uses.strip_prefix("deploy-suite/actions/actions/"))?;
    Some(path.split('@').next().unwrap_or(path).to_owned())
}

/// Every string in a YAML value, recursively.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(map) => map.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        Value::Tagged(tagged) => strings(&tagged.value, out),
        _ => {}
    }
}

/// `steps.<id>.outputs.<name>` references in `text`.
fn output_references(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("steps.") {
        rest = &rest[start + "steps.".len()..];
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let after = &rest[id.len()..];
        if let Some(after) = after.strip_prefix(".outputs.") {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            found.push((id, name));
        }
    }
    found
}

fn workflows_to_check() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("suite-tests/workflows"))
        .expect("suite-tests/workflows")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.extend(
        TEMPLATES
            .iter()
            .map(|t| root.join(format!("action-templates/{t}.yml"))),
    );
    files.sort();
    files
}

#[test]
fn every_output_the_workflows_read_and_every_input_they_pass_is_declared() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in workflows_to_check() {
        let workflow = yaml(&file);
        for (job_name, job) in workflow["jobs"].as_mapping().expect("jobs") {
            let Some(steps) = job["steps"].as_sequence() else {
                continue;
            };
            let mut actions_by_id = BTreeMap::new();
            for step in steps {
                let Some(action) = step["uses"].as_str().and_then(our_action) else {
                    continue;
                };
                let (inputs, _) = declared(&action);
                if let Some(with) = step["with"].as_mapping() {
                    for key in with.keys().filter_map(Value::as_str) {
                        if !inputs.contains(key) {
                            problems.push(format!(
                                "{}: {job_name:?}: `{action}` has no input `{key}`",
                                file.display()
                            ));
                        }
                    }
                }
                if let Some(id) = step["id"].as_str() {
                    actions_by_id.insert(id.to_owned(), action);
                }
            }
            let mut texts = Vec::new();
            strings(job, &mut texts);
            for text in texts {
                for (id, name) in output_references(&text) {
                    let Some(action) = actions_by_id.get(&id) else {
                        continue;
                    };
                    checked += 1;
                    if !declared(action).1.contains(&name) {
                        problems.push(format!(
                            "{}: {job_name:?} reads steps.{id}.outputs.{name}, which {action}/action.yml does not declare (GitHub would give an empty string; act shows it)",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        checked > 20,
        "only {checked} output references found: is the parser still right?"
    );
}

#[test]
fn the_declared_output_check_finds_an_undeclared_output() {
    // The check above must be able to fail: health-gate declares `decision`, not `verdict`.
    let refs = output_references(
        "${{ fromJSON(steps.gate.outputs.report).x }} ${{ steps.gate.outputs.verdict }}",
    );
    assert_eq!(
        refs,
        vec![
            ("gate".to_owned(), "report".to_owned()),
            ("gate".to_owned(), "verdict".to_owned())
        ]
    );
    let (_, outputs) = declared("health-gate");
    assert!(outputs.contains("report") && !outputs.contains("verdict"));
}

/// `$/.github/workflows/<name>.yml` and `./.github/workflows/<name>.yml` occurrences per line.
fn refs(line: &str, prefix: &str) -> Vec<String> {
    let needle = format!("{prefix}.github/workflows/");
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(&needle) {
        // `./` must not be the tail of `$/` or of another path.
        let preceded = line.len() - rest.len() + start;
        let before = line[..preceded].chars().last();
        rest = &rest[start + needle.len()..];
        if prefix == "./"
            && before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.')
        {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| *c != '.' && !c.is_whitespace() && *c != '`')
            .collect();
        found.push(name);
    }
    found
}

#[test]
fn every_self_repository_ref_has_its_dot_slash_form_beside_it() {
    let root = workspace_root();
    let mut files = vec![
        root.join("README.md"),
        root.join("action-templates/README.md"),
    ];
    for template in TEMPLATES {
        files.push(root.join(format!(
            "action-templates/workflow-templates/{template}.yml"
        )));
        files.push(root.join(format!("action-templates/{template}.yml")));
    }
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            for name in refs(line, "$/") {
                if name == "<name>" {
                    continue;
                }
                seen += 1;
                assert!(
                    TEMPLATES.contains(&name.as_str()),
                    "{}:{}: unknown template {name}",
                    file.display(),
                    index + 1
                );
                let near = &lines[index.saturating_sub(3)..(index + 4).min(lines.len())];
                if !near.iter().any(|l| refs(l, "./").contains(&name)) {
                    problems.push(format!(
                        "{}:{}: `$/.github/workflows/{name}.yml` without `./.github/workflows/{name}.yml` within 3 lines (GHES, act, actionlint)",
                        file.display(),
                        index + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(seen >= 6, "only {seen} `$/` refs found");
}

#[test]
fn the_act_suites_template_callers_are_the_workflow_templates_with_dot_slash() {
    let root = workspace_root();
    for template in TEMPLATES {
        let published = yaml(&root.join(format!(
            "action-templates/workflow-templates/{template}.yml"
        )));
        let ours = yaml(&root.join(format!("suite-tests/workflows/{template}-caller.yml")));
        let (_, published_job) = published["jobs"]
            .as_mapping()
            .expect("jobs")
            .iter()
            .next()
            .expect("one job");
        let (_, our_job) = ours["jobs"]
            .as_mapping()
            .expect("jobs")
            .iter()
            .next()
            .expect("one job");
        let published_uses = published_job["uses"].as_str().expect("uses");
        assert_eq!(
            published_uses.replacen("$/", "./", 1),
            our_job["uses"].as_str().expect("uses"),
            "{template}: the act caller runs the `./` form of the published caller"
        );
        assert_eq!(
            published_job["permissions"], our_job["permissions"],
            "{template}: same permissions"
        );
        let keys = |job: &Value, field: &str| -> BTreeSet<String> {
            job[field]
                .as_mapping()
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let missing: Vec<_> = keys(published_job, "with")
            .difference(&keys(our_job, "with"))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{template}: the act caller does not pass {missing:?}"
        );
        assert_eq!(
            keys(published_job, "secrets"),
            keys(our_job, "secrets"),
            "{template}: same secrets"
        );
    }
}
