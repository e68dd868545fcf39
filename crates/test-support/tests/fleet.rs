//! The fleet fixture against a real OpenSSH client: each host answers on its own address from
//! its own namespace, a link taken down makes connects time out (bounded) while the other host
//! still answers, and Drop removes everything.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::fleet::{Fleet, FleetHost};
use test_support::{Output, run};

fn ssh(fleet: &Fleet, host: &FleetHost, remote: &str) -> Output {
    run(fleet.ssh(host, Duration::from_secs(3)).arg(remote))
}

/// Sends `payload` to the host's `wc -c`; returns what it counted.
fn upload(fleet: &Fleet, host: &FleetHost, payload: &std::path::Path) -> Output {
    let output = fleet
        .ssh(host, Duration::from_secs(5))
        .arg("wc -c")
        .stdin(std::fs::File::open(payload).expect("open payload"))
        .output()
        .expect("run ssh");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn namespaces() -> String {
    run(Command::new("ip").args(["netns", "list"])).stdout
}

fn links() -> String {
    run(Command::new("ip").args(["-o", "link", "show"])).stdout
}

#[test]
fn each_host_answers_from_its_own_namespace_and_a_downed_link_times_out() {
    let fleet = Fleet::start(2);
    let [one, two] = fleet.hosts() else {
        panic!("two hosts expected")
    };
    assert_ne!(one.address(), two.address());
    for host in [one, two] {
        // SSH_CONNECTION names the server address the session reached; `ip` inside shows
        // that the shell runs in a namespace holding only that address.
        let out = ssh(&fleet, host, "echo \"$SSH_CONNECTION\"; ip -o -4 addr show");
        assert_eq!(out.code, Some(0), "{out:?}\n{}", host.log());
        let mut lines = out.stdout.lines();
        let connection = lines.next().unwrap_or_default();
        assert!(
            connection.ends_with(&format!("{} 22", host.address())),
            "{connection}"
        );
        assert!(
            connection.starts_with(&format!("{} ", host.peer_address())),
            "{connection}"
        );
        let addresses: Vec<&str> = lines.collect();
        assert_eq!(addresses.len(), 2, "lo and the veth only: {addresses:?}");
        assert!(addresses[0].contains("127.0.0.1/8"), "{addresses:?}");
        assert!(
            addresses[1].contains(&format!("{}/30", host.address()))
                && addresses[1].contains(&host.link_inside()),
            "{addresses:?}"
        );
    }
    assert_eq!(
        fleet.known_hosts().lines().count(),
        2,
        "{}",
        fleet.known_hosts()
    );

    one.link_down();
    // The connected route stays (marked linkdown): packets are dropped on the veth, never
    // handed to the default gateway.
    let route = run(Command::new("ip").args(["route", "get", &one.address().to_string()]));
    assert!(
        route
            .stdout
            .contains(&format!("dev {} ", one.link_outside())),
        "{route:?}"
    );
    let started = Instant::now();
    let connect = TcpStream::connect_timeout(
        &SocketAddr::from((one.address(), one.port())),
        Duration::from_secs(2),
    );
    let error = connect.expect_err("connect to a host whose link is down");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
    let started_ssh = Instant::now();
    let out = ssh(&fleet, one, "true");
    let ssh_took = started_ssh.elapsed();
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("timed out"), "{out:?}");
    assert!(
        ssh_took >= Duration::from_secs(2) && ssh_took < Duration::from_secs(10),
        "ssh gave up after {ssh_took:?} (ConnectTimeout=3)"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let out = ssh(&fleet, two, "echo still here");
    assert_eq!(out.code, Some(0), "{out:?}\n{}", two.log());
    assert_eq!(out.stdout, "still here\n");

    one.link_up();
    let out = ssh(&fleet, one, "echo back");
    assert_eq!(out.code, Some(0), "{out:?}\n{}", one.log());
    assert_eq!(out.stdout, "back\n");
}

#[test]
fn a_killed_sshd_refuses_connections_until_started_again() {
    let fleet = Fleet::start(1);
    let host = &fleet.hosts()[0];
    host.kill_sshd();
    let error = TcpStream::connect_timeout(
        &SocketAddr::from((host.address(), host.port())),
        Duration::from_secs(5),
    )
    .expect_err("nothing listens");
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{error}"
    );
    host.start_sshd();
    let out = ssh(&fleet, host, "echo again");
    assert_eq!(out.code, Some(0), "{out:?}\n{}", host.log());
    assert_eq!(out.stdout, "again\n");
}

#[test]
fn a_rate_limit_slows_an_upload_to_the_configured_rate() {
    let fleet = Fleet::start(1);
    let host = &fleet.hosts()[0];
    // 400 kbit/s: 200 KB take at least 4 s (minus one burst); unlimited, a few milliseconds.
    host.limit_rate(400_000);
    let payload = std::env::temp_dir().join(format!("fleet-payload-{}", std::process::id()));
    std::fs::write(&payload, vec![0x5a_u8; 200_000]).expect("write payload");
    let started = Instant::now();
    let out = upload(&fleet, host, &payload);
    let limited = started.elapsed();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "200000");
    assert!(limited >= Duration::from_secs(3), "took {limited:?}");

    host.clear_rate_limit();
    let started = Instant::now();
    let out = upload(&fleet, host, &payload);
    let _ = std::fs::remove_file(&payload);
    assert_eq!(out.stdout.trim(), "200000", "{out:?}");
    assert!(started.elapsed() < limited / 2, "{:?}", started.elapsed());
}

#[test]
fn drop_removes_namespaces_links_and_sshd() {
    let fleet = Fleet::start(2);
    let names: Vec<String> = fleet.hosts().iter().map(FleetHost::namespace).collect();
    let veths: Vec<String> = fleet.hosts().iter().map(FleetHost::link_outside).collect();
    let sshd_pids: Vec<String> = names
        .iter()
        .flat_map(|name| {
            run(Command::new("ip").args(["netns", "pids", name]))
                .stdout
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(sshd_pids.len(), 2, "one sshd per namespace: {sshd_pids:?}");
    for name in &names {
        assert!(namespaces().contains(name.as_str()));
    }
    drop(fleet);
    let namespaces = namespaces();
    let links = links();
    for name in &names {
        assert!(!namespaces.contains(&format!("{name}\n")), "{namespaces}");
        assert!(!namespaces.contains(&format!("{name} ")), "{namespaces}");
    }
    for veth in &veths {
        assert!(!links.contains(&format!(" {veth}@")), "{links}");
    }
    for pid in &sshd_pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "sshd {pid} still exists"
        );
    }
}

/// What ssh-deploy's stalled-upload tests rely on: while a host's link is down an established
/// transfer stalls (no reset, no error), and it resumes once the link is back.
#[test]
fn a_transfer_stalls_while_the_link_is_down_and_resumes_after() {
    let fleet = Fleet::start(1);
    let host = &fleet.hosts()[0];
    // 120 KB at 320 kbit/s: 3 s of transfer, long enough to cut in the middle.
    host.limit_rate(320_000);
    let work = tempfile::tempdir().expect("tempdir");
    let payload = work.path().join("payload");
    std::fs::write(&payload, vec![0x5a_u8; 120_000]).expect("write payload");
    // The hosts share this machine's file system: the test watches the file grow.
    let received = work.path().join("received");
    let mut upload = test_support::process::spawn(
        fleet
            .ssh(host, Duration::from_secs(5))
            .arg(format!("cat > '{}'", received.display()))
            .stdin(std::fs::File::open(&payload).expect("open payload"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    let size = || std::fs::metadata(&received).map_or(0, |m| m.len());
    let deadline = Instant::now() + Duration::from_secs(20);
    while size() == 0 {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.link_down();
    // Whatever was in flight lands; then nothing for as long as the link is down.
    std::thread::sleep(Duration::from_millis(500));
    let stalled_at = size();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(size(), stalled_at, "bytes arrived over a downed link");
    assert!(stalled_at < 120_000, "the upload finished before the cut");
    assert!(
        upload.try_wait().expect("poll ssh").is_none(),
        "ssh gave up while the link was down"
    );
    host.link_up();
    let status = test_support::wait_for_exit(
        &mut upload,
        Duration::from_secs(30),
        "the upload did not resume",
    );
    assert!(status.success(), "ssh failed: {status}");
    assert_eq!(size(), 120_000);
}
