//! File lists larger than GitHub accepts as step outputs (1 MB per job) go to files, streamed,
//! with a warning, instead of into outputs that would take memory and be refused anyway
//! (issue #23: 1.47 GB peak RSS listing 100,000 files for 200 filters).

use std::io::Write as _;
use std::process::Stdio;

use test_support::GitRepo;

use crate::common::detect;

/// A repository whose last commit adds `count` files (one shared blob, written straight into
/// the index: no work tree needed).
fn many_files(count: usize) -> (GitRepo, String) {
    let work = GitRepo::init();
    work.write("seed", "x");
    let base = work.commit("seed");
    let blob = work.git(&["hash-object", "-w", "seed"]);
    let mut index = test_support::git_repo::git_command(work.path())
        .args(["update-index", "--index-info"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git update-index");
    let mut stdin = index.stdin.take().expect("stdin");
    for number in 0..count {
        writeln!(
            stdin,
            "100644 {} 0\tservices/svc-{:02}/src/module/file-{number:06}.rs",
            blob.trim(),
            number % 10
        )
        .expect("index entry");
    }
    drop(stdin);
    assert!(index.wait().expect("git").success());
    work.git(&["commit", "-q", "-m", "many"]);
    (work, base)
}

#[test]
fn lists_over_githubs_output_limit_go_to_files_with_a_warning_issue_23() {
    // 12,000 names of 40 bytes: the JSON lists take about 2 MB as GitHub counts outputs.
    let (work, base) = many_files(12_000);
    let runner_temp = tempfile::tempdir().expect("tempdir");
    let run = detect(work.path())
        .args(&[
            "--filters",
            "all: '**'\nfew: services/svc-01/**\n",
            "--base",
            &base,
            "--list-files=json",
        ])
        .env("RUNNER_TEMP", runner_temp.path())
        .run()
        .success();
    assert_eq!(run.output("all_count"), "12000");
    assert!(
        run.outputs.get("all_files").is_none(),
        "no list in the outputs"
    );
    assert!(
        run.outputs.get("few_files").is_none(),
        "all lists move together"
    );
    let filters = run.json("filters");
    assert_eq!(filters["all"]["count"], 12000);
    assert!(filters["all"].get("files").is_none());
    assert!(
        run.stderr
            .contains("more than the 1 MB GitHub accepts per job"),
        "{}",
        run.stderr
    );
    let dirs: Vec<_> = std::fs::read_dir(runner_temp.path())
        .expect("RUNNER_TEMP")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(dirs.len(), 1, "one list directory: {dirs:?}");
    assert!(
        run.stderr.contains(&dirs[0].display().to_string()),
        "the warning names it"
    );
    let listed: Vec<String> =
        serde_json::from_slice(&std::fs::read(dirs[0].join("all.json")).expect("all.json"))
            .expect("json list");
    assert_eq!(listed.len(), 12_000);
    assert_eq!(listed[0], "services/svc-00/src/module/file-000000.rs");
    let raw = std::fs::read(dirs[0].join("few.txt")).expect("few.txt");
    assert_eq!(
        raw.split(|b| *b == 0).filter(|n| !n.is_empty()).count(),
        1_200
    );
}

#[test]
fn lists_within_the_limit_stay_in_the_outputs() {
    let (work, base) = many_files(2_000);
    let run = detect(work.path())
        .args(&[
            "--filters",
            "all: '**'\n",
            "--base",
            &base,
            "--list-files=csv",
        ])
        .run()
        .success();
    assert_eq!(run.output("all_files").split(',').count(), 2_000);
    assert_eq!(
        run.json("filters")["all"]["files"].as_array().map(Vec::len),
        Some(2_000)
    );
    assert!(!run.stderr.contains("1 MB"), "{}", run.stderr);
}
