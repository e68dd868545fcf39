//! `scripts/install.sh` against a release mirror on disk (`file://`): it installs only what
//! matches the pinned checksum, caches verified binaries, and explains what it cannot do.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::{Output, run, tool_command, workspace_root};

const TARGET: &str = "x86_64-unknown-linux-musl";

/// A fake release `v9.9.9` holding a `health-gate` that prints a marker; returns the
/// mirror base URL and the archive's sha256.
fn release_mirror(dir: &Path) -> (String, String) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).expect("stage");
    let binary = stage.join("health-gate");
    std::fs::write(&binary, "#!/bin/sh\necho 'health-gate 9.9.9 (fake)'\n").expect("write");
    run(Command::new("chmod").arg("+x").arg(&binary));
    let release = dir.join("mirror/v9.9.9");
    std::fs::create_dir_all(&release).expect("release dir");
    let archive = release.join(format!("health-gate-9.9.9-{TARGET}.tar.gz"));
    let tar = run(Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&stage)
        .arg("health-gate"));
    assert_eq!(tar.code, Some(0), "{tar:?}");
    let sha = run(Command::new("sha256sum").arg(&archive));
    let sha = sha
        .stdout
        .split_whitespace()
        .next()
        .expect("sha")
        .to_owned();
    std::fs::write(
        release.join("sha256.sum"),
        format!("{sha}  health-gate-9.9.9-{TARGET}.tar.gz\n"),
    )
    .expect("sha256.sum");
    (format!("file://{}", dir.join("mirror").display()), sha)
}

fn install(args: &[&str]) -> Output {
    let script = workspace_root().join("scripts/install.sh");
    run(tool_command("sh").arg(script).args(args))
}

fn checksums(dir: &Path, sha: &str) -> PathBuf {
    let path = dir.join("checksums.sha256");
    std::fs::write(
        &path,
        format!("# header\n{sha}  health-gate-9.9.9-{TARGET}.tar.gz\n"),
    )
    .expect("checksums");
    path
}

#[test]
fn installs_a_release_that_matches_the_pinned_checksum_and_caches_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, sha) = release_mirror(dir.path());
    let sums = checksums(dir.path(), &sha);
    let out_dir = dir.path().join("bin");
    let cache = dir.path().join("cache");
    let github_output = dir.path().join("github_output");
    let args = [
        "--version",
        "9.9.9",
        "--base-url",
        &base,
        "--checksums",
        sums.to_str().expect("utf-8"),
        "--target",
        TARGET,
        "--dir",
        out_dir.to_str().expect("utf-8"),
        "--tool-cache",
        cache.to_str().expect("utf-8"),
        "--github-output",
        github_output.to_str().expect("utf-8"),
        "health-gate",
    ];
    let first = install(&args);
    assert_eq!(first.code, Some(0), "{first:?}");
    let installed = out_dir.join("health-gate");
    let ran = run(&mut Command::new(&installed));
    assert_eq!(ran.stdout, "health-gate 9.9.9 (fake)\n");
    assert_eq!(
        std::fs::read_to_string(&github_output).expect("output"),
        format!("path={}\n", installed.display())
    );
    assert!(
        cache
            .join(format!(
                "deploy-suite/health-gate/9.9.9/{TARGET}/health-gate"
            ))
            .is_file()
    );

    // Second run: served from the verified tool cache, the mirror is not needed.
    std::fs::remove_dir_all(dir.path().join("mirror")).expect("remove mirror");
    let second = install(&args);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(
        second.stderr.contains("tool cache hit"),
        "{}",
        second.stderr
    );
}

#[test]
fn refuses_an_archive_whose_checksum_does_not_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, _) = release_mirror(dir.path());
    let sums = checksums(dir.path(), &"0".repeat(64));
    let out_dir = dir.path().join("bin");
    let result = install(&[
        "--version",
        "9.9.9",
        "--base-url",
        &base,
        "--checksums",
        sums.to_str().expect("utf-8"),
        "--target",
        TARGET,
        "--dir",
        out_dir.to_str().expect("utf-8"),
        "health-gate",
    ]);
    assert_eq!(result.code, Some(3), "{result:?}");
    assert!(
        result.stderr.contains("checksum mismatch"),
        "{}",
        result.stderr
    );
    assert!(!out_dir.join("health-gate").exists(), "nothing installed");
}

#[test]
fn without_a_pinned_checksum_it_verifies_against_the_release_file_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, _) = release_mirror(dir.path());
    let out_dir = dir.path().join("bin");
    let result = install(&[
        "--version",
        "v9.9.9",
        "--base-url",
        &base,
        "--checksums",
        dir.path().join("empty").to_str().expect("utf-8"),
        "--target",
        TARGET,
        "--dir",
        out_dir.to_str().expect("utf-8"),
        "health-gate",
    ]);
    // The named checksums file does not exist: a usage error, not a silent fallback.
    assert_eq!(result.code, Some(2), "{result:?}");

    std::fs::write(dir.path().join("empty"), "").expect("empty checksums");
    let result = install(&[
        "--version",
        "v9.9.9",
        "--base-url",
        &base,
        "--checksums",
        dir.path().join("empty").to_str().expect("utf-8"),
        "--target",
        TARGET,
        "--dir",
        out_dir.to_str().expect("utf-8"),
        "health-gate",
    ]);
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result.stderr.contains("no pinned checksum"),
        "{}",
        result.stderr
    );
}

#[test]
fn rejects_unknown_binaries_platforms_and_modes_with_usage_errors() {
    let unknown = install(&["kubectl"]);
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains("expected one of change-detect"),
        "{}",
        unknown.stderr
    );

    let mode = install(&["--mode", "magic", "health-gate"]);
    assert_eq!(mode.code, Some(2));

    let arch = run(tool_command("sh")
        .arg(workspace_root().join("scripts/install.sh"))
        .args(["--version", "1.0.0", "health-gate"])
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "ARM"));
    assert_eq!(arch.code, Some(2));
    assert!(
        arch.stderr.contains("unsupported architecture 'ARM'"),
        "{}",
        arch.stderr
    );
}

#[test]
fn uses_a_preinstalled_binary_after_checking_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, _) = release_mirror(dir.path());
    let binary = dir.path().join("stage/health-gate");
    let github_output = dir.path().join("github_output");
    let ok = install(&[
        "--binary",
        binary.to_str().expect("utf-8"),
        "--github-output",
        github_output.to_str().expect("utf-8"),
        "health-gate",
    ]);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert_eq!(
        std::fs::read_to_string(&github_output).expect("read"),
        format!("path={}\n", binary.display())
    );
    let missing = install(&["--binary", "/nonexistent/health-gate", "health-gate"]);
    assert_eq!(missing.code, Some(2));
}

#[test]
fn auto_mode_on_an_unreleased_commit_without_cargo_explains_what_to_do() {
    // A source tree whose recorded release (actions/VERSION) is not its Cargo.toml version,
    // and a PATH without cargo: nothing can be installed, and the message says why.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("scripts")).expect("scripts");
    std::fs::create_dir_all(dir.path().join("actions")).expect("actions");
    std::fs::copy(
        workspace_root().join("scripts/install.sh"),
        dir.path().join("scripts/install.sh"),
    )
    .expect("copy");
    std::fs::write(dir.path().join("actions/VERSION"), "1.0.0\n").expect("VERSION");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace.package]\nversion = \"1.1.0\"\n",
    )
    .expect("Cargo.toml");
    let result = run(tool_command("sh")
        .arg(dir.path().join("scripts/install.sh"))
        .args(["--mode", "auto", "health-gate"])
        .env("PATH", "/usr/bin:/bin"));
    assert_eq!(result.code, Some(2), "{result:?}");
    assert!(
        result.stderr.contains("no released binary is recorded"),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("actions/VERSION: 1.0.0"),
        "{}",
        result.stderr
    );
}

/// Hostile values of the action's `install` and `binary-path` inputs (and of every other
/// option install.sh echoes) never form a workflow command in its messages (issue 17, §2).
#[test]
fn echoed_inputs_never_form_a_workflow_command() {
    let hostile = [
        "x\n::warning title=INJECTED::y",
        "  \n  ::add-mask::z",
        "a ##[warning]mid-line",
        "b\r::error::cr",
    ];
    for value in hostile {
        for args in [
            vec!["--mode", value, "health-gate"],
            vec!["--binary", value, "health-gate"],
            vec!["--attestation", value, "health-gate"],
            vec![value],
            vec![
                "--version",
                "1.0.0",
                "--target",
                TARGET,
                "--base-url",
                value,
                "health-gate",
            ],
        ] {
            let result = install(&args);
            assert_eq!(result.code, Some(2), "{args:?}: {result:?}");
            let commands = suite_tests::runner_rules::workflow_commands(&result.stderr);
            assert!(
                commands.is_empty(),
                "{args:?}: {commands:?} in\n{}",
                result.stderr
            );
            assert!(
                result.stderr.lines().all(|l| l.starts_with("install.sh: ")),
                "one line per message: {:?}",
                result.stderr
            );
        }
    }
    // The value stays readable: newlines shown as \n.
    let shown = install(&["--mode", "x\n::warning::y", "health-gate"]);
    assert!(
        shown.stderr.contains(r"'x\n::warning::y'"),
        "{}",
        shown.stderr
    );
}

/// A release mirror named by DEPLOY_SUITE_DOWNLOAD_URL (GHES, air-gapped) instead of
/// `--base-url`; a trailing slash is fine.
#[test]
fn downloads_from_the_mirror_named_by_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, sha) = release_mirror(dir.path());
    let out_dir = dir.path().join("bin");
    let result = run(tool_command("sh")
        .arg(workspace_root().join("scripts/install.sh"))
        .args(["--version", "9.9.9", "--sha256", &sha, "--target", TARGET])
        .arg("--dir")
        .arg(&out_dir)
        .args(["--attestation", "skip", "health-gate"])
        .env("DEPLOY_SUITE_DOWNLOAD_URL", format!("{base}/")));
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result
            .stderr
            .contains(&format!("downloading {base}/v9.9.9/")),
        "{}",
        result.stderr
    );
    assert!(out_dir.join("health-gate").is_file());
}

/// A `gh` stand-in on PATH: GitHub's attestation API cannot be reached offline, so the test
/// plays `gh` (logged in; `attestation verify` answers with `exit_code`) and records its
/// arguments.
fn fake_gh(dir: &Path, exit_code: u8) -> PathBuf {
    let bin = dir.join("fake-gh");
    std::fs::create_dir_all(&bin).expect("fake gh dir");
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/bin/sh\necho \"$@\" >>\"{}\"\n[ \"$1\" = auth ] && exit 0\necho 'Verification failed ##[warning]x'\nexit {exit_code}\n",
            dir.join("gh.log").display()
        ),
    )
    .expect("write gh");
    run(Command::new("chmod").arg("+x").arg(&gh));
    bin
}

fn install_with_gh(dir: &Path, base: &str, sha: &str, gh_exit: u8) -> Output {
    let path = format!("{}:/usr/bin:/bin", fake_gh(dir, gh_exit).display());
    run(tool_command("sh")
        .arg(workspace_root().join("scripts/install.sh"))
        .args(["--version", "9.9.9", "--sha256", sha, "--target", TARGET])
        .args(["--base-url", base, "--repo", "acme/actions"])
        .arg("--dir")
        .arg(dir.join("bin"))
        .arg("health-gate")
        .env("PATH", path))
}

#[test]
fn verifies_the_build_attestation_when_gh_is_installed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, sha) = release_mirror(dir.path());
    let ok = install_with_gh(dir.path(), &base, &sha, 0);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(
        ok.stderr.contains("build attestation verified"),
        "{}",
        ok.stderr
    );
    let log = std::fs::read_to_string(dir.path().join("gh.log")).expect("gh was called");
    assert!(
        log.lines().any(|l| l.starts_with("attestation verify ")
            && l.ends_with(&format!(
                "health-gate-9.9.9-{TARGET}.tar.gz --repo acme/actions"
            ))),
        "{log}"
    );
}

#[test]
fn refuses_an_archive_whose_attestation_does_not_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, sha) = release_mirror(dir.path());
    let refused = install_with_gh(dir.path(), &base, &sha, 1);
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("does not verify against acme/actions"),
        "{}",
        refused.stderr
    );
    // gh's own output is shown, made safe for the runner.
    assert!(suite_tests::runner_rules::workflow_commands(&refused.stderr).is_empty());
    assert!(
        !dir.path().join("bin/health-gate").exists(),
        "nothing installed"
    );
}

#[test]
fn without_gh_it_says_how_to_verify_the_attestation_and_require_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, sha) = release_mirror(dir.path());
    let command = |mode: &str| {
        run(tool_command("sh")
            .arg(workspace_root().join("scripts/install.sh"))
            .args(["--version", "9.9.9", "--sha256", &sha, "--target", TARGET])
            .args(["--base-url", &base, "--attestation", mode])
            .arg("--dir")
            .arg(dir.path().join(format!("bin-{mode}")))
            .arg("health-gate")
            .env("PATH", "/usr/bin:/bin"))
    };
    // /usr/bin has no gh on the test machines; prove it rather than assume it.
    assert!(!Path::new("/usr/bin/gh").exists() && !Path::new("/bin/gh").exists());
    let auto = command("auto");
    assert_eq!(auto.code, Some(0), "{auto:?}");
    assert!(
        auto.stderr.contains(&format!(
            "to verify: gh attestation verify health-gate-9.9.9-{TARGET}.tar.gz --repo deploy-suite/actions"
        )),
        "{}",
        auto.stderr
    );
    let require = command("require");
    assert_eq!(require.code, Some(3), "{require:?}");
}

#[test]
fn download_on_main_between_releases_says_what_to_pin() {
    // The committed actions/VERSION on main between releases is `unreleased`.
    let recorded =
        std::fs::read_to_string(workspace_root().join("actions/VERSION")).expect("actions/VERSION");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("scripts")).expect("scripts");
    std::fs::create_dir_all(dir.path().join("actions")).expect("actions");
    std::fs::copy(
        workspace_root().join("scripts/install.sh"),
        dir.path().join("scripts/install.sh"),
    )
    .expect("copy");
    std::fs::write(dir.path().join("actions/VERSION"), "unreleased\n").expect("VERSION");
    let result = run(tool_command("sh")
        .arg(dir.path().join("scripts/install.sh"))
        .args(["--mode", "download", "--target", TARGET, "health-gate"]));
    assert_eq!(result.code, Some(2), "{result:?}");
    assert!(
        result
            .stderr
            .contains("main between releases carries no binaries or checksums"),
        "{}",
        result.stderr
    );
    assert!(result.stderr.contains("@vX.Y.Z"), "{}", result.stderr);
    assert!(
        recorded.trim() == "unreleased" || recorded.trim().split('.').count() == 3,
        "actions/VERSION is `unreleased` or X.Y.Z, found {recorded:?}"
    );
}
