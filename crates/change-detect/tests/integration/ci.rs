//! The base outside GitHub Actions (issue #23, point 2): GitLab, Buildkite and Jenkins
//! environments as those systems set them, over real git histories (a new branch with an
//! all-zero `before`, a force push, a target branch that moved on), and the log naming the
//! variable that decided.

use test_support::GitRepo;

use crate::common::{ZERO, detect};

const FILTERS: &str = "api: services/api/**\nweb: web/**\ndocs: docs/**\n";

/// origin (bare) and a clone with `main`: one seed commit, then `feature` with an api change,
/// then `main` moves on (a docs change) after `feature` forked.
struct History {
    _origin: GitRepo,
    work: GitRepo,
    fork: String,
    feature: String,
}

fn history() -> History {
    let origin = GitRepo::bare();
    let work = GitRepo::clone_from(&origin, &[]);
    work.write("services/api/main.rs", "1")
        .write("web/app.ts", "1")
        .write("docs/a.md", "1");
    let fork = work.commit("seed");
    work.git(&["push", "-q", "origin", "main"]);
    work.git(&["checkout", "-q", "-b", "feature"]);
    work.write("services/api/main.rs", "2");
    let feature = work.commit("api change");
    work.git(&["push", "-q", "origin", "feature"]);
    work.git(&["checkout", "-q", "main"]);
    work.write("docs/a.md", "2");
    work.commit("docs on main");
    work.git(&["push", "-q", "origin", "main"]);
    work.git(&["checkout", "-q", "feature"]);
    work.git(&["fetch", "-q", "origin"]);
    History {
        _origin: origin,
        work,
        fork,
        feature,
    }
}

fn changes(run: &crate::common::Run) -> Vec<String> {
    serde_json::from_value(run.json("changes")).expect("changes")
}

#[test]
fn gitlab_new_branch_with_all_zero_before_is_compared_with_the_default_branch() {
    let h = history();
    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_BEFORE_SHA", ZERO)
        .env("CI_COMMIT_SHA", &h.feature)
        .env("CI_COMMIT_BRANCH", "feature")
        .env("CI_DEFAULT_BRANCH", "main")
        .run()
        .success();
    // The docs change on main after the fork is not the branch's.
    assert_eq!(changes(&run), ["api"]);
    assert!(
        run.stderr.contains("CI_COMMIT_BEFORE_SHA is all zeros"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("base from CI_DEFAULT_BRANCH `main`"),
        "{}",
        run.stderr
    );
}

#[test]
fn gitlab_merge_request_uses_the_diff_base_and_a_push_uses_before() {
    let h = history();
    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("GITLAB_CI", "true")
        .env("CI_MERGE_REQUEST_DIFF_BASE_SHA", &h.fork)
        .env("CI_MERGE_REQUEST_IID", "12")
        .env("CI_COMMIT_SHA", &h.feature)
        .run()
        .success();
    assert_eq!(changes(&run), ["api"]);
    assert!(
        run.stderr.contains("CI_MERGE_REQUEST_DIFF_BASE_SHA"),
        "{}",
        run.stderr
    );
    assert_eq!(run.output("base"), h.fork);
    assert_eq!(run.output("base-source"), "gitlab-merge-request");

    // A force push: `before` is the rewritten tip; the comparison is between the two tips.
    h.work.write("web/app.ts", "2");
    let rewritten = h.work.commit("web change, to be rewritten");
    h.work.git(&["reset", "-q", "--hard", &h.feature]);
    h.work.write("docs/a.md", "3");
    let forced = h.work.commit("docs change instead");
    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_BEFORE_SHA", &rewritten)
        .env("CI_COMMIT_SHA", &forced)
        .run()
        .success();
    // web was changed by the dropped commit and is back as it was: both differ from the tip.
    assert_eq!(changes(&run), ["web", "docs"]);
    assert_eq!(run.output("base-source"), "gitlab-before");
    assert!(
        run.stderr.contains("base from GitLab CI_COMMIT_BEFORE_SHA"),
        "{}",
        run.stderr
    );
}

#[test]
fn buildkite_pull_request_is_compared_with_its_base_branch_at_the_merge_base() {
    let h = history();
    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("BUILDKITE", "true")
        .env("BUILDKITE_PULL_REQUEST", "5")
        .env("BUILDKITE_PULL_REQUEST_BASE_BRANCH", "main")
        .env("BUILDKITE_BRANCH", "feature")
        .env("BUILDKITE_COMMIT", &h.feature)
        .run()
        .success();
    assert_eq!(changes(&run), ["api"]);
    assert!(
        run.stderr
            .contains("BUILDKITE_PULL_REQUEST_BASE_BRANCH `main`"),
        "{}",
        run.stderr
    );
    assert_eq!(run.output("base"), h.fork, "the merge base");
    assert_eq!(run.output("base-source"), "buildkite-pull-request");
}

#[test]
fn jenkins_uses_the_change_target_or_the_last_successful_commit() {
    let h = history();
    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("JENKINS_URL", "http://jenkins.invalid/")
        .env("CHANGE_TARGET", "main")
        .env("CHANGE_ID", "9")
        .env("GIT_COMMIT", &h.feature)
        .run()
        .success();
    assert_eq!(changes(&run), ["api"]);
    assert!(
        run.stderr.contains("Jenkins CHANGE_TARGET `main`"),
        "{}",
        run.stderr
    );

    h.work.git(&["checkout", "-q", "main"]);
    let main = h.work.head();
    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("JENKINS_URL", "http://jenkins.invalid/")
        .env("GIT_PREVIOUS_SUCCESSFUL_COMMIT", &h.fork)
        .env("GIT_PREVIOUS_COMMIT", &main)
        .env("GIT_COMMIT", &main)
        .run()
        .success();
    assert_eq!(changes(&run), ["docs"]);
    assert!(
        run.stderr.contains("GIT_PREVIOUS_SUCCESSFUL_COMMIT"),
        "{}",
        run.stderr
    );

    let run = detect(h.work.path())
        .args(&["--filters", FILTERS])
        .env("JENKINS_URL", "http://jenkins.invalid/")
        .run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--base"), "{}", run.stderr);
}
