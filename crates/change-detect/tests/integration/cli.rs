//! The `change-detect` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_change-detect")),
        "change-detect",
    );
}

/// No input, whatever it holds, reaches the runner as a workflow command; usage errors are
/// `::error` annotations (issue 17). The inputs come from the clap definition.
#[test]
fn no_input_can_inject_a_workflow_command() {
    let checked = test_support::hostile::check_every_input(
        Path::new(env!("CARGO_BIN_EXE_change-detect")),
        &runner_protocol::cli::command::<change_detect::Cli>(),
        &[],
    );
    println!("{checked:?}");
    assert!(
        checked.echoed > 0 && checked.usage_errors > 0,
        "no hostile value reached the output: nothing was checked ({checked:?})"
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

/// The `git fetch` lines change-detect logs hold the `base` input: they reach the log
/// defused, never as a workflow command (issue 17).
#[test]
fn fetch_lines_holding_inputs_never_become_workflow_commands() {
    let origin = test_support::GitRepo::bare();
    let work = test_support::GitRepo::clone_from(&origin, &[]);
    work.write("services/api/main.rs", "1");
    work.commit("seed");
    work.git(&["push", "-q", "origin", "main"]);
    let checkout = test_support::GitRepo::clone_from(&origin, &["--depth=1"]);
    for base in [
        "v1 ##[warning title=INJECTED]INJECTED",
        "v1\n  ::warning title=INJECTED::INJECTED",
    ] {
        let run = crate::common::detect(checkout.path())
            .env("GITHUB_ACTIONS", "true")
            .args(&[
                "--filters",
                "api: services/api/**",
                "--ref",
                "HEAD",
                "--base",
            ])
            .args(&[base])
            .run();
        assert_ne!(run.code, Some(0), "{}", run.stderr);
        assert!(
            run.stderr.contains("git fetch") && run.stderr.contains("INJECTED"),
            "the fetch line, with the input, is logged: {}",
            run.stderr
        );
        let injected = test_support::hostile::injected_commands(&run.stderr);
        assert!(injected.is_empty(), "{injected:?}\n{}", run.stderr);
    }
}
