//! `release.lock.json`: every repository of the release with its ref resolved to a commit, so
//! a release is reproducible and auditable. No timestamps: the same remotes give the same bytes.

use std::cell::RefCell;
use std::collections::HashMap;

use release_model::{RefKind, RefLookup, Release, ResolvedRef};
use serde::Serialize;

use crate::checkouts::{Checkout, checkouts};
use crate::resolve::Resolver;

/// A remote's answer about one ref.
type Answer = Result<Option<ResolvedRef>, String>;

/// Remembers answers, so validation and locking ask each remote once per ref.
#[derive(Debug)]
pub(crate) struct CachedLookup<'a> {
    inner: &'a Resolver,
    cache: RefCell<HashMap<(String, String), Answer>>,
}

impl<'a> CachedLookup<'a> {
    /// Wraps a resolver.
    pub(crate) fn new(inner: &'a Resolver) -> Self {
        Self {
            inner,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl RefLookup for CachedLookup<'_> {
    fn lookup(&self, repo: &str, git_ref: &str) -> Result<Option<ResolvedRef>, String> {
        let key = (repo.to_owned(), git_ref.to_owned());
        if let Some(answer) = self.cache.borrow().get(&key) {
            return answer.clone();
        }
        let answer = self.inner.lookup(repo, git_ref);
        self.cache.borrow_mut().insert(key, answer.clone());
        answer
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LockedRepository {
    /// Checkout name (`platform`, `frontend`, `bundles-<repo>`).
    pub name: String,
    /// `owner/name` or the URL.
    pub repository: String,
    /// As written in the descriptor.
    pub url: String,
    /// The ref as written.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// What the ref is.
    pub kind: RefKind,
    /// The full commit SHA.
    pub commit: String,
    /// How it was resolved (`git ls-remote`, `github api`).
    pub resolved_with: String,
    /// Bundle ids served from this repository at this ref.
    pub bundles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LockFile {
    /// Format version of this file.
    pub lock_version: u32,
    /// The release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Every repository, in checkout order.
    pub repositories: Vec<LockedRepository>,
}

/// A ref vanished between validation and locking, or a remote failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve `{git_ref}` in {repository}: {reason}")]
pub struct LockError {
    /// Repository.
    pub repository: String,
    /// Ref.
    pub git_ref: String,
    /// Why.
    pub reason: String,
}

/// Resolves every checkout of `release`.
pub(crate) fn lock(
    release: &Release,
    resolver: &Resolver,
    lookup: &dyn RefLookup,
) -> Result<LockFile, LockError> {
    let list: Vec<Checkout> = checkouts(release, "");
    let mut repositories = Vec::new();
    for checkout in list {
        let error = |reason: String| LockError {
            repository: checkout.url.clone(),
            git_ref: checkout.git_ref.clone(),
            reason,
        };
        let resolved = lookup
            .lookup(&checkout.url, &checkout.git_ref)
            .map_err(error)?
            .ok_or_else(|| error("no such tag, branch or commit".into()))?;
        repositories.push(LockedRepository {
            resolved_with: resolver.method(&checkout.url).to_owned(),
            name: checkout.name,
            repository: checkout.repository,
            url: checkout.url,
            git_ref: checkout.git_ref,
            kind: resolved.kind,
            commit: resolved.commit,
            bundles: checkout.bundles,
        });
    }
    Ok(LockFile {
        lock_version: 1,
        release_name: release.release_name.clone(),
        repositories,
    })
}
