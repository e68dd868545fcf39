//! Test harness shared by the suite's tests.
//!
//! - [`tool_command`]: spawn one of our binaries with a scrubbed, pinned environment, so a test
//!   running inside a GitHub Actions job never writes into the real job's `GITHUB_OUTPUT`.
//! - [`require_program`]: a missing peer (sshd, moto_server, git) fails the test with the command
//!   that installs it; tests never skip themselves.
//! - [`process::spawn`] / [`process::Scope`]: every process a test starts is stopped by the
//!   test (its tree and every process carrying its marker), on success and on panic.
//! - [`moto::Moto`]: a real `moto_server` (AWS emulator) on loopback, killed on drop.
//! - [`cli_contract`]: the behaviour every binary's command line must have.
//! - [`hostile`]: every input fed a hostile value, the output checked against the runner's rules.
//! - [`GitRepo`]: a real git repository in a temporary directory (also bare, as an origin).
//! - [`HttpServer`]: a real HTTP(S) server on 127.0.0.1 whose every reply the test scripts.
//! - [`engine::Engine`]: a real Docker Engine + compose v2 + loopback registry (issue 19).
//! - [`fleet::Fleet`]: several hosts, each its own network namespace with its own real sshd,
//!   whose links a test can take down, throttle or cut.

#![expect(
    clippy::unwrap_used,
    reason = "test harness: a failed setup should panic loudly"
)]

pub mod cli_contract;
pub mod engine;
pub mod fleet;
pub mod git_repo;
pub mod haproxy;
pub mod hostile;
pub mod http_server;
pub mod moto;
pub mod process;
pub mod sshd;
pub mod tls;

pub use git_repo::GitRepo;
pub use http_server::HttpServer;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment prefixes removed from every spawned binary (the runner's own variables).
pub const SCRUBBED_ENV_PREFIXES: &[&str] = &[
    "GITHUB_",
    "RUNNER_",
    "ACTIONS_",
    "INPUT_",
    // Other CI systems change-detect reads (GitLab, Buildkite, Jenkins): a test run inside one
    // of them must not see its build's variables.
    "GITLAB_",
    "CI_",
    "BUILDKITE",
    "JENKINS_",
    "CHANGE_",
    "GIT_PREVIOUS_",
];

/// Single variables removed for the same reason (a prefix would catch `GIT_COMMITTER_*`).
pub const SCRUBBED_ENV_NAMES: &[&str] = &["GIT_COMMIT"];

/// The directory of the crate under test, read when the test runs: cargo sets
/// `CARGO_MANIFEST_DIR` for every test binary it runs. Not `env!` (compile time): a target
/// directory shared by two checkouts at different paths (CI's and a local one) keeps a test
/// binary that cargo considers fresh, with the other checkout's absolute path baked in.
#[allow(clippy::disallowed_methods)] // no runner environment here: cargo's own variable
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The workspace root (the nearest directory above the crate under test whose `Cargo.toml`
/// declares `[workspace]`).
pub fn workspace_root() -> PathBuf {
    let start = manifest_dir();
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.contains("[workspace]"))
        })
        .map_or(start.clone(), Path::to_path_buf)
}

/// Shell function for restart commands in tests: `alive PID` is true while the process runs.
/// A zombie counts as gone: it has released its port, and pid 1 (which reaps orphans) may take
/// over a second here, while `kill -0` calls a zombie alive.
/// (`sh` has no local variables: the function's one variable has a name no caller uses.)
pub const SH_ALIVE: &str = "alive() { alive_state=$(sed 's/.*) //' /proc/\"$1\"/stat 2>/dev/null | cut -c1); [ -n \"$alive_state\" ] && [ \"$alive_state\" != Z ]; }; ";

/// A loopback port that was free a moment ago, for a server that must be told its port (one
/// that can bind port 0 itself should).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A command for `program` with the runner's variables and the tools' own `*_`-prefixed
/// variables removed, and `LC_ALL`, `COLUMNS`, `NO_COLOR` pinned.
pub fn tool_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    #[expect(
        clippy::disallowed_methods,
        reason = "the harness must see the real environment to scrub it"
    )]
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        let tool_prefixed = TOOL_ENV_PREFIXES.iter().any(|p| key_text.starts_with(p));
        if SCRUBBED_ENV_PREFIXES
            .iter()
            .any(|p| key_text.starts_with(p))
            || SCRUBBED_ENV_NAMES.contains(&key_text.as_ref())
            || tool_prefixed
        {
            command.env_remove(&key);
        }
    }
    command
        .env("LC_ALL", "C.UTF-8")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1");
    command
}

/// Env prefixes of the suite's own binaries; a developer's shell may set some.
pub const TOOL_ENV_PREFIXES: &[&str] = &[
    "CHANGE_DETECT_",
    "RELEASE_DESCRIPTOR_RENDER_",
    "BUNDLE_JSON_GEN_",
    "SSH_DEPLOY_",
    "ECS_TASKDEF_UPDATE_",
    "HEALTH_GATE_",
];

/// Finds `program` on `PATH` or panics with the command that installs it.
pub fn require_program(program: &str, install: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", program])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    match found {
        Some(path) if !path.as_os_str().is_empty() => path,
        _ => panic!(
            "`{program}` is required by this test and is not installed.\n\
             Install it with: {install}\n\
             (scripts/test installs every test dependency)"
        ),
    }
}

/// The captured result of a spawned command.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Stdout, lossily decoded.
    pub stdout: String,
    /// Stderr, lossily decoded.
    pub stderr: String,
}

/// Runs a command to completion and captures its output.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot spawn {command:?}: {error}"));
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Sends a signal (`INT`, `TERM`, ...) to a spawned child, as a cancelled CI run would.
pub fn send_signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap_or_else(|error| panic!("cannot run kill: {error}"));
    assert!(status.success(), "kill -{name} {} failed", child.id());
}

/// Waits until `child` exits, failing with `why` if it has not within `limit`.
pub fn wait_for_exit(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    why: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{why} (still running after {limit:?})"
        );
        // Polling an exit status: nothing else to wait on without a signal handler.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
