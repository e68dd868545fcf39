//! The subcommands end to end, on the real binary: validate, render with templates, lock
//! against real git remotes and a loopback GitHub API, diff.

mod support;

use std::collections::HashMap;
use std::path::Path;

use support::{FakeGithub, GitRepo, Reply, binary};
use test_support::{run, tool_command};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write");
    path
}

fn outputs(stdout: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(stdout) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("stdout is not one JSON object: {stdout:?} ({other:?})"),
    }
}

const RELEASE: &str = r#"release_name: "prod-2026-11-24"
platform:   { repo: "acme/platform", ref: "v0.3.2" }
frontend:   { repo: "acme/customer", ref: "ui-v2026.11.24" }
bundles:
  default_bundle_id: "support@3-1"
  items:
    - id: "support@3-1"
      name: "Support assistant"
      repo: "git@github.com:acme/customer.git"
      ref: "bundles-v2026.11.24"
      subdir: "service/bundles"
      module: "support@3-1.entrypoint"
"#;

#[test]
fn validate_reads_the_descriptor_from_its_env_var_and_the_flag_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.yaml", RELEASE);
    let bad = write(dir.path(), "bad.yaml", "release_name: x\n");
    let from_env = run(tool_command(binary())
        .arg("validate")
        .env("RELEASE_DESCRIPTOR_RENDER_DESCRIPTOR", &good));
    assert_eq!(from_env.code, Some(0), "{from_env:?}");
    let out = outputs(&from_env.stdout);
    assert_eq!(out["version"], "0.3.2");
    assert_eq!(out["tag"], "v0.3.2");
    assert_eq!(out["release-name"], "prod-2026-11-24");

    let flag_wins = run(tool_command(binary())
        .args(["validate", "--descriptor"])
        .arg(&good)
        .env("RELEASE_DESCRIPTOR_RENDER_DESCRIPTOR", &bad));
    assert_eq!(flag_wins.code, Some(0), "{flag_wins:?}");
}

#[test]
fn invalid_descriptors_fail_with_every_error_as_annotations_under_github() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "release.yaml",
        "release_name: r\nplatform:\n  repo: acme/platform\n  ref: main\nbundles:\n  default_bundle_id: nope\n  items: []\nextra: 1\n",
    );
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["--output-format", "json", "validate"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", dir.path()));
    assert_eq!(output.code, Some(2), "{output:?}");
    assert_eq!(output.stdout, "{\"valid\":false}\n");
    let _ = path;
    insta::assert_snapshot!(output.stderr, @r"
    ::warning file=release.yaml,line=8,col=1::unknown key `extra` in the release descriptor; it is ignored%0Afield: extra%0Ahint: valid keys: `release_name`, `platform`, `frontend`, `bundles`
    ::error file=release.yaml,line=4,col=8::`platform.ref` must be a tag or a full commit SHA, found the branch `main` (decided by the ref's shape; pass --remote-refs=true to ask the remote)%0Afield: platform.ref%0Ahint: pin a tag or a commit (`release-descriptor-render lock` resolves refs to commits); pass --allow-branch-refs=true for a development release
    ::error file=release.yaml,line=6,col=22::`bundles.default_bundle_id` names `nope`, which is not a bundle id%0Afield: bundles.default_bundle_id%0Ahint: there are no bundle items; remove `default_bundle_id` or add one
    ::error::release.yaml is invalid: 2 error(s)
    ");
}

#[test]
fn render_outputs_checkouts_images_and_a_strict_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "release.yaml", RELEASE);
    write(
        dir.path(),
        "unit.service.j2",
        "[Unit]\nDescription=chat-proc {{ release_name }} ({{ version }})\n\n[Service]\n\
         Environment=IMAGE={{ images['kdcube-chat-proc'] }}\n\
         Environment=GIT_SHA={{ git_sha }}\nEnvironment=BUILT={{ build_time }}\n\
         Environment=DEFAULT_BUNDLE={{ bundles.default_bundle_id }}\n",
    );
    let summary = dir.path().join("summary.md");
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["--output-format", "json", "render"])
        .args(["--registry", "reg.example.com/acme"])
        .args(["--platform-images", "kdcube-chat-proc\nkdcube-metrics"])
        .args(["--customer-images", "kdcube-web-ui"])
        .args(["--template", "unit.service.j2=out/chat-proc.service"])
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("SOURCE_DATE_EPOCH", "1795512600")
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(output.code, Some(0), "{output:?}");
    let out = outputs(&output.stdout);
    let checkouts = out["checkouts"].clone();
    assert_eq!(checkouts[0]["name"], "platform");
    assert_eq!(checkouts[2]["repository"], "acme/customer");
    assert_eq!(checkouts[2]["ref"], "bundles-v2026.11.24");
    assert_eq!(checkouts[2]["bundles"], serde_json::json!(["support@3-1"]));
    let images = out["images"].clone();
    assert_eq!(
        images,
        serde_json::json!({
            "kdcube-chat-proc": "reg.example.com/acme/kdcube-chat-proc:v0.3.2",
            "kdcube-metrics": "reg.example.com/acme/kdcube-metrics:v0.3.2",
            "kdcube-web-ui": "reg.example.com/acme/kdcube-web-ui:0123456789abcdef0123456789abcdef01234567"
        })
    );
    let matrix = out["image-matrix"].clone();
    assert_eq!(matrix["include"].as_array().map(Vec::len), Some(3));
    // Typed outputs: arrays and objects are JSON values, not strings holding JSON.
    assert_eq!(
        out["rendered"],
        serde_json::json!(["out/chat-proc.service"])
    );
    let unit = std::fs::read_to_string(dir.path().join("out/chat-proc.service")).expect("rendered");
    insta::assert_snapshot!(unit, @r"
    [Unit]
    Description=chat-proc prod-2026-11-24 (0.3.2)

    [Service]
    Environment=IMAGE=reg.example.com/acme/kdcube-chat-proc:v0.3.2
    Environment=GIT_SHA=0123456789abcdef0123456789abcdef01234567
    Environment=BUILT=2026-11-24T09:30:00Z
    Environment=DEFAULT_BUNDLE=support@3-1
    ");
    let summary = std::fs::read_to_string(summary).expect("summary written");
    assert!(summary.contains("### Release prod-2026-11-24"), "{summary}");
    assert!(summary.contains("| kdcube-web-ui |"), "{summary}");
}

#[test]
fn an_unknown_template_variable_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "release.yaml", RELEASE);
    write(dir.path(), "VERSION.j2", "{{ version }}\n{{ git_sha }}\n");
    let output = run(tool_command(binary()).current_dir(dir.path()).args([
        "render",
        "--template",
        "VERSION.j2=VERSION",
    ]));
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(!dir.path().join("VERSION").exists());
    insta::assert_snapshot!(output.stderr, @r"
    error: template uses `git_sha`, which the release does not define
     --> VERSION.j2:2:4
      |
    2 | {{ git_sha }}
      |    ^^^^^^^
      = hint: available: release_name, version, tag, platform, frontend (when set), bundles, checkouts, images, git_sha (with --customer-sha or GITHUB_SHA), build_time; use `{% if x is defined %}` for optional values
    ");
}

/// A descriptor whose three repositories are local git repos.
fn local_release(
    platform: &GitRepo,
    platform_ref: &str,
    bundles: &GitRepo,
    bundle_ref: &str,
) -> String {
    format!(
        "release_name: local\nplatform: {{ repo: \"{}\", ref: \"{platform_ref}\" }}\n\
         bundles:\n  items:\n    - id: a@1\n      repo: \"{}\"\n      ref: \"{bundle_ref}\"\n      module: a@1.entrypoint\n",
        platform.url(),
        bundles.url()
    )
}

#[test]
fn lock_resolves_annotated_tags_lightweight_tags_and_commits_with_git() {
    let platform = GitRepo::new();
    let first = platform.commit("a", "1");
    platform.annotated_tag("v1.0.0");
    platform.commit("b", "2");
    let bundles = GitRepo::new();
    bundles.commit("x", "1");
    bundles.tag("bundles-v1");
    bundles.commit("y", "2");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "release.yaml",
        &local_release(&platform, "v1.0.0", &bundles, "bundles-v1"),
    );
    let output = run(tool_command(binary()).current_dir(dir.path()).args([
        "--output-format",
        "json",
        "lock",
        "--lock-file",
        "lock/release.lock.json",
    ]));
    assert_eq!(output.code, Some(0), "{output:?}");
    let text = std::fs::read_to_string(dir.path().join("lock/release.lock.json")).expect("lock");
    let lock: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(lock["repositories"][0]["kind"], "tag");
    assert_eq!(
        lock["repositories"][0]["commit"], first,
        "annotated tag is peeled"
    );
    assert_ne!(
        platform.rev("v1.0.0"),
        first,
        "the tag object differs from its commit"
    );
    assert_eq!(lock["repositories"][1]["commit"], bundles.rev("bundles-v1"));
    assert_eq!(lock["repositories"][1]["resolved_with"], "git ls-remote");
    assert_eq!(
        lock["repositories"][1]["bundles"],
        serde_json::json!(["a@1"])
    );
    let out = outputs(&output.stdout);
    assert_eq!(out["lock-file"], "lock/release.lock.json");

    // Same remotes, same bytes.
    let again = run(tool_command(binary()).current_dir(dir.path()).args([
        "lock",
        "--lock-file",
        "again.json",
    ]));
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.json")).expect("lock"),
        text
    );
}

#[test]
fn a_branch_is_refused_when_the_remote_says_so_even_if_it_looks_like_a_tag() {
    let platform = GitRepo::new();
    platform.commit("a", "1");
    platform.tag("v1.0.0");
    platform.branch("rc-2026.11");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "release.yaml",
        &local_release(&platform, "v1.0.0", &platform, "rc-2026.11"),
    );
    let by_shape = run(tool_command(binary())
        .current_dir(dir.path())
        .arg("validate"));
    assert_eq!(
        by_shape.code,
        Some(0),
        "by its shape it is a tag: {by_shape:?}"
    );
    let by_remote = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["validate", "--remote-refs"]));
    assert_eq!(by_remote.code, Some(2), "{by_remote:?}");
    assert!(
        by_remote.stderr.contains("found the branch `rc-2026.11`\n"),
        "decided by the remote, without the shape caveat: {}",
        by_remote.stderr
    );
    let allowed = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["lock", "--allow-branch-refs=true"]));
    assert_eq!(allowed.code, Some(0), "{allowed:?}");
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("release.lock.json")).expect("lock"),
    )
    .expect("json");
    assert_eq!(lock["repositories"][1]["kind"], "branch");
    assert_eq!(
        lock["repositories"][1]["commit"],
        platform.rev("rc-2026.11")
    );
}

#[test]
fn lock_fails_on_a_missing_ref_and_on_an_unreachable_remote() {
    let platform = GitRepo::new();
    platform.commit("a", "1");
    platform.tag("v1.0.0");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "release.yaml",
        &local_release(&platform, "v1.0.0", &platform, "v9.9.9"),
    );
    let missing = run(tool_command(binary()).current_dir(dir.path()).arg("lock"));
    assert_eq!(missing.code, Some(2), "{missing:?}");
    assert!(
        missing.stderr.contains("names `v9.9.9`, which"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("release.yaml:7:12"),
        "{}",
        missing.stderr
    );

    let gone = dir.path().join("no-such-repo");
    write(
        dir.path(),
        "release.yaml",
        &format!(
            "release_name: x\nplatform: {{ repo: \"file://{}\", ref: v1 }}\n",
            gone.display()
        ),
    );
    let unreachable = run(tool_command(binary()).current_dir(dir.path()).arg("lock"));
    assert_eq!(unreachable.code, Some(3), "{unreachable:?}");
    assert!(
        unreachable.stderr.contains("git ls-remote failed"),
        "{}",
        unreachable.stderr
    );
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        body: body.to_string(),
    }
}

const TOKEN: &str = "ghp_t0ken_that_must_never_print";

#[test]
fn lock_uses_the_github_api_with_a_token_and_never_prints_it() {
    let tag_object = "1".repeat(40);
    let platform_commit = "a".repeat(40);
    let frontend_commit = "b".repeat(40);
    let bundle_commit = "c".repeat(40);
    let mut routes = HashMap::new();
    routes.insert(
        "/repos/acme/platform/git/ref/tags/v0.3.2".to_owned(),
        reply(200, serde_json::json!({"ref": "refs/tags/v0.3.2", "object": {"type": "tag", "sha": tag_object}})),
    );
    routes.insert(
        format!("/repos/acme/platform/git/tags/{tag_object}"),
        reply(
            200,
            serde_json::json!({"object": {"type": "commit", "sha": platform_commit}}),
        ),
    );
    routes.insert(
        "/repos/acme/customer/git/ref/tags/ui-v2026.11.24".to_owned(),
        reply(
            200,
            serde_json::json!({"object": {"type": "commit", "sha": frontend_commit}}),
        ),
    );
    // A prefix match (an array) is not the tag; the branch is found next.
    routes.insert(
        "/repos/acme/customer/git/ref/tags/bundles-v2026.11.24".to_owned(),
        reply(
            200,
            serde_json::json!([{"ref": "refs/tags/bundles-v2026.11.24-rc1"}]),
        ),
    );
    routes.insert(
        "/repos/acme/customer/git/ref/heads/bundles-v2026.11.24".to_owned(),
        reply(
            200,
            serde_json::json!({"object": {"type": "commit", "sha": bundle_commit}}),
        ),
    );
    let server = FakeGithub::start(routes);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "release.yaml", RELEASE);
    let summary = dir.path().join("summary.md");
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .args([
            "--output-format",
            "json",
            "lock",
            "--allow-branch-refs",
            "--github-api-url",
        ])
        .arg(&server.base)
        .env("RELEASE_DESCRIPTOR_RENDER_TOKEN", TOKEN)
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(output.code, Some(0), "{output:?}");
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("release.lock.json")).expect("lock"),
    )
    .expect("json");
    let repositories = &lock["repositories"];
    assert_eq!(repositories[0]["commit"], platform_commit);
    assert_eq!(repositories[0]["kind"], "tag");
    assert_eq!(repositories[0]["resolved_with"], "github api");
    assert_eq!(repositories[1]["commit"], frontend_commit);
    assert_eq!(repositories[2]["kind"], "branch");
    assert_eq!(repositories[2]["commit"], bundle_commit);
    assert!(
        output
            .stderr
            .contains("is the branch `bundles-v2026.11.24`"),
        "{}",
        output.stderr
    );

    let seen = server.seen();
    assert!(!seen.is_empty());
    for request in &seen {
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let summary = std::fs::read_to_string(summary).expect("summary");
    for text in [&output.stdout, &output.stderr, &summary] {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
}

#[test]
fn a_refused_token_is_an_infrastructure_error_without_the_token() {
    let mut routes = HashMap::new();
    routes.insert(
        "/repos/acme/platform/git/ref/tags/v0.3.2".to_owned(),
        reply(401, serde_json::json!({"message": "Bad credentials"})),
    );
    let server = FakeGithub::start(routes);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "release.yaml", RELEASE);
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["lock", "--token", TOKEN, "--github-api-url"])
        .arg(&server.base));
    assert_eq!(output.code, Some(3), "{output:?}");
    assert!(
        output
            .stderr
            .contains("401 Unauthorized (the token is invalid or expired)"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains(TOKEN) && !output.stdout.contains(TOKEN));
}

#[test]
fn diff_reports_changes_as_json_and_markdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "base.yaml", RELEASE);
    let new = RELEASE
        .replace("v0.3.2", "v0.4.0")
        .replace("bundles-v2026.11.24", "bundles-v2026.12.01");
    write(dir.path(), "release.yaml", &new);
    let output = run(tool_command(binary()).current_dir(dir.path()).args([
        "--output-format",
        "json",
        "diff",
        "--base",
        "base.yaml",
    ]));
    assert_eq!(output.code, Some(0), "{output:?}");
    let out = outputs(&output.stdout);
    assert_eq!(out["changed"], true);
    let diff = out["diff"].clone();
    assert_eq!(diff["platform"]["to"]["ref"], "v0.4.0");
    assert_eq!(diff["bundles"]["repinned"][0]["id"], "support@3-1");
    insta::assert_snapshot!(out["diff-markdown"].as_str().expect("string"), @r"
    ### Release changes

    | what | base | this |
    | --- | --- | --- |
    | platform | acme/platform@v0.3.2 | acme/platform@v0.4.0 |
    | bundle support@3-1 pin | git@github.com:acme/customer.git@bundles-v2026.11.24 | git@github.com:acme/customer.git@bundles-v2026.12.01 |
    ");

    let same = run(tool_command(binary()).current_dir(dir.path()).args([
        "--output-format",
        "json",
        "diff",
        "--base",
        "release.yaml",
    ]));
    assert_eq!(outputs(&same.stdout)["changed"], false);
}

#[test]
fn version_scheme_checks_the_platform_tag() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "release.yaml",
        &RELEASE.replace("v0.3.2", "v0.3"),
    );
    let semver = run(tool_command(binary()).current_dir(dir.path()).args([
        "validate",
        "--version-scheme",
        "semver",
    ]));
    assert_eq!(semver.code, Some(2), "{semver:?}");
    assert!(
        semver.stderr.contains("does not carry a semver version"),
        "{}",
        semver.stderr
    );
    let pep440 = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["validate"])
        .env("RELEASE_DESCRIPTOR_RENDER_VERSION_SCHEME", "pep440"));
    assert_eq!(pep440.code, Some(0), "{pep440:?}");
}

/// ~1 KB whose nine levels of ten aliases expand to 10^9 scalars ("billion laughs").
fn billion_laughs() -> String {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let list = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_is_refused_with_the_file_and_line_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "release.yaml", &billion_laughs());
    let started = std::time::Instant::now();
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .arg("validate"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output
            .stderr
            .contains("error: YAML expands to more than 100000 nodes (aliases expanded); refusing an alias bomb\n --> release.yaml:5:"),
        "{}",
        output.stderr
    );
}

#[test]
fn an_oversized_descriptor_is_refused_before_it_is_read_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    let padding = format!("# {}\n", "x".repeat(1024));
    write(
        dir.path(),
        "release.yaml",
        &format!("{RELEASE}{}", padding.repeat(1024)),
    );
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .arg("validate"));
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains(
            "cannot read the release descriptor release.yaml: the file is larger than 1048576 bytes"
        ),
        "{}",
        output.stderr
    );
}

#[test]
fn template_limits_stop_endless_loops_and_huge_output_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "release.yaml", RELEASE);
    write(
        dir.path(),
        "spin.j2",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    );
    write(
        dir.path(),
        "big.j2",
        "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    );
    for (template, expected) in [
        (
            "spin.j2",
            "error: template ran out of fuel (5000000 instructions)",
        ),
        (
            "big.j2",
            "error: template output exceeds 10485760 bytes; rendering stopped",
        ),
    ] {
        let started = std::time::Instant::now();
        let output = run(tool_command(binary()).current_dir(dir.path()).args([
            "render",
            "--template",
            &format!("{template}=out/result"),
        ]));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{template}: {:?}",
            started.elapsed()
        );
        assert_eq!(output.code, Some(2), "{output:?}");
        assert!(output.stderr.starts_with(expected), "{}", output.stderr);
        assert!(!dir.path().join("out/result").exists());
    }
}

#[test]
fn template_destinations_through_symlinks_are_refused_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = write(outside.path(), "victim", "untouched\n");
    write(dir.path(), "release.yaml", RELEASE);
    write(dir.path(), "VERSION.j2", "{{ version }}\n");
    // A link to a file outside, and a directory link out of the checkout.
    std::os::unix::fs::symlink(&victim, dir.path().join("VERSION")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).expect("symlink");
    for (destination, link) in [("VERSION", "VERSION"), ("out/sub/VERSION", "out")] {
        let output = run(tool_command(binary()).current_dir(dir.path()).args([
            "render",
            "--template",
            &format!("VERSION.j2={destination}"),
        ]));
        assert_eq!(output.code, Some(2), "{output:?}");
        assert!(
            output.stderr.starts_with(&format!(
                "error: refusing to write {destination}: {link} is a symlink"
            )),
            "{}",
            output.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "untouched\n"
    );
    assert!(!outside.path().join("sub").exists());
    // A real directory still works, and an absolute destination in it too.
    let absolute = dir.path().join("real/VERSION");
    let output = run(tool_command(binary()).current_dir(dir.path()).args([
        "render",
        "--template",
        &format!("VERSION.j2={}", absolute.display()),
    ]));
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(
        std::fs::read_to_string(absolute).expect("rendered"),
        "0.3.2\n"
    );
}

/// The release.yaml of the platform's own docs names the platform and frontend by bare names
/// (`kdcube-ai-app`, `customer-repo`; kdcube-ai-app `docs/service/cicd/release-descriptor-README.md`):
/// `diff` uses neither repository and warns; `render` checks them out and refuses, naming the
/// field, its place and what would be valid (issue 20).
#[test]
fn bare_repository_names_warn_in_diff_and_are_refused_where_a_checkout_needs_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = RELEASE
        .replace("\"acme/platform\"", "\"kdcube-ai-app\"")
        .replace("\"acme/customer\"", "\"customer-repo\"");
    write(dir.path(), "base.yaml", &bare);
    write(dir.path(), "release.yaml", &bare);
    let diff = run(tool_command(binary()).current_dir(dir.path()).args([
        "--output-format",
        "json",
        "diff",
        "--base",
        "base.yaml",
    ]));
    assert_eq!(diff.code, Some(0), "{diff:?}");
    assert!(
        diff.stderr.contains(
            "warning: `platform.repo` is not a repository: `kdcube-ai-app` (not used by this command; a checkout or a lock would refuse it)\n --> release.yaml:2:21"
        ),
        "{}",
        diff.stderr
    );
    let render = run(tool_command(binary()).current_dir(dir.path()).args([
        "render",
        "--descriptor",
        "release.yaml",
    ]));
    assert_eq!(render.code, Some(2), "{render:?}");
    assert!(
        render.stderr.contains(
            "error: `frontend.repo` is not a repository: `customer-repo`\n --> release.yaml:3:21"
        ),
        "{}",
        render.stderr
    );
    assert!(
        render.stderr.contains("hint: use `owner/name` (GitHub)"),
        "{}",
        render.stderr
    );
}

/// bundles.yaml items given by `path` (code already in the runtime) or by `config` only (a
/// bundle the platform ships) have no repository: no checkout is made for them.
#[test]
fn path_and_config_only_items_get_no_checkout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{RELEASE}    - id: \"local@1-0\"\n      path: \"/bundles/local\"\n      module: \"entrypoint\"\n    - id: \"kdcube.admin\"\n      config: {{ enabled: {{ bundle: false }} }}\n"
    );
    write(dir.path(), "release.yaml", &text);
    let output = run(tool_command(binary()).current_dir(dir.path()).args([
        "--output-format",
        "json",
        "render",
        "--descriptor",
        "release.yaml",
    ]));
    assert_eq!(output.code, Some(0), "{output:?}");
    let checkouts = outputs(&output.stdout)["checkouts"].clone();
    let names: Vec<&str> = checkouts
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["platform", "frontend", "bundles-customer"]);
}
