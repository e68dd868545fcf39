//! A failed deploy never leaves a host worse than before (issue #25, points 1, 3, 4, 5, 7, 9
//! and 16): faults injected for real on a deploy root reached with `--hosts local` (the same
//! remote commands as over SSH, run by the local `sh`): a small tmpfs as the deploy root that
//! fills up mid-unpack, a signal during the restarts, locks left by deploys that died, hostile
//! owner names, set-id bits in an artifact.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::{Output, run, send_signal, tool_command, wait_for_exit};

fn binary() -> Command {
    tool_command(env!("CARGO_BIN_EXE_ssh-deploy"))
}

/// A release tree with `VERSION` and, when `filler` is set, a file of that many zero bytes
/// (tiny once gzipped, large once unpacked: what fills a small disk during the unpack).
fn artifact(dir: &Path, version: &str, filler: usize) -> PathBuf {
    let tree = dir.join(format!("tree-{version}"));
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    std::fs::write(tree.join("VERSION"), format!("{version}\n")).expect("write");
    if filler > 0 {
        std::fs::write(tree.join("bin/blob"), vec![0u8; filler]).expect("write");
    }
    let out = dir.join(format!("{version}.tar.gz"));
    ssh_deploy::pack::pack(&tree, &out, &dir.join(format!("{version}.json")), 0).expect("pack");
    out
}

/// A deploy root on a tmpfs of `megabytes`, unmounted at the end of the test.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("root");
        std::fs::create_dir(&path).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {megabytes} MB tmpfs at {} failed: this test needs root (CAP_SYS_ADMIN), as CI \
             and the dev machines have",
            path.display()
        );
        Self { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn deploy(root: &Path, artifact: &Path, release: &str, extra: &[&str]) -> Command {
    let mut command = binary();
    command
        .arg("deploy")
        .env("SSH_DEPLOY_HOSTS", "local")
        .env("SSH_DEPLOY_ROOT", root)
        .env("SSH_DEPLOY_ARTIFACT", artifact)
        .env("SSH_DEPLOY_RELEASE_ID", release)
        .args(extra);
    command
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn current(root: &Path) -> String {
    std::fs::read_link(root.join("current"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn ok(output: &Output) {
    assert_eq!(output.code, Some(0), "{}\n{}", output.stdout, output.stderr);
}

/// Point 1: an artifact that unpacks to more than the disk holds fails the deploy (exit 3,
/// nothing switched) and leaves no temp directory: the disk is as free as before, and the next
/// deploy goes through.
#[test]
fn a_full_disk_during_unpack_leaves_no_temp_and_the_next_deploy_works() {
    let disk = SmallDisk::new(8);
    let work = tempfile::tempdir().expect("tmp");
    let small = artifact(work.path(), "v1", 0);
    ok(&run(&mut deploy(&disk.path, &small, "v1", &[])));
    let big = artifact(work.path(), "v2", 16 << 20);
    let failed = run(&mut deploy(&disk.path, &big, "v2", &[]));
    assert_eq!(failed.code, Some(3), "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("unpack"),
        "the failing step is named: {}",
        failed.stderr
    );
    assert_eq!(entries(&disk.path.join("releases")), ["v1"]);
    assert!(current(&disk.path).ends_with("releases/v1"));
    let third = artifact(work.path(), "v3", 0);
    ok(&run(&mut deploy(&disk.path, &third, "v3", &[])));
    assert!(current(&disk.path).ends_with("releases/v3"));
}

/// Points 1, 5 and 7: what a deploy killed outright left (an unpack directory, a switch link,
/// a partial upload) is removed by the next deploy once it holds the lock, and it says so.
#[test]
fn leftovers_of_a_killed_deploy_are_cleaned_by_the_next_one() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    let v1 = artifact(work.path(), "v1", 0);
    ok(&run(&mut deploy(&root, &v1, "v1", &[])));
    std::fs::create_dir_all(root.join("releases/.tmp-v2-0123abcd/bin")).expect("mkdir");
    std::fs::write(root.join("releases/.tmp-v2-0123abcd/bin/x"), "half").expect("write");
    std::os::unix::fs::symlink("releases/v1", root.join(".current-0123abcd")).expect("link");
    std::fs::write(
        root.join(".ssh-deploy/artifacts/ffff.tar.gz.part-0123abcd"),
        vec![7u8; 4096],
    )
    .expect("write");
    let v2 = artifact(work.path(), "v2", 0);
    let output = run(&mut deploy(&root, &v2, "v2", &[]));
    ok(&output);
    assert_eq!(entries(&root.join("releases")), ["v1", "v2"]);
    assert!(!root.join(".current-0123abcd").exists());
    assert!(
        !entries(&root.join(".ssh-deploy/artifacts"))
            .iter()
            .any(|n| n.contains(".part-")),
        "{:?}",
        entries(&root.join(".ssh-deploy/artifacts"))
    );
    let all = format!("{}{}", output.stdout, output.stderr);
    assert!(
        all.contains("removed what an earlier deploy left when it died")
            && all.contains(".tmp-v2-0123abcd")
            && all.contains("ffff.tar.gz.part-0123abcd"),
        "{all}"
    );
}

/// Point 5: retention covers uploaded artifacts: seven deploys with `--keep-releases 2` leave
/// the artifacts of the kept releases only.
#[test]
fn retention_prunes_artifacts_with_their_releases() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    for n in 1..=7 {
        let version = format!("v{n}");
        let file = artifact(work.path(), &version, n * 1000);
        ok(&run(&mut deploy(
            &root,
            &file,
            &version,
            &["--keep-releases", "2"],
        )));
    }
    let releases = entries(&root.join("releases"));
    assert_eq!(releases, ["v6", "v7"]);
    let artifacts = entries(&root.join(".ssh-deploy/artifacts"));
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    for release in releases {
        let sha =
            std::fs::read_to_string(root.join(format!(".ssh-deploy/release-{release}.sha256")))
                .expect("marker");
        assert!(
            artifacts.contains(&format!("{}.tar.gz", sha.trim())),
            "{release}'s artifact is kept: {artifacts:?}"
        );
    }
}

/// Writes a lock as another deploy would have left it.
fn foreign_lock(root: &Path, owner: Option<&str>, lease_offset: Option<i64>, age_secs: u64) {
    let lock = root.join(".ssh-deploy/lock");
    std::fs::create_dir_all(&lock).expect("mkdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let since = now - age_secs;
    std::fs::write(
        lock.join("owner"),
        owner.map_or(String::new(), |owner| {
            format!("token=feedbeef\nowner={owner}\nrun=other\nsince={since}\n")
        }),
    )
    .expect("write");
    if let Some(offset) = lease_offset {
        let lease = now.saturating_add_signed(offset);
        std::fs::write(lock.join("lease"), format!("{lease}\n")).expect("write");
    }
    // The lock directory's own time is when it was made (a lock whose owner file is empty).
    let status = Command::new("touch")
        .args(["-d", &format!("@{since}")])
        .arg(&lock)
        .status()
        .expect("touch");
    assert!(status.success());
}

/// Point 4: a lock with an empty owner file (a full disk when it was taken) is refused while
/// young, with an error that says what it is, and taken over once stale like any other.
#[test]
fn a_lock_without_a_readable_owner_goes_stale_like_any_other() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    let v1 = artifact(work.path(), "v1", 0);
    ok(&run(&mut deploy(&root, &v1, "v1", &[])));
    foreign_lock(&root, None, None, 5);
    let v2 = artifact(work.path(), "v2", 0);
    let held = run(&mut deploy(&root, &v2, "v2", &["--lock-stale-after", "1h"]));
    assert_eq!(held.code, Some(3), "{}", held.stderr);
    assert!(
        held.stderr.contains("no readable owner") && held.stderr.contains("held for"),
        "{}",
        held.stderr
    );
    std::fs::remove_dir_all(root.join(".ssh-deploy/lock")).expect("rm");
    foreign_lock(&root, None, None, 7200);
    let taken = run(&mut deploy(&root, &v2, "v2", &["--lock-stale-after", "1h"]));
    ok(&taken);
    assert!(
        taken.stderr.contains("no readable owner") && taken.stderr.contains("taking over"),
        "{}",
        taken.stderr
    );
    assert!(current(&root).ends_with("releases/v2"));
    assert!(!root.join(".ssh-deploy/lock").exists());
}

/// Point 7: a lock whose lease ran out (its deploy stopped renewing it: killed, or cut off
/// from the host) is taken over at once, long before `--lock-stale-after`; one whose lease
/// still runs is respected.
#[test]
fn a_lock_whose_lease_ran_out_is_taken_over_at_once() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    let v1 = artifact(work.path(), "v1", 0);
    ok(&run(&mut deploy(&root, &v1, "v1", &[])));
    foreign_lock(&root, Some("bob"), Some(120), 30);
    let v2 = artifact(work.path(), "v2", 0);
    let held = run(&mut deploy(&root, &v2, "v2", &[]));
    assert_eq!(held.code, Some(3), "{}", held.stderr);
    assert!(
        held.stderr.contains("bob (run other)") && held.stderr.contains("lease runs"),
        "{}",
        held.stderr
    );
    std::fs::remove_dir_all(root.join(".ssh-deploy/lock")).expect("rm");
    foreign_lock(&root, Some("bob"), Some(-5), 30);
    let taken = run(&mut deploy(&root, &v2, "v2", &[]));
    ok(&taken);
    assert!(taken.stderr.contains("lease ran out"), "{}", taken.stderr);
}

/// Point 7: while a deploy works on a host (here: a slow restart), the host keeps renewing its
/// lease, so a second deploy with a short lease setting still finds the lock held.
#[test]
fn a_live_deploy_keeps_its_lease() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    let v1 = artifact(work.path(), "v1", 0);
    ok(&run(&mut deploy(&root, &v1, "v1", &[])));
    let v2 = artifact(work.path(), "v2", 0);
    let started = work.path().join("started");
    let release = work.path().join("release");
    let restart = format!(
        "web=touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done",
        started.display(),
        release.display()
    );
    let mut first = deploy(
        &root,
        &v2,
        "v2",
        &[
            "--lock-lease",
            "3s",
            "--services",
            "web",
            "--service-manager",
            "custom",
        ],
    );
    first
        .env("SSH_DEPLOY_RESTART_COMMAND", &restart)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = test_support::process::spawn(&mut first);
    wait_for_file(&started, Duration::from_secs(30));
    // Well past one lease (3 s): only renewal keeps the lock alive now. The wait is the point of
    // the test (time has to pass for a lease to run out), not a synchronisation.
    std::thread::sleep(Duration::from_secs(5));
    let v3 = artifact(work.path(), "v3", 0);
    let second = run(&mut deploy(&root, &v3, "v3", &["--lock-lease", "3s"]));
    std::fs::write(&release, "").expect("write");
    let status = wait_for_exit(&mut child, Duration::from_secs(60), "first deploy");
    assert_eq!(second.code, Some(3), "{}", second.stderr);
    assert!(
        second.stderr.contains("another deploy holds the lock"),
        "{}",
        second.stderr
    );
    assert!(status.success(), "first deploy: {status:?}");
    assert!(current(&root).ends_with("releases/v2"));
}

fn wait_for_file(path: &Path, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Point 3: SIGINT while the services restart, with no gate file: exit 130 and a rollback (it
/// used to print "rolling back", then `result: success`, exit 0, with the new release live).
#[test]
fn a_signal_during_the_restarts_without_a_gate_rolls_back() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    let v1 = artifact(work.path(), "v1", 0);
    let started = work.path().join("started");
    let release = work.path().join("release");
    let restart = format!(
        "web=if [ \"$(cat \"$SSH_DEPLOY_ROOT/current/VERSION\")\" = v2 ]; then touch '{}'; \
         while [ ! -e '{}' ]; do sleep 0.05; done; fi",
        started.display(),
        release.display()
    );
    let with_service = |command: &mut Command| {
        command
            .env("SSH_DEPLOY_SERVICES", "web")
            .env("SSH_DEPLOY_SERVICE_MANAGER", "custom")
            .env("SSH_DEPLOY_RESTART_COMMAND", &restart);
    };
    let mut first = deploy(&root, &v1, "v1", &[]);
    with_service(&mut first);
    ok(&run(&mut first));
    let v2 = artifact(work.path(), "v2", 0);
    let mut second = deploy(&root, &v2, "v2", &[]);
    with_service(&mut second);
    let output_file = work.path().join("github_output");
    second
        .env("GITHUB_OUTPUT", &output_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = test_support::process::spawn(&mut second);
    wait_for_file(&started, Duration::from_secs(30));
    send_signal(&child, "INT");
    std::fs::write(&release, "").expect("write");
    let status = wait_for_exit(&mut child, Duration::from_secs(60), "interrupted deploy");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("read");
    }
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(current(&root).ends_with("releases/v1"), "{stderr}");
    let outputs = std::fs::read_to_string(&output_file).unwrap_or_default();
    assert!(outputs.contains("interrupted"), "{outputs}");
    assert!(!root.join(".ssh-deploy/lock").exists());
}

/// Point 16: set-id bits in a hand-made artifact are not deployed (and are named); a `who`
/// holding tabs and newlines cannot forge fields or lines in the release log or lock owner.
#[test]
fn setid_bits_are_stripped_and_log_fields_cannot_be_forged() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    std::fs::write(tree.join("bin/tool"), "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(
        tree.join("bin/tool"),
        std::fs::Permissions::from_mode(0o6755),
    )
    .expect("chmod");
    // A hand-made archive (tar keeps the mode as given), as the attacker would make it.
    let archive = work.path().join("setid.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .arg("bin")
        .status()
        .expect("tar");
    assert!(status.success());
    let mut command = deploy(&root, &archive, "v1", &[]);
    command.env(
        "GITHUB_ACTOR",
        "mallory\tforged\tfields\nv0\tdead\tx\ty\tsuccess",
    );
    let output = run(&mut command);
    ok(&output);
    let mode = std::fs::metadata(root.join("releases/v1/bin/tool"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "mode {mode:o}");
    assert!(
        output.stderr.contains("setuid/setgid bit removed")
            || output.stdout.contains("setuid/setgid bit removed"),
        "{}",
        output.stderr
    );
    let log = std::fs::read_to_string(root.join(".ssh-deploy/log")).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log:?}");
    assert_eq!(lines[0].split('\t').count(), 5, "{log:?}");
    assert!(
        lines[0].contains("mallory\\tforged\\tfields\\nv0"),
        "{log:?}"
    );
}

/// Point 2: an endless `/metrics` endpoint in the gate after the switch. It used to abort
/// ssh-deploy on the allocation (exit 134) with the new release live, ungated, the lock held.
/// Now the gate fails on its bounded read, the deploy rolls back (exit 1), and the lock goes.
#[test]
fn an_endless_metrics_endpoint_fails_the_gate_and_the_deploy_rolls_back() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("root");
    // The endpoint runs away while v2 is current; v1's answers normally (the rollback's
    // re-check then passes).
    let current_link = root.join("current");
    let metrics = test_support::HttpServer::start(move |_| {
        let sample = b"http_requests_total{code=\"200\"} 1\n".to_vec();
        let v2 = std::fs::read_link(&current_link).is_ok_and(|p| p.ends_with("releases/v2"));
        if v2 {
            test_support::http_server::Reply::Endless {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                pattern: sample,
            }
        } else {
            test_support::http_server::Reply::Respond {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: sample,
            }
        }
    });
    let v1 = artifact(work.path(), "v1", 0);
    ok(&run(&mut deploy(&root, &v1, "v1", &[])));
    let gate = work.path().join("gate.yaml");
    std::fs::write(
        &gate,
        format!(
            "checks:\n  - name: slo\n    metrics: {{ scrape: '{}', window: 100ms, rules: [{{ expr: 'http_requests_total', below: 1e12 }}] }}\n    readiness: {{ interval: 50ms, deadline: 5s }}\n",
            metrics.url("/metrics")
        ),
    )
    .expect("write");
    let v2 = artifact(work.path(), "v2", 0);
    let mut command = deploy(&root, &v2, "v2", &[]);
    command.env("SSH_DEPLOY_GATE_FILE", &gate);
    let output = run(&mut command);
    assert_eq!(output.code, Some(1), "{}\n{}", output.stdout, output.stderr);
    assert!(current(&root).ends_with("releases/v1"), "{}", output.stderr);
    assert!(
        !root.join(".ssh-deploy/lock").exists(),
        "the lock is released"
    );
    assert!(output.stdout.contains("rolled-back"), "{}", output.stdout);
}
