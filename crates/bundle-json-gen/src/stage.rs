//! Staging baked bundles: copy `<checkout>/<subdir>/<folder>` to `<dest>/<folder>` for every
//! item, refusing anything that could escape (a `subdir` or folder that resolves out of the
//! checkout, symlinks that resolve out of the bundle folder, paths out of `dest`), never
//! silently replacing a different bundle, and recording a sha256 manifest.
//!
//! File names are copied byte for byte: a name that is not UTF-8 keeps its bytes on disk, and
//! the manifest records them (`path_bytes`), so two names never collapse into one.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
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
pub(crate) struct ManifestFile {
    /// Path relative to the bundle folder, `/`-separated. A byte that is not part of valid
    /// UTF-8 is written `\xNN` (then `path_bytes` holds the exact name).
    pub path: String,
    /// The path's exact bytes in hex, only for a path that is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// Hex sha256 of the contents (of the link text for symlinks).
    pub sha256: String,
    /// `file`, `executable` or `symlink`.
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StagedBundle {
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
pub(crate) struct Manifest {
    /// Destination root.
    pub dest: String,
    /// Bundles in descriptor order.
    pub bundles: Vec<StagedBundle>,
}

/// Which checkout holds each bundle.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckoutMap {
    by_id: BTreeMap<String, PathBuf>,
    by_pin: Vec<(String, String, PathBuf)>,
}

impl CheckoutMap {
    /// From `id=path` pairs.
    pub(crate) fn add_pairs(&mut self, pairs: &[String]) -> Result<(), StageError> {
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
    pub(crate) fn add_json(&mut self, json: &str) -> Result<(), StageError> {
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
    pub(crate) fn find(&self, item: &BundleItem) -> Option<&Path> {
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

/// One entry found by [`scan`]: where it is, its path relative to the bundle folder (exact
/// bytes), and its manifest line.
#[derive(Debug)]
struct Entry {
    source: PathBuf,
    relative: PathBuf,
    file: ManifestFile,
}

/// `bytes` as text: valid UTF-8 as is, any other byte as `\xNN`.
fn escaped(bytes: &[u8]) -> String {
    let mut text = String::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// Most symlinks followed while resolving one link (the kernel's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

/// One step of a path being resolved.
enum Step {
    Up,
    Name(OsString),
}

/// The steps of a relative path; `None` for an absolute one.
fn steps(path: &Path) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => steps.push(Step::Name(part.to_owned())),
            Component::ParentDir => steps.push(Step::Up),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(steps)
}

/// Resolves the target of a link that sits in `root/link_dir` the way the kernel will:
/// component by component, following every symlink met on the way in the real tree (`a -> .`
/// then `b -> a/..` climbs out, though `a/..` looks harmless written down). True when the
/// result stays inside `root`; an absolute target, a loop or a climb above `root` is false.
fn resolves_inside(root: &Path, link_dir: &Path, target: &Path) -> bool {
    let mut stack: Vec<OsString> = Vec::new();
    for step in steps(link_dir).unwrap_or_default() {
        match step {
            Step::Name(part) => stack.push(part),
            Step::Up => return false,
        }
    }
    let Some(target) = steps(target) else {
        return false;
    };
    let mut pending: VecDeque<Step> = target.into();
    let mut hops = 0;
    while let Some(step) = pending.pop_front() {
        let part = match step {
            Step::Up => {
                if stack.pop().is_none() {
                    return false;
                }
                continue;
            }
            Step::Name(part) => part,
        };
        let mut path = root.to_path_buf();
        path.extend(stack.iter());
        path.push(&part);
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            stack.push(part);
            continue;
        }
        hops += 1;
        let next = fs::read_link(&path).ok().and_then(|next| steps(&next));
        match next {
            Some(next) if hops <= MAX_LINK_HOPS => {
                for step in next.into_iter().rev() {
                    pending.push_front(step);
                }
            }
            _ => return false,
        }
    }
    true
}

/// Lists the files of a tree (sorted by their exact path bytes), refusing symlinks that
/// resolve out of it.
fn scan(id: &str, root: &Path) -> Result<Vec<Entry>, StageError> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative_dir) = stack.pop() {
        let dir = root.join(&relative_dir);
        let entries = fs::read_dir(&dir).map_err(io("list", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io("list", &dir))?;
            let path = entry.path();
            let relative = relative_dir.join(entry.file_name());
            let bytes = relative.as_os_str().as_bytes();
            let (display, path_bytes) = match std::str::from_utf8(bytes) {
                Ok(text) => (text.to_owned(), None),
                Err(_) => (escaped(bytes), Some(hex(bytes))),
            };
            let metadata = fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
            let (sha256, kind) = if metadata.file_type().is_symlink() {
                let target = fs::read_link(&path).map_err(io("read link", &path))?;
                if !resolves_inside(root, &relative_dir, &target) {
                    return Err(StageError::Escape {
                        id: id.to_owned(),
                        path,
                        reason: "is a symlink pointing outside the bundle folder",
                    });
                }
                (
                    hex(&Sha256::digest(target.as_os_str().as_bytes())),
                    "symlink",
                )
            } else if metadata.is_dir() {
                stack.push(relative);
                continue;
            } else if metadata.is_file() {
                let kind = if is_executable(&metadata) {
                    "executable"
                } else {
                    "file"
                };
                (sha256_file(&path)?, kind)
            } else {
                continue;
            };
            files.push(Entry {
                source: path,
                relative,
                file: ManifestFile {
                    path: display,
                    path_bytes,
                    sha256,
                    kind,
                },
            });
        }
    }
    files.sort_by(|a, b| {
        a.relative
            .as_os_str()
            .as_bytes()
            .cmp(b.relative.as_os_str().as_bytes())
    });
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

fn copy_tree(files: &[Entry], destination: &Path) -> Result<(), StageError> {
    fs::create_dir_all(destination).map_err(io("create", destination))?;
    for entry in files {
        let target = destination.join(&entry.relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        if entry.file.kind == "symlink" {
            let link = fs::read_link(&entry.source).map_err(io("read link", &entry.source))?;
            symlink(&link, &target)?;
        } else {
            fs::copy(&entry.source, &target).map_err(io("copy to", &target))?;
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

/// The bundle folder `source` as the file system resolves it, when it is a directory inside
/// `checkout` (resolved too); a symlink on the way that leads elsewhere is refused.
fn inside_checkout(id: &str, checkout: &Path, source: &Path) -> Result<PathBuf, StageError> {
    let missing = || StageError::MissingFolder {
        id: id.to_owned(),
        path: source.to_owned(),
    };
    let real_checkout = fs::canonicalize(checkout).map_err(io("resolve", checkout))?;
    let real_source = fs::canonicalize(source).map_err(|_| missing())?;
    if !real_source.starts_with(&real_checkout) {
        return Err(StageError::Escape {
            id: id.to_owned(),
            path: source.to_owned(),
            reason: "resolves outside the checkout (through a symlink)",
        });
    }
    if !fs::metadata(&real_source).is_ok_and(|m| m.is_dir()) {
        return Err(missing());
    }
    Ok(real_source)
}

/// Options of a staging run.
#[derive(Debug, Clone)]
pub(crate) struct StageOptions {
    /// Destination root (`./bundles`, copied to `/bundles` in the image).
    pub dest: PathBuf,
    /// Replace an existing, different bundle folder.
    pub replace: bool,
}

/// Stages every item. The folder name comes from a validated `module` (no separators, no
/// `..`), and `subdir` is validated too; both are checked again here before any copy.
pub(crate) fn stage(
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
        // The bundle-root shape (`module: entrypoint`) names the bundle folder by `subdir`.
        let source = if item.is_bundle_root() {
            checkout.join(subdir)
        } else {
            checkout.join(subdir).join(folder)
        };
        // `subdir` and the folder are checked as written above; here as the file system
        // resolves them: a symlinked `subdir` must not lead out of the checkout.
        let real_source = inside_checkout(&item.id, checkout, &source)?;
        let module_file = real_source.join(format!("{entrypoint}.py"));
        let package = real_source.join(entrypoint).join("__init__.py");
        if !module_file.is_file() && !package.is_file() {
            return Err(StageError::NoEntrypoint {
                id: item.id.clone(),
                folder: source,
                module: entrypoint.to_owned(),
            });
        }
        let files = scan(&item.id, &real_source)?;
        let destination = options.dest.join(folder);
        let mut status = "copied";
        if let Ok(metadata) = fs::symlink_metadata(&destination) {
            if metadata.file_type().is_symlink() {
                return Err(StageError::Escape {
                    id: item.id.clone(),
                    path: destination,
                    reason: "is a symlink; refusing to stage through it",
                });
            }
            let existing = scan(&item.id, &destination)?;
            let same = existing
                .iter()
                .map(|e| &e.file)
                .eq(files.iter().map(|e| &e.file));
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
            files: files.into_iter().map(|e| e.file).collect(),
        });
    }
    Ok(Manifest {
        dest: options.dest.display().to_string(),
        bundles: staged,
    })
}
