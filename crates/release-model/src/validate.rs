//! Semantic checks of a loaded descriptor; every problem is collected.

use runner_protocol::Env;

use crate::load::Document;
use crate::model::{BundleItem, ItemKind, RepoPin};
use crate::problem::{FieldPath, Problem, did_you_mean};
use crate::props;
use crate::refs::{self, RefKind, RefLookup, RefShape};
use crate::version::{self, VersionScheme};

/// What to check beyond the always-on rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    /// A branch ref is a warning instead of an error (development releases).
    pub allow_branch_refs: bool,
    /// Check that `env:` variables are set and `file:` files exist (values are never shown).
    pub check_prop_refs: bool,
    /// The platform tag must be a version in this scheme (releases are tagged from it).
    pub version_scheme: Option<VersionScheme>,
    /// The command does not use `platform.repo`/`frontend.repo` (no checkout, no lock): a
    /// value that is not a repository (the platform's docs write the bare `kdcube-ai-app`)
    /// is a warning instead of an error.
    pub pins_unused: bool,
    /// The command does not use the bundles' `repo` either (baked `generate` without
    /// traceability): same as `pins_unused`, for `bundles.items[].repo`.
    pub item_repos_unused: bool,
}

/// A remote could not be asked about a ref.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot look up `{git_ref}` in {repo}: {reason}")]
pub struct LookupError {
    /// Repository.
    pub repo: String,
    /// Ref.
    pub git_ref: String,
    /// Why.
    pub reason: String,
}

/// Runs every check on `document` and returns the loading problems plus the semantic ones,
/// errors and warnings, in source order of discovery.
///
/// With `lookup`, refs are classified by the remote; otherwise by their shape (and the
/// messages say so). A remote that cannot be reached is an error of its own ([`LookupError`]).
pub fn validate(
    document: &Document,
    checks: Checks,
    env: &Env,
    lookup: Option<&dyn RefLookup>,
) -> Result<Vec<Problem>, LookupError> {
    let mut problems = document.problems.clone();
    let release = &document.release;
    let root = FieldPath::root();
    let mut refs = Vec::new();
    if let Some(platform) = &release.platform {
        refs.push((root.key("platform"), platform.clone()));
    }
    if let Some(frontend) = &release.frontend {
        refs.push((root.key("frontend"), frontend.clone()));
    }
    let items_path = root.key("bundles").key("items");
    for (position, item) in release.bundles.items.iter().enumerate() {
        let path = items_path.index(position);
        if item.kind() == ItemKind::Git {
            refs.push((path.clone(), item.pin()));
            check_item(item, &path, &mut problems);
        }
        problems.extend(props::check(
            &item.props,
            &path.key("props"),
            env,
            checks.check_prop_refs,
        ));
    }
    check_ids(document, &mut problems);
    if let (Some(scheme), Some(platform)) = (checks.version_scheme, &release.platform) {
        check_version(platform, scheme, &mut problems);
    }
    for (path, pin) in &refs {
        let unused = if path.segments().len() <= 1 {
            checks.pins_unused
        } else {
            checks.item_repos_unused
        };
        check_repo(pin, path, unused, &mut problems);
        check_ref(pin, path, checks, lookup, &mut problems)?;
    }
    Ok(problems)
}

fn check_ids(document: &Document, problems: &mut Vec<Problem>) {
    let bundles = &document.release.bundles;
    let items_path = FieldPath::root().key("bundles").key("items");
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (position, item) in bundles.items.iter().enumerate() {
        if item.id.is_empty() {
            continue;
        }
        match seen.iter().find(|(id, _)| *id == item.id) {
            Some((_, first)) => {
                let first_path = items_path.index(*first).key("id");
                let line = document
                    .index
                    .value(&first_path)
                    .map_or(String::new(), |span| format!(" (line {})", span.start.line));
                problems.push(
                    Problem::error(
                        items_path.index(position).key("id"),
                        format!("duplicate bundle id `{}`", item.id),
                    )
                    .label("used again here")
                    .hint(format!(
                        "`{first_path}`{line} already uses it; bundle ids must be unique"
                    )),
                );
            }
            None => seen.push((&item.id, position)),
        }
    }
    if let Some(default) = &bundles.default_bundle_id {
        if !bundles.items.iter().any(|item| &item.id == default) {
            let ids: Vec<&str> = seen.iter().map(|(id, _)| *id).collect();
            let field = FieldPath::root().key("bundles").key("default_bundle_id");
            let mut problem = Problem::error(
                field,
                format!("`bundles.default_bundle_id` names `{default}`, which is not a bundle id"),
            )
            .label("no bundle has this id");
            problem = match (did_you_mean(default, &ids), ids.is_empty()) {
                (_, true) => {
                    problem.hint("there are no bundle items; remove `default_bundle_id` or add one")
                }
                (Some(suggestion), _) => problem.hint(format!("did you mean `{suggestion}`?")),
                (None, _) => problem.hint(format!(
                    "valid ids: {}",
                    ids.iter()
                        .map(|id| format!("`{id}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            problems.push(problem);
        }
    }
}

/// True when a relative path would leave its root: absolute, drive-prefixed, or with `..`.
fn escapes(path: &str) -> bool {
    path.starts_with(['/', '\\'])
        || path.as_bytes().get(1) == Some(&b':')
        || path.split(['/', '\\']).any(|part| part == "..")
}

fn check_item(item: &BundleItem, path: &FieldPath, problems: &mut Vec<Problem>) {
    if let Some(subdir) = &item.subdir {
        if escapes(subdir) {
            problems.push(
                Problem::error(
                    path.key("subdir"),
                    format!(
                        "`{}` must stay inside the repository, found `{subdir}`",
                        path.key("subdir")
                    ),
                )
                .label("escapes the repository")
                .hint("use a relative path without `..`, e.g. `service/bundles`"),
            );
        }
    }
    let module = &item.module;
    if module.is_empty() {
        return;
    }
    let field = path.key("module");
    if module.contains(['/', '\\']) || module.starts_with('.') || module.contains("..") {
        problems.push(
            Problem::error(
                field.clone(),
                format!("`{field}` must be a dotted module path relative to `subdir`, found `{module}`"),
            )
            .label("not `<folder>.entrypoint`")
            .hint("write `<bundle folder>.entrypoint`, e.g. `support@3-1.entrypoint`; `subdir` holds the folder"),
        );
        return;
    }
    if item.is_bundle_root() {
        // The platform docs' bundle-root shape: `subdir` is the bundle folder.
        if item.folder().is_none() {
            problems.push(
                Problem::error(
                    field.clone(),
                    format!("`{field}` is `{module}` with no dot, and there is no `subdir` naming the bundle folder"),
                )
                .label("bundle-root `module` without `subdir`")
                .hint(format!("set `subdir` to the bundle folder (bundle-root shape, `module: {module}`), or write `<bundle folder>.{module}` with `subdir` its parent")),
            );
        }
        return;
    }
    match item.entrypoint() {
        None => problems.push(
            Problem::error(
                field.clone(),
                format!("`{field}` must name a module inside the bundle folder, found `{module}`"),
            )
            .label("no `.entrypoint`")
            .hint(format!("write `{module}.entrypoint`")),
        ),
        Some("entrypoint") => {}
        Some(other) => problems.push(
            Problem::warning(
                field.clone(),
                format!(
                    "`{field}` does not follow `<folder>.entrypoint` (its module is `{other}`)"
                ),
            )
            .hint("the runtime loads `<folder>.entrypoint` by convention; check the module name"),
        ),
    }
}

fn check_repo(pin: &RepoPin, path: &FieldPath, unused: bool, problems: &mut Vec<Problem>) {
    let repo = &pin.repo;
    if repo.is_empty() {
        return;
    }
    let owner_name = repo.split('/').count() == 2
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    let url = repo.contains("://");
    let scp = repo
        .split_once(':')
        .is_some_and(|(host, rest)| host.contains('@') && !rest.is_empty());
    let local = repo.starts_with('/') || repo.starts_with("./") || repo.starts_with("../");
    if repo.contains(char::is_whitespace) || !(owner_name || url || scp || local) {
        let field = path.key("repo");
        let hint = "use `owner/name` (GitHub), a clone URL (`https://...`, `ssh://...`, `git@host:owner/name.git`) or a local path";
        problems.push(if unused {
            Problem::warning(
                field.clone(),
                format!("`{field}` is not a repository: `{repo}` (not used by this command; a checkout or a lock would refuse it)"),
            )
            .hint(hint)
        } else {
            Problem::error(field.clone(), format!("`{field}` is not a repository: `{repo}`"))
                .hint(hint)
        });
    }
}

fn check_ref(
    pin: &RepoPin,
    path: &FieldPath,
    checks: Checks,
    lookup: Option<&dyn RefLookup>,
    problems: &mut Vec<Problem>,
) -> Result<(), LookupError> {
    let git_ref = &pin.git_ref;
    if git_ref.is_empty() {
        return Ok(());
    }
    let field = path.key("ref");
    if let Some(reason) = refs::invalid_ref_name(git_ref) {
        problems.push(
            Problem::error(
                field.clone(),
                format!("`{field}` is not a valid git ref: `{git_ref}` {reason}"),
            )
            .hint("use a tag (`v1.2.3`) or a full commit SHA"),
        );
        return Ok(());
    }
    let shape = refs::shape(git_ref);
    if shape == RefShape::AbbreviatedCommit {
        problems.push(
            Problem::error(
                field.clone(),
                format!("`{field}` is an abbreviated commit SHA, found `{git_ref}`"),
            )
            .label("abbreviated SHAs can become ambiguous")
            .hint("use the full 40-character SHA (`git rev-parse <sha>`), or run `release-descriptor-render lock`"),
        );
        return Ok(());
    }
    let (kind, by_remote) = match lookup {
        Some(lookup) if !pin.repo.is_empty() => {
            match lookup
                .lookup(&pin.repo, git_ref)
                .map_err(|reason| LookupError {
                    repo: pin.repo.clone(),
                    git_ref: git_ref.clone(),
                    reason,
                })? {
                Some(resolved) => (Some(resolved.kind), true),
                None => {
                    problems.push(
                        Problem::error(
                            field.clone(),
                            format!(
                                "`{field}` names `{git_ref}`, which {} does not have",
                                pin.repo
                            ),
                        )
                        .label("no such tag, branch or commit")
                        .hint("push the tag first, or fix the ref"),
                    );
                    return Ok(());
                }
            }
        }
        _ => match shape {
            RefShape::Commit => (Some(RefKind::Commit), false),
            RefShape::Tag => (Some(RefKind::Tag), false),
            RefShape::Branch => (Some(RefKind::Branch), false),
            RefShape::Unknown | RefShape::AbbreviatedCommit => (None, false),
        },
    };
    let how = if by_remote {
        String::new()
    } else {
        " (decided by the ref's shape; pass --remote-refs=true to ask the remote)".to_owned()
    };
    match kind {
        Some(RefKind::Branch) => {
            let problem = if checks.allow_branch_refs {
                Problem::warning(
                    field.clone(),
                    format!("`{field}` is the branch `{git_ref}`; the release is not reproducible{how}"),
                )
            } else {
                Problem::error(
                    field.clone(),
                    format!("`{field}` must be a tag or a full commit SHA, found the branch `{git_ref}`{how}"),
                )
            };
            problems.push(
                problem
                    .label("branch names move")
                    .hint("pin a tag or a commit (`release-descriptor-render lock` resolves refs to commits); pass --allow-branch-refs=true for a development release"),
            );
        }
        None => problems.push(
            Problem::warning(
                field.clone(),
                format!("cannot tell whether `{git_ref}` in `{field}` is a tag or a branch from its shape"),
            )
            .hint("pass --remote-refs=true to ask the remote, or pin a full commit SHA"),
        ),
        Some(RefKind::Tag | RefKind::Commit) => {}
    }
    Ok(())
}

fn check_version(platform: &RepoPin, scheme: VersionScheme, problems: &mut Vec<Problem>) {
    let git_ref = &platform.git_ref;
    if git_ref.is_empty() {
        return;
    }
    let field = FieldPath::root().key("platform").key("ref");
    let name = match scheme {
        VersionScheme::Semver => "semver",
        VersionScheme::Pep440 => "pep440",
    };
    if refs::is_full_sha(git_ref) {
        problems.push(
            Problem::error(
                field,
                format!(
                    "`platform.ref` is a commit, but --version-scheme={name} needs a version tag"
                ),
            )
            .hint("pin the platform to its release tag (`v0.3.2`), or drop --version-scheme"),
        );
        return;
    }
    let version = version::version_from_tag(git_ref);
    if let Err(reason) = version::check(version, scheme) {
        problems.push(
            Problem::error(
                field,
                format!("`platform.ref` `{git_ref}` does not carry a {name} version: {reason}"),
            )
            .label(format!("expected a {name} version"))
            .hint(match scheme {
                VersionScheme::Semver => "tag as `vMAJOR.MINOR.PATCH`, e.g. `v0.3.2`",
                VersionScheme::Pep440 => "tag as a PEP 440 version, e.g. `v1.2.3` or `v1.2rc1`",
            }),
        );
    }
}
