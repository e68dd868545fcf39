//! The `ssh-deploy` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_ssh-deploy")),
        "ssh-deploy",
    );
}

/// No input, whatever it holds, reaches the runner as a workflow command; usage errors are
/// `::error` annotations (issue 17). The inputs come from the clap definition.
#[test]
fn no_input_can_inject_a_workflow_command() {
    let checked = test_support::hostile::check_every_input(
        Path::new(env!("CARGO_BIN_EXE_ssh-deploy")),
        &runner_protocol::cli::command::<ssh_deploy::Cli>(),
        &[],
    );
    println!("{checked:?}");
    assert!(
        checked.echoed > 0 && checked.usage_errors > 0,
        "no hostile value reached the output: nothing was checked ({checked:?})"
    );
}

/// A bad inventory is a usage error at its file, line and column, before any connection: on a
/// terminal under the message, under GitHub Actions in the annotation (issue 18).
#[test]
fn a_bad_inventory_is_annotated_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(&inventory, "user: deploy\nhosts:\n  web-1: { prot: 22 }\n").expect("write");
    let command = || {
        let mut command = test_support::tool_command(Path::new(env!("CARGO_BIN_EXE_ssh-deploy")));
        command
            .arg("exec")
            .arg("--inventory")
            .arg(&inventory)
            .args(["--run", "true"]);
        command
    };
    let message = "hosts.web-1: unknown field `prot`, expected one of `address`";
    let out = test_support::run(&mut command());
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "error: {message}, `user`, `port`, `root`, `jump`, `vars`\n --> {}:3:12\n",
            inventory.display()
        )),
        "{}",
        out.stderr
    );
    let out = test_support::run(command().env("GITHUB_ACTIONS", "true"));
    assert_eq!(out.code, Some(2), "{out:?}");
    let annotation = format!(
        "::error file={},line=3,col=12::{message}",
        inventory.display()
    );
    assert!(
        out.stdout.contains(&annotation) || out.stderr.contains(&annotation),
        "no {annotation} in {out:?}"
    );
}

/// A bad gate file is a usage error at its file, line and column before anything runs: the
/// first problem of a syntax error, every validation problem (issue 18).
#[test]
fn a_bad_gate_file_is_annotated_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let gate = dir.path().join("gate.yaml");
    let command = || {
        let mut command = test_support::tool_command(Path::new(env!("CARGO_BIN_EXE_ssh-deploy")));
        command
            .args([
                "rollback",
                "--hosts",
                "local",
                "--services",
                "web",
                "--root",
            ])
            .arg(dir.path().join("root"))
            .arg("--gate-file")
            .arg(&gate);
        command
    };
    for (text, (line, column), message) in [
        (
            "checks:\n  - name: web\n    http: { url: \"ftp://{host}:8080/health\" }\n",
            (3, 18),
            "`ftp://127.0.0.1:8080/health` must be an http:// or https:// URL",
        ),
        (
            "checks:\n  - name: web\n    htp: { url: \"http://{host}:8080/health\" }\n",
            (3, 5),
            "invalid gate file: checks[0]: unknown field `htp`",
        ),
    ] {
        std::fs::write(&gate, text).expect("write");
        let out = test_support::run(&mut command());
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(
            out.stderr.contains(&format!("error: {message}"))
                && out
                    .stderr
                    .contains(&format!(" --> {}:{line}:{column}\n", gate.display())),
            "no `{message}` at {line}:{column} in\n{}",
            out.stderr
        );
        assert!(!dir.path().join("root").exists(), "nothing ran");
        let out = test_support::run(command().env("GITHUB_ACTIONS", "true"));
        assert_eq!(out.code, Some(2), "{out:?}");
        let annotation = format!(
            "::error file={},line={line},col={column}::{message}",
            gate.display()
        );
        assert!(
            out.stdout.contains(&annotation) || out.stderr.contains(&annotation),
            "no {annotation} in {out:?}"
        );
    }
}

/// A gate file that is valid only for some hosts (its `{vars.NAME}` filled in per host) is
/// placed at its line in the gate file, naming the host (issue 18).
#[test]
fn a_gate_file_invalid_for_one_host_is_annotated_at_its_line_naming_the_host() {
    let dir = tempfile::tempdir().expect("tmp");
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "hosts:\n  web-1: { address: 127.0.0.1, vars: { scheme: http } }\n  \
         web-2: { address: 127.0.0.1, vars: { scheme: ftp } }\n",
    )
    .expect("write");
    let gate = dir.path().join("gate.yaml");
    std::fs::write(
        &gate,
        "checks:\n  - name: web\n    http:\n      url: \"{vars.scheme}://{host}:8080/health\"\n",
    )
    .expect("write");
    let mut command = test_support::tool_command(Path::new(env!("CARGO_BIN_EXE_ssh-deploy")));
    command
        .args(["rollback", "--services", "web", "--root"])
        .arg(dir.path().join("root"))
        .arg("--inventory")
        .arg(&inventory)
        .arg("--gate-file")
        .arg(&gate)
        // Nothing connects: the gate is checked per host first.
        .arg(format!("--host-key-fingerprint=SHA256:{}", "A".repeat(43)))
        .env("GITHUB_ACTIONS", "true");
    let out = test_support::run(&mut command);
    assert_eq!(out.code, Some(2), "{out:?}");
    let annotation = format!(
        "::error file={},line=4,col=12::host web-2 (deploy@127.0.0.1:22): `ftp://127.0.0.1:8080/health` must be an \
         http:// or https:// URL",
        gate.display()
    );
    assert!(
        out.stdout.contains(&annotation) || out.stderr.contains(&annotation),
        "no {annotation} in {out:?}"
    );
}
