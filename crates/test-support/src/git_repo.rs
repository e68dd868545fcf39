//! [`GitRepo`]: a real git repository in a temporary directory, removed on drop.
//!
//! Every git command runs with the user's and the system's git config ignored and a fixed
//! identity, so tests behave the same on a developer machine and in CI.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository (work tree or bare) in a temporary directory.
#[derive(Debug)]
pub struct GitRepo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// A `git` command with the test environment: no global/system config, fixed identity and
/// dates, no prompts.
pub fn git_command(dir: &Path) -> Command {
    crate::require_program("git", "apt-get install -y git");
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("LC_ALL", "C");
    command
}

impl GitRepo {
    /// `git init -b main` in a new temporary directory.
    pub fn init() -> Self {
        let repo = Self::empty();
        repo.git(&["init", "-q", "-b", "main", "."]);
        repo
    }

    /// `git init --bare -b main`, usable as a `file://` origin. Like GitHub, it serves any
    /// commit by SHA (`uploadpack.allowAnySHA1InWant`).
    pub fn bare() -> Self {
        let repo = Self::empty();
        repo.git(&["init", "-q", "--bare", "-b", "main", "."]);
        repo.git(&["config", "uploadpack.allowAnySHA1InWant", "true"]);
        repo
    }

    /// `git clone <args> file://<origin> .`
    pub fn clone_from(origin: &GitRepo, args: &[&str]) -> Self {
        let repo = Self::empty();
        let mut all = vec!["clone", "-q"];
        all.extend_from_slice(args);
        let url = origin.url();
        all.push(&url);
        all.push(".");
        repo.git(&all);
        repo
    }

    fn empty() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().canonicalize().expect("canonical temp path");
        Self { _dir: dir, path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `file://` URL of this repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Runs git and returns its trimmed stdout; panics with stderr on failure.
    pub fn git<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let output = git_command(&self.path)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {:?} failed in {}:\n{}",
            args.iter()
                .map(|a| a.as_ref().to_owned())
                .collect::<Vec<_>>(),
            self.path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Writes a file (creating directories); the name may be any bytes on Unix.
    pub fn write(&self, name: impl AsRef<OsStr>, contents: &str) -> &Self {
        let path = self.path.join(name.as_ref());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directories");
        }
        std::fs::write(&path, contents).expect("write file");
        self
    }

    /// Removes a file.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> &Self {
        std::fs::remove_file(self.path.join(name.as_ref())).expect("remove file");
        self
    }

    /// `git add -A && git commit`; returns the new commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// The SHA of HEAD.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// The SHA a revision names.
    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", &format!("{rev}^{{commit}}")])
    }
}
