//! The fields of the platform's bundles.yaml accepted in release.yaml (issue 20), read the way
//! the platform reads them (kdcube-ai-app `docs/configuration/bundles-descriptor-README.md` and
//! `infra/plugin/bundle_store.py` at eefe18532).

use release_model::{Checks, ItemKind, Severity, validate};
use runner_protocol::Env;

fn load(text: &str) -> release_model::Document {
    release_model::load(release_model::SourceFile::new(
        "bundles.yaml",
        text.to_owned(),
    ))
}

/// `(severity, field, line:column, message)` of every problem.
fn problems(text: &str, checks: Checks) -> Vec<(Severity, String, String, String)> {
    let document = load(text);
    validate(&document, checks, &Env::default(), None)
        .expect("no lookup")
        .iter()
        .map(|p| {
            let d = document.source.diagnostic(p, &document.index);
            let at = d
                .location
                .as_ref()
                .map(|l| format!("{}:{}", l.line.unwrap_or(0), l.column.unwrap_or(0)))
                .unwrap_or_default();
            (p.severity, p.field.to_string(), at, p.message.clone())
        })
        .collect()
}

const ITEMS: &str = "bundles:
  version: \"1\"
  default_bundle_id: \"local@1-0\"
  items:
    - id: \"local@1-0\"
      path: \"/bundles/local\"
      module: \"entrypoint\"
      config: { enabled: no, label: \"no\", on_call: OFF }
    - id: \"kdcube.admin\"
      config:
        enabled: { bundle: false }
    - id: \"git@1-0\"
      singleton: yes
      repo: \"acme/x\"
      ref: \"v1\"
      module: \"git@1-0.entrypoint\"
      props: { legacy: yes }
";

#[test]
fn path_items_config_only_items_and_version_load() {
    let document = load(ITEMS);
    let bundles = &document.release.bundles;
    assert_eq!(bundles.version.as_deref(), Some("1"));
    let kinds: Vec<ItemKind> = bundles.items.iter().map(|i| i.kind()).collect();
    assert_eq!(kinds, [ItemKind::Path, ItemKind::ConfigOnly, ItemKind::Git]);
    assert_eq!(bundles.items[0].path.as_deref(), Some("/bundles/local"));
    // YAML 1.1 booleans as the platform's PyYAML reads them; a quoted one stays a string.
    assert_eq!(
        serde_json::Value::Object(bundles.items[0].props.clone()),
        serde_json::json!({"enabled": false, "label": "no", "on_call": false})
    );
    assert_eq!(bundles.items[2].props["legacy"], true);
    assert_eq!(
        bundles.items[2].singleton,
        Some(true),
        "PyYAML reads `yes` as true"
    );
    let found = problems(ITEMS, Checks::default());
    assert!(found.iter().all(|p| p.0 == Severity::Warning), "{found:#?}");
    assert_eq!(
        found
            .iter()
            .map(|p| (p.1.as_str(), p.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("bundles.items[0].config.enabled", "8:26"),
            ("bundles.items[0].config.on_call", "8:52"),
            ("bundles.items[2].props.legacy", "17:24"),
        ]
    );
}

#[test]
fn git_fields_on_a_path_item_and_config_with_props_are_refused_at_their_place() {
    let text = "bundles:
  items:
    - id: \"a@1\"
      path: \"/bundles/a\"
      module: \"entrypoint\"
      repo: \"acme/x\"
      config: { x: 1 }
      props: { y: 2 }
    - id: \"b@1\"
      name: \"nothing to load\"
";
    let found = problems(text, Checks::default());
    let errors: Vec<(&str, &str)> = found
        .iter()
        .filter(|p| p.0 == Severity::Error)
        .map(|p| (p.1.as_str(), p.2.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("bundles.items[0].repo", "6:7"),
            ("bundles.items[0].props", "8:7"),
            ("bundles.items[1].repo", "9:7"),
            ("bundles.items[1].ref", "9:7"),
            ("bundles.items[1].module", "9:7"),
        ],
        "{found:#?}"
    );
    assert!(
        found[0].3.contains("cannot be given with `path`"),
        "{found:#?}"
    );
}

#[test]
fn a_bare_repository_name_is_a_warning_only_where_the_command_does_not_use_it() {
    let text = "release_name: r\nplatform: { repo: \"kdcube-ai-app\", ref: \"v0.3.2\" }\nbundles:\n  items: []\n";
    let strict = problems(text, Checks::default());
    assert_eq!(strict.len(), 1);
    assert_eq!(strict[0].0, Severity::Error);
    assert_eq!(
        (strict[0].1.as_str(), strict[0].2.as_str()),
        ("platform.repo", "2:19")
    );
    let lenient = problems(
        text,
        Checks {
            pins_unused: true,
            ..Checks::default()
        },
    );
    assert_eq!(lenient.len(), 1);
    assert_eq!(lenient[0].0, Severity::Warning, "{lenient:#?}");
}
