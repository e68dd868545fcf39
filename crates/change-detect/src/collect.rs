//! Carries out a [`Plan`]: lists the changes with git or the REST API.

use std::cmp::Ordering;

use crate::api::{self, ApiError, ApiTarget};
use crate::change::{Change, Renames, split_renames};
use crate::error::Error;
use crate::git::Git;
use crate::options::Options;
use crate::plan::Plan;

/// The changes and what was compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The changes, in git's order.
    pub changes: Vec<Change>,
    /// For humans: `base...head`.
    pub range: String,
    /// The base commit, when there is one.
    pub base: String,
    /// The head commit, when there is one.
    pub head: String,
    /// Things worth a notice (fallbacks taken).
    pub notices: Vec<String>,
    /// Things worth a warning.
    pub warnings: Vec<String>,
}

/// What the collection needs besides the plan.
pub struct Sources<'a> {
    /// The repository, when the working directory is one.
    pub git: Option<&'a mut Git>,
    /// The REST API, when a token and repository are known.
    pub api: Option<ApiTarget>,
}

fn need_git<'g>(git: Option<&'g mut Git>, options: &Options) -> Result<&'g mut Git, Error> {
    git.ok_or_else(|| Error::NotARepository {
        dir: options.working_directory.clone(),
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Lists the changes for `plan`.
pub fn collect<'g>(
    plan: &Plan,
    options: &Options,
    sources: Sources<'g>,
) -> Result<Collected, Error> {
    let Sources { git, api } = sources;
    let mut collected = Collected {
        changes: Vec::new(),
        range: String::new(),
        base: String::new(),
        head: String::new(),
        notices: Vec::new(),
        warnings: Vec::new(),
    };
    let need_git = |git: Option<&'g mut Git>| need_git(git, options);
    match plan {
        Plan::Nothing => {
            collected.range = "nothing (deleted ref)".into();
        }
        Plan::Worktree { untracked } => {
            let git = need_git(git)?;
            let head = git.resolve("HEAD")?;
            collected.changes = git.diff("HEAD", None, options.renames)?;
            if *untracked {
                collected.changes.extend(git.untracked()?);
            }
            collected.range = format!("HEAD ({}) and the work tree", short(&head));
            collected.base = head;
        }
        Plan::TwoDot { base, head } => {
            let git = need_git(git)?;
            let base_sha = git.resolve(base)?;
            let head_sha = git.resolve(head)?;
            collected.changes = git.diff(&base_sha, Some(&head_sha), options.renames)?;
            collected.range = format!("{}..{}", short(&base_sha), short(&head_sha));
            collected.base = base_sha;
            collected.head = head_sha;
        }
        Plan::ThreeDot { base, head } => {
            let git = need_git(git)?;
            let base_sha = git.resolve(base)?;
            let head_sha = git.resolve(head)?;
            let merge_base = git.merge_base_deepening(
                &base_sha,
                &head_sha,
                options.initial_fetch_depth,
                options.max_fetch_depth,
                options.unshallow,
            )?;
            collected.changes = git.diff(&merge_base, Some(&head_sha), options.renames)?;
            collected.range = format!(
                "{base}...{} (merge base {})",
                short(&head_sha),
                short(&merge_base)
            );
            collected.base = merge_base;
            collected.head = head_sha;
        }
        Plan::AllFiles { head } => {
            let git = need_git(git)?;
            let head_sha = git.resolve(head)?;
            collected.changes = git.all_files(&head_sha)?;
            collected.range = format!("every file of {}", short(&head_sha));
            collected.head = head_sha;
        }
        Plan::PreviousTag { tag, head, pattern } => {
            let git = need_git(git)?;
            let matcher = crate::glob::build(pattern)
                .map_err(|e| crate::matcher::CompileError::new(format!("--tag-pattern: {e}")))?
                .compile_matcher();
            let previous = git
                .tags()?
                .into_iter()
                .filter(|t| t != tag && matcher.is_match(t))
                .filter(|t| version_order(t, tag) == Ordering::Less)
                .max_by(|a, b| version_order(a, b));
            let head_sha = git.resolve(head)?;
            match previous {
                Some(previous) => {
                    let base_sha = git.resolve(&format!("refs/tags/{previous}"))?;
                    collected.changes = git.diff(&base_sha, Some(&head_sha), options.renames)?;
                    collected.range = format!("{previous}..{tag}");
                    collected.base = base_sha;
                }
                None => {
                    collected.notices.push(format!(
                        "no tag before `{tag}` matches `{pattern}`: every file counts as added"
                    ));
                    collected.changes = git.all_files(&head_sha)?;
                    collected.range = format!("every file of {tag}");
                }
            }
            collected.head = head_sha;
        }
        Plan::PullRequestApi {
            number,
            changed_files,
            fallback,
        } => {
            let target = api.ok_or(Error::ApiSetup {
                missing: "a token and the repository name (GITHUB_REPOSITORY)",
            })?;
            match api::pull_request_files(&target, *number, *changed_files) {
                Ok(changes) => {
                    collected.changes = changes;
                    collected.range = format!("pull request #{number} (GitHub API)");
                }
                Err(ApiError::Truncated { listed, .. }) if git.is_some() => {
                    collected.warnings.push(format!(
                        "the GitHub API listed only {listed} files of pull request #{number}; using git instead"
                    ));
                    let mut fallback_result =
                        collect(fallback, options, Sources { git, api: None })?;
                    fallback_result.warnings.append(&mut collected.warnings);
                    return Ok(fallback_result);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    if options.renames == Renames::Split {
        collected.changes = split_renames(std::mem::take(&mut collected.changes));
    }
    Ok(collected)
}

/// Orders tag names like `git tag --sort=v:refname`: runs of digits compare as numbers.
pub fn version_order(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (digits(a), digits(b));
                let trim = |s: &[u8]| -> Vec<u8> {
                    let s: Vec<u8> = s.iter().copied().skip_while(|c| *c == b'0').collect();
                    s
                };
                let (ta, tb) = (trim(&a[..na]), trim(&b[..nb]));
                let order = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_sort_by_version_numbers() {
        let mut tags = vec!["v1.10.0", "v1.2.0", "v1.9.3", "v0.9", "v1.2.0-rc1"];
        tags.sort_by(|a, b| version_order(a, b));
        assert_eq!(tags, ["v0.9", "v1.2.0", "v1.2.0-rc1", "v1.9.3", "v1.10.0"]);
    }
}
