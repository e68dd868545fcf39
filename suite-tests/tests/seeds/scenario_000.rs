//! Seed 000, bare metal first: the bare-metal template (suite-tests/workflows/seeds/seed-000.yml calls
//! it) builds memory, tools, orchestrator, telemetry, gateway and the frontend once into one
//! artifact, deploys it to staging and then to three production hosts one at a time, each
//! restarting the services in dependency order and gated by the seed's §7.5 checks (gateway
//! and orchestrator http, memory and tools gRPC health, the telemetry SSE stream through the
//! gateway, the WebSocket chat path).
//!
//! 1. v1 on empty hosts.
//! 2. v2 while a load goes through nginx in front of the three production gateways: no
//!    request may fail (nginx retries another host while one restarts).
//! 3. v3, whose memory serves only with a store ($MEMORY_STORE) that app-3 lacks: memory
//!    never turns SERVING there, app-3's gate fails, and app-3, app-2 and app-1 (already
//!    switched) go back to v2. Measured: from the "gate failed" log line to every production
//!    host serving v2 again, as the test's own watcher saw it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::fleet::Fleet;

use crate::common::{self, Nginx, Suite, UserRepo, current, restarts, say};
use crate::probe::{Answer, Load, Watcher, settled_on};

const ORDER: [&str; 5] = ["memory", "tools", "orchestrator", "telemetry", "gateway"];
const GATEWAY_PORT: u16 = 8080;

/// The release a gateway's /api/health names (`"version":"<id> built ..."`).
fn release_of(answer: &Answer) -> String {
    answer
        .body
        .split("\"version\":\"")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn seed_000_rolls_five_services_over_three_hosts_and_rolls_back_a_release_that_never_serves() {
    let started = Instant::now();
    let suite = Suite::start();
    let fleet = Fleet::start(4);
    let hosts = fleet.hosts();
    let names = ["staging-1", "app-1", "app-2", "app-3"];
    let dirs = common::host_dirs(&fleet, suite.dir.path());
    let root = dirs.shared_path.join("pagi");
    // What the operators provisioned: the settings in shared/.env, and on every host but
    // app-3 the store a later release needs.
    for (index, private) in dirs.private.iter().enumerate() {
        let host_root = private.join("pagi");
        std::fs::create_dir_all(host_root.join("shared")).expect("shared");
        let mut env = "MEMORY_PORT=50051\nTOOLS_PORT=50052\nORCHESTRATOR_PORT=8081\nTELEMETRY_PORT=8082\nGATEWAY_PORT=8080\n".to_owned();
        if names[index] != "app-3" {
            std::fs::create_dir_all(host_root.join("shared/store")).expect("store");
            env.push_str(&format!(
                "MEMORY_STORE={}\n",
                root.join("shared/store").display()
            ));
        }
        std::fs::write(host_root.join("shared/.env"), env).expect(".env");
    }
    let host_root = |index: usize| dirs.private[index].join("pagi");
    let production: Vec<String> = hosts[1..].iter().map(|h| h.target("root")).collect();
    let vars = vec![
        ("DEPLOY_ROOT".to_owned(), root.display().to_string()),
        ("STAGING_HOSTS".to_owned(), hosts[0].target("root")),
        ("PRODUCTION_HOSTS".to_owned(), production.join("\n")),
        ("DEPLOY_KNOWN_HOSTS".to_owned(), fleet.known_hosts()),
    ];
    let repo = UserRepo::new(suite.dir.path(), &["seed-000"]);
    let key = fleet.user_key();
    let gateways: Vec<SocketAddr> = hosts[1..]
        .iter()
        .map(|host| SocketAddr::from((host.address(), GATEWAY_PORT)))
        .collect();
    let mut summary = vec!["seed 000 (bare metal, rolling, suite-tests/workflows/seeds/seed-000.yml -> action-templates/bare-metal-release.yml)".to_owned()];

    // 1. v1 on empty hosts.
    let v1 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = suite.act(&repo, &repo.event(&"0".repeat(40)), vars.clone(), &key, "");
    let context = |log: &crate::log::ActLog| log.tail();
    for job in ["build", "staging", "production"] {
        assert_eq!(
            log.job_results().get(job).map(String::as_str),
            Some("success"),
            "v1 {job}: {:?}\n{}",
            log.job_results(),
            context(&log)
        );
    }
    for (index, name) in names.iter().enumerate() {
        assert_eq!(
            current(&host_root(index)).as_deref(),
            Some(v1.as_str()),
            "{name}"
        );
        let order: Vec<String> = restarts(&host_root(index))
            .into_iter()
            .map(|(_, service, release)| {
                assert_eq!(release, v1, "{name}");
                service
            })
            .collect();
        assert_eq!(order, ORDER, "{name}: restarts in dependency order");
    }
    for gateway in &gateways {
        let page = crate::probe::get(*gateway, "/", Duration::from_secs(5)).expect("frontend");
        assert!(page.body.contains("digital twin v1"), "{}", page.body);
    }
    summary.push(format!(
        "  run 1  v1 {v1}: build -> staging-1 -> app-1 -> app-2 -> app-3, {:.1} s ({}), nothing rolled back",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs()
    ));

    // 2. v2 through a proxy that must not drop a request.
    let lb_port = test_support::free_port();
    let upstreams: String = gateways
        .iter()
        .map(|gateway| format!("server {gateway} max_fails=1 fail_timeout=2s;"))
        .collect();
    let lb = Nginx::start(
        &suite.dir.path().join("lb"),
        &format!(
            "upstream pagi {{ {upstreams} }}\n\
             server {{ listen 127.0.0.1:{lb_port};\n\
               location / {{ proxy_pass http://pagi; proxy_connect_timeout 1s;\n\
                 proxy_next_upstream error timeout http_502 http_503; proxy_next_upstream_tries 3; }} }}"
        ),
        None,
        SocketAddr::from(([127, 0, 0, 1], lb_port)),
    );
    let lb_addr = SocketAddr::from(([127, 0, 0, 1], lb_port));
    let load = Load::start(lb_addr, "/api/health");
    let event = repo.commit(
        "frontend: v2 landing page",
        &[("frontend/index.html", "digital twin v1", "digital twin v2")],
    );
    let v2 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = suite.act(&repo, &event, vars.clone(), &key, "");
    let rolling = load.finish();
    for job in ["build", "staging", "production"] {
        assert_eq!(
            log.job_results().get(job).map(String::as_str),
            Some("success"),
            "v2 {job}: {:?}\n{}",
            log.job_results(),
            context(&log)
        );
    }
    for (index, name) in names.iter().enumerate() {
        assert_eq!(
            current(&host_root(index)).as_deref(),
            Some(v2.as_str()),
            "{name}"
        );
    }
    say(&format!("seed 000 v2 rolling, through nginx: {rolling:?}"));
    assert!(
        rolling.requests > 100,
        "the load ran during the deploy: {rolling:?}"
    );
    assert_eq!(
        rolling.failed, 0,
        "requests through nginx failed during the rolling deploy: {rolling:?}"
    );
    summary.push(format!(
        "  run 2  v2 {v2}: staging-1 -> app-1 -> app-2 -> app-3, {:.1} s ({}), nothing rolled back; through nginx: {} requests, {} failed, answers per release {:?}",
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        rolling.requests,
        rolling.failed,
        rolling.releases
    ));

    // 3. v3 never serves on app-3: every production host goes back to v2.
    let load = Load::start(lb_addr, "/api/health");
    let watcher = Watcher::start(gateways.clone(), "/api/health", release_of);
    let event = repo.commit(
        "memory: keep notes in MEMORY_STORE",
        &[(
            "src/bin/memory.rs",
            "const REQUIRES_STORE: bool = false;",
            "const REQUIRES_STORE: bool = true;",
        )],
    );
    let v3 = repo.release_id();
    let run_started = Instant::now();
    // ssh-deploy prints "health gate failed" with the final error, after the rollback; the
    // moment it starts rolling back the failed host is the moment its gate failed.
    let (log, gate_failed) = suite.act(&repo, &event, vars, &key, "rolling back");
    let samples = watcher.finish();
    let during_rollback = load.finish();
    let jobs = log.job_results();
    assert_eq!(
        jobs.get("staging").map(String::as_str),
        Some("success"),
        "staging has the store: {jobs:?}\n{}",
        context(&log)
    );
    assert_eq!(
        jobs.get("production").map(String::as_str),
        Some("failure"),
        "{jobs:?}\n{}",
        context(&log)
    );
    assert!(
        log.contains("memory"),
        "the failed check is named: {}",
        context(&log)
    );
    assert_eq!(
        current(&host_root(0)).as_deref(),
        Some(v3.as_str()),
        "staging-1"
    );
    let mut rolled_back = Vec::new();
    for (index, name) in names.iter().enumerate().skip(1) {
        assert_eq!(
            current(&host_root(index)).as_deref(),
            Some(v2.as_str()),
            "{name} is back on v2\n{}",
            context(&log)
        );
        let log_lines = restarts(&host_root(index));
        let v3_restarts: Vec<&str> = log_lines
            .iter()
            .filter(|(_, _, release)| *release == v3)
            .map(|(_, service, _)| service.as_str())
            .collect();
        assert_eq!(v3_restarts, ORDER, "{name} was switched to v3 first");
        let after: Vec<&str> = log_lines
            .iter()
            .skip_while(|(_, _, release)| *release != v3)
            .filter(|(_, _, release)| *release == v2)
            .map(|(_, service, _)| service.as_str())
            .collect();
        assert_eq!(after, ORDER, "{name}: v2 restarted in order after v3");
        rolled_back.push(*name);
    }
    let gate_failed = gate_failed.expect("the log said the gate failed");
    let serving = settled_on(&samples, &v2).expect("every production host serves v2 again");
    let recovery = serving.saturating_duration_since(gate_failed);
    summary.push(format!(
        "  run 3  v3 {v3}: staging-1 ok, app-1 ok, app-2 ok, app-3 gate failed (memory NOT_SERVING); rolled back: {} -> v2; {:.1} s ({}); gate failed -> v2 serving on every production host: {} ms; through nginx: {} requests, {} failed",
        rolled_back.join(", "),
        run_started.elapsed().as_secs_f64(),
        suite.last_jobs(),
        recovery.as_millis(),
        during_rollback.requests,
        during_rollback.failed
    ));
    assert_eq!(
        during_rollback.failed, 0,
        "requests through nginx failed while v3 was rolled out and back: {during_rollback:?}"
    );
    drop(lb);
    summary.push(format!(
        "  seed 000 wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    say(&summary.join("\n"));
}
