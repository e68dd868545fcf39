//! Seed 001, the backend agent on one server.
//!
//! Phase 1 (suite-tests/workflows/seeds/seed-001.yml, a caller of the bare-metal template): the
//! current release stays on the host as the backup (`releases/<id>`), the agent is stopped and
//! started from the uploaded release, verified from the runner, and a release whose /health
//! fails is rolled back to the backup, which serves again.
//!
//! Phase 2 (suite-tests/workflows/seeds/seed-001-blue-green.yml, what the team switches to): the
//! same agent in two slots behind nginx on the server. A good release goes live with no failed
//! request through nginx; a release that is healthy but fails its users (`/` answers 500) is
//! switched back after the observation through nginx.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::fleet::Fleet;

use crate::common::{self, Nginx, Suite, UserRepo, current, restarts, say};
use crate::fixture::git;
use crate::probe::{Answer, Load, Watcher, settled_on};

const AGENT_PORT: u16 = 8090;
const NGINX_PORT: u16 = 8000;

fn release_header(answer: &Answer) -> String {
    answer.header("X-Release").unwrap_or_default().to_owned()
}

#[test]
fn seed_001_rolls_back_a_failed_verify_then_goes_blue_green_behind_nginx_with_a_switch_back() {
    let started = Instant::now();
    let suite = Suite::start();
    let fleet = Fleet::start(1);
    let host = &fleet.hosts()[0];
    let dirs = common::host_dirs(&fleet, suite.dir.path());
    let root = dirs.shared_path.join("agent");
    let host_root = dirs.private[0].join("agent");
    let bg_root = dirs.shared_path.join("agent-bg");
    let host_bg_root = dirs.private[0].join("agent-bg");
    for dir in [&host_root, &host_bg_root] {
        std::fs::create_dir_all(dir.join("shared")).expect("shared");
        std::fs::write(
            dir.join("shared/.env"),
            format!("AGENT_PORT={AGENT_PORT}\n"),
        )
        .expect(".env");
    }
    let key = fleet.user_key();
    let repo = UserRepo::new(suite.dir.path(), &["seed-001"]);
    let vars = vec![
        ("DEPLOY_ROOT".to_owned(), root.display().to_string()),
        ("STAGING_HOSTS".to_owned(), host.target("root")),
        ("DEPLOY_KNOWN_HOSTS".to_owned(), fleet.known_hosts()),
    ];
    let agent = SocketAddr::from((host.address(), AGENT_PORT));
    let mut summary = vec!["seed 001 (one server)".to_owned()];

    // Phase 1, run 1: the first release.
    let v1 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = suite.act(&repo, &repo.event(&"0".repeat(40)), vars.clone(), &key, "");
    assert_eq!(
        log.job_results().get("staging").map(String::as_str),
        Some("success"),
        "{:?}\n{}",
        log.job_results(),
        log.tail()
    );
    assert_eq!(current(&host_root).as_deref(), Some(v1.as_str()));
    let answer = crate::probe::get(agent, "/version", Duration::from_secs(5)).expect("agent");
    assert_eq!(release_header(&answer), v1);
    summary.push(format!(
        "  phase 1 run 1  v1 {v1} -> the server: upload, start, verify ok, {:.1} s ({})",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs()
    ));

    // Phase 1, run 2: /health fails; v1 (the backup) comes back.
    let watcher = Watcher::start(vec![agent], "/version", release_header);
    let event = repo.commit(
        "agent: broken health",
        &[(
            "src/bin/agent.rs",
            "const HEALTH_FAILS: bool = false;",
            "const HEALTH_FAILS: bool = true;",
        )],
    );
    let v2 = repo.release_id();
    let run_started = Instant::now();
    // ssh-deploy prints "health gate failed" with the final error, after the rollback; the
    // moment it starts rolling back is the moment the gate failed.
    let (log, gate_failed) = suite.act(&repo, &event, vars, &key, "rolling back");
    let samples = watcher.finish();
    assert_eq!(
        log.job_results().get("staging").map(String::as_str),
        Some("failure"),
        "{:?}\n{}",
        log.job_results(),
        log.tail()
    );
    assert_eq!(
        current(&host_root).as_deref(),
        Some(v1.as_str()),
        "rolled back to the backup\n{}",
        log.tail()
    );
    assert!(
        host_root.join("releases").join(&v2).is_dir(),
        "the failed release stays for a look"
    );
    let sequence: Vec<String> = restarts(&host_root)
        .into_iter()
        .map(|(_, _, release)| release)
        .collect();
    assert_eq!(
        sequence,
        [v1.clone(), v2.clone(), v1.clone()],
        "stop + start v1, stop + start v2, stop + start v1 again"
    );
    let gate_failed = gate_failed.expect("the log said the gate failed");
    let serving = settled_on(&samples, &v1).expect("v1 serves again");
    let recovery = serving.saturating_duration_since(gate_failed);
    summary.push(format!(
        "  phase 1 run 2  v2 {v2}: verify failed (/health 503), rolled back to v1 {v1}, {:.1} s ({}); gate failed -> v1 serving: {} ms",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        recovery.as_millis()
    ));

    // Phase 2: blue-green behind nginx on the server (nginx in the host's namespace, started
    // by the test as the host's own nginx would be by systemd).
    let nginx_dir = suite.dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("nginx dir");
    std::fs::write(
        nginx_dir.join("upstream.conf"),
        "upstream app { server 127.0.0.1:8081; }\n",
    )
    .expect("upstream");
    let d = nginx_dir.display();
    let nginx_addr = SocketAddr::from((host.address(), NGINX_PORT));
    let _nginx = Nginx::start(
        &nginx_dir,
        &format!(
            "map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
             include {d}/upstream.conf;\n\
             server {{ listen 0.0.0.0:{NGINX_PORT};\n\
               location / {{ proxy_pass http://app; proxy_http_version 1.1;\n\
                 proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; }} }}"
        ),
        Some(&host.namespace()),
        nginx_addr,
    );
    let nginx = Nginx::command(&nginx_dir);
    let bg_vars = vec![
        ("DEPLOY_ROOT".to_owned(), bg_root.display().to_string()),
        ("PRODUCTION_HOSTS".to_owned(), host.target("root")),
        ("DEPLOY_KNOWN_HOSTS".to_owned(), fleet.known_hosts()),
        (
            "NGINX_UPSTREAM_FILE".to_owned(),
            nginx_dir.join("upstream.conf").display().to_string(),
        ),
        ("NGINX_TEST_COMMAND".to_owned(), format!("{nginx} -t -q")),
        (
            "NGINX_RELOAD_COMMAND".to_owned(),
            format!("{nginx} -s reload"),
        ),
        (
            "NGINX_PID_FILE".to_owned(),
            nginx_dir.join("nginx.pid").display().to_string(),
        ),
    ];
    // The team moves to blue-green: the phase 1 workflow goes, the blue-green one comes, and
    // the agent's health is fixed.
    let before = repo.head();
    std::fs::remove_file(repo.path.join(".github/workflows/seed-001.yml")).expect("rm");
    crate::fixture::copy(
        &test_support::workspace_root().join("suite-tests/workflows/seeds/seed-001-blue-green.yml"),
        &repo.path.join(".github/workflows/seed-001-blue-green.yml"),
    );
    let agent_rs = repo.path.join("src/bin/agent.rs");
    let text = std::fs::read_to_string(&agent_rs).expect("agent.rs");
    std::fs::write(
        &agent_rs,
        text.replace(
            "const HEALTH_FAILS: bool = true;",
            "const HEALTH_FAILS: bool = false;",
        ),
    )
    .expect("agent.rs");
    git(&repo.path, &["add", "-A"]);
    git(
        &repo.path,
        &["commit", "-q", "-m", "deploy: blue-green behind nginx"],
    );
    let b1 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = suite.act(&repo, &repo.event(&before), bg_vars.clone(), &key, "");
    assert_eq!(
        log.job_results().get("deploy").map(String::as_str),
        Some("success"),
        "{:?}\n{}",
        log.job_results(),
        log.tail()
    );
    let answer = crate::probe::get(nginx_addr, "/version", Duration::from_secs(5)).expect("nginx");
    assert_eq!(release_header(&answer), b1, "{answer:?}");
    let first_slot = answer.header("X-Slot").unwrap_or_default().to_owned();
    summary.push(format!(
        "  phase 2 run 1  b1 {b1}: slot {first_slot} started, gated, nginx switched to it, {:.1} s ({})",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs()
    ));

    // Phase 2, run 2: a good release under load through nginx.
    let load = Load::start(nginx_addr, "/");
    let event = repo.commit(
        "agent: docs",
        &[("README.md", "seed-services", "seed-services (agent v2)")],
    );
    let b2 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = suite.act(&repo, &event, bg_vars.clone(), &key, "");
    let switch = load.finish();
    assert_eq!(
        log.job_results().get("deploy").map(String::as_str),
        Some("success"),
        "{:?}\n{}",
        log.job_results(),
        log.tail()
    );
    let answer = crate::probe::get(nginx_addr, "/version", Duration::from_secs(5)).expect("nginx");
    assert_eq!(release_header(&answer), b2, "{answer:?}");
    let second_slot = answer.header("X-Slot").unwrap_or_default().to_owned();
    assert_ne!(first_slot, second_slot, "the other slot went live");
    say(&format!(
        "seed 001 blue-green switch, through nginx: {switch:?}"
    ));
    assert!(switch.requests > 100, "{switch:?}");
    assert_eq!(
        switch.failed, 0,
        "requests through nginx failed during the switch: {switch:?}"
    );
    assert!(
        switch.releases.contains_key(&b1) && switch.releases.contains_key(&b2),
        "the load saw both releases: {switch:?}"
    );
    summary.push(format!(
        "  phase 2 run 2  b2 {b2}: slot {second_slot} live, slot {first_slot} drained and stopped, {:.1} s ({}); through nginx: {} requests, {} failed, per release {:?}",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        switch.requests,
        switch.failed,
        switch.releases
    ));

    // Phase 2, run 3: healthy but failing its users: switched back to b2.
    let watcher = Watcher::start(vec![nginx_addr], "/version", release_header);
    let load = Load::start(nginx_addr, "/");
    let event = repo.commit(
        "agent: new API",
        &[(
            "src/bin/agent.rs",
            "const API_FAILS: bool = false;",
            "const API_FAILS: bool = true;",
        )],
    );
    let b3 = repo.release_id();
    let run_started = Instant::now();
    let (log, gate_failed) = suite.act(&repo, &event, bg_vars, &key, "health gate failed");
    let samples = watcher.finish();
    let switch_back = load.finish();
    assert_eq!(
        log.job_results().get("deploy").map(String::as_str),
        Some("failure"),
        "{:?}\n{}",
        log.job_results(),
        log.tail()
    );
    let answer = crate::probe::get(nginx_addr, "/version", Duration::from_secs(5)).expect("nginx");
    assert_eq!(release_header(&answer), b2, "switched back: {answer:?}");
    assert_eq!(
        answer.header("X-Slot").unwrap_or_default(),
        second_slot,
        "the slot that was live is live again"
    );
    assert_eq!(current(&host_bg_root).as_deref(), Some(b2.as_str()));
    let gate_failed = gate_failed.expect("the log said the observation failed");
    let serving = settled_on(&samples, &b2).expect("b2 serves through nginx again");
    let recovery = serving.saturating_duration_since(gate_failed);
    // The 500s the broken release answered while it was live are real failures its users saw;
    // the switch itself must add none (connection errors, 502s).
    let not_from_the_release: Vec<&String> = switch_back
        .failures
        .iter()
        .filter(|failure| !failure.ends_with("status 500"))
        .collect();
    assert!(
        not_from_the_release.is_empty(),
        "failures through nginx other than the broken release's 500s: {switch_back:?}"
    );
    summary.push(format!(
        "  phase 2 run 3  b3 {b3}: slot {first_slot} started and gated, nginx switched, observation failed (/ answers 500), switched back to slot {second_slot} (b2), {:.1} s ({}); gate failed -> b2 serving through nginx: {} ms; through nginx: {} requests, {} failed (500s from b3 while live)",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        recovery.as_millis(),
        switch_back.requests,
        switch_back.failed
    ));
    summary.push(format!(
        "  seed 001 wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    say(&summary.join("\n"));
}
