//! Seed 003, compose hosts: the team's cd.yml (suite-tests/workflows/seeds/seed-003.yml) builds the
//! API image with `docker build`, pushes it to the registry, and deploys with ssh-deploy's
//! compose strategy: a push to main goes to the staging host, a tag `v*` to the production
//! host, where api-1, api-2 and api-3 are rolled one at a time (drained from HAProxy, recreated,
//! gated, put back).
//!
//! 1. A push to main: the image `main-<sha>` on staging; production untouched.
//! 2. Tag v1.0.0: production rolls api-1..3 to v1.0.0 while a load goes through HAProxy: no
//!    request may fail.
//! 3. Tag v1.1.0, whose api-2 never turns healthy: api-2 fails its `up --wait`, api-2 and api-1
//!    go back to v1.0.0, api-3 is never touched; still no failed request through HAProxy.
//!    Measured: from ssh-deploy's "rolling back" line to every replica serving v1.0.0 again.
//!
//! Real parts: the Docker Engine, compose v2 and the loopback registry that scripts/test starts
//! (scripts/lib/engine.sh; a private one when the test runs alone), `docker build` (the legacy
//! builder: no BuildKit here), HAProxy, the fleet's sshd per host.
//! Stand-ins, and why:
//! - The one dockerd serves both hosts: the staging and the production host are fleet hosts
//!   (own network namespace, own sshd; ssh-deploy's compose commands run there), and their
//!   docker CLI talks to the run's engine over its unix socket (`remote_env: DOCKER_HOST`). A
//!   dockerd per namespace would need an engine per host; scripts/test starts one per run.
//!   The containers run on the engine's host network (this machine's), so the replicas and
//!   HAProxy listen on loopback, and the gates dial loopback, not the fleet host's address.
//! - The base image (`BASE_IMAGE`, busybox) is imported by the test into the engine, as a
//!   runner's cached base image: there is no Docker Hub here.
//! - act ignores `environment:` (no approval step before production: on GitHub the
//!   `production` environment's required reviewers are that step) and `concurrency:`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use test_support::engine::{Engine, Project, SERVE};
use test_support::fleet::Fleet;
use test_support::free_port;
use test_support::haproxy::ReplicaProxy;

use crate::common::{Suite, UserRepo, say};
use crate::probe::{Answer, Load, Watcher, get, settled_on};

/// The compose health check of every replica: 200 ms apart, so `up --wait` takes ~1 s.
const HEALTHCHECK: &str = r#"{ test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:$$PORT/health"], interval: 200ms, timeout: 2s, retries: 3 }"#;
const REPLICAS: [&str; 3] = ["api-1", "api-2", "api-3"];

/// The version a replica's `/` names (`version=<tag> replica=... greeting=...`).
fn version_of(answer: &Answer) -> String {
    answer
        .body
        .split_whitespace()
        .next()
        .and_then(|word| word.strip_prefix("version="))
        .unwrap_or_default()
        .to_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

#[test]
fn seed_003_stages_main_rolls_a_tag_over_three_replicas_and_rolls_back_a_broken_api_2() {
    let started = Instant::now();
    let suite = Suite::start();
    let engine = Engine::start();
    let fleet = Fleet::start(2);
    let (staging_host, production_host) = (&fleet.hosts()[0], &fleet.hosts()[1]);
    let name = unique("s003");
    let images = format!("{}/{name}", engine.registry());
    let work = suite.dir.path();

    // What the operators provisioned: a compose project per host (staging: one `api`;
    // production: api-1..3 on their own ports behind HAProxy), running v0.
    let staging_port = free_port();
    let ports: Vec<(&str, u16)> = REPLICAS.iter().map(|r| (*r, free_port())).collect();
    let staging_dir = work.join("staging/project");
    let production_dir = work.join("production/project");
    write(
        &staging_dir.join("docker-compose.yaml"),
        &format!(
            "services:\n  api:\n    image: ${{API_IMAGE}}\n    network_mode: host\n    env_file: [.env.api]\n    \
             stop_grace_period: 5s\n    environment: {{ PORT: \"{staging_port}\", REPLICA: api }}\n    healthcheck: {HEALTHCHECK}\n"
        ),
    );
    let mut compose = format!(
        "x-api: &api\n  image: ${{API_IMAGE}}\n  network_mode: host\n  env_file: [.env.api]\n  \
         stop_grace_period: 5s\n  healthcheck: {HEALTHCHECK}\nservices:\n"
    );
    for (replica, port) in &ports {
        compose.push_str(&format!(
            "  {replica}: {{ <<: *api, environment: {{ PORT: \"{port}\", REPLICA: {replica} }} }}\n"
        ));
    }
    write(&production_dir.join("docker-compose.yaml"), &compose);
    for dir in [&staging_dir, &production_dir] {
        write(&dir.join(".env"), &format!("API_IMAGE={images}/api:v0\n"));
        write(&dir.join(".env.api"), "# api settings\nGREETING=hello\n");
    }
    engine.build_image(&format!("{images}/api:v0"), &[("VERSION", "v0")]);
    engine.push(&format!("{images}/api:v0"));
    let staging = Project::new(&engine, &format!("{name}-staging"), &staging_dir);
    let production = Project::new(&engine, &format!("{name}-production"), &production_dir);
    staging.run(&["up", "-d", "--wait"]);
    production.run(&["up", "-d", "--wait"]);
    let haproxy = ReplicaProxy::start(&work.join("haproxy"), &ports);
    write(&production_dir.join("proxy"), &haproxy.hook_script());
    make_executable(&production_dir.join("proxy"));
    let lb = SocketAddr::from(([127, 0, 0, 1], haproxy.port));
    wait_for_all_replicas(lb);
    // The runner's cached base image (no Docker Hub here).
    let base = format!("{images}/busybox:stable");
    engine.build_image(&base, &[]);

    // The team's repository: the image, the deploy files, the gates, the workflow.
    let deploy_file = |project: &Project, dir: &Path, services: &str| {
        format!(
            "project_dir: \"{dir}\"\nproject_name: {project}\nremote_env:\n  DOCKER_HOST: \"{docker}\"\n\
             wait_timeout: 20s\nup_timeout: 60s\nservices:\n{services}",
            dir = dir.display(),
            project = project.name(),
            docker = engine.host(),
        )
    };
    let files = vec![
        (
            "Dockerfile",
            "# The API (seed 003's \"Build and tag Docker image\").\nARG BASE\nFROM ${BASE}\nARG VERSION\n\
             COPY serve /bin/serve\nENV VERSION=${VERSION}\nCMD [\"/bin/serve\"]\n"
                .to_owned(),
            0o644,
        ),
        (".dockerignore", ".git\n".to_owned(), 0o644),
        ("serve", SERVE.to_owned(), 0o755),
        (
            "deploy/staging.yaml",
            deploy_file(
                &staging,
                &staging_dir,
                &format!(
                    "  - name: api\n    image: {{ ref: \"{images}/api:${{API_TAG}}\", var: API_IMAGE }}\n    gate: gates/staging.yaml\n"
                ),
            ),
            0o644,
        ),
        (
            "deploy/production.yaml",
            deploy_file(
                &production,
                &production_dir,
                &format!(
                    "  - name: api\n    replicas: [api-1, api-2, api-3]\n    image: {{ ref: \"{images}/api:${{API_TAG}}\", var: API_IMAGE }}\n    \
                     gate: gates/api.yaml\n    drain: ./proxy drain {{service}}\n    undrain: ./proxy ready {{service}}\n"
                ),
            ),
            0o644,
        ),
        (
            "deploy/gates/staging.yaml",
            format!(
                "checks:\n  - name: api\n    attempt_timeout: 2s\n    http: {{ url: 'http://127.0.0.1:{staging_port}/health' }}\n    \
                 readiness: {{ interval: 100ms, deadline: 20s, fatal: [status] }}\n"
            ),
            0o644,
        ),
        (
            "deploy/gates/api.yaml",
            format!(
                "# Each replica through HAProxy's direct path, after its `up`.\nchecks:\n  - name: api\n    attempt_timeout: 2s\n    \
                 http: {{ url: 'http://127.0.0.1:{}/direct/{{service}}/health' }}\n    readiness: {{ interval: 100ms, deadline: 20s, fatal: [status] }}\n",
                haproxy.port
            ),
            0o644,
        ),
    ];
    let repo = UserRepo::with_files(work, &files, &["seed-003"]);
    let key = fleet.user_key();
    let vars = vec![
        ("IMAGE_REPOSITORY".to_owned(), images.clone()),
        ("BASE_IMAGE".to_owned(), base),
        ("STAGING_HOSTS".to_owned(), staging_host.target("root")),
        (
            "PRODUCTION_HOSTS".to_owned(),
            production_host.target("root"),
        ),
        (
            "STAGING_DEPLOY_ROOT".to_owned(),
            work.join("staging/state").display().to_string(),
        ),
        (
            "PRODUCTION_DEPLOY_ROOT".to_owned(),
            work.join("production/state").display().to_string(),
        ),
        ("DEPLOY_KNOWN_HOSTS".to_owned(), fleet.known_hosts()),
    ];
    // The runner's docker (the build job's `docker build` and `docker push`).
    let env = vec![("DOCKER_HOST".to_owned(), engine.host().to_owned())];
    let version = |port: u16| {
        get(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "/",
            Duration::from_secs(5),
        )
        .map(|answer| version_of(&answer))
        .unwrap_or_else(|error| format!("no answer: {error}"))
    };
    let production_versions =
        || -> Vec<String> { ports.iter().map(|(_, port)| version(*port)).collect() };
    let mut summary = vec![
        "seed 003 (compose hosts, suite-tests/workflows/seeds/seed-003.yml; one dockerd for both hosts)"
            .to_owned(),
    ];

    // 1. A push to main: staging only.
    let main_tag = format!("main-{}", repo.release_id());
    let containers_before: Vec<Option<String>> =
        REPLICAS.iter().map(|r| production.container(r)).collect();
    let run_started = Instant::now();
    let (log, _) = suite.act_with_env(
        &repo,
        &repo.event(&"0".repeat(40)),
        vars.clone(),
        &key,
        "",
        env.clone(),
    );
    let jobs = log.job_results();
    for job in ["build", "staging"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "main push, {job}: {jobs:?}\n{}",
            log.tail()
        );
    }
    assert_ne!(
        jobs.get("production").map(String::as_str),
        Some("success"),
        "a push to main does not deploy production: {jobs:?}"
    );
    assert_eq!(
        version(staging_port),
        main_tag,
        "staging runs the main build"
    );
    assert_eq!(production_versions(), ["v0", "v0", "v0"]);
    let containers_after: Vec<Option<String>> =
        REPLICAS.iter().map(|r| production.container(r)).collect();
    assert_eq!(containers_after, containers_before, "production untouched");
    summary.push(format!(
        "  run 1  push to main: image {main_tag} built and pushed -> staging-1 (api), {:.1} s ({}); production untouched",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs()
    ));

    // 2. Tag v1.0.0: production, one replica at a time, under load through HAProxy.
    let load = Load::start(lb, "/");
    let run_started = Instant::now();
    let (log, _) = suite.act_with_env(
        &repo,
        &repo.tag("v1.0.0"),
        vars.clone(),
        &key,
        "",
        env.clone(),
    );
    let rolling = load.finish();
    let jobs = log.job_results();
    for job in ["build", "production"] {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some("success"),
            "v1.0.0, {job}: {jobs:?}\n{}",
            log.tail()
        );
    }
    assert_ne!(
        jobs.get("staging").map(String::as_str),
        Some("success"),
        "a tag does not go to staging: {jobs:?}"
    );
    assert_eq!(production_versions(), ["v1.0.0", "v1.0.0", "v1.0.0"]);
    assert_eq!(
        version(staging_port),
        main_tag,
        "staging keeps the main build"
    );
    let hooks = std::fs::read_to_string(production_dir.join("hooks.log")).expect("hooks.log");
    assert_eq!(
        hooks, "drain api-1\nready api-1\ndrain api-2\nready api-2\ndrain api-3\nready api-3\n",
        "one replica at a time, each drained and put back"
    );
    say(&format!(
        "seed 003 v1.0.0 rolling, through HAProxy: {rolling:?}"
    ));
    assert!(rolling.requests > 100, "the load ran: {rolling:?}");
    assert_eq!(
        rolling.failed, 0,
        "requests through HAProxy failed during the rolling deploy: {rolling:?}"
    );
    assert!(
        rolling.releases.contains_key("version=v0")
            && rolling.releases.contains_key("version=v1.0.0"),
        "HAProxy served both versions while rolling: {rolling:?}"
    );
    summary.push(format!(
        "  run 2  tag v1.0.0: image built and pushed -> prod-1 api-1, api-2, api-3 one at a time (drain, up, gate, undrain), {:.1} s ({}), nothing rolled back; through HAProxy: {} requests, {} failed",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        rolling.requests,
        rolling.failed
    ));

    // 3. Tag v1.1.0: its api-2 never turns healthy; api-2 and api-1 go back to v1.0.0.
    std::fs::remove_file(production_dir.join("hooks.log")).expect("hooks.log");
    repo.commit(
        "api: replica 2 reads its shard map (missing: never healthy)",
        &[(
            "serve",
            "case \" $FAIL_HEALTH \" in",
            "case \" $FAIL_HEALTH api-2 \" in",
        )],
    );
    let api_3_before = production.container("api-3");
    let load = Load::start(lb, "/");
    let watcher = Watcher::start(
        ports
            .iter()
            .map(|(_, port)| SocketAddr::from(([127, 0, 0, 1], *port)))
            .collect(),
        "/",
        version_of,
    );
    let run_started = Instant::now();
    let (log, gate_failed) =
        suite.act_with_env(&repo, &repo.tag("v1.1.0"), vars, &key, "rolling back", env);
    let samples = watcher.finish();
    let during_rollback = load.finish();
    let jobs = log.job_results();
    assert_eq!(
        jobs.get("production").map(String::as_str),
        Some("failure"),
        "{jobs:?}\n{}",
        log.tail()
    );
    assert!(
        log.contains("api-2-1 is unhealthy"),
        "compose's verdict on api-2 reaches the log: {}",
        log.tail()
    );
    assert_eq!(
        production_versions(),
        ["v1.0.0", "v1.0.0", "v1.0.0"],
        "every replica serves v1.0.0 again\n{}",
        log.tail()
    );
    assert_eq!(
        production.container("api-3"),
        api_3_before,
        "api-3 was never touched"
    );
    let hooks = std::fs::read_to_string(production_dir.join("hooks.log")).expect("hooks.log");
    assert_eq!(
        hooks,
        "drain api-1\nready api-1\ndrain api-2\ndrain api-2\nready api-2\ndrain api-1\nready api-1\n",
        "api-1 up, api-2 failed, api-2 back, api-1 back: each out of the pool while recreated"
    );
    let gate_failed = gate_failed.expect("the log said it was rolling back");
    let serving = settled_on(&samples, "v1.0.0").expect("every replica serves v1.0.0 again");
    let recovery = serving.saturating_duration_since(gate_failed);
    summary.push(format!(
        "  run 3  tag v1.1.0: api-1 ok, api-2 unhealthy (compose up --wait); rolled back: api-2, api-1 -> v1.0.0, api-3 untouched; {:.1} s ({}); rolling back -> v1.0.0 on every replica: {} ms; through HAProxy: {} requests, {} failed",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        recovery.as_millis(),
        during_rollback.requests,
        during_rollback.failed
    ));
    say(&format!(
        "seed 003 v1.1.0 rolled back, through HAProxy: {during_rollback:?}"
    ));
    assert_eq!(
        during_rollback.failed, 0,
        "requests through HAProxy failed while v1.1.0 was rolled out and back: {during_rollback:?}"
    );
    summary.push(format!(
        "  seed 003 wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    say(&summary.join("\n"));
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Waits (bounded: 20 s) until HAProxy has served each of the three replicas.
fn wait_for_all_replicas(lb: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < REPLICAS.len() {
        assert!(
            Instant::now() < deadline,
            "HAProxy never served all three replicas: {seen:?}"
        );
        if let Ok(answer) = get(lb, "/", Duration::from_secs(2)) {
            let replica = answer
                .body
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            if answer.status == 200 && !seen.contains(&replica) {
                seen.push(replica);
            }
        }
        // Polling HAProxy's health checks (500 ms apart): 20 ms is the resolution.
        std::thread::sleep(Duration::from_millis(20));
    }
}
