//! The REST path against a local server speaking GitHub's documented "list pull request
//! files" responses: 100 entries per page and `Link` headers, and the 3000-file cap.

use serde_json::{Value, json};
use test_support::GitRepo;
use test_support::http_server::{HttpServer, Reply, Request};

use crate::common::{MONOREPO_FILTERS, detect};

/// One entry as GitHub documents it.
fn entry(filename: &str, status: &str, previous: Option<&str>) -> Value {
    let mut entry = json!({
        "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
        "filename": filename,
        "status": status,
        "additions": 1, "deletions": 0, "changes": 1,
        "blob_url": format!("https://github.com/octo/monorepo/blob/abc/{filename}"),
        "raw_url": format!("https://github.com/octo/monorepo/raw/abc/{filename}"),
        "contents_url": format!("https://api.github.com/repos/octo/monorepo/contents/{filename}?ref=abc"),
        "patch": "@@ -1 +1 @@",
    });
    if let Some(previous) = previous {
        entry["previous_filename"] = previous.into();
    }
    entry
}

/// Serves `files` for pull request 42, `per_page` entries a page, with GitHub's `Link` header.
fn serve(files: Vec<Value>) -> HttpServer {
    HttpServer::start(move |request: &Request| {
        let address = request.local_addr;
        let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
        if path != "/repos/octo/monorepo/pulls/42/files" {
            return Reply::github_error(404, "Not Found");
        }
        let parameter = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse::<usize>().ok())
        };
        let per_page = parameter("per_page").unwrap_or(30).min(100);
        let page = parameter("page").unwrap_or(1);
        let pages = files.len().div_ceil(per_page).max(1);
        let body: Vec<Value> = files
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect();
        let link = |page: usize, rel: &str| {
            format!(
                "<http://{address}/repos/octo/monorepo/pulls/42/files?per_page={per_page}&page={page}>; rel=\"{rel}\""
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < pages {
            links.push(link(page + 1, "next"));
            links.push(link(pages, "last"));
        }
        if page > 1 {
            links.push(link(1, "first"));
        }
        let mut response = Reply::json(200, &Value::Array(body).to_string());
        if !links.is_empty() {
            response = response.with_header("link", links.join(", "));
        }
        response
    })
}

fn pull_request_event(changed_files: u64, base: &str, head: &str) -> Value {
    json!({
        "action": "synchronize",
        "number": 42,
        "pull_request": {"number": 42, "changed_files": changed_files,
            "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "feature"}},
        "repository": {"full_name": "octo/monorepo", "default_branch": "main"},
    })
}

#[test]
fn lists_pull_request_files_through_every_page_without_a_checkout() {
    let mut files: Vec<Value> = (0..248)
        .map(|i| entry(&format!("frontend/src/c{i}.tsx"), "modified", None))
        .collect();
    files.insert(
        120,
        entry(
            "services/worker/src/moved.rs",
            "renamed",
            Some("services/api/src/old.rs"),
        ),
    );
    files.push(entry("docs/old.md", "removed", None));
    let server = serve(files);
    let empty = tempfile::tempdir().expect("tempdir");
    let run = detect(empty.path())
        .event(
            "pull_request",
            pull_request_event(250, &"1".repeat(40), &"2".repeat(40)),
        )
        .env("GITHUB_API_URL", server.base_url())
        .args(&[
            "--filters",
            MONOREPO_FILTERS,
            "--token",
            "ghs_test_token",
            "--list-files=json",
        ])
        .run()
        .success();
    assert_eq!(
        run.json("changes"),
        json!(["api", "worker", "frontend", "docs"]),
        "{}",
        run.stderr
    );
    // The rename is split like dorny: the old path deleted, the new path added.
    assert_eq!(run.files("api"), ["services/api/src/old.rs"]);
    assert_eq!(run.files("worker"), ["services/worker/src/moved.rs"]);
    assert_eq!(run.output("frontend_count"), "248");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "three pages of 100");
    assert!(
        requests[0].path.ends_with("/pulls/42/files?per_page=100"),
        "{:?}",
        requests[0]
    );
    assert!(requests[2].path.ends_with("page=3"), "{:?}", requests[2]);
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer ghs_test_token")
        );
    }
    assert!(
        !run.stderr.contains("ghs_test_token"),
        "the token never reaches the log"
    );
}

#[test]
fn a_truncated_list_fails_loudly_without_a_checkout() {
    let files: Vec<Value> = (0..3000)
        .map(|i| entry(&format!("frontend/f{i}.ts"), "added", None))
        .collect();
    let server = serve(files);
    let empty = tempfile::tempdir().expect("tempdir");
    let run = detect(empty.path())
        .event(
            "pull_request",
            pull_request_event(3456, &"1".repeat(40), &"2".repeat(40)),
        )
        .env("GITHUB_API_URL", server.base_url())
        .args(&["--filters", MONOREPO_FILTERS, "--token", "t0ken"])
        .run();
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("listed 3000 files for pull request #42, which has 3456"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("actions/checkout"), "{}", run.stderr);
    assert_eq!(server.requests().len(), 30);
    assert!(
        !run.outputs.contains_key("changes"),
        "no partial result is reported"
    );
}

#[test]
fn a_truncated_list_falls_back_to_git_when_checked_out_unless_told_to_fail() {
    let repo = GitRepo::init();
    repo.write("services/api/src/main.rs", "1");
    let base = repo.commit("seed");
    for i in 0..3 {
        repo.write(format!("services/worker/f{i}.rs"), "x");
    }
    let head = repo.commit("big change");
    let files: Vec<Value> = (0..3000)
        .map(|i| entry(&format!("frontend/f{i}.ts"), "added", None))
        .collect();
    let server = serve(files);
    let strict = detect(repo.path())
        .event("pull_request", pull_request_event(3001, &base, &head))
        .env("GITHUB_API_URL", server.base_url())
        .args(&["--filters", MONOREPO_FILTERS, "--token", "t0ken"])
        .args(&["--source=api", "--on-truncation=fail"])
        .run();
    assert_eq!(strict.code, Some(3), "{}", strict.stderr);
    assert!(
        strict.stderr.contains("listed 3000 files"),
        "{}",
        strict.stderr
    );
    assert!(!strict.outputs.contains_key("changes"), "no partial result");

    let run = detect(repo.path())
        .event("pull_request", pull_request_event(3001, &base, &head))
        .env("GITHUB_API_URL", server.base_url())
        .args(&[
            "--filters",
            MONOREPO_FILTERS,
            "--token",
            "t0ken",
            "--source=api",
        ])
        .run()
        .success();
    assert_eq!(run.json("changes"), json!(["worker"]), "{}", run.stderr);
    assert!(run.stderr.contains("using git instead"), "{}", run.stderr);
}

#[test]
fn api_errors_and_a_missing_token_are_reported() {
    let server = HttpServer::start(|_: &Request| {
        Reply::github_error(403, "Resource not accessible by integration")
    });
    let empty = tempfile::tempdir().expect("tempdir");
    let event = pull_request_event(1, &"1".repeat(40), &"2".repeat(40));
    let run = detect(empty.path())
        .event("pull_request", event.clone())
        .env("GITHUB_API_URL", server.base_url())
        .args(&["--filters", MONOREPO_FILTERS, "--token", "t0ken"])
        .run();
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Resource not accessible by integration"),
        "{}",
        run.stderr
    );

    let no_token = detect(empty.path())
        .event("pull_request", event)
        .args(&["--filters", MONOREPO_FILTERS])
        .run();
    assert_eq!(no_token.code, Some(2), "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("needs a token"),
        "{}",
        no_token.stderr
    );
}
