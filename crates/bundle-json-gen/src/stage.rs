//! Staging baked bundles: copy `<checkout>/<subdir>/<folder>` to `<dest>/<folder>` for every
//! item, refusing anything that could escape (symlinks out of the source tree, paths out of
//! `dest`), never silently replacing a different bundle, and recording a sha256 manifest.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use release_model::BundleItem;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// No checkout was given for a bundle.
    #[error("no checkout for bundle `{id}` ({repo} @ {git_ref})")]
    NoCheckout {
        /// Bundle id.
        id: String,
        /// Repository.
        repo: String,
        /// Ref.
        git_ref: String,
    },
    /// A `--checkout` entry or the `--checkouts` JSON is malformed.
    #[error("{0}")]
    Checkouts(String),
    /// The bundle folder is missing in the checkout.
    #[error("bundle `{id}`: {path} is not a directory")]
    MissingFolder {
        /// Bundle id.
        id: String,
        /// The expected folder.
        path: PathBuf,
    },
    /// Neither `<entrypoint>.py` nor `<entrypoint>/__init__.py` exists.
    #[error(
        "bundle `{id}`: no entrypoint module in {folder} (expected {module}.py or {module}/__init__.py)"
    )]
    NoEntrypoint {
        /// Bundle id.
        id: String,
        /// The folder.
        folder: PathBuf,
        /// The module name.
        module: String,
    },
    /// A path would leave its root.
    #[error("bundle `{id}`: {path} {reason}")]
    Escape {
        /// Bundle id.
        id: String,
        /// The offending path.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The destination holds a different bundle.
    #[error(
        "bundle `{id}`: {path} already exists with different contents; refusing to overwrite it"
    )]
    Exists {
        /// Bundle id.
        id: String,
        /// The existing folder.
        path: PathBuf,
    },
    /// File system error.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StageError + use<> {
    let path = path.to_owned();
    move |source| StageError::Io {
        action,
        path,
        source,
    }
}

/// One file of a staged bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestFile {
    /// Path relative to the bundle folder, `/`-separated.
    pub path: String,
    /// Hex sha256 of the contents (of the link text for symlinks).
    pub sha256: String,
    /// `file`, `executable` or `symlink`.
    pub kind: &'static str,
}

/// One staged bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedBundle {
    /// Bundle id.
    pub id: String,
    /// Folder under `dest`.
    pub folder: String,
    /// Repository.
    pub repo: String,
    /// Ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Where it was copied from.
    pub source: String,
    /// `copied` or `unchanged` (already staged with identical contents).
    pub status: &'static str,
    /// Files, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// The manifest written beside the staged bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Destination root.
    pub dest: String,
    /// Bundles in descriptor order.
    pub bundles: Vec<StagedBundle>,
}

/// Which checkout holds each bundle.
#[derive(Debug, Clone, Default)]
pub struct CheckoutMap {
    by_id: BTreeMap<String, PathBuf>,
    by_pin: Vec<(String, String, PathBuf)>,
}

impl CheckoutMap {
    /// From `id=path` pairs.
    pub fn add_pairs(&mut self, pairs: &[String]) -> Result<(), StageError> {
        for pair in pairs {
            let (id, path) = pair
                .split_once('=')
                .filter(|(id, path)| !id.trim().is_empty() && !path.trim().is_empty())
                .ok_or_else(|| {
                    StageError::Checkouts(format!("--checkout `{pair}` must be `BUNDLE_ID=PATH`"))
                })?;
            self.by_id
                .insert(id.trim().to_owned(), PathBuf::from(path.trim()));
        }
        Ok(())
    }

    /// From the `checkouts` output of release-descriptor-render (`[{url, ref, path, bundles}]`).
    pub fn add_json(&mut self, json: &str) -> Result<(), StageError> {
        let list: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|error| {
            StageError::Checkouts(format!(
                "--checkouts is not a JSON list of checkouts: {error}"
            ))
        })?;
        for checkout in list {
            let Some(path) = checkout.get("path").and_then(|p| p.as_str()) else {
                return Err(StageError::Checkouts(
                    "a checkout in --checkouts has no `path`".into(),
                ));
            };
            for id in checkout
                .get("bundles")
                .and_then(|b| b.as_array())
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str())
            {
                self.by_id
                    .entry(id.to_owned())
                    .or_insert_with(|| PathBuf::from(path));
            }
            let url = checkout
                .get("url")
                .and_then(|u| u.as_str())
                .unwrap_or_default();
            let git_ref = checkout
                .get("ref")
                .and_then(|r| r.as_str())
                .unwrap_or_default();
            self.by_pin
                .push((url.to_owned(), git_ref.to_owned(), PathBuf::from(path)));
        }
        Ok(())
    }

    /// The checkout of `item`.
    pub fn find(&self, item: &BundleItem) -> Option<&Path> {
        self.by_id.get(&item.id).map(PathBuf::as_path).or_else(|| {
            self.by_pin
                .iter()
                .find(|(url, git_ref, _)| *url == item.repo && *git_ref == item.git_ref)
                .map(|(_, _, path)| path.as_path())
        })
    }
}

fn sha256_file(path: &Path) -> Result<String, StageError> {
    let mut file = fs::File::open(path).map_err(io("read", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(io("read", path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lexically resolves `link`'s target against its directory; `None` when it leaves `root`.
fn stays_inside(root: &Path, link_dir: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let Ok(mut relative) = link_dir.strip_prefix(root).map(Path::to_path_buf) else {
        return false;
    };
    for component in target.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !relative.pop() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Lists the files of a tree (sorted), refusing symlinks that leave it.
fn scan(id: &str, root: &Path) -> Result<Vec<(PathBuf, ManifestFile)>, StageError> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(io("list", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io("list", &dir))?;
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            let metadata = fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
            if metadata.file_type().is_symlink() {
                let target = fs::read_link(&path).map_err(io("read link", &path))?;
                if !stays_inside(root, &dir, &target) {
                    return Err(StageError::Escape {
                        id: id.to_owned(),
                        path,
                        reason: "is a symlink pointing outside the bundle folder",
                    });
                }
                let text = target.to_string_lossy().into_owned();
                files.push((
                    path,
                    ManifestFile {
                        path: relative,
                        sha256: hex(&Sha256::digest(text.as_bytes())),
                        kind: "symlink",
                    },
                ));
            } else if metadata.is_dir() {
                stack.push(path);
            } else if metadata.is_file() {
                let executable = is_executable(&metadata);
                files.push((
                    path.clone(),
                    ManifestFile {
                        path: relative,
                        sha256: sha256_file(&path)?,
                        kind: if executable { "executable" } else { "file" },
                    },
                ));
            }
        }
    }
    files.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    Ok(files)
}

#[cfg(unix)]
fn is_executable(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}

fn copy_tree(files: &[(PathBuf, ManifestFile)], destination: &Path) -> Result<(), StageError> {
    fs::create_dir_all(destination).map_err(io("create", destination))?;
    for (source, file) in files {
        let target = destination.join(&file.path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        if file.kind == "symlink" {
            let link = fs::read_link(source).map_err(io("read link", source))?;
            symlink(&link, &target)?;
        } else {
            fs::copy(source, &target).map_err(io("copy to", &target))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(link: &Path, target: &Path) -> Result<(), StageError> {
    std::os::unix::fs::symlink(link, target).map_err(io("create link", target))
}

#[cfg(not(unix))]
fn symlink(_: &Path, target: &Path) -> Result<(), StageError> {
    Err(StageError::Io {
        action: "create link",
        path: target.to_owned(),
        source: std::io::Error::other("symlinks are only staged on Unix"),
    })
}

/// Options of a staging run.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Destination root (`./bundles`, copied to `/bundles` in the image).
    pub dest: PathBuf,
    /// Replace an existing, different bundle folder.
    pub replace: bool,
}

/// Stages every item. The folder name comes from a validated `module` (no separators, no
/// `..`), and `subdir` is validated too; both are checked again here before any copy.
pub fn stage(
    items: &[BundleItem],
    checkouts: &CheckoutMap,
    options: &StageOptions,
) -> Result<Manifest, StageError> {
    let mut staged = Vec::new();
    for item in items {
        let folder = item.folder().unwrap_or_default();
        let entrypoint = item.entrypoint().unwrap_or_default();
        let plain = |part: &str| {
            !part.is_empty()
                && Path::new(part)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
        };
        if !plain(folder) || folder.contains(['/', '\\']) {
            return Err(StageError::Escape {
                id: item.id.clone(),
                path: PathBuf::from(folder),
                reason: "is not a plain folder name",
            });
        }
        let subdir = item.subdir.as_deref().unwrap_or("");
        if !subdir.is_empty()
            && !Path::new(subdir)
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(StageError::Escape {
                id: item.id.clone(),
                path: PathBuf::from(subdir),
                reason: "leaves the repository",
            });
        }
        let checkout = checkouts.find(item).ok_or_else(|| StageError::NoCheckout {
            id: item.id.clone(),
            repo: item.repo.clone(),
            git_ref: item.git_ref.clone(),
        })?;
        let source = checkout.join(subdir).join(folder);
        if !fs::symlink_metadata(&source).is_ok_and(|m| m.is_dir()) {
            return Err(StageError::MissingFolder {
                id: item.id.clone(),
                path: source,
            });
        }
        let module_file = source.join(format!("{entrypoint}.py"));
        let package = source.join(entrypoint).join("__init__.py");
        if !module_file.is_file() && !package.is_file() {
            return Err(StageError::NoEntrypoint {
                id: item.id.clone(),
                folder: source,
                module: entrypoint.to_owned(),
            });
        }
        let files = scan(&item.id, &source)?;
        let destination = options.dest.join(folder);
        let mut status = "copied";
        if fs::symlink_metadata(&destination).is_ok() {
            let existing = scan(&item.id, &destination)?;
            let same = existing
                .iter()
                .map(|(_, f)| f)
                .eq(files.iter().map(|(_, f)| f));
            if same {
                status = "unchanged";
            } else if options.replace {
                fs::remove_dir_all(&destination).map_err(io("remove", &destination))?;
            } else {
                return Err(StageError::Exists {
                    id: item.id.clone(),
                    path: destination,
                });
            }
        }
        if status == "copied" {
            copy_tree(&files, &destination)?;
        }
        staged.push(StagedBundle {
            id: item.id.clone(),
            folder: folder.to_owned(),
            repo: item.repo.clone(),
            git_ref: item.git_ref.clone(),
            source: source.display().to_string(),
            status,
            files: files.into_iter().map(|(_, f)| f).collect(),
        });
    }
    Ok(Manifest {
        dest: options.dest.display().to_string(),
        bundles: staged,
    })
}
