//! `base: last-success` (issue #23, point 2) against a loopback server answering GitHub's
//! documented "list workflow runs for a workflow" responses, over a real git history:
//! seed, api change (the last successful run), docs change (a failed run), web change (this
//! push). The event alone compares the push (web); the last success brings docs back in.

use serde_json::{Value, json};
use test_support::http_server::{HttpServer, Reply, Request};

use crate::common::{GoodHistory, detect, good_history, push_event};

const FILTERS: &str = "api: services/api/**\nweb: web/**\ndocs: docs/**\n";
const CURRENT_RUN: u64 = 777;

fn run_entry(id: u64, sha: &str) -> Value {
    json!({
        "id": id, "run_number": id / 10, "head_sha": sha, "head_branch": "main",
        "status": "completed", "conclusion": "success", "event": "push",
        "html_url": format!("https://github.com/octo/monorepo/actions/runs/{id}"),
    })
}

fn serve(reply: impl Fn() -> Reply + Send + Sync + 'static) -> HttpServer {
    HttpServer::start(move |request: &Request| {
        let (path, _) = request.path.split_once('?').unwrap_or((&request.path, ""));
        if path != "/repos/octo/monorepo/actions/workflows/ci.yml/runs" {
            return Reply::github_error(404, "Not Found");
        }
        reply()
    })
}

fn last_success(h: &GoodHistory, server: &HttpServer) -> crate::common::Run {
    detect(h.work.path())
        .event(
            "push",
            push_event("refs/heads/main", &h.failed, &h.pushed, false),
        )
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_API_URL", server.base_url())
        .env(
            "GITHUB_WORKFLOW_REF",
            "octo/monorepo/.github/workflows/ci.yml@refs/heads/main",
        )
        .env("GITHUB_RUN_ID", CURRENT_RUN.to_string())
        .args(&[
            "--filters",
            FILTERS,
            "--base",
            "last-success",
            "--token",
            "t0ken",
        ])
        .run()
}

fn changes(run: &crate::common::Run) -> Vec<String> {
    serde_json::from_value(run.json("changes")).expect("changes")
}

#[test]
fn last_success_compares_with_the_last_successful_run_of_the_workflow_on_the_branch() {
    let h = good_history();
    let succeeded = h.good.clone();
    let pushed = h.pushed.clone();
    let server = serve(move || {
        // This run first (it may already be listed), then the last good one.
        let body = json!({"total_count": 2, "workflow_runs": [
            run_entry(CURRENT_RUN, &pushed), run_entry(555, &succeeded),
        ]});
        Reply::json(200, &body.to_string())
    });
    let run = last_success(&h, &server).success();
    assert_eq!(changes(&run), ["web", "docs"]);
    assert_eq!(run.output("base"), h.good);
    assert_eq!(run.output("base-source"), "last-success");
    assert!(
        run.stderr
            .contains("base from the last successful run of `ci.yml` on `main`: run #55"),
        "{}",
        run.stderr
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let query = requests[0]
        .path
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    for parameter in ["branch=main", "status=success"] {
        assert!(query.split('&').any(|p| p == parameter), "{query}");
    }
    assert!(
        requests[0]
            .header("authorization")
            .is_some_and(|a| a.ends_with("t0ken")),
        "the token is sent"
    );
    assert!(!run.stderr.contains("t0ken"), "never printed");
}

#[test]
fn last_success_without_a_successful_run_falls_back_to_the_event_with_a_notice() {
    let h = good_history();
    let server = serve(|| Reply::json(200, r#"{"total_count": 0, "workflow_runs": []}"#));
    let run = last_success(&h, &server).success();
    assert_eq!(changes(&run), ["web"], "the push alone");
    assert_eq!(
        run.output("base-source"),
        "previous-tip",
        "the push's own base"
    );
    assert!(
        run.stderr
            .contains("found no successful run of `ci.yml` on `main`"),
        "{}",
        run.stderr
    );
}

#[test]
fn last_success_with_a_refused_token_names_the_permission() {
    let h = good_history();
    let server = serve(|| Reply::github_error(403, "Resource not accessible by integration"));
    let run = last_success(&h, &server);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Resource not accessible by integration"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("actions: read"), "{}", run.stderr);
}
