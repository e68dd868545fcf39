//! Valid and invalid descriptors: the model they load to, and the exact error output.

use std::path::Path;

use release_model::problem::warning_text;
use release_model::{Checks, Shape, validate};
use runner_protocol::Env;

fn fixture(name: &str) -> release_model::Document {
    // Read at run time (cargo sets it for test binaries): a target directory shared with a
    // checkout at another path would keep that path in a binary compiled with `env!`.
    #[allow(clippy::disallowed_methods)]
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf());
    let path = dir.join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    release_model::load(release_model::SourceFile::new(name, text))
}

/// Every problem, rendered as the user sees it (errors first, then warnings).
fn report(name: &str, checks: Checks, env: &Env) -> String {
    let document = fixture(name);
    let problems = validate(&document, checks, env, None).expect("no remote lookup");
    match release_model::into_result(document, &problems) {
        Ok(checked) => {
            let mut text = String::from("valid\n");
            for warning in &checked.warnings {
                text.push_str(&warning_text(warning));
                text.push('\n');
            }
            text
        }
        Err((invalid, warnings)) => {
            let mut text = format!("{invalid}\n");
            for error in &invalid.errors {
                text.push_str(&error.to_text());
                text.push('\n');
            }
            for warning in &warnings {
                text.push_str(&warning_text(warning));
                text.push('\n');
            }
            text
        }
    }
}

#[test]
fn the_issue_example_is_valid_and_loads_every_field() {
    let document = fixture("valid-release.yaml");
    let problems = validate(&document, Checks::default(), &Env::default(), None).expect("ok");
    assert!(problems.is_empty(), "{problems:#?}");
    let release = &document.release;
    assert_eq!(release.shape, Shape::Release);
    assert_eq!(release.release_name.as_deref(), Some("prod-2026-11-24"));
    let platform = release.platform.as_ref().expect("platform");
    assert_eq!(
        (platform.repo.as_str(), platform.git_ref.as_str()),
        ("acme/platform", "v0.3.2")
    );
    assert_eq!(release.bundles.items.len(), 2);
    let first = &release.bundles.items[0];
    assert_eq!(first.folder(), Some("support@3-1"));
    assert_eq!(first.subdir.as_deref(), Some("service/bundles"));
    assert_eq!(
        serde_json::Value::Object(first.props.clone()),
        serde_json::json!({"knowledge": {"repo": "git@github.com:acme/docs.git", "ref": "v12", "token": "env:DOCS_TOKEN"}})
    );
    let second = &release.bundles.items[1];
    assert_eq!(second.singleton, Some(true));
    assert_eq!(
        second.folder(),
        Some("sales@1.0.0"),
        "ids with dots split from the right"
    );
}

#[test]
fn a_bundles_only_file_is_accepted() {
    let document = fixture("valid-bundles-only.yaml");
    let problems = validate(&document, Checks::default(), &Env::default(), None).expect("ok");
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(document.release.shape, Shape::BundlesOnly);
    assert_eq!(document.release.platform, None);
    assert_eq!(document.release.bundles.items[0].id, "my-bundle@2.0.0");
}

#[test]
fn reports_every_problem_of_a_broken_release_at_once() {
    insta::assert_snapshot!(report(
        "invalid-many.yaml",
        Checks::default(),
        &Env::default()
    ));
}

#[test]
fn branch_refs_become_warnings_when_allowed() {
    let checks = Checks {
        allow_branch_refs: true,
        ..Checks::default()
    };
    let text = report("invalid-many.yaml", checks, &Env::default());
    assert!(!text.contains("error: `platform.ref`"), "{text}");
    assert!(
        text.contains("warning: `platform.ref` is the branch `main`"),
        "{text}"
    );
}

#[test]
fn reports_wrong_types_with_positions() {
    insta::assert_snapshot!(report(
        "invalid-types.yaml",
        Checks::default(),
        &Env::default()
    ));
}

#[test]
fn reports_yaml_syntax_errors_with_a_position() {
    insta::assert_snapshot!(report(
        "invalid-syntax.yaml",
        Checks::default(),
        &Env::default()
    ));
}

#[test]
fn reports_empty_and_malformed_fields() {
    insta::assert_snapshot!(report(
        "invalid-empty-fields.yaml",
        Checks::default(),
        &Env::default()
    ));
}

#[test]
fn reports_duplicate_keys() {
    insta::assert_snapshot!(report(
        "invalid-duplicate-key.yaml",
        Checks::default(),
        &Env::default()
    ));
}

#[test]
fn prop_references_are_checked_only_when_asked_and_never_show_values() {
    let env = Env::from_pairs([("PRESENT_TOKEN", "sup3r-s3cret-value")]);
    let unchecked = report("invalid-prop-refs.yaml", Checks::default(), &env);
    assert!(!unchecked.contains("DOCS_TOKEN_UNSET"), "{unchecked}");
    assert!(
        unchecked.contains("invalid environment variable name"),
        "shape is always checked"
    );
    let checks = Checks {
        check_prop_refs: true,
        ..Checks::default()
    };
    let checked = report("invalid-prop-refs.yaml", checks, &env);
    assert!(!checked.contains("sup3r-s3cret-value"), "{checked}");
    insta::assert_snapshot!(checked);
}
