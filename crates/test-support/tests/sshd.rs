//! The Sshd guard stops what a session started, even a service that detached with `setsid`
//! (as ssh-deploy's restart commands start services): issue 25, point 18.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use test_support::process::running;
use test_support::run;
use test_support::sshd::Sshd;

#[test]
fn dropping_sshd_stops_a_detached_service_a_session_started() {
    let sshd = Sshd::start();
    let key = sshd.dir().join("client_key");
    std::fs::write(&key, sshd.user_key()).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let known_hosts = sshd.dir().join("client_known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts_line() + "\n").expect("write known_hosts");
    let out = run(Command::new(test_support::require_program(
        "ssh",
        "apt-get install -y openssh-client",
    ))
    .args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
    .arg("-i")
    .arg(&key)
    .args(["-p", &sshd.port().to_string(), "root@127.0.0.1"])
    .arg("setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!"));
    assert_eq!(out.code, Some(0), "{out:?}\n{}", sshd.log());
    let pid: u32 = out.stdout.trim().parse().expect("a pid");
    assert!(running(pid), "the service runs after the session ended");
    drop(sshd);
    assert!(!running(pid), "{pid} survived the Sshd guard");
}
