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
