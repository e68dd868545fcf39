//! Every event path against real repositories: a bare `file://` origin, and fresh (mostly
//! shallow) clones of it, as actions/checkout leaves them.

use serde_json::json;
use test_support::GitRepo;

use crate::common::{MONOREPO_FILTERS, ZERO, detect, push_event};

/// An origin with a seeded `main`, and the working clone that pushed it.
fn monorepo() -> (GitRepo, GitRepo) {
    let origin = GitRepo::bare();
    let work = GitRepo::clone_from(&origin, &[]);
    work.write("crates/shared/src/lib.rs", "1")
        .write("services/api/src/main.rs", "1")
        .write("services/worker/src/main.rs", "1")
        .write("frontend/src/App.tsx", "1")
        .write("frontend/README.md", "1");
    work.commit("seed");
    work.git(&["push", "-q", "origin", "main"]);
    (origin, work)
}

fn changed(run: &crate::common::Run) -> Vec<String> {
    serde_json::from_value(run.json("changes")).expect("changes is a list")
}

#[test]
fn push_to_a_branch_compares_before_and_after_in_a_depth_one_clone() {
    let (origin, work) = monorepo();
    let before = work.head();
    work.write("services/api/src/main.rs", "2");
    let after = work.commit("api change");
    work.git(&["push", "-q", "origin", "main"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1"]);
    let run = detect(checkout.path())
        .event(
            "push",
            push_event("refs/heads/main", &before, &after, false),
        )
        .args(&["--filters", MONOREPO_FILTERS, "--list-files=json"])
        .run()
        .success();
    assert_eq!(changed(&run), ["api"]);
    assert_eq!(run.output("api"), "true");
    assert_eq!(run.output("api_count"), "1");
    // `--output-format json` is typed (issue 17): a boolean and a number, not strings.
    assert_eq!(run.outputs["api"], true);
    assert_eq!(run.outputs["api_count"], 1);
    assert_eq!(run.outputs["base"], before.as_str());
    assert_eq!(run.files("api"), ["services/api/src/main.rs"]);
    assert_eq!(run.output("worker"), "false");
    assert_eq!(run.output("base"), before);
    assert_eq!(run.output("head"), after);
    assert_eq!(run.output("base-source"), "previous-tip");
    assert_eq!(
        run.json("matrix"),
        json!({"include": [{"filter": "api"}]}),
        "{}",
        run.stderr
    );
}

#[test]
fn new_branch_is_compared_with_the_default_branch_at_the_merge_base_deepening_a_shallow_clone() {
    let (origin, work) = monorepo();
    work.git(&["checkout", "-q", "-b", "feature"]);
    for i in 0..5 {
        work.write("crates/shared/src/lib.rs", &format!("feature {i}"));
        work.commit("feature work");
    }
    let feature = work.head();
    work.git(&["checkout", "-q", "main"]);
    for i in 0..6 {
        work.write("services/worker/src/main.rs", &format!("main {i}"));
        work.commit("main moves on");
    }
    work.git(&["push", "-q", "origin", "main", "feature"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1", "--single-branch", "-b", "feature"]);
    let run = detect(checkout.path())
        .event(
            "push",
            push_event("refs/heads/feature", ZERO, &feature, false),
        )
        .args(&[
            "--filters",
            MONOREPO_FILTERS,
            "--list-files=json",
            "--initial-fetch-depth=1",
        ])
        .run()
        .success();
    // shared changed on the branch, so api and worker depend on it; main's worker change is
    // not part of what this branch changes.
    assert_eq!(changed(&run), ["shared", "api", "worker"]);
    assert_eq!(run.files("worker"), ["crates/shared/src/lib.rs"]);
    assert_eq!(run.output("base-source"), "default-branch");
    assert!(
        run.stderr.contains("first push of `feature`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--deepen=1"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--deepen=2"),
        "deepening doubles: {}",
        run.stderr
    );
}

#[test]
fn force_push_offers_previous_tip_and_base_branch_comparisons() {
    let (origin, work) = monorepo();
    work.git(&["checkout", "-q", "-b", "feature"]);
    work.write("services/api/src/main.rs", "old attempt");
    let old_tip = work.commit("first attempt");
    work.git(&["push", "-q", "origin", "feature"]);
    work.git(&["reset", "-q", "--hard", "main"]);
    work.write("services/worker/src/main.rs", "new attempt");
    let new_tip = work.commit("second attempt");
    work.git(&["push", "-q", "--force", "origin", "feature"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1", "-b", "feature"]);
    let event = push_event("refs/heads/feature", &old_tip, &new_tip, true);

    let previous_tip = detect(checkout.path())
        .event("push", event.clone())
        .args(&["--filters", MONOREPO_FILTERS])
        .run()
        .success();
    assert_eq!(changed(&previous_tip), ["api", "worker"]);
    assert!(
        previous_tip.stderr.contains("force-push: base-branch"),
        "{}",
        previous_tip.stderr
    );

    let base_branch = detect(checkout.path())
        .event("push", event)
        .args(&["--filters", MONOREPO_FILTERS, "--force-push=base-branch"])
        .run()
        .success();
    assert_eq!(changed(&base_branch), ["worker"]);
}

#[test]
fn deleted_ref_reports_no_changes_with_a_notice() {
    let (_origin, work) = monorepo();
    let run = detect(work.path())
        .event(
            "push",
            push_event("refs/heads/gone", &work.head(), ZERO, false),
        )
        .args(&["--filters", MONOREPO_FILTERS])
        .run()
        .success();
    assert!(changed(&run).is_empty());
    assert_eq!(run.output("api"), "false");
    assert_eq!(run.json("matrix"), json!({"include": []}));
    assert!(run.stderr.contains("was deleted"), "{}", run.stderr);
}

#[test]
fn pull_request_uses_the_merge_base_with_a_shallow_checkout() {
    let (origin, work) = monorepo();
    work.git(&["checkout", "-q", "-b", "feature"]);
    work.write("services/api/src/main.rs", "pr");
    let head = work.commit("pr change");
    work.git(&["checkout", "-q", "main"]);
    work.write("services/worker/src/main.rs", "main moved");
    let base = work.commit("main moved");
    work.git(&["push", "-q", "origin", "main", "feature"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1"]);
    for event in ["pull_request", "pull_request_target"] {
        let run = detect(checkout.path())
            .event(
                event,
                json!({
                    "action": "synchronize",
                    "pull_request": {"number": 7, "changed_files": 1,
                        "base": {"sha": base, "ref": "main"},
                        "head": {"sha": head, "ref": "feature"}},
                    "repository": {"default_branch": "main"},
                }),
            )
            .args(&["--filters", MONOREPO_FILTERS])
            .run()
            .success();
        assert_eq!(changed(&run), ["api"], "{event}: {}", run.stderr);
    }
}

#[test]
fn merge_group_compares_the_queue_commit_with_its_base() {
    let (origin, work) = monorepo();
    let base = work.head();
    work.git(&["checkout", "-q", "-b", "gh-readonly-queue/main/pr-1"]);
    work.write("frontend/src/App.tsx", "queued");
    let head = work.commit("queued PR");
    work.git(&["push", "-q", "origin", "gh-readonly-queue/main/pr-1"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1"]);
    let run = detect(checkout.path())
        .event(
            "merge_group",
            json!({"action": "checks_requested", "merge_group": {"base_sha": base, "head_sha": head,
                "base_ref": "refs/heads/main", "head_ref": "refs/heads/gh-readonly-queue/main/pr-1"}}),
        )
        .args(&["--filters", MONOREPO_FILTERS])
        .run()
        .success();
    assert_eq!(changed(&run), ["frontend"]);
}

#[test]
fn tag_push_is_compared_with_the_previous_matching_tag() {
    let (origin, work) = monorepo();
    work.git(&["tag", "v1.9.0"]);
    work.write("services/worker/src/main.rs", "2");
    work.commit("worker");
    work.git(&["tag", "other-1"]);
    work.write("services/api/src/main.rs", "2");
    let tagged = work.commit("api");
    work.git(&["tag", "-a", "-m", "release", "v1.10.0"]);
    work.git(&["push", "-q", "origin", "main", "--tags"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1"]);
    let event = push_event("refs/tags/v1.10.0", ZERO, &tagged, false);
    let run = detect(checkout.path())
        .event("push", event.clone())
        .args(&["--filters", MONOREPO_FILTERS, "--tag-pattern=v*"])
        .run()
        .success();
    assert_eq!(
        changed(&run),
        ["api", "worker"],
        "v1.9.0..v1.10.0: {}",
        run.stderr
    );

    let first = detect(checkout.path())
        .event("push", event)
        .args(&["--filters", MONOREPO_FILTERS, "--tag-pattern=release-*"])
        .run()
        .success();
    assert_eq!(
        changed(&first),
        ["shared", "api", "worker", "frontend", "docs"]
    );
    assert_eq!(first.output("base-source"), "none");
    assert!(
        first.stderr.contains("every file counts as added"),
        "{}",
        first.stderr
    );
}

#[test]
fn previous_tag_is_found_by_ancestry_not_version_order_in_a_shallow_clone() {
    let (origin, work) = monorepo();
    work.git(&["tag", "v1.0.0"]);
    // A higher version tagged on another line of history: not an ancestor of the new tag.
    work.git(&["checkout", "-q", "-b", "next"]);
    work.write("frontend/src/App.tsx", "next");
    work.commit("next");
    work.git(&["tag", "v2.0.0"]);
    work.git(&["checkout", "-q", "main"]);
    work.write("services/api/src/main.rs", "2");
    work.commit("api");
    work.git(&["tag", "-a", "-m", "1.5", "v1.5.0"]);
    for i in 0..6 {
        work.write("services/worker/src/main.rs", &format!("{i}"));
        work.commit("worker");
    }
    work.git(&["tag", "-a", "-m", "3.0", "v3.0.0"]);
    let tagged = work.head();
    // A lightweight tag that does not match the pattern sits nearer.
    work.git(&["tag", "nightly", "HEAD~1"]);
    work.git(&["push", "-q", "origin", "main", "next", "--tags"]);
    // actions/checkout of a tag: depth 1, no other tags.
    let checkout = GitRepo::clone_from(&origin, &["--depth=1", "--no-tags", "-b", "v3.0.0"]);
    let event = push_event("refs/tags/v3.0.0", ZERO, &tagged, false);
    let run = detect(checkout.path())
        .event("push", event.clone())
        .args(&["--filters", MONOREPO_FILTERS, "--tag-pattern=v*"])
        .args(&["--initial-fetch-depth=1", "--list-files=json"])
        .run()
        .success();
    assert_eq!(changed(&run), ["worker"], "v1.5.0..v3.0.0: {}", run.stderr);
    assert_eq!(run.output("base"), work.rev("v1.5.0"));
    assert_eq!(run.output("base-source"), "previous-tag");
    assert!(run.stderr.contains("--deepen"), "{}", run.stderr);

    // Every tag counts with `*`: the nearest is the lightweight `nightly`.
    let nearest = detect(checkout.path())
        .event("push", event.clone())
        .args(&["--filters", MONOREPO_FILTERS])
        .run()
        .success();
    assert_eq!(changed(&nearest), ["worker"]);
    assert_eq!(nearest.output("base"), work.rev("HEAD~1"));

    // A capped, non-unshallowing search fails rather than guessing.
    let fresh = GitRepo::clone_from(&origin, &["--depth=1", "--no-tags", "-b", "v3.0.0"]);
    let capped = detect(fresh.path())
        .event("push", event)
        .args(&["--filters", MONOREPO_FILTERS, "--tag-pattern=v*"])
        .args(&[
            "--initial-fetch-depth=1",
            "--max-fetch-depth=2",
            "--unshallow=false",
        ])
        .run();
    assert_eq!(capped.code, Some(3), "{}", capped.stderr);
    assert!(
        capped.stderr.contains("no tag matching `v*` is reachable"),
        "{}",
        capped.stderr
    );
}

#[test]
fn previous_tag_on_a_maintenance_branch_is_its_own_line_in_a_full_clone() {
    let (_origin, work) = monorepo();
    work.git(&["tag", "v1.0.0"]);
    work.write("services/api/src/main.rs", "2");
    work.commit("api");
    work.git(&["tag", "v1.1.0"]);
    // The hotfix branches off v1.0.0 after v1.1.0 exists; its previous release is v1.0.0.
    work.git(&["checkout", "-q", "-b", "hotfix", "v1.0.0"]);
    work.write("services/worker/src/main.rs", "fix");
    let fixed = work.commit("fix");
    work.git(&["tag", "v1.0.1"]);
    let run = detect(work.path())
        .event("push", push_event("refs/tags/v1.0.1", ZERO, &fixed, false))
        .args(&["--filters", MONOREPO_FILTERS, "--tag-pattern=v*"])
        .run()
        .success();
    assert_eq!(changed(&run), ["worker"], "v1.0.0..v1.0.1: {}", run.stderr);
    assert_eq!(run.output("base"), work.rev("v1.0.0"));
}

/// A directory holding a `git` that fails its first `times` fetches the way git does when a
/// concurrent fetch rewrote `.git/shallow` under it, then runs the real git. A scripted fake:
/// git reads and rechecks the shallow file inside one fetch with no hook in between, so the
/// real race cannot be produced on demand.
fn git_losing_shallow_races(times: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .expect("sh runs")
            .stdout,
    )
    .expect("utf-8 path");
    let counter = dir.path().join("races");
    let script = dir.path().join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             for arg in \"$@\"; do\n\
               if [ \"$arg\" = fetch ]; then\n\
                 count=$(cat '{counter}' 2>/dev/null || echo 0)\n\
                 if [ \"$count\" -lt {times} ]; then\n\
                   echo $((count + 1)) > '{counter}'\n\
                   echo 'fatal: shallow file has changed since we read it' >&2\n\
                   exit 128\n\
                 fi\n\
               fi\n\
             done\n\
             exec '{real}' \"$@\"\n",
            counter = counter.display(),
            real = real.trim(),
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    dir
}

fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_owned()];
    let env = runner_protocol::Env::from_process();
    paths.extend(std::env::split_paths(env.get("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("PATH")
}

#[test]
fn a_fetch_that_loses_the_shallow_file_race_is_retried_then_reported() {
    let (origin, work) = monorepo();
    let before = work.head();
    work.write("services/api/src/main.rs", "2");
    work.commit("api");
    work.write("services/worker/src/main.rs", "2");
    let after = work.commit("worker");
    work.git(&["push", "-q", "origin", "main"]);
    let event = push_event("refs/heads/main", &before, &after, false);

    let checkout = GitRepo::clone_from(&origin, &["--depth=1"]);
    let racing_once = git_losing_shallow_races(1);
    let run = detect(checkout.path())
        .env("PATH", path_with(racing_once.path()))
        .event("push", event.clone())
        .args(&["--filters", MONOREPO_FILTERS])
        .run()
        .success();
    assert_eq!(changed(&run), ["api", "worker"]);
    assert!(run.stderr.contains("retrying (2/4)"), "{}", run.stderr);

    // A fresh checkout again lacks `before`, so its fetch races every time.
    let checkout = GitRepo::clone_from(&origin, &["--depth=1"]);
    let always_racing = git_losing_shallow_races(100);
    let failed = detect(checkout.path())
        .env("PATH", path_with(always_racing.path()))
        .event("push", event)
        .args(&["--filters", MONOREPO_FILTERS])
        .run();
    assert_eq!(failed.code, Some(3), "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("failed 4 times because another git process changed `.git/shallow`"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("one after another"),
        "{}",
        failed.stderr
    );
}

#[test]
fn dispatch_uses_the_default_branch_and_schedule_without_one_asks_for_base() {
    let (origin, work) = monorepo();
    work.git(&["checkout", "-q", "-b", "feature"]);
    work.write("frontend/src/App.tsx", "x");
    let head = work.commit("frontend");
    work.git(&["push", "-q", "origin", "feature"]);
    let checkout = GitRepo::clone_from(&origin, &["-b", "feature"]);
    let run = detect(checkout.path())
        .event(
            "workflow_dispatch",
            json!({"inputs": {}, "ref": "refs/heads/feature",
            "repository": {"default_branch": "main"}}),
        )
        .env("GITHUB_SHA", &head)
        .args(&["--filters", MONOREPO_FILTERS])
        .run()
        .success();
    assert_eq!(changed(&run), ["frontend"]);
    assert!(
        run.stderr
            .contains("comparing with the default branch `main`"),
        "{}",
        run.stderr
    );

    let schedule = detect(checkout.path())
        .event("schedule", json!({"schedule": "0 0 * * *"}))
        .args(&["--filters", MONOREPO_FILTERS])
        .run();
    assert_eq!(schedule.code, Some(2), "{}", schedule.stderr);
    assert!(
        schedule.stderr.contains("set `base`"),
        "{}",
        schedule.stderr
    );

    let with_base = detect(checkout.path())
        .event("schedule", json!({"schedule": "0 0 * * *"}))
        .args(&["--filters", MONOREPO_FILTERS, "--base=main"])
        .run()
        .success();
    assert_eq!(changed(&with_base), ["frontend"]);
}

#[test]
fn base_head_lists_staged_and_unstaged_changes_and_optionally_untracked_files() {
    let (_origin, work) = monorepo();
    work.write("services/api/src/main.rs", "unstaged");
    work.write("services/worker/src/main.rs", "staged");
    work.git(&["add", "services/worker/src/main.rs"]);
    work.write("frontend/src/new.tsx", "untracked");
    let run = detect(work.path())
        .args(&["--filters", MONOREPO_FILTERS, "--base=HEAD"])
        .run()
        .success();
    assert_eq!(changed(&run), ["api", "worker"]);
    let run = detect(work.path())
        .args(&[
            "--filters",
            MONOREPO_FILTERS,
            "--base=HEAD",
            "--include-untracked",
        ])
        .run()
        .success();
    assert_eq!(changed(&run), ["api", "worker", "frontend"]);
}

#[test]
fn renames_split_into_deleted_and_added_or_are_detected_with_the_previous_path() {
    let (_origin, work) = monorepo();
    let before = work.head();
    work.git(&[
        "mv",
        "services/api/src/main.rs",
        "services/worker/src/moved.rs",
    ]);
    work.commit("move");
    let filters = "api: services/api/**\nworker: services/worker/**\n\
                   gone:\n  - deleted: services/api/**\nmoved:\n  - renamed: services/**\n";
    let split = detect(work.path())
        .args(&["--filters", filters, "--base", &before, "--list-files=json"])
        .run()
        .success();
    assert_eq!(changed(&split), ["api", "worker", "gone"]);
    assert_eq!(split.files("api"), ["services/api/src/main.rs"]);

    let detected = detect(work.path())
        .args(&[
            "--filters",
            filters,
            "--base",
            &before,
            "--list-files=json",
            "--renames=detect",
        ])
        .run()
        .success();
    assert_eq!(changed(&detected), ["api", "worker", "moved"]);
    assert_eq!(detected.files("api"), ["services/worker/src/moved.rs"]);
}

#[test]
fn hostile_file_names_round_trip_through_every_list_format() {
    use std::os::unix::ffi::OsStrExt as _;
    let (_origin, work) = monorepo();
    let before = work.head();
    let names: [&[u8]; 6] = [
        b"odd/with space.txt",
        "odd/ünïcode-файл.txt".as_bytes(),
        b"odd/new\nline $(touch pwned).txt",
        b"odd/it's \"quoted\" `id`.txt",
        b"odd/not-utf8-\xff.txt",
        b"odd/-leading-dash",
    ];
    for name in names {
        work.write(std::ffi::OsStr::from_bytes(name), "x");
    }
    work.commit("odd names");
    let files_dir = tempfile::tempdir().expect("tempdir");
    for format in ["shell", "escape"] {
        let run = detect(work.path())
            // `odd/*`, not `odd/**`: picomatch's `**` stops at a line break, `*` does not.
            .args(&["--filters", "odd: odd/*", "--base", &before])
            .args(&[format!("--list-files={format}")])
            .args(&[
                std::ffi::OsStr::new("--files-dir"),
                files_dir.path().as_os_str(),
            ])
            .run()
            .success();
        assert_eq!(run.output("odd_count"), "6");
        let script = format!(
            "cd \"$1\" && for f in {}; do printf '%s\\0' \"$f\"; done",
            run.output("odd_files")
        );
        let output = std::process::Command::new("bash")
            .args(["-c", &script, "bash", &work.path().display().to_string()])
            .output()
            .expect("bash");
        assert!(!work.path().join("pwned").exists(), "no command ran");
        let mut round_trip: Vec<&[u8]> = output
            .stdout
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .collect();
        let mut expected = names.to_vec();
        round_trip.sort();
        expected.sort();
        assert_eq!(
            round_trip,
            expected,
            "{format}: {}",
            run.output("odd_files")
        );
    }
    let raw = std::fs::read(files_dir.path().join("odd.txt")).expect("list file");
    let mut listed: Vec<&[u8]> = raw.split(|b| *b == 0).filter(|w| !w.is_empty()).collect();
    let mut expected = names.to_vec();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "exact bytes, NUL-terminated");
    let json: Vec<String> = serde_json::from_slice(
        &std::fs::read(files_dir.path().join("odd.json")).expect("json file"),
    )
    .expect("json");
    assert!(json.contains(&"odd/not-utf8-\u{fffd}.txt".to_owned()));
}

#[test]
fn configuration_errors_name_file_line_and_column() {
    let (_origin, work) = monorepo();
    work.write(
        ".github/filters.yaml",
        "api:\n  - services/api/**\nweb:\n  - add: web/**\n",
    );
    let run = detect(work.path())
        .args(&["--filters", ".github/filters.yaml", "--base=HEAD"])
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown status `add` in filter `web`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> .github/filters.yaml:4:5"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("field: web[0].add"), "{}", run.stderr);

    let missing = detect(work.path())
        .args(&["--filters", "nope.yaml", "--base=HEAD"])
        .run();
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("cannot read the filters file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn outside_a_repository_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = detect(dir.path())
        .event(
            "push",
            push_event("refs/heads/main", &"1".repeat(40), &"2".repeat(40), false),
        )
        .args(&["--filters", MONOREPO_FILTERS])
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not inside a git repository"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("actions/checkout"), "{}", run.stderr);
}

#[test]
fn deepening_stops_at_the_limit_and_then_unshallows_or_fails() {
    let (origin, work) = monorepo();
    work.git(&["checkout", "-q", "-b", "feature"]);
    for i in 0..20 {
        work.write("frontend/src/App.tsx", &format!("{i}"));
        work.commit("feature");
    }
    work.git(&["push", "-q", "origin", "feature"]);
    let checkout = GitRepo::clone_from(&origin, &["--depth=1", "-b", "feature"]);
    let capped = detect(checkout.path())
        .args(&[
            "--filters",
            MONOREPO_FILTERS,
            "--base=main",
            "--initial-fetch-depth=2",
        ])
        .args(&["--max-fetch-depth=6", "--unshallow=false"])
        .run();
    assert_eq!(capped.code, Some(3), "{}", capped.stderr);
    assert!(
        capped.stderr.contains("within 6 commits"),
        "{}",
        capped.stderr
    );
    assert!(
        capped.stderr.contains("fetch-depth: 0"),
        "{}",
        capped.stderr
    );

    let unshallowed = detect(checkout.path())
        .args(&[
            "--filters",
            MONOREPO_FILTERS,
            "--base=main",
            "--initial-fetch-depth=2",
        ])
        .args(&["--max-fetch-depth=6"])
        .run()
        .success();
    assert_eq!(changed(&unshallowed), ["frontend"]);
    assert!(
        unshallowed.stderr.contains("--unshallow"),
        "{}",
        unshallowed.stderr
    );
}

#[test]
fn dubious_ownership_is_handled_without_touching_git_config() {
    let (_origin, work) = monorepo();
    let before = work.head();
    work.write("services/api/src/main.rs", "2");
    work.commit("api");
    // Hand the repository to another user, as in a container job (tests run as root in CI).
    let status = std::process::Command::new("chown")
        .args(["-R", "12345:12345"])
        .arg(work.path())
        .status()
        .expect("chown runs");
    assert!(
        status.success(),
        "this test needs root to chown the repository to another user"
    );
    let run = detect(work.path())
        .args(&["--filters", MONOREPO_FILTERS, "--base", &before])
        .run()
        .success();
    assert_eq!(changed(&run), ["api"]);
    assert!(run.stderr.contains("dubious ownership"), "{}", run.stderr);
    let config = std::fs::read_to_string(work.path().join(".git/config")).expect("config");
    assert!(!config.contains("safe"), "{config}");
}

#[test]
fn matrix_entries_carry_filter_values_and_leave_out_matrix_false() {
    let (_origin, work) = monorepo();
    work.write("crates/shared/src/lib.rs", "changed");
    let filters = "shared:\n  paths: crates/shared/**\n  matrix: false\n\
                   api:\n  paths: services/api/**\n  depends-on: [shared]\n  matrix: {dir: services/api, port: 8080}\n\
                   web: frontend/**\n";
    let run = detect(work.path())
        .args(&["--filters", filters, "--base=HEAD"])
        .run()
        .success();
    assert_eq!(changed(&run), ["shared", "api"]);
    assert_eq!(
        run.json("matrix"),
        json!({"include": [{"filter": "api", "dir": "services/api", "port": 8080}]})
    );
    assert_eq!(
        run.json("filters"),
        json!({"shared": {"changed": true, "count": 1}, "api": {"changed": true, "count": 1},
               "web": {"changed": false, "count": 0}})
    );
    assert!(run.stderr.contains("yes (depends)"), "{}", run.stderr);
}

#[test]
fn filter_names_dorny_accepts_are_reported_without_per_filter_outputs_issue_23() {
    let (_origin, work) = monorepo();
    let before = work.head();
    work.write("services/api/src/main.rs", "2");
    work.commit("api change");
    let run = detect(work.path())
        .args(&[
            "--filters",
            "my.service: services/api/**\n2: services/**\napi: services/api/**\n",
            "--base",
            &before,
        ])
        .run()
        .success();
    assert_eq!(changed(&run), ["my.service", "2", "api"]);
    assert_eq!(run.json("filters")["my.service"]["count"], 1);
    assert!(run.outputs.get("my.service").is_none());
    assert!(run.outputs.get("2_count").is_none());
    assert_eq!(run.output("api"), "true");
    assert!(
        run.stderr
            .contains("`my.service`, `2` cannot be step output names"),
        "{}",
        run.stderr
    );
}
