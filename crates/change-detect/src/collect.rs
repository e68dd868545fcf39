//! Carries out a [`Plan`]: lists the changes with git or the REST API.

use crate::api::{self, ApiError, ApiTarget};
use crate::base_source::BaseSource;
use crate::change::{Change, Renames, split_rename};
use crate::decision::Plan;
use crate::error::Error;
use crate::git::{Depth, Git, GitError};
use crate::options::{OnTruncation, Options};

/// What was compared (the changes themselves went to the caller's `emit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
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
    /// Set when collecting found no base where the plan expected one (no previous tag).
    pub base_source: Option<BaseSource>,
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

/// Lists the changes for `plan`, handing each to `emit` in order as it is found (with
/// `--renames split`, renames already split).
pub fn collect(
    plan: &Plan,
    options: &Options,
    sources: Sources<'_>,
    emit: &mut dyn FnMut(Change),
) -> Result<Collected, Error> {
    if options.renames == Renames::Split {
        collect_into(plan, options, sources, &mut |change| {
            split_rename(change, emit)
        })
    } else {
        collect_into(plan, options, sources, emit)
    }
}

/// Lists everything `collect` returns, and the changes as a list.
pub fn collect_all(
    plan: &Plan,
    options: &Options,
    sources: Sources<'_>,
) -> Result<(Collected, Vec<Change>), Error> {
    let mut changes = Vec::new();
    let collected = collect(plan, options, sources, &mut |change| changes.push(change))?;
    Ok((collected, changes))
}

fn collect_into<'g>(
    plan: &Plan,
    options: &Options,
    sources: Sources<'g>,
    emit: &mut dyn FnMut(Change),
) -> Result<Collected, Error> {
    let Sources { git, api } = sources;
    let mut collected = Collected {
        range: String::new(),
        base: String::new(),
        head: String::new(),
        notices: Vec::new(),
        warnings: Vec::new(),
        base_source: None,
    };
    let need_git = |git: Option<&'g mut Git>| need_git(git, options);
    match plan {
        Plan::Nothing => {
            collected.range = "nothing (deleted ref)".into();
        }
        Plan::Worktree { untracked } => {
            let git = need_git(git)?;
            let head = git.resolve("HEAD")?;
            git.diff_streaming("HEAD", None, options.renames, emit)?;
            if *untracked {
                git.untracked()?.into_iter().for_each(&mut *emit);
            }
            collected.range = format!("HEAD ({}) and the work tree", short(&head));
            collected.base = head;
        }
        Plan::TwoDot { base, head } => {
            let git = need_git(git)?;
            let (base_sha, head_sha) = git.resolve_and_diff(base, head, options.renames, emit)?;
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
            git.diff_streaming(&merge_base, Some(&head_sha), options.renames, emit)?;
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
            git.all_files(&head_sha)?.into_iter().for_each(&mut *emit);
            collected.range = format!("every file of {}", short(&head_sha));
            collected.head = head_sha;
        }
        Plan::PreviousTag { tag, head, pattern } => {
            let git = need_git(git)?;
            let head_sha = git.resolve(head)?;
            match previous_tag(git, &head_sha, tag, pattern, options)? {
                Some((previous, base_sha)) => {
                    git.diff_streaming(&base_sha, Some(&head_sha), options.renames, emit)?;
                    collected.range = format!("{previous}..{tag}");
                    collected.base = base_sha;
                }
                None => {
                    collected.notices.push(format!(
                        "no tag matching `{pattern}` is an ancestor of `{tag}`: every file counts as added"
                    ));
                    git.all_files(&head_sha)?.into_iter().for_each(&mut *emit);
                    collected.range = format!("every file of {tag}");
                    collected.base_source = Some(BaseSource::None);
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
                    changes.into_iter().for_each(&mut *emit);
                    collected.range = format!("pull request #{number} (GitHub API)");
                }
                Err(ApiError::Truncated { listed, .. })
                    if git.is_some() && options.on_truncation == OnTruncation::Git =>
                {
                    collected.warnings.push(format!(
                        "the GitHub API listed only {listed} files of pull request #{number}; using git instead"
                    ));
                    let mut fallback_result =
                        collect_into(fallback, options, Sources { git, api: None }, emit)?;
                    fallback_result.warnings.append(&mut collected.warnings);
                    return Ok(fallback_result);
                }
                Err(error) => return Err(error.into()),
            }
        }
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
