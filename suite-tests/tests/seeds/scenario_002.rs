//! Seed 002, plasma-engine: five services in one repository, images per service, staging, then
//! production blue-green against a recorded baseline (examples/seed-services/plasma-engine,
//! suite-tests/workflows/seeds/seed-002.yml calling action-templates/monorepo-ci.yml).
//!
//! - change-detect reads the push's real commit range; the template builds and pushes only the
//!   changed services' images to the loopback registry (Debian `docker-registry`), FROM the
//!   team's base image there (busybox-static, imported by the test: nothing is pulled from
//!   outside). The registry's tags prove it: an unchanged service gets no new tag.
//! - Each changed service goes to staging, then to production, blue-green behind nginx: the slots
//!   are containers of the pushed image (by digest) on the real engine. Production records a
//!   baseline from the release serving before the deploy and observes the new slot against it.
//! - A good release of one service goes live with no failed request through nginx; a release
//!   that really is slower (its API sleeps 300 ms instead of 50) breaks `p95 < 2x baseline` and
//!   one that really fails (its API answers 500) breaks `error rate <= 5 %`: both are switched
//!   back, and the time from "gate failed" to "previous release serving through nginx" is
//!   measured from outside.
//!
//! Hosts: two loopback sshds (staging, production) next to the one engine, host keys verified
//! from known_hosts. Not the fleet's network namespaces: the engine's containers run in its
//! network namespace (host network, `--bridge=none`), and a container cannot join a namespace
//! the test made, so a host whose slots are containers lives where the engine's network is.
//! act ignores `environment:` (no approval step).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use test_support::engine::Engine;
use test_support::sshd::Sshd;
use test_support::{free_port, require_program, workspace_root};

use crate::common::{Nginx, Suite, UserRepo, say};
use crate::probe::{Answer, Load, Watcher, settled_on};

const SERVICES: [&str; 5] = ["gateway", "research", "brand", "content", "agent"];

fn release_header(answer: &Answer) -> String {
    answer.header("X-Release").unwrap_or_default().to_owned()
}

/// The containers of one test run (label `deploy-suite.prefix=<prefix>-...`), removed when
/// dropped: the engine, not the sshd session, owns them.
struct Containers<'a> {
    engine: &'a Engine,
    prefixes: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for prefix in &self.prefixes {
            let ids = self
                .engine
                .docker()
                .args([
                    "ps",
                    "-aq",
                    "--filter",
                    &format!("label=deploy-suite.prefix={prefix}"),
                ])
                .output();
            if let Ok(ids) = ids {
                let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let _ = self.engine.docker().args(["rm", "-f"]).args(&ids).output();
                }
            }
        }
    }
}

/// One environment (staging or production): a host, its nginx with a location per service,
/// the blue and green port of each service, a deploy root per service.
struct Environment {
    name: &'static str,
    nginx_dir: PathBuf,
    addr: SocketAddr,
    ports: BTreeMap<&'static str, (u16, u16)>,
    root: PathBuf,
    _nginx: Nginx,
}

impl Environment {
    fn start(name: &'static str, dir: &Path, engine: &Engine, prefix: &str) -> Self {
        let nginx_dir = dir.join(format!("{name}-nginx"));
        std::fs::create_dir_all(&nginx_dir).expect("nginx dir");
        let root = dir.join(format!("{name}-root"));
        let ports: BTreeMap<&'static str, (u16, u16)> = SERVICES
            .iter()
            .map(|service| (*service, (free_port(), free_port())))
            .collect();
        let d = nginx_dir.display();
        let mut body = String::new();
        let mut locations = String::new();
        for (service, (blue, _)) in &ports {
            // Until the first deploy, the upstream names an empty port (502: nothing is live).
            std::fs::write(
                nginx_dir.join(format!("{service}.upstream")),
                format!("upstream {service} {{ server 127.0.0.1:{blue}; }}\n"),
            )
            .expect("upstream");
            body.push_str(&format!("include {d}/{service}.upstream;\n"));
            locations.push_str(&format!(
                "location /{service}/ {{ proxy_pass http://{service}/cgi-bin/; proxy_http_version 1.1; }}\n"
            ));
            let shared = root.join(service).join("shared");
            std::fs::create_dir_all(&shared).expect("shared");
            std::fs::write(
                shared.join(".env"),
                format!(
                    "DOCKER_HOST={}\nCONTAINER_PREFIX={prefix}-{name}\n",
                    engine.host()
                ),
            )
            .expect(".env");
        }
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        body.push_str(&format!(
            "server {{ listen 127.0.0.1:{port};\n{locations}}}\n"
        ));
        let nginx = Nginx::start(&nginx_dir, &body, None, addr);
        Self {
            name,
            nginx_dir,
            addr,
            ports,
            root,
            _nginx: nginx,
        }
    }

    fn vars(&self, sshd: &Sshd) -> Vec<(String, String)> {
        let prefix = self.name.to_uppercase();
        let ports: BTreeMap<&str, serde_json::Value> = self
            .ports
            .iter()
            .map(|(service, (blue, green))| {
                (
                    *service,
                    serde_json::json!({ "blue": blue, "green": green }),
                )
            })
            .collect();
        vec![
            (format!("{prefix}_HOSTS"), sshd.host("root")),
            (format!("{prefix}_ROOT"), self.root.display().to_string()),
            (
                format!("{prefix}_PORTS"),
                serde_json::to_string(&ports).expect("ports"),
            ),
            (
                format!("{prefix}_NGINX_DIR"),
                self.nginx_dir.display().to_string(),
            ),
            (format!("{prefix}_NGINX"), Nginx::command(&self.nginx_dir)),
            (format!("{prefix}_URL"), format!("http://{}", self.addr)),
        ]
    }

    /// The release `service` answers with through nginx.
    fn serving(&self, service: &str) -> Answer {
        let path = format!("/{service}/api");
        crate::probe::get(self.addr, &path, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{} {path}: {e}", self.name))
    }
}

/// The registry's tags per repository under `namespace` (the v2 API, as a client sees it).
fn registry_tags(registry: &str, namespace: &str) -> BTreeMap<String, BTreeSet<String>> {
    let addr: SocketAddr = registry.parse().expect("registry address");
    let catalog = crate::probe::get(addr, "/v2/_catalog?n=1000", Duration::from_secs(5))
        .expect("registry catalog");
    assert_eq!(catalog.status, 200, "{catalog:?}");
    let catalog: serde_json::Value = serde_json::from_str(&catalog.body).expect("catalog json");
    let mut tags = BTreeMap::new();
    for repository in catalog["repositories"].as_array().expect("repositories") {
        let repository = repository.as_str().unwrap_or_default();
        let Some(name) = repository.strip_prefix(&format!("{namespace}/")) else {
            continue;
        };
        let path = format!("/v2/{repository}/tags/list");
        let list = crate::probe::get(addr, &path, Duration::from_secs(5)).expect("tags");
        let list: serde_json::Value = serde_json::from_str(&list.body).expect("tags json");
        let names = list["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|tag| tag.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        tags.insert(name.to_owned(), names);
    }
    tags
}

/// The team's base image (`<registry>/plasma-base:1`): busybox-static's httpd and shell and
/// the example's `base/serve`, imported as one layer and pushed.
fn push_base_image(engine: &Engine, registry: &str) {
    let busybox = require_program("busybox", "apt-get install -y busybox-static");
    let root = tempfile::tempdir().expect("tempdir");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(root.path().join("tmp")).expect("tmp");
    std::fs::copy(&busybox, bin.join("busybox")).expect("busybox");
    for applet in ["sh", "httpd", "sleep", "printf", "kill", "cat"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
    }
    crate::fixture::copy(
        &workspace_root().join("examples/seed-services/plasma-engine/base/serve"),
        &bin.join("serve"),
    );
    let reference = format!("{registry}/plasma-base:1");
    engine.import(
        root.path(),
        &reference,
        &[
            "ENV PATH=/bin".to_owned(),
            "CMD [\"/bin/serve\"]".to_owned(),
        ],
    );
    engine.push(&reference);
}

fn job(log: &crate::log::ActLog, name: &str) -> Option<String> {
    log.job_results().get(name).cloned()
}

#[test]
fn seed_002_builds_only_changed_images_and_switches_back_releases_that_break_the_baseline() {
    let started = Instant::now();
    let engine = Engine::start();
    let suite = Suite::start();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let namespace = format!("s002-{}-{nanos:x}", std::process::id());
    let registry = format!("{}/{namespace}", engine.registry());
    let _containers = Containers {
        engine: &engine,
        prefixes: vec![
            format!("{namespace}-staging"),
            format!("{namespace}-production"),
        ],
    };
    push_base_image(&engine, &registry);

    // Two hosts; the deploy key of the workflow logs in to both.
    let staging_host = Sshd::start();
    let production_host = Sshd::start();
    let key = staging_host.user_key();
    let public = std::fs::read_to_string(staging_host.dir().join("user_key.pub")).expect("pub");
    std::fs::write(production_host.dir().join("authorized_keys"), public).expect("authorized_keys");
    let staging = Environment::start("staging", suite.dir.path(), &engine, &namespace);
    let production = Environment::start("production", suite.dir.path(), &engine, &namespace);

    let example = workspace_root().join("examples/seed-services/plasma-engine");
    let repo = UserRepo::from_files(
        suite.dir.path(),
        &[
            (example.join("services"), "services"),
            (example.join("deploy"), "deploy"),
            (example.join("README.md"), "README.md"),
            (example.join("filters.yaml"), ".github/filters.yaml"),
            (
                workspace_root().join("action-templates/monorepo-ci.yml"),
                ".github/workflows/monorepo-ci.yml",
            ),
            (
                workspace_root().join("suite-tests/workflows/seeds/seed-002.yml"),
                ".github/workflows/seed-002.yml",
            ),
        ],
    );
    let mut vars = vec![
        ("REGISTRY".to_owned(), registry.clone()),
        (
            "DEPLOY_KNOWN_HOSTS".to_owned(),
            format!(
                "{}\n{}\n",
                staging_host.known_hosts_line(),
                production_host.known_hosts_line()
            ),
        ),
    ];
    vars.extend(staging.vars(&staging_host));
    vars.extend(production.vars(&production_host));
    let env = vec![
        ("DOCKER_HOST".to_owned(), engine.host().to_owned()),
        // Debian's docker.io has no buildx plugin: the classic builder, said once.
        ("DOCKER_BUILDKIT".to_owned(), "0".to_owned()),
    ];
    let act = |event: &Path, watch_for: &str| {
        suite.act_with_env(&repo, event, vars.clone(), &key, watch_for, env.clone())
    };
    let context = |log: &crate::log::ActLog| {
        format!(
            "{:?}\n{}\nstaging sshd: {}\nproduction sshd: {}",
            log.job_results(),
            log.tail(),
            staging_host.log(),
            production_host.log()
        )
    };
    let mut summary = vec![
        "seed 002 (plasma-engine monorepo: images, staging, production blue-green)".to_owned(),
    ];

    // Run 1: the first push; every service is new: five images, staging and production.
    let v1 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = act(&repo.event(&"0".repeat(40)), "");
    for name in ["changes", "staging", "production"] {
        assert_eq!(
            job(&log, name).as_deref(),
            Some("success"),
            "{name}\n{}",
            context(&log)
        );
    }
    let tags = registry_tags(engine.registry(), &namespace);
    for service in SERVICES {
        assert_eq!(
            tags.get(service),
            Some(&BTreeSet::from([v1.clone()])),
            "{service}'s image: {tags:?}"
        );
        for environment in [&staging, &production] {
            let answer = environment.serving(service);
            assert_eq!(
                (answer.status, release_header(&answer)),
                (200, v1.clone()),
                "{} {service}: {answer:?}",
                environment.name
            );
        }
    }
    summary.push(format!(
        "  run 1  {v1}: 5 images built + pushed, 5 services to staging and production (blue-green, no baseline yet), {:.1} s",
        run_started.elapsed().as_secs_f64()
    ));

    // Run 2: research changes; only its image is built; production switches under load.
    let load = Load::start(production.addr, "/research/api");
    let event = repo.commit(
        "research: the API names its version",
        &[(
            "services/research/www/cgi-bin/api",
            "research %s\\n",
            "research %s (api 2)\\n",
        )],
    );
    let v2 = repo.release_id();
    let run_started = Instant::now();
    let (log, _) = act(&event, "");
    let switch = load.finish();
    for name in ["changes", "staging", "production"] {
        assert_eq!(
            job(&log, name).as_deref(),
            Some("success"),
            "{name}\n{}",
            context(&log)
        );
    }
    let tags = registry_tags(engine.registry(), &namespace);
    for service in SERVICES {
        let expected = if service == "research" {
            BTreeSet::from([v1.clone(), v2.clone()])
        } else {
            BTreeSet::from([v1.clone()])
        };
        assert_eq!(tags.get(service), Some(&expected), "{service}: {tags:?}");
    }
    for environment in [&staging, &production] {
        assert_eq!(release_header(&environment.serving("research")), v2);
        assert_eq!(release_header(&environment.serving("brand")), v1);
    }
    assert!(
        log.contains("the new release's p95 must stay under"),
        "production observed research against the baseline recorded before the deploy\n{}",
        log.tail()
    );
    say(&format!(
        "seed 002 research blue-green, through nginx: {switch:?}"
    ));
    assert!(switch.requests > 100, "{switch:?}");
    assert_eq!(
        switch.failed, 0,
        "requests through nginx failed: {switch:?}"
    );
    assert!(
        switch.releases.contains_key(&v1) && switch.releases.contains_key(&v2),
        "the load saw both releases: {switch:?}"
    );
    summary.push(format!(
        "  run 2  {v2}: research changed -> 1 image (4 services no new tag), staging + production blue-green passed against the baseline, {:.1} s; through nginx: {} requests, {} failed",
        run_started.elapsed().as_secs_f64(),
        switch.requests,
        switch.failed
    ));

    // Run 3: research really slower (300 ms per answer): p95 > 2x baseline, switched back.
    // Run 4: content really failing (500): error rate > 5 %, switched back.
    let failing: [(&str, &str, &str, &str, &str); 2] = [
        (
            "research",
            "slower (300 ms)",
            "research: richer answers",
            "sleep 0.05",
            "sleep 0.3",
        ),
        (
            "content",
            "failing (500)",
            "content: new API",
            "HTTP/1.0 200 OK",
            "HTTP/1.0 500 Internal Server Error",
        ),
    ];
    for (number, (service, how, message, from, to)) in failing.into_iter().enumerate() {
        let path: &'static str = if service == "research" {
            "/research/api"
        } else {
            "/content/api"
        };
        let before = release_header(&production.serving(service));
        let watcher = Watcher::start(vec![production.addr], path, release_header);
        let load = Load::start(production.addr, path);
        let event = repo.commit(
            message,
            &[(&format!("services/{service}/www/cgi-bin/api"), from, to)],
        );
        let broken = repo.release_id();
        let run_started = Instant::now();
        let (log, gate_failed) = act(&event, "health gate failed");
        let samples = watcher.finish();
        let during = load.finish();
        assert_eq!(
            job(&log, "staging").as_deref(),
            Some("success"),
            "{}",
            context(&log)
        );
        assert_eq!(
            job(&log, "production").as_deref(),
            Some("failure"),
            "{}",
            context(&log)
        );
        let tags = registry_tags(engine.registry(), &namespace);
        assert!(tags[service].contains(&broken), "{tags:?}");
        assert_eq!(
            release_header(&staging.serving(service)),
            broken,
            "staging has no baseline gate: the release is there"
        );
        let answer = production.serving(service);
        assert_eq!(
            (answer.status, release_header(&answer)),
            (200, before.clone()),
            "production switched back: {answer:?}\n{}",
            log.tail()
        );
        let gate_failed = gate_failed.expect("the log said the observation failed");
        let serving = settled_on(&samples, &before).expect("the previous release serves again");
        let recovery = serving.saturating_duration_since(gate_failed);
        // The broken release's own answers (500s) are failures its users saw while it was live;
        // the switches must add none (connection errors, 502s).
        let from_the_switch: Vec<&String> = during
            .failures
            .iter()
            .filter(|failure| !failure.ends_with("status 500"))
            .collect();
        assert!(
            from_the_switch.is_empty(),
            "failures through nginx other than the broken release's 500s: {during:?}"
        );
        summary.push(format!(
            "  run {}  {broken}: {service} {how}: staging deployed, production observed against the baseline and switched back to {before}, {:.1} s; gate failed -> {before} serving through nginx: {} ms; through nginx: {} requests, {} failed ({} not from the release's 500s)",
            number + 3,
            run_started.elapsed().as_secs_f64(),
            recovery.as_millis(),
            during.requests,
            during.failed,
            from_the_switch.len()
        ));
    }
    summary.push(format!(
        "  seed 002 wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    say(&summary.join("\n"));
}
