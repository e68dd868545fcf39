//! `scripts/demo` end to end over a real OpenSSH sshd on loopback: change-detect on a real git
//! history, release.yaml and bundles rendered, the artifact packed and deployed with ssh-deploy,
//! services restarted in order and gated by health-gate, then a broken release that fails the
//! gate and is rolled back, with the previous release serving again. The same script a newcomer
//! runs; `DEMO_TRANSPORT=ssh` makes it fail (not fall back to `--hosts local`) without sshd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SSH_INSTALL: &str = "apt-get install -y openssh-server openssh-client";
/// Generous: the first run may build the static binaries (profile `demo`) on a loaded machine.
const DEMO_DEADLINE: Duration = Duration::from_secs(40 * 60);

/// Every process the demo recorded (services' pid files, sshd) whose command line points into
/// the demo's work dir; after the run they must all be gone.
fn demo_processes(work: &Path) -> Vec<(u32, String)> {
    let mut pid_files: Vec<PathBuf> = vec![work.join("sshd.pid")];
    if let Ok(entries) = std::fs::read_dir(work.join("host/app/shared/run")) {
        pid_files.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
    }
    let marker = work.to_string_lossy().into_owned();
    pid_files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| text.trim().parse::<u32>().ok())
        .filter_map(|pid| {
            // The command line guards against a pid reused by an unrelated process.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&marker).then_some((pid, cmdline))
        })
        .collect()
}

/// Kills whatever the demo left running, also when an assertion fails first.
struct Reaper<'a>(&'a Path);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for (pid, _) in demo_processes(self.0) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Runs the demo with stdout/stderr in files (a leaked process holding a pipe cannot hang the
/// test) and a deadline after which it is killed.
fn run_demo(work: &Path) -> (Option<i32>, String) {
    let root = test_support::workspace_root();
    let log_path = work.join("demo.log");
    let log = std::fs::File::create(&log_path).expect("demo log");
    // The guard stops the demo's process tree and everything carrying its marker; the Reaper
    // catches what the demo's own sshd started (sessions do not inherit the marker).
    let mut child = test_support::process::spawn(
        test_support::tool_command(root.join("scripts/demo"))
            .env("DEMO_TRANSPORT", "ssh")
            .env("DEMO_WORK_DIR", work)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log),
    );
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > DEMO_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    (code, output)
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

#[test]
fn demo_deploys_gates_rolls_back_a_broken_release_and_the_previous_one_serves_again() {
    test_support::require_program("sshd", SSH_INSTALL);
    test_support::require_program("ssh-keygen", SSH_INSTALL);
    test_support::require_program("python3", "apt-get install -y python3");
    test_support::require_program("git", "apt-get install -y git");
    let work = tempfile::tempdir().expect("tempdir");
    let reaper = Reaper(work.path());

    let (code, output) = run_demo(work.path());
    assert_eq!(code, Some(0), "scripts/demo failed:\n{output}");

    let summary = json(&work.path().join("summary.json"));
    assert_eq!(summary["transport"], "ssh", "{summary}");
    assert_eq!(summary["changed"], "telemetry", "{summary}");
    let good = summary["good_release"].as_str().expect("good release");
    let broken = summary["broken_release"].as_str().expect("broken release");
    assert_ne!(good, broken);

    // First deploy: success, over SSH, services restarted in dependency order.
    let first = json(&work.path().join(format!("deploy-{good}.json")));
    assert_eq!(first["result"], "success", "{first}");
    let first_log = std::fs::read_to_string(work.path().join(format!("deploy-{good}.log")))
        .expect("first deploy log");
    let order: Vec<usize> = ["started memory", "started telemetry", "started gateway"]
        .iter()
        .map(|needle| first_log.find(needle).unwrap_or(usize::MAX))
        .collect();
    assert!(
        order[0] < order[1] && order[1] < order[2] && order[2] != usize::MAX,
        "restarts in dependency order:\n{first_log}"
    );
    assert!(
        first_log.contains("@127.0.0.1:"),
        "deployed over SSH:\n{first_log}"
    );

    // Broken deploy: the gate failed and ssh-deploy rolled back to the first release.
    let second = json(&work.path().join(format!("deploy-{broken}.json")));
    assert_eq!(second["result"], "rolled-back", "{second}");
    assert_eq!(second["previous-release-id"], good, "{second}");
    assert_eq!(summary["broken_exit"], 1, "{summary}");
    let second_log = std::fs::read_to_string(work.path().join(format!("deploy-{broken}.log")))
        .expect("second deploy log");
    assert!(
        second_log.contains("health gate failed") && second_log.contains("telemetry"),
        "the telemetry SSE check failed the gate:\n{second_log}"
    );

    // The previous release is current again and served: all three services said so.
    let current = std::fs::read_link(work.path().join("host/app/current")).expect("current link");
    assert_eq!(current, Path::new("releases").join(good));
    assert_eq!(summary["current_after"], format!("releases/{good}"));
    let serving = summary["serving_after"].as_str().expect("serving");
    assert_eq!(
        serving.matches(&format!("{good} built ")).count(),
        3,
        "gateway, telemetry and memory serve {good}: {serving}"
    );
    assert!(
        output.contains("the previous release serves again"),
        "{output}"
    );

    // Nothing the demo started is left running.
    let left = demo_processes(work.path());
    drop(reaper);
    assert!(left.is_empty(), "the demo left processes running: {left:?}");
}
