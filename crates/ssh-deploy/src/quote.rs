//! The one door from our values to a remote shell.
//!
//! Every value that ends up in a remote command line (paths, release ids, unit names, env
//! values, lock owners) goes through [`q`], which is `runner_protocol::output::shell_quote`:
//! single quotes, with `'` written as `'\''`. Nothing else in this crate quotes. Release ids and
//! remote paths are additionally validated, so they also read well in logs and `ls` output.

use std::fmt;

/// `value` quoted for a POSIX shell (the audited rule of `runner_protocol`).
pub(crate) fn q(value: &str) -> String {
    runner_protocol::output::shell_quote(value)
}

/// A validated release id: `[A-Za-z0-9._-]`, 1..=128 characters, not starting with `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId(String);

impl ReleaseId {
    /// Validates `text` as a release id.
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid_chars = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if text.is_empty() || text.len() > 128 {
            return Err(format!(
                "release id `{text}` must be 1 to 128 characters long"
            ));
        }
        if !valid_chars || text.starts_with(['.', '-']) {
            return Err(format!(
                "release id `{}` may only hold letters, digits, `.`, `_` and `-`, and must not \
                 start with `.` or `-`",
                text.escape_debug()
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated remote path: absolute, no `..` or `.` components, no control characters, no
/// trailing slash (except `/` itself, which is refused as a deploy root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePath(String);

impl RemotePath {
    /// Validates an absolute remote directory.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("remote path `{text}` must be absolute"));
        }
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("the deploy root must not be `/`".into());
        }
        if text.chars().any(char::is_control) {
            return Err(format!(
                "remote path `{}` holds control characters",
                text.escape_debug()
            ));
        }
        if trimmed
            .split('/')
            .skip(1)
            .any(|c| matches!(c, "" | "." | ".."))
        {
            return Err(format!(
                "remote path `{text}` must not hold empty, `.` or `..` components"
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self/relative` (relative must already be validated).
    pub fn join(&self, relative: &str) -> String {
        format!("{}/{relative}", self.0)
    }
}

/// Validates a path relative to the release (shared paths, units dir): no leading `/`, no `..`.
pub(crate) fn relative_path(text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    if trimmed.is_empty()
        || trimmed.starts_with('/')
        || text.chars().any(char::is_control)
        || trimmed.split('/').any(|c| matches!(c, "" | "." | ".."))
    {
        return Err(format!(
            "`{}` must be a relative path inside the release without `.`/`..` components",
            text.escape_debug()
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `sh -c 'printf %s <quoted>'` and returns what the shell saw.
    fn through_shell(value: &str) -> String {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", q(value)))
            .output()
            .expect("sh");
        String::from_utf8(output.stdout).expect("utf8")
    }

    #[test]
    fn hostile_values_reach_the_shell_unchanged() {
        for value in [
            "plain",
            "it's",
            "'",
            "''",
            "$(touch /tmp/pwned)",
            "`id`",
            "a b\tc",
            "line\nbreak",
            "; rm -rf / #",
            "\\'\"$HOME\"",
            "-n",
            "*",
            "",
            "ünïcødé ✓",
        ] {
            assert_eq!(through_shell(value), value, "{value:?}");
        }
    }

    #[test]
    fn release_ids_are_validated() {
        for good in ["v1.2.3", "20260101-abc123", "a", "r_1-2.3"] {
            assert!(ReleaseId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-rf",
            "a/b",
            "a b",
            "$(id)",
            "x'y",
            "a\nb",
            &"x".repeat(129),
        ] {
            assert!(ReleaseId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remote_paths_are_validated() {
        assert_eq!(
            RemotePath::parse("/opt/app/").expect("ok").as_str(),
            "/opt/app"
        );
        assert_eq!(
            RemotePath::parse("/srv/it's here").expect("ok").as_str(),
            "/srv/it's here"
        );
        for bad in [
            "opt/app",
            "/",
            "//",
            "/opt/../etc",
            "/opt/./x",
            "/a//b",
            "/a\nb",
        ] {
            assert!(RemotePath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(relative_path("data/").expect("ok"), "data");
        for bad in ["/etc", "../x", "a/../b", "", "./a"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }
}
