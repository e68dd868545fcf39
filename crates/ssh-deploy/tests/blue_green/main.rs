//! `deploy --strategy blue-green` against a real nginx and a real HAProxy on loopback, with the
//! slots started and stopped by the deploy itself (see `slots.rs`).
//!
//! The load tests deploy with the local transport (`--hosts local`): they measure what the proxy
//! switch and the drain do to traffic, and the command lines are the same ones the SSH transport
//! carries; SSH would only add latency between the steps. `deploys_over_a_real_sshd` runs the
//! same strategy over a real OpenSSH sshd.

mod load;
mod proxies;
mod slots;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use proxies::{Haproxy, Nginx, Proxy};
use slots::Slots;
use test_support::process::Scope;
use test_support::sshd::Sshd;
use test_support::{Output, run, tool_command};

/// Switches per load run (the issue asks for at least 7).
const SWITCHES: usize = 8;

/// The load tests run one at a time: they share two cores with everything else.
static LOAD: Mutex<()> = Mutex::new(());

fn binary() -> Command {
    tool_command(env!("CARGO_BIN_EXE_ssh-deploy"))
}

struct Fixture {
    /// Marks every deploy: what a local deploy leaves running is stopped with the fixture.
    scope: Scope,
    work: tempfile::TempDir,
    root: PathBuf,
    slots: Slots,
    blue: u16,
    green: u16,
}

impl Fixture {
    fn new() -> Self {
        test_support::require_program("curl", "apt-get install -y curl");
        let work = tempfile::tempdir().expect("tmp");
        let root = work.path().join("it's app");
        let slots = Slots::start();
        let (blue, green) = (slots.reserve(), slots.reserve());
        Self {
            scope: Scope::new(),
            root,
            slots,
            blue,
            green,
            work,
        }
    }

    fn proxy_dir(&self, name: &str) -> PathBuf {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn artifact(&self, version: &str) -> PathBuf {
        let tree = self.work.path().join(format!("tree-{version}"));
        std::fs::create_dir_all(&tree).expect("mkdir");
        std::fs::write(tree.join("VERSION"), format!("{version}\n")).expect("write");
        let out = self.work.path().join(format!("{version}.tar.gz"));
        ssh_deploy::pack::pack(
            &tree,
            &out,
            &self.work.path().join(format!("{version}.json")),
            0,
        )
        .expect("pack");
        out
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    /// The slot gate (health-gate on the slot's own port) and the observe gate (through the
    /// proxy; `/observe` fails on a release named `*bad*`).
    fn gates(&self, proxy_port: u16) -> (PathBuf, PathBuf) {
        let check = |url: &str| {
            format!(
                "checks:\n  - name: app\n    attempt_timeout: 2s\n    http: {{ url: '{url}' }}\n    \
                 readiness: {{ interval: 50ms, deadline: 20s, fatal: [status] }}\n"
            )
        };
        (
            self.write("slot-gate.yaml", &check("http://127.0.0.1:{port}/health")),
            self.write(
                "observe-gate.yaml",
                &check(&format!("http://127.0.0.1:{proxy_port}/observe")),
            ),
        )
    }

    fn command(&self, proxy: &dyn Proxy, version: &str) -> Command {
        let (slot_gate, observe_gate) = self.gates(proxy.port());
        let mut command = binary();
        self.scope.mark(&mut command);
        command
            .arg("deploy")
            .env("SSH_DEPLOY_HOSTS", "local")
            .env("SSH_DEPLOY_ROOT", &self.root)
            .env("SSH_DEPLOY_ARTIFACT", self.artifact(version))
            .env("SSH_DEPLOY_RELEASE_ID", version)
            .env("SSH_DEPLOY_SERVICES", "web")
            .env("SSH_DEPLOY_SERVICE_MANAGER", "custom")
            .env("SSH_DEPLOY_STRATEGY", "blue-green")
            .env("SSH_DEPLOY_BLUE_PORT", self.blue.to_string())
            .env("SSH_DEPLOY_GREEN_PORT", self.green.to_string())
            .env("SSH_DEPLOY_SLOT_START_COMMAND", self.slots.start_command())
            .env("SSH_DEPLOY_SLOT_STOP_COMMAND", self.slots.stop_command())
            .env("SSH_DEPLOY_GATE_FILE", slot_gate)
            .env("SSH_DEPLOY_OBSERVE_GATE_FILE", observe_gate)
            .env(
                "SSH_DEPLOY_VERIFY_URL",
                format!("http://127.0.0.1:{}/", proxy.port()),
            )
            .env("SSH_DEPLOY_VERIFY_HEADER", "X-Slot")
            .env("SSH_DEPLOY_DRAIN_TIMEOUT", "20s");
        for (name, value) in proxy.flags() {
            command.env(format!("SSH_DEPLOY_{name}"), value);
        }
        command
    }

    fn deploy(&self, proxy: &dyn Proxy, version: &str) -> Output {
        run(&mut self.command(proxy, version))
    }

    fn live(&self) -> String {
        std::fs::read_to_string(self.root.join(".ssh-deploy/blue-green.web"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("live="))
            .unwrap_or_default()
            .to_owned()
    }
}

/// The slot answering `GET /` through the proxy (its `X-Slot` header).
fn slot_behind(port: u16) -> String {
    let out = run(Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/")));
    out.stdout
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            // HAProxy sends header names in lower case.
            name.eq_ignore_ascii_case("x-slot")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Milliseconds from a log line `... <marker> <slot> in <N> ms`.
fn logged_ms(stderr: &str, marker: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(marker)? + marker.len()..];
            let (_, after) = rest.split_once(" in ")?;
            after.strip_suffix(" ms")?.trim().parse().ok()
        })
        .collect()
}

fn join(values: &[u64]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("json outputs: {e}\n{out:?}"))
}

/// Deploys `SWITCHES` releases under load, then one whose observation fails; asserts the
/// zero-downtime figures and returns keep-alive resets.
#[expect(
    clippy::print_stderr,
    reason = "the figures are this test's report, printed by scripts/bench-blue-green"
)]
fn zero_downtime(fx: &Fixture, proxy: &dyn Proxy) -> u64 {
    let first = fx.deploy(proxy, "v1");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(fx.live(), "blue");
    let load = load::Load::start(proxy.port(), 8, 4);
    let mut switch_ms = Vec::new();
    let mut drain_ms = Vec::new();
    let started = Instant::now();
    for number in 0..SWITCHES {
        let version = format!("v{}", number + 2);
        let out = fx.deploy(proxy, &version);
        assert_eq!(out.code, Some(0), "{version}: {out:?}");
        let live = fx.live();
        assert_eq!(live, if number % 2 == 0 { "green" } else { "blue" });
        switch_ms.extend(logged_ms(&out.stderr, "switched to slot"));
        drain_ms.extend(logged_ms(&out.stderr, "drained"));
        assert_eq!(
            slots::websocket_slot(proxy.port()),
            live,
            "a WebSocket opened after the switch reaches the new slot"
        );
        assert_eq!(
            fx.slots.running(),
            std::slice::from_ref(&live),
            "the old slot is stopped"
        );
    }
    let before = fx.live();
    let bad = fx.deploy(proxy, "v-bad");
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert_eq!(json(&bad)["result"], "rolled-back", "{bad:?}");
    assert!(
        bad.stderr.contains("observed failure") || bad.stderr.contains("500"),
        "{}",
        bad.stderr
    );
    switch_ms.extend(logged_ms(&bad.stderr, "switched to slot"));
    let back_ms = logged_ms(&bad.stderr, "switched back to slot");
    assert_eq!(back_ms.len(), 1, "{}", bad.stderr);
    assert!(back_ms[0] < 1000, "switch-back took {} ms", back_ms[0]);
    assert_eq!(fx.live(), before, "the state file names the old slot again");
    assert_eq!(slots::websocket_slot(proxy.port()), before);
    assert_eq!(
        fx.slots.running(),
        std::slice::from_ref(&before),
        "the bad slot is stopped"
    );
    let elapsed = started.elapsed();
    assert!(
        load.slow_ok() > 0,
        "slow requests were in flight during the switches"
    );
    let counters = load.stop();
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::SeqCst);
    let cut = get(&fx.slots.stats.cut);
    let resets = get(&counters.keepalive_resets);
    eprintln!(
        "figures: proxy={} switches={} switch-backs=1 seconds={:.1} keepalive-requests={} \
         new-connection-requests={} slow-requests={} non-2xx={} failed-new-connections={} \
         slow-failed={} cut-by-stop={} keepalive-resets={} switch-ms={} switch-back-ms={} \
         drain-ms={}",
        proxy.name(),
        switch_ms.len(),
        elapsed.as_secs_f64(),
        get(&counters.keepalive_requests),
        get(&counters.new_requests),
        get(&counters.slow_ok),
        get(&counters.keepalive_non_2xx) + get(&counters.new_non_2xx),
        get(&counters.new_failed),
        get(&counters.slow_failed),
        cut,
        resets,
        join(&switch_ms),
        back_ms[0],
        join(&drain_ms),
    );
    assert_eq!(switch_ms.len(), SWITCHES + 1, "every switch was timed");
    assert!(get(&counters.keepalive_requests) > 0 && get(&counters.new_requests) > 0);
    assert_eq!(
        get(&counters.keepalive_non_2xx),
        0,
        "non-2xx on keep-alive connections"
    );
    assert_eq!(get(&counters.new_non_2xx), 0, "non-2xx on new connections");
    assert_eq!(get(&counters.new_failed), 0, "failed new connections");
    assert_eq!(get(&counters.slow_failed), 0, "slow requests failed");
    assert_eq!(cut, 0, "requests cut by stopping the old slot");
    resets
}

#[test]
fn haproxy_switches_under_load_without_a_single_error() {
    let _serial = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    let resets = zero_downtime(&fx, &haproxy);
    assert_eq!(
        resets, 0,
        "HAProxy's runtime API resets no keep-alive connection"
    );
}

#[test]
fn nginx_switches_under_load_without_errors_and_counts_resets_apart() {
    let _serial = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    let nginx = Nginx::start(&fx.proxy_dir("nginx"), fx.blue);
    let resets = zero_downtime(&fx, &nginx);
    // nginx 1.22 closes keep-alive connections that are idle at the reload; a client whose
    // next request is already on the way sees a reset (research note §4.1). Reported, not
    // failed: it is not an application error and browsers retry it.
    eprintln!(
        "nginx keep-alive resets over {} reloads: {resets}",
        SWITCHES + 1
    );
}

#[test]
fn broken_nginx_config_fails_before_any_switch() {
    let fx = Fixture::new();
    let nginx = Nginx::start(&fx.proxy_dir("nginx"), fx.blue);
    let first = fx.deploy(&nginx, "v1");
    assert_eq!(first.code, Some(0), "{first:?}");
    let upstream = std::fs::read_to_string(nginx.dir.join("upstream.conf")).expect("read");
    std::fs::write(
        nginx.dir.join("conf.d/broken.conf"),
        "this is not nginx config\n",
    )
    .expect("write");
    let out = fx.deploy(&nginx, "v2");
    assert_ne!(out.code, Some(0), "{out:?}");
    assert_eq!(json(&out)["result"], "failed");
    assert!(
        out.stderr.contains("nginx config test failed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(nginx.dir.join("upstream.conf")).expect("read"),
        upstream,
        "the previous upstream file is back"
    );
    assert_eq!(fx.live(), "blue");
    assert_eq!(
        slot_behind(nginx.port()),
        "blue",
        "the old slot still serves"
    );
    assert_eq!(
        fx.slots.running(),
        ["blue"],
        "the new slot was stopped again"
    );
    assert!(!fx.root.join(".ssh-deploy/lock").exists(), "lock released");
}

#[test]
fn deploys_over_a_real_sshd_and_haproxy_keeps_the_switch_across_a_restart() {
    let fx = Fixture::new();
    let sshd = Sshd::start();
    let mut haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    let over_ssh = |version: &str| {
        let mut command = fx.command(&haproxy, version);
        command
            .env("SSH_DEPLOY_HOSTS", sshd.host("root"))
            .env("SSH_DEPLOY_PRIVATE_KEY", sshd.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", sshd.known_hosts_line())
            .env("SSH_DEPLOY_SLOT_HEALTH_PATH", "/health")
            .env_remove("SSH_DEPLOY_GATE_FILE");
        run(&mut command)
    };
    for (version, live) in [("v1", "blue"), ("v2", "green")] {
        let out = over_ssh(version);
        assert_eq!(out.code, Some(0), "{out:?}\n{}", sshd.log());
        assert_eq!(json(&out)["result"], "success");
        assert_eq!(fx.live(), live);
        assert_eq!(slot_behind(haproxy.port()), live);
    }
    assert_eq!(
        std::fs::read_link(fx.root.join("current")).expect("current"),
        Path::new("releases/v2"),
        "current follows the live slot"
    );
    // The config still says `green ... disabled`; the server-state file says otherwise.
    haproxy.restart();
    assert_eq!(
        slot_behind(haproxy.port()),
        "green",
        "the switch survives a restart"
    );
}

#[test]
fn dry_run_prints_the_blue_green_plan_and_touches_nothing() {
    let fx = Fixture::new();
    let nginx_dir = fx.proxy_dir("nginx-unused");
    let mut command = binary();
    command
        .arg("deploy")
        .env("SSH_DEPLOY_HOSTS", "local")
        .env("SSH_DEPLOY_ROOT", &fx.root)
        .env("SSH_DEPLOY_ARTIFACT", fx.artifact("v1"))
        .env("SSH_DEPLOY_RELEASE_ID", "v1")
        .env("SSH_DEPLOY_SERVICES", "web")
        .env("SSH_DEPLOY_STRATEGY", "blue-green")
        .env("SSH_DEPLOY_BLUE_PORT", "8081")
        .env("SSH_DEPLOY_GREEN_PORT", "8082")
        .env("SSH_DEPLOY_VERIFY_URL", "http://127.0.0.1/version")
        .env(
            "SSH_DEPLOY_NGINX_UPSTREAM_FILE",
            nginx_dir.join("app.upstream"),
        )
        .env("SSH_DEPLOY_DRY_RUN", "true");
    let out = run(&mut command);
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "plan: blue-green release v1 of `web` behind nginx",
        "start slot green: systemctl restart 'web@green.service'",
        "switch nginx to green: set -e;",
        "drain slot blue:",
        "stop slot blue: systemctl stop 'web@blue.service'",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    assert!(!fx.root.exists(), "a dry run touches nothing");
}

/// Issue 22, point 5, for blue-green: `--schedule` and `--max-failed` (refused until now). The
/// plan shows the batches and the budget; ten hosts on loopback addresses, never connected.
#[test]
fn the_blue_green_dry_run_plan_shows_the_schedule_and_the_failure_budget() {
    let fx = Fixture::new();
    let hosts: Vec<String> = (1..=10).map(|i| format!("root@127.0.0.{i}:22")).collect();
    let nginx_dir = fx.proxy_dir("nginx-unused");
    let mut command = binary();
    command
        .arg("deploy")
        .env("SSH_DEPLOY_HOSTS", hosts.join("\n"))
        .env("SSH_DEPLOY_INSECURE_ACCEPT_ANY_HOST_KEY", "true")
        .env("SSH_DEPLOY_ROOT", &fx.root)
        .env("SSH_DEPLOY_ARTIFACT", fx.artifact("v1"))
        .env("SSH_DEPLOY_RELEASE_ID", "v1")
        .env("SSH_DEPLOY_SERVICES", "web")
        .env("SSH_DEPLOY_STRATEGY", "blue-green")
        .env("SSH_DEPLOY_BLUE_PORT", "8081")
        .env("SSH_DEPLOY_GREEN_PORT", "8082")
        .env("SSH_DEPLOY_VERIFY_URL", "http://127.0.0.1/version")
        .env(
            "SSH_DEPLOY_NGINX_UPSTREAM_FILE",
            nginx_dir.join("app.upstream"),
        )
        .env("SSH_DEPLOY_SCHEDULE", "1, 30%, 100%")
        .env("SSH_DEPLOY_MAX_FAILED", "20%")
        .env("SSH_DEPLOY_DRY_RUN", "true");
    let out = run(&mut command);
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "to 10 host(s), in 3 batch(es), a batch's hosts in parallel",
        "schedule: 1, 30%, 100% (--schedule) -> batches of 1, 3, 6 host(s)",
        "batch 2/3: root@127.0.0.2:22, root@127.0.0.3:22, root@127.0.0.4:22",
        "failure budget: 2 of 10 host(s) across all batches may fail",
        "(--max-failed 20%)",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    assert!(!fx.root.exists(), "a dry run touches nothing");
}

/// A host that fails while the budget lasts is put back on its previous slot and the run goes
/// on, ending `partial` (exit 1); without a budget the same failure stops the run as before
/// (`rolled-back`). One host with real HAProxy and slots: the fleet's hosts share one file
/// system and blue-green's proxy settings (upstream file, admin socket) are per run, so several
/// blue-green hosts cannot run on this machine.
#[test]
fn a_host_failing_within_the_budget_is_switched_back_and_the_run_ends_partial() {
    let fx = Fixture::new();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    assert_eq!(fx.deploy(&haproxy, "v1").code, Some(0));
    let mut command = fx.command(&haproxy, "v2-bad");
    command
        .env("SSH_DEPLOY_SCHEDULE", "1")
        .env("SSH_DEPLOY_MAX_FAILED", "1");
    let out = run(&mut command);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(json(&out)["result"], "partial");
    assert!(
        out.stderr
            .contains("within the failure budget (1 of 1 used)"),
        "{}",
        out.stderr
    );
    assert_eq!(json(&out)["hosts"][0]["result"], "rolled-back");
    assert_eq!(fx.live(), "blue");
    assert_eq!(slot_behind(haproxy.port()), "blue");
    assert_eq!(fx.slots.running(), ["blue"]);
    let out = fx.deploy(&haproxy, "v3-bad");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(json(&out)["result"], "rolled-back");
}

#[test]
fn blue_green_flags_are_validated_before_any_connection() {
    let fx = Fixture::new();
    let base = |command: &mut Command| {
        command
            .arg("deploy")
            .env("SSH_DEPLOY_HOSTS", "local")
            .env("SSH_DEPLOY_ROOT", &fx.root)
            .env("SSH_DEPLOY_ARTIFACT", fx.artifact("v1"))
            .env("SSH_DEPLOY_SERVICES", "web")
            .env("SSH_DEPLOY_STRATEGY", "blue-green")
            .env("SSH_DEPLOY_VERIFY_URL", "http://127.0.0.1/")
            .env("SSH_DEPLOY_NGINX_UPSTREAM_FILE", "/tmp/x.upstream");
    };
    let mut no_ports = binary();
    base(&mut no_ports);
    let out = run(&mut no_ports);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("--blue-port and --green-port"),
        "{}",
        out.stderr
    );
    let mut two_services = binary();
    base(&mut two_services);
    two_services
        .env("SSH_DEPLOY_SERVICES", "web\napi")
        .env("SSH_DEPLOY_BLUE_PORT", "1")
        .env("SSH_DEPLOY_GREEN_PORT", "2");
    let out = run(&mut two_services);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("one service per run"), "{}", out.stderr);
    assert!(!fx.root.exists());
}

/// libssh2 reports each keepalive interval (15 s) without traffic as a timeout; a slot that
/// takes longer than that to start (or a long, silent drain) must not fail the deploy.
#[test]
fn a_slot_that_starts_slowly_over_ssh_is_waited_for() {
    let fx = Fixture::new();
    let sshd = Sshd::start();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    let mut command = fx.command(&haproxy, "v1");
    command
        .env("SSH_DEPLOY_HOSTS", sshd.host("root"))
        .env("SSH_DEPLOY_PRIVATE_KEY", sshd.user_key())
        .env("SSH_DEPLOY_KNOWN_HOSTS", sshd.known_hosts_line())
        .env(
            "SSH_DEPLOY_SLOT_START_COMMAND",
            format!("sleep 17; {}", fx.slots.start_command()),
        );
    let started = Instant::now();
    let out = run(&mut command);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(started.elapsed().as_secs() >= 17);
    assert_eq!(slot_behind(haproxy.port()), "blue");
}

#[test]
fn keep_old_slot_leaves_it_running_then_stops_it_in_the_background() {
    let fx = Fixture::new();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    assert_eq!(fx.deploy(&haproxy, "v1").code, Some(0));
    let mut command = fx.command(&haproxy, "v2");
    command.env("SSH_DEPLOY_KEEP_OLD_SLOT", "2s");
    let out = run(&mut command);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fx.live(), "green");
    assert_eq!(fx.slots.running(), ["blue", "green"], "blue is kept warm");
    assert!(
        out.stderr.contains("slot blue keeps running for 2s"),
        "{}",
        out.stderr
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while fx.slots.running() != ["green"] {
        assert!(
            Instant::now() < deadline,
            "blue was not stopped after --keep-old-slot"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(slot_behind(haproxy.port()), "green");
}

/// The stop command lives in the release, as seed 001's `deploy/bin/ctl slot-stop` does. On a
/// first deploy the idle slot was never pointed at a release: there is nothing to stop and no
/// script to run (it used to run from the root, exit 127, and fail the deploy with exit 3). Once
/// a slot has a release, its own script stops it.
#[test]
fn a_first_deploy_with_a_stop_script_from_the_release_needs_no_previous_slot() {
    let fx = Fixture::new();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    let deploy = |version: &str| {
        let dir = fx.work.path().join(format!("tree-{version}/deploy"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("slot-stop"),
            format!("{}\n", fx.slots.stop_command()),
        )
        .expect("write");
        let mut command = fx.command(&haproxy, version);
        command.env("SSH_DEPLOY_SLOT_STOP_COMMAND", "sh deploy/slot-stop");
        run(&mut command)
    };
    let first = deploy("v1");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(
        first
            .stderr
            .contains("slot blue has no release yet: nothing to stop"),
        "{}",
        first.stderr
    );
    assert_eq!(fx.live(), "blue");
    let second = deploy("v2");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(fx.live(), "green");
    assert_eq!(
        fx.slots.running(),
        ["green"],
        "blue was stopped by the script in its own release"
    );
    let third = deploy("v3");
    assert_eq!(third.code, Some(0), "{third:?}");
    assert_eq!(fx.live(), "blue");
    assert_eq!(fx.slots.running(), ["blue"]);
    assert_eq!(slot_behind(haproxy.port()), "blue");
}

#[test]
fn a_refused_haproxy_command_fails_before_any_switch() {
    let fx = Fixture::new();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    assert_eq!(fx.deploy(&haproxy, "v1").code, Some(0));
    let mut command = fx.command(&haproxy, "v2");
    command.env("SSH_DEPLOY_HAPROXY_BACKEND", "no-such-backend");
    let out = run(&mut command);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert_eq!(json(&out)["result"], "failed");
    assert!(out.stderr.contains("haproxy refused"), "{}", out.stderr);
    assert_eq!(fx.live(), "blue");
    assert_eq!(
        slot_behind(haproxy.port()),
        "blue",
        "the old slot still serves"
    );
    assert_eq!(
        fx.slots.running(),
        ["blue"],
        "the new slot was stopped again"
    );
}

/// A WebSocket opened before the switch keeps the old nginx worker (and slot) busy: the drain
/// gives up at --drain-timeout and says what is still pinned; the deploy itself succeeds.
#[test]
fn nginx_reports_what_stays_pinned_to_the_old_slot() {
    let fx = Fixture::new();
    let nginx = Nginx::start(&fx.proxy_dir("nginx"), fx.blue);
    assert_eq!(fx.deploy(&nginx, "v1").code, Some(0));
    let (socket, first) = slots::open_websocket(nginx.port());
    assert_eq!(first, "blue");
    let mut command = fx.command(&nginx, "v2");
    command.env("SSH_DEPLOY_DRAIN_TIMEOUT", "1s");
    let out = run(&mut command);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("slot blue did not drain within 1s; still pinned: old-workers-left=")
            && out.stderr.contains("old-slot-connections=1"),
        "{}",
        out.stderr
    );
    assert_eq!(slots::websocket_slot(nginx.port()), "green");
    drop(socket);
}

/// Issue #22, points 1 and 2 on blue-green over a real sshd: the migration and the pre-switch
/// hooks run in the new release before the new slot is started, and a failing one leaves the
/// old slot serving with the new one never started; post-switch runs once the proxy serves the
/// new slot, post-deploy at the end, and a failing strict post-switch hook switches back.
#[test]
fn migration_and_hooks_run_around_the_proxy_switch_and_a_failing_one_keeps_the_old_slot() {
    let fx = Fixture::new();
    let sshd = Sshd::start();
    let haproxy = Haproxy::start(&fx.proxy_dir("haproxy"), fx.blue, fx.green);
    let over_ssh = |version: &str, extra: &[&str]| {
        let mut command = fx.command(&haproxy, version);
        command
            .env("SSH_DEPLOY_HOSTS", sshd.host("root"))
            .env("SSH_DEPLOY_PRIVATE_KEY", sshd.user_key())
            .env("SSH_DEPLOY_KNOWN_HOSTS", sshd.known_hosts_line())
            .env("SSH_DEPLOY_SLOT_HEALTH_PATH", "/health")
            .env_remove("SSH_DEPLOY_GATE_FILE")
            .args(extra);
        run(&mut command)
    };
    let out = over_ssh(
        "v1",
        &[
            "--migrate",
            "echo \"$SSH_DEPLOY_RELEASE $SSH_DEPLOY_STRATEGY\" > migrated",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(fx.root.join("releases/v1/migrated")).expect("migrated"),
        "v1 blue-green\n"
    );
    assert_eq!(fx.live(), "blue");

    let out = over_ssh("v2", &["--migrate", "exit 9"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("migrate: exited with status 9"),
        "{}",
        out.stderr
    );
    assert_eq!(fx.live(), "blue");
    assert_eq!(slot_behind(haproxy.port()), "blue");
    assert_eq!(
        fx.slots.running(),
        ["blue"],
        "the new slot was never started"
    );

    let out = over_ssh("v2", &["--hook", "pre-switch@hosts=test -e approved"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("hook pre-switch"), "{}", out.stderr);
    assert_eq!(slot_behind(haproxy.port()), "blue");
    assert_eq!(fx.slots.running(), ["blue"]);

    // post-switch runs once the proxy serves the new slot (before the observation), post-deploy
    // after the old slot is retired; a failing strict post-switch hook switches back.
    let log = fx.work.path().join("hooks.log");
    let hooks = format!(
        "post-switch@hosts=echo \"post-switch $(basename \"$(pwd -P)\")\" >> '{log}'\npost-deploy@hosts=echo \"post-deploy $SSH_DEPLOY_RESULT\" >> '{log}'",
        log = log.display()
    );
    let out = over_ssh("v2", &["--hook", &hooks]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fx.live(), "green");
    assert_eq!(
        std::fs::read_to_string(&log).expect("hooks ran"),
        "post-switch v2\npost-deploy success\n",
        "post-switch in `current`, already the new release"
    );
    let out = over_ssh(
        "v3",
        &["--hook", "post-switch@hosts=exit 6", "--hooks-strict"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(json(&out)["result"], "rolled-back");
    assert_eq!(fx.live(), "green");
    assert_eq!(slot_behind(haproxy.port()), "green", "switched back");
}
