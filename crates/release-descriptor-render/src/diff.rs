//! What changed between two descriptors (e.g. `main` and a pull request): platform and
//! frontend refs, bundles added, removed, re-pinned or otherwise modified.

use release_model::{BundleItem, Release, RepoPin};
use runner_protocol::summary::escape_cell;
use serde::Serialize;

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Change<T> {
    /// In the base descriptor.
    pub from: T,
    /// In this descriptor.
    pub to: T,
}

/// A bundle whose repository or ref changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Repin {
    /// Bundle id.
    pub id: String,
    /// Before and after.
    #[serde(flatten)]
    pub change: Change<RepoPin>,
}

/// A bundle with other fields changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Modified {
    /// Bundle id.
    pub id: String,
    /// Which fields (`module`, `subdir`, `props`, ...).
    pub fields: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub(crate) struct BundleChanges {
    /// Ids only in this descriptor.
    pub added: Vec<String>,
    /// Ids only in the base.
    pub removed: Vec<String>,
    /// Same id, different repo or ref.
    pub repinned: Vec<Repin>,
    /// Same id, other fields changed.
    pub modified: Vec<Modified>,
}

/// The whole difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ReleaseDiff {
    /// True when anything differs.
    pub changed: bool,
    /// `release_name`.
    pub release_name: Option<Change<Option<String>>>,
    /// `platform`.
    pub platform: Option<Change<Option<RepoPin>>>,
    /// `frontend`.
    pub frontend: Option<Change<Option<RepoPin>>>,
    /// `bundles.default_bundle_id`.
    pub default_bundle_id: Option<Change<Option<String>>>,
    /// Bundles.
    pub bundles: BundleChanges,
}

fn change<T: PartialEq + Clone>(from: &T, to: &T) -> Option<Change<T>> {
    (from != to).then(|| Change {
        from: from.clone(),
        to: to.clone(),
    })
}

fn modified_fields(from: &BundleItem, to: &BundleItem) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let checks: [(&'static str, bool); 6] = [
        ("name", from.name != to.name),
        ("description", from.description != to.description),
        ("singleton", from.singleton != to.singleton),
        ("subdir", from.subdir != to.subdir),
        ("module", from.module != to.module),
        ("props", from.props != to.props),
    ];
    for (name, differs) in checks {
        if differs {
            fields.push(name);
        }
    }
    fields
}

/// Compares `base` with `new`.
pub(crate) fn diff(base: &Release, new: &Release) -> ReleaseDiff {
    let mut bundles = BundleChanges::default();
    for item in &new.bundles.items {
        match base.bundles.items.iter().find(|b| b.id == item.id) {
            None => bundles.added.push(item.id.clone()),
            Some(old) => {
                if let Some(change) = change(&old.pin(), &item.pin()) {
                    bundles.repinned.push(Repin {
                        id: item.id.clone(),
                        change,
                    });
                }
                let fields = modified_fields(old, item);
                if !fields.is_empty() {
                    bundles.modified.push(Modified {
                        id: item.id.clone(),
                        fields,
                    });
                }
            }
        }
    }
    for old in &base.bundles.items {
        if !new.bundles.items.iter().any(|b| b.id == old.id) {
            bundles.removed.push(old.id.clone());
        }
    }
    let mut result = ReleaseDiff {
        changed: false,
        release_name: change(&base.release_name, &new.release_name),
        platform: change(&base.platform, &new.platform),
        frontend: change(&base.frontend, &new.frontend),
        default_bundle_id: change(
            &base.bundles.default_bundle_id,
            &new.bundles.default_bundle_id,
        ),
        bundles,
    };
    result.changed = result.release_name.is_some()
        || result.platform.is_some()
        || result.frontend.is_some()
        || result.default_bundle_id.is_some()
        || !result.bundles.added.is_empty()
        || !result.bundles.removed.is_empty()
        || !result.bundles.repinned.is_empty()
        || !result.bundles.modified.is_empty();
    result
}

fn pin_text(pin: &Option<RepoPin>) -> String {
    match pin {
        Some(pin) => format!("{}@{}", pin.repo, pin.git_ref),
        None => "(none)".into(),
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "(none)".into())
}

/// The diff as markdown for a step summary or a PR comment.
pub(crate) fn markdown(diff: &ReleaseDiff) -> String {
    let mut out = String::from("### Release changes\n\n");
    if !diff.changed {
        out.push_str("No changes.\n");
        return out;
    }
    out.push_str("| what | base | this |\n| --- | --- | --- |\n");
    let mut row = |what: &str, from: String, to: String| {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            escape_cell(what),
            escape_cell(&from),
            escape_cell(&to)
        ));
    };
    if let Some(change) = &diff.release_name {
        row("release name", text(&change.from), text(&change.to));
    }
    if let Some(change) = &diff.platform {
        row("platform", pin_text(&change.from), pin_text(&change.to));
    }
    if let Some(change) = &diff.frontend {
        row("frontend", pin_text(&change.from), pin_text(&change.to));
    }
    if let Some(change) = &diff.default_bundle_id {
        row("default bundle", text(&change.from), text(&change.to));
    }
    for id in &diff.bundles.added {
        row(&format!("bundle {id}"), "(absent)".into(), "added".into());
    }
    for id in &diff.bundles.removed {
        row(&format!("bundle {id}"), "present".into(), "removed".into());
    }
    for repin in &diff.bundles.repinned {
        row(
            &format!("bundle {} pin", repin.id),
            pin_text(&Some(repin.change.from.clone())),
            pin_text(&Some(repin.change.to.clone())),
        );
    }
    for modified in &diff.bundles.modified {
        row(
            &format!("bundle {}", modified.id),
            String::new(),
            format!("changed: {}", modified.fields.join(", ")),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(repo: &str, git_ref: &str) -> RepoPin {
        RepoPin {
            repo: repo.into(),
            git_ref: git_ref.into(),
        }
    }

    fn item(id: &str, git_ref: &str) -> BundleItem {
        BundleItem {
            id: id.into(),
            repo: "acme/customer".into(),
            git_ref: git_ref.into(),
            module: format!("{id}.entrypoint"),
            ..Default::default()
        }
    }

    fn release(platform: &str, items: Vec<BundleItem>) -> Release {
        Release {
            release_name: Some("r".into()),
            platform: Some(pin("acme/platform", platform)),
            frontend: Some(pin("acme/customer", "ui-v1")),
            bundles: release_model::Bundles {
                version: None,
                default_bundle_id: items.first().map(|i| i.id.clone()),
                items,
            },
            ..Release::default()
        }
    }

    #[test]
    fn identical_descriptors_have_no_changes() {
        let base = release("v1", vec![item("a@1", "b-v1")]);
        let result = diff(&base, &base.clone());
        assert!(!result.changed);
        assert_eq!(markdown(&result), "### Release changes\n\nNo changes.\n");
    }

    #[test]
    fn reports_ref_changes_and_bundles_added_removed_repinned_modified() {
        let base = release(
            "v1",
            vec![
                item("a@1", "b-v1"),
                item("gone@1", "b-v1"),
                item("m@1", "b-v1"),
            ],
        );
        let mut modified = item("m@1", "b-v1");
        modified.subdir = Some("bundles".into());
        let new = release(
            "v2",
            vec![item("a@1", "b-v2"), item("new@1", "b-v2"), modified],
        );
        let result = diff(&base, &new);
        assert!(result.changed);
        assert_eq!(
            serde_json::to_value(&result).expect("json"),
            serde_json::json!({
                "changed": true,
                "release_name": null,
                "platform": {"from": {"repo": "acme/platform", "ref": "v1"}, "to": {"repo": "acme/platform", "ref": "v2"}},
                "frontend": null,
                "default_bundle_id": null,
                "bundles": {
                    "added": ["new@1"],
                    "removed": ["gone@1"],
                    "repinned": [{"id": "a@1", "from": {"repo": "acme/customer", "ref": "b-v1"}, "to": {"repo": "acme/customer", "ref": "b-v2"}}],
                    "modified": [{"id": "m@1", "fields": ["subdir"]}]
                }
            })
        );
        insta::assert_snapshot!(markdown(&result), @r"
        ### Release changes

        | what | base | this |
        | --- | --- | --- |
        | platform | acme/platform@v1 | acme/platform@v2 |
        | bundle new@1 | (absent) | added |
        | bundle gone@1 | present | removed |
        | bundle a@1 pin | acme/customer@b-v1 | acme/customer@b-v2 |
        | bundle m@1 |  | changed: subdir |
        ");
    }
}
