//! `deploy --strategy compose` end to end against a real Docker Engine (Debian `docker.io`),
//! compose v2 (the docker CLI plugin) and a loopback registry, over a real OpenSSH sshd, with a
//! real HAProxy in front of the replicas (issue 19).
//!
//! Nothing here is a stand-in: images are built locally (`busybox-static`, see
//! `test_support::engine::SERVE`), pushed to the loopback registry and pulled by the deploy;
//! health checks run in the engine; unhealthy is a container whose health check really fails.
//! Each test has its own compose project name, ports and image names, and runs `compose down`
//! at the end. The recording stand-in (`tests/compose.rs`) keeps only what an engine cannot be
//! made to do on demand (see there).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ssh_deploy::strategy::compose::dotenv;
use test_support::engine::{Engine, Project};
use test_support::haproxy::ReplicaProxy;
use test_support::sshd::Sshd;
use test_support::{Output, free_port, run, tool_command};

const SECRET: &str = "sk-live-51HxQv9TESTSECRETvalue0000";
/// bundle-json-gen's output form: compact JSON, `'` written as `\u0027`, one trailing newline.
const BUNDLES: &str = r#"{"default_bundle_id":"my-bundle@2.0.0","bundles":{"my-bundle@2.0.0":{"id":"my-bundle@2.0.0","name":"O\u0027Brien $HOME # not a comment","path":"/bundles","module":"my-bundle@2.0.0.entrypoint","repo":"https://git.example.com/org/my-bundle.git","ref":"v2.0.0","subdir":"bundles"}}}"#;

/// The health check of every test service: 200 ms apart, so `up --wait` takes about a second.
const HEALTHCHECK: &str = r#"{ test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:$$PORT/health"], interval: 200ms, timeout: 2s, retries: 3 }"#;

fn name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// One GET over a new connection: (status, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes())?;
    let mut text = Vec::new();
    stream.read_to_end(&mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    Ok((status, body.to_owned()))
}

/// Requests through the proxy, new connection each, two clients, all through the deploy.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    versions: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the load saw.
#[derive(Debug)]
struct Seen {
    ok: u64,
    failed: Vec<String>,
    /// Distinct `version=... replica=...` answers, in first-seen order.
    versions: Vec<String>,
}

impl Load {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let versions = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..2)
            .map(|_| {
                let (stop, ok, failed, versions) =
                    (stop.clone(), ok.clone(), failed.clone(), versions.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Paced (about 100 requests a second per client): the load must not
                        // starve the engine's own health checks on a 2-core machine.
                        std::thread::sleep(Duration::from_millis(10));
                        match get(port, "/") {
                            Ok((200, body)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                let line = body.lines().next().unwrap_or_default().to_owned();
                                let mut seen = versions.lock().expect("lock");
                                if !seen.contains(&line) {
                                    seen.push(line);
                                }
                            }
                            Ok((status, body)) => failed
                                .lock()
                                .expect("lock")
                                .push(format!("{status}: {}", body.trim())),
                            Err(e) => failed.lock().expect("lock").push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failed,
            versions,
            threads,
        }
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("load thread");
        }
        Seen {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.lock().expect("lock").clone(),
            versions: self.versions.lock().expect("lock").clone(),
        }
    }
}

/// A compose host: engine, sshd, project dir, images in the loopback registry.
/// Fields drop in order: `compose down` first, while the project dir and the engine exist.
struct Host {
    project: Project,
    sshd: Sshd,
    work: tempfile::TempDir,
    repo: String,
    engine: Engine,
}

impl Host {
    fn new(prefix: &str) -> Self {
        let engine = Engine::start();
        let sshd = Sshd::start();
        let work = tempfile::tempdir().expect("tmp");
        let name = name(prefix);
        // A quote in the project dir: every command ssh-deploy sends must quote it.
        let dir = work.path().join("it's project");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let project = Project::new(&engine, &name, &dir);
        let repo = format!("{}/{name}", engine.registry());
        Self {
            engine,
            sshd,
            work,
            project,
            repo,
        }
    }

    fn dir(&self) -> PathBuf {
        self.work.path().join("it's project")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn deploy(&self, extra: &[(&str, &str)]) -> Output {
        let mut command = tool_command(env!("CARGO_BIN_EXE_ssh-deploy"));
        command
            .arg("deploy")
            .current_dir(self.work.path())
            .env("SSH_DEPLOY_STRATEGY", "compose")
            .env("SSH_DEPLOY_COMPOSE_FILE", self.path("compose-deploy.yaml"))
            .env("SSH_DEPLOY_HOSTS", self.sshd.host("root"))
            .env("SSH_DEPLOY_ROOT", self.path("state"))
            .env("SSH_DEPLOY_PRIVATE_KEY", self.sshd.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", self.sshd.known_hosts_line())
            .env("SSH_DEPLOY_RELEASE_ID", "r2")
            .env("OPENAI_API_KEY", SECRET);
        for (key, value) in extra {
            command.env(key, value);
        }
        run(&mut command)
    }

    /// Every env file of the project: (name, bytes, mode).
    fn env_files(&self, names: &[&str]) -> Vec<(String, Vec<u8>, u32)> {
        names
            .iter()
            .map(|name| {
                let path = self.dir().join(name);
                let bytes = std::fs::read(&path).expect("env file");
                let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
                ((*name).to_owned(), bytes, mode)
            })
            .collect()
    }
}

fn outputs(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("json outputs: {e}\n{out:?}"))
}

fn report(out: &Output) -> serde_json::Value {
    // A typed output: the report is a JSON array, not its text.
    outputs(out)["compose-report"].clone()
}

/// Seed 003: api-1..3 on the host network behind HAProxy, rolled one at a time.
struct Seed003 {
    host: Host,
    haproxy: ReplicaProxy,
    ports: Vec<(String, u16)>,
}

impl Seed003 {
    /// `tag`: the API image tag the host runs before the deploy (`.env`).
    fn new(tag: &str) -> Self {
        let host = Host::new("s003");
        let ports: Vec<(String, u16)> =
            (1..=3).map(|n| (format!("api-{n}"), free_port())).collect();
        let mut compose = format!(
            "x-api: &api\n  image: ${{API_IMAGE}}\n  network_mode: host\n  env_file: [.env.api]\n  \
             stop_grace_period: 5s\n  healthcheck: {HEALTHCHECK}\nservices:\n"
        );
        for (replica, port) in &ports {
            compose.push_str(&format!(
                "  {replica}: {{ <<: *api, environment: {{ PORT: \"{port}\", REPLICA: {replica} }} }}\n"
            ));
        }
        let dir = host.dir();
        write(&dir.join("docker-compose.yaml"), &compose, 0o644);
        write(
            &dir.join(".env"),
            &format!("API_IMAGE={}/api:{tag}\n", host.repo),
            0o644,
        );
        write(
            &dir.join(".env.api"),
            "# api replicas\nGREETING=hello\nFAIL_HEALTH=\n",
            0o640,
        );
        let haproxy = ReplicaProxy::start(host.work.path(), &ports);
        write(&dir.join("proxy"), &haproxy.hook_script(), 0o755);
        write(
            &host.path("api-gate.yaml"),
            &format!(
                "checks:\n  - name: api\n    attempt_timeout: 2s\n    http: {{ url: 'http://{{host}}:{}/direct/{{service}}/health' }}\n    readiness: {{ interval: 100ms, deadline: 20s, fatal: [status] }}\n",
                haproxy.port
            ),
            0o644,
        );
        Self {
            host,
            haproxy,
            ports,
        }
    }

    /// The deploy file: `.env.api` gets `greeting` and `fail_health`, the image `api:<tag>`.
    fn write_deploy(&self, tag: &str, greeting: &str, fail_health: &str) {
        let deploy = format!(
            r#"project_dir: "{dir}"
project_name: {project}
remote_env:
  DOCKER_HOST: "{docker_host}"
wait_timeout: 20s
up_timeout: 60s
env_files:
  - path: .env.api
    set:
      GREETING: "{greeting}"
      FAIL_HEALTH: "{fail_health}"
services:
  - name: api
    replicas: [api-1, api-2, api-3]
    image: {{ ref: "{repo}/api:{tag}", var: API_IMAGE }}
    gate: api-gate.yaml
    drain: ./proxy drain {{service}}
    undrain: ./proxy ready {{service}}
"#,
            dir = self.host.dir().display().to_string().replace('"', "\\\""),
            project = self.host.project.name(),
            docker_host = self.host.engine.host(),
            repo = self.host.repo,
        );
        write(&self.host.path("compose-deploy.yaml"), &deploy, 0o644);
    }

    fn up(&self) {
        self.host.project.run(&["up", "-d", "--wait"]);
        // Every replica in the pool before the load starts.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut replicas = Vec::new();
        while replicas.len() < 3 {
            assert!(
                Instant::now() < deadline,
                "haproxy never saw all three replicas: {replicas:?}"
            );
            if let Ok((200, body)) = get(self.haproxy.port, "/") {
                let line = body.lines().next().unwrap_or_default().to_owned();
                if !replicas.contains(&line) {
                    replicas.push(line);
                }
            }
        }
    }

    fn body(&self, replica: &str) -> String {
        let port = self
            .ports
            .iter()
            .find(|(r, _)| r == replica)
            .expect("replica")
            .1;
        get(port, "/").expect("replica answers").1.trim().to_owned()
    }
}

#[test]
fn seed_003_rolls_three_replicas_behind_haproxy_without_a_failed_request() {
    let s = Seed003::new("v1");
    let engine = &s.host.engine;
    let v1 = engine.build_image(&format!("{}/api:v1", s.host.repo), &[("VERSION", "v1")]);
    engine.push(&format!("{}/api:v1", s.host.repo));
    let v2 = engine.build_image(&format!("{}/api:v2", s.host.repo), &[("VERSION", "v2")]);
    // Only in the registry: the deploy's pull really fetches it.
    engine.push_only(&format!("{}/api:v2", s.host.repo));
    s.up();
    s.write_deploy("v2", "bonjour", "");
    let load = Load::start(s.haproxy.port);
    let out = s.host.deploy(&[]);
    let seen = load.stop();
    assert_eq!(out.code, Some(0), "{out:?}\n{}", s.host.sshd.log());
    assert_eq!(outputs(&out)["result"], "success");
    for replica in ["api-1", "api-2", "api-3"] {
        assert_eq!(s.host.project.image_of(replica), v2, "{replica} runs v2");
        assert_ne!(v1, v2);
        assert_eq!(
            s.body(replica),
            format!("version=v2 replica={replica} greeting=bonjour")
        );
    }
    assert!(
        seen.failed.is_empty(),
        "requests failed through the proxy: {seen:?}"
    );
    assert!(seen.ok > 20, "the load ran all along: {seen:?}");
    assert!(
        seen.versions.iter().any(|v| v.starts_with("version=v1"))
            && seen.versions.iter().any(|v| v.starts_with("version=v2")),
        "the proxy served both versions while rolling: {seen:?}"
    );
    // One `up` per replica, each gated, in order; the timings are in the report.
    let report = report(&out);
    let steps: Vec<String> = report[0]["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|t| {
            ["drain", "up", "gate", "undrain"].contains(&t["action"].as_str().unwrap_or(""))
        })
        .map(|t| {
            format!(
                "{} {}",
                t["action"].as_str().unwrap_or(""),
                t["service"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "drain api-1",
            "up api-1",
            "gate api-1",
            "undrain api-1",
            "drain api-2",
            "up api-2",
            "gate api-2",
            "undrain api-2",
            "drain api-3",
            "up api-3",
            "gate api-3",
            "undrain api-3",
        ]
    );
    let previous = &report[0]["previous"];
    assert_eq!(
        previous[0]["image_id"],
        v1.as_str(),
        "the snapshot names the old image"
    );
    assert!(
        previous[0]["digests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{}/api@sha256:", s.host.repo))),
        "the snapshot has the registry digest: {previous}"
    );
}

#[test]
fn seed_003_unhealthy_second_replica_rolls_back_and_the_first_runs_the_old_image_again() {
    // A moving tag (`:stable`): the pull re-points it, so the rollback must put the tag back
    // on the old image id, or the recreated replicas would start the new image again.
    let s = Seed003::new("stable");
    let engine = &s.host.engine;
    let stable = format!("{}/api:stable", s.host.repo);
    let v1 = engine.build_image(&stable, &[("VERSION", "v1")]);
    engine.push(&stable);
    s.up();
    let v2 = engine.build_image(&stable, &[("VERSION", "v2")]);
    engine.push(&stable);
    engine.run(&["tag", &v1, &stable]);
    assert_ne!(v1, v2);
    s.write_deploy("stable", "bonjour", "api-2");
    let before = s.host.env_files(&[".env", ".env.api"]);
    let containers_before = s.host.project.container("api-3");
    let load = Load::start(s.haproxy.port);
    let out = s.host.deploy(&[]);
    let seen = load.stop();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(outputs(&out)["result"], "rolled-back");
    assert!(
        out.stderr.contains("api-2-1 is unhealthy"),
        "compose's own verdict reaches the log: {}",
        out.stderr
    );
    for replica in ["api-1", "api-2", "api-3"] {
        assert_eq!(
            s.host.project.image_of(replica),
            v1,
            "{replica} runs v1 again"
        );
        assert_eq!(
            s.body(replica),
            format!("version=v1 replica={replica} greeting=hello")
        );
    }
    assert_eq!(
        engine.image_id(&stable),
        v1,
        "the moved tag points at v1 again"
    );
    assert_eq!(
        s.host.project.container("api-3"),
        containers_before,
        "api-3 was never touched"
    );
    assert_eq!(
        s.host.env_files(&[".env", ".env.api"]),
        before,
        "env files restored byte for byte"
    );
    assert!(
        seen.failed.is_empty(),
        "requests failed through the proxy: {seen:?}"
    );
    let report = report(&out);
    let ups: Vec<String> = report[0]["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|t| t["action"] == "up" || t["action"] == "rollback")
        .map(|t| {
            format!(
                "{} {} {}",
                t["action"].as_str().unwrap_or(""),
                t["service"].as_str().unwrap_or(""),
                t["result"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        ups,
        [
            "up api-1 ok",
            "up api-2 failed",
            "rollback api-2 ok",
            "rollback api-1 ok"
        ]
    );
    // Every replica leaves the pool before it is recreated, on the way back too.
    let hooks = std::fs::read_to_string(s.host.dir().join("hooks.log")).expect("hooks");
    assert_eq!(
        hooks,
        "drain api-1\nready api-1\ndrain api-2\ndrain api-2\nready api-2\ndrain api-1\nready api-1\n"
    );
}

#[test]
fn pull_failure_on_the_real_registry_touches_nothing() {
    let s = Seed003::new("v1");
    let engine = &s.host.engine;
    engine.build_image(&format!("{}/api:v1", s.host.repo), &[("VERSION", "v1")]);
    s.up();
    s.write_deploy("v404", "bonjour", "");
    let before = s.host.env_files(&[".env", ".env.api"]);
    let containers: Vec<Option<String>> = ["api-1", "api-2", "api-3"]
        .iter()
        .map(|r| s.host.project.container(r))
        .collect();
    let out = s.host.deploy(&[]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(outputs(&out)["result"], "failed");
    assert!(out.stderr.contains("v404"), "{}", out.stderr);
    assert_eq!(s.host.env_files(&[".env", ".env.api"]), before);
    let after: Vec<Option<String>> = ["api-1", "api-2", "api-3"]
        .iter()
        .map(|r| s.host.project.container(r))
        .collect();
    assert_eq!(after, containers, "no container was recreated");
    assert!(
        !s.host.path("state/.ssh-deploy/lock").exists(),
        "lock released"
    );
}

/// Seed 004's EC2 path: ingress, processor and metrics with their own env files; the bundle
/// descriptor goes to `.env.proc` only and reaches the processor's container byte for byte.
#[test]
fn seed_004_env_files_reach_the_containers_and_bundles_json_only_the_processor() {
    let host = Host::new("s004");
    let engine = &host.engine;
    let services = [
        ("chat-ingress", "INGRESS"),
        ("chat-proc", "PROC"),
        ("metrics", "METRICS"),
    ];
    let mut compose = String::from("services:\n");
    let mut images = String::new();
    let mut ports = Vec::new();
    for (service, var) in services {
        let port = free_port();
        ports.push((service, port));
        let short = service.trim_start_matches("chat-");
        compose.push_str(&format!(
            "  {service}:\n    image: ${{{var}_IMAGE}}\n    network_mode: host\n    env_file: [.env.{short}]\n    \
             environment: {{ PORT: \"{port}\", REPLICA: {service} }}\n    stop_grace_period: 5s\n    healthcheck: {HEALTHCHECK}\n"
        ));
        let reference = format!("{}/{short}", host.repo);
        engine.build_image(&format!("{reference}:v1"), &[("VERSION", "v1")]);
        engine.build_image(&format!("{reference}:v2"), &[("VERSION", "v2")]);
        engine.push_only(&format!("{reference}:v2"));
        images.push_str(&format!("{var}_IMAGE={reference}:v1\n"));
    }
    let dir = host.dir();
    write(&dir.join("docker-compose.yaml"), &compose, 0o644);
    write(&dir.join(".env"), &images, 0o644);
    write(
        &dir.join(".env.ingress"),
        "GATEWAY_CONFIG_JSON='{\"tenant\":\"t\",\"project\":\"p\"}'\nOPENAI_API_KEY=sk-old-secret-value\n",
        0o600,
    );
    write(
        &dir.join(".env.proc"),
        "GATEWAY_CONFIG_JSON='{\"tenant\":\"t\",\"project\":\"p\"}'\nBUNDLES_FORCE_ENV_ON_STARTUP=0\n",
        0o600,
    );
    write(&dir.join(".env.metrics"), "METRICS_EXPORT=0\n", 0o640);
    host.project.run(&["up", "-d", "--wait"]);
    std::fs::write(host.path("bundles.json"), format!("{BUNDLES}\n")).expect("write");
    let deploy = format!(
        r#"project_dir: "{dir}"
project_name: {project}
remote_env:
  DOCKER_HOST: "{docker_host}"
wait_timeout: 20s
up_timeout: 60s
env_files:
  - path: .env.ingress
    set:
      OPENAI_API_KEY: {{ env: OPENAI_API_KEY }}
  - path: .env.proc
    set:
      AGENTIC_BUNDLES_JSON: {{ file: bundles.json }}
      BUNDLES_FORCE_ENV_ON_STARTUP: "1"
  - path: .env.metrics
    set:
      METRICS_EXPORT: "1"
services:
  - name: chat-ingress
    image: {{ ref: "{repo}/ingress:v2", var: INGRESS_IMAGE }}
  - name: chat-proc
    image: {{ ref: "{repo}/proc:v2", var: PROC_IMAGE }}
  - name: metrics
    image: {{ ref: "{repo}/metrics:v2", var: METRICS_IMAGE }}
"#,
        dir = dir.display().to_string().replace('"', "\\\""),
        project = host.project.name(),
        docker_host = engine.host(),
        repo = host.repo,
    );
    write(&host.path("compose-deploy.yaml"), &deploy, 0o644);
    let out = host.deploy(&[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stdout.contains(SECRET) && !out.stderr.contains(SECRET),
        "{out:?}"
    );
    let port = |service: &str| ports.iter().find(|(s, _)| *s == service).expect("port").1;
    // The processor's container reads the descriptor back byte for byte.
    let (status, bundles) = get(port("chat-proc"), "/bundles.json").expect("proc answers");
    assert_eq!(status, 200);
    assert_eq!(bundles, BUNDLES);
    let env = |service: &str| get(port(service), "/env.txt").expect("answers").1;
    assert!(env("chat-proc").contains("BUNDLES_FORCE_ENV_ON_STARTUP=1\n"));
    assert!(
        env("chat-proc").contains("GATEWAY_CONFIG_JSON={\"tenant\":\"t\",\"project\":\"p\"}\n")
    );
    for service in ["chat-ingress", "metrics"] {
        assert!(
            !env(service).contains("AGENTIC_BUNDLES_JSON"),
            "{service} must not see the bundle descriptor"
        );
        assert!(
            get(port(service), "/")
                .expect("answers")
                .1
                .starts_with("version=v2")
        );
    }
    assert!(env("chat-ingress").contains(&format!("OPENAI_API_KEY={SECRET}\n")));
    assert!(env("metrics").contains("METRICS_EXPORT=1\n"));
    let files = host.env_files(&[".env.proc", ".env.ingress", ".env.metrics"]);
    let value = |bytes: &[u8], key: &str| {
        dotenv::parse(&String::from_utf8_lossy(bytes))
            .expect("compose can read it")
            .into_iter()
            .find(|e| e.key == key)
            .map(|e| e.value)
    };
    assert_eq!(
        value(&files[0].1, "AGENTIC_BUNDLES_JSON").as_deref(),
        Some(BUNDLES)
    );
    assert_eq!(
        (files[0].2, files[1].2, files[2].2),
        (0o600, 0o600, 0o640),
        "modes kept"
    );
    for (name, bytes, _) in &files[1..] {
        assert_eq!(value(bytes, "AGENTIC_BUNDLES_JSON"), None, "{name}");
    }
}

/// Issue 22 on compose: `--migrate` runs after the env files are written and before any
/// replica is drained or recreated, so `docker compose run` starts the NEW image while every
/// replica still serves the old one; a failing migration restores the env files and
/// recreates nothing.
#[test]
fn seed_003_migration_runs_the_new_image_first_and_a_failed_one_changes_nothing() {
    let s = Seed003::new("v1");
    let engine = &s.host.engine;
    let v1 = engine.build_image(&format!("{}/api:v1", s.host.repo), &[("VERSION", "v1")]);
    engine.push(&format!("{}/api:v1", s.host.repo));
    let v2 = engine.build_image(&format!("{}/api:v2", s.host.repo), &[("VERSION", "v2")]);
    engine.push_only(&format!("{}/api:v2", s.host.repo));
    s.up();
    s.write_deploy("v2", "bonjour", "");
    let before = s.host.env_files(&[".env", ".env.api"]);
    let containers: Vec<Option<String>> = ["api-1", "api-2", "api-3"]
        .iter()
        .map(|r| s.host.project.container(r))
        .collect();
    let migrate = |exit: u8| {
        format!(
            "docker compose run --rm --no-deps -T api-1 sh -c 'echo \"migration on $VERSION while api-1 serves $(wget -q -O - http://127.0.0.1:$PORT/)\"; exit {exit}'"
        )
    };
    let failed = s.host.deploy(&[("SSH_DEPLOY_MIGRATE", &migrate(5))]);
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert!(
        failed
            .stderr
            .contains("migration on v2 while api-1 serves version=v1 replica=api-1"),
        "{}",
        failed.stderr
    );
    assert_eq!(s.host.env_files(&[".env", ".env.api"]), before);
    let after: Vec<Option<String>> = ["api-1", "api-2", "api-3"]
        .iter()
        .map(|r| s.host.project.container(r))
        .collect();
    assert_eq!(after, containers, "no container was recreated");
    for replica in ["api-1", "api-2", "api-3"] {
        assert_eq!(s.host.project.image_of(replica), v1, "{replica} runs v1");
    }

    let out = s.host.deploy(&[("SSH_DEPLOY_MIGRATE", &migrate(0))]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("migration on v2 while api-1 serves version=v1 replica=api-1"),
        "{}",
        out.stderr
    );
    for replica in ["api-1", "api-2", "api-3"] {
        assert_eq!(s.host.project.image_of(replica), v2, "{replica} runs v2");
    }
    let actions: Vec<String> = report(&out)[0]["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|t| t["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    let migrated = actions
        .iter()
        .position(|a| a == "migrate")
        .expect("migrated");
    let first_drain = actions.iter().position(|a| a == "drain").expect("drained");
    assert!(migrated < first_drain, "{actions:?}");
}
