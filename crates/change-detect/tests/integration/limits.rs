//! Hostile filters files are refused fast, with their location (issue #25, point 10).

use std::time::{Duration, Instant};

use test_support::GitRepo;

use crate::common::detect;

fn repo() -> (GitRepo, String) {
    let work = GitRepo::init();
    work.write("a.txt", "1");
    let base = work.commit("one");
    work.write("a.txt", "2");
    work.commit("two");
    (work, base)
}

#[test]
fn deeply_nested_filters_are_refused_fast_with_file_line_and_column() {
    let (work, base) = repo();
    work.write(
        "filters.yaml",
        &format!("api:\n  - {}\n", "[".repeat(200_000)),
    );
    let started = Instant::now();
    let run = detect(work.path())
        .args(&["--filters", "filters.yaml", "--base", &base])
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("nest collections more than 64 deep"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("filters.yaml:2:"), "{}", run.stderr);
}

#[test]
fn filters_files_over_one_mebibyte_are_refused_before_they_are_read() {
    let (work, base) = repo();
    let mut text = String::new();
    for number in 0..120_000 {
        text.push_str(&format!("f{number}: services/svc-{number}/**\n"));
    }
    assert!(text.len() > 3_000_000);
    work.write("filters.yaml", &text);
    let run = detect(work.path())
        .args(&["--filters", "filters.yaml", "--base", &base])
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("more than the limit of 1048576"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("filters.yaml"), "{}", run.stderr);
}
