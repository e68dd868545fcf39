//! Asking remotes what a ref is: `git ls-remote`, or the GitHub REST API with a token.

use std::process::Command;

use release_model::refs::is_full_sha;
use release_model::{RefKind, RefLookup, ResolvedRef};
use runner_protocol::Secret;

use crate::checkouts::github_repository;
use crate::github::GithubApi;

/// Resolves refs through the GitHub API (GitHub repositories, with a token) or `git ls-remote`.
#[derive(Debug)]
pub struct Resolver {
    github: Option<GithubApi>,
    git_base_url: String,
}

/// How a ref was resolved, for the lock file.
pub(crate) const VIA_GIT: &str = "git ls-remote";
/// How a ref was resolved, for the lock file.
pub(crate) const VIA_API: &str = "github api";

impl Resolver {
    /// A resolver; `token` enables the GitHub API for GitHub repositories.
    pub fn new(token: Option<Secret>, api_url: &str, git_base_url: &str) -> Self {
        Self {
            github: token.map(|token| GithubApi::new(api_url, token)),
            git_base_url: git_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL `git ls-remote` uses for `repo` (`owner/name` is made a URL under the base).
    pub fn git_url(&self, repo: &str) -> String {
        let owner_name =
            !repo.contains(':') && !repo.starts_with(['/', '.']) && repo.split('/').count() == 2;
        if owner_name {
            format!("{}/{repo}.git", self.git_base_url)
        } else {
            repo.to_owned()
        }
    }

    /// Which method [`RefLookup::lookup`] uses for `repo`.
    pub fn method(&self, repo: &str) -> &'static str {
        match (&self.github, github_repository(repo)) {
            (Some(_), Some(_)) => VIA_API,
            _ => VIA_GIT,
        }
    }
}

impl RefLookup for Resolver {
    fn lookup(&self, repo: &str, git_ref: &str) -> Result<Option<ResolvedRef>, String> {
        if let (Some(api), Some(name)) = (&self.github, github_repository(repo)) {
            return api.resolve(&name, git_ref);
        }
        ls_remote(&self.git_url(repo), git_ref)
    }
}

/// Resolves `git_ref` with `git ls-remote`: tags (peeled) first, then branches, as git does.
/// A full SHA is taken as a commit (ls-remote cannot confirm a commit exists).
pub(crate) fn ls_remote(url: &str, git_ref: &str) -> Result<Option<ResolvedRef>, String> {
    if is_full_sha(git_ref) {
        return Ok(Some(ResolvedRef {
            kind: RefKind::Commit,
            commit: git_ref.to_ascii_lowercase(),
        }));
    }
    let output = Command::new("git")
        .args(["ls-remote", "--", url, git_ref, &format!("{git_ref}^{{}}")])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("no message");
        return Err(format!("git ls-remote failed: {}", reason.trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let find = |name: &str| {
        stdout.lines().find_map(|line| {
            let (sha, refname) = line.split_once('\t')?;
            (refname == name).then(|| sha.to_owned())
        })
    };
    let tag = format!("refs/tags/{git_ref}");
    if let Some(commit) = find(&format!("{tag}^{{}}")).or_else(|| find(&tag)) {
        return Ok(Some(ResolvedRef {
            kind: RefKind::Tag,
            commit,
        }));
    }
    Ok(
        find(&format!("refs/heads/{git_ref}")).map(|commit| ResolvedRef {
            kind: RefKind::Branch,
            commit,
        }),
    )
}
