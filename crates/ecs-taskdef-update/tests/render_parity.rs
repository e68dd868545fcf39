//! Render parity with aws-actions/amazon-ecs-render-task-definition: every case of its own
//! test suite (index.test.js at tag v1.9.0), replayed through `ecs-taskdef-update render`.
//!
//! The cases are data (`tests/fixtures/render-parity/render-task-definition-v1.9.0.json`):
//! each one's action inputs, its task definition file, and what the action's test expects
//! (the exact rendered JSON, the DescribeTaskDefinition reference, or an error). The inputs go
//! through [`flags_for`], the same mapping as the migration table in the action's README, then
//! through our CLI parser, plan and renderer. A rendered document must equal the expected one
//! as pretty-printed JSON text, key order included (the action compares `JSON.stringify`
//! output). Describe calls go to the crate's scripted API: the action's tests mock
//! DescribeTaskDefinition too, and only the request and the response body matter here.
//!
//! The two documented divergences (the fixture's `divergences`): no task definition input at
//! all renders from the service's current definition; a revision without a family cannot be
//! given, since `family:revision` is one input.

use std::collections::BTreeMap;
use std::path::Path;

use clap::FromArgMatches as _;
use ecs_taskdef_update::replay::{Replay, ScriptedService, VirtualClock};
use ecs_taskdef_update::service_plan::ServicePlan;
use ecs_taskdef_update::{Cli, Command, plan, render_service};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/render-parity/render-task-definition-v1.9.0.json");

/// What an aws-actions input set becomes.
#[derive(Debug)]
enum Mapped {
    /// Our flags.
    Flags(Vec<String>),
    /// A documented divergence (its key in the fixture).
    Divergence(&'static str),
}

/// The migration table, as code: amazon-ecs-render-task-definition inputs -> our flags.
/// `file_path` turns the action's task definition path into one in the test's directory.
fn flags_for(inputs: &BTreeMap<String, String>, file_path: impl Fn(&str) -> String) -> Mapped {
    let get = |name: &str| inputs.get(name).map(String::as_str).unwrap_or_default();
    // index.js: `Number(revision) || null`, so "" and "0" mean no revision.
    let revision = Some(get("task-definition-revision")).filter(|r| !r.is_empty() && *r != "0");
    let mut flags = vec!["--service=web".to_owned()];
    // The action's precedence: file > arn > family[:revision].
    let source = if !get("task-definition").is_empty() {
        Some(file_path(get("task-definition")))
    } else if !get("task-definition-arn").is_empty() {
        Some(get("task-definition-arn").to_owned())
    } else if !get("task-definition-family").is_empty() {
        Some(match revision {
            Some(revision) => format!("{}:{revision}", get("task-definition-family")),
            None => get("task-definition-family").to_owned(),
        })
    } else if revision.is_some() {
        return Mapped::Divergence("revision-alone");
    } else {
        return Mapped::Divergence("no-source");
    };
    flags.extend(source.map(|s| format!("--task-definition={s}")));
    for (theirs, ours) in [
        ("container-name", "container"),
        ("image", "image"),
        ("environment-variables", "env"),
        ("env-files", "env-files"),
        ("log-configuration-log-driver", "log-driver"),
        ("log-configuration-options", "log-options"),
        ("docker-labels", "docker-labels"),
        ("command", "command"),
        ("task-role-arn", "task-role-arn"),
        ("execution-role-arn", "execution-role-arn"),
        ("secrets", "secret"),
    ] {
        if !get(theirs).is_empty() {
            flags.push(format!("--{ours}={}", get(theirs)));
        }
    }
    Mapped::Flags(flags)
}

fn render_args(flags: &[String]) -> ecs_taskdef_update::Args {
    let mut argv = vec!["ecs-taskdef-update".to_owned(), "render".to_owned()];
    argv.extend_from_slice(flags);
    let matches = runner_protocol::cli::command::<Cli>()
        .try_get_matches_from(argv)
        .expect("our CLI accepts every mapped input");
    match Cli::from_arg_matches(&matches)
        .expect("valid flags")
        .command
    {
        Command::Render(args) => args,
        _ => unreachable!("render"),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("serializes")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Renders one service plan against `replay`; the error as its message.
fn render(plan: &ServicePlan, replay: &Replay<'_>) -> Result<Value, String> {
    runtime()
        .block_on(render_service(Some(replay), plan))
        .map(|(_, rendered)| rendered.to_value())
        .map_err(|e| e.to_string())
}

#[test]
fn every_render_task_definition_v1_9_0_test_case_gives_the_expected_result() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let dir = tempfile::tempdir().expect("tempdir");
    let file_path = |name: &str| {
        // `/hello/x.json` (absolute in the action's tests) lives under the temp dir too.
        dir.path()
            .join(name.trim_start_matches('/'))
            .display()
            .to_string()
    };
    for (name, content) in fixture["files"].as_object().expect("files") {
        let path = file_path(name);
        std::fs::create_dir_all(Path::new(&path).parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, pretty(content)).expect("write");
    }
    let describe = fixture["describe_response"].clone();
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 32, "index.test.js v1.9.0 has 32 test() calls");
    let (mut rendered_equal, mut errors, mut describes, mut divergences) = (0, 0, 0, 0);
    for case in cases {
        let title = format!(
            "index.test.js:{} `{}`",
            case["line"],
            case["test"].as_str().expect("title")
        );
        let inputs: BTreeMap<String, String> =
            serde_json::from_value(case["inputs"].clone()).expect("inputs");
        let clock = VirtualClock::default();
        let replay = Replay::new(&clock);
        for reference in [
            "task-definition-family:10",
            "task-definition-family",
            "task-definition-arn",
        ] {
            replay.describe_response(reference, describe.clone());
        }
        let flags = match flags_for(&inputs, file_path) {
            Mapped::Flags(flags) => flags,
            Mapped::Divergence(key) => {
                assert_eq!(case["divergence"].as_str(), Some(key), "{title}");
                assert!(
                    fixture["divergences"][key].is_string(),
                    "{title}: divergence {key} is documented"
                );
                divergences += 1;
                continue;
            }
        };
        let result = plan::from_args(&render_args(&flags), dir.path())
            .map_err(|e| e.to_string())
            .and_then(|plan| render(&plan.services[0], &replay));
        if let Some(fragment) = case["error"].as_str() {
            let error = result.expect_err(&title);
            assert!(
                error.contains(fragment),
                "{title}: `{error}` lacks `{fragment}`"
            );
            errors += 1;
            continue;
        }
        let rendered = result.unwrap_or_else(|e| panic!("{title}: {e}"));
        if let Some(reference) = case["describe"].as_str() {
            assert_eq!(replay.described(), [reference], "{title}");
            describes += 1;
        }
        if let Some(calls) = case["describe_calls"].as_u64() {
            let made = replay.calls().get("DescribeTaskDefinition").copied();
            assert_eq!(made.unwrap_or(0) as u64, calls, "{title}");
        }
        if let Some(expected) = case.get("expect") {
            assert_eq!(pretty(&rendered), pretty(expected), "{title}");
            rendered_equal += 1;
        }
        // jest keeps the object index.js mutated: the next case reads what this one rendered.
        if inputs.get("task-definition").map(String::as_str) == Some("task-definition.json") {
            std::fs::write(file_path("task-definition.json"), pretty(&rendered)).expect("write");
        }
    }
    assert_eq!(
        (rendered_equal, errors, describes, divergences),
        (16, 11, 4, 2),
        "(rendered and equal, errors, describe references, divergences)"
    );
}

#[test]
fn no_source_renders_from_the_services_current_definition_divergence_1() {
    let clock = VirtualClock::default();
    let replay = Replay::new(&clock);
    let current = ecs_taskdef_update::replay::arn("web", 7);
    replay.task_definition(
        "web",
        7,
        serde_json::json!([{"name": "web", "image": "some-other-image"}]),
    );
    replay.service(
        "web",
        ScriptedService {
            timeline: vec![(
                std::time::Duration::ZERO,
                Ok(ecs_taskdef_update::replay::service_state(vec![
                    ecs_taskdef_update::replay::deployment(
                        "ecs-svc/1",
                        "PRIMARY",
                        &current,
                        "COMPLETED",
                        2,
                    ),
                ])),
            )],
            after_rollback: ecs_taskdef_update::replay::AfterRollback::Healthy,
        },
    );
    let args = render_args(&[
        "--service=web".into(),
        "--container=web".into(),
        "--image=nginx:latest".into(),
    ]);
    let plan = plan::from_args(&args, Path::new(".")).expect("plan");
    let rendered = render(&plan.services[0], &replay).expect("renders");
    assert_eq!(replay.described(), [current]);
    assert_eq!(
        rendered["containerDefinitions"][0]["image"],
        Value::from("nginx:latest")
    );
}
