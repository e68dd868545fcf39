//! `deploy --strategy compose` end to end over a real OpenSSH sshd on loopback, with a recording
//! `docker` stand-in on the host.
//!
//! The real engine tests are in `tests/compose_engine.rs` (Docker Engine, compose v2 and a
//! loopback registry: seed 003's roll and rollback behind HAProxy, seed 004's env files, a
//! failed pull). This stand-in (a shell script first on the remote PATH that records its argv
//! and replays a scripted state per service) stays only for what those cannot cover:
//! - states a real engine cannot be made to produce on demand: `compose up` hanging past its
//!   own `--wait-timeout` (a daemon or compose bug; the deploy file requires `up_timeout` to be
//!   longer than `wait_timeout`, so a real engine always returns first), cut by `up_timeout`;
//! - the exact argv of every docker call in order (pulls before the first compose call, one
//!   service per `up`, retag before recreate), which a real engine does not record;
//! - deploy-file errors and `--dry-run`, which never reach the host;
//! - the keepalive regression (an `up` silent for 17 s) and a failing drain hook and gate,
//!   kept here for speed: a real engine could produce them, at 20 s or more each.
//!
//! Everything else is real: sshd, the remote shell, coreutils doing the atomic writes, the env
//! files on disk (one a symlink), and health-gate probing a real HTTP server per replica.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ssh_deploy::strategy::compose::dotenv;
use test_support::http_server::{HttpServer, Reply};
use test_support::sshd::Sshd;
use test_support::{Output, run, tool_command};

const SECRET: &str = "sk-live-51HxQv9TESTSECRETvalue0000";
/// bundle-json-gen's output form: compact JSON, `'` written as `\u0027`, one trailing newline.
const BUNDLES: &str = r#"{"default_bundle_id":"my-bundle@2.0.0","bundles":{"my-bundle@2.0.0":{"id":"my-bundle@2.0.0","name":"O\u0027Brien $HOME # not a comment","path":"/bundles","module":"my-bundle@2.0.0.entrypoint","repo":"https://git.example.com/org/my-bundle.git","ref":"v2.0.0","subdir":"bundles"}}}"#;

const STAND_IN: &str = r#"#!/bin/sh
# docker stand-in: records argv, replays the scripted state of each service once.
S=__SCENARIO__
printf '%s\n' "$*" >> "$S/argv.log"
last() { for a; do :; done; printf '%s' "$a"; }
case "$1" in
  pull)
    if grep -qxF "$2" "$S/fail-pull" 2>/dev/null; then
      echo "Error response from daemon: manifest for $2 not found: manifest unknown" >&2; exit 1
    fi
    echo "$2: Pulling from registry"; exit 0 ;;
  inspect)
    [ "$2" = --format ] || exit 99
    shift 3
    for c; do s=${c#cid-}; echo "$c sha256:old$s registry.example/$s:old"; done
    exit 0 ;;
  image)
    [ "$2" = inspect ] && [ "$3" = --format ] || exit 99
    shift 4
    for i; do echo "$i registry.example/${i#sha256:old}@sha256:d1g35t"; done
    exit 0 ;;
  tag) exit 0 ;;
  ps)
    [ "$*" = 'ps -a --filter label=com.docker.compose.project=agentic --filter label=com.docker.compose.oneoff=False --format {{.Label "com.docker.compose.service"}} {{.ID}}' ] || exit 99
    for s in chat-ingress chat-proc metrics api-1 api-2 api-3; do echo "$s cid-$s"; done; exit 0 ;;
  compose)
    shift
    while [ $# -gt 0 ]; do case "$1" in -p|-f) shift 2 ;; *) break ;; esac; done
    sub=$1
    case "$sub" in
      config) exit 0 ;;
      ps) for s in chat-ingress chat-proc metrics api-1 api-2 api-3; do echo "$s cid-$s"; done; exit 0 ;;
      up)
        s=$(last "$@"); state=healthy
        port=${SSH_CONNECTION##* }
        case "$*" in *--force-recreate*) ;; *) [ -f "$S/fail-port-$port-$s" ] && state=unhealthy ;; esac
        if [ -f "$S/up-$s" ]; then state=$(cat "$S/up-$s"); rm -f "$S/up-$s"; fi
        case "$state" in
          healthy) echo " Container $s  Healthy" >&2; exit 0 ;;
          unhealthy) echo "dependency failed to start: container $s is unhealthy" >&2; exit 1 ;;
          timeout) exec sleep 60 ;;
          slow) sleep 17; echo " Container $s  Healthy" >&2; exit 0 ;;
        esac ;;
    esac ;;
esac
echo "stand-in: unexpected docker $*" >&2
exit 99
"#;

struct Fixture {
    sshd: Sshd,
    work: tempfile::TempDir,
    _gate_server: HttpServer,
    gate_port: u16,
}

fn project(work: &Path) -> PathBuf {
    work.join("it's project")
}

fn scenario(work: &Path) -> PathBuf {
    work.join("scenario")
}

impl Fixture {
    /// `failing_gate`: the replica whose health endpoint answers 503.
    fn new(failing_gate: Option<&'static str>) -> Self {
        let sshd = Sshd::start();
        let work = tempfile::tempdir().expect("tmp");
        let gate_server = HttpServer::start(move |request| match failing_gate {
            Some(service) if request.path.ends_with(&format!("/{service}")) => {
                Reply::text(503, "draining")
            }
            _ => Reply::text(200, "ok"),
        });
        let gate_port = gate_server.addr().port();
        let fx = Self {
            sshd,
            work,
            _gate_server: gate_server,
            gate_port,
        };
        fx.write_host();
        fx.write_runner_files();
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn write_host(&self) {
        let project = project(self.work.path());
        let scenario = scenario(self.work.path());
        std::fs::create_dir_all(&project).expect("mkdir");
        std::fs::create_dir_all(&scenario).expect("mkdir");
        std::fs::create_dir_all(self.path("bin")).expect("mkdir");
        let stand_in = self.path("bin/docker");
        std::fs::write(
            &stand_in,
            STAND_IN.replace("__SCENARIO__", &format!("'{}'", scenario.display())),
        )
        .expect("write");
        std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let files = [
            (
                ".env",
                "INGRESS_IMAGE=registry.example/ingress:old\nPROC_IMAGE=registry.example/proc:old\nAPI_IMAGE=registry.example/api:old\n",
                0o644,
            ),
            (
                ".env.ingress",
                "# ingress\nGATEWAY_CONFIG_JSON='{\"tenant\":\"t\"}'\nOPENAI_API_KEY=sk-old-secret-value\nLOG_LEVEL=debug\n",
                0o640,
            ),
            (
                ".env.proc",
                "GATEWAY_CONFIG_JSON='{\"tenant\":\"t\"}'\nAGENTIC_BUNDLES_JSON=\"{\n  \\\"bundles\\\": {}\n}\"\nBUNDLES_FORCE_ENV_ON_STARTUP=0\n",
                0o600,
            ),
            (".env.metrics", "METRICS_PORT=9090", 0o640),
        ];
        std::fs::create_dir_all(project.join("shared")).expect("mkdir");
        for (name, text, mode) in files {
            // `.env.metrics` is a symlink into shared/, as some hosts keep env files.
            let path = if name == ".env.metrics" {
                std::os::unix::fs::symlink("shared/metrics.env", project.join(name)).expect("ln");
                project.join("shared/metrics.env")
            } else {
                project.join(name)
            };
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }

    fn write_runner_files(&self) {
        std::fs::write(self.path("bundles.json"), format!("{BUNDLES}\n")).expect("write");
        std::fs::write(
            self.path("api-gate.yaml"),
            format!(
                "checks:\n  - name: api\n    attempt_timeout: 2s\n    http: {{ url: 'http://{{host}}:{}/health/{{service}}' }}\n    readiness: {{ interval: 50ms, deadline: 20s, fatal: [status] }}\n",
                self.gate_port
            ),
        )
        .expect("write");
        let deploy = format!(
            r#"project_dir: "{project}"
project_name: agentic
compose_files: [docker-compose.yaml]
remote_env:
  PATH: "{bin}:/usr/local/bin:/usr/bin:/bin"
wait_timeout: 2s
up_timeout: 4s
env_files:
  - path: .env.ingress
    set:
      OPENAI_API_KEY: {{ env: OPENAI_API_KEY }}
      LOG_LEVEL: info
  - path: .env.proc
    set:
      AGENTIC_BUNDLES_JSON: {{ file: bundles.json }}
      BUNDLES_FORCE_ENV_ON_STARTUP: "1"
  - path: .env.metrics
    set:
      METRICS_PORT: "9091"
services:
  - name: chat-ingress
    image: {{ ref: "registry.example/ingress:${{TAG}}", var: INGRESS_IMAGE }}
  - name: chat-proc
    image: {{ ref: "registry.example/proc:${{TAG}}", var: PROC_IMAGE }}
  - name: metrics
  - name: api
    replicas: [api-1, api-2, api-3]
    image: {{ ref: "registry.example/api:${{TAG}}", var: API_IMAGE }}
    gate: api-gate.yaml
    drain: 'if [ -f ../scenario/drain-fail-{{service}} ]; then echo "proxy refused" >&2; exit 1; fi; echo "drain {{service}}" >> hooks.log'
    undrain: echo "undrain {{service}}" >> hooks.log
"#,
            project = project(self.work.path())
                .display()
                .to_string()
                .replace('"', "\\\""),
            bin = self.path("bin").display(),
        );
        std::fs::write(self.path("compose-deploy.yaml"), deploy).expect("write");
    }

    /// `up-<service>` (one-shot) or `fail-pull` in the stand-in's scenario directory.
    fn script(&self, name: &str, text: &str) {
        std::fs::write(scenario(self.work.path()).join(name), text).expect("write");
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
            .env("SSH_DEPLOY_RELEASE_ID", "v2")
            .env("SSH_DEPLOY_VERBOSE", "true")
            .env("OPENAI_API_KEY", SECRET)
            .env("TAG", "v2");
        for (key, value) in extra {
            command.env(key, value);
        }
        run(&mut command)
    }

    fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(scenario(self.work.path()).join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The services named by `compose up`, in call order, with `--force-recreate` marked.
    fn ups(&self) -> Vec<String> {
        self.argv()
            .iter()
            .filter(|line| line.contains(" up -d "))
            .map(|line| {
                let service = line.rsplit(' ').next().unwrap_or_default();
                if line.contains("--force-recreate") {
                    format!("{service} (back)")
                } else {
                    service.to_owned()
                }
            })
            .collect()
    }

    /// Every env file: (name, bytes, mode).
    fn env_files(&self) -> Vec<(String, Vec<u8>, u32)> {
        [".env", ".env.ingress", ".env.proc", ".env.metrics"]
            .iter()
            .map(|name| {
                let path = project(self.work.path()).join(name);
                let bytes = std::fs::read(&path).expect("env file");
                let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
                ((*name).to_owned(), bytes, mode)
            })
            .collect()
    }

    /// Temp files left behind, and whether `.env.metrics` is still a symlink.
    fn leftovers(&self) -> Vec<String> {
        let project = project(self.work.path());
        let mut left: Vec<String> = [project.clone(), project.join("shared")]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).expect("ls"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("ssh-deploy"))
            .collect();
        let link = std::fs::symlink_metadata(project.join(".env.metrics")).expect("stat");
        if !link.file_type().is_symlink() {
            left.push(".env.metrics is no longer a symlink".into());
        }
        left
    }
}

fn outputs(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("json outputs: {e}\n{out:?}"))
}

fn assert_no_secret(out: &Output, fx: &Fixture) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
        assert!(
            !text.contains("sk-old-secret-value"),
            "{what} shows the old secret:\n{text}"
        );
        assert!(
            !text.contains("O\\u0027Brien"),
            "{what} shows an env value:\n{text}"
        );
    }
    let argv = fx.argv().join("\n");
    assert!(
        !argv.contains(SECRET),
        "a docker command line holds the secret:\n{argv}"
    );
}

fn env_value(text: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8(text.to_vec()).expect("utf8");
    dotenv::parse(&text)
        .expect("compose can read it")
        .into_iter()
        .filter(|e| e.key == key)
        .map(|e| e.value)
        .next_back()
}

#[test]
fn rolls_out_singletons_in_order_then_replicas_one_at_a_time() {
    let fx = Fixture::new(None);
    let before = fx.env_files();
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(0), "{out:?}\n{}", fx.sshd.log());
    assert_no_secret(&out, &fx);
    let json = outputs(&out);
    assert_eq!(json["result"], "success");
    assert_eq!(
        fx.ups(),
        [
            "chat-ingress",
            "chat-proc",
            "metrics",
            "api-1",
            "api-2",
            "api-3"
        ]
    );
    let argv = fx.argv();
    let first_touch = argv
        .iter()
        .position(|l| l.starts_with("compose "))
        .expect("compose ran");
    let pulls: Vec<usize> = (0..argv.len())
        .filter(|&i| argv[i].starts_with("pull "))
        .collect();
    assert_eq!(pulls.len(), 3, "{argv:?}");
    assert!(
        pulls.iter().all(|&i| i < first_touch),
        "pulls come first: {argv:?}"
    );
    assert!(
        argv.iter().any(|l| l.ends_with(" config --quiet")),
        "{argv:?}"
    );
    let hooks = std::fs::read_to_string(project(fx.work.path()).join("hooks.log")).expect("hooks");
    assert_eq!(
        hooks,
        "drain api-1\nundrain api-1\ndrain api-2\nundrain api-2\ndrain api-3\nundrain api-3\n"
    );

    let after = fx.env_files();
    let file = |name: &str| {
        after
            .iter()
            .find(|(n, ..)| n == name)
            .expect("file")
            .clone()
    };
    let (_, proc_bytes, proc_mode) = file(".env.proc");
    assert_eq!(
        env_value(&proc_bytes, "AGENTIC_BUNDLES_JSON").as_deref(),
        Some(BUNDLES)
    );
    assert!(
        String::from_utf8_lossy(&proc_bytes)
            .contains(&format!("AGENTIC_BUNDLES_JSON='{BUNDLES}'\n")),
        "single-quoted, literal: {}",
        String::from_utf8_lossy(&proc_bytes)
    );
    assert_eq!(
        env_value(&proc_bytes, "GATEWAY_CONFIG_JSON").as_deref(),
        Some("{\"tenant\":\"t\"}")
    );
    assert_eq!(proc_mode, 0o600, "mode kept");
    let (_, ingress, ingress_mode) = file(".env.ingress");
    assert_eq!(ingress_mode, 0o640, "mode kept");
    assert!(
        String::from_utf8_lossy(&ingress).starts_with("# ingress\n"),
        "comment kept"
    );
    assert_eq!(
        env_value(&ingress, "OPENAI_API_KEY").as_deref(),
        Some(SECRET)
    );
    for (name, bytes, _) in &after {
        if name != ".env.proc" {
            assert_eq!(env_value(bytes, "AGENTIC_BUNDLES_JSON"), None, "{name}");
        }
    }
    let (_, images, _) = file(".env");
    assert_eq!(
        env_value(&images, "API_IMAGE").as_deref(),
        Some("registry.example/api:v2")
    );
    assert!(fx.leftovers().is_empty(), "{:?}", fx.leftovers());

    // The previous env files are kept in the release record, byte for byte.
    let record = fx.path("state/.ssh-deploy/compose/v2");
    // Record copies are numbered in deploy-file order: .env.ingress, .env.proc, .env.metrics, .env.
    assert_eq!(before[2].0, ".env.proc");
    assert_eq!(
        std::fs::read(record.join("env/1")).expect("copy"),
        before[2].1
    );
    let images_record = std::fs::read_to_string(record.join("images")).expect("images");
    assert!(
        images_record.contains(
            "api-2 sha256:oldapi-2 registry.example/api-2:old registry.example/api-2@sha256:d1g35t\n"
        ),
        "{images_record}"
    );

    // The report: per-service timings and the exact commands run.
    // A typed JSON array, not a string holding JSON (#17).
    let report = json["compose-report"]
        .as_array()
        .expect("compose-report is an array");
    let host = &report[0];
    assert_eq!(host["result"], "deployed");
    let gated: Vec<&str> = host["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|t| t["action"] == "gate")
        .map(|t| t["service"].as_str().expect("name"))
        .collect();
    assert_eq!(gated, ["api-1", "api-2", "api-3"]);
    let commands: Vec<&str> = host["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| c.as_str().expect("text"))
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.ends_with("up -d --no-deps --wait --wait-timeout 2 'api-3'")),
        "{commands:#?}"
    );
    let proc_keys = &host["env_files"][1]["keys"];
    assert_eq!(proc_keys[0]["key"], "AGENTIC_BUNDLES_JSON");
    assert_eq!(proc_keys[0]["change"], "changed");

    // The same deploy again changes no file and succeeds.
    let again = fx.deploy(&[]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(fx.env_files(), after);
}

fn assert_restored(fx: &Fixture, before: &[(String, Vec<u8>, u32)]) {
    let after = fx.env_files();
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(
            old,
            new,
            "{} restored byte for byte with its mode:\nbefore: {}\nafter:  {}",
            old.0,
            String::from_utf8_lossy(&old.1),
            String::from_utf8_lossy(&new.1)
        );
    }
    assert!(fx.leftovers().is_empty(), "{:?}", fx.leftovers());
}

#[test]
fn failing_gate_on_the_last_replica_rolls_every_touched_service_back() {
    let fx = Fixture::new(Some("api-3"));
    let before = fx.env_files();
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("health gate failed"), "{}", out.stderr);
    assert_eq!(
        fx.ups()[6..],
        [
            "api-3 (back)",
            "api-2 (back)",
            "api-1 (back)",
            "metrics (back)",
            "chat-proc (back)",
            "chat-ingress (back)"
        ]
    );
    assert_restored(&fx, &before);
}

#[test]
fn hanging_up_is_stopped_at_up_timeout_and_rolled_back() {
    let fx = Fixture::new(None);
    fx.script("up-chat-proc", "timeout");
    let before = fx.env_files();
    let started = std::time::Instant::now();
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("up_timeout"), "{}", out.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the hang was cut"
    );
    assert_eq!(
        fx.ups(),
        [
            "chat-ingress",
            "chat-proc",
            "chat-proc (back)",
            "chat-ingress (back)"
        ]
    );
    assert_restored(&fx, &before);
}

#[test]
fn bad_deploy_file_names_line_column_and_field_before_connecting() {
    let fx = Fixture::new(None);
    let path = fx.path("compose-deploy.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "  - name: metrics\n",
            "  - name: metrics\n    replica: [m-1]\n",
        ),
    )
    .expect("write");
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "error: `services[2].replica` is not a known field\n  --> {}:26:5\n",
            path.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `replicas`?"),
        "{}",
        out.stderr
    );
    // Under GitHub Actions the annotation carries the file, line and column.
    let out = fx.deploy(&[("GITHUB_ACTIONS", "true")]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let annotation = format!(
        "::error file={},line=26,col=5::`services[2].replica` is not a known field",
        path.display()
    );
    assert!(
        out.stdout.contains(&annotation) || out.stderr.contains(&annotation),
        "no {annotation} in {out:?}"
    );
    assert!(fx.argv().is_empty());
}

/// A service's gate file with a mistake is reported at the gate file's own line and column
/// (the annotation names the gate file), before anything connects.
#[test]
fn a_bad_service_gate_file_is_annotated_at_its_own_line_and_column() {
    let fx = Fixture::new(None);
    let gate = fx.path("api-gate.yaml");
    std::fs::write(
        &gate,
        "checks:\n  - name: api\n    attempt_timeout: forever\n    http: { url: 'http://{host}:1/health/{service}' }\n",
    )
    .expect("write");
    let out = fx.deploy(&[("GITHUB_ACTIONS", "true")]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let annotation = format!(
        "::error file={},line=2,col=5::invalid gate file: checks[0]: `forever` is not a duration",
        gate.display()
    );
    assert!(
        out.stdout.contains(&annotation) || out.stderr.contains(&annotation),
        "no {annotation} in {out:?}"
    );
    assert!(fx.argv().is_empty());
}

#[test]
fn dry_run_prints_the_plan_without_connecting() {
    let fx = Fixture::new(None);
    let out = fx.deploy(&[("SSH_DEPLOY_DRY_RUN", "true")]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(outputs(&out)["result"], "dry-run");
    assert!(
        out.stderr
            .contains("up -d --no-deps --wait --wait-timeout 2 'api-2'"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("write .env.proc (stdin; keys AGENTIC_BUNDLES_JSON"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, &fx);
    assert!(fx.argv().is_empty(), "nothing ran on the host");
}

/// Regression: libssh2 with keepalives on gave up on a command that printed nothing for one
/// keepalive interval (15 s) with "Timed out waiting on socket"; `up --wait` is often that quiet.
#[test]
fn an_up_silent_for_longer_than_the_keepalive_interval_succeeds() {
    let fx = Fixture::new(None);
    let path = fx.path("compose-deploy.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("up_timeout: 4s", "up_timeout: 60s")).expect("write");
    fx.script("up-chat-ingress", "slow");
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fx.ups()[0], "chat-ingress");
}

#[test]
fn failed_drain_puts_the_replica_back_into_the_pool() {
    let fx = Fixture::new(None);
    fx.script("drain-fail-api-2", "");
    let before = fx.env_files();
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("proxy refused"), "{}", out.stderr);
    assert_eq!(
        fx.ups()[4..],
        [
            "api-2 (back)",
            "api-1 (back)",
            "metrics (back)",
            "chat-proc (back)",
            "chat-ingress (back)"
        ]
    );
    let hooks = std::fs::read_to_string(project(fx.work.path()).join("hooks.log")).expect("hooks");
    assert_eq!(
        hooks,
        "drain api-1\nundrain api-1\nundrain api-2\ndrain api-1\nundrain api-1\n"
    );
    assert_restored(&fx, &before);
}

/// Issue #22, point 2 on compose: runner hooks around the compose rollout; a failing
/// pre-deploy hook stops before any connection; host hooks are refused (no release directory).
#[test]
fn runner_hooks_wrap_the_compose_rollout() {
    let fx = Fixture::new(None);
    let log = fx.path("hooks.log");
    let hooks = format!(
        "pre-deploy=echo \"pre $SSH_DEPLOY_RELEASE $SSH_DEPLOY_STRATEGY\" >> '{log}'\npost-deploy=echo \"post $SSH_DEPLOY_RESULT\" >> '{log}'",
        log = log.display()
    );
    let out = fx.deploy(&[("SSH_DEPLOY_HOOK", &hooks)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&log).expect("hooks ran"),
        "pre v2 compose\npost success\n"
    );
    let stopped = fx.deploy(&[("SSH_DEPLOY_HOOK", "pre-deploy=exit 3")]);
    assert_eq!(stopped.code, Some(1), "{stopped:?}");
    assert_eq!(outputs(&stopped)["result"], "failed");
}

/// Issue 22 on compose hosts: host hooks run in the compose project dir with the hook
/// variables and the project's COMPOSE_PROJECT_NAME / COMPOSE_FILE; pre-deploy before any
/// pull, pre-switch after the env files are written and before the first `up`, post-switch
/// after the last, post-deploy with the result.
#[test]
fn host_hooks_run_in_the_project_dir_at_their_points() {
    let fx = Fixture::new(None);
    let hooks = [
        "pre-deploy@hosts=echo \"pre-deploy $SSH_DEPLOY_RELEASE $SSH_DEPLOY_STRATEGY $SSH_DEPLOY_HOST pulls=$(cat ../scenario/argv.log 2>/dev/null | grep -c '^pull ')\" >> lifecycle.log",
        "pre-switch@hosts=echo \"pre-switch $COMPOSE_PROJECT_NAME $COMPOSE_FILE api=$(grep API_IMAGE .env) ups=$(grep -c ' up -d ' ../scenario/argv.log || true)\" >> lifecycle.log",
        "post-switch@hosts=echo \"post-switch ups=$(grep -c ' up -d ' ../scenario/argv.log)\" >> lifecycle.log",
        "post-deploy@hosts=echo \"post-deploy $SSH_DEPLOY_RESULT\" >> lifecycle.log",
    ]
    .join("\n");
    let plan = fx.deploy(&[("SSH_DEPLOY_HOOK", &hooks), ("SSH_DEPLOY_DRY_RUN", "true")]);
    assert_eq!(plan.code, Some(0), "{plan:?}");
    for line in [
        "hook pre-switch on each host (in the compose project dir)",
        "shell 2: hook pre-switch: ",
        "shell 1: hook pre-deploy: ",
    ] {
        assert!(plan.stderr.contains(line), "{line}:\n{}", plan.stderr);
    }
    let out = fx.deploy(&[("SSH_DEPLOY_HOOK", &hooks)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let host = fx.sshd.host("root");
    let host_name = host
        .split('@')
        .nth(1)
        .and_then(|h| h.split(':').next())
        .expect("host");
    assert_eq!(
        std::fs::read_to_string(project(fx.work.path()).join("lifecycle.log")).expect("hooks ran"),
        format!(
            "pre-deploy v2 compose {host_name} pulls=0\n\
             pre-switch agentic docker-compose.yaml api=API_IMAGE='registry.example/api:v2' ups=0\n\
             post-switch ups=6\n\
             post-deploy success\n"
        )
    );
}

/// A failing post-switch host hook (after every service is up and gated) is a warning; with
/// --hooks-strict the host is rolled back like a failed gate.
#[test]
fn failing_post_switch_hook_warns_or_with_hooks_strict_rolls_back() {
    let fx = Fixture::new(None);
    let hook = (
        "SSH_DEPLOY_HOOK",
        "post-switch@hosts=echo cache cold >&2; exit 2",
    );
    let out = fx.deploy(&[hook]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("cache cold")
            && out.stderr.contains("a warning without --hooks-strict"),
        "{}",
        out.stderr
    );
    let strict = fx.deploy(&[
        hook,
        ("SSH_DEPLOY_HOOKS_STRICT", "true"),
        ("SSH_DEPLOY_RELEASE_ID", "v3"),
    ]);
    assert_eq!(strict.code, Some(1), "{strict:?}");
    assert_eq!(outputs(&strict)["result"], "rolled-back");
    assert!(
        fx.ups().iter().any(|u| u == "api-3 (back)"),
        "{:?}",
        fx.ups()
    );
}

#[test]
fn failing_pre_deploy_host_hook_changes_nothing() {
    let fx = Fixture::new(None);
    let before = fx.env_files();
    let out = fx.deploy(&[(
        "SSH_DEPLOY_HOOK",
        "pre-deploy@hosts=echo not today >&2; exit 3",
    )]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(outputs(&out)["result"], "failed");
    assert!(out.stderr.contains("not today"), "{}", out.stderr);
    assert!(fx.argv().is_empty(), "nothing pulled: {:?}", fx.argv());
    assert_eq!(fx.env_files(), before);
}

/// A failing migration (run after the env files are written, before any `up`) restores the
/// env files and touches no service; on-rollback@hosts hears about it. The real engine's
/// `docker compose run` with the new image is in tests/compose_engine.rs.
#[test]
fn failing_migration_restores_the_env_files_and_touches_no_service() {
    let fx = Fixture::new(None);
    let before = fx.env_files();
    let out = fx.deploy(&[
        (
            "SSH_DEPLOY_MIGRATE",
            "grep -q \"API_IMAGE='registry.example/api:v2'\" .env && echo migration failed >&2 && exit 4",
        ),
        (
            "SSH_DEPLOY_HOOK",
            "on-rollback@hosts=echo \"on-rollback $SSH_DEPLOY_RESULT\" >> lifecycle.log",
        ),
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("migration failed"), "{}", out.stderr);
    assert!(fx.ups().is_empty(), "no service touched: {:?}", fx.ups());
    assert_restored(&fx, &before);
    assert_eq!(
        std::fs::read_to_string(project(fx.work.path()).join("lifecycle.log")).expect("hook ran"),
        "on-rollback rolled-back\n"
    );
}

/// `--schedule` and `--max-failed` on a compose fleet (issue 22, point 5): three real sshd
/// hosts (one machine, so they share the project dir and the stand-in; each has its own deploy
/// root, so its own lock and release record). The stand-in fails `up api-2` on the second host
/// (it knows the host by the sshd port in SSH_CONNECTION).
struct ComposeFleet {
    fx: Fixture,
    extra: Vec<Sshd>,
}

impl ComposeFleet {
    fn new() -> Self {
        let fx = Fixture::new(None);
        let extra = vec![Sshd::start(), Sshd::start()];
        let public = std::fs::read_to_string(fx.sshd.dir().join("user_key.pub")).expect("key");
        for sshd in &extra {
            let mut keys = std::fs::OpenOptions::new()
                .append(true)
                .open(sshd.dir().join("authorized_keys"))
                .expect("authorized_keys");
            std::io::Write::write_all(&mut keys, public.as_bytes()).expect("append");
        }
        let mut inventory = String::from("user: root\nhosts:\n");
        for (index, port) in Self::ports(&fx, &extra).iter().enumerate() {
            inventory.push_str(&format!(
                "  host-{index}: {{ address: 127.0.0.1, port: {port}, root: \"{}\" }}\n",
                fx.path(&format!("root-{index}")).display()
            ));
        }
        std::fs::write(fx.path("inventory.yaml"), inventory).expect("write");
        Self { fx, extra }
    }

    fn ports(fx: &Fixture, extra: &[Sshd]) -> Vec<u16> {
        std::iter::once(fx.sshd.port())
            .chain(extra.iter().map(Sshd::port))
            .collect()
    }

    fn fail(&self, host: usize, service: &str) {
        let port = Self::ports(&self.fx, &self.extra)[host];
        self.fx.script(&format!("fail-port-{port}-{service}"), "");
    }

    fn deploy(&self, extra: &[(&str, &str)]) -> Output {
        let fx = &self.fx;
        let known: Vec<String> = std::iter::once(fx.sshd.known_hosts_line())
            .chain(self.extra.iter().map(Sshd::known_hosts_line))
            .collect();
        let mut command = tool_command(env!("CARGO_BIN_EXE_ssh-deploy"));
        command
            .arg("deploy")
            .current_dir(fx.work.path())
            .env("SSH_DEPLOY_STRATEGY", "compose")
            .env("SSH_DEPLOY_COMPOSE_FILE", fx.path("compose-deploy.yaml"))
            .env("SSH_DEPLOY_INVENTORY", fx.path("inventory.yaml"))
            .env("SSH_DEPLOY_PRIVATE_KEY", fx.sshd.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", known.join("\n"))
            .env("SSH_DEPLOY_RELEASE_ID", "v2")
            .env("OPENAI_API_KEY", SECRET)
            .env("TAG", "v2");
        for (key, value) in extra {
            command.env(key, value);
        }
        run(&mut command)
    }
}

fn host_results(out: &Output) -> Vec<String> {
    outputs(out)["compose-report"]
        .as_array()
        .expect("compose-report")
        .iter()
        .map(|h| h["result"].as_str().expect("result").to_owned())
        .collect()
}

#[test]
fn a_failed_host_within_the_budget_is_rolled_back_and_the_schedule_goes_on() {
    let fleet = ComposeFleet::new();
    fleet.fail(1, "api-2");
    let schedule = [
        ("SSH_DEPLOY_SCHEDULE", "1, 100%"),
        ("SSH_DEPLOY_MAX_FAILED", "1"),
    ];
    let plan = fleet.deploy(&[schedule[0], schedule[1], ("SSH_DEPLOY_DRY_RUN", "true")]);
    assert_eq!(plan.code, Some(0), "{plan:?}");
    assert!(
        plan.stderr
            .contains("plan: 2 batch(es) from --schedule `1, 100%`")
            && plan.stderr.contains("failure budget: 1 host(s)"),
        "{}",
        plan.stderr
    );
    let out = fleet.deploy(&schedule);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(outputs(&out)["result"], "partial");
    // host-1 and host-2 deployed in parallel, in the second batch; reports in host order.
    assert_eq!(host_results(&out), ["deployed", "rolled-back", "deployed"]);
    assert!(
        out.stderr.contains("within the failure budget"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failed_host_beyond_the_budget_stops_the_schedule() {
    let fleet = ComposeFleet::new();
    fleet.fail(1, "api-2");
    let out = fleet.deploy(&[("SSH_DEPLOY_SCHEDULE", "1")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(outputs(&out)["result"], "rolled-back");
    assert_eq!(host_results(&out), ["deployed", "rolled-back"]);
    assert!(
        !fleet.fx.path("root-2/.ssh-deploy").exists(),
        "host-2 was never touched"
    );
}

/// The lock rides in the first remote command and the release log and unlock in the last
/// (issue 19: one login shell fewer each), with the lock's semantics unchanged: a held lock
/// stops the deploy before anything runs and stays its holder's; a lock whose lease ran out is
/// taken over; a success is logged once and the lock released; a rollback is logged as such.
#[test]
fn the_lock_and_the_release_log_ride_in_the_first_and_last_commands() {
    let fx = Fixture::new(None);
    let state = fx.path("state/.ssh-deploy");
    let log = || std::fs::read_to_string(state.join("log")).unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let hold = |lease: u64| {
        std::fs::create_dir_all(state.join("lock")).expect("mkdir");
        std::fs::write(
            state.join("lock/owner"),
            format!("token=0therrun\nowner=someone\nrun=77\nsince={now}\n"),
        )
        .expect("owner");
        std::fs::write(state.join("lock/lease"), format!("{lease}\n")).expect("lease");
    };

    // Held by a live deploy: nothing runs, the lock stays its holder's.
    hold(now + 600);
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("another deploy holds the lock"),
        "{}",
        out.stderr
    );
    assert!(fx.argv().is_empty(), "nothing ran: {:?}", fx.argv());
    assert!(
        std::fs::read_to_string(state.join("lock/owner"))
            .expect("still held")
            .contains("token=0therrun")
    );
    assert_eq!(log(), "");

    // Its lease ran out: taken over, deployed, logged once, released.
    hold(now - 100);
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("taking over the deploy lock"),
        "{}",
        out.stderr
    );
    assert_eq!(fx.ups().len(), 6, "{:?}", fx.ups());
    let lines: Vec<String> = log().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("v2\t") && lines[0].ends_with("\tsuccess"),
        "{lines:?}"
    );
    assert!(!state.join("lock").exists(), "lock released");

    // A free lock: taken in the first command; a failed gate is rolled back and logged so.
    let fx = Fixture::new(Some("api-3"));
    let state = fx.path("state/.ssh-deploy");
    let out = fx.deploy(&[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let log = std::fs::read_to_string(state.join("log")).expect("log");
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.trim_end().ends_with("\trolled-back"), "{log}");
    assert!(!state.join("lock").exists(), "lock released");
}

/// The lock's lease is renewed for as long as a compose deploy works on the host, a gate
/// included: the shell started ahead for the next command renews it while it waits (issue 19;
/// before, compose commands never renewed it, so a second deploy took the lock over from a live
/// one once a lease had passed). A 3 s lease and a gate held for 4.5 s: the second deploy is
/// refused, the first goes on and releases the lock.
#[test]
fn the_lease_is_renewed_through_a_gate_longer_than_it() {
    let fx = Fixture::new(None);
    let open = fx.path("gate-open");
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gate = {
        let open = open.clone();
        let asked = asked.clone();
        HttpServer::start(move |request| {
            if request.path.ends_with("/api-2") && !open.exists() {
                asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Reply::text(503, "warming up")
            } else {
                Reply::text(200, "ok")
            }
        })
    };
    std::fs::write(
        fx.path("api-gate.yaml"),
        format!(
            "checks:\n  - name: api\n    attempt_timeout: 2s\n    http: {{ url: 'http://{{host}}:{}/health/{{service}}' }}\n    readiness: {{ interval: 50ms, deadline: 60s }}\n",
            gate.addr().port()
        ),
    )
    .expect("gate");
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| fx.deploy(&[("SSH_DEPLOY_LOCK_LEASE", "3s")]));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while asked.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < until && !first.is_finished(),
                "the gate of api-2 never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Not synchronisation: the lease must have run out had nobody renewed it.
        std::thread::sleep(std::time::Duration::from_millis(4500));
        let second = fx.deploy(&[
            ("SSH_DEPLOY_LOCK_LEASE", "3s"),
            ("SSH_DEPLOY_RELEASE_ID", "v3"),
        ]);
        assert_eq!(second.code, Some(3), "{second:?}");
        assert!(
            second.stderr.contains("another deploy holds the lock"),
            "{}",
            second.stderr
        );
        std::fs::write(&open, "").expect("open the gate");
        first.join().expect("first deploy")
    });
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(!first.stderr.contains("taking over"), "{}", first.stderr);
    assert!(!fx.path("state/.ssh-deploy/lock").exists(), "lock released");
    assert_eq!(fx.ups().len(), 6, "{:?}", fx.ups());
}
