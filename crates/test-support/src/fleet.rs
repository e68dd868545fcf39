//! A fleet of hosts for tests: each host is its own Linux network namespace, joined to this
//! machine by a veth pair, running its own real OpenSSH `sshd`. Tests can take a host's link
//! down and up, throttle it, or kill its sshd, and watch how a deploy copes.
//!
//! # What [`Fleet::start`] creates, per host
//!
//! - a network namespace `deploy-suite-fleet-<slot>` (`ip netns add`) with `lo` up;
//! - a veth pair: `dsf<slot>r` in this (the root) namespace and `dsf<slot>h` inside the host's
//!   namespace, on a private /30 of `10.213.0.0/16`: `10.213.a.b+1` on our side and
//!   `10.213.a.b+2` (the host's [`address`](FleetHost::address)) inside. No host has a default
//!   route and nothing else on the machine uses `10.213.0.0/16`, so test traffic stays on this
//!   machine; while a link is down the connected route stays (marked `linkdown`) and packets to
//!   the host are dropped on the veth, never sent to the default gateway;
//! - an `sshd` inside the namespace (`ip netns exec ... sshd -D`) listening on the host's
//!   address, port 22, with its own fresh ed25519 host key; root may log in with the fleet's one
//!   user key (no password, no PAM).
//!
//! Only the network is separate: the hosts share this machine's file system, users and process
//! table, so give each host its own deploy root. A service a deploy starts on a host runs inside
//! that host's namespace: its `127.0.0.1` is the host's own loopback, reachable from the test
//! only through the host's address (or an SSH tunnel).
//!
//! # Cleanup
//!
//! Drop stops every process inside each host's namespace (sshd, its sessions, services a
//! deploy started there), deletes the veth pair and the namespace, and releases the slot; it
//! runs on a panicking test too. Slots are claimed through directories under
//! `/run/deploy-suite-fleet` that record the owning process (pid and start time), so parallel
//! tests and several test processes never share a name or an address. A run that was killed
//! before its Drop leaves its slot behind with a dead owner: the next [`Fleet::start`] removes
//! what such slots left (processes, veth, namespace), and any namespace or veth with our prefix
//! that no slot claims.
//!
//! # Needs
//!
//! root (`CAP_SYS_ADMIN` and `CAP_NET_ADMIN`: CI and this machine run tests as root), iproute2
//! (`ip`, `tc`; `scripts/test` installs it) and OpenSSH (`sshd`, `ssh-keygen`). Without them
//! [`Fleet::start`] panics saying how to get them; it never skips.
//!
//! ```no_run
//! let fleet = test_support::fleet::Fleet::start(2);
//! let host = &fleet.hosts()[0];
//! let target = host.target("root"); // "root@10.213.a.b:22"
//! let key = fleet.user_key_path(); // OpenSSH private key file
//! let known_hosts = fleet.known_hosts(); // one line per host
//! host.link_down(); // connects now time out; established connections stall
//! host.link_up();
//! # let _ = (target, key, known_hosts);
//! ```

use std::io::{BufRead as _, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::process::{Scope, run_tagged, running, sshd_set_env};
use crate::require_program;

/// Where slots are claimed (tmpfs: gone at reboot, like the namespaces themselves).
const STATE_DIR: &str = "/run/deploy-suite-fleet";
/// Prefix of every namespace the fixture creates.
pub const NAMESPACE_PREFIX: &str = "deploy-suite-fleet-";
/// Prefix of every veth name (interface names have at most 15 bytes: `dsf16383r` fits).
const LINK_PREFIX: &str = "dsf";
/// `10.213.0.0/16` in /30 subnets.
const SLOTS: u32 = 16_384;
/// The port every host's sshd listens on (each namespace has its own ports).
pub const SSH_PORT: u16 = 22;
/// How long sshd may take to say it listens.
const SSHD_READY_WITHIN: Duration = Duration::from_secs(20);
/// How long killed processes may take to disappear.
const GONE_WITHIN: Duration = Duration::from_secs(10);

const IPROUTE2_INSTALL: &str = "apt-get install -y iproute2 (scripts/test installs it)";
const OPENSSH_INSTALL: &str = "apt-get install -y openssh-server openssh-client";

/// A running fleet; everything it created is removed on drop.
#[derive(Debug)]
pub struct Fleet {
    hosts: Vec<FleetHost>,
    dir: tempfile::TempDir,
}

/// One host of a [`Fleet`]: a network namespace with its own sshd.
pub struct FleetHost {
    slot: u32,
    dir: PathBuf,
    /// Carried by sshd and (through `SetEnv`) every session: the run's leftover check sees
    /// them; Drop kills everything in the namespace anyway.
    scope: Scope,
    sshd: Mutex<Option<Child>>,
    log: Arc<Mutex<String>>,
}

impl std::fmt::Debug for FleetHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHost")
            .field("namespace", &self.namespace())
            .field("address", &self.address())
            .finish()
    }
}

impl Fleet {
    /// Creates `count` hosts, each in its own namespace with its own sshd, and returns once
    /// every sshd listens. Panics (with how to fix it) when a host cannot be created.
    pub fn start(count: usize) -> Self {
        require_program("ip", IPROUTE2_INSTALL);
        require_program("sshd", OPENSSH_INSTALL);
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("user_key"));
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // Privilege separation directory Debian's sshd insists on.
        let _ = std::fs::create_dir_all("/run/sshd");
        sweep_stale();
        let mut hosts = Vec::with_capacity(count);
        for index in 0..count {
            let host_dir = dir.path().join(format!("host-{index}"));
            std::fs::create_dir_all(&host_dir).unwrap();
            keygen(&host_dir.join("host_key"));
            let slot = create_host_network();
            let host = FleetHost {
                slot,
                dir: host_dir,
                scope: Scope::new(),
                sshd: Mutex::new(None),
                log: Arc::new(Mutex::new(String::new())),
            };
            // Pushed before sshd starts, so a failed start still cleans this host up.
            hosts.push(host);
            let host = hosts.last().unwrap();
            host.write_sshd_config(&dir.path().join("authorized_keys"));
            host.start_sshd();
        }
        let fleet = Self { hosts, dir };
        std::fs::write(fleet.known_hosts_path(), fleet.known_hosts()).unwrap();
        fleet
    }

    /// The hosts, in creation order.
    pub fn hosts(&self) -> &[FleetHost] {
        &self.hosts
    }

    /// The fleet's user private key (OpenSSH format), authorized for root on every host.
    pub fn user_key(&self) -> String {
        std::fs::read_to_string(self.user_key_path()).unwrap()
    }

    /// The file holding [`user_key`](Self::user_key) (mode 0600, for `ssh -i`).
    pub fn user_key_path(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// known_hosts text: one line per host (`10.213.a.b ssh-ed25519 AAAA...`).
    pub fn known_hosts(&self) -> String {
        self.hosts
            .iter()
            .map(|host| host.known_hosts_line() + "\n")
            .collect()
    }

    /// A file holding [`known_hosts`](Self::known_hosts).
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// A plain OpenSSH client command for `root@host` with the fleet's key and known_hosts
    /// (strict host key checking, batch mode, `connect_timeout`); append the remote command.
    pub fn ssh(&self, host: &FleetHost, connect_timeout: Duration) -> Command {
        let mut command = Command::new(require_program("ssh", OPENSSH_INSTALL));
        command
            .arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(self.user_key_path())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts_path().display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!(
                "ConnectTimeout={}",
                connect_timeout.as_secs().max(1)
            ))
            .args(["-p", &SSH_PORT.to_string()])
            .arg(format!("root@{}", host.address()))
            .stdin(Stdio::null());
        command
    }
}

/// Per host, so a fleet whose start panics half-way still removes the hosts it made.
impl Drop for FleetHost {
    fn drop(&mut self) {
        self.stop_sshd();
        teardown(self.slot);
        release_slot(self.slot);
    }
}

impl FleetHost {
    /// The host's address (inside its namespace).
    pub fn address(&self) -> Ipv4Addr {
        slot_address(self.slot, 2)
    }

    /// The address of this machine's end of the host's link (what the host sees as the peer).
    pub fn peer_address(&self) -> Ipv4Addr {
        slot_address(self.slot, 1)
    }

    /// The port sshd listens on ([`SSH_PORT`]).
    pub fn port(&self) -> u16 {
        SSH_PORT
    }

    /// `user@ADDRESS:22`, the form ssh-deploy's host lists take.
    pub fn target(&self, user: &str) -> String {
        format!("{user}@{}:{SSH_PORT}", self.address())
    }

    /// The network namespace's name (for `ip netns exec`).
    pub fn namespace(&self) -> String {
        namespace_name(self.slot)
    }

    /// The veth name inside the host's namespace.
    pub fn link_inside(&self) -> String {
        format!("{LINK_PREFIX}{}h", self.slot)
    }

    /// The veth name in the root namespace (this machine's side).
    pub fn link_outside(&self) -> String {
        format!("{LINK_PREFIX}{}r", self.slot)
    }

    /// The known_hosts line for this host's key (port 22: no brackets).
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.join("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let kind = fields.next().unwrap();
        let key = fields.next().unwrap();
        format!("{} {kind} {key}", self.address())
    }

    /// The host key's `SHA256:...` fingerprint.
    pub fn fingerprint(&self) -> String {
        let output = Command::new(require_program("ssh-keygen", OPENSSH_INSTALL))
            .arg("-lf")
            .arg(self.dir.join("host_key.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// Takes the host's link down (inside its namespace, as a dead NIC or cable would): new
    /// connections time out, established ones stall (nothing is refused or reset).
    pub fn link_down(&self) {
        ip(&[
            "-n",
            &self.namespace(),
            "link",
            "set",
            &self.link_inside(),
            "down",
        ]);
    }

    /// Brings the link back; stalled connections resume with TCP's next retransmission.
    pub fn link_up(&self) {
        ip(&[
            "-n",
            &self.namespace(),
            "link",
            "set",
            &self.link_inside(),
            "up",
        ]);
    }

    /// Limits the link to `bits_per_second` in both directions (a `tbf` qdisc on each end), so
    /// a transfer takes long enough to be interrupted mid-way.
    pub fn limit_rate(&self, bits_per_second: u64) {
        let rate = format!("{bits_per_second}bit");
        // Burst: at least one MTU-sized packet, else nothing passes.
        let burst = (bits_per_second / 8 / 10).max(4096).to_string();
        let shape = [
            "root", "tbf", "rate", &rate, "burst", &burst, "latency", "1s",
        ];
        tc(&[
            &["qdisc", "replace", "dev", &self.link_outside()][..],
            &shape,
        ]
        .concat());
        tc(&[
            &[
                "-n",
                &self.namespace(),
                "qdisc",
                "replace",
                "dev",
                &self.link_inside(),
            ][..],
            &shape,
        ]
        .concat());
    }

    /// Removes a [`limit_rate`](Self::limit_rate) limit.
    pub fn clear_rate_limit(&self) {
        tc(&["qdisc", "del", "dev", &self.link_outside(), "root"]);
        tc(&[
            "-n",
            &self.namespace(),
            "qdisc",
            "del",
            "dev",
            &self.link_inside(),
            "root",
        ]);
    }

    /// Kills the host's sshd: the listener and every connection's sshd process (SIGKILL, as a
    /// crash would), so new connections are refused and open sessions break. Processes a
    /// session started (services) keep running. Returns once they are gone.
    pub fn kill_sshd(&self) {
        self.stop_sshd();
        let sshd_pids: Vec<u32> = namespace_pids(&self.namespace())
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "sshd")
            })
            .collect();
        kill_and_wait(&sshd_pids);
    }

    /// Starts the host's sshd again after [`kill_sshd`](Self::kill_sshd) (same host key).
    pub fn start_sshd(&self) {
        let mut command = Command::new(require_program("ip", IPROUTE2_INSTALL));
        let mut child = self
            .scope
            .mark(&mut command)
            .args(["netns", "exec", &self.namespace()])
            .arg(require_program("sshd", OPENSSH_INSTALL))
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join(run_tagged("sshd_config")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (ready, wait) = mpsc::channel::<()>();
        let sink = self.log.clone();
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server listening on") {
                    if let Some(sender) = ready.take() {
                        let _ = sender.send(());
                    }
                }
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let started = wait.recv_timeout(SSHD_READY_WITHIN);
        *self.sshd.lock().unwrap() = Some(child);
        if started.is_err() {
            panic!(
                "sshd in namespace {} did not listen on {}:{SSH_PORT} within {SSHD_READY_WITHIN:?}:\n{}",
                self.namespace(),
                self.address(),
                self.log()
            );
        }
    }

    /// What this host's sshd logged so far (for assertion messages).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn stop_sshd(&self) {
        if let Some(mut child) = self.sshd.lock().ok().and_then(|mut c| c.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn write_sshd_config(&self, authorized_keys: &Path) {
        std::fs::write(
            self.dir.join(run_tagged("sshd_config")),
            format!(
                "Port {SSH_PORT}\nListenAddress {address}\nHostKey {host_key}\n\
                 AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin yes\nStrictModes no\nUsePAM no\n\
                 PidFile none\nMaxStartups 100:30:200\nMaxSessions 32\nLogLevel INFO\n{set_env}",
                set_env = sshd_set_env(&self.scope),
                address = self.address(),
                host_key = self.dir.join("host_key").display(),
                keys = authorized_keys.display(),
            ),
        )
        .unwrap();
    }
}

fn keygen(path: &Path) {
    let status = Command::new(require_program("ssh-keygen", OPENSSH_INSTALL))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn namespace_name(slot: u32) -> String {
    format!("{NAMESPACE_PREFIX}{slot}")
}

/// `10.213.a.(b + host)` of `slot`'s /30.
fn slot_address(slot: u32, host: u32) -> Ipv4Addr {
    let base = slot * 4;
    Ipv4Addr::new(10, 213, (base / 256) as u8, (base % 256 + host) as u8)
}

/// A locally administered MAC address for `slot`'s end `end` (1: ours, 2: the host's).
fn slot_mac(slot: u32, end: u32) -> String {
    format!("02:d5:f1:{:02x}:{:02x}:{end:02x}", slot >> 8, slot & 0xff)
}

/// Runs `program args`, returning its stderr on failure.
fn run_quiet(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(require_program(program, IPROUTE2_INSTALL))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// `ip ARGS`, panicking with iproute2's message.
fn ip(args: &[&str]) {
    if let Err(message) = run_quiet("ip", args) {
        panic!("`ip {}` failed: {message}", args.join(" "));
    }
}

/// `tc ARGS`, panicking with iproute2's message.
fn tc(args: &[&str]) {
    if let Err(message) = run_quiet("tc", args) {
        panic!("`tc {}` failed: {message}", args.join(" "));
    }
}

/// Claims a slot and creates its namespace and veth pair, addresses up.
fn create_host_network() -> u32 {
    let start = std::process::id() % SLOTS;
    for offset in 0..SLOTS {
        let slot = (start + offset) % SLOTS;
        if !claim_slot(slot) {
            continue;
        }
        let namespace = namespace_name(slot);
        match run_quiet("ip", &["netns", "add", &namespace]) {
            Ok(()) => {}
            // A namespace of a stale slot that another process is still removing.
            Err(message) if message.contains("File exists") => {
                release_slot(slot);
                continue;
            }
            Err(message) => {
                release_slot(slot);
                panic!(
                    "cannot create a network namespace (`ip netns add {namespace}`): {message}\n\
                     The fleet fixture needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2: \
                     run the tests as root and install iproute2 with `{IPROUTE2_INSTALL}`"
                );
            }
        }
        let outside = format!("{LINK_PREFIX}{slot}r");
        let inside = format!("{LINK_PREFIX}{slot}h");
        let (outside_mac, inside_mac) = (slot_mac(slot, 1), slot_mac(slot, 2));
        if let Err(message) = run_quiet(
            "ip",
            &[
                "link",
                "add",
                &outside,
                "address",
                &outside_mac,
                "type",
                "veth",
                "peer",
                "name",
                &inside,
                "address",
                &inside_mac,
                "netns",
                &namespace,
            ],
        ) {
            teardown(slot);
            release_slot(slot);
            if message.contains("File exists") {
                continue;
            }
            panic!("cannot create the veth pair {outside}/{inside}: {message}");
        }
        let peer = format!("{}/30", slot_address(slot, 1));
        let host = format!("{}/30", slot_address(slot, 2));
        let (peer_ip, host_ip) = (
            slot_address(slot, 1).to_string(),
            slot_address(slot, 2).to_string(),
        );
        // Permanent neighbour entries: no ARP, so a downed link drops packets (connects time
        // out, transfers stall) instead of failing fast with "No route to host" once ARP gives
        // up, as a link that dies somewhere between routers would.
        let setup: [&[&str]; 7] = [
            &["addr", "add", &peer, "dev", &outside],
            &["link", "set", &outside, "up"],
            &[
                "neigh",
                "replace",
                &host_ip,
                "lladdr",
                &inside_mac,
                "dev",
                &outside,
                "nud",
                "permanent",
            ],
            &["-n", &namespace, "link", "set", "lo", "up"],
            &["-n", &namespace, "addr", "add", &host, "dev", &inside],
            &["-n", &namespace, "link", "set", &inside, "up"],
            &[
                "-n",
                &namespace,
                "neigh",
                "replace",
                &peer_ip,
                "lladdr",
                &outside_mac,
                "dev",
                &inside,
                "nud",
                "permanent",
            ],
        ];
        for args in setup {
            if let Err(message) = run_quiet("ip", args) {
                teardown(slot);
                release_slot(slot);
                panic!("`ip {}` failed: {message}", args.join(" "));
            }
        }
        return slot;
    }
    panic!("no free fleet slot under {STATE_DIR} (all {SLOTS} in use)");
}

static CLAIMS: AtomicU64 = AtomicU64::new(0);

/// A name no other process or thread uses under [`STATE_DIR`].
fn private_name(kind: &str) -> PathBuf {
    let n = CLAIMS.fetch_add(1, Ordering::Relaxed);
    Path::new(STATE_DIR).join(format!("{kind}-{}-{n}", std::process::id()))
}

fn slot_dir(slot: u32) -> PathBuf {
    Path::new(STATE_DIR).join(format!("slot-{slot}"))
}

/// Atomically claims `slot`: a private directory holding our owner record is renamed to the
/// slot's name, which fails while another (non-empty) claim holds it.
fn claim_slot(slot: u32) -> bool {
    std::fs::create_dir_all(STATE_DIR).unwrap_or_else(|error| {
        panic!("cannot create {STATE_DIR}: {error} (the fleet fixture needs root)")
    });
    let claim = private_name("claim");
    std::fs::create_dir(&claim).unwrap();
    std::fs::write(claim.join("owner"), owner_record(std::process::id())).unwrap();
    if std::fs::rename(&claim, slot_dir(slot)).is_ok() {
        true
    } else {
        let _ = std::fs::remove_dir_all(&claim);
        false
    }
}

/// Gives `slot` up: renamed away first, so the name is free only once it is empty of us.
fn release_slot(slot: u32) {
    let gone = private_name("released");
    if std::fs::rename(slot_dir(slot), &gone).is_ok() {
        let _ = std::fs::remove_dir_all(gone);
    }
}

/// `PID STARTTIME`: the pid alone could name a new process after the owner died.
fn owner_record(pid: u32) -> String {
    format!("{pid} {}\n", start_time(pid).unwrap_or_default())
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); the start time is field 22.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn owner_alive(record: &str) -> bool {
    let mut fields = record.split_whitespace();
    let (Some(pid), Some(start)) = (fields.next(), fields.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    start_time(pid).is_some_and(|now| now.to_string() == start)
}

/// Removes what killed runs left: slots whose owner is gone, and namespaces or veths with our
/// prefix that no slot claims.
pub fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(STATE_DIR) else {
        return;
    };
    for entry in entries.map_while(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Some(slot) = name
            .strip_prefix("slot-")
            .and_then(|s| s.parse::<u32>().ok())
        {
            let owner = std::fs::read_to_string(path.join("owner")).unwrap_or_default();
            if owner_alive(&owner) {
                continue;
            }
            // Renaming first: of several sweepers, one wins; the name is free afterwards.
            let stale = private_name("stale");
            if std::fs::rename(&path, &stale).is_ok() {
                teardown(slot);
                let _ = std::fs::remove_dir_all(stale);
            }
        } else if let Some(pid) = name
            .strip_prefix("claim-")
            .or_else(|| name.strip_prefix("stale-"))
            .or_else(|| name.strip_prefix("released-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
    // A namespace or veth without a slot: its owner died between releasing and deleting, or
    // the state directory was removed. A live owner claims its slot before creating either.
    let namespaces = Command::new("ip").args(["netns", "list"]).output();
    if let Ok(output) = namespaces {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if let Some(slot) = name
                .strip_prefix(NAMESPACE_PREFIX)
                .and_then(|s| s.parse::<u32>().ok())
            {
                if !slot_dir(slot).exists() {
                    teardown(slot);
                }
            }
        }
    }
    let links = Command::new("ip").args(["-o", "link", "show"]).output();
    if let Ok(output) = links {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let name = line.split(':').nth(1).unwrap_or_default().trim();
            let name = name.split('@').next().unwrap_or_default();
            if let Some(slot) = name
                .strip_prefix(LINK_PREFIX)
                .and_then(|s| s.strip_suffix('r'))
                .and_then(|s| s.parse::<u32>().ok())
            {
                if !slot_dir(slot).exists() {
                    teardown(slot);
                }
            }
        }
    }
}

/// Stops every process in `slot`'s namespace, then deletes its veth pair and namespace.
/// Idempotent: what is already gone is skipped.
fn teardown(slot: u32) {
    let namespace = namespace_name(slot);
    kill_and_wait(&namespace_pids(&namespace));
    let _ = run_quiet("ip", &["link", "del", &format!("{LINK_PREFIX}{slot}r")]);
    let _ = run_quiet("ip", &["netns", "del", &namespace]);
}

/// Pids of the processes inside `namespace` (none when it does not exist).
fn namespace_pids(namespace: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", namespace])
        .stderr(Stdio::null())
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILLs `pids` and waits (bounded) until none runs; a zombie counts as gone.
fn kill_and_wait(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let mut kill = Command::new("kill");
    kill.arg("-KILL").args(pids.iter().map(u32::to_string));
    let _ = kill.stderr(Stdio::null()).status();
    let deadline = Instant::now() + GONE_WITHIN;
    while pids.iter().any(|pid| running(*pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} still run {GONE_WITHIN:?} after SIGKILL"
        );
        // Polling /proc: a process that is not our child gives no exit notification.
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_disjoint_private_subnets() {
        assert_eq!(slot_address(0, 1), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(slot_address(0, 2), Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(slot_address(63, 2), Ipv4Addr::new(10, 213, 0, 254));
        assert_eq!(slot_address(64, 1), Ipv4Addr::new(10, 213, 1, 1));
        assert_eq!(slot_address(SLOTS - 1, 2), Ipv4Addr::new(10, 213, 255, 254));
        assert!(format!("{LINK_PREFIX}{}r", SLOTS - 1).len() <= 15);
    }

    #[test]
    fn an_owner_record_names_a_live_process_only_while_it_runs() {
        let me = owner_record(std::process::id());
        assert!(owner_alive(&me), "{me}");
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        let record = owner_record(pid);
        child.wait().unwrap();
        assert!(!owner_alive(&record), "{record}");
        // Same pid, another start time: a reused pid is not the owner.
        let reused = format!("{} 1\n", std::process::id());
        assert!(!owner_alive(&reused));
        assert!(!owner_alive(""));
    }

    /// What a run killed before its Drop leaves (a slot whose owner died, its namespace with a
    /// process inside, its veth) is removed by the next sweep; a live slot is left alone.
    #[test]
    fn a_sweep_removes_what_a_killed_run_left_and_keeps_live_slots() {
        let live = create_host_network();
        let stale = create_host_network();
        let mut dead = Command::new("true").spawn().unwrap();
        let dead_owner = owner_record(dead.id());
        dead.wait().unwrap();
        std::fs::write(slot_dir(stale).join("owner"), dead_owner).unwrap();
        // Under a guard too, so a failing assertion below still stops it.
        let mut inside = crate::process::spawn(Command::new("ip").args([
            "netns",
            "exec",
            &namespace_name(stale),
            "sleep",
            "600",
        ]));
        let deadline = Instant::now() + GONE_WITHIN;
        while !namespace_pids(&namespace_name(stale)).contains(&inside.id()) {
            assert!(
                Instant::now() < deadline,
                "sleep never entered the namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }

        sweep_stale();

        assert!(
            !running(inside.id()),
            "the stale namespace's process was killed"
        );
        let _ = inside.wait();
        let namespaces = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned();
        let listed = |slot: u32| {
            namespaces
                .lines()
                .any(|line| line.split_whitespace().next() == Some(&namespace_name(slot)))
        };
        assert!(!listed(stale), "{namespaces}");
        assert!(!slot_dir(stale).exists());
        assert!(
            run_quiet("ip", &["link", "show", &format!("{LINK_PREFIX}{stale}r")]).is_err(),
            "the stale veth is gone"
        );
        assert!(listed(live), "{namespaces}");
        assert!(slot_dir(live).exists());
        teardown(live);
        release_slot(live);
        assert!(!slot_dir(live).exists());
    }
}
