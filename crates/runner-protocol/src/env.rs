//! A snapshot of the process environment, read once.
//!
//! Every other module (and every tool) receives an [`Env`] instead of calling `std::env`, so
//! tests can hand in a map and never race on the real process environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// An immutable view of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
}

impl Env {
    /// Reads the real process environment. The only place in the workspace that does.
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the one sanctioned reader of the process environment"
    )]
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os().collect(),
        }
    }

    /// Builds an environment from explicit pairs (tests, embedding).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name` as UTF-8, or `None` when unset, empty, or not valid UTF-8.
    ///
    /// Empty counts as unset because composite actions pass every input through `env:`,
    /// and an input the user did not give arrives as an empty string.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(std::ffi::OsStr::new(name))
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name` as a path, or `None` when unset or empty.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.vars
            .get(std::ffi::OsStr::new(name))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// True when `name` is set to the empty string (an action input left out).
    pub fn is_set_but_empty(&self, name: &str) -> bool {
        self.vars
            .get(std::ffi::OsStr::new(name))
            .is_some_and(|v| v.is_empty())
    }

    /// True when running inside a GitHub Actions job (`GITHUB_ACTIONS=true`).
    pub fn is_github_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }

    /// True when the runner asks for debug logs (`RUNNER_DEBUG=1`).
    pub fn runner_debug(&self) -> bool {
        self.get("RUNNER_DEBUG") == Some("1")
    }

    /// True when colour is unwanted (`NO_COLOR` set to anything non-empty).
    pub fn no_color(&self) -> bool {
        self.get("NO_COLOR").is_some()
    }

    /// All variables whose name starts with `prefix`, in name order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars.iter().filter_map(move |(k, v)| {
            let k = k.to_str()?;
            let v = v.to_str()?;
            k.starts_with(prefix).then_some((k, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_read_as_unset() {
        let env = Env::from_pairs([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(env.path("A"), None);
    }

    #[test]
    fn github_actions_requires_exact_true() {
        assert!(Env::from_pairs([("GITHUB_ACTIONS", "true")]).is_github_actions());
        assert!(!Env::from_pairs([("GITHUB_ACTIONS", "TRUE")]).is_github_actions());
        assert!(!Env::default().is_github_actions());
    }
}
