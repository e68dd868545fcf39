//! Seed 004, KDCube: a platform repository and a customer repository, one `release.yaml`.
//!
//! The customer repository (built here) holds release.yaml, the Dockerfiles, the ECS deploy
//! file, the compose deploy file and suite-tests/workflows/seeds/seed-004.yml, a caller of
//! action-templates/ecs-release.yml. The platform (`acme/kdcube-ai-app`) and bundle
//! (`acme/customer-bundles`) repositories are local bare git repositories: the only stand-in
//! (no GitHub here); the checkout stand-in clones them at the refs release.yaml pins.
//!
//! The platform image (`kdcube-platform:<platform tag>`) is built here from busybox-static (no
//! image can be pulled from outside) and pushed to the loopback registry only (no local tag),
//! so the template's `docker build` pulls it for `FROM`. Its `/bin/selftest` is the platform's
//! bundle loader checked once: platform v1.4.0 reads `AGENTIC_BUNDLES_JSON`; v1.5.0 reads only
//! bundles.yaml (as the real platform does from ee8f10248) and fails without one.
//!
//! Run 1 (platform v1.4.0): render -> checkouts -> staged baked bundles -> three images built
//! FROM the platform image and pushed -> ECS on moto_server (ingress, processor, metrics: a new
//! revision each, `AGENTIC_BUNDLES_JSON` only in the processor's) -> the gate (the processor's
//! image loads the descriptor's bundles) -> the compose host over sshd (`.env.ingress`,
//! `.env.proc`, `.env.metrics`; the processor's container reads the descriptor back byte for
//! byte). Run 2 (release.yaml moves to platform v1.5.0): images build and ECS takes the new
//! revisions, the gate fails (the new platform ignores `AGENTIC_BUNDLES_JSON`), every ECS
//! service goes back to the revision it ran before; the compose hosts are never touched.
//! Run 3 (platform v1.4.0 again, and a processor setting that breaks it on the compose hosts):
//! ECS passes, the compose host's new processor never turns healthy, and the env files come
//! back byte for byte with the processor on the image it ran before.
//!
//! moto runs no tasks (MOTO_ECS_SERVICE_RUNNING reports the deployment complete), so the
//! gate runs the processor's released image once on the runner's engine with the descriptor,
//! as its task would start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::engine::{Engine, Project, SERVE};
use test_support::moto::Moto;
use test_support::sshd::Sshd;
use test_support::{free_port, require_program, run};

use crate::common::{Suite, say};
use crate::fixture::git;

const BUNDLE_ID: &str = "support@1-0";
const ENTRYPOINT: &str = "def main():\n    return 'support v1'\n";
const GATEWAY: &str = r#"{"tenant":"acme","project":"kdcube"}"#;
/// (ECS service, task definition family, container, compose service, image, env file).
const SERVICES: [(&str, &str, &str, &str, &str, &str); 3] = [
    (
        "ingress",
        "ingress",
        "chat-ingress",
        "chat-ingress",
        "kdcube-chat-ingress",
        ".env.ingress",
    ),
    (
        "processor",
        "proc",
        "chat-proc",
        "chat-proc",
        "kdcube-chat-proc-bundled",
        ".env.proc",
    ),
    (
        "metrics",
        "metrics",
        "metrics",
        "metrics",
        "kdcube-metrics",
        ".env.metrics",
    ),
];

/// The platform's loader, checked once (see the module doc).
const SELFTEST: &str = r#"#!/bin/sh
if [ "$PLATFORM_LOADER" = yaml ]; then
  descriptor="${BUNDLES_YAML_DESCRIPTOR_PATH:-/config/bundles.yaml}"
  [ -f "$descriptor" ] || { echo "loader: no bundles descriptor at $descriptor (this platform does not read AGENTIC_BUNDLES_JSON)"; exit 1; }
  echo "loader: $descriptor"
  exit 0
fi
[ -n "$AGENTIC_BUNDLES_JSON" ] || { echo "loader: AGENTIC_BUNDLES_JSON is empty"; exit 1; }
pairs=$(printf '%s' "$AGENTIC_BUNDLES_JSON" | grep -o '"path":"[^"]*","module":"[^"]*"')
[ -n "$pairs" ] || { echo "loader: no bundle in AGENTIC_BUNDLES_JSON"; exit 1; }
for pair in $pairs; do
  path=$(printf '%s' "$pair" | sed 's/^"path":"\([^"]*\)".*/\1/')
  module=$(printf '%s' "$pair" | sed 's/.*"module":"\([^"]*\)"$/\1/')
  file="$path/$(printf '%s' "$module" | tr . /).py"
  [ -f "$file" ] || { echo "loader: $module: no $file"; exit 1; }
  echo "loader: $module from $file"
done
"#;

const APPLETS: &[&str] = &[
    "sh", "httpd", "wget", "cat", "env", "printf", "mkdir", "sleep", "kill", "test", "echo",
    "grep", "sed", "tr", "[",
];

/// moto seeding and reading, through boto3 (moto's own dependency, so present wherever
/// moto_server is).
const ECS_PY: &str = r#"
import json, sys
import boto3
mode, endpoint = sys.argv[1], sys.argv[2]
ecs = boto3.client("ecs", region_name="eu-west-1", endpoint_url=endpoint,
                   aws_access_key_id="testing", aws_secret_access_key="testing")
if mode == "seed":
    registry = sys.argv[3]
    ecs.create_cluster(clusterName="kdcube")
    for service, family, container, image in json.loads(sys.argv[4]):
        ecs.register_task_definition(family=family, cpu="256", containerDefinitions=[{
            "name": container, "image": f"{registry}/{image}:v1.3.0", "memory": 512,
            "environment": [{"name": "LOG_LEVEL", "value": "info"}]}])
        ecs.create_service(cluster="kdcube", serviceName=service,
                           taskDefinition=f"{family}:1", desiredCount=1)
elif mode == "definition":
    container = ecs.describe_task_definition(taskDefinition=sys.argv[3])["taskDefinition"]["containerDefinitions"][0]
    print(json.dumps({"image": container["image"]}))
else:
    out = {}
    for service in sys.argv[3].split(","):
        arn = ecs.describe_services(cluster="kdcube", services=[service])["services"][0]["taskDefinition"]
        definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        container = definition["containerDefinitions"][0]
        out[service] = {"arn": arn, "revision": definition["revision"], "image": container["image"],
                        "env": {kv["name"]: kv["value"] for kv in container.get("environment", [])}}
    print(json.dumps(out))
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The platform image: busybox-static, `/bin/serve` (test_support's test server) and
/// `/bin/selftest`, with `loader` (`json` or `yaml`) as PLATFORM_LOADER.
fn platform_image(engine: &Engine, reference: &str, loader: &str) {
    let busybox = require_program("busybox", "apt-get install -y busybox-static");
    let root = tempfile::tempdir().expect("rootfs");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(root.path().join("tmp")).expect("tmp");
    std::fs::copy(&busybox, bin.join("busybox")).expect("busybox");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
    }
    for (name, text) in [("serve", SERVE), ("selftest", SELFTEST)] {
        std::fs::write(bin.join(name), text).expect("script");
        set_mode(&bin.join(name), 0o755);
    }
    let changes = [
        "ENV PATH=/bin".to_owned(),
        format!("ENV PLATFORM_LOADER={loader}"),
        "CMD [\"/bin/serve\"]".to_owned(),
    ];
    engine.import(root.path(), reference, &changes);
    engine.push_only(reference);
}

/// A bare repository `remotes/<name>` whose history is `commits` (files, tag), in order.
fn bare_repo(remotes: &Path, name: &str, commits: &[(&[(&str, &str)], &str)]) {
    let work = remotes.join(format!("{name}.work"));
    std::fs::create_dir_all(&work).expect("work");
    git(&work, &["init", "-q", "-b", "main"]);
    for (files, tag) in commits {
        for (path, text) in *files {
            write(&work.join(path), text);
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", tag]);
        git(&work, &["tag", tag]);
    }
    let bare = remotes.join(name);
    let cloned = run(Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(&bare));
    assert_eq!(cloned.code, Some(0), "git clone --bare: {}", cloned.stderr);
    std::fs::remove_dir_all(&work).expect("rm work");
}

fn ecs(mode: &str, args: &[&str]) -> String {
    require_program(
        "python3",
        "scripts/test installs moto (pip install 'moto[server]')",
    );
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(ECS_PY)
        .arg(mode)
        .args(args));
    assert_eq!(
        out.code,
        Some(0),
        "boto3 against moto ({mode}): {}\n(boto3 comes with moto: pip install 'moto[server]')",
        out.stderr
    );
    out.stdout
}

/// Per ECS service: the task definition it runs (revision, image, environment).
fn ecs_services(moto: &Moto) -> serde_json::Value {
    let out = ecs("describe", &[&moto.endpoint(), "ingress,processor,metrics"]);
    serde_json::from_str(&out).expect("describe JSON")
}

/// The customer repository: release.yaml, Dockerfiles, deploy files, the workflows.
struct Customer {
    path: PathBuf,
    commits: std::cell::Cell<usize>,
}

impl Customer {
    fn head(&self) -> String {
        git(&self.path, &["rev-parse", "HEAD"])
    }

    fn event(&self, before: &str) -> PathBuf {
        let number = self.commits.get() + 1;
        self.commits.set(number);
        let after = self.head();
        let event = self
            .path
            .parent()
            .expect("dir")
            .join(format!("push-004-{number}.json"));
        write(
            &event,
            &format!(
                "{{\"ref\":\"refs/heads/main\",\"before\":\"{before}\",\"after\":\"{after}\",\"forced\":false,\"repository\":{{\"default_branch\":\"main\",\"full_name\":\"acme/kdcube-customer\"}},\"head_commit\":{{\"id\":\"{after}\"}}}}"
            ),
        );
        event
    }
}

fn release_yaml(platform_tag: &str) -> String {
    format!(
        "# The release: the platform tag and the bundles, pinned.\n\
         release_name: \"kdcube-2026-12-07\"\n\
         platform: {{ repo: \"acme/kdcube-ai-app\", ref: \"{platform_tag}\" }}\n\
         bundles:\n  default_bundle_id: \"{BUNDLE_ID}\"\n  items:\n    - id: \"{BUNDLE_ID}\"\n      \
         name: \"Support assistant\"\n      repo: \"git@github.com:acme/customer-bundles.git\"\n      \
         ref: \"bundles-v2026.12.01\"\n      subdir: \"bundles\"\n      module: \"{BUNDLE_ID}.entrypoint\"\n"
    )
}

/// The compose host's side: project dir, ports per service.
struct ComposeHost {
    dir: PathBuf,
    state: PathBuf,
    ports: Vec<(&'static str, u16)>,
    project: Project,
}

impl ComposeHost {
    fn port(&self, service: &str) -> u16 {
        self.ports
            .iter()
            .find(|(name, _)| *name == service)
            .expect("service")
            .1
    }

    fn get(&self, service: &str, path: &str) -> String {
        let answer = crate::probe::get(
            SocketAddr::from(([127, 0, 0, 1], self.port(service))),
            path,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{service} {path}: {e}"));
        assert_eq!(answer.status, 200, "{service} {path}: {answer:?}");
        answer.body
    }

    fn env_files(&self) -> Vec<(String, Vec<u8>)> {
        [".env", ".env.ingress", ".env.proc", ".env.metrics"]
            .iter()
            .map(|name| {
                (
                    (*name).to_owned(),
                    std::fs::read(self.dir.join(name)).expect("env file"),
                )
            })
            .collect()
    }
}

fn compose_host(engine: &Engine, dir: &Path, name: &str, registry: &str) -> ComposeHost {
    let project_dir = dir.join("ec2/kdcube");
    let healthcheck = r#"{ test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:$$PORT/health"], interval: 200ms, timeout: 2s, retries: 3 }"#;
    let mut compose = String::from("services:\n");
    let mut env = String::new();
    let mut ports = Vec::new();
    for (_, _, _, service, _, env_file) in SERVICES {
        let port = free_port();
        ports.push((service, port));
        let var = format!("{}_IMAGE", service.replace('-', "_").to_uppercase());
        compose.push_str(&format!(
            "  {service}:\n    image: ${{{var}}}\n    network_mode: host\n    env_file: [{env_file}]\n    \
             environment: {{ PORT: \"{port}\", REPLICA: {service} }}\n    stop_grace_period: 5s\n    healthcheck: {healthcheck}\n"
        ));
        // Before the first release from release.yaml, the hosts ran the plain platform.
        env.push_str(&format!("{var}={registry}/kdcube-platform:v1.4.0\n"));
    }
    write(&project_dir.join("docker-compose.yaml"), &compose);
    write(&project_dir.join(".env"), &env);
    write(
        &project_dir.join(".env.ingress"),
        "# ingress\nGATEWAY_CONFIG_JSON='{\"tenant\":\"acme\",\"project\":\"old\"}'\n",
    );
    write(
        &project_dir.join(".env.proc"),
        "# processor\nGATEWAY_CONFIG_JSON='{\"tenant\":\"acme\",\"project\":\"old\"}'\nBUNDLES_FORCE_ENV_ON_STARTUP=0\n",
    );
    write(
        &project_dir.join(".env.metrics"),
        "# metrics\nMETRICS_EXPORT=0\n",
    );
    let project = Project::new(engine, name, &project_dir);
    project.run(&["up", "-d", "--wait"]);
    ComposeHost {
        dir: project_dir,
        state: dir.join("ec2/state"),
        ports,
        project,
    }
}

fn customer_repo(dir: &Path, registry: &str, engine: &Engine, host: &ComposeHost) -> Customer {
    let root = test_support::workspace_root();
    let path = dir.join("customer");
    crate::fixture::copy(
        &root.join("action-templates/ecs-release.yml"),
        &path.join(".github/workflows/ecs-release.yml"),
    );
    crate::fixture::copy(
        &root.join("suite-tests/workflows/seeds/seed-004.yml"),
        &path.join(".github/workflows/seed-004.yml"),
    );
    write(&path.join("release.yaml"), &release_yaml("v1.4.0"));
    let from = "ARG REGISTRY\nARG PLATFORM_TAG\nFROM ${REGISTRY}/kdcube-platform:${PLATFORM_TAG}\n";
    write(
        &path.join("deploy/docker/kdcube-chat-ingress.Dockerfile"),
        &format!(
            "{from}COPY checkouts/platform/VERSION /etc/kdcube/platform-version\nENV KDCUBE_COMPONENT=ingress\n"
        ),
    );
    write(
        &path.join("deploy/docker/kdcube-metrics.Dockerfile"),
        &format!(
            "{from}COPY checkouts/platform/VERSION /etc/kdcube/platform-version\nENV KDCUBE_COMPONENT=metrics\n"
        ),
    );
    write(
        &path.join("deploy/docker/kdcube-chat-proc-bundled.Dockerfile"),
        &format!(
            "{from}COPY build/proc/bundles /bundles\nENV AGENTIC_BUNDLES_ROOT=/bundles KDCUBE_COMPONENT=proc\n"
        ),
    );
    write(&path.join("deploy/gateway.json"), GATEWAY);
    write(
        &path.join("deploy/ecs.yaml"),
        &format!(
            "cluster: kdcube\nservices:\n  - name: processor\n    containers:\n      - name: chat-proc\n        \
             image: {registry}/kdcube-chat-proc-bundled:@SHA@\n        env:\n          AGENTIC_BUNDLES_ROOT: /bundles\n          \
             BUNDLES_FORCE_ENV_ON_STARTUP: \"1\"\n        env-from-file:\n          AGENTIC_BUNDLES_JSON: ../out/bundles.json\n          \
             GATEWAY_CONFIG_JSON: gateway.json\n  - name: ingress\n    containers:\n      - name: chat-ingress\n        \
             image: {registry}/kdcube-chat-ingress:@TAG@\n        env-from-file:\n          GATEWAY_CONFIG_JSON: gateway.json\n  \
             - name: metrics\n    containers:\n      - name: metrics\n        image: {registry}/kdcube-metrics:@TAG@\n        \
             env-from-file:\n          GATEWAY_CONFIG_JSON: gateway.json\n"
        ),
    );
    // The gate: the processor's released image loads the descriptor's bundles.
    write(
        &path.join("deploy/gate.yaml"),
        &format!(
            "checks:\n  - name: processor loads its bundles\n    attempt_timeout: 30s\n    command:\n      \
             shell: docker run --rm --network none -e AGENTIC_BUNDLES_JSON=\"$(cat out/bundles.json)\" {registry}/kdcube-chat-proc-bundled:@SHA@ /bin/selftest\n    \
             readiness: {{ interval: 1s, deadline: 30s, fatal: [exit_status] }}\n"
        ),
    );
    write(
        &path.join("deploy/proc-gate.yaml"),
        &format!(
            "checks:\n  - name: processor\n    http: {{ url: 'http://127.0.0.1:{}/health' }}\n    readiness: {{ interval: 100ms, deadline: 20s }}\n",
            host.port("chat-proc")
        ),
    );
    write(
        &path.join("deploy/compose.yaml"),
        &format!(
            "project_dir: \"{dir}\"\nproject_name: {project}\nremote_env:\n  DOCKER_HOST: \"{docker_host}\"\n\
             wait_timeout: 30s\nup_timeout: 90s\nenv_files:\n  - path: .env.ingress\n    set:\n      \
             GATEWAY_CONFIG_JSON: {{ file: gateway.json }}\n  - path: .env.proc\n    set:\n      \
             GATEWAY_CONFIG_JSON: {{ file: gateway.json }}\n      AGENTIC_BUNDLES_JSON: {{ file: ../out/bundles.json }}\n      \
             BUNDLES_FORCE_ENV_ON_STARTUP: \"1\"\n  - path: .env.metrics\n    set:\n      \
             GATEWAY_CONFIG_JSON: {{ file: gateway.json }}\n      METRICS_EXPORT: \"1\"\nservices:\n  \
             - name: chat-proc\n    image: {{ ref: \"{registry}/kdcube-chat-proc-bundled:@SHA@\", var: CHAT_PROC_IMAGE }}\n    gate: proc-gate.yaml\n  \
             - name: chat-ingress\n    image: {{ ref: \"{registry}/kdcube-chat-ingress:@TAG@\", var: CHAT_INGRESS_IMAGE }}\n  \
             - name: metrics\n    image: {{ ref: \"{registry}/kdcube-metrics:@TAG@\", var: METRICS_IMAGE }}\n",
            dir = host.dir.display(),
            project = host.project.name(),
            docker_host = engine.host(),
        ),
    );
    write(&path.join(".gitignore"), "out/\nbuild/\ncheckouts/\n");
    git(&path, &["init", "-q", "-b", "main"]);
    git(&path, &["add", "-A"]);
    git(&path, &["commit", "-q", "-m", "release kdcube-2026-12-07"]);
    Customer {
        path,
        commits: std::cell::Cell::new(0),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[test]
fn seed_004_release_yaml_to_images_ecs_on_moto_and_compose_hosts_with_an_ecs_and_a_compose_rollback()
 {
    let started = Instant::now();
    let suite = Suite::start();
    let engine = Engine::start();
    let moto = Moto::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]);
    let sshd = Sshd::start();
    let org = unique("s004");
    let registry = format!("{}/{org}", engine.registry());
    let mut summary = vec![format!(
        "seed 004 (KDCube: ECS on moto + EC2 compose), setup {:.1} s",
        started.elapsed().as_secs_f64()
    )];

    // The platform's images (two releases) in the registry; the platform and bundle
    // repositories as bare repositories.
    platform_image(
        &engine,
        &format!("{registry}/kdcube-platform:v1.4.0"),
        "json",
    );
    platform_image(
        &engine,
        &format!("{registry}/kdcube-platform:v1.5.0"),
        "yaml",
    );
    let remotes = suite.dir.path().join("remotes");
    bare_repo(
        &remotes,
        "acme/kdcube-ai-app",
        &[
            (&[("VERSION", "1.4.0\n")], "v1.4.0"),
            (&[("VERSION", "1.5.0\n")], "v1.5.0"),
        ],
    );
    bare_repo(
        &remotes,
        "acme/customer-bundles",
        &[(
            &[(&format!("bundles/{BUNDLE_ID}/entrypoint.py"), ENTRYPOINT)],
            "bundles-v2026.12.01",
        )],
    );
    let services: Vec<(&str, &str, &str, &str)> = SERVICES
        .iter()
        .map(|(service, family, container, _, image, _)| (*service, *family, *container, *image))
        .collect();
    ecs(
        "seed",
        &[
            &moto.endpoint(),
            &registry,
            &serde_json::to_string(&services).expect("json"),
        ],
    );
    let host = compose_host(&engine, suite.dir.path(), &org, &registry);
    let repo = customer_repo(suite.dir.path(), &registry, &engine, &host);
    let vars = vec![
        ("REGISTRY".to_owned(), registry.clone()),
        ("COMPOSE_HOSTS".to_owned(), sshd.host("root")),
        (
            "COMPOSE_STATE_DIR".to_owned(),
            host.state.display().to_string(),
        ),
        ("DEPLOY_KNOWN_HOSTS".to_owned(), sshd.known_hosts_line()),
    ];
    let docker_config = suite.dir.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).expect("docker config");
    let endpoint = moto.endpoint();
    let docker_config = docker_config.display().to_string();
    let extra_env: Vec<(String, String)> = [
        ("DOCKER_HOST", engine.host()),
        ("DOCKER_CONFIG", docker_config.as_str()),
        // The ECS and ECR endpoint of ecs-taskdef-update (the AWS SDK's own variable).
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .collect();
    summary.push(format!(
        "  setup with the platform images, bare repos, moto, the compose host: {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // Run 1: platform v1.4.0, bundles baked into the processor.
    let sha1 = repo.head();
    let run_started = Instant::now();
    let (log, _) = suite.act_in(
        &repo.path,
        &repo.event(&"0".repeat(40)),
        vars.clone(),
        &sshd.user_key(),
        "",
        extra_env.clone(),
    );
    let run1 = run_started.elapsed();
    let jobs = log.job_results();
    for job in ["render", "sources", "images", "deploy", "compose"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "{job}: {jobs:?}\n{}\nsshd: {}",
            log.tail(),
            sshd.log()
        );
    }
    // The images: FROM the platform image (its layers first), in the registry.
    let platform_layers = engine.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &format!("{registry}/kdcube-platform:v1.4.0"),
    ]);
    let platform_layers: Vec<String> = serde_json::from_str(&platform_layers).expect("layers");
    for (_, _, _, _, image, _) in SERVICES {
        let tag = if image == "kdcube-chat-proc-bundled" {
            sha1.as_str()
        } else {
            "v1.4.0"
        };
        let reference = format!("{registry}/{image}:{tag}");
        let layers: Vec<String> = serde_json::from_str(&engine.run(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            &reference,
        ]))
        .expect("layers");
        assert!(
            layers.starts_with(&platform_layers) && layers.len() > platform_layers.len(),
            "{reference} is built FROM the platform image: {layers:?} vs {platform_layers:?}"
        );
        let digests = engine.run(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &reference,
        ]);
        assert!(
            digests.contains(&format!("{registry}/{image}@sha256:")),
            "{reference} was pushed to the loopback registry: {digests}"
        );
    }
    let baked = engine.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("{registry}/kdcube-chat-proc-bundled:{sha1}"),
        "cat",
        &format!("/bundles/{BUNDLE_ID}/entrypoint.py"),
    ]);
    assert_eq!(baked, ENTRYPOINT.trim_end(), "the bundle is baked in");
    // ECS: a new revision per service; the descriptor only in the processor's.
    let ecs1 = ecs_services(&moto);
    let descriptor = ecs1["processor"]["env"]["AGENTIC_BUNDLES_JSON"]
        .as_str()
        .unwrap_or_else(|| panic!("the processor has AGENTIC_BUNDLES_JSON: {ecs1}"))
        .to_owned();
    assert!(
        descriptor.contains(&format!("\"module\":\"{BUNDLE_ID}.entrypoint\"")),
        "{descriptor}"
    );
    for (service, _, _, _, image, _) in SERVICES {
        let definition = &ecs1[service];
        assert_eq!(definition["revision"], 2, "{service}: {ecs1}");
        let tag = if service == "processor" {
            sha1.as_str()
        } else {
            "v1.4.0"
        };
        assert_eq!(
            definition["image"],
            format!("{registry}/{image}:{tag}"),
            "{service}"
        );
        assert_eq!(
            definition["env"]["GATEWAY_CONFIG_JSON"], GATEWAY,
            "{service}"
        );
        assert_eq!(definition["env"]["LOG_LEVEL"], "info", "{service}: kept");
        if service != "processor" {
            assert!(
                definition["env"].get("AGENTIC_BUNDLES_JSON").is_none(),
                "{service} must not get the descriptor: {definition}"
            );
        }
    }
    // The compose host: the processor's container reads the descriptor back byte for byte.
    // Both come from out/bundles.json: ecs-taskdef-update's env-from-file keeps the file's
    // final newline, ssh-deploy's `{ file: }` drops it (compose's dotenv would not keep it).
    assert_eq!(
        host.get("chat-proc", "/bundles.json"),
        descriptor.strip_suffix('\n').unwrap_or(&descriptor)
    );
    let proc_env = host.get("chat-proc", "/env.txt");
    assert!(
        proc_env.contains("BUNDLES_FORCE_ENV_ON_STARTUP=1\n"),
        "{proc_env}"
    );
    assert!(
        proc_env.contains(&format!("GATEWAY_CONFIG_JSON={GATEWAY}\n")),
        "{proc_env}"
    );
    for service in ["chat-ingress", "metrics"] {
        let env = host.get(service, "/env.txt");
        assert!(!env.contains("AGENTIC_BUNDLES_JSON"), "{service}: {env}");
        assert!(
            env.contains(&format!("GATEWAY_CONFIG_JSON={GATEWAY}\n")),
            "{service}: {env}"
        );
    }
    for (_, _, _, service, image, env_file) in SERVICES {
        let tag = if service == "chat-proc" {
            sha1.as_str()
        } else {
            "v1.4.0"
        };
        assert_eq!(
            host.project.image_of(service),
            engine.image_id(&format!("{registry}/{image}:{tag}")),
            "{service} runs the new image"
        );
        let text = std::fs::read_to_string(host.dir.join(env_file)).expect("env file");
        assert_eq!(
            text.contains("AGENTIC_BUNDLES_JSON"),
            service == "chat-proc",
            "{env_file}:\n{text}"
        );
    }
    summary.push(format!(
        "  run 1  platform v1.4.0 + {BUNDLE_ID}: 3 images FROM the platform image pushed, ECS ingress/processor/metrics -> revision 2 (descriptor in the processor only), gate ok, compose host .env.ingress/.env.proc/.env.metrics + 3 services up: {:.1} s",
        run1.as_secs_f64()
    ));

    // Run 2: release.yaml moves to platform v1.5.0, which reads only bundles.yaml.
    let compose_before = host.env_files();
    let containers_before: Vec<Option<String>> = SERVICES
        .iter()
        .map(|s| host.project.container(s.3))
        .collect();
    let before = repo.head();
    write(&repo.path.join("release.yaml"), &release_yaml("v1.5.0"));
    git(&repo.path, &["commit", "-q", "-am", "platform v1.5.0"]);
    let sha2 = repo.head();
    let run_started = Instant::now();
    let (log, gate_failed) = suite.act_in(
        &repo.path,
        &repo.event(&before),
        vars.clone(),
        &sshd.user_key(),
        "Roll every service back",
        extra_env.clone(),
    );
    let ended = Instant::now();
    let run2 = run_started.elapsed();
    let jobs = log.job_results();
    for job in ["render", "sources", "images"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "{job}: {jobs:?}\n{}",
            log.tail()
        );
    }
    assert_eq!(
        jobs.get("deploy").map(String::as_str),
        Some("failure"),
        "{jobs:?}\n{}",
        log.tail()
    );
    assert_ne!(jobs.get("compose").map(String::as_str), Some("success"));
    assert!(
        log.contains("no bundles descriptor at /config/bundles.yaml"),
        "the gate's failure names the cause:\n{}",
        log.tail()
    );
    assert_eq!(
        log.step_result("deploy", &["rollback"]).as_deref(),
        Some("success"),
        "{}",
        log.tail()
    );
    let ecs2 = ecs_services(&moto);
    for (service, family, _, _, _, _) in SERVICES {
        assert_eq!(
            ecs2[service]["arn"], ecs1[service]["arn"],
            "{service} runs the revision it ran before: {ecs2}"
        );
        let third: serde_json::Value = serde_json::from_str(&ecs(
            "definition",
            &[&moto.endpoint(), &format!("{family}:3")],
        ))
        .expect("definition JSON");
        let tag = if service == "processor" {
            sha2.as_str()
        } else {
            "v1.5.0"
        };
        assert!(
            third["image"]
                .as_str()
                .is_some_and(|image| image.ends_with(&format!(":{tag}"))),
            "{family}:3 was registered with the new image: {third}"
        );
    }
    assert_eq!(
        host.env_files(),
        compose_before,
        "the compose hosts were not touched"
    );
    let containers_after: Vec<Option<String>> = SERVICES
        .iter()
        .map(|s| host.project.container(s.3))
        .collect();
    assert_eq!(containers_after, containers_before);
    let gate_failed = gate_failed.expect("the rollback step started");
    summary.push(format!(
        "  run 2  platform v1.5.0 ({}): images pushed, ECS -> revision 3, gate failed (v1.5.0 reads only bundles.yaml), every ECS service back on revision 2; compose hosts untouched: {:.1} s; rollback step start -> run end (services confirmed on revision 2): {} ms",
        &sha2[..12],
        run2.as_secs_f64(),
        ended.saturating_duration_since(gate_failed).as_millis()
    ));
    // Run 3: back to platform v1.4.0, with a processor setting that breaks it on the compose
    // hosts (its health check fails there): ECS passes its gate, the compose host's processor
    // never turns healthy, and ssh-deploy puts the env files and the image tags back.
    let compose_before = host.env_files();
    let proc_image_before = host.project.image_of("chat-proc");
    let bundles_before = host.get("chat-proc", "/bundles.json");
    let before = repo.head();
    write(&repo.path.join("release.yaml"), &release_yaml("v1.4.0"));
    let compose_file = repo.path.join("deploy/compose.yaml");
    let text = std::fs::read_to_string(&compose_file).expect("compose.yaml");
    let line = "      BUNDLES_FORCE_ENV_ON_STARTUP: \"1\"\n";
    assert!(text.contains(line), "{text}");
    std::fs::write(
        &compose_file,
        text.replacen(line, &format!("{line}      FAIL_HEALTH: chat-proc\n"), 1),
    )
    .expect("compose.yaml");
    git(
        &repo.path,
        &[
            "commit",
            "-q",
            "-am",
            "platform v1.4.0 again; processor: FAIL_HEALTH",
        ],
    );
    let sha3 = repo.head();
    let run_started = Instant::now();
    let (log, rolling_back) = suite.act_in(
        &repo.path,
        &repo.event(&before),
        vars,
        &sshd.user_key(),
        "rolling back: env files and image tags",
        extra_env.clone(),
    );
    let ended = Instant::now();
    let run3 = run_started.elapsed();
    let jobs = log.job_results();
    assert_eq!(
        jobs.get("deploy").map(String::as_str),
        Some("success"),
        "{jobs:?}\n{}",
        log.tail()
    );
    assert_eq!(
        jobs.get("compose").map(String::as_str),
        Some("failure"),
        "{jobs:?}\n{}",
        log.tail()
    );
    let ecs3 = ecs_services(&moto);
    assert_eq!(ecs3["processor"]["revision"], 4, "{ecs3}");
    assert_eq!(
        ecs3["processor"]["image"],
        format!("{registry}/kdcube-chat-proc-bundled:{sha3}")
    );
    assert_eq!(
        host.env_files(),
        compose_before,
        ".env, .env.ingress, .env.proc, .env.metrics restored byte for byte"
    );
    assert_eq!(
        host.project.image_of("chat-proc"),
        proc_image_before,
        "the processor runs the image it ran before"
    );
    assert_eq!(
        host.get("chat-proc", "/bundles.json"),
        bundles_before,
        "and serves again with the descriptor it had"
    );
    let rolling_back = rolling_back.expect("ssh-deploy said it rolled back");
    summary.push(format!(
        "  run 3  platform v1.4.0 + FAIL_HEALTH for the processor ({}): ECS -> revision 4, gate ok; compose host: chat-proc unhealthy, env files and image tags restored, chat-proc back on its image: {:.1} s; rolling back -> run end: {} ms",
        &sha3[..12],
        run3.as_secs_f64(),
        ended.saturating_duration_since(rolling_back).as_millis()
    ));
    summary.push(format!(
        "  seed 004 wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    say(&summary.join("\n"));
}
