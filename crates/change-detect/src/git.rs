//! The `git` CLI: diffs with `-z`, ref resolution, and fetching what a shallow clone lacks.
//!
//! Every command runs with `LC_ALL=C` (so errors can be recognised), no prompts, and options
//! that neutralise user configuration that would change the output (`--no-ext-diff`,
//! `--no-relative`, explicit rename handling). Nothing is ever written to git config: a
//! "dubious ownership" refusal (container jobs) is answered by retrying with
//! `-c safe.directory=<dir>` for this process only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::change::{Change, Renames, RepoPath, Status};

/// The remote fetched from.
pub const REMOTE: &str = "origin";

/// Attempts of a fetch that lost a race on `.git/shallow` with another git process.
const SHALLOW_RACE_ATTEMPTS: u32 = 4;

/// Wait before retrying such a fetch, times the attempt number (the other fetch must finish).
const SHALLOW_RACE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

/// git's message when `.git/shallow` changed between reading and rewriting it.
fn is_shallow_race(stderr: &str) -> bool {
    stderr.contains("shallow file has changed since we read it")
}

/// Errors from git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git (is it installed and on PATH?)")]
    Spawn(#[source] std::io::Error),
    /// A git command failed.
    #[error("`git {command}` failed in {dir}: {stderr}")]
    Failed {
        /// The arguments.
        command: String,
        /// Where.
        dir: PathBuf,
        /// Its stderr, trimmed.
        stderr: String,
    },
    /// Output that does not follow the documented `-z` format.
    #[error("unexpected output from `git {command}`")]
    Parse {
        /// The arguments.
        command: String,
    },
    /// A revision could not be found locally nor fetched.
    #[error("cannot find `{rev}` locally or on the remote `{REMOTE}`")]
    UnknownRevision {
        /// What was asked for.
        rev: String,
    },
    /// No common ancestor even with the whole history.
    #[error(
        "`{base}` and `{head}` have no common history, so there is no merge base to diff against"
    )]
    NoMergeBase {
        /// Base.
        base: String,
        /// Head.
        head: String,
    },
    /// Deepening stopped at the limit without reaching a previous tag.
    #[error(
        "no tag matching `{pattern}` is reachable from `{tag}` within {depth} commits of shallow history, and unshallowing is off"
    )]
    TagTooShallow {
        /// The new tag.
        tag: String,
        /// `--tag-pattern`.
        pattern: String,
        /// Commits fetched.
        depth: u64,
    },
    /// Concurrent fetches kept rewriting `.git/shallow` under this one.
    #[error(
        "`git {command}` failed {attempts} times because another git process changed `.git/shallow` while it ran"
    )]
    ShallowRace {
        /// The arguments.
        command: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Deepening stopped at the limit without finding a merge base.
    #[error(
        "no merge base of `{base}` and `{head}` within {depth} commits of shallow history, and unshallowing is off"
    )]
    TooShallow {
        /// Base.
        base: String,
        /// Head.
        head: String,
        /// Commits fetched.
        depth: u64,
    },
}

impl GitError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            GitError::Spawn(_) => Some("install git (`apt-get install git`)".into()),
            GitError::UnknownRevision { .. } => Some(
                "check the name; with actions/checkout, `fetch-depth: 0` fetches every branch and tag".into(),
            ),
            GitError::NoMergeBase { .. } => Some(
                "give `base` as a commit SHA to compare the two trees directly (two-dot)".into(),
            ),
            GitError::ShallowRace { .. } => Some(
                "another step fetches into this shallow clone at the same time; run the steps one after another"
                    .into(),
            ),
            GitError::TooShallow { .. } | GitError::TagTooShallow { .. } => Some(
                "raise `max-fetch-depth`, set `unshallow: true`, or check out with `fetch-depth: 0`"
                    .into(),
            ),
            GitError::Failed { stderr, .. } if stderr.contains("dubious ownership") => Some(
                "the repository belongs to another user; see `git config --global --add safe.directory`".into(),
            ),
            _ => None,
        }
    }
}

/// How deep to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `--depth=n` (only ever used on shallow repositories).
    Depth(u64),
    /// `--deepen=n`.
    Deepen(u64),
    /// `--unshallow`.
    Unshallow,
    /// No depth option.
    Full,
}

/// A git repository (its work tree, or any directory inside it).
#[derive(Debug)]
pub struct Git {
    dir: PathBuf,
    safe_directory: bool,
    /// A diff started before the repository was even checked (see [`EarlyDiff`]).
    early: Option<EarlyDiff>,
    /// Log of what was fetched, for the step log.
    pub fetch_log: Vec<String>,
}

/// A `git diff` of two full SHAs, started first thing so that git (the long pole) runs
/// while the filters are parsed and the repository is checked.
///
/// It is only a head start: [`Git::resolve_and_diff`] reads it when it asks for exactly
/// this diff and the SHAs turn out to be commits; otherwise (or when the run fails before
/// that) it is killed unread. A read-only command, so starting it early changes nothing.
#[derive(Debug)]
pub struct EarlyDiff {
    args: Vec<String>,
    child: Option<std::process::Child>,
}

impl EarlyDiff {
    /// Starts `git diff base head` in `dir` when both are full SHAs; `None` otherwise (or
    /// when git cannot be started: the ordinary path reports that).
    pub fn start(dir: &Path, base: &str, head: &str, renames: Renames) -> Option<Self> {
        if !(is_full_sha(base) && is_full_sha(head)) {
            return None;
        }
        let args = diff_args(base, Some(head), renames);
        let child = base_command(dir, false, &args).spawn_streaming().ok()?;
        Some(Self {
            args: args.into_iter().map(str::to_owned).collect(),
            child: Some(child),
        })
    }

    /// The child, when it runs exactly `args`.
    fn take_if(mut self, args: &[&str]) -> Option<std::process::Child> {
        if self
            .args
            .iter()
            .map(String::as_str)
            .eq(args.iter().copied())
        {
            self.child.take()
        } else {
            None
        }
    }
}

impl Drop for EarlyDiff {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `git -C dir [-c safe.directory=dir] args` with the environment every command gets.
fn base_command(dir: &Path, safe_directory: bool, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(dir);
    if safe_directory {
        command
            .arg("-c")
            .arg(format!("safe.directory={}", dir.display()));
    }
    command
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null());
    command
}

impl Git {
    /// Opens the repository containing `dir`; `Ok(None)` when `dir` is not in one.
    pub fn open(dir: &Path) -> Result<Option<Self>, GitError> {
        let mut git = Self {
            dir: dir.to_owned(),
            safe_directory: false,
            early: None,
            fetch_log: Vec::new(),
        };
        match git.output(&["rev-parse", "--git-dir"]) {
            Ok(_) => Ok(Some(git)),
            Err(GitError::Failed { stderr, .. }) if stderr.contains("not a git repository") => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// True when the last command needed `safe.directory` (reported once by the caller).
    pub fn used_safe_directory(&self) -> bool {
        self.safe_directory
    }

    /// Hands over a diff started before the repository was opened, for
    /// [`Git::resolve_and_diff`] to read if it asks for the same diff.
    pub fn adopt(&mut self, early: Option<EarlyDiff>) {
        self.early = early;
    }

    fn command(&self, args: &[&str]) -> Command {
        base_command(&self.dir, self.safe_directory, args)
    }

    /// Runs git and returns stdout; retries once with `safe.directory` on a dubious-ownership
    /// refusal.
    fn output(&mut self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.output_with_input(args, None)
    }

    /// [`Git::output`] with `input` on stdin (small: written whole before reading).
    fn output_with_input(
        &mut self,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, GitError> {
        let run = |git: &Self| -> Result<Vec<u8>, GitError> {
            let mut command = git.command(args);
            let output = match input {
                None => command.output(),
                Some(input) => command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .and_then(|mut child| {
                        if let Some(mut stdin) = child.stdin.take() {
                            std::io::Write::write_all(&mut stdin, input)?;
                        }
                        child.wait_with_output()
                    }),
            }
            .map_err(GitError::Spawn)?;
            if output.status.success() {
                Ok(output.stdout)
            } else {
                Err(GitError::Failed {
                    command: args.join(" "),
                    dir: git.dir.clone(),
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                })
            }
        };
        match run(self) {
            Err(GitError::Failed { stderr, .. })
                if !self.safe_directory && stderr.contains("detected dubious ownership") =>
            {
                self.safe_directory = true;
                run(self)
            }
            other => other,
        }
    }

    /// Runs git; `Ok(None)` when it exits non-zero (a "no" answer, not an error).
    fn probe(&mut self, args: &[&str]) -> Result<Option<Vec<u8>>, GitError> {
        match self.output(args) {
            Ok(out) => Ok(Some(out)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    /// The commit SHA `rev` names locally, if any.
    pub fn commit(&mut self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        Ok(self
            .probe(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])?
            .map(Self::text))
    }

    /// The commit SHA each of `revs` names locally, in one `git cat-file` process.
    pub fn commits(&mut self, revs: &[String]) -> Result<Vec<Option<String>>, GitError> {
        if revs.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = String::new();
        for rev in revs {
            // One name per line: a name with a newline cannot be a revision anyway.
            if rev.contains('\n') {
                input.push_str("invalid\n");
            } else {
                input.push_str(rev);
                input.push_str("^{commit}\n");
            }
        }
        let output = self.output_with_input(
            &["cat-file", "--batch-check=%(objectname)"],
            Some(input.as_bytes()),
        )?;
        let text = String::from_utf8_lossy(&output);
        let mut lines = text.lines();
        Ok(revs
            .iter()
            .map(|_| {
                lines
                    .next()
                    .filter(|line| is_full_sha(line))
                    .map(str::to_owned)
            })
            .collect())
    }

    /// True when the repository is a shallow clone.
    pub fn is_shallow(&mut self) -> Result<bool, GitError> {
        Ok(Self::text(self.output(&["rev-parse", "--is-shallow-repository"])?) == "true")
    }

    /// True when a remote named [`REMOTE`] is configured.
    pub fn has_remote(&mut self) -> Result<bool, GitError> {
        Ok(self
            .probe(&["remote", "get-url", REMOTE])?
            .is_some_and(|out| !out.is_empty()))
    }

    /// The merge base of two commits, if they share history locally.
    pub fn merge_base(&mut self, base: &str, head: &str) -> Result<Option<String>, GitError> {
        Ok(self
            .probe(&["merge-base", "--end-of-options", base, head])?
            .map(Self::text)
            .filter(|s| !s.is_empty()))
    }

    /// Number of commits reachable from anything (to see whether a deepen fetched more).
    fn commit_count(&mut self) -> Result<u64, GitError> {
        let text = Self::text(self.output(&["rev-list", "--count", "--all"])?);
        Ok(text.parse().unwrap_or(0))
    }

    /// Fetches `refspecs` from [`REMOTE`] with explicit refspecs (never relying on the
    /// configured fetch refspec, which a single-branch clone narrows).
    pub fn fetch(&mut self, refspecs: &[String], depth: Depth) -> Result<(), GitError> {
        let mut args: Vec<String> = vec![
            "fetch".into(),
            "--no-tags".into(),
            "--no-recurse-submodules".into(),
            "--no-write-fetch-head".into(),
            "--quiet".into(),
        ];
        match depth {
            Depth::Depth(n) => args.push(format!("--depth={n}")),
            Depth::Deepen(n) => args.push(format!("--deepen={n}")),
            Depth::Unshallow => args.push("--unshallow".into()),
            Depth::Full => {}
        }
        args.push(REMOTE.into());
        args.extend(refspecs.iter().cloned());
        self.fetch_log.push(format!("git {}", args.join(" ")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Two fetches into one shallow clone race on `.git/shallow`; the loser fails with
        // "shallow file has changed since we read it" and succeeds when simply run again.
        let mut attempt = 1;
        loop {
            match self.output(&args) {
                Err(GitError::Failed { stderr, .. }) if is_shallow_race(&stderr) => {
                    if attempt == SHALLOW_RACE_ATTEMPTS {
                        return Err(GitError::ShallowRace {
                            command: args.join(" "),
                            attempts: attempt,
                        });
                    }
                    self.fetch_log.push(format!(
                        "`.git/shallow` changed during the fetch (a concurrent git process); retrying ({}/{SHALLOW_RACE_ATTEMPTS})",
                        attempt + 1
                    ));
                    std::thread::sleep(SHALLOW_RACE_BACKOFF * attempt);
                    attempt += 1;
                }
                other => return other.map(drop),
            }
        }
    }

    /// Resolves `rev` to a commit SHA, fetching it from [`REMOTE`] when it is missing locally.
    ///
    /// Names are looked up as `refs/remotes/origin/<name>`, `refs/heads/<name>`,
    /// `refs/tags/<name>`, then anything `git rev-parse` accepts.
    pub fn resolve(&mut self, rev: &str) -> Result<String, GitError> {
        let mut all = self.resolve_all(&[rev])?;
        Ok(all.remove(0))
    }

    /// [`Git::resolve`] for several revisions, looked up locally in one git process.
    pub fn resolve_all(&mut self, revs: &[&str]) -> Result<Vec<String>, GitError> {
        let candidates: Vec<Vec<String>> = revs.iter().map(|rev| candidates(rev)).collect();
        let flat: Vec<String> = candidates.iter().flatten().cloned().collect();
        let mut found = self.commits(&flat)?.into_iter();
        let mut resolved = Vec::with_capacity(revs.len());
        for (rev, names) in revs.iter().zip(&candidates) {
            let local: Vec<Option<String>> = found.by_ref().take(names.len()).collect();
            match local.into_iter().flatten().next() {
                Some(sha) => resolved.push(sha),
                None => resolved.push(self.fetch_revision(rev, names)?),
            }
        }
        Ok(resolved)
    }

    /// Fetches `rev`, missing locally, from [`REMOTE`] and resolves it through `candidates`.
    fn fetch_revision(&mut self, rev: &str, candidates: &[String]) -> Result<String, GitError> {
        let short = split_ref(rev);
        if !self.has_remote()? {
            return Err(GitError::UnknownRevision { rev: rev.into() });
        }
        let depth = if self.is_shallow()? {
            Depth::Depth(1)
        } else {
            Depth::Full
        };
        let attempts: Vec<String> = match short {
            (Some(branch), _) => vec![format!(
                "+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}"
            )],
            (_, Some(tag)) => vec![format!("+refs/tags/{tag}:refs/tags/{tag}")],
            _ if is_full_sha(rev) => vec![rev.to_owned()],
            _ => vec![
                format!("+refs/heads/{rev}:refs/remotes/{REMOTE}/{rev}"),
                format!("+refs/tags/{rev}:refs/tags/{rev}"),
            ],
        };
        for refspec in attempts {
            match self.fetch(std::slice::from_ref(&refspec), depth) {
                Ok(()) => {
                    if let Some(sha) = self.commits(candidates)?.into_iter().flatten().next() {
                        return Ok(sha);
                    }
                }
                // The remote lacking this name is an answer; losing every retry is not.
                Err(error @ GitError::ShallowRace { .. }) => return Err(error),
                Err(_) => {}
            }
        }
        Err(GitError::UnknownRevision { rev: rev.into() })
    }

    /// The merge base of `base` and `head` (SHAs), deepening a shallow clone exponentially
    /// (`initial_depth`, doubling) up to `max_depth` commits, then `--unshallow` if allowed.
    pub fn merge_base_deepening(
        &mut self,
        base: &str,
        head: &str,
        initial_depth: u64,
        max_depth: u64,
        unshallow: bool,
    ) -> Result<String, GitError> {
        if let Some(found) = self.merge_base(base, head)? {
            return Ok(found);
        }
        let no_merge_base = || GitError::NoMergeBase {
            base: base.into(),
            head: head.into(),
        };
        if !self.is_shallow()? {
            return Err(no_merge_base());
        }
        let refspecs = vec![base.to_owned(), head.to_owned()];
        let mut step = initial_depth.max(1);
        let mut fetched = 0u64;
        let mut count = self.commit_count()?;
        while fetched < max_depth {
            let step_now = step.min(max_depth - fetched);
            self.fetch(&refspecs, Depth::Deepen(step_now))?;
            fetched += step_now;
            if let Some(found) = self.merge_base(base, head)? {
                return Ok(found);
            }
            let now = self.commit_count()?;
            if now == count || !self.is_shallow()? {
                // Nothing more to fetch: the histories really are unrelated.
                return Err(no_merge_base());
            }
            count = now;
            step = step.saturating_mul(2);
        }
        if !unshallow {
            return Err(GitError::TooShallow {
                base: base.into(),
                head: head.into(),
                depth: fetched,
            });
        }
        self.fetch(&refspecs, Depth::Unshallow)?;
        self.merge_base(base, head)?.ok_or_else(no_merge_base)
    }

    /// `git diff --name-status -z base head` (two commits, or `base` against the work tree
    /// when `head` is `None`).
    pub fn diff(
        &mut self,
        base: &str,
        head: Option<&str>,
        renames: Renames,
    ) -> Result<Vec<Change>, GitError> {
        let mut changes = Vec::new();
        self.diff_streaming(base, head, renames, &mut |change| changes.push(change))?;
        Ok(changes)
    }

    /// [`Git::diff`], handing each change to `emit` as git writes it, so the caller works
    /// while git is still writing (100,000 names are 5 MB of output).
    pub fn diff_streaming(
        &mut self,
        base: &str,
        head: Option<&str>,
        renames: Renames,
        emit: &mut dyn FnMut(Change),
    ) -> Result<(), GitError> {
        let args = diff_args(base, head, renames);
        let child = self.command(&args).spawn_streaming()?;
        match self.stream(child, &args, emit) {
            Err(Streamed::Refused(GitError::Failed { stderr, .. }))
                if !self.safe_directory && stderr.contains("detected dubious ownership") =>
            {
                self.safe_directory = true;
                let child = self.command(&args).spawn_streaming()?;
                self.stream(child, &args, emit)
                    .map_err(Streamed::into_error)
            }
            other => other.map_err(Streamed::into_error),
        }
    }

    /// Reads a running `git diff --name-status -z`, handing changes to `emit`.
    fn stream(
        &self,
        mut child: std::process::Child,
        args: &[&str],
        emit: &mut dyn FnMut(Change),
    ) -> Result<(), Streamed> {
        use std::io::Read;
        let failed = |stderr: String| GitError::Failed {
            command: args.join(" "),
            dir: self.dir.clone(),
            stderr,
        };
        // Drain stderr on the side so a chatty git never blocks on a full pipe.
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = pipe.read_to_end(&mut text);
                String::from_utf8_lossy(&text).trim().to_owned()
            })
        });
        let mut emitted = false;
        // `buffer[..filled]` is read and not parsed yet: the start of a record cut by a
        // read, moved to the front until the rest arrives (one buffer, no copy per read).
        let mut buffer = vec![0u8; STREAM_BUFFER];
        let mut filled = 0;
        let mut read_error = None;
        let mut malformed = false;
        if let Some(mut stdout) = child.stdout.take() {
            enlarge_pipe(&stdout);
            loop {
                if filled == buffer.len() {
                    // One record longer than the buffer: make room.
                    buffer.resize(buffer.len() * 2, 0);
                }
                let read = match stdout.read(&mut buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        read_error = Some(error);
                        break;
                    }
                };
                let data = &buffer[..filled + read];
                let parsed = parse_records(data, &mut |change| {
                    emitted = true;
                    emit(change);
                });
                match parsed {
                    Some(used) => {
                        let end = data.len();
                        buffer.copy_within(used..end, 0);
                        filled = end - used;
                    }
                    None => {
                        malformed = true;
                        break;
                    }
                }
            }
            if !malformed && filled > 0 {
                malformed = true;
            }
        }
        if malformed || read_error.is_some() {
            let _ = child.kill();
        }
        let status = child
            .wait()
            .map_err(|e| Streamed::Failed(GitError::Spawn(e)))?;
        let stderr = stderr
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        if let Some(error) = read_error {
            return Err(Streamed::Failed(failed(error.to_string())));
        }
        if !status.success() {
            return Err(if emitted {
                Streamed::Failed(failed(stderr))
            } else {
                Streamed::Refused(failed(stderr))
            });
        }
        if malformed {
            return Err(Streamed::Failed(GitError::Parse {
                command: args.join(" "),
            }));
        }
        Ok(())
    }

    /// Resolves `base` and `head` to commits and diffs them, handing each change to `emit`;
    /// returns the two commits.
    ///
    /// When both are full SHAs (push and merge queue events), the diff starts at once and
    /// runs while they are checked to be commits, so the check costs no time; if they are
    /// not (a missing commit to fetch, a tag object), that diff is dropped unread.
    pub fn resolve_and_diff(
        &mut self,
        base: &str,
        head: &str,
        renames: Renames,
        emit: &mut dyn FnMut(Change),
    ) -> Result<(String, String), GitError> {
        let args = diff_args(base, Some(head), renames);
        let early = match self.early.take() {
            Some(started) => started.take_if(&args),
            None => None,
        }
        .or_else(|| {
            (is_full_sha(base) && is_full_sha(head))
                .then(|| self.command(&args).spawn_streaming().ok())
                .flatten()
        });
        let resolved = self.resolve_all(&[base, head]);
        if let Some(mut child) = early {
            if matches!(&resolved, Ok(shas) if shas[0] == base && shas[1] == head) {
                match self.stream(child, &args, emit) {
                    Ok(()) => return Ok((base.to_owned(), head.to_owned())),
                    // Nothing was read: run it again the ordinary way (which also handles
                    // a dubious-ownership refusal).
                    Err(Streamed::Refused(_)) => {}
                    Err(Streamed::Failed(error)) => return Err(error),
                }
            } else {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let shas = resolved?;
        self.diff_streaming(&shas[0], Some(&shas[1]), renames, emit)?;
        let mut shas = shas.into_iter();
        Ok((
            shas.next().unwrap_or_default(),
            shas.next().unwrap_or_default(),
        ))
    }

    /// Untracked files that are not ignored, as additions.
    pub fn untracked(&mut self) -> Result<Vec<Change>, GitError> {
        let output = self.output(&[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--full-name",
            ":/",
        ])?;
        Ok(nul_separated(&output)
            .map(|path| Change::new(RepoPath::from_bytes(path), Status::Added))
            .collect())
    }

    /// Every file of a commit, as additions (a first push, a first release).
    pub fn all_files(&mut self, commit: &str) -> Result<Vec<Change>, GitError> {
        let output = self.output(&["ls-tree", "-r", "-z", "--full-tree", "--name-only", commit])?;
        Ok(nul_separated(&output)
            .map(|path| Change::new(RepoPath::from_bytes(path), Status::Added))
            .collect())
    }

    /// Tag names in this repository.
    pub fn local_tags(&mut self) -> Result<Vec<String>, GitError> {
        let output = self.output(&["for-each-ref", "--format=%(refname:strip=2)", "refs/tags"])?;
        Ok(Self::text(output).lines().map(str::to_owned).collect())
    }

    /// Tag names on [`REMOTE`].
    pub fn remote_tags(&mut self) -> Result<Vec<String>, GitError> {
        let output = self.output(&["ls-remote", "--tags", "--refs", REMOTE])?;
        Ok(Self::text(output)
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter_map(|(_, name)| name.strip_prefix("refs/tags/"))
            .map(str::to_owned)
            .collect())
    }

    /// The nearest tag among `names` reachable from `commit`, as `git describe --tags
    /// --abbrev=0` picks it (fewest commits in between); `None` when none is reachable in the
    /// history present locally.
    pub fn describe(&mut self, commit: &str, names: &[String]) -> Result<Option<String>, GitError> {
        if names.is_empty() {
            return Ok(None);
        }
        // Tag names cannot hold `*`, `?`, `[` or `\` (git check-ref-format), so each name
        // is a pattern matching only itself.
        let mut args: Vec<String> = vec!["describe".into(), "--tags".into(), "--abbrev=0".into()];
        args.extend(names.iter().map(|name| format!("--match={name}")));
        args.push("--end-of-options".into());
        args.push(commit.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self
            .probe(&args)?
            .map(Self::text)
            .filter(|name| !name.is_empty()))
    }

    /// Deepens a shallow clone's history of `commit` by `depth` commits; false when nothing
    /// more came (the history is complete or the remote has no more).
    pub fn deepen(&mut self, commit: &str, depth: Depth) -> Result<bool, GitError> {
        let before = self.commit_count()?;
        self.fetch(&[commit.to_owned()], depth)?;
        Ok(self.commit_count()? != before)
    }
}

/// `refs/heads/x` -> branch `x`; `refs/tags/x` -> tag `x`.
fn split_ref(rev: &str) -> (Option<&str>, Option<&str>) {
    rev.strip_prefix("refs/heads/")
        .map(|b| (Some(b), None))
        .or_else(|| rev.strip_prefix("refs/tags/").map(|t| (None, Some(t))))
        .unwrap_or((None, None))
}

/// The names `rev` is looked up as, in order.
fn candidates(rev: &str) -> Vec<String> {
    match split_ref(rev) {
        (Some(branch), _) => vec![
            format!("refs/remotes/{REMOTE}/{branch}"),
            format!("refs/heads/{branch}"),
        ],
        (_, Some(tag)) => vec![format!("refs/tags/{tag}")],
        // `HEAD`, `HEAD~2`, `main^`, SHAs: what rev-parse says (`origin/HEAD` is not HEAD).
        _ if rev == "HEAD" || rev.contains(['~', '^', '@', ':']) || is_hex(rev) => {
            vec![rev.to_owned()]
        }
        _ => vec![
            format!("refs/remotes/{REMOTE}/{rev}"),
            format!("refs/heads/{rev}"),
            format!("refs/tags/{rev}"),
            rev.to_owned(),
        ],
    }
}

/// Bytes read from git at a time.
const STREAM_BUFFER: usize = 256 * 1024;

/// Pipe capacity asked for git's output (Linux's default limit for unprivileged users).
#[cfg(target_os = "linux")]
const PIPE_CAPACITY: i32 = 1 << 20;

/// Grows the pipe git writes to from 64 KB, so that git, which writes its whole listing at
/// the end of its run, rarely waits for the reader (best effort: the default works too).
fn enlarge_pipe(pipe: &std::process::ChildStdout) {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_CAPACITY));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

/// How a streamed git command ended badly.
enum Streamed {
    /// It exited non-zero before writing anything (it may be retried).
    Refused(GitError),
    /// It failed after output was handed on, or could not be read.
    Failed(GitError),
}

impl Streamed {
    fn into_error(self) -> GitError {
        match self {
            Streamed::Refused(error) | Streamed::Failed(error) => error,
        }
    }
}

/// Starts a command with stdout and stderr piped.
trait SpawnStreaming {
    fn spawn_streaming(&mut self) -> Result<std::process::Child, GitError>;
}

impl SpawnStreaming for Command {
    fn spawn_streaming(&mut self) -> Result<std::process::Child, GitError> {
        self.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::Spawn)
    }
}

/// `git diff --name-status -z` with everything that user configuration could change pinned.
fn diff_args<'a>(base: &'a str, head: Option<&'a str>, renames: Renames) -> Vec<&'a str> {
    let mut args = vec![
        "diff",
        "--name-status",
        "-z",
        "--no-ext-diff",
        "--no-textconv",
        "--no-relative",
        "--ignore-submodules=none",
    ];
    args.push(match renames {
        Renames::Split => "--no-renames",
        Renames::Detect => "--find-renames",
    });
    args.push("--end-of-options");
    args.push(base);
    args.extend(head);
    args
}

/// True for an abbreviated or full object name (4 to 64 hex digits).
fn is_hex(text: &str) -> bool {
    (4..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for a full 40-hex (SHA-1) or 64-hex (SHA-256) object name.
pub fn is_full_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn nul_separated(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| *b == 0).filter(|p| !p.is_empty())
}

/// Parses `--name-status -z`: `X\0path\0`, or `R100\0old\0new\0` for renames and copies.
pub fn parse_name_status(bytes: &[u8]) -> Option<Vec<Change>> {
    let mut changes = Vec::new();
    let consumed = parse_records(bytes, &mut |change| changes.push(change))?;
    (consumed == bytes.len()).then_some(changes)
}

/// Parses the complete records at the start of `bytes`, handing each to `emit`; returns how
/// many bytes they took (the rest is an incomplete record), or `None` on malformed output.
fn parse_records(bytes: &[u8], emit: &mut dyn FnMut(Change)) -> Option<usize> {
    let mut at = 0;
    loop {
        let rest = &bytes[at..];
        let Some(status_end) = memchr_nul(rest) else {
            return Some(at);
        };
        if status_end == 0 {
            return None;
        }
        let letter = Status::from_git_letter(rest[0]);
        let paths = if matches!(letter, Status::Renamed | Status::Copied) {
            2
        } else {
            1
        };
        let mut fields: [&[u8]; 2] = [&[], &[]];
        let mut end = status_end + 1;
        for field in fields.iter_mut().take(paths) {
            let Some(len) = memchr_nul(&rest[end..]) else {
                return Some(at);
            };
            if len == 0 {
                return None;
            }
            *field = &rest[end..end + len];
            end += len + 1;
        }
        emit(if paths == 2 {
            Change {
                path: RepoPath::from_bytes(fields[1]),
                status: letter,
                previous: Some(RepoPath::from_bytes(fields[0])),
            }
        } else {
            Change::new(RepoPath::from_bytes(fields[0]), letter)
        });
        at += end;
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(0, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_status_with_renames_and_odd_names() {
        let output = b"M\0a b.txt\0R087\0old\nname\0new\0D\0\xff.bin\0T\0link\0";
        let changes = parse_name_status(output).expect("valid");
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0], Change::new("a b.txt", Status::Modified));
        assert_eq!(changes[1].status, Status::Renamed);
        assert_eq!(changes[1].path.as_bytes(), b"new");
        assert_eq!(
            changes[1].previous.as_ref().map(RepoPath::as_bytes),
            Some(&b"old\nname"[..])
        );
        assert_eq!(changes[2].path.as_bytes(), b"\xff.bin");
        assert_eq!(changes[3].status, Status::Other);
        assert_eq!(parse_name_status(b"").expect("empty"), []);
    }

    #[test]
    fn stops_before_a_record_cut_by_a_read() {
        let mut changes = Vec::new();
        let input = b"M\0a\0R100\0old\0ne";
        let used = parse_records(input, &mut |c| changes.push(c)).expect("well formed so far");
        assert_eq!(used, 4);
        assert_eq!(changes, [Change::new("a", Status::Modified)]);
        assert_eq!(parse_records(b"\0x\0", &mut |_| {}), None);
    }

    #[test]
    fn rejects_truncated_name_status() {
        assert!(parse_name_status(b"M\0").is_none());
        assert!(parse_name_status(b"R100\0old\0").is_none());
    }

    #[test]
    fn full_shas_are_40_or_64_hex() {
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(is_full_sha(&"0".repeat(64)));
        assert!(!is_full_sha(&"g".repeat(40)));
        assert!(!is_full_sha("abc123"));
    }
}
