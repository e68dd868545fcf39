//! Carries out a [`Plan`]: lists the changes with git or the REST API.

use crate::api::{self, ApiError, ApiTarget};
use crate::change::{Change, Renames, split_renames};
use crate::error::Error;
use crate::git::{Depth, Git, GitError};
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
            let (base_sha, head_sha, changes) =
                git.resolve_and_diff(base, head, options.renames)?;
            collected.changes = changes;
            collected.range = format!("{}..{}", short(&base_sha), short(&head_sha));
            collected.base = base_sha;
            collected.head = head_sha;
        }
        Plan::ThreeDot { base, head } => {
            let git = need_git(git)?;
            let [base_sha, head_sha]: [String; 2] = git
                .resolve_all(&[base, head])?
                .try_into()
                .map_err(|_| GitError::Parse {
                    command: "cat-file --batch-check".into(),
                })?;
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
            let head_sha = git.resolve(head)?;
            match previous_tag(git, &head_sha, tag, pattern, options)? {
                Some((previous, base_sha)) => {
                    collected.changes = git.diff(&base_sha, Some(&head_sha), options.renames)?;
                    collected.range = format!("{previous}..{tag}");
                    collected.base = base_sha;
                }
                None => {
                    collected.notices.push(format!(
                        "no tag matching `{pattern}` is an ancestor of `{tag}`: every file counts as added"
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

/// The previous release of the tag at `head_sha`: the nearest tag matching `pattern` that is
/// reachable from the tag's parent (`git describe --tags --abbrev=0 <tag>^` semantics, so
/// ancestry decides, not version order or dates), with its commit.
///
/// Matching tags missing locally are fetched from the remote first; a shallow clone's history
/// is deepened exponentially until such a tag is reachable, as for merge bases.
fn previous_tag(
    git: &mut Git,
    head_sha: &str,
    tag: &str,
    pattern: &str,
    options: &Options,
) -> Result<Option<(String, String)>, Error> {
    let matcher = crate::glob::build(pattern)
        .map_err(|e| crate::matcher::CompileError::new(format!("--tag-pattern: {e}")))?
        .compile_matcher();
    let wanted = |name: &String| name != tag && matcher.is_match(name);
    let mut names: Vec<String> = git.local_tags()?.into_iter().filter(wanted).collect();
    let shallow = git.is_shallow()?;
    if git.has_remote()? {
        let missing: Vec<String> = git
            .remote_tags()?
            .into_iter()
            .filter(|name| wanted(name) && !names.contains(name))
            .collect();
        if !missing.is_empty() {
            let refspecs: Vec<String> = missing
                .iter()
                .map(|name| format!("+refs/tags/{name}:refs/tags/{name}"))
                .collect();
            // A shallow clone gets just the tagged commits; deepening below links them up.
            let depth = if shallow {
                Depth::Depth(1)
            } else {
                Depth::Full
            };
            git.fetch(&refspecs, depth)?;
            names.extend(missing);
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    let parent = format!("{head_sha}^");
    let mut step = options.initial_fetch_depth.max(1);
    let mut fetched = 0u64;
    loop {
        if let Some(parent_sha) = git.commit(&parent)? {
            if let Some(found) = git.describe(&parent_sha, &names)? {
                let sha = git.resolve(&format!("refs/tags/{found}"))?;
                return Ok(Some((found, sha)));
            }
        }
        if !git.is_shallow()? {
            return Ok(None);
        }
        let depth = if fetched < options.max_fetch_depth {
            let now = step.min(options.max_fetch_depth - fetched);
            fetched += now;
            step = step.saturating_mul(2);
            Depth::Deepen(now)
        } else if options.unshallow {
            Depth::Unshallow
        } else {
            return Err(GitError::TagTooShallow {
                tag: tag.to_owned(),
                pattern: pattern.to_owned(),
                depth: fetched,
            }
            .into());
        };
        if !git.deepen(head_sha, depth)? {
            return Ok(None);
        }
    }
}
