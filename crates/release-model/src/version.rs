//! The release version taken from the platform ref, and its optional scheme check.

/// A version scheme the platform tag must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionScheme {
    /// Semantic Versioning 2.0.0 (`1.2.3`, `1.2.3-rc.1+build.5`).
    Semver,
    /// Python's PEP 440 (`1.2.3`, `1.2rc1`, `2!1.0.post1.dev3+local.7`).
    Pep440,
}

/// The version for a tag: without a leading `v`/`V` when a digit follows (`v0.3.2` -> `0.3.2`).
pub fn version_from_tag(tag: &str) -> &str {
    match tag.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => tag,
    }
}

/// Checks `version` against `scheme`; the error says what is wrong.
pub fn check(version: &str, scheme: VersionScheme) -> Result<(), String> {
    match scheme {
        VersionScheme::Semver => semver::Version::parse(version)
            .map(|_| ())
            .map_err(|error| format!("not a semantic version ({error})")),
        VersionScheme::Pep440 => {
            if is_pep440(version) {
                Ok(())
            } else {
                Err("not a PEP 440 version (e.g. `1.2.3`, `1.2rc1`, `1.2.post1`)".into())
            }
        }
    }
}

/// A tiny cursor over ASCII text.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digits(&mut self) -> bool {
        let start = self.at;
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at > start
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.text.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn separator(&mut self) {
        if matches!(self.text.get(self.at), Some(b'-' | b'_' | b'.')) {
            self.at += 1;
        }
    }

    /// Eats the longest of `words` at the cursor.
    fn word(&mut self, words: &[&str]) -> bool {
        let rest = &self.text[self.at..];
        let mut best = 0;
        for word in words {
            if rest.starts_with(word.as_bytes()) && word.len() > best {
                best = word.len();
            }
        }
        self.at += best;
        best > 0
    }

    fn done(&self) -> bool {
        self.at == self.text.len()
    }
}

/// PEP 440 (the normalising grammar of `packaging`), case-insensitive.
fn is_pep440(version: &str) -> bool {
    let lower = version.to_ascii_lowercase();
    let mut cursor = Cursor {
        text: lower.as_bytes(),
        at: 0,
    };
    cursor.eat(b'v');
    // Epoch.
    let start = cursor.at;
    if cursor.digits() && !cursor.eat(b'!') {
        cursor.at = start;
    }
    // Release segment.
    if !cursor.digits() {
        return false;
    }
    loop {
        let save = cursor.at;
        if !(cursor.eat(b'.') && cursor.digits()) {
            cursor.at = save;
            break;
        }
    }
    // Pre-release.
    let save = cursor.at;
    cursor.separator();
    if cursor.word(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]) {
        cursor.separator();
        cursor.digits();
    } else {
        cursor.at = save;
    }
    // Post-release.
    let save = cursor.at;
    if !(cursor.eat(b'-') && cursor.digits()) {
        cursor.at = save;
        cursor.separator();
        if cursor.word(&["post", "rev", "r"]) {
            cursor.separator();
            cursor.digits();
        } else {
            cursor.at = save;
        }
    }
    // Development release.
    let save = cursor.at;
    cursor.separator();
    if cursor.word(&["dev"]) {
        cursor.separator();
        cursor.digits();
    } else {
        cursor.at = save;
    }
    // Local version.
    if cursor.eat(b'+') {
        let local = &lower[cursor.at..];
        return !local.is_empty()
            && local
                .split(['-', '_', '.'])
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    cursor.done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_a_leading_v_only_before_a_digit() {
        assert_eq!(version_from_tag("v0.3.2"), "0.3.2");
        assert_eq!(version_from_tag("V1"), "1");
        assert_eq!(version_from_tag("vnext"), "vnext");
        assert_eq!(version_from_tag("1.0"), "1.0");
    }

    #[test]
    fn semver_is_strict() {
        assert!(check("0.3.2", VersionScheme::Semver).is_ok());
        assert!(check("1.0.0-rc.1+build.5", VersionScheme::Semver).is_ok());
        assert!(check("1.0", VersionScheme::Semver).is_err());
        assert!(check("2026.11.24", VersionScheme::Semver).is_ok());
    }

    #[test]
    fn pep440_accepts_the_normalising_grammar() {
        for good in [
            "1",
            "1.2.3",
            "1.2rc1",
            "1.2.RC.1",
            "1.0a",
            "2!1.0",
            "1.0.post1",
            "1.0-1",
            "1.0.dev3",
            "1.0rc1.post2.dev3",
            "1.0+local.7",
            "v1.0",
        ] {
            assert!(is_pep440(good), "{good}");
        }
        for bad in [
            "",
            "a1",
            "1.",
            "1.0+",
            "1.0+a..b",
            "1.0-beta-x",
            "1.0 rc1",
            "1.0.0.final",
        ] {
            assert!(!is_pep440(bad), "{bad}");
        }
    }
}
