//! What every scenario sets up: the suite's actions at a release tag (built, packed, served
//! from a loopback mirror, as the act suite does), a user's repository made from
//! examples/seed-services, the fleet's hosts with a deploy root of their own, act runs whose
//! log is watched as it grows, and nginx.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::fleet::{Fleet, FleetHost};
use test_support::process::{ChildGuard, spawn};
use test_support::{require_program, run, workspace_root};

use crate::fixture::{self, ActRun, Mirror, copy, git};
use crate::log::ActLog;

/// The suite's actions as a user's workflow gets them: `deploy-suite/actions@v1`, installed
/// from a loopback mirror of the release.
pub(crate) struct Suite {
    pub(crate) dir: tempfile::TempDir,
    mirror: Mirror,
    release: PathBuf,
    runs: std::cell::Cell<usize>,
    /// The jobs of the last act run and their seconds (see [`Suite::last_jobs`]).
    last_jobs: std::cell::RefCell<Vec<(String, u64)>>,
}

impl Suite {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bin, target) = fixture::binaries(dir.path());
        let mirror = Mirror::start(&bin, &target);
        let release = fixture::release_checkout(dir.path(), &mirror, &[]);
        Self {
            dir,
            mirror,
            release,
            runs: std::cell::Cell::new(0),
            last_jobs: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The jobs of the last act run with their wall time (`build 21 s, staging 9 s, ...`),
    /// from act's log (one-second timestamps), in the order they started.
    pub(crate) fn last_jobs(&self) -> String {
        self.last_jobs
            .borrow()
            .iter()
            .map(|(job, seconds)| format!("{job} {seconds} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Runs act on `push` in `repo` with `vars` and the deploy key; while it runs, the first
    /// moment a log line contains `watch_for` is noted (the returned instant).
    pub(crate) fn act(
        &self,
        repo: &UserRepo,
        event: &Path,
        vars: Vec<(String, String)>,
        key: &str,
        watch_for: &str,
    ) -> (ActLog, Option<Instant>) {
        self.act_with_env(repo, event, vars, key, watch_for, Vec::new())
    }

    /// [`Suite::act`] with `extra_env` in every job's environment (e.g. the engine's
    /// `DOCKER_HOST`, which a real runner has by default).
    pub(crate) fn act_with_env(
        &self,
        repo: &UserRepo,
        event: &Path,
        vars: Vec<(String, String)>,
        key: &str,
        watch_for: &str,
        extra_env: Vec<(String, String)>,
    ) -> (ActLog, Option<Instant>) {
        self.act_in(&repo.path, event, vars, key, watch_for, extra_env)
    }

    /// [`Suite::act_with_env`] in any repository `checkout` (not made by [`UserRepo`]).
    pub(crate) fn act_in(
        &self,
        checkout: &Path,
        event: &Path,
        vars: Vec<(String, String)>,
        key: &str,
        watch_for: &str,
        extra_env: Vec<(String, String)>,
    ) -> (ActLog, Option<Instant>) {
        let number = self.runs.get() + 1;
        self.runs.set(number);
        let scratch = self.dir.path().join(format!("act-{number}"));
        let artifacts = scratch.join("artifacts");
        std::fs::create_dir_all(&artifacts).expect("artifacts");
        let shim = workspace_root().join("suite-tests/workflows/stand-ins/bin");
        #[expect(
            clippy::disallowed_methods,
            reason = "the act process's PATH, with the rustup stand-in first"
        )]
        let path = std::env::var("PATH").unwrap_or_default();
        let log_file = scratch.join("act-push.jsonl");
        let seen = LogWatch::start(log_file.clone(), watch_for);
        let log = ActRun {
            checkout: checkout.to_owned(),
            scratch,
            workflows: ".github/workflows/",
            event: "push",
            event_file: Some(event.to_owned()),
            vars,
            secrets: vec![("DEPLOY_SSH_KEY".into(), key.to_owned())],
            env: vec![
                (
                    "DEPLOY_SUITE_DOWNLOAD_URL".into(),
                    self.mirror.download_url(),
                ),
                (
                    "DEPLOY_SUITE_CA_FILE".into(),
                    self.mirror.ca_file().display().to_string(),
                ),
                // The registry is not reachable (act runs behind a dead proxy): the build uses
                // the crates cargo already has, at the versions of the workspace's lock file.
                // The gate runs on the runner and dials the fleet's addresses directly, past
                // the dead proxy the act harness sets for everything else.
                (
                    "NO_PROXY".into(),
                    "127.0.0.1,localhost,10.213.0.0/16".into(),
                ),
                (
                    "no_proxy".into(),
                    "127.0.0.1,localhost,10.213.0.0/16".into(),
                ),
                ("CARGO_NET_OFFLINE".into(), "true".into()),
                // A runner-level target dir, as a self-hosted runner with a persistent build
                // dir sets it (the template adds no cache of its own): act copies the
                // repository into a new directory per run, with fresh mtimes and without
                // ignored files, so only this keeps the dependencies compiled across runs.
                // The workflow's `cargo build` still runs and recompiles the services'
                // own crate every run (its sources are new files to cargo).
                (
                    "CARGO_TARGET_DIR".into(),
                    services_target_dir().display().to_string(),
                ),
                ("CARGO_TERM_COLOR".into(), "never".into()),
                ("NPM_CONFIG_OFFLINE".into(), "true".into()),
                ("NPM_CONFIG_AUDIT".into(), "false".into()),
                ("NPM_CONFIG_FUND".into(), "false".into()),
                ("NPM_CONFIG_UPDATE_NOTIFIER".into(), "false".into()),
            ]
            .into_iter()
            .chain(extra_env)
            .collect(),
            process_env: vec![
                ("PATH".into(), format!("{}:{path}", shim.display())),
                (
                    "ACT_SUITE_RUSTUP".into(),
                    require_program("rustup", "install Rust with rustup")
                        .display()
                        .to_string(),
                ),
                (
                    "ACT_SUITE_REPOS".into(),
                    self.dir.path().join("remotes").display().to_string(),
                ),
                (
                    "ACT_SUITE_ARTIFACTS".into(),
                    artifacts.display().to_string(),
                ),
            ],
            local_repositories: vec![("deploy-suite/actions@v1".into(), self.release.clone())],
            ..ActRun::default()
        }
        .run();
        *self.last_jobs.borrow_mut() = job_seconds(&log_file);
        (log, seen.finish())
    }
}

/// Per job of an act log: seconds from its first line to its last (act stamps lines to the
/// second: `"time":"2026-12-07T06:35:11Z"`), in the order the jobs started.
fn job_seconds(log_file: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(log_file).unwrap_or_default();
    let mut jobs: Vec<(String, u64, u64)> = Vec::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(job), Some(time)) = (event["jobID"].as_str(), event["time"].as_str()) else {
            continue;
        };
        let Some(second) = time
            .split_once('T')
            .map(|(_, clock)| clock.trim_end_matches('Z'))
            .and_then(|clock| {
                let mut parts = clock.split(':').map(|part| part.parse::<u64>().ok());
                Some(parts.next()?? * 3600 + parts.next()?? * 60 + parts.next()??)
            })
        else {
            continue;
        };
        match jobs.iter_mut().find(|(name, _, _)| name == job) {
            Some((_, _, last)) => *last = second,
            None => jobs.push((job.to_owned(), second, second)),
        }
    }
    jobs.into_iter()
        .map(|(job, first, last)| (job, (last + 86_400 - first) % 86_400))
        .collect()
}

/// Notes the first moment a line of a growing file contains a text.
struct LogWatch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Option<Instant>>,
}

impl LogWatch {
    fn start(file: PathBuf, needle: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let needle = needle.to_owned();
        let handle = std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                let done = flag.load(Ordering::SeqCst);
                if !needle.is_empty() {
                    if let Ok(text) = std::fs::read(&file) {
                        // Lines may arrive in pieces: look again from the last line start.
                        let from = text[..seen.min(text.len())]
                            .iter()
                            .rposition(|byte| *byte == b'\n')
                            .map_or(0, |newline| newline + 1);
                        if String::from_utf8_lossy(&text[from..]).contains(&needle) {
                            return Some(Instant::now());
                        }
                        seen = text.len();
                    }
                }
                if done {
                    return None;
                }
                // Polling a file another process appends to: 20 ms is the resolution.
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, handle }
    }

    fn finish(self) -> Option<Instant> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("log watch")
    }
}

/// The same path on every host, each with its own content: a bind mount of a private
/// directory inside the mount namespace of the host's sshd (`ip netns exec` gives each its
/// own), which every session and every service started over SSH inherits. A real fleet's
/// hosts each have their own /opt; the fleet's hosts share this machine's file system.
pub(crate) struct HostDirs {
    /// The path the deploy uses on every host.
    pub(crate) shared_path: PathBuf,
    /// Per host (in fleet order), where that host's view of `shared_path` lives here.
    pub(crate) private: Vec<PathBuf>,
}

pub(crate) fn host_dirs(fleet: &Fleet, dir: &Path) -> HostDirs {
    let nsenter = require_program("nsenter", "apt-get install -y util-linux");
    let shared_path = dir.join("opt");
    std::fs::create_dir_all(&shared_path).expect("mount point");
    let mut private = Vec::new();
    for (index, host) in fleet.hosts().iter().enumerate() {
        let own = dir.join(format!("host-{index}/opt"));
        std::fs::create_dir_all(&own).expect("host dir");
        std::fs::write(own.join("HOST"), format!("{index}\n")).expect("marker");
        let sshd = sshd_pid(host);
        let mounted = run(Command::new(&nsenter)
            .arg("-t")
            .arg(sshd.to_string())
            .args(["-m", "mount", "--bind"])
            .arg(&own)
            .arg(&shared_path));
        assert_eq!(mounted.code, Some(0), "bind mount: {}", mounted.stderr);
        // Checked over SSH, as the deploy will see it.
        let seen = run(fleet
            .ssh(host, Duration::from_secs(10))
            .arg(format!("cat '{}/HOST'", shared_path.display())));
        assert_eq!(
            seen.stdout.trim(),
            index.to_string(),
            "host {index} sees its own {}: {}",
            shared_path.display(),
            seen.stderr
        );
        private.push(own);
    }
    HostDirs {
        shared_path,
        private,
    }
}

/// The host's sshd listener (the oldest sshd in its namespace).
fn sshd_pid(host: &FleetHost) -> u32 {
    let pids = run(Command::new("ip").args(["netns", "pids", &host.namespace()]));
    pids.stdout
        .split_whitespace()
        .filter_map(|pid| pid.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "sshd")
        })
        .min()
        .unwrap_or_else(|| panic!("no sshd in {}", host.namespace()))
}

/// The user's repository: examples/seed-services (Cargo project, frontend, deploy/), the
/// bare-metal template and the scenario's workflows in .github/workflows.
pub(crate) struct UserRepo {
    pub(crate) path: PathBuf,
    dir: PathBuf,
    commits: std::cell::Cell<usize>,
}

impl UserRepo {
    pub(crate) fn new(dir: &Path, workflows: &[&str]) -> Self {
        let root = workspace_root();
        let path = dir.join("repo");
        let example = root.join("examples/seed-services");
        for part in ["Cargo.toml", "src", "frontend", "deploy", "README.md"] {
            copy(&example.join(part), &path.join(part));
        }
        copy(
            &root.join("action-templates/bare-metal-release.yml"),
            &path.join(".github/workflows/bare-metal-release.yml"),
        );
        for workflow in workflows {
            copy(
                &root.join(format!("suite-tests/workflows/seeds/{workflow}.yml")),
                &path.join(format!(".github/workflows/{workflow}.yml")),
            );
        }
        // The lock file: the workspace's, trimmed by cargo to what the services use, so the
        // offline `--locked` build finds every crate at a version cargo already has.
        copy(&root.join("Cargo.lock"), &path.join("Cargo.lock"));
        let cargo = require_program("cargo", "install Rust with rustup");
        let trimmed = run(Command::new(cargo)
            .args(["update", "--workspace", "--offline"])
            .current_dir(&path)
            .stdout(Stdio::null()));
        assert_eq!(trimmed.code, Some(0), "cargo update: {}", trimmed.stderr);
        std::fs::write(path.join(".gitignore"), "target\nfrontend/dist/\ndist/\n")
            .expect(".gitignore");
        prebuild_services(&path);
        git(&path, &["init", "-q", "-b", "main"]);
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-q", "-m", "initial"]);
        Self {
            path,
            dir: dir.to_owned(),
            commits: std::cell::Cell::new(0),
        }
    }

    /// A repository of `files` (source here, path in the repository; directories copied
    /// whole), committed once; for seeds whose repository is not a cargo project.
    pub(crate) fn from_files(dir: &Path, files: &[(PathBuf, &str)]) -> Self {
        let path = dir.join("repo");
        for (source, target) in files {
            copy(source, &path.join(target));
        }
        git(&path, &["init", "-q", "-b", "main"]);
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-q", "-m", "initial"]);
        Self {
            path,
            dir: dir.to_owned(),
            commits: std::cell::Cell::new(0),
        }
    }

    /// A user's repository holding `files` (path, content, mode) and the scenario's
    /// workflows, committed on main: for a seed whose repository is not examples/seed-services.
    pub(crate) fn with_files(
        dir: &Path,
        files: &[(&str, String, u32)],
        workflows: &[&str],
    ) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("repo");
        for (file, text, mode) in files {
            let target = path.join(file);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::write(&target, text).expect("write");
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))
                .expect("chmod");
        }
        for workflow in workflows {
            copy(
                &workspace_root().join(format!("suite-tests/workflows/seeds/{workflow}.yml")),
                &path.join(format!(".github/workflows/{workflow}.yml")),
            );
        }
        git(&path, &["init", "-q", "-b", "main"]);
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-q", "-m", "initial"]);
        Self {
            path,
            dir: dir.to_owned(),
            commits: std::cell::Cell::new(0),
        }
    }

    /// Tags HEAD `tag` and returns the push event of the tag (`refs/tags/<tag>`).
    pub(crate) fn tag(&self, tag: &str) -> PathBuf {
        git(&self.path, &["tag", tag]);
        self.event_of(&format!("refs/tags/{tag}"), &"0".repeat(40))
    }

    /// The current commit.
    pub(crate) fn head(&self) -> String {
        git(&self.path, &["rev-parse", "HEAD"])
    }

    /// The release id the template gives HEAD (its first 12 hex digits).
    pub(crate) fn release_id(&self) -> String {
        self.head()[..12].to_owned()
    }

    /// Commits `edits` (file, text replaced, replacement; the text must be there) and returns
    /// the push event for it.
    pub(crate) fn commit(&self, message: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
        let before = self.head();
        for (file, from, to) in edits {
            let path = self.path.join(file);
            let text = std::fs::read_to_string(&path).expect("read");
            assert!(text.contains(from), "{file} has no {from:?}");
            std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        }
        git(&self.path, &["commit", "-q", "-am", message]);
        self.event(&before)
    }

    /// The push event of HEAD (`before`: the commit pushed before it).
    pub(crate) fn event(&self, before: &str) -> PathBuf {
        self.event_of("refs/heads/main", before)
    }

    /// The push event of HEAD to `reference` (`before`: what the reference pointed at).
    fn event_of(&self, reference: &str, before: &str) -> PathBuf {
        let number = self.commits.get() + 1;
        self.commits.set(number);
        let after = self.head();
        let event = self.dir.join(format!("push-{number}.json"));
        std::fs::write(
            &event,
            format!(
                "{{\"ref\":\"{reference}\",\"before\":\"{before}\",\"after\":\"{after}\",\"forced\":false,\"repository\":{{\"default_branch\":\"main\",\"full_name\":\"acme/pagi\"}},\"head_commit\":{{\"id\":\"{after}\"}}}}"
            ),
        )
        .expect("event");
        event
    }
}

/// Compiles the services and their dependencies into [`services_target_dir`] once per test
/// process, before any act run, with the command the template runs (every binary), so the
/// workflow's own `cargo build` only recompiles the services' crate. Without it the first act
/// run would compile tonic and tokio inside its job (minutes on a loaded machine, past the act
/// run's bound); the dir outlives the test, so on a warm cache this is a cargo no-op.
fn prebuild_services(repo: &Path) {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let started = Instant::now();
        let cargo = require_program("cargo", "install Rust with rustup");
        let mut command = test_support::tool_command(cargo);
        // cargo test's per-package variables would reach build scripts that track them; the
        // act run's cargo does not have them (scripts/build-static unsets the same).
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_MANIFEST_LINKS",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            command.env_remove(name);
        }
        let log_path = repo.with_file_name("prebuild.log");
        let log = std::fs::File::create(&log_path).expect("prebuild log");
        let mut child = spawn(
            command
                .args(["build", "--release", "--locked", "--offline", "--bins"])
                .env("CARGO_TARGET_DIR", services_target_dir())
                .env("CARGO_TERM_COLOR", "never")
                .current_dir(repo)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log),
        );
        // A cold build of tonic and tokio takes ~11 min on two loaded cores; a warm one less
        // than a minute.
        let status = test_support::wait_for_exit(
            &mut child,
            Duration::from_secs(40 * 60),
            "cargo build of the seed services",
        );
        assert!(
            status.success(),
            "cargo build of the seed services: {status}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        say(&format!(
            "seed services compiled into {} in {:.1} s (once per test process)",
            services_target_dir().display(),
            started.elapsed().as_secs_f64()
        ));
    });
}

/// `<target dir>/seed-services`: the test binary runs from `<target dir>/debug/deps`.
fn services_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("seed-services"))
        .expect("target dir")
}

/// nginx as the master process in the foreground, optionally inside a host's namespace;
/// stopped (master and workers) when dropped.
pub(crate) struct Nginx {
    _child: ChildGuard,
}

impl Nginx {
    /// The command line with the private prefix and config (for `-t`, `-s reload`).
    pub(crate) fn command(dir: &Path) -> String {
        format!(
            "nginx -p '{d}' -c '{d}/nginx.conf' -e '{d}/error.log'",
            d = dir.display()
        )
    }

    /// Starts nginx with `http_body` inside `http { }`; in `namespace` when given; returns
    /// once `wait_on` accepts connections.
    pub(crate) fn start(
        dir: &Path,
        http_body: &str,
        namespace: Option<&str>,
        wait_on: std::net::SocketAddr,
    ) -> Self {
        require_program("nginx", "apt-get install -y nginx");
        std::fs::create_dir_all(dir).expect("nginx dir");
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n\
                   access_log off;\n\
                   client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
                   fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
                   {http_body}\n\
                 }}\n"
            ),
        )
        .expect("nginx.conf");
        let mut command = match namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace, "sh", "-c"]);
                command
            }
            None => {
                let mut command = Command::new("sh");
                command.arg("-c");
                command
            }
        };
        command
            .arg(format!("exec {} -g 'daemon off;'", Self::command(dir)))
            .stdin(Stdio::null());
        let child = spawn(&mut command);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect_timeout(&wait_on, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {wait_on} within 20 s: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { _child: child }
    }
}

/// Lines of `<root>/shared/log/restarts.log` (`<epoch ms> <service> <release>`) on one host.
pub(crate) fn restarts(root: &Path) -> Vec<(u64, String, String)> {
    std::fs::read_to_string(root.join("shared/log/restarts.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((
                fields.next()?.parse().ok()?,
                fields.next()?.to_owned(),
                fields.next()?.to_owned(),
            ))
        })
        .collect()
}

/// Where `<root>/current` points (the release id), if anywhere.
pub(crate) fn current(root: &Path) -> Option<String> {
    std::fs::read_link(root.join("current"))
        .ok()
        .and_then(|target| {
            target
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
}

/// A line of the scenario's summary on stderr (shown with `--nocapture`).
#[expect(
    clippy::print_stderr,
    reason = "the scenario's summary is for the person running the test"
)]
pub(crate) fn say(line: &str) {
    eprintln!("{line}");
}
