//! `pack`: one deterministic artifact from a directory, and the safety check every archive
//! passes before it is uploaded.
//!
//! The tar is built by hand from a sorted walk with fixed owner (0:0, no names), fixed mtime
//! (`SOURCE_DATE_EPOCH`, else 0) and modes normalised to 0755/0644, then gzip'd with a fixed
//! header (no name, mtime 0), so the same tree gives the same bytes on any machine.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Errors of `pack` and of the archive check.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file name is not UTF-8 (it could not be listed in the manifest faithfully).
    #[error("{path}: file names must be UTF-8")]
    NonUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The archive holds an entry that could write outside the release.
    #[error("archive {archive}: entry `{entry}` {reason}")]
    Unsafe {
        /// The archive.
        archive: PathBuf,
        /// The entry name as stored.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file of the manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path inside the release.
    pub path: String,
    /// `file`, `dir` or `symlink`.
    pub kind: &'static str,
    /// Mode as stored (`0755`/`0644`).
    pub mode: String,
    /// Size in bytes (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SHA-256 of the content (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Link target (symlinks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The manifest written next to the archive.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// The archive file name.
    pub archive: String,
    /// SHA-256 of the archive bytes.
    pub archive_sha256: String,
    /// Size of the archive.
    pub archive_size: u64,
    /// The mtime written into every entry.
    pub mtime: u64,
    /// Every entry, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), PackError> {
    let mut file = fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(io(path))?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<(), PackError> {
    let dir = root.join(relative);
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io(&dir))? {
        let entry = entry.map_err(io(&dir))?;
        names.push(entry.file_name());
    }
    names.sort();
    for name in names {
        let rel = relative.join(&name);
        let full = root.join(&rel);
        if name.to_str().is_none() {
            return Err(PackError::NonUtf8 { path: full });
        }
        let meta = fs::symlink_metadata(&full).map_err(io(&full))?;
        out.push(rel.clone());
        if meta.is_dir() {
            walk(root, &rel, out)?;
        }
    }
    Ok(())
}

/// How an artifact is compressed: chosen by the artifact's name when packing (`.tar.zst` or
/// `.tzst`: zstd, anything else gzip), recognised by its magic bytes when deploying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`tar -xzf` on the host).
    Gzip,
    /// zstd, level 3 (`tar --zstd -xf` on the host, which needs the `zstd` program there).
    Zstd,
}

impl Compression {
    /// The compression an artifact name asks for.
    pub fn for_name(path: &Path) -> Self {
        let name = path.to_string_lossy();
        if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Compression::Zstd
        } else {
            Compression::Gzip
        }
    }

    /// The compression of an existing archive, from its first bytes.
    pub fn detect(path: &Path) -> Result<Self, PackError> {
        let mut magic = [0u8; 4];
        let mut file = fs::File::open(path).map_err(io(path))?;
        std::io::Read::read_exact(&mut file, &mut magic).map_err(io(path))?;
        match magic {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd] => Ok(Compression::Zstd),
            _ => Err(PackError::Unsafe {
                archive: path.to_owned(),
                entry: "(header)".into(),
                reason: "is neither gzip nor zstd compressed: make it with `ssh-deploy pack`"
                    .into(),
            }),
        }
    }

    fn reader(self, file: fs::File) -> Result<Box<dyn Read>, std::io::Error> {
        Ok(match self {
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?),
        })
    }
}

/// The compressing writer under the tar builder.
enum Compressor {
    Gzip(flate2::write::GzEncoder<fs::File>),
    Zstd(zstd::stream::write::Encoder<'static, fs::File>),
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Compressor::Gzip(w) => w.write(buf),
            Compressor::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Compressor::Gzip(w) => w.flush(),
            Compressor::Zstd(w) => w.flush(),
        }
    }
}

impl Compressor {
    fn finish(self) -> std::io::Result<fs::File> {
        match self {
            Compressor::Gzip(w) => w.finish(),
            Compressor::Zstd(w) => w.finish(),
        }
    }
}

/// Packs `source` into a compressed tar at `output` (zstd for `.tar.zst`, else gzip) and
/// returns the manifest (also written to `manifest_path`). Symlinks are kept when they stay
/// inside the tree; other special files and escaping links are refused.
pub fn pack(
    source: &Path,
    output: &Path,
    manifest_path: &Path,
    mtime: u64,
) -> Result<Manifest, PackError> {
    let mut entries = Vec::new();
    walk(source, Path::new(""), &mut entries)?;
    // Links are judged as they will resolve on the host, before anything is written.
    let mut tree = Tree::default();
    for rel in &entries {
        let full = source.join(rel);
        let name = rel.to_string_lossy();
        let meta = fs::symlink_metadata(&full).map_err(io(&full))?;
        let target = if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(io(&full))?;
            Some(
                target
                    .to_str()
                    .ok_or_else(|| PackError::NonUtf8 { path: full.clone() })?
                    .to_owned(),
            )
        } else {
            None
        };
        let unsafe_entry = |reason: String| PackError::Unsafe {
            archive: source.to_owned(),
            entry: name.clone().into_owned(),
            reason,
        };
        if let Some(target) = &target {
            check_link(&name, target).map_err(unsafe_entry)?;
        }
        tree.add(&name, target.as_deref()).map_err(unsafe_entry)?;
    }
    tree.check().map_err(|(entry, reason)| PackError::Unsafe {
        archive: source.to_owned(),
        entry,
        reason,
    })?;
    // The artifact's directory is created when missing, as for every file the suite writes.
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let file = fs::File::create(output).map_err(io(output))?;
    let compressor = match Compression::for_name(output) {
        Compression::Gzip => Compressor::Gzip(
            flate2::GzBuilder::new()
                .mtime(0)
                .write(file, flate2::Compression::default()),
        ),
        // Single-threaded, no content size or dictionary: same input, same bytes.
        Compression::Zstd => {
            Compressor::Zstd(zstd::stream::write::Encoder::new(file, 3).map_err(io(output))?)
        }
    };
    let mut builder = tar::Builder::new(compressor);
    let mut files = Vec::new();
    for rel in &entries {
        let full = source.join(rel);
        let name = rel.to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&full).map_err(io(&full))?;
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        let unsafe_entry = |reason: &str| PackError::Unsafe {
            archive: source.to_owned(),
            entry: name.clone(),
            reason: reason.to_owned(),
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(io(&full))?;
            let target_text = target
                .to_str()
                .ok_or_else(|| PackError::NonUtf8 { path: full.clone() })?
                .to_owned();
            check_link(&name, &target_text).map_err(|r| unsafe_entry(&r))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_link(&mut header, &name, &target)
                .map_err(io(output))?;
            files.push(ManifestFile {
                path: name,
                kind: "symlink",
                mode: "0777".into(),
                size: None,
                sha256: None,
                target: Some(target_text),
            });
        } else if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, format!("{name}/"), std::io::empty())
                .map_err(io(output))?;
            files.push(ManifestFile {
                path: name,
                kind: "dir",
                mode: "0755".into(),
                size: None,
                sha256: None,
                target: None,
            });
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt as _;
            let executable = meta.permissions().mode() & 0o111 != 0;
            let mode = if executable { 0o755 } else { 0o644 };
            let (sha, size) = sha256_file(&full)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(mode);
            header.set_size(size);
            let content = fs::File::open(&full).map_err(io(&full))?;
            builder
                .append_data(&mut header, &name, content)
                .map_err(io(output))?;
            files.push(ManifestFile {
                path: name,
                kind: "file",
                mode: format!("{mode:04o}"),
                size: Some(size),
                sha256: Some(sha),
                target: None,
            });
        } else {
            return Err(unsafe_entry("is not a regular file, directory or symlink"));
        }
    }
    let compressor = builder.into_inner().map_err(io(output))?;
    let mut file = compressor.finish().map_err(io(output))?;
    file.flush().map_err(io(output))?;
    drop(file);
    let (archive_sha256, archive_size) = sha256_file(output)?;
    let manifest = Manifest {
        version: 1,
        archive: output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        archive_sha256,
        archive_size,
        mtime,
        files,
    };
    let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| PackError::Io {
        path: manifest_path.to_owned(),
        source: e.into(),
    })?;
    text.push('\n');
    fs::write(manifest_path, text).map_err(io(manifest_path))?;
    Ok(manifest)
}

/// Refuses a symlink whose target leaves the release: absolute, or climbing above the root.
fn check_link(entry: &str, target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        return Err(format!("is a symlink to the absolute path `{target}`"));
    }
    let mut depth: i64 = entry.trim_end_matches('/').split('/').count() as i64 - 1;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("is a symlink to `{target}`, outside the release"));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Most symlinks followed while resolving one link (the kernel's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

/// The tree an archive unpacks to, for judging symlinks the way the kernel will follow them
/// once every entry is in place: a link is resolved component by component, following the
/// links it meets (`a -> .` then `b -> a/..` leaves the release, though `a/..` reads as
/// "here" when judged as written).
#[derive(Debug, Default)]
struct Tree {
    /// Every entry, by its components.
    entries: std::collections::HashSet<Vec<String>>,
    /// Symlinks: entry -> target.
    links: std::collections::BTreeMap<Vec<String>, String>,
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(str::to_owned)
        .collect()
}

impl Tree {
    /// Adds an entry (a symlink with its target); an entry seen twice is refused: the second
    /// would replace the first after it was judged.
    fn add(&mut self, entry: &str, link: Option<&str>) -> Result<(), String> {
        let key = components(entry);
        if !self.entries.insert(key.clone()) {
            return Err("appears twice in the archive".into());
        }
        if let Some(target) = link {
            self.links.insert(key, target.to_owned());
        }
        Ok(())
    }

    /// The first entry that would be written through a symlink, or a symlink that resolves
    /// out of the release: `(entry, reason)`.
    fn check(&self) -> Result<(), (String, String)> {
        for entry in &self.entries {
            for length in 1..entry.len() {
                if self.links.contains_key(&entry[..length]) {
                    return Err((
                        entry.join("/"),
                        format!(
                            "lies under the symlink `{}`; an archive never writes through a link",
                            entry[..length].join("/")
                        ),
                    ));
                }
            }
        }
        for (link, target) in &self.links {
            if !self.resolves_inside(&link[..link.len() - 1], target) {
                return Err((
                    link.join("/"),
                    format!(
                        "is a symlink to `{target}`, which resolves outside the release through the links on its way"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn resolves_inside(&self, directory: &[String], target: &str) -> bool {
        if target.starts_with('/') {
            return false;
        }
        let mut stack: Vec<String> = directory.to_vec();
        let mut pending: std::collections::VecDeque<String> =
            target.split('/').map(str::to_owned).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            match part.as_str() {
                "" | "." => {}
                ".." => {
                    if stack.pop().is_none() {
                        return false;
                    }
                }
                _ => {
                    stack.push(part);
                    if let Some(next) = self.links.get(&stack) {
                        hops += 1;
                        if hops > MAX_LINK_HOPS || next.starts_with('/') {
                            return false;
                        }
                        stack.pop();
                        for step in next.split('/').rev() {
                            pending.push_front(step.to_owned());
                        }
                    }
                }
            }
        }
        true
    }
}

/// Checks every entry of a gzip'd tar before it goes anywhere: no absolute paths, no `..`, no
/// hard links or device files, no entry twice, nothing under a symlink, no symlink that
/// resolves out of the release once every entry is in place. The host verifies the same
/// bytes by SHA-256 before unpacking, so what is unpacked is what was checked here.
pub fn check_archive(path: &Path) -> Result<usize, PackError> {
    let compression = Compression::detect(path)?;
    let file = fs::File::open(path).map_err(io(path))?;
    let mut archive = tar::Archive::new(compression.reader(file).map_err(io(path))?);
    let mut count = 0;
    let mut tree = Tree::default();
    for entry in archive.entries().map_err(io(path))? {
        let entry = entry.map_err(io(path))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: String| PackError::Unsafe {
            archive: path.to_owned(),
            entry: raw.clone(),
            reason,
        };
        if raw.starts_with('/') {
            return Err(refuse("has an absolute path".into()));
        }
        let entry_path = PathBuf::from(&raw);
        if entry_path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        }) {
            return Err(refuse("climbs out of the release with `..`".into()));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Directory | tar::EntryType::Continuous => {
                tree.add(&raw, None).map_err(refuse)?;
            }
            tar::EntryType::GNULongName
            | tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader => {}
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                check_link(&raw, &target).map_err(refuse)?;
                tree.add(&raw, Some(&target)).map_err(refuse)?;
            }
            other => {
                return Err(refuse(format!(
                    "has type {other:?}; only files, directories and symlinks are deployed"
                )));
            }
        }
        count += 1;
    }
    tree.check().map_err(|(entry, reason)| PackError::Unsafe {
        archive: path.to_owned(),
        entry,
        reason,
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::create_dir_all(dir.join("bin")).expect("mkdir");
        fs::create_dir_all(dir.join("deploy/systemd")).expect("mkdir");
        fs::write(dir.join("bin/api"), "#!/bin/sh\necho api\n").expect("write");
        fs::set_permissions(dir.join("bin/api"), fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::write(dir.join("VERSION"), "sha=abc\n").expect("write");
        fs::write(dir.join("deploy/systemd/api.service"), "[Service]\n").expect("write");
        std::os::unix::fs::symlink("../bin/api", dir.join("deploy/api")).expect("symlink");
    }

    #[test]
    fn same_tree_gives_the_same_bytes() {
        let a = tempfile::tempdir().expect("tmp");
        let b = tempfile::tempdir().expect("tmp");
        let out = tempfile::tempdir().expect("tmp");
        tree(a.path());
        tree(b.path());
        // Different mtimes and modes of the inputs must not matter.
        let later = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(b.path().join("VERSION"))
            .expect("open")
            .set_modified(later)
            .expect("mtime");
        let first = pack(
            a.path(),
            &out.path().join("a.tar.gz"),
            &out.path().join("a.json"),
            0,
        )
        .expect("pack");
        let second = pack(
            b.path(),
            &out.path().join("b.tar.gz"),
            &out.path().join("b.json"),
            0,
        )
        .expect("pack");
        assert_eq!(first.archive_sha256, second.archive_sha256);
        assert_eq!(
            fs::read(out.path().join("a.tar.gz")).expect("read"),
            fs::read(out.path().join("b.tar.gz")).expect("read")
        );
        let paths: Vec<_> = first.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "VERSION",
                "bin",
                "bin/api",
                "deploy",
                "deploy/api",
                "deploy/systemd",
                "deploy/systemd/api.service"
            ]
        );
        let api = &first.files[2];
        assert_eq!(api.mode, "0755");
        assert_eq!(
            api.sha256.as_deref(),
            Some(hex(&Sha256::digest(b"#!/bin/sh\necho api\n")).as_str())
        );
        assert_eq!(
            check_archive(&out.path().join("a.tar.gz")).expect("safe"),
            7
        );
    }

    #[test]
    fn pack_creates_the_artifacts_directory() {
        let source = tempfile::tempdir().expect("tmp");
        let out = tempfile::tempdir().expect("tmp");
        tree(source.path());
        let artifact = out.path().join("dist/new/app.tar.gz");
        let manifest = out.path().join("dist/new/app.tar.gz.manifest.json");
        pack(source.path(), &artifact, &manifest, 0).expect("pack");
        assert_eq!(check_archive(&artifact).expect("safe"), 7);
        assert!(manifest.is_file());
    }

    #[test]
    fn zstd_artifacts_are_deterministic_and_checked_like_gzip_ones() {
        let a = tempfile::tempdir().expect("tmp");
        let out = tempfile::tempdir().expect("tmp");
        tree(a.path());
        let first = pack(
            a.path(),
            &out.path().join("a.tar.zst"),
            &out.path().join("a.json"),
            0,
        )
        .expect("pack");
        let second = pack(
            a.path(),
            &out.path().join("b.tar.zst"),
            &out.path().join("b.json"),
            0,
        )
        .expect("pack");
        assert_eq!(first.archive_sha256, second.archive_sha256);
        let path = out.path().join("a.tar.zst");
        assert_eq!(Compression::detect(&path).expect("zstd"), Compression::Zstd);
        assert_eq!(check_archive(&path).expect("safe"), 7);
        let gzip = out.path().join("c.tar.gz");
        pack(a.path(), &gzip, &out.path().join("c.json"), 0).expect("pack");
        assert_eq!(Compression::detect(&gzip).expect("gzip"), Compression::Gzip);
        let plain = out.path().join("plain.tar");
        fs::write(&plain, b"not compressed at all").expect("write");
        let error = check_archive(&plain).expect_err("refused");
        assert!(
            error.to_string().contains("neither gzip nor zstd"),
            "{error}"
        );
    }

    #[test]
    fn pack_refuses_symlinks_leaving_the_tree() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = tempfile::tempdir().expect("tmp");
        std::os::unix::fs::symlink("../../etc/passwd", dir.path().join("x")).expect("symlink");
        let error = pack(
            dir.path(),
            &out.path().join("a.tar.gz"),
            &out.path().join("a.json"),
            0,
        )
        .expect_err("unsafe");
        assert!(error.to_string().contains("outside the release"), "{error}");
    }

    /// A gzip'd tar made by hand: `(name, Some(target))` is a symlink, `(name, None)` a file
    /// (a name ending in `/` a directory).
    fn hand_made(path: &Path, entries: &[(&str, Option<&str>)]) {
        let file = fs::File::create(path).expect("create");
        let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut builder = tar::Builder::new(gzip);
        for (name, target) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(0);
            match target {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder
                        .append_link(&mut header, name, target)
                        .expect("append link");
                }
                None => {
                    header.set_entry_type(if name.ends_with('/') {
                        tar::EntryType::Directory
                    } else {
                        tar::EntryType::Regular
                    });
                    builder
                        .append_data(&mut header, name, std::io::empty())
                        .expect("append");
                }
            }
        }
        builder.into_inner().expect("tar").finish().expect("gzip");
    }

    #[test]
    fn links_are_judged_through_the_links_on_their_way_issue_25() {
        let dir = tempfile::tempdir().expect("tmp");
        let archive = dir.path().join("a.tar.gz");
        // `a -> .` makes `a/..` the parent of the release: each link alone looks harmless.
        hand_made(&archive, &[("a", Some(".")), ("b", Some("a/.."))]);
        let error = check_archive(&archive).expect_err("b escapes");
        assert_eq!(
            error.to_string(),
            format!(
                "archive {}: entry `b` is a symlink to `a/..`, which resolves outside the release through the links on its way",
                archive.display()
            )
        );
        // The order does not matter: the link is judged against the finished tree.
        hand_made(
            &archive,
            &[("b", Some("x/a/..")), ("x/", None), ("x/a", Some(".."))],
        );
        assert!(check_archive(&archive).is_err());
        // Nothing is written through a link, even one that stays inside.
        hand_made(
            &archive,
            &[("sub/", None), ("l", Some("sub")), ("l/x", None)],
        );
        let error = check_archive(&archive).expect_err("through a link");
        assert!(
            error
                .to_string()
                .contains("entry `l/x` lies under the symlink `l`"),
            "{error}"
        );
        // An entry twice would replace what was judged.
        hand_made(&archive, &[("d/", None), ("d", Some("../.."))]);
        assert!(check_archive(&archive).is_err());
        hand_made(&archive, &[("f", None), ("f", None)]);
        let error = check_archive(&archive).expect_err("twice");
        assert!(error.to_string().contains("appears twice"), "{error}");
        // Chains that stay inside are fine.
        hand_made(
            &archive,
            &[
                ("bin/", None),
                ("bin/api", None),
                ("c", Some("bin")),
                ("d", Some("c/../bin/api")),
                ("e", Some("d")),
            ],
        );
        assert_eq!(check_archive(&archive).expect("inside"), 5);
    }

    #[test]
    fn pack_resolves_links_through_the_real_tree_issue_25() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = tempfile::tempdir().expect("tmp");
        tree(dir.path());
        std::os::unix::fs::symlink(".", dir.path().join("a")).expect("symlink");
        std::os::unix::fs::symlink("a/..", dir.path().join("b")).expect("symlink");
        let error = pack(
            dir.path(),
            &out.path().join("a.tar.gz"),
            &out.path().join("a.json"),
            0,
        )
        .expect_err("b escapes");
        assert!(
            error
                .to_string()
                .contains("entry `b` is a symlink to `a/..`, which resolves outside the release"),
            "{error}"
        );
        assert!(!out.path().join("a.tar.gz").exists(), "nothing written");
    }

    #[test]
    fn link_targets_are_judged_from_the_entry_directory() {
        assert!(check_link("a/b/c", "../x").is_ok());
        assert!(check_link("a/b/c", "../../x").is_ok());
        assert!(check_link("a/b/c", "../../../x").is_err());
        assert!(check_link("c", "/etc").is_err());
        assert!(check_link("c", "./d/../../e").is_err());
    }
}
