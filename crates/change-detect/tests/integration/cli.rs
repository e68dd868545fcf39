//! The `change-detect` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_change-detect")),
        "change-detect",
    );
}

/// The action passes every input as `CHANGE_DETECT_<INPUT>`, empty when not given.
#[test]
fn reads_inputs_from_env_and_the_command_line_wins() {
    let repo = test_support::GitRepo::init();
    repo.write("services/api/main.rs", "1");
    repo.commit("seed");
    repo.write("services/api/main.rs", "2");
    repo.write("docs/a.md", "2");
    repo.git(&["add", "docs/a.md"]);
    let run = crate::common::detect(repo.path())
        .env(
            "CHANGE_DETECT_FILTERS",
            "api: services/api/**\ndocs: docs/**",
        )
        .env("CHANGE_DETECT_BASE", "HEAD")
        .env("CHANGE_DETECT_LIST_FILES", "JSON")
        .env("CHANGE_DETECT_REF", "")
        .env("CHANGE_DETECT_WORKING_DIRECTORY", "")
        .env("CHANGE_DETECT_FILES_DIR", "")
        .env("CHANGE_DETECT_TOKEN", "")
        .run()
        .success();
    assert_eq!(run.output("changes"), r#"["api","docs"]"#);
    assert_eq!(run.files("docs"), ["docs/a.md"]);

    let overridden = crate::common::detect(repo.path())
        .env("CHANGE_DETECT_FILTERS", "api: services/api/**")
        .env("CHANGE_DETECT_BASE", "HEAD")
        .args(&["--filters", "docs: docs/**"])
        .run()
        .success();
    assert_eq!(overridden.output("changes"), r#"["docs"]"#);
    assert!(
        !overridden.outputs.contains_key("docs_files"),
        "list-files defaults to none"
    );
}

#[test]
fn missing_filters_is_a_usage_error_with_a_hint() {
    let repo = test_support::GitRepo::init();
    let run = crate::common::detect(repo.path())
        .args(&["--base=HEAD"])
        .run();
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no filters given"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: pass --filters"),
        "{}",
        run.stderr
    );
}
