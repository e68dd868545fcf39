//! suite-tests/workflows/actions.yml: the six actions, with the binaries this build made and with
//! the release installed from the loopback mirror.

use std::path::Path;

use test_support::http_server::Reply;
use test_support::sshd::Sshd;
use test_support::{HttpServer, SH_ALIVE, free_port, workspace_root};

use crate::fixture::{self, ActRun, Mirror, PidFileReaper, git};
use crate::log::ActLog;

const JOB: &str = "actions";
const GATE_TOKEN: &str = "Bearer gate-7f3a1c0e5d";

/// The example app in a git repository: an initial commit, then one that changes telemetry and
/// only the frontend's docs (change-detect must report `["telemetry"]`).
fn example_repo(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("example");
    fixture::copy(&workspace_root().join("examples/bare-metal-app"), &repo);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let telemetry = repo.join("services/telemetry/telemetry.py");
    let text = std::fs::read_to_string(&telemetry).expect("telemetry.py");
    std::fs::write(
        &telemetry,
        format!("{text}\n# names the service in each event\n"),
    )
    .expect("write");
    let readme = repo.join("frontend/README.md");
    let text = std::fs::read_to_string(&readme).expect("README");
    std::fs::write(
        &readme,
        format!("{text}\nThe page shows the deployed version.\n"),
    )
    .expect("write");
    git(
        &repo,
        &[
            "commit",
            "-q",
            "-am",
            "telemetry: name the service; frontend docs",
        ],
    );
    repo
}

/// Everything the workflow's inputs point at, and the servers behind them.
struct Scene {
    dir: tempfile::TempDir,
    sshd: Sshd,
    gate_server: HttpServer,
    _reaper: PidFileReaper,
    inputs: Vec<(String, String)>,
}

fn scene() -> Scene {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let repo = example_repo(dir.path());
    // Two releases of a static web service: v1 answers /health.txt, v2 does not (broken).
    std::fs::create_dir_all(work.join("dist/v1")).expect("dist v1");
    std::fs::create_dir_all(work.join("dist/v2")).expect("dist v2");
    std::fs::create_dir_all(work.join("artifacts")).expect("artifacts");
    std::fs::write(work.join("dist/v1/health.txt"), "v1").expect("v1");
    std::fs::write(work.join("dist/v2/index.html"), "v2 lost its health check").expect("v2");
    // An invalid descriptor: `platform` misspelt, so the required field is missing.
    std::fs::write(
        work.join("invalid-release.yaml"),
        "release_name: \"broken\"\nplatfrom: { repo: \"acme/platform\", ref: \"v1.0.0\" }\n",
    )
    .expect("invalid descriptor");
    fixture::copy(
        &workspace_root().join("crates/ecs-taskdef-update/tests/fixtures/describe-full.json"),
        &work.join("describe-full.json"),
    );
    let sshd = Sshd::start();
    let web_port = free_port();
    std::fs::write(
        work.join("gate.yaml"),
        format!(
            "checks:\n  - name: web\n    attempt_timeout: 1s\n    http: {{ url: 'http://{{host}}:{web_port}/health.txt' }}\n    readiness: {{ interval: 50ms, deadline: 10s, fatal: [status] }}\n"
        ),
    )
    .expect("gate file");
    let root = work.join("host/app");
    let restart = format!(
        "web={SH_ALIVE}pid=\"$SSH_DEPLOY_ROOT/shared/web.pid\"; if [ -f \"$pid\" ]; then p=$(cat \"$pid\"); kill \"$p\" 2>/dev/null || true; while alive \"$p\"; do sleep 0.05; done; fi; setsid python3 -m http.server {web_port} --bind 127.0.0.1 --directory \"$SSH_DEPLOY_ROOT/current/\" >/dev/null 2>&1 </dev/null & echo $! > \"$pid\""
    );
    let token = GATE_TOKEN.to_owned();
    let gate_server = HttpServer::start(move |request| match request.path.as_str() {
        "/healthz" if request.header("authorization") == Some(token.as_str()) => {
            Reply::text(200, "ok")
        }
        "/healthz" => Reply::text(401, "who are you"),
        _ => Reply::text(503, "down"),
    });
    let login = String::from_utf8_lossy(
        &std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id -un")
            .stdout,
    )
    .trim()
    .to_owned();
    let inputs = vec![
        ("repo".to_owned(), repo.display().to_string()),
        ("work".to_owned(), work.display().to_string()),
        ("ssh-host".to_owned(), sshd.host(&login)),
        ("known-hosts".to_owned(), sshd.known_hosts_line()),
        ("restart-command".to_owned(), restart),
        ("gate-url".to_owned(), gate_server.base_url()),
        ("gate-token".to_owned(), GATE_TOKEN.to_owned()),
    ];
    Scene {
        _reaper: PidFileReaper(vec![root.join("shared/web.pid")]),
        dir,
        sshd,
        gate_server,
        inputs,
    }
}

/// What every run of actions.yml must show, whichever way the binaries were installed.
fn assert_the_actions_behaved(log: &ActLog, scene: &Scene) {
    let context = || {
        format!(
            "act exit {:?}\n{}\nsshd: {}",
            log.code,
            log.tail(),
            scene.sshd.log()
        )
    };
    assert_eq!(log.code, Some(0), "act failed\n{}", context());
    assert_eq!(
        log.job_results().get(JOB).map(String::as_str),
        Some("success"),
        "{}",
        context()
    );
    for step in [
        "changes",
        "render",
        "bundles",
        "pack-v1",
        "pack-v2",
        "deploy-v1",
        "taskdef",
        "gate",
    ] {
        assert_eq!(
            log.step_result(JOB, &[step]).as_deref(),
            Some("success"),
            "{step}\n{}",
            context()
        );
    }
    // Failures fail their step with the documented exit code (runner-protocol's Exit).
    for (step, code) in [("render-invalid", 2), ("deploy-v2", 1), ("gate-fail", 1)] {
        assert_eq!(
            log.step_result(JOB, &[step]).as_deref(),
            Some("failure"),
            "{step}\n{}",
            context()
        );
        assert_eq!(
            log.exit_status(JOB, &[step, "run"]),
            Some(code),
            "{step}\n{}",
            context()
        );
    }

    // Outputs as `steps.<id>.outputs.<name>` (the workflow's assert steps read them too).
    let changes = log.outputs(JOB, &["changes"]);
    assert_eq!(
        changes.get("changes").map(String::as_str),
        Some(r#"["telemetry"]"#),
        "{changes:?}"
    );
    let deploy = log.outputs(JOB, &["deploy-v2"]);
    assert_eq!(
        deploy.get("result").map(String::as_str),
        Some("rolled-back"),
        "{deploy:?}"
    );

    // Annotations: the invalid descriptor names file, line and column (`platform` is missing).
    let annotations = log.annotations(JOB, &["render-invalid", "run"]);
    assert!(
        annotations.iter().any(|a| a.level == "error"
            && a.properties
                .get("file")
                .is_some_and(|f| f.ends_with("invalid-release.yaml"))
            && a.properties.get("line").is_some_and(|l| l == "1")
            && a.properties.contains_key("col")
            && a.message.contains("platform")),
        "{annotations:#?}\n{}",
        context()
    );
    let rollback = log.annotations(JOB, &["deploy-v2", "run"]);
    assert!(rollback.iter().any(|a| a.level == "error"), "{rollback:#?}");

    // Step summaries.
    assert!(
        log.summary(JOB, &["gate", "run"])
            .contains("health-gate: go"),
        "{}",
        context()
    );
    assert!(
        log.summary(JOB, &["gate-fail", "run"])
            .contains("health-gate: rollback"),
        "{}",
        context()
    );

    // Masks: health-gate masks the header value it read from the environment; neither it nor
    // the deploy key (a secret) reaches the log.
    assert!(
        log.masks(JOB, &["gate", "run"])
            .iter()
            .any(|m| m == GATE_TOKEN),
        "{}",
        context()
    );
    assert!(!log.contains(GATE_TOKEN), "the gate token leaked");
    let key = scene.sshd.user_key();
    let key_line = key.lines().nth(1).expect("key body");
    assert!(!log.contains(key_line), "the deploy key leaked");

    // The gate's endpoint really was asked, with the token.
    assert!(
        scene.gate_server.request_count() >= 20,
        "{}",
        scene.gate_server.request_count()
    );

    let violations = log.runner_rule_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(scene.dir.path().exists());
}

#[test]
fn the_six_actions_run_in_act_with_the_binaries_this_build_made() {
    let scene = scene();
    let (bin, target) = fixture::binaries(scene.dir.path());
    let mirror = Mirror::start(&bin, &target);
    let checkout = fixture::release_checkout(scene.dir.path(), &mirror, &["actions"]);
    let scratch = scene.dir.path().join("act");
    let mut inputs = scene.inputs.clone();
    inputs.push(("install".into(), "auto".into()));
    inputs.push(("bin-dir".into(), bin.display().to_string()));
    let log = ActRun {
        checkout,
        scratch,
        workflows: ".github/workflows/actions.yml",
        event: "workflow_dispatch",
        inputs,
        secrets: vec![("DEPLOY_SSH_KEY".into(), scene.sshd.user_key())],
        ..ActRun::default()
    }
    .run();
    assert_the_actions_behaved(&log, &scene);
    // binary-path: nothing downloaded, each install step used the given binary.
    assert_eq!(mirror.archive_downloads(), 0);
    assert!(
        log.contains(&format!("installed {}/health-gate", bin.display())),
        "{}",
        log.tail()
    );
}

#[test]
fn the_six_actions_install_the_pinned_release_tag_from_the_loopback_mirror() {
    let scene = scene();
    let (bin, target) = fixture::binaries(scene.dir.path());
    let mirror = Mirror::start(&bin, &target);
    let checkout = fixture::release_checkout(scene.dir.path(), &mirror, &["actions"]);
    // The checkout is the release commit the version tag points at.
    assert_eq!(
        git(&checkout, &["describe", "--tags", "--exact-match"]),
        format!("v{}", fixture::VERSION)
    );
    let scratch = scene.dir.path().join("act");
    let mut inputs = scene.inputs.clone();
    inputs.push(("install".into(), "download".into()));
    inputs.push(("download-url".into(), mirror.download_url()));
    let log = ActRun {
        checkout,
        scratch,
        workflows: ".github/workflows/actions.yml",
        event: "workflow_dispatch",
        inputs,
        secrets: vec![("DEPLOY_SSH_KEY".into(), scene.sshd.user_key())],
        env: vec![(
            "DEPLOY_SUITE_CA_FILE".into(),
            mirror.ca_file().display().to_string(),
        )],
        ..ActRun::default()
    }
    .run();
    assert_the_actions_behaved(&log, &scene);
    // One download per tool, each verified against the tag's committed checksums; the other
    // steps were served from the verified tool cache.
    assert_eq!(mirror.archive_downloads(), 6, "{}", log.tail());
    for tool in [
        "change-detect",
        "release-descriptor-render",
        "bundle-json-gen",
        "ssh-deploy",
        "ecs-taskdef-update",
        "health-gate",
    ] {
        assert!(
            log.contains(&format!("sha256 verified: {tool}-{}-", fixture::VERSION)),
            "{tool}\n{}",
            log.tail()
        );
    }
}
