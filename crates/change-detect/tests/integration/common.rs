//! Running the real binary against a repository with an event payload.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The result of one run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) outputs: serde_json::Map<String, Value>,
    pub(crate) stderr: String,
}

impl Run {
    /// An output's value as GitHub would receive it: a string as is, a typed value (boolean,
    /// number, array, object) as its JSON text (panics with stderr when missing).
    pub(crate) fn output(&self, name: &str) -> String {
        match self.outputs.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(value) => value.to_string(),
            None => panic!("no output `{name}`: {self:#?}"),
        }
    }

    /// A JSON output: typed in `--output-format json`, never a string holding JSON.
    pub(crate) fn json(&self, name: &str) -> Value {
        match self.outputs.get(name) {
            Some(Value::String(text)) => panic!("output `{name}` is a string, not typed: {text}"),
            Some(value) => value.clone(),
            None => panic!("no output `{name}`: {self:#?}"),
        }
    }

    /// The files of a filter from the `<name>_files` output written as `json`.
    pub(crate) fn files(&self, filter: &str) -> Vec<String> {
        serde_json::from_value(self.json(&format!("{filter}_files"))).expect("json list")
    }

    /// Asserts success and returns self.
    pub(crate) fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "{}", self.stderr);
        self
    }
}

/// A change-detect invocation.
pub(crate) struct Detect {
    command: Command,
    _event: Option<tempfile::TempDir>,
}

/// Starts an invocation in `dir`, with git config isolated like [`test_support::GitRepo`].
pub(crate) fn detect(dir: &Path) -> Detect {
    let mut command = test_support::tool_command(env!("CARGO_BIN_EXE_change-detect"));
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("--output-format=json");
    Detect {
        command,
        _event: None,
    }
}

impl Detect {
    /// Sets `GITHUB_EVENT_NAME` and writes the payload to `GITHUB_EVENT_PATH`.
    pub(crate) fn event(mut self, name: &str, payload: Value) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("event.json");
        std::fs::write(&path, payload.to_string()).expect("write event");
        self.command
            .env("GITHUB_EVENT_NAME", name)
            .env("GITHUB_EVENT_PATH", &path)
            .env("GITHUB_REPOSITORY", "octo/monorepo");
        self._event = Some(dir);
        self
    }

    /// Adds arguments.
    pub(crate) fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.command.args(args);
        self
    }

    /// Sets an environment variable.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Runs to completion.
    pub(crate) fn run(mut self) -> Run {
        let output = self
            .command
            .stdin(std::process::Stdio::null())
            .output()
            .expect("change-detect runs");
        let outputs = serde_json::from_slice::<Value>(&output.stdout)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        Run {
            code: output.status.code(),
            outputs,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The filters of the seed-style monorepo used across tests.
pub(crate) const MONOREPO_FILTERS: &str = "\
shared: &shared
  - crates/shared/**
api:
  paths: [services/api/**]
  depends-on: [shared]
worker:
  paths: [services/worker/**]
  depends-on: [shared]
frontend:
  paths: frontend/**
  exclude: 'frontend/**/*.md'
docs: '**/*.md'
";

/// A push payload.
pub(crate) fn push_event(git_ref: &str, before: &str, after: &str, forced: bool) -> Value {
    serde_json::json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": before == ZERO,
        "deleted": after == ZERO,
        "forced": forced,
        "repository": {"full_name": "octo/monorepo", "default_branch": "main"},
    })
}

/// GitHub's "no commit" SHA.
pub(crate) const ZERO: &str = "0000000000000000000000000000000000000000";

/// The history both "last good commit" bases are tested on: seed, an api change (the last good
/// commit), a docs change (a failed run or deployment), a web change (this push), pushed to a
/// bare origin.
pub(crate) struct GoodHistory {
    pub(crate) _origin: test_support::GitRepo,
    pub(crate) work: test_support::GitRepo,
    pub(crate) good: String,
    pub(crate) failed: String,
    pub(crate) pushed: String,
}

pub(crate) fn good_history() -> GoodHistory {
    let origin = test_support::GitRepo::bare();
    let work = test_support::GitRepo::clone_from(&origin, &[]);
    work.write("services/api/main.rs", "1")
        .write("web/app.ts", "1")
        .write("docs/a.md", "1");
    work.commit("seed");
    work.write("services/api/main.rs", "2");
    let good = work.commit("api");
    work.write("docs/a.md", "2");
    let failed = work.commit("docs");
    work.write("web/app.ts", "2");
    let pushed = work.commit("web");
    work.git(&["push", "-q", "origin", "main"]);
    GoodHistory {
        _origin: origin,
        work,
        good,
        failed,
        pushed,
    }
}
