//! Every process a test starts is stopped by the test, on success and on failure (issue 25,
//! point 18).
//!
//! - [`spawn`] starts a command and hands back a [`ChildGuard`]: dropping it (also while a
//!   failed test unwinds) kills the child, everything below it in the process tree, and every
//!   process carrying the guard's [`Scope`] marker, then reaps the child.
//! - A [`Scope`] finds processes that left the tree: a service a restart command started with
//!   `setsid ... &` is reparented to pid 1, but it inherits the environment, so it still
//!   carries `DEPLOY_SUITE_TEST_SCOPE=<id>`. [`Scope::mark`] puts the marker on a command
//!   (`--hosts local` deploys); [`crate::sshd::Sshd`] passes its own into every session with
//!   sshd's `SetEnv`, so what a deploy starts over SSH is found too.
//! - `scripts/test` sets [`RUN_MARKER`] for the whole `cargo test` and fails when any process
//!   still carries it afterwards; [`sshd_set_env`] carries it over SSH as well.
//!
//! Markers are found in `/proc/PID/environ`, which shows the environment a program was started
//! with, unless it rewrote that memory for its process title (nginx, sshd): such programs are
//! found through the process tree instead.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Names the whole test run: `scripts/test` sets it to a fresh id for `cargo test`.
pub const RUN_MARKER: &str = "DEPLOY_SUITE_TEST_RUN";
/// Names one [`Scope`]: set on the commands a guard starts, inherited by their descendants.
pub const SCOPE_MARKER: &str = "DEPLOY_SUITE_TEST_SCOPE";
/// How long killed processes may take to disappear.
const GONE_WITHIN: Duration = Duration::from_secs(10);

static SCOPES: AtomicU64 = AtomicU64::new(0);

/// The processes started under one marker; dropping the scope kills them all.
#[derive(Debug)]
pub struct Scope {
    id: String,
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Scope {
    /// A scope no other test (in this or another process) uses.
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let n = SCOPES.fetch_add(1, Ordering::Relaxed);
        Self {
            id: format!("{}-{nanos}-{n}", std::process::id()),
        }
    }

    /// The marker's value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Puts the marker on `command`: it and everything it starts belong to this scope.
    pub fn mark<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command.env(SCOPE_MARKER, &self.id)
    }

    /// Running processes (not zombies) that carry this scope's marker.
    pub fn processes(&self) -> Vec<u32> {
        let entry = format!("{SCOPE_MARKER}={}", self.id);
        processes_with_env(&entry)
    }

    /// Kills (SIGKILL) every process of the scope and waits, bounded, until none is left;
    /// returns those that survived (none, unless a process is stuck in the kernel).
    pub fn stop_all(&self) -> Vec<u32> {
        let deadline = Instant::now() + GONE_WITHIN;
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            signal_all(&left, Signal::SIGKILL);
            // Polling /proc: these are not our children, no exit notification reaches us.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}

/// The `SetEnv` line of an `sshd_config` that gives every session `scope`'s marker and, when
/// set, the run's [`RUN_MARKER`] (sshd starts sessions with a fresh environment).
pub fn sshd_set_env(scope: &Scope) -> String {
    let mut line = format!("SetEnv {SCOPE_MARKER}={}", scope.id());
    if let Some(run) = run_marker() {
        line.push_str(&format!(" {RUN_MARKER}={run}"));
    }
    line.push('\n');
    line
}

/// `name`, with the run's id appended when `scripts/test` set one (`sshd_config.<id>`): for a
/// program that overwrites its environment and closes inherited descriptors (sshd), the id in
/// its command line is the mark the run's leftover check finds.
pub fn run_tagged(name: &str) -> String {
    match run_marker() {
        Some(id) => format!("{name}.{id}"),
        None => name.to_owned(),
    }
}

/// The run's id when `scripts/test` set one.
#[expect(
    clippy::disallowed_methods,
    reason = "the harness reads its own marker, not the runner's environment"
)]
pub fn run_marker() -> Option<String> {
    std::env::var(RUN_MARKER).ok().filter(|id| !id.is_empty())
}

/// A spawned child that is killed, with its descendants and its scope, when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    scope: Scope,
}

/// Spawns `command` under a fresh [`Scope`]; panics naming the program when it cannot start.
pub fn spawn(command: &mut Command) -> ChildGuard {
    Scope::new().spawn(command)
}

impl Scope {
    /// Spawns `command` under this scope (for a scope that had to be known first, e.g. to
    /// write it into a config); panics naming the program when it cannot start.
    /// A command that already carries a scope marker (a fixture's, see [`Scope::mark`]) keeps
    /// it: the fixture's scope stops what the command leaves running, when the fixture ends,
    /// while the guard still stops the command's own process tree.
    pub fn spawn(self, command: &mut Command) -> ChildGuard {
        let marked = command
            .get_envs()
            .any(|(key, value)| key == SCOPE_MARKER && value.is_some());
        if !marked {
            self.mark(command);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {:?}: {error}", command.get_program()));
        ChildGuard { child, scope: self }
    }
}

impl ChildGuard {
    /// The scope the child and its descendants carry.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Reads the child's piped stdout and stderr to the end, waits for it, then stops what it
    /// left running ([`stop`](Self::stop)); for a child spawned with both piped.
    pub fn finish(mut self) -> crate::Output {
        use std::io::Read as _;
        let stderr = self.child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = pipe.read_to_end(&mut text);
                text
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            let _ = pipe.read_to_end(&mut stdout);
        }
        let stderr = stderr
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        let status = self
            .child
            .wait()
            .unwrap_or_else(|error| panic!("cannot wait for the child: {error}"));
        crate::Output {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Kills the child, its process tree and its scope now, and reaps the child; what
    /// [`Drop`] does. Idempotent.
    pub fn stop(&mut self) {
        // Only while the child is unreaped does its pid still name it, and do its children
        // still list it as their parent.
        if matches!(self.child.try_wait(), Ok(None)) {
            let tree = freeze_tree(self.child.id());
            signal_all(&tree, Signal::SIGKILL);
            let _ = self.child.wait();
            wait_gone(&tree);
        }
        let _ = self.scope.stop_all();
        let _ = self.child.wait();
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops (SIGSTOP) `root` and all its descendants, again and again until no new one appears
/// (a stopped process cannot fork), and returns them all.
fn freeze_tree(root: u32) -> Vec<u32> {
    let mut stopped = BTreeSet::new();
    for _round in 0..100 {
        let tree = descendants(root);
        let new: Vec<u32> = tree
            .into_iter()
            .chain([root])
            .filter(|pid| !stopped.contains(pid))
            .collect();
        if new.is_empty() {
            break;
        }
        signal_all(&new, Signal::SIGSTOP);
        stopped.extend(new);
    }
    stopped.into_iter().collect()
}

/// Every process below `root` in the tree (children, their children, ...).
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| stat_fields(pid).map(|fields| (pid, fields.parent)))
        .collect();
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        next += 1;
        for (pid, ppid) in &parents {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
            }
        }
    }
    found.remove(0);
    found
}

fn signal_all(pids: &[u32], signal: Signal) {
    for pid in pids {
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// Waits (bounded) until none of `pids` runs; zombies count as gone.
fn wait_gone(pids: &[u32]) {
    let deadline = Instant::now() + GONE_WITHIN;
    while pids.iter().any(|pid| running(*pid)) && Instant::now() < deadline {
        // Polling /proc: most of these are not our children.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True while `pid` exists and is not a zombie (pid 1 here reaps orphans only after a second
/// or two, and a zombie holds no port, file or lock).
pub fn running(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|fields| fields.state != 'Z')
}

struct StatFields {
    state: char,
    parent: u32,
}

fn stat_fields(pid: u32) -> Option<StatFields> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some(StatFields { state, parent })
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .map_while(Result::ok)
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Running processes whose environment holds exactly `entry` (`NAME=value`).
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|item| item == entry.as_bytes())
            })
        })
        .filter(|pid| running(*pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        command
    }

    /// Reads pids the script prints, one a line, until `count` arrived.
    fn read_pids(guard: &mut ChildGuard, count: usize) -> Vec<u32> {
        use std::io::BufRead as _;
        let stdout = guard.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        (0..count)
            .map(|_| lines.next().unwrap().unwrap().trim().parse().unwrap())
            .collect()
    }

    #[test]
    fn dropping_a_guard_kills_the_tree_and_detached_processes_of_its_scope() {
        // A child in the tree (`sleep &`), and one that left it (`setsid` in a subshell that
        // exits: reparented to pid 1, in its own session), as a restart command does.
        let mut guard = spawn(&mut sh(
            "sleep 600 & echo $!; (setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!); wait",
        ));
        let pids = read_pids(&mut guard, 2);
        let deadline = Instant::now() + GONE_WITHIN;
        // The detached one's parent subshell exits at once; wait until it is an orphan.
        while descendants(guard.id()).contains(&pids[1]) {
            assert!(Instant::now() < deadline, "the subshell never exited");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(descendants(guard.id()).contains(&pids[0]));
        assert_eq!(guard.scope().processes().len(), 3, "sh and both sleeps");
        let shell = guard.id();
        drop(guard);
        for pid in [shell, pids[0], pids[1]] {
            assert!(!running(pid), "{pid} still runs");
        }
    }

    #[test]
    fn a_guard_stops_processes_that_hide_their_marker_through_the_tree() {
        // `exec -a` cannot rewrite environ; a process started with `env -u` lacks the marker
        // exactly as an nginx worker that overwrote it does: only the tree finds it.
        let mut guard = spawn(&mut sh(&format!(
            "env -u {SCOPE_MARKER} sh -c 'echo $$; exec sleep 600' & wait"
        )));
        let pid = read_pids(&mut guard, 1)[0];
        assert!(!guard.scope().processes().contains(&pid));
        drop(guard);
        assert!(!running(pid), "{pid} still runs");
    }

    #[test]
    fn a_guard_on_a_panicking_test_still_stops_its_processes() {
        let (sender, receiver) = std::sync::mpsc::channel();
        let result = std::thread::spawn(move || {
            let mut guard = spawn(&mut sh("setsid sleep 600 & echo $!; wait"));
            let pid = read_pids(&mut guard, 1)[0];
            sender.send(pid).unwrap();
            panic!("the test fails here");
        })
        .join();
        assert!(result.is_err());
        let pid = receiver.recv().unwrap();
        assert!(!running(pid), "{pid} still runs after the panic");
    }

    #[test]
    fn a_marked_command_run_to_completion_leaves_nothing_of_its_scope() {
        let scope = Scope::new();
        let status = scope
            .mark(Command::new("sh").args(["-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 &"]))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(scope.processes().len(), 1, "the detached sleep");
        assert!(scope.stop_all().is_empty());
        assert!(scope.processes().is_empty());
    }
}
