//! The binary against a real `moto_server`: register/describe/update/list and ECR images.
//!
//! moto does not emulate rollouts (UpdateService makes no new deployment, there are no events
//! or tasks); with `MOTO_ECS_SERVICE_RUNNING` equal to the desired count it reports the
//! deployment COMPLETED, which is enough for the request/response paths tested here. The
//! wait/rollback decisions are tested against scripted sequences in the library.

use std::path::Path;

use aws_sdk_ecs::config::{Credentials, Region};
use serde_json::Value;
use test_support::moto::Moto;

const REPOSITORY: &str = "kdcube-chat-proc";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// A cluster `prod` with service `processor` on `proc:1`, and an ECR image tagged
/// `2026.11.24`; returns its digest.
fn seed(moto: &Moto) -> String {
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecr.create_repository()
            .repository_name(REPOSITORY)
            .send()
            .await
            .expect("create repository");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                       "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                        "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"}]
        });
        let put = ecr
            .put_image()
            .repository_name(REPOSITORY)
            .image_manifest(manifest.to_string())
            .image_tag("2026.11.24")
            .send()
            .await
            .expect("put image");
        let digest = put
            .image()
            .and_then(|i| i.image_id())
            .and_then(|i| i.image_digest())
            .expect("digest")
            .to_owned();
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .expect("cluster");
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("proc")
            .image(format!("{REGISTRY}/{REPOSITORY}:1.0"))
            .memory(512)
            .environment(
                aws_sdk_ecs::types::KeyValuePair::builder()
                    .name("LOG_LEVEL")
                    .value("info")
                    .build(),
            )
            .build();
        ecs.register_task_definition()
            .family("proc")
            .container_definitions(container)
            .cpu("256")
            .send()
            .await
            .expect("register");
        ecs.create_service()
            .cluster("prod")
            .service_name("processor")
            .task_definition("proc:1")
            .desired_count(2)
            .send()
            .await
            .expect("service");
        digest
    })
}

fn describe(moto: &Moto, reference: &str) -> Option<Value> {
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let output = ecs
            .describe_task_definition()
            .task_definition(reference)
            .send()
            .await
            .ok()?;
        let definition = output.task_definition()?;
        let container = definition.container_definitions().first()?;
        let env: serde_json::Map<String, Value> = container
            .environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap_or_default().to_owned(),
                    Value::String(kv.value().unwrap_or_default().to_owned()),
                )
            })
            .collect();
        Some(serde_json::json!({
            "image": container.image(),
            "environment": env,
            "cpu": definition.cpu(),
        }))
    })
}

fn service_task_definition(moto: &Moto) -> String {
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let output = ecs
            .describe_services()
            .cluster("prod")
            .services("processor")
            .send()
            .await
            .expect("describe services");
        output.services()[0]
            .task_definition()
            .unwrap_or_default()
            .to_owned()
    })
}

fn tool(moto: &Moto, dir: &Path, args: &[&str]) -> test_support::Output {
    test_support::run(&mut tool_command(moto, dir, args))
}

fn tool_command(moto: &Moto, dir: &Path, args: &[&str]) -> std::process::Command {
    std::fs::write(dir.join("no-aws-config"), "").expect("write");
    std::fs::write(dir.join("no-aws-credentials"), "").expect("write");
    let mut command = test_support::tool_command(env!("CARGO_BIN_EXE_ecs-taskdef-update"));
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--output-format", "json"])
        .args(args)
        .args(["--endpoint-url", &moto.endpoint()]);
    command
}

fn outputs(output: &test_support::Output) -> Value {
    serde_json::from_str(output.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            output.stdout, output.stderr
        )
    })
}

fn write_bundles(dir: &Path) -> String {
    let bundles = "{\n  \"bundles\": {\"kdcube.react\": {\"path\": \"/bundles/react\", \"module\": \"react.entrypoint\"}}\n}\n";
    std::fs::write(dir.join("bundles.json"), bundles).expect("write bundles");
    bundles.to_owned()
}

#[test]
fn deploys_a_new_revision_with_the_bundles_and_a_pinned_digest() {
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let digest = seed(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let bundles = write_bundles(dir.path());
    let output = tool(
        &moto,
        dir.path(),
        &[
            "deploy",
            "--cluster=prod",
            "--service=processor",
            "--container=proc",
            "--image=:2026.11.24",
            "--env=LOG_LEVEL=debug",
            "--env-from-file=AGENTIC_BUNDLES_JSON=bundles.json",
            "--pin-digest",
            "--poll-interval=100ms",
            "--timeout=30s",
        ],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let outputs = outputs(&output);
    let family = "arn:aws:ecs:eu-west-1:123456789012:task-definition/proc";
    assert_eq!(outputs["task-definition-arn"], format!("{family}:2"));
    assert_eq!(
        outputs["previous-task-definition-arn"],
        format!("{family}:1")
    );
    // Typed outputs: an object, not a string holding JSON.
    let digests = outputs["image-digests"].clone();
    assert_eq!(
        digests[format!("{REGISTRY}/{REPOSITORY}:2026.11.24")],
        Value::String(digest.clone())
    );
    assert_eq!(service_task_definition(&moto), format!("{family}:2"));
    let registered = describe(&moto, "proc:2").expect("proc:2 registered");
    assert_eq!(
        registered["image"],
        format!("{REGISTRY}/{REPOSITORY}@{digest}")
    );
    // The body sent is our JSON, not the SDK builder's placeholder: env and cpu made it.
    assert_eq!(registered["environment"]["LOG_LEVEL"], "debug");
    assert_eq!(registered["environment"]["AGENTIC_BUNDLES_JSON"], bundles);
    assert_eq!(registered["cpu"], "256");
    assert!(
        output.stderr.contains("AGENTIC_BUNDLES_JSON"),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("react.entrypoint"),
        "long values are redacted in the diff:\n{}",
        output.stderr
    );
}

#[test]
fn a_missing_ecr_image_fails_before_anything_is_registered() {
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    seed(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tool(
        &moto,
        dir.path(),
        &[
            "deploy",
            "--cluster=prod",
            "--service=processor",
            "--container=proc",
            "--image=:no-such-tag",
        ],
    );
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output.stderr.contains(&format!(
            "image `{REGISTRY}/{REPOSITORY}:no-such-tag` does not exist in ECR"
        )),
        "{}",
        output.stderr
    );
    assert!(describe(&moto, "proc:2").is_none(), "nothing registered");
    assert!(service_task_definition(&moto).ends_with("proc:1"));
}

#[test]
fn render_writes_a_register_input_from_the_services_current_definition() {
    let moto = Moto::start(&[]);
    seed(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tool(
        &moto,
        dir.path(),
        &[
            "render",
            "--cluster=prod",
            "--service=processor",
            "--container=proc",
            "--image=:2026.11.24",
            "--secret=DB_PASSWORD=arn:aws:ssm:eu-west-1:123456789012:parameter/db",
        ],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let path = outputs(&output)["task-definition"]
        .as_str()
        .expect("path")
        .to_owned();
    let rendered: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(path)).expect("read"))
            .expect("json");
    for stripped in ["taskDefinitionArn", "revision", "status", "compatibilities"] {
        assert!(rendered.get(stripped).is_none(), "{stripped} in {rendered}");
    }
    let container = &rendered["containerDefinitions"][0];
    assert_eq!(
        container["image"],
        format!("{REGISTRY}/{REPOSITORY}:2026.11.24")
    );
    assert_eq!(container["secrets"][0]["name"], "DB_PASSWORD");
    assert!(
        describe(&moto, "proc:2").is_none(),
        "render registers nothing"
    );
}

#[test]
fn rollback_command_returns_to_the_previous_revision() {
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    seed(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let deploy = tool(
        &moto,
        dir.path(),
        &[
            "deploy",
            "--cluster=prod",
            "--service=processor",
            "--container=proc",
            "--image=:2026.11.24",
            "--poll-interval=100ms",
        ],
    );
    assert_eq!(deploy.code, Some(0), "{}", deploy.stderr);
    assert!(service_task_definition(&moto).ends_with("proc:2"));
    let output = tool(
        &moto,
        dir.path(),
        &[
            "rollback",
            "--cluster=prod",
            "--service=processor",
            "--poll-interval=100ms",
        ],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(service_task_definition(&moto).ends_with("proc:1"));
    assert!(
        outputs(&output)["task-definition-arn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with("proc:1"))
    );
}

#[test]
fn a_missing_service_is_a_clear_error() {
    let moto = Moto::start(&[]);
    seed(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tool(
        &moto,
        dir.path(),
        &["deploy", "--cluster=prod", "--service=nope"],
    );
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("service `nope` in cluster `prod` is MISSING"),
        "{}",
        output.stderr
    );
}

/// Reads a child's stderr on a thread; `wait_for` blocks (bounded) until a line contains a text.
struct StderrLines {
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl StderrLines {
    fn new(stderr: std::process::ChildStderr) -> Self {
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            seen: String::new(),
        }
    }

    fn wait_for(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(text) {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no line with `{text}` within 60 s; stderr so far:\n{}",
                    self.seen
                ),
            }
        }
    }

    fn rest(mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        self.seen
    }
}

#[test]
fn sigint_rolls_back_and_a_later_sigterm_stops_waiting_for_the_rollback() {
    // With no running tasks moto's deployment never completes: the deploy waits until SIGINT,
    // the rollback waits until SIGTERM (GitHub's cancel sends both, 7.5 s apart).
    let moto = Moto::start(&[]);
    seed(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = test_support::process::spawn(
        tool_command(
            &moto,
            dir.path(),
            &[
                "deploy",
                "--cluster=prod",
                "--service=processor",
                "--container=proc",
                "--image=:2026.11.24",
                "--poll-interval=100ms",
                "--timeout=10m",
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped()),
    );
    let mut stderr = StderrLines::new(child.stderr.take().expect("stderr"));
    stderr.wait_for("updated to");
    let family = "arn:aws:ecs:eu-west-1:123456789012:task-definition/proc";
    assert_eq!(service_task_definition(&moto), format!("{family}:2"));
    test_support::send_signal(&child, "INT");
    stderr.wait_for("rolling back to");
    test_support::send_signal(&child, "TERM");
    let status = test_support::wait_for_exit(
        &mut child,
        std::time::Duration::from_secs(30),
        "ecs-taskdef-update ignored SIGTERM",
    );
    let log = stderr.rest();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)
        .expect("read stdout");
    assert_eq!(status.code(), Some(130), "{log}");
    assert_eq!(
        service_task_definition(&moto),
        format!("{family}:1"),
        "{log}"
    );
    let outputs: Value = serde_json::from_str(stdout.trim()).expect("outputs JSON");
    let result = outputs["result"].clone();
    assert_eq!(result[0]["status"], "rollback-issued", "{log}");
}

/// Registers `proc:2` the way Terraform or CDK would (outside the tool); `deregister` makes it
/// INACTIVE afterwards.
fn register_outside(moto: &Moto, deregister: bool) -> String {
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("proc")
            .image(format!("{REGISTRY}/{REPOSITORY}:2026.11.24"))
            .memory(512)
            .build();
        let arn = ecs
            .register_task_definition()
            .family("proc")
            .container_definitions(container)
            .send()
            .await
            .expect("register")
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("arn")
            .to_owned();
        if deregister {
            ecs.deregister_task_definition()
                .task_definition(&arn)
                .send()
                .await
                .expect("deregister");
        }
        arn
    })
}

#[test]
fn deploys_an_existing_revision_without_registering_one() {
    // amazon-ecs-deploy-task-definition#299 / #882: the revision belongs to Terraform or CDK.
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    seed(&moto);
    let existing = register_outside(&moto, false);
    let dir = tempfile::tempdir().expect("tempdir");
    for reference in ["proc:2", existing.as_str()] {
        let output = tool(
            &moto,
            dir.path(),
            &[
                "deploy",
                "--cluster=prod",
                "--service=processor",
                &format!("--task-definition={reference}"),
                "--register=false",
                "--poll-interval=100ms",
                "--timeout=30s",
            ],
        );
        assert_eq!(output.code, Some(0), "{reference}: {}", output.stderr);
        let outputs = outputs(&output);
        assert_eq!(outputs["task-definition-arn"], existing.as_str());
        assert_eq!(service_task_definition(&moto), existing);
        assert!(describe(&moto, "proc:3").is_none(), "nothing registered");
        if reference == "proc:2" {
            assert!(
                output
                    .stderr
                    .contains(&format!("deploying the existing revision {existing}")),
                "{}",
                output.stderr
            );
            assert!(
                outputs["previous-task-definition-arn"]
                    .as_str()
                    .is_some_and(|arn| arn.ends_with("proc:1"))
            );
        } else {
            // The service already runs it: nothing to deploy, said so, still success.
            assert!(
                output.stderr.contains("nothing to deploy"),
                "{}",
                output.stderr
            );
        }
    }
}

#[test]
fn an_existing_revision_is_checked_before_anything_changes() {
    // moto does not refuse UpdateService to an INACTIVE revision (AWS does): the tool's own
    // check is what stops it here.
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    seed(&moto);
    register_outside(&moto, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 3] = [
        (&["--task-definition=proc:2"], "proc:2 is INACTIVE"),
        (
            &[
                "--task-definition=proc:1",
                "--container=proc",
                "--image=:2026.11.24",
            ],
            "register: false deploys the revision as it is",
        ),
        (&[], "register: false deploys an existing revision"),
    ];
    for (extra, message) in cases {
        let mut args = vec![
            "deploy",
            "--cluster=prod",
            "--service=processor",
            "--register=false",
        ];
        args.extend_from_slice(extra);
        let output = tool(&moto, dir.path(), &args);
        assert_eq!(output.code, Some(2), "{extra:?}: {}", output.stderr);
        assert!(
            output.stderr.contains(message),
            "{extra:?}: {}",
            output.stderr
        );
        assert!(service_task_definition(&moto).ends_with("proc:1"));
        assert!(describe(&moto, "proc:3").is_none(), "nothing registered");
    }
}

/// A FARGATE service `api` on `proc:1` next to the seed's `processor`.
fn fargate_service(moto: &Moto) {
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        aws_sdk_ecs::Client::new(&sdk)
            .create_service()
            .cluster("prod")
            .service_name("api")
            .task_definition("proc:1")
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .desired_count(2)
            .send()
            .await
            .expect("service");
    });
}

/// The tasks moto ran in `prod`: `(task definition, launch type, container overrides)`.
fn tasks_run(moto: &Moto) -> Vec<(String, String, Value)> {
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let arns = ecs
            .list_tasks()
            .cluster("prod")
            .send()
            .await
            .expect("list tasks")
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        // moto gives container `memory` as a number (the ECS model: a string), which the
        // SDK's parser rejects: read the body of the (successful) response as JSON.
        let body: Value = match ecs
            .describe_tasks()
            .cluster("prod")
            .set_tasks(Some(arns))
            .send()
            .await
        {
            // Whether a task shows containers (and so `memory`) depends on the state moto has
            // moved it to: the typed output, when it parses, says the same.
            Ok(output) => serde_json::json!({
                "tasks": output.tasks().iter().map(|task| serde_json::json!({
                    "taskDefinitionArn": task.task_definition_arn(),
                    "launchType": task.launch_type().map(|l| l.as_str()),
                    "overrides": {"containerOverrides": task
                        .overrides()
                        .map(|o| o.container_overrides())
                        .unwrap_or_default()
                        .iter()
                        .map(|c| serde_json::json!({"name": c.name(), "command": c.command()}))
                        .collect::<Vec<_>>()},
                })).collect::<Vec<_>>()
            }),
            Err(error) => {
                let raw = error.raw_response().expect("a response");
                assert!(raw.status().is_success(), "{error:?}");
                serde_json::from_slice(raw.body().bytes().expect("bytes")).expect("json")
            }
        };
        body["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                let overrides: Vec<Value> = t["overrides"]["containerOverrides"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                (
                    t["taskDefinitionArn"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    t["launchType"].as_str().unwrap_or_default().to_owned(),
                    Value::Array(overrides),
                )
            })
            .collect()
    })
}

/// Issue 22 point 1 on moto_server. What moto does: RunTask starts a task (FARGATE needs no
/// container instance), keeps the overrides, and each DescribeTasks call moves it one state on
/// until STOPPED. What it does not: run anything. Its task has one container (the first of the
/// definition) whose exit code is always 0 and no stopCode, so a *non-zero* exit code, a task
/// that fails to start and the timeout are tested on the scripted API (src/fleet_tests.rs);
/// here the passing path and a migration that names a container the task does not have.
#[test]
fn a_migration_runs_on_the_new_revision_before_the_service_update_and_a_failed_one_changes_nothing()
{
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    seed(&moto);
    fargate_service(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let family = "arn:aws:ecs:eu-west-1:123456789012:task-definition/proc";
    let failed = tool(
        &moto,
        dir.path(),
        &[
            "deploy",
            "--cluster=prod",
            "--service=api",
            "--container=proc",
            "--image=:2026.11.24",
            "--migration-command=python -m migrate",
            "--migration-container=migrator",
            "--poll-interval=100ms",
            "--timeout=30s",
        ],
    );
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("migration failed: the task has no container `migrator`"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("has no logConfiguration"),
        "where to look is said: {}",
        failed.stderr
    );
    let api_task_definition = || {
        runtime().block_on(async {
            let sdk = sdk(&moto.endpoint()).await;
            aws_sdk_ecs::Client::new(&sdk)
                .describe_services()
                .cluster("prod")
                .services("api")
                .send()
                .await
                .expect("describe")
                .services()[0]
                .task_definition()
                .unwrap_or_default()
                .to_owned()
        })
    };
    assert_eq!(
        api_task_definition(),
        format!("{family}:1"),
        "no service changed"
    );

    let passed = tool(
        &moto,
        dir.path(),
        &[
            "deploy",
            "--cluster=prod",
            "--service=api",
            "--container=proc",
            "--image=:2026.11.24",
            "--migration-command=[\"python\", \"-m\", \"migrate\", \"--to\", \"head tag\"]",
            "--poll-interval=100ms",
            "--timeout=30s",
        ],
    );
    assert_eq!(passed.code, Some(0), "{}", passed.stderr);
    assert_eq!(api_task_definition(), format!("{family}:3"));
    let log = &passed.stderr;
    let ran = log.find("migration passed").expect("migration passed");
    let updated = log.find("updated to").expect("updated");
    assert!(ran < updated, "{log}");
    let tasks = tasks_run(&moto);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let last = &tasks
        .iter()
        .find(|t| t.0 == format!("{family}:3"))
        .expect("ran on :3");
    assert_eq!(last.1, "FARGATE", "the service's launch type");
    assert_eq!(
        last.2,
        serde_json::json!([{"name": "proc", "command": ["python", "-m", "migrate", "--to", "head tag"]}])
    );
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .expect("clock after 1970")
}

/// A CloudWatch Logs stream with these messages, one millisecond apart.
async fn put_stream(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    messages: &[String],
) {
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("create log stream");
    let start = now_millis() - 60_000;
    let events = messages
        .iter()
        .zip(start..)
        .map(|(message, timestamp)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(timestamp)
                .message(message)
                .build()
                .expect("event")
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("put log events");
}

/// GetLogEvents on moto_server, through the tool's own client: the last `limit` events, oldest
/// first; a stream that does not exist is an error naming the call.
#[test]
fn the_log_tail_is_the_last_events_of_the_cloudwatch_logs_stream() {
    use ecs_taskdef_update::api::{EcsApi, LogStream};

    let moto = Moto::start(&[]);
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        logs.create_log_group()
            .log_group_name("/ecs/api")
            .send()
            .await
            .expect("create log group");
        let messages: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
        put_stream(&logs, "/ecs/api", "ecs/migrator/abc", &messages).await;
        let aws = ecs_taskdef_update::aws::Aws::from_sdk(sdk);
        let stream = LogStream {
            group: "/ecs/api".into(),
            stream: "ecs/migrator/abc".into(),
            region: Some("eu-west-1".into()),
        };
        let tail = aws.log_tail(&stream, 50).await.expect("tail");
        assert_eq!(tail, messages[10..].to_vec());
        let missing = aws
            .log_tail(
                &LogStream {
                    stream: "ecs/migrator/nope".into(),
                    ..stream
                },
                50,
            )
            .await
            .expect_err("no such stream");
        assert!(missing.to_string().contains("GetLogEvents"), "{missing}");
    });
}

/// Issue 22 point 1, the log tail end to end on moto_server: a failing migration (its
/// container `migrator` is not in moto's task: moto's task has only the definition's first
/// container) whose `awslogs` stream `ecs/migrator/<task id>` holds output. moto does not
/// write container output to CloudWatch Logs (it runs nothing), so the test writes the stream
/// once the task exists, while the tool waits for it to stop (moto moves a task one state on
/// per DescribeTasks: four polls, 5 s apart here).
#[test]
fn a_failed_migrations_log_tail_is_in_the_log_and_the_result_output_escaped() {
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    seed(&moto);
    runtime().block_on(async {
        let sdk = sdk(&moto.endpoint()).await;
        let log = |prefix: &str| {
            aws_sdk_ecs::types::LogConfiguration::builder()
                .log_driver(aws_sdk_ecs::types::LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/migrating")
                .options("awslogs-region", "eu-west-1")
                .options("awslogs-stream-prefix", prefix)
                .build()
                .expect("log configuration")
        };
        let container = |name: &str| {
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name(name)
                .image(format!("{REGISTRY}/{REPOSITORY}:2026.11.24"))
                .memory(256)
                .log_configuration(log("ecs"))
                .build()
        };
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecs.register_task_definition()
            .family("mig")
            .container_definitions(container("app"))
            .container_definitions(container("migrator"))
            .send()
            .await
            .expect("register mig:1");
        ecs.create_service()
            .cluster("prod")
            .service_name("migrating")
            .task_definition("mig:1")
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .desired_count(2)
            .send()
            .await
            .expect("service");
        aws_sdk_cloudwatchlogs::Client::new(&sdk)
            .create_log_group()
            .log_group_name("/ecs/migrating")
            .send()
            .await
            .expect("create log group");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tool_command(
        &moto,
        dir.path(),
        &[
            "deploy",
            "--cluster=prod",
            "--service=migrating",
            "--container=app",
            "--image=:2026.11.24",
            "--migration-command=python -m migrate",
            "--migration-container=migrator",
            "--poll-interval=5s",
            "--timeout=60s",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    // The task moto started for the migration (bounded: 30 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let task_id = loop {
        let arns = runtime().block_on(async {
            aws_sdk_ecs::Client::new(&sdk(&moto.endpoint()).await)
                .list_tasks()
                .cluster("prod")
                .send()
                .await
                .expect("list tasks")
                .task_arns()
                .to_vec()
        });
        if let Some(arn) = arns.first() {
            break arn.rsplit('/').next().unwrap_or_default().to_owned();
        }
        if child.try_wait().expect("wait").is_some() {
            let output = child.wait_with_output().expect("output");
            panic!(
                "the tool ended before running the migration: {:?}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(std::time::Instant::now() < deadline, "no task after 30 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let messages = vec![
        "INFO  [alembic.runtime.migration] Running upgrade 9f1 -> 9f2".to_owned(),
        "::set-output name=result::forged".to_owned(),
        "alembic.util.exc.CommandError: Can't locate revision 9f2\n".to_owned(),
    ];
    runtime().block_on(async {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk(&moto.endpoint()).await);
        put_stream(
            &logs,
            "/ecs/migrating",
            &format!("ecs/migrator/{task_id}"),
            &messages,
        )
        .await;
    });
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("migration failed: the task has no container `migrator`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("migration log tail (3 event(s) of ecs/migrator/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("migrating: | alembic.util.exc.CommandError: Can't locate revision 9f2"),
        "{stderr}"
    );
    assert!(
        stderr.lines().all(|l| !l.trim_start().starts_with("::")),
        "nothing from the server reads as a workflow command: {stderr}"
    );
    let stdout = test_support::Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: stderr.clone().into_owned(),
    };
    let result = &outputs(&stdout)["result"];
    let migration = &result[0]["migration"];
    assert_eq!(
        migration["task"].as_str().map(|t| t.ends_with(&task_id)),
        Some(true),
        "{result}"
    );
    assert_eq!(
        migration["log-tail"],
        serde_json::json!([
            messages[0],
            messages[1],
            "alembic.util.exc.CommandError: Can't locate revision 9f2"
        ])
    );
    assert_eq!(migration["exit-codes"], serde_json::json!({"app": 0}));
}
