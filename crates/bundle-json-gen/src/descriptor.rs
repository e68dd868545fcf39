//! The runtime bundle descriptor in the shape each platform revision loads, and its forms.
//!
//! Platform facts (github.com/kdcube/kdcube-ai-app; the action README has the table):
//! - `module` is imported as a dotted Python path below `path` (`infra/plugin/agentic_loader.py`,
//!   `_load_module_from_dir`, at 88852901d 2026-03-01 and since): a folder with dots
//!   (`my-bundle@2.0.0`) cannot be the first part of `module`; the bundle-root shape
//!   (`path=<root>/<folder>`, `module=entrypoint`) loads it.
//! - Before 16eb1d711 (2026-04-04) a top-level module name is cached in `sys.modules`: two
//!   bundle-root entries with the same `module` may both get the first one's code.
//! - From ec362c0ab (2026-04-07) `_normalize` in `infra/plugin/bundle_registry.py` recomputes
//!   `path` from `repo` whenever `repo` is set: a baked entry that carries `repo` loads from a
//!   git checkout that does not exist.
//! - From ee8f10248 (2026-04-19) `AGENTIC_BUNDLES_JSON` is not read; `bundles.yaml` is.

use release_model::{BundleItem, Bundles, ItemKind};
use serde_json::{Map, Value};

pub(crate) use crate::json_text::json_text;
use crate::platform::{PlatformRevision, Revision};

/// How bundles reach the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Copied into the processor and exec images: `path` is the bundle in the image.
    Baked,
    /// Fetched by the runtime itself: `repo`/`ref`/`subdir`/`module`, no `path`.
    Git,
}

/// Choices that change the entries.
#[derive(Debug, Clone)]
pub struct Shaping {
    /// Delivery mode.
    pub mode: Mode,
    /// Bundles root in the image.
    pub bundles_root: String,
    /// Keep `repo`/`ref`/`subdir` on baked entries (`--traceability`).
    pub traceability: bool,
    /// The platform revision the release deploys, when known.
    pub platform: Option<PlatformRevision>,
}

/// A descriptor that would not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Two bundle-root entries import the same top-level module.
    #[error(
        "bundles `{first}` and `{second}` both load as the top-level module `{module}` (each is described by its own folder, the bundle-root shape); platform revisions before 2026-04-04 (kdcube-ai-app 16eb1d711) give the second the first one's code"
    )]
    SharedModule {
        /// First id.
        first: String,
        /// Second id.
        second: String,
        module: String,
    },
    /// `--traceability` on a platform that recomputes `path` from `repo`.
    #[error(
        "--traceability keeps `repo` on baked entries, and platform revision {platform} recomputes `path` from `repo` (since 2026-04-07, kdcube-ai-app ec362c0ab): no baked bundle would load"
    )]
    Traceability {
        /// The revision given.
        platform: String,
    },
}

impl ShapeError {
    /// What would be valid.
    pub fn hint(&self) -> &'static str {
        match self {
            ShapeError::SharedModule { .. } => {
                "describe one in the parent shape (`subdir` the parent folder, `module: <folder>.entrypoint`, a folder name without dots), or pass --platform-revision=2026-04-04 (or later) when the release deploys such a platform"
            }
            ShapeError::Traceability { .. } => {
                "drop --traceability (the bundles.yaml output keeps the source as comments), or target a platform revision before 2026-04-07"
            }
        }
    }
}

/// Where a baked bundle's code is: (`path`, `module`).
///
/// The parent shape (`path=<root>`, `module=<folder>.<entry>`) loads on every platform revision
/// and is kept for folders without dots written that way; a folder with dots, and an item
/// written in the bundle-root shape (`subdir` the folder, `module: entrypoint`), get the
/// bundle-root shape.
pub(crate) fn baked_location(item: &BundleItem, bundles_root: &str) -> (String, String) {
    match (item.folder(), item.entrypoint()) {
        (Some(folder), Some(entry)) if folder.contains('.') || item.is_bundle_root() => (
            format!("{}/{folder}", bundles_root.trim_end_matches('/')),
            entry.to_owned(),
        ),
        _ => (bundles_root.to_owned(), item.module.clone()),
    }
}

/// `subdir` and `module` of a git entry: a folder with dots gets the bundle-root shape
/// (`subdir=<subdir>/<folder>`, `module=<entry>`), as the platform's docs prescribe.
pub(crate) fn git_location(item: &BundleItem) -> (Option<String>, String) {
    if item.is_bundle_root() {
        return (item.subdir.clone(), item.module.clone());
    }
    match (item.folder(), item.entrypoint()) {
        (Some(folder), Some(entry)) if folder.contains('.') => {
            let subdir = match item.subdir.as_deref().map(|s| s.trim_end_matches('/')) {
                Some(subdir) if !subdir.is_empty() && subdir != "." => format!("{subdir}/{folder}"),
                _ => folder.to_owned(),
            };
            (Some(subdir), entry.to_owned())
        }
        _ => (item.subdir.clone(), item.module.clone()),
    }
}

/// One entry: the fields both forms share, `config` under `config_key`.
pub(crate) fn entry(item: &BundleItem, shaping: &Shaping, config_key: &str) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".into(), item.id.clone().into());
    if let Some(name) = &item.name {
        object.insert("name".into(), name.clone().into());
    }
    if let Some(description) = &item.description {
        object.insert("description".into(), description.clone().into());
    }
    if let Some(singleton) = item.singleton {
        object.insert("singleton".into(), singleton.into());
    }
    match (item.kind(), shaping.mode) {
        (ItemKind::Path, _) => {
            object.insert("path".into(), item.path.clone().unwrap_or_default().into());
            object.insert("module".into(), item.module.clone().into());
        }
        (ItemKind::Git, Mode::Baked) => {
            let (path, module) = baked_location(item, &shaping.bundles_root);
            object.insert("path".into(), path.into());
            object.insert("module".into(), module.into());
            if shaping.traceability {
                object.insert("repo".into(), item.repo.clone().into());
                object.insert("ref".into(), item.git_ref.clone().into());
                if let Some(subdir) = &item.subdir {
                    object.insert("subdir".into(), subdir.clone().into());
                }
            }
        }
        (ItemKind::Git, Mode::Git) => {
            let (subdir, module) = git_location(item);
            object.insert("repo".into(), item.repo.clone().into());
            object.insert("ref".into(), item.git_ref.clone().into());
            if let Some(subdir) = subdir {
                object.insert("subdir".into(), subdir.into());
            }
            object.insert("module".into(), module.into());
        }
        (ItemKind::ConfigOnly, _) => {}
    }
    if !item.props.is_empty() {
        object.insert(config_key.into(), Value::Object(item.props.clone()));
    }
    object
}

/// Refuses shapes that would not load on the target platform.
pub(crate) fn check(bundles: &Bundles, shaping: &Shaping) -> Result<(), ShapeError> {
    if shaping.mode == Mode::Baked {
        if shaping.traceability {
            if let Some(platform) = &shaping.platform {
                if platform.reads(Revision::RepoOverridesPath) {
                    return Err(ShapeError::Traceability {
                        platform: platform.to_string(),
                    });
                }
            }
        }
        let collision_fixed = shaping
            .platform
            .as_ref()
            .is_some_and(|p| p.reads(Revision::ModuleCollisionFixed));
        if !collision_fixed {
            let mut seen: Vec<(&str, String)> = Vec::new();
            for item in bundles.items.iter().filter(|i| i.kind() == ItemKind::Git) {
                let (_, module) = baked_location(item, &shaping.bundles_root);
                if module.contains('.') {
                    continue;
                }
                if let Some((first, _)) = seen.iter().find(|(_, m)| *m == module) {
                    return Err(ShapeError::SharedModule {
                        first: (*first).to_owned(),
                        second: item.id.clone(),
                        module,
                    });
                }
                seen.push((&item.id, module));
            }
        }
    }
    Ok(())
}

/// The items `AGENTIC_BUNDLES_JSON` cannot carry: config-only items (every loader that reads
/// the variable refuses an entry with neither `path` nor `repo`, `bundle_registry._normalize`).
pub(crate) fn json_skipped(bundles: &Bundles) -> Vec<&BundleItem> {
    bundles
        .items
        .iter()
        .filter(|i| i.kind() == ItemKind::ConfigOnly)
        .collect()
}

/// `AGENTIC_BUNDLES_JSON`, in descriptor order: `{"default_bundle_id": ..., "bundles": {...}}`.
/// An empty list gives `{"bundles": {}}`.
pub(crate) fn runtime_descriptor(bundles: &Bundles, shaping: &Shaping) -> Value {
    let mut object = Map::new();
    if let Some(default) = &bundles.default_bundle_id {
        object.insert("default_bundle_id".into(), default.clone().into());
    }
    let entries: Map<String, Value> = bundles
        .items
        .iter()
        .filter(|item| item.kind() != ItemKind::ConfigOnly)
        .map(|item| {
            (
                item.id.clone(),
                Value::Object(entry(item, shaping, "props")),
            )
        })
        .collect();
    object.insert("bundles".into(), Value::Object(entries));
    Value::Object(object)
}

/// `NAME='<compact json>'`: one line that sh, bash, docker compose and python-dotenv all read
/// back as the exact JSON text (see [`crate::json_text`]).
pub(crate) fn dotenv_line(name: &str, value: &Value) -> String {
    format!("{name}='{}'", json_text(value, false))
}

/// The ECS container-definition environment entry: `{"name": NAME, "value": "<json>"}`.
pub(crate) fn ecs_entry(name: &str, value: &Value, pretty: bool) -> String {
    let entry = serde_json::json!({"name": name, "value": json_text(value, false)});
    json_text(&entry, pretty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, module: &str) -> BundleItem {
        BundleItem {
            id: id.into(),
            name: Some("My Bundle".into()),
            repo: "https://git.example.com/org/my-bundle.git".into(),
            git_ref: "v2.0.0".into(),
            subdir: Some("bundles".into()),
            module: module.into(),
            ..BundleItem::default()
        }
    }

    fn shaping(mode: Mode) -> Shaping {
        Shaping {
            mode,
            bundles_root: "/bundles".into(),
            traceability: false,
            platform: None,
        }
    }

    fn bundles(items: Vec<BundleItem>) -> Bundles {
        Bundles {
            default_bundle_id: items.first().map(|i| i.id.clone()),
            items,
            ..Bundles::default()
        }
    }

    #[test]
    fn a_dotted_folder_gets_the_bundle_root_shape_and_no_repo_by_default() {
        let b = bundles(vec![item("my-bundle@2.0.0", "my-bundle@2.0.0.entrypoint")]);
        let value = runtime_descriptor(&b, &shaping(Mode::Baked));
        assert_eq!(
            json_text(&value, false),
            r#"{"default_bundle_id":"my-bundle@2.0.0","bundles":{"my-bundle@2.0.0":{"id":"my-bundle@2.0.0","name":"My Bundle","path":"/bundles/my-bundle@2.0.0","module":"entrypoint"}}}"#
        );
        let git = runtime_descriptor(&b, &shaping(Mode::Git));
        assert_eq!(
            git["bundles"]["my-bundle@2.0.0"],
            serde_json::json!({"id": "my-bundle@2.0.0", "name": "My Bundle",
                "repo": "https://git.example.com/org/my-bundle.git", "ref": "v2.0.0",
                "subdir": "bundles/my-bundle@2.0.0", "module": "entrypoint"})
        );
    }

    #[test]
    fn a_bundle_root_item_stays_bundle_root_in_both_modes() {
        let mut root = item("acme.marketing@2-0", "entrypoint");
        root.subdir = Some("src/marketing_bundle".into());
        let b = bundles(vec![root]);
        let baked = runtime_descriptor(&b, &shaping(Mode::Baked));
        assert_eq!(
            baked["bundles"]["acme.marketing@2-0"]["path"],
            "/bundles/marketing_bundle"
        );
        assert_eq!(
            baked["bundles"]["acme.marketing@2-0"]["module"],
            "entrypoint"
        );
        let git = runtime_descriptor(&b, &shaping(Mode::Git));
        assert_eq!(
            git["bundles"]["acme.marketing@2-0"]["subdir"],
            "src/marketing_bundle"
        );
        assert_eq!(git["bundles"]["acme.marketing@2-0"]["module"], "entrypoint");
    }

    #[test]
    fn a_plain_folder_keeps_the_parent_shape() {
        let b = bundles(vec![item("support@3-1", "support@3-1.entrypoint")]);
        let value = runtime_descriptor(&b, &shaping(Mode::Baked));
        assert_eq!(value["bundles"]["support@3-1"]["path"], "/bundles");
        assert_eq!(
            value["bundles"]["support@3-1"]["module"],
            "support@3-1.entrypoint"
        );
    }

    #[test]
    fn traceability_keeps_repo_and_is_refused_for_a_platform_that_recomputes_path() {
        let b = bundles(vec![item("support@3-1", "support@3-1.entrypoint")]);
        let mut with = shaping(Mode::Baked);
        with.traceability = true;
        assert_eq!(
            runtime_descriptor(&b, &with)["bundles"]["support@3-1"]["ref"],
            "v2.0.0"
        );
        assert_eq!(check(&b, &with), Ok(()));
        with.platform = Some("2026-04-07".parse().expect("date"));
        assert!(matches!(
            check(&b, &with),
            Err(ShapeError::Traceability { .. })
        ));
        with.platform = Some("2026-04-06".parse().expect("date"));
        assert_eq!(check(&b, &with), Ok(()));
    }

    #[test]
    fn two_dotted_folders_share_a_module_name_before_the_collision_fix() {
        let b = bundles(vec![
            item("a.b@1", "a.b@1.entrypoint"),
            item("c.d@2", "c.d@2.entrypoint"),
        ]);
        let mut s = shaping(Mode::Baked);
        assert!(matches!(
            check(&b, &s),
            Err(ShapeError::SharedModule { .. })
        ));
        s.platform = Some("2026-04-04".parse().expect("date"));
        assert_eq!(check(&b, &s), Ok(()));
    }
}
