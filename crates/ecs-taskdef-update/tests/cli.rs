//! The `ecs-taskdef-update` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_ecs-taskdef-update")),
        "ecs-taskdef-update",
    );
}

/// No input, whatever it holds, reaches the runner as a workflow command; usage errors are
/// `::error` annotations (issue 17). The inputs come from the clap definition.
#[test]
fn no_input_can_inject_a_workflow_command() {
    let checked = test_support::hostile::check_every_input(
        Path::new(env!("CARGO_BIN_EXE_ecs-taskdef-update")),
        &runner_protocol::cli::command::<ecs_taskdef_update::Cli>(),
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    println!("{checked:?}");
    assert!(
        checked.echoed > 0 && checked.usage_errors > 0,
        "no hostile value reached the output: nothing was checked ({checked:?})"
    );
}

fn render(dir: &Path, document: &serde_json::Value, extra: &[&str]) -> test_support::Output {
    std::fs::write(dir.join("td.json"), document.to_string()).expect("write");
    let mut command = test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"));
    command
        .current_dir(dir)
        .args(["--output-format", "json", "render", "--service=web"])
        .args(["--task-definition=td.json"])
        .args(extra);
    test_support::run(&mut command)
}

#[test]
fn render_from_a_describe_file_needs_no_aws_and_strips_describe_only_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let describe: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/describe-full.json")).expect("fixture");
    let output = render(
        dir.path(),
        &describe,
        &["--container=web", "--image=:2.0", "--env=A=1"],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let rendered: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("ecs-task-definitions/web.json")).expect("read"),
    )
    .expect("json");
    assert!(rendered.get("taskDefinitionArn").is_none() && rendered.get("registeredBy").is_none());
    assert_eq!(rendered["enableFaultInjection"], false);
    assert_eq!(rendered["tags"], describe["tags"]);
    assert_eq!(
        rendered["containerDefinitions"][0]["image"],
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:2.0"
    );
}

#[test]
fn render_rejects_an_unknown_field_by_name_and_a_missing_container() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut describe: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/describe-full.json")).expect("fixture");
    let output = render(dir.path(), &describe, &["--container=nope", "--image=:2"]);
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output.stderr.contains(
            "container `nope` is not in task definition family `web` (containers: web, log-router)"
        ),
        "{}",
        output.stderr
    );
    describe["taskDefinition"]["enableQuantumMode"] = serde_json::json!(true);
    let output = render(dir.path(), &describe, &[]);
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("unknown task definition field `enableQuantumMode`"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_service_name_that_would_leave_the_output_dir_is_refused_issue_25() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a/b");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let describe: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/describe-full.json")).expect("fixture");
    std::fs::write(dir.join("td.json"), describe.to_string()).expect("write");
    let output = test_support::run(
        test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"))
            .current_dir(&dir)
            .args(["render", "--service=../../x", "--task-definition=td.json"]),
    );
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output.stderr.contains(
            "service name `../../x` is not valid: use 1 to 255 letters, digits, `-` and `_`"
        ),
        "{}",
        output.stderr
    );
    // The same name in a deploy file.
    std::fs::write(
        dir.join("deploy.yaml"),
        "services:\n- name: ../../x\n  task-definition: td.json\n",
    )
    .expect("write");
    let output = test_support::run(
        test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"))
            .current_dir(&dir)
            .args(["render", "--deploy-file=deploy.yaml"]),
    );
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("error: service name `../../x` is not valid: use 1 to 255 letters, digits, `-` and `_`\n --> deploy.yaml:2:9\n"),
        "{}",
        output.stderr
    );
    assert!(!root.path().join("a/x.json").exists());
    assert!(!root.path().join("x.json").exists());
}

#[test]
fn diff_hides_secret_looking_values_old_and_new_and_says_how_to_see_them_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut describe: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/describe-full.json")).expect("fixture");
    describe["taskDefinition"]["containerDefinitions"][0]["environment"]
        .as_array_mut()
        .expect("environment")
        .push(serde_json::json!({"name": "DB_PASSWORD", "value": "hunter2"}));
    std::fs::write(dir.path().join("td.json"), describe.to_string()).expect("write");
    let output = test_support::run(
        test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"))
            .current_dir(dir.path())
            .args(["--output-format", "json", "diff", "--service=web"])
            .args(["--task-definition=td.json", "--container=web"])
            .args(["--env=DB_PASSWORD=hunter3\nLOG_LEVEL=debug"]),
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    for text in [&output.stdout, &output.stderr] {
        assert!(
            !text.contains("hunter2") && !text.contains("hunter3"),
            "{text}"
        );
    }
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    let diff = outputs["diff"].as_str().expect("diff");
    assert!(
        diff.contains("web: ~ web: env DB_PASSWORD = <hidden> (was <hidden>)"),
        "{diff}"
    );
    assert!(
        diff.contains("web: ~ web: env LOG_LEVEL = \"debug\" (was \"info\")"),
        "{diff}"
    );
    assert!(
        diff.contains("note: values of secret-looking env names are shown as <hidden>; `ecs-taskdef-update render` writes"),
        "{diff}"
    );
}

#[test]
fn a_malformed_env_line_never_echoes_its_value_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    let describe: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/describe-full.json")).expect("fixture");
    let output = render(
        dir.path(),
        &describe,
        &["--container=web", "--env=DB_PASSWORD hunter2"],
    );
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(!output.stderr.contains("hunter2"), "{}", output.stderr);
    assert!(
        output.stderr.contains(
            "line 1 of --env is not NAME=value (it starts with `DB_PASSWORD`); the rest of the line is not shown"
        ),
        "{}",
        output.stderr
    );
}

#[test]
fn deep_or_huge_deploy_files_are_refused_fast_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deploy = |name: &str| {
        let started = std::time::Instant::now();
        let output = test_support::run(
            test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"))
                .current_dir(dir.path())
                .args(["render", &format!("--deploy-file={name}")]),
        );
        (output, started.elapsed())
    };
    std::fs::write(dir.path().join("deep.yaml"), "[".repeat(200 * 1024)).expect("write");
    let (output, took) = deploy("deep.yaml");
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
    assert!(
        output
            .stderr
            .contains("error: YAML nested more than 64 levels deep\n --> deep.yaml:1:"),
        "{}",
        output.stderr
    );
    let block = "services:\n".to_owned() + &"- ".repeat(100_000) + "x\n";
    std::fs::write(dir.path().join("block.yaml"), block).expect("write");
    let (output, took) = deploy("block.yaml");
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
    assert!(
        output
            .stderr
            .contains("error: YAML nested more than 64 levels deep\n --> block.yaml:2:127\n"),
        "{}",
        output.stderr
    );
    let big = format!("# {}\n", "x".repeat(1023)).repeat(1025);
    std::fs::write(dir.path().join("big.yaml"), big).expect("write");
    let (output, _) = deploy("big.yaml");
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("big.yaml: the file is larger than 1048576 bytes"),
        "{}",
        output.stderr
    );
}

/// An image that is not a valid reference (a newline, a space, `$(…)`) is refused with exit 2
/// and nothing is rendered, before any AWS call could register it (issue 17).
#[test]
fn render_refuses_an_image_that_is_not_a_valid_reference() {
    let describe: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/describe-full.json")).expect("fixture");
    for image in [
        "web:2\n::warning::x",
        "web:2 $(touch pwned)",
        ":2.0 extra",
        "@sha256:nothex",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = render(
            dir.path(),
            &describe,
            &["--container=web", &format!("--image={image}")],
        );
        assert_eq!(output.code, Some(2), "{image:?}: {}", output.stderr);
        assert!(
            output.stderr.contains("is not a valid image reference"),
            "{}",
            output.stderr
        );
        assert!(
            !dir.path().join("ecs-task-definitions").exists(),
            "{image:?}"
        );
        assert!(!dir.path().join("pwned").exists());
    }
}

/// The dry run (`diff`) shows the deploy file's `migration:` block (issue 22 point 1).
#[test]
fn diff_shows_the_deploy_files_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("td.json"),
        include_str!("fixtures/describe-full.json"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "services:\n  - name: web\n    task-definition: td.json\n    containers:\n      - {name: web, tag: '2.0'}\nmigration:\n  command: [python, -m, migrate]\n  timeout: 20m\n",
    )
    .expect("write");
    let output = test_support::run(
        test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"))
            .current_dir(dir.path())
            .args([
                "--output-format",
                "json",
                "diff",
                "--deploy-file=deploy.yaml",
            ]),
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    let diff = outputs["diff"].as_str().expect("diff");
    assert!(
        diff.contains(
            "web: migration before any service is updated: one task on the new revision, \
             container web runs [\"python\",\"-m\",\"migrate\"] (timeout 20m); a non-zero exit code changes no service"
        ),
        "{diff}"
    );
}

/// `ecs-taskdef-update render --deploy-file FILE` on `text`: once for a terminal, once under
/// GitHub Actions (where the error must be an annotation).
fn render_deploy_file(text: &str) -> (String, test_support::Output, test_support::Output) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deploy.yaml");
    std::fs::write(&file, text).expect("write");
    let command = || {
        let mut command = test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"));
        command
            .current_dir(dir.path())
            .arg("render")
            .arg("--deploy-file")
            .arg(&file);
        command
    };
    let terminal = test_support::run(&mut command());
    let actions = test_support::run(command().env("GITHUB_ACTIONS", "true"));
    (file.display().to_string(), terminal, actions)
}

fn assert_annotated(
    (file, terminal, actions): &(String, test_support::Output, test_support::Output),
    (line, column): (u32, u32),
    message: &str,
) {
    assert_eq!(terminal.code, Some(2), "{terminal:?}");
    let at = format!(" --> {file}:{line}:{column}\n");
    assert!(
        terminal.stderr.contains(&format!("error: {message}")) && terminal.stderr.contains(&at),
        "no `{message}` at {file}:{line}:{column} in\n{}",
        terminal.stderr
    );
    assert_eq!(actions.code, Some(2), "{actions:?}");
    let annotation = format!("::error file={file},line={line},col={column}::{message}");
    assert!(
        actions.stdout.contains(&annotation) || actions.stderr.contains(&annotation),
        "no {annotation} in {actions:?}"
    );
}

const TWO_SERVICES: &str = "cluster: prod\nservices:\n  - name: api\n    containers:\n      - {name: app, tag: '2.0'}\n      - {name: sidecar, tag: '2.0'}\n  - name: worker\n    containers:\n      - {name: work, tag: '2.0'}\n";

#[test]
fn a_bad_deploy_file_is_annotated_at_its_line_and_column() {
    // A cross-field problem of the `migration:` block: at the value it is about.
    assert_annotated(
        &render_deploy_file(&format!(
            "{TWO_SERVICES}migration:\n  command: [migrate]\n  service: billing\n"
        )),
        (12, 12),
        "migration.service: `billing` is not a service of this file (services: api, worker)",
    );
    // A field serde refuses: at the key.
    assert_annotated(
        &render_deploy_file("services:\n  - name: api\n    containerz: []\n"),
        (3, 5),
        "services[0]: unknown field `containerz`",
    );
    // A value checked after serde: at the value.
    assert_annotated(
        &render_deploy_file(
            "services:\n  - name: api\n    containers:\n      - name: app\n        secrets: {A: x, B: [y]}\n",
        ),
        (5, 28),
        "services[api].containers[app].secrets.B: must be a string",
    );
}
