//! The release descriptor as typed data.
//!
//! ```yaml
//! release_name: "prod-2026-11-24"
//! platform:   { repo: "acme/platform", ref: "v0.3.2" }
//! frontend:   { repo: "acme/customer", ref: "ui-v2026.11.24" }
//! bundles:
//!   default_bundle_id: "support@3-1"
//!   items:
//!     - id: "support@3-1"
//!       repo: "git@github.com:acme/customer.git"
//!       ref: "bundles-v2026.11.24"
//!       subdir: "service/bundles"
//!       module: "support@3-1.entrypoint"
//!       props: { token: "env:DOCS_TOKEN" }
//! ```

use serde::Serialize;

/// Which kind of file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// A full `release.yaml`.
    #[default]
    Release,
    /// A `bundles.yaml` holding only the `bundles:` section.
    BundlesOnly,
}

/// A repository pinned at a ref (tag or commit).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RepoPin {
    /// `owner/name` on GitHub, or a clone URL.
    pub repo: String,
    /// Tag, full commit SHA, or (development only) a branch.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// One bundle of the release.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BundleItem {
    /// Unique id, conventionally `<name>@<version>`.
    pub id: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the runtime keeps one instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub singleton: Option<bool>,
    /// Repository holding the bundle (empty for a `path` item or a config-only item).
    pub repo: String,
    /// Tag or commit of `repo`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The parent folder of the bundle folders, relative to the repository root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subdir: Option<String>,
    /// `<bundle folder>.entrypoint`, relative to `subdir` (empty for a config-only item).
    pub module: String,
    /// A local bundle path in the runtime (`path` + `module` items, bundles.yaml).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Free-form properties (`config` in bundles.yaml, `props` its legacy alias); strings may
    /// be `env:NAME` or `file:/path` references.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub props: serde_json::Map<String, serde_json::Value>,
}

/// How an item names its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// `repo` + `ref` (+ `subdir`) + `module`: staged from a checkout, or fetched by the runtime.
    Git,
    /// `path` + `module`: code already at that path in the runtime.
    Path,
    /// `id` + `config` only: configuration of a bundle the platform ships.
    ConfigOnly,
}

impl BundleItem {
    /// True for the bundle-root shape of the platform's docs: `subdir` is the bundle folder
    /// and `module` is the entrypoint module itself (`module: entrypoint`, no dot).
    pub fn is_bundle_root(&self) -> bool {
        !self.module.is_empty() && !self.module.contains('.')
    }

    /// The bundle folder's name: `module` without its last dotted component
    /// (`support@3-1.entrypoint` -> `support@3-1`; ids may contain dots, so the split is from
    /// the right), or in the bundle-root shape the last component of `subdir`. `None` when
    /// there is none (a bundle-root `module` without `subdir`).
    pub fn folder(&self) -> Option<&str> {
        if self.is_bundle_root() {
            return self
                .subdir
                .as_deref()
                .map(|s| s.trim_end_matches('/'))
                .and_then(|s| s.rsplit('/').next())
                .filter(|name| !name.is_empty() && *name != "." && *name != "..");
        }
        self.module.rsplit_once('.').map(|(folder, _)| folder)
    }

    /// The entrypoint module name inside the folder (`entrypoint`).
    pub fn entrypoint(&self) -> Option<&str> {
        if self.is_bundle_root() {
            return Some(&self.module);
        }
        self.module.rsplit_once('.').map(|(_, module)| module)
    }

    /// The bundle folder relative to the repository root: `<subdir>/<folder>`, or `subdir`
    /// itself in the bundle-root shape.
    pub fn source_dir(&self) -> Option<String> {
        let subdir = self
            .subdir
            .as_deref()
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| !s.is_empty() && *s != ".");
        if self.is_bundle_root() {
            return subdir.map(str::to_owned);
        }
        let folder = self.folder()?;
        Some(match subdir {
            Some(subdir) => format!("{subdir}/{folder}"),
            None => folder.to_owned(),
        })
    }

    /// Which kind of item this is.
    pub fn kind(&self) -> ItemKind {
        if !self.repo.is_empty() || !self.git_ref.is_empty() {
            ItemKind::Git
        } else if self.path.is_some() {
            ItemKind::Path
        } else if self.module.is_empty() {
            ItemKind::ConfigOnly
        } else {
            ItemKind::Git
        }
    }

    /// The pin of the bundle's repository.
    pub fn pin(&self) -> RepoPin {
        RepoPin {
            repo: self.repo.clone(),
            git_ref: self.git_ref.clone(),
        }
    }
}

/// The `bundles:` section: what the runtime reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Bundles {
    /// `version` of a bundles.yaml (`"1"`), carried into the bundles.yaml output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The bundle used when a request names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_bundle_id: Option<String>,
    /// The bundles, in descriptor order.
    pub items: Vec<BundleItem>,
}

/// A whole release descriptor.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Release {
    /// `release_name`; absent in a bundles-only file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// The platform repository and ref (images are tagged from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<RepoPin>,
    /// The frontend repository and ref.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontend: Option<RepoPin>,
    /// The bundles.
    pub bundles: Bundles,
    /// Which kind of file this came from.
    #[serde(skip)]
    pub shape: Shape,
}

/// Top-level keys of a release descriptor.
pub const RELEASE_KEYS: &[&str] = &["release_name", "platform", "frontend", "bundles"];
/// Keys of `platform` and `frontend`.
pub const PIN_KEYS: &[&str] = &["repo", "ref"];
/// Keys of `bundles`.
pub const BUNDLES_KEYS: &[&str] = &["version", "default_bundle_id", "items"];
/// Keys of a bundle item.
pub const ITEM_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "singleton",
    "repo",
    "ref",
    "subdir",
    "module",
    "path",
    "config",
    "props",
];
/// Required keys of a git bundle item (a `path` item needs `id`, `path`, `module`; a
/// config-only item `id` and `config`).
pub const ITEM_REQUIRED: &[&str] = &["id", "repo", "ref", "module"];
