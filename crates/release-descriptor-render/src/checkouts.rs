//! Every repository a release needs checked out: platform, frontend, and each distinct bundle
//! repo@ref, ready for a matrix of `actions/checkout`.

use release_model::{Release, RepoPin};
use serde::Serialize;

/// One checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkout {
    /// Stable name: `platform`, `frontend`, `bundles-<repo>`.
    pub name: String,
    /// `owner/name` for GitHub repositories (what `actions/checkout` takes), else the URL.
    pub repository: String,
    /// The repository as written in the descriptor.
    pub url: String,
    /// The ref to check out.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Where to check it out.
    pub path: String,
    /// Ids of the bundles that come from this checkout.
    pub bundles: Vec<String>,
}

/// `owner/name` when `repo` is a GitHub repository (`owner/name`, `git@github.com:o/n.git`,
/// `https://github.com/o/n`, `ssh://git@github.com/o/n.git`).
pub(crate) fn github_repository(repo: &str) -> Option<String> {
    let rest = if let Some(rest) = repo.strip_prefix("git@github.com:") {
        rest
    } else if let Some((_, rest)) = repo.split_once("://") {
        let rest = rest
            .split_once('@')
            .map_or(rest, |(_, host_path)| host_path);
        rest.strip_prefix("github.com/")?
    } else if !repo.starts_with(['/', '.']) && !repo.contains(':') {
        repo
    } else {
        return None;
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(name), None) if !owner.is_empty() && !name.is_empty() => {
            Some(format!("{owner}/{name}"))
        }
        _ => None,
    }
}

/// The identity of a repository for de-duplication (GitHub names compare case-insensitively).
pub(crate) fn repository_key(repo: &str) -> String {
    match github_repository(repo) {
        Some(name) => format!("github:{}", name.to_ascii_lowercase()),
        None => repo
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_owned(),
    }
}

fn short_name(repo: &str) -> String {
    let base = repo
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "repo".into()
    } else {
        cleaned
    }
}

/// The checkouts of a release, in descriptor order: platform, frontend, then bundle repos.
/// A repo@ref used several times is checked out once and lists all its bundles.
pub(crate) fn checkouts(release: &Release, dir: &str) -> Vec<Checkout> {
    let mut list: Vec<(String, Checkout)> = Vec::new();
    let dir = dir.trim_end_matches('/');
    let mut add = |name: String, pin: &RepoPin, bundle: Option<&str>| {
        let key = format!("{}@{}", repository_key(&pin.repo), pin.git_ref);
        if let Some((_, existing)) = list.iter_mut().find(|(k, _)| *k == key) {
            if let Some(id) = bundle {
                existing.bundles.push(id.to_owned());
            }
            return;
        }
        let mut unique = name.clone();
        let mut counter = 2;
        while list.iter().any(|(_, c)| c.name == unique) {
            unique = format!("{name}-{counter}");
            counter += 1;
        }
        list.push((
            key,
            Checkout {
                path: if dir.is_empty() {
                    unique.clone()
                } else {
                    format!("{dir}/{unique}")
                },
                name: unique,
                repository: github_repository(&pin.repo).unwrap_or_else(|| pin.repo.clone()),
                url: pin.repo.clone(),
                git_ref: pin.git_ref.clone(),
                bundles: bundle.map(str::to_owned).into_iter().collect(),
            },
        ));
    };
    if let Some(platform) = &release.platform {
        add("platform".into(), platform, None);
    }
    if let Some(frontend) = &release.frontend {
        add("frontend".into(), frontend, None);
    }
    // `path` and config-only items name no repository: nothing to check out for them.
    for item in release
        .bundles
        .items
        .iter()
        .filter(|item| item.kind() == release_model::ItemKind::Git)
    {
        add(
            format!("bundles-{}", short_name(&item.repo)),
            &item.pin(),
            Some(&item.id),
        );
    }
    list.into_iter().map(|(_, checkout)| checkout).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_repositories_in_every_spelling() {
        for repo in [
            "acme/customer",
            "git@github.com:acme/customer.git",
            "https://github.com/acme/customer",
            "https://github.com/acme/customer.git/",
            "ssh://git@github.com/acme/customer.git",
        ] {
            assert_eq!(
                github_repository(repo).as_deref(),
                Some("acme/customer"),
                "{repo}"
            );
        }
        for repo in [
            "https://git.example.com/org/x.git",
            "git@gitlab.com:org/x.git",
            "/srv/git/x",
            "file:///srv/git/x",
        ] {
            assert_eq!(github_repository(repo), None, "{repo}");
        }
    }

    fn pin(repo: &str, git_ref: &str) -> RepoPin {
        RepoPin {
            repo: repo.into(),
            git_ref: git_ref.into(),
        }
    }

    fn item(id: &str, repo: &str, git_ref: &str) -> release_model::BundleItem {
        release_model::BundleItem {
            id: id.into(),
            repo: repo.into(),
            git_ref: git_ref.into(),
            module: format!("{id}.entrypoint"),
            ..Default::default()
        }
    }

    #[test]
    fn distinct_repo_at_ref_is_checked_out_once() {
        let release = Release {
            platform: Some(pin("acme/platform", "v0.3.2")),
            frontend: Some(pin("acme/customer", "ui-v1")),
            bundles: release_model::Bundles {
                version: None,
                default_bundle_id: None,
                items: vec![
                    item("a@1", "git@github.com:acme/customer.git", "bundles-v1"),
                    item("b@1", "https://github.com/Acme/Customer", "bundles-v1"),
                    item("c@1", "git@github.com:acme/customer.git", "bundles-v2"),
                    item("d@1", "acme/customer", "ui-v1"),
                ],
            },
            ..Release::default()
        };
        let list = checkouts(&release, "checkouts");
        let summary: Vec<(&str, &str, &str, &str, Vec<String>)> = list
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.repository.as_str(),
                    c.git_ref.as_str(),
                    c.path.as_str(),
                    c.bundles.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "platform",
                    "acme/platform",
                    "v0.3.2",
                    "checkouts/platform",
                    vec![]
                ),
                (
                    "frontend",
                    "acme/customer",
                    "ui-v1",
                    "checkouts/frontend",
                    vec!["d@1".to_owned()]
                ),
                (
                    "bundles-customer",
                    "acme/customer",
                    "bundles-v1",
                    "checkouts/bundles-customer",
                    vec!["a@1".to_owned(), "b@1".to_owned()]
                ),
                (
                    "bundles-customer-2",
                    "acme/customer",
                    "bundles-v2",
                    "checkouts/bundles-customer-2",
                    vec!["c@1".to_owned()]
                ),
            ]
        );
    }
}
