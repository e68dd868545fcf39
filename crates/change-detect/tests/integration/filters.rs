//! Filters-file errors through the binary: under GitHub Actions the annotation carries the
//! file, line and column of the node, also for content that came through a merge key.

use test_support::GitRepo;

use crate::common::detect;

#[test]
fn an_error_in_merged_content_is_annotated_where_the_anchor_wrote_it() {
    let work = GitRepo::init();
    work.write("a.txt", "1");
    let base = work.commit("one");
    work.write(
        "filters.yaml",
        "common: &c {added: x/**}\napi:\n  paths: y/**\n  <<: *c\n",
    );
    let run = detect(work.path())
        .env("GITHUB_ACTIONS", "true")
        .args(&["--filters", "filters.yaml", "--base", &base])
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "::error file=filters.yaml,line=1,col=13::unknown key `added` in filter `api`"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_duplicate_filter_is_refused_where_it_is_written_again() {
    let work = GitRepo::init();
    work.write("a.txt", "1");
    let base = work.commit("one");
    work.write("filters.yaml", "api: x/**\nweb: y/**\napi: z/**\n");
    let run = detect(work.path())
        .args(&["--filters", "filters.yaml", "--base", &base])
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the filters are not valid YAML: duplicate entry with key \"api\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> filters.yaml:3:1"),
        "{}",
        run.stderr
    );
}
