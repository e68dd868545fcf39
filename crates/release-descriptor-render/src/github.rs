//! The few GitHub REST calls `lock` needs: is a ref a tag, a branch or a commit, and which
//! commit does it point at.
//!
//! Plain `reqwest` (blocking, rustls with the ring provider) rather than octocrab: we make
//! three GET requests, and octocrab would add tower, an async runtime API surface and its own
//! model types for them. The workspace already uses this reqwest configuration.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use release_model::refs::is_full_sha;
use release_model::{RefKind, ResolvedRef};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use runner_protocol::Secret;

/// A GitHub REST API client for one base URL and token.
#[derive(Debug)]
pub(crate) struct GithubApi {
    base: String,
    token: Secret,
    client: OnceLock<Result<Client, String>>,
}

fn tls_config() -> Result<rustls::ClientConfig, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| format!("TLS setup failed: {error}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

fn encode_ref(git_ref: &str) -> String {
    git_ref.replace('%', "%25").replace('#', "%23")
}

impl GithubApi {
    /// A client for `base` (e.g. `https://api.github.com`) authenticating with `token`.
    pub(crate) fn new(base: &str, token: Secret) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_init(|| {
                Client::builder()
                    .tls_backend_preconfigured(tls_config()?)
                    .timeout(Duration::from_secs(30))
                    .user_agent(concat!(
                        "release-descriptor-render/",
                        env!("CARGO_PKG_VERSION")
                    ))
                    .build()
                    .map_err(|error| format!("cannot build the HTTP client: {error}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// GET `path`; `Ok(None)` on 404 (and 422, GitHub's answer for an unknown commit).
    fn get(&self, path: &str) -> Result<Option<serde_json::Value>, String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client()?
            .get(&url)
            .bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .map_err(|error| format!("GET {url} failed: {}", error.without_url()))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY {
            return Ok(None);
        }
        if !status.is_success() {
            let hint = match status {
                StatusCode::UNAUTHORIZED => " (the token is invalid or expired)",
                StatusCode::FORBIDDEN => " (no access to the repository, or rate limited)",
                _ => "",
            };
            return Err(format!("GET {url} answered {status}{hint}"));
        }
        let text = response
            .text()
            .map_err(|error| format!("GET {url}: cannot read the body: {}", error.without_url()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| format!("GET {url}: invalid JSON: {error}"))
    }

    fn object_sha(value: &serde_json::Value) -> Option<(String, String)> {
        let object = value.get("object")?;
        Some((
            object.get("type")?.as_str()?.to_owned(),
            object.get("sha")?.as_str()?.to_owned(),
        ))
    }

    /// Resolves `git_ref` in `owner/name`: a commit SHA is confirmed, a tag is peeled to its
    /// commit, then branches are tried.
    pub(crate) fn resolve(
        &self,
        repository: &str,
        git_ref: &str,
    ) -> Result<Option<ResolvedRef>, String> {
        let repo = format!("/repos/{repository}");
        if is_full_sha(git_ref) {
            let found = self.get(&format!("{repo}/commits/{git_ref}"))?;
            return Ok(found.and_then(|commit| {
                Some(ResolvedRef {
                    kind: RefKind::Commit,
                    commit: commit.get("sha")?.as_str()?.to_owned(),
                })
            }));
        }
        let encoded = encode_ref(git_ref);
        // A prefix match answers with an array: that is not the ref we asked for.
        let exact = |value: Option<serde_json::Value>| value.filter(serde_json::Value::is_object);
        if let Some(tag) = exact(self.get(&format!("{repo}/git/ref/tags/{encoded}"))?) {
            let (mut kind, mut sha) =
                Self::object_sha(&tag).ok_or("unexpected answer for a tag ref")?;
            // Annotated tags point at tag objects; peel (tags of tags too, a few levels).
            for _ in 0..5 {
                if kind != "tag" {
                    break;
                }
                let object = self
                    .get(&format!("{repo}/git/tags/{sha}"))?
                    .ok_or_else(|| format!("tag object {sha} is missing"))?;
                (kind, sha) =
                    Self::object_sha(&object).ok_or("unexpected answer for a tag object")?;
            }
            return Ok(Some(ResolvedRef {
                kind: RefKind::Tag,
                commit: sha,
            }));
        }
        if let Some(branch) = exact(self.get(&format!("{repo}/git/ref/heads/{encoded}"))?) {
            let (_, sha) = Self::object_sha(&branch).ok_or("unexpected answer for a branch ref")?;
            return Ok(Some(ResolvedRef {
                kind: RefKind::Branch,
                commit: sha,
            }));
        }
        Ok(None)
    }
}
