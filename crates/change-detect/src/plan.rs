//! Which changes to list, decided from the event and the inputs (pure: no git, no network).

use runner_protocol::event::{Event, EventContext, ZERO_SHA};

use crate::base_source::BaseSource;
use crate::decision::{Decision, Plan, PlanError};
use crate::git::is_full_sha;
use crate::options::{ForcePush, Options, Source};

fn short_branch(git_ref: &str) -> &str {
    git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref)
}

/// A comparison against an explicit `base`: two-dot for a full SHA, three-dot for a name.
fn against_base(base: &str, head: String) -> Plan {
    if is_full_sha(base) {
        Plan::TwoDot {
            base: base.to_owned(),
            head,
        }
    } else {
        Plan::ThreeDot {
            base: base.to_owned(),
            head,
        }
    }
}

/// Decides what to compare. `has_git` tells whether the working directory is a checkout.
pub fn decide(
    event: Option<&EventContext>,
    options: &Options,
    has_git: bool,
) -> Result<Decision, PlanError> {
    let mut decision = Decision {
        plan: Plan::Nothing,
        notices: Vec::new(),
        warnings: Vec::new(),
        source: BaseSource::Input,
    };
    if options.base.as_deref() == Some("HEAD") {
        if options.head.is_some() {
            decision.warnings.push(
                "`ref` is ignored with `base: HEAD` (local changes are compared with HEAD)".into(),
            );
        }
        decision.plan = Plan::Worktree {
            untracked: options.include_untracked,
        };
        decision.source = BaseSource::Worktree;
        return Ok(decision);
    }
    let base = options.base.clone();
    let Some(context) = event else {
        if let (None, Some(ci)) = (&base, &options.ci) {
            return crate::ci::decide(ci, options.head.as_deref());
        }
        let Some(base) = base else {
            return Err(PlanError {
                message: "outside GitHub Actions there is no event to take the range from".into(),
                hint: "pass --base (a branch, tag or SHA; HEAD for uncommitted changes) and optionally --ref".into(),
            });
        };
        let head = options.head.clone().unwrap_or_else(|| "HEAD".into());
        decision.plan = against_base(&base, head);
        return Ok(decision);
    };
    let default_branch = context.default_branch().map(str::to_owned);
    match &context.event {
        Event::PullRequest(event) => {
            let pull = &event.pull_request;
            if base.is_none() {
                decision.source = BaseSource::PullRequest;
            }
            let git_plan = Plan::ThreeDot {
                base: base.clone().unwrap_or_else(|| pull.base.sha.clone()),
                head: options
                    .head
                    .clone()
                    .unwrap_or_else(|| pull.head.sha.clone()),
            };
            let use_api = match options.source {
                Source::Api => true,
                Source::Git => false,
                Source::Auto => !has_git,
            };
            if use_api {
                for (name, given) in [("base", &options.base), ("ref", &options.head)] {
                    if given.is_some() {
                        decision.warnings.push(format!(
                            "`{name}` is ignored: the REST API lists the pull request's own files"
                        ));
                    }
                }
                decision.source = BaseSource::PullRequest;
                decision.plan = Plan::PullRequestApi {
                    number: pull.number,
                    changed_files: pull.changed_files,
                    fallback: Box::new(git_plan),
                };
            } else {
                decision.plan = git_plan;
            }
        }
        Event::MergeGroup(event) => {
            let group = &event.merge_group;
            if base.is_none() {
                decision.source = BaseSource::MergeGroup;
            }
            decision.plan = Plan::TwoDot {
                base: base.unwrap_or_else(|| group.base_sha.clone()),
                head: options
                    .head
                    .clone()
                    .unwrap_or_else(|| group.head_sha.clone()),
            };
        }
        Event::Push(push) => {
            let branch = short_branch(&push.git_ref).to_owned();
            let head = options.head.clone().unwrap_or_else(|| push.after.clone());
            if push.is_deleted_ref() {
                decision.notices.push(format!(
                    "`{}` was deleted: there are no changes",
                    push.git_ref
                ));
                decision.plan = Plan::Nothing;
                decision.source = BaseSource::DeletedRef;
                return Ok(decision);
            }
            let same_branch = base
                .as_deref()
                .is_some_and(|b| b == push.git_ref || short_branch(b) == branch);
            if let Some(base) = base.as_deref().filter(|_| !same_branch) {
                decision.plan = against_base(base, head);
                return Ok(decision);
            }
            if push.is_tag() {
                let tag = push.git_ref.trim_start_matches("refs/tags/").to_owned();
                decision.plan = Plan::PreviousTag {
                    tag,
                    head,
                    pattern: options.tag_pattern.clone(),
                };
                decision.source = BaseSource::PreviousTag;
                return Ok(decision);
            }
            let on_default = default_branch.as_deref() == Some(branch.as_str());
            let against_default = |decision: &mut Decision, why: String| {
                if let Some(default) = &default_branch {
                    decision.notices.push(why);
                    decision.plan = Plan::ThreeDot {
                        base: default.clone(),
                        head: head.clone(),
                    };
                    decision.source = BaseSource::DefaultBranch;
                    true
                } else {
                    false
                }
            };
            if push.is_new_ref() || push.before == ZERO_SHA {
                if on_default
                    || !against_default(
                        &mut decision,
                        format!(
                            "first push of `{branch}`: comparing with the default branch `{}` at their merge base",
                            default_branch.as_deref().unwrap_or_default()
                        ),
                    )
                {
                    decision.notices.push(format!(
                        "first push of `{branch}` with no other branch to compare with: every file counts as added"
                    ));
                    decision.plan = Plan::AllFiles { head };
                    decision.source = BaseSource::None;
                }
                return Ok(decision);
            }
            if push.forced && options.force_push == ForcePush::BaseBranch && !on_default {
                let compared = against_default(
                    &mut decision,
                    format!(
                        "force push to `{branch}`: comparing with the default branch `{}` at their merge base",
                        default_branch.as_deref().unwrap_or_default()
                    ),
                );
                if compared {
                    return Ok(decision);
                }
                decision.warnings.push(
                    "force-push: base-branch needs the repository's default branch in the event payload; comparing with the previous tip".into(),
                );
            } else if push.forced {
                decision.notices.push(format!(
                    "force push to `{branch}`: comparing with the previous tip {}; set `force-push: base-branch` to compare with the default branch",
                    push.before
                ));
            }
            decision.plan = Plan::TwoDot {
                base: push.before.clone(),
                head,
            };
            decision.source = BaseSource::PreviousTip;
        }
        Event::Other { .. } => {
            let head = options
                .head
                .clone()
                .or_else(|| context.sha.clone())
                .unwrap_or_else(|| "HEAD".into());
            if let Some(base) = base {
                decision.plan = against_base(&base, head);
                return Ok(decision);
            }
            if let Some(tag) = context
                .git_ref
                .as_deref()
                .and_then(|r| r.strip_prefix("refs/tags/"))
            {
                decision.plan = Plan::PreviousTag {
                    tag: tag.to_owned(),
                    head,
                    pattern: options.tag_pattern.clone(),
                };
                decision.source = BaseSource::PreviousTag;
                return Ok(decision);
            }
            let Some(default) = default_branch else {
                return Err(PlanError {
                    message: format!(
                        "the {} event names no commit range and its payload has no default branch",
                        context.name
                    ),
                    hint: "set `base` (a branch, tag or SHA) to say what to compare with".into(),
                });
            };
            decision.notices.push(format!(
                "the {} event names no commit range: comparing with the default branch `{default}` at the merge base (set `base` to choose)",
                context.name
            ));
            decision.plan = Plan::ThreeDot {
                base: default,
                head,
            };
            decision.source = BaseSource::DefaultBranch;
        }
    }
    Ok(decision)
}
