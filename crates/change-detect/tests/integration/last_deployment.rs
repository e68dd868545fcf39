//! `base: last-deployment:<environment>` (issue #23, point 2) against a loopback server answering
//! GitHub's documented "list deployments" and "list deployment statuses" responses, over a real
//! git history: seed, api change (deployed to production, success), docs change (deployed, the
//! deployment failed), web change (this push). The event alone compares the push (web); the
//! live production commit brings docs back in.

use std::sync::Arc;

use serde_json::{Value, json};
use test_support::http_server::{HttpServer, Reply, Request};

use crate::common::{GoodHistory, detect, good_history, push_event};

const FILTERS: &str = "api: services/api/**\nweb: web/**\ndocs: docs/**\n";

fn deployment(id: u64, sha: &str) -> Value {
    json!({
        "id": id, "sha": sha, "ref": "main", "task": "deploy", "environment": "production",
        "created_at": "2026-12-01T10:00:00Z",
        "url": format!("https://api.github.com/repos/octo/monorepo/deployments/{id}"),
    })
}

/// Answers the two routes from `deployments` (newest first) and `states` (each id's newest
/// status); anything else is a 404, as GitHub answers an unknown route.
fn serve(deployments: Vec<Value>, states: Vec<(u64, &'static str)>) -> HttpServer {
    let deployments = Arc::new(deployments);
    HttpServer::start(move |request: &Request| {
        let (path, _) = request.path.split_once('?').unwrap_or((&request.path, ""));
        if path == "/repos/octo/monorepo/deployments" {
            return Reply::json(200, &Value::Array(deployments.to_vec()).to_string());
        }
        for (id, state) in &states {
            if path == format!("/repos/octo/monorepo/deployments/{id}/statuses") {
                let body = json!([{"id": id * 10, "state": state, "environment": "production"}]);
                return Reply::json(200, &body.to_string());
            }
        }
        Reply::github_error(404, "Not Found")
    })
}

fn last_deployment(h: &GoodHistory, server: &HttpServer, environment: &str) -> crate::common::Run {
    detect(h.work.path())
        .event(
            "push",
            push_event("refs/heads/main", &h.failed, &h.pushed, false),
        )
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_API_URL", server.base_url())
        .args(&[
            "--filters",
            FILTERS,
            "--base",
            &format!("last-deployment:{environment}"),
            "--token",
            "t0ken",
        ])
        .run()
}

fn changes(run: &crate::common::Run) -> Vec<String> {
    serde_json::from_value(run.json("changes")).expect("changes")
}

#[test]
fn last_deployment_compares_with_the_newest_successful_deployment_to_the_environment() {
    let h = good_history();
    let server = serve(
        vec![deployment(3, &h.failed), deployment(2, &h.good)],
        vec![(3, "failure"), (2, "success")],
    );
    let run = last_deployment(&h, &server, "production").success();
    assert_eq!(changes(&run), ["web", "docs"], "{}", run.stderr);
    assert_eq!(run.output("base"), h.good);
    assert_eq!(run.output("base-source"), "last-deployment");
    assert!(
        run.stderr
            .contains("base from the last successful deployment to `production`: deployment 2"),
        "{}",
        run.stderr
    );
    let requests = server.requests();
    let query = requests[0]
        .path
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    assert!(
        query.split('&').any(|p| p == "environment=production"),
        "{query}"
    );
    assert!(!run.stderr.contains("t0ken"), "never printed");
}

#[test]
fn last_deployment_without_a_success_falls_back_to_the_event_with_a_notice() {
    let h = good_history();
    let server = serve(vec![deployment(3, &h.failed)], vec![(3, "error")]);
    let run = last_deployment(&h, &server, "production").success();
    assert_eq!(changes(&run), ["web"], "the push alone");
    assert_eq!(run.output("base-source"), "previous-tip");
    assert!(
        run.stderr
            .contains("found no successful deployment among the newest 30"),
        "{}",
        run.stderr
    );
}

#[test]
fn last_deployment_with_a_refused_token_names_the_permission_and_an_empty_name_is_a_usage_error() {
    let h = good_history();
    let server = HttpServer::start(|_: &Request| {
        Reply::github_error(403, "Resource not accessible by integration")
    });
    let run = last_deployment(&h, &server, "production");
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("deployments: read"), "{}", run.stderr);

    let run = last_deployment(&h, &server, "");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("an environment name after"),
        "{}",
        run.stderr
    );
}
