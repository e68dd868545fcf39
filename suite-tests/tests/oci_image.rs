//! The suite's OCI image (`scripts/build-image`, `image/Dockerfile`): built on a real Docker
//! Engine, pushed to the loopback registry and pulled back, then each of the six tools run from
//! it (`docker run --network host`) against real peers on loopback: a git repository
//! (change-detect), an HTTP server (health-gate), an OpenSSH sshd (ssh-deploy), moto_server
//! (ecs-taskdef-update), and release.yaml files (release-descriptor-render, bundle-json-gen).

use std::path::Path;
use std::process::Command;

use test_support::engine::Engine;
use test_support::http_server::{HttpServer, Reply};
use test_support::moto::Moto;
use test_support::sshd::Sshd;
use test_support::{Output, run, workspace_root};

/// `docker run --rm --network host -v WORK:WORK -w WORK [-e K=V]... IMAGE ARGS...`
fn in_image(
    engine: &Engine,
    image: &str,
    work: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut command = engine.docker();
    command
        .args(["run", "--rm", "--network", "host", "-v"])
        .arg(format!("{0}:{0}", work.display()))
        .arg("-w")
        .arg(work);
    for (key, value) in env {
        command.arg("-e").arg(format!("{key}={value}"));
    }
    command.arg(image).args(args);
    run(&mut command)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("json: {e}\n{out:?}"))
}

/// Seeds moto over its JSON API (what `aws ecs ...` sends): cluster `prod`, service
/// `processor` on `proc:1` with image `reg.example/proc:1.0`.
fn seed_ecs(moto: &Moto) {
    for (target, body) in [
        ("CreateCluster", r#"{"clusterName":"prod"}"#),
        (
            "RegisterTaskDefinition",
            r#"{"family":"proc","cpu":"256","containerDefinitions":[{"name":"proc","image":"reg.example/proc:1.0","memory":512}]}"#,
        ),
        (
            "CreateService",
            r#"{"cluster":"prod","serviceName":"processor","taskDefinition":"proc:1","desiredCount":1}"#,
        ),
    ] {
        let out = run(Command::new("curl")
            .args(["-sf", "-X", "POST", "-H"])
            .arg(format!("X-Amz-Target: AmazonEC2ContainerServiceV20141113.{target}"))
            .args(["-H", "Content-Type: application/x-amz-json-1.1", "-H"])
            .arg("Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/ecs/aws4_request, SignedHeaders=host, Signature=0")
            .args(["-d", body])
            .arg(moto.endpoint()));
        assert_eq!(out.code, Some(0), "moto {target}: {out:?}");
    }
}

#[test]
fn the_image_runs_each_tool_against_loopback_peers() {
    let engine = Engine::start();
    let root = workspace_root();
    let image = format!(
        "{}/ds-image-{}/deploy-suite:test",
        engine.registry(),
        std::process::id()
    );
    let build = run(Command::new(root.join("scripts/build-image"))
        .env("DOCKER_HOST", engine.host())
        .args(["--profile", "demo", "--tag", &image, "--push"]));
    assert_eq!(
        build.code,
        Some(0),
        "scripts/build-image failed:\n{}",
        build.stderr
    );
    let id = build.stdout.trim().to_owned();
    assert!(id.starts_with("sha256:"), "{build:?}");
    // From the registry, as a CI system gets it.
    engine.run(&["rmi", &image]);
    engine.run(&["pull", "-q", &image]);
    assert_eq!(engine.image_id(&image), id);
    // One layer over scratch: nothing but what build-image put there.
    let layers = engine.run(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        &image,
    ]);
    assert_eq!(layers, "1");

    let work = tempfile::tempdir().expect("tmp");
    let work = work.path();
    let none: &[(&str, &str)] = &[];

    // change-detect: a real git history, git from the image.
    let repo = work.join("repo");
    let copy = run(Command::new("cp")
        .arg("-R")
        .arg(root.join("examples/bare-metal-app"))
        .arg(&repo));
    assert_eq!(copy.code, Some(0), "{copy:?}");
    let git = |args: &[&str]| {
        let out = run(test_support::git_repo::git_command(&repo).args(args));
        assert_eq!(out.code, Some(0), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "initial"]);
    std::fs::write(repo.join("services/telemetry/NOTES"), "changed\n").expect("write");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "telemetry"]);
    let repo_text = repo.display().to_string();
    let out = in_image(
        &engine,
        &image,
        work,
        none,
        &[
            "change-detect",
            "--output-format",
            "json",
            "--working-directory",
            &repo_text,
            "--filters",
            ".github/filters.yaml",
            "--base",
            "HEAD~1",
            "--ref",
            "HEAD",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(json(&out)["changes"], serde_json::json!(["telemetry"]));

    // release-descriptor-render and bundle-json-gen on the example's release.yaml.
    let descriptor = repo.join("release.yaml").display().to_string();
    let out = in_image(
        &engine,
        &image,
        work,
        none,
        &[
            "release-descriptor-render",
            "--output-format",
            "json",
            "render",
            "--descriptor",
            &descriptor,
            "--version-scheme",
            "semver",
            "--customer-sha",
            "0123456789abcdef0123456789abcdef01234567",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(json(&out)["version"].is_string(), "{out:?}");
    let bundles = work.join("bundles.json").display().to_string();
    let out = in_image(
        &engine,
        &image,
        work,
        none,
        &[
            "bundle-json-gen",
            "--output-format",
            "json",
            "generate",
            "--descriptor",
            &descriptor,
            "--mode",
            "git",
            "--output-file",
            &bundles,
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let written = std::fs::read_to_string(&bundles).expect("bundles.json written");
    // The output is typed JSON: the descriptor object itself, equal to the file's.
    let expected: serde_json::Value = serde_json::from_str(&written).expect("bundles.json");
    assert_eq!(json(&out)["bundles-json"], expected, "{out:?}");

    // health-gate against a real HTTP server.
    let server = HttpServer::start(|_| Reply::text(200, "ok"));
    let url = server.url("/health");
    let out = in_image(
        &engine,
        &image,
        work,
        none,
        &["health-gate", "--output-format", "json", "--url", &url],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(json(&out)["decision"], "go");
    assert!(server.request_count() > 0);

    // ssh-deploy: pack, then deploy over a real sshd.
    let source = work.join("dist");
    std::fs::create_dir_all(source.join("bin")).expect("mkdir");
    std::fs::write(source.join("VERSION"), "v1\n").expect("write");
    let artifact = work.join("release.tar.gz").display().to_string();
    let source_text = source.display().to_string();
    let out = in_image(
        &engine,
        &image,
        work,
        none,
        &[
            "ssh-deploy",
            "--output-format",
            "json",
            "pack",
            "--source",
            &source_text,
            "--artifact",
            &artifact,
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let sshd = Sshd::start();
    let host_root = work.join("host").display().to_string();
    let key = sshd.user_key();
    let known = sshd.known_hosts_line();
    let hosts = sshd.host("root");
    let out = in_image(
        &engine,
        &image,
        work,
        &[
            ("SSH_DEPLOY_PRIVATE_KEY", &key),
            ("SSH_DEPLOY_KNOWN_HOSTS", &known),
        ],
        &[
            "ssh-deploy",
            "--output-format",
            "json",
            "deploy",
            "--hosts",
            &hosts,
            "--root",
            &host_root,
            "--artifact",
            &artifact,
            "--release-id",
            "v1",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}\n{}", sshd.log());
    assert_eq!(
        std::fs::read_to_string(work.join("host/current/VERSION")).expect("deployed"),
        "v1\n"
    );

    // ecs-taskdef-update against moto_server.
    let moto = Moto::start(&[]);
    seed_ecs(&moto);
    let endpoint = moto.endpoint();
    let out_dir = work.join("ecs").display().to_string();
    let out = in_image(
        &engine,
        &image,
        work,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", &endpoint),
        ],
        &[
            "ecs-taskdef-update",
            "--output-format",
            "json",
            "render",
            "--cluster",
            "prod",
            "--service",
            "processor",
            "--container",
            "proc",
            "--image",
            "reg.example/proc:2.0",
            "--output-dir",
            &out_dir,
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}\n{}", moto.log());
    let rendered: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("ecs/processor.json")).expect("rendered"),
    )
    .expect("json");
    assert_eq!(
        rendered["containerDefinitions"][0]["image"],
        "reg.example/proc:2.0"
    );
    engine.run(&["rmi", &image]);
}
