//! Platform revisions (github.com/kdcube/kdcube-ai-app, by commit date) where what the platform
//! reads changed. `--platform-revision` names the one a release deploys.

use std::fmt;
use std::str::FromStr;

/// A change in what the platform reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// 16eb1d711 (2026-04-04): a module cached in `sys.modules` from another bundle's folder is
    /// reloaded from the right file (`agentic_loader._load_from_sys_with_path_on_syspath`).
    ModuleCollisionFixed,
    /// ec362c0ab (2026-04-07): `bundle_registry._normalize` recomputes `path` from `repo`.
    RepoOverridesPath,
    /// ee8f10248 (2026-04-19): `AGENTIC_BUNDLES_JSON` is no longer read; the registry loads
    /// `BUNDLES_YAML_DESCRIPTOR_PATH` (default `/config/bundles.yaml`).
    BundlesYamlOnly,
}

impl Revision {
    /// The commit date, `(year, month, day)`.
    pub fn date(self) -> (u16, u8, u8) {
        match self {
            Revision::ModuleCollisionFixed => (2026, 4, 4),
            Revision::RepoOverridesPath => (2026, 4, 7),
            Revision::BundlesYamlOnly => (2026, 4, 19),
        }
    }
}

/// The platform revision a release deploys: the date of its commit, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlatformRevision(u16, u8, u8);

impl PlatformRevision {
    /// True when this revision includes `change`.
    pub fn reads(&self, change: Revision) -> bool {
        let (y, m, d) = change.date();
        *self >= PlatformRevision(y, m, d)
    }
}

impl fmt::Display for PlatformRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0, self.1, self.2)
    }
}

impl FromStr for PlatformRevision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "`{text}` is not a date: write the platform commit's date as YYYY-MM-DD, e.g. 2026-03-01"
            )
        };
        let parts: Vec<&str> = text.split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(invalid());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(invalid());
        }
        let year = y.parse::<u16>().map_err(|_| invalid())?;
        let month = m.parse::<u8>().map_err(|_| invalid())?;
        let day = d.parse::<u8>().map_err(|_| invalid())?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(invalid());
        }
        Ok(PlatformRevision(year, month, day))
    }
}

/// clap value parser.
pub(crate) fn parse(text: &str) -> Result<PlatformRevision, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_compare_by_date() {
        let early: PlatformRevision = "2026-03-01".parse().expect("date");
        assert!(!early.reads(Revision::ModuleCollisionFixed));
        let late: PlatformRevision = "2026-04-19".parse().expect("date");
        assert!(late.reads(Revision::BundlesYamlOnly) && late.reads(Revision::RepoOverridesPath));
        for bad in ["", "2026-4-1", "v0.3.2", "2026-13-01", "2026-01-01-x"] {
            assert!(bad.parse::<PlatformRevision>().is_err(), "{bad}");
        }
    }
}
