//! The three reusable templates (action-templates/*.yml) through caller workflows
//! (suite-tests/workflows/*-caller.yml: the published workflow templates with `./` for `$/`), in a
//! user's repository: a cargo workspace with one service, a Vite-style frontend, a filters
//! file, a gate file and release.yaml. The suite's own actions come from the release checkout
//! as `deploy-suite/actions/actions/<name>@v1` (act `--local-repository`), installed from the
//! loopback mirror named by the documented DEPLOY_SUITE_DOWNLOAD_URL variable.
//!
//! As far as act and this machine allow: remote actions are local stand-ins
//! (suite-tests/workflows/stand-ins/README.md), `rustup toolchain install` is a stand-in that checks
//! the toolchain is installed (no download), the bare-metal deploy restarts no service (the
//! loopback host has no systemd; the actions suite covers ordered restarts), and the ECS
//! release stops at `docker build` (no Docker here), after render, checkouts and bundle
//! staging. act ignores `environment`, `concurrency` and `permissions` and has no OIDC token.

use std::path::{Path, PathBuf};

use test_support::http_server::Reply;
use test_support::sshd::Sshd;
use test_support::{HttpServer, require_program, workspace_root};

use crate::fixture::{self, ActRun, Mirror, PidFileReaper, copy, git};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A local "remote" repository for the checkout stand-in, with `tags` on its one commit.
fn remote_repo(repos: &Path, name: &str, files: &[(&str, &str)], tags: &[&str]) {
    let repo = repos.join(name);
    for (path, text) in files {
        write(&repo.join(path), text);
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "release"]);
    for tag in tags {
        git(&repo, &["tag", tag]);
    }
}

/// The user's repository: two commits, the second changing the api service and the frontend.
/// Returns it and the push event (`before`, `after`) act replays.
fn user_repo(dir: &Path, gate_url: &str) -> (PathBuf, PathBuf) {
    let repo = dir.join("user");
    let root = workspace_root();
    for template in ["monorepo-ci", "bare-metal-release", "ecs-release"] {
        copy(
            &root.join(format!("action-templates/{template}.yml")),
            &repo.join(format!(".github/workflows/{template}.yml")),
        );
        copy(
            &root.join(format!("suite-tests/workflows/{template}-caller.yml")),
            &repo.join(format!(".github/workflows/{template}-caller.yml")),
        );
    }
    copy(
        &root.join("examples/bare-metal-app/release.yaml"),
        &repo.join("release.yaml"),
    );
    write(
        &repo.join("Cargo.toml"),
        "[workspace]\nmembers = [\"services/api\"]\nresolver = \"2\"\n",
    );
    write(
        &repo.join("services/api/Cargo.toml"),
        "[package]\nname = \"api\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        &repo.join("services/api/src/main.rs"),
        "fn greeting() -> &'static str {\n    \"api v1\"\n}\n\nfn main() {\n    println!(\"{}\", greeting());\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn greets() {\n        assert!(super::greeting().starts_with(\"api\"));\n    }\n}\n",
    );
    write(
        &repo.join("frontend/package.json"),
        "{\n  \"name\": \"frontend\",\n  \"version\": \"1.0.0\",\n  \"private\": true,\n  \"scripts\": { \"build\": \"node build.js\" }\n}\n",
    );
    write(
        &repo.join("frontend/package-lock.json"),
        "{\n  \"name\": \"frontend\",\n  \"version\": \"1.0.0\",\n  \"lockfileVersion\": 3,\n  \"requires\": true,\n  \"packages\": {\n    \"\": { \"name\": \"frontend\", \"version\": \"1.0.0\" }\n  }\n}\n",
    );
    write(
        &repo.join("frontend/build.js"),
        "const fs = require('fs');\nfs.mkdirSync('dist', { recursive: true });\nfs.copyFileSync('index.html', 'dist/index.html');\n",
    );
    write(&repo.join("frontend/index.html"), "<h1>v1</h1>\n");
    write(
        &repo.join(".github/filters.yaml"),
        "api:\n  paths: services/api/**\n  matrix: { dir: services/api }\nfrontend:\n  paths: frontend/**\n  matrix: false\n",
    );
    write(
        &repo.join("deploy/gate.yaml"),
        &format!(
            "checks:\n  - name: app\n    http: {{ url: '{gate_url}/healthz' }}\n    readiness: {{ interval: 100ms, deadline: 10s }}\n"
        ),
    );
    write(&repo.join("deploy/env/app.env"), "LOG_LEVEL=info\n");
    write(
        &repo.join("deploy/docker/kdcube-chat-proc-bundled.Dockerfile"),
        "FROM scratch\nCOPY build/proc/bundles /bundles\n",
    );
    write(&repo.join(".gitignore"), "target/\nfrontend/dist/\ndist/\n");
    let cargo = require_program("cargo", "install Rust with rustup");
    let lock = test_support::run(
        std::process::Command::new(cargo)
            .args(["generate-lockfile", "--offline"])
            .current_dir(&repo),
    );
    assert_eq!(
        lock.code,
        Some(0),
        "cargo generate-lockfile: {}",
        lock.stderr
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let before = git(&repo, &["rev-parse", "HEAD"]);
    write(&repo.join("frontend/index.html"), "<h1>v2</h1>\n");
    let main_rs = std::fs::read_to_string(repo.join("services/api/src/main.rs")).expect("main.rs");
    write(
        &repo.join("services/api/src/main.rs"),
        &main_rs.replace("api v1", "api v2"),
    );
    git(&repo, &["commit", "-q", "-am", "api and frontend: v2"]);
    let after = git(&repo, &["rev-parse", "HEAD"]);
    let event = dir.join("push.json");
    write(
        &event,
        &format!(
            "{{\"ref\":\"refs/heads/main\",\"before\":\"{before}\",\"after\":\"{after}\",\"forced\":false,\"repository\":{{\"default_branch\":\"main\",\"full_name\":\"acme/app\"}},\"head_commit\":{{\"id\":\"{after}\"}}}}"
        ),
    );
    (repo, event)
}

#[test]
fn the_three_templates_run_through_their_callers_in_act() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, target) = fixture::binaries(dir.path());
    let mirror = Mirror::start(&bin, &target);
    let release = fixture::release_checkout(dir.path(), &mirror, &[]);
    let gate_server = HttpServer::start(|request| match request.path.as_str() {
        "/healthz" => Reply::text(200, "ok"),
        _ => Reply::text(404, "no"),
    });
    let (repo, event) = user_repo(dir.path(), &gate_server.base_url());
    let repos = dir.path().join("remotes");
    remote_repo(
        &repos,
        "acme/platform",
        &[("README.md", "platform v1.4.0\n")],
        &["v1.4.0"],
    );
    remote_repo(
        &repos,
        "acme/customer",
        &[
            ("ui/index.html", "<h1>customer ui</h1>\n"),
            (
                "service/bundles/support@1-0/entrypoint.py",
                "def main():\n    return 'support'\n",
            ),
        ],
        &["ui-v2026.11.24", "bundles-v2026.11.24"],
    );
    let sshd = Sshd::start();
    let deploy_root = dir.path().join("host/app");
    let _reaper = PidFileReaper(vec![]);
    let login = String::from_utf8_lossy(
        &std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id -un")
            .stdout,
    )
    .trim()
    .to_owned();
    let shim = workspace_root().join("suite-tests/workflows/stand-ins/bin");
    #[expect(
        clippy::disallowed_methods,
        reason = "the act process's PATH, with the rustup stand-in first"
    )]
    let path = std::env::var("PATH").unwrap_or_default();
    let scratch = dir.path().join("act");
    let artifacts = scratch.join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    let log = ActRun {
        checkout: repo.clone(),
        scratch,
        workflows: ".github/workflows/",
        event: "push",
        event_file: Some(event),
        vars: vec![
            ("DEPLOY_ROOT".into(), deploy_root.display().to_string()),
            ("STAGING_HOSTS".into(), sshd.host(&login)),
            ("PRODUCTION_HOSTS".into(), sshd.host(&login)),
            ("DEPLOY_PRODUCTION".into(), "true".into()),
            ("DEPLOY_KNOWN_HOSTS".into(), sshd.known_hosts_line()),
        ],
        secrets: vec![("DEPLOY_SSH_KEY".into(), sshd.user_key())],
        env: vec![
            ("DEPLOY_SUITE_DOWNLOAD_URL".into(), mirror.download_url()),
            (
                "DEPLOY_SUITE_CA_FILE".into(),
                mirror.ca_file().display().to_string(),
            ),
            ("CARGO_TARGET_DIR".into(), "target".into()),
            ("NPM_CONFIG_OFFLINE".into(), "true".into()),
            ("NPM_CONFIG_AUDIT".into(), "false".into()),
            ("NPM_CONFIG_FUND".into(), "false".into()),
            ("NPM_CONFIG_UPDATE_NOTIFIER".into(), "false".into()),
        ],
        process_env: vec![
            ("PATH".into(), format!("{}:{path}", shim.display())),
            (
                "ACT_SUITE_RUSTUP".into(),
                require_program("rustup", "install Rust with rustup")
                    .display()
                    .to_string(),
            ),
            ("ACT_SUITE_REPOS".into(), repos.display().to_string()),
            (
                "ACT_SUITE_ARTIFACTS".into(),
                artifacts.display().to_string(),
            ),
        ],
        local_repositories: vec![("deploy-suite/actions@v1".into(), release.clone())],
        ..ActRun::default()
    }
    .run();
    let context = || format!("{}\nsshd: {}", log.tail(), sshd.log());
    let jobs = log.job_results();

    // monorepo-ci: what changed -> rust (api) + frontend -> ci ok.
    for job in ["changes", "rust", "frontend", "ci-ok"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "monorepo-ci {job}: {jobs:?}\n{}",
            context()
        );
    }
    // bare-metal-release: build -> staging -> production, the gate passing after each host.
    for job in ["build", "staging", "production"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "bare-metal {job}: {jobs:?}\n{}",
            context()
        );
    }
    let current = std::fs::read_link(deploy_root.join("current")).expect("current");
    assert!(current.starts_with("releases"), "{}", current.display());
    assert!(
        deploy_root.join("current/bin/api").is_file(),
        "the built binary was deployed"
    );
    assert!(
        deploy_root
            .join("current/frontend/dist/index.html")
            .is_file(),
        "the frontend dist was deployed"
    );
    assert!(
        gate_server.request_count() >= 2,
        "the gate ran after each deploy"
    );
    // ecs-release: render and the checkouts pass; images stop at docker build.
    for job in ["render", "sources"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "ecs {job}: {jobs:?}\n{}",
            context()
        );
    }
    assert_eq!(
        jobs.get("images").map(String::as_str),
        Some("failure"),
        "{jobs:?}\n{}",
        context()
    );
    assert_ne!(
        jobs.get("deploy").map(String::as_str),
        Some("success"),
        "{jobs:?}"
    );

    // The suite's actions came from the pinned release on the mirror.
    assert!(mirror.archive_downloads() >= 4, "{}", context());
    let violations = log.runner_rule_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(
        !log.contains(sshd.user_key().lines().nth(1).expect("key")),
        "the deploy key leaked"
    );
}
