//! What a host has: its `status` output parsed (current release, releases, the artifact) and
//! who holds its deploy lock.

use std::time::Duration;

use crate::commands::LOCK_HELD;
use crate::quote::ReleaseId;

/// What `status` reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostStatus {
    /// The current release.
    pub current: Option<ReleaseId>,
    /// Releases, newest activation first, with their artifact sha.
    pub releases: Vec<(ReleaseId, Option<String>)>,
    /// The artifact is already on the host (checksum verified).
    pub artifact_present: bool,
}

/// Parses the output of [`Layout::status`].
pub(crate) fn parse_status(text: &str) -> HostStatus {
    let mut status = HostStatus::default();
    for line in text.lines() {
        if let Some(current) = line.strip_prefix("current=") {
            status.current = ReleaseId::parse(current).ok();
        } else if let Some(rest) = line.strip_prefix("release ") {
            let mut fields = rest.split(' ');
            if let Some(Ok(id)) = fields.next().map(ReleaseId::parse) {
                let sha = fields.next().filter(|s| *s != "-").map(str::to_owned);
                status.releases.push((id, sha));
            }
        } else if line == "artifact=present" {
            status.artifact_present = true;
        }
    }
    status
}

/// Who holds a lock, from the owner file and the lock command's `held` line.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockHolder {
    /// `owner=` (`unknown` when the owner file could not be read).
    pub owner: String,
    /// `run=`.
    pub run: String,
    /// The owner file was readable and named an owner.
    readable: bool,
    since: Option<u64>,
    now: Option<u64>,
    /// When the lock directory was made (host clock), for a lock without a readable owner.
    created: Option<u64>,
    /// Until when the holder vouches for it (host clock).
    lease: Option<u64>,
}

impl LockHolder {
    /// Parses the lock command's `held` output.
    pub(crate) fn parse(text: &str) -> Self {
        let mut holder = LockHolder {
            owner: "unknown".into(),
            run: "unknown".into(),
            ..LockHolder::default()
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(LOCK_HELD) {
                for word in rest.split_whitespace() {
                    let number =
                        |prefix: &str| word.strip_prefix(prefix).and_then(|n| n.parse().ok());
                    holder.now = holder.now.or(number("now="));
                    holder.created = holder.created.or(number("created="));
                    holder.lease = holder.lease.or(number("lease="));
                }
            } else if let Some(owner) = line.strip_prefix("owner=") {
                holder.owner = owner.to_owned();
                holder.readable = true;
            } else if let Some(run) = line.strip_prefix("run=") {
                holder.run = run.to_owned();
            } else if let Some(since) = line.strip_prefix("since=") {
                holder.since = since.parse().ok();
            }
        }
        holder
    }

    /// How long it has been held (host clock on both ends): since the owner file says, or
    /// since the lock directory was made when the owner file is unreadable (a full disk when it
    /// was taken leaves it empty).
    pub(crate) fn age(&self) -> Option<Duration> {
        let since = self.since.or(self.created)?;
        Some(Duration::from_secs(self.now?.saturating_sub(since)))
    }

    /// Why the lock may be taken over, if it may: its lease passed (its holder stopped
    /// renewing it, so the deploy that took it is gone), or it is older than `stale_after`.
    pub(crate) fn stale(&self, stale_after: Duration) -> Option<String> {
        if let (Some(now), Some(lease)) = (self.now, self.lease) {
            if now > lease {
                return Some(format!(
                    "its lease ran out {}s ago (the deploy holding it stopped renewing it: it is gone)",
                    now - lease
                ));
            }
        }
        let age = self.age()?;
        (age >= stale_after).then(|| {
            let what = if self.readable {
                "it is stale"
            } else {
                "it has no readable owner (written on a full disk?) and is stale"
            };
            format!(
                "{what}: held for {}s (--lock-stale-after {}s)",
                age.as_secs(),
                stale_after.as_secs()
            )
        })
    }

    /// The holder in an error message.
    pub(crate) fn describe(&self) -> String {
        let age = self.age().map_or_else(
            || "for an unknown time".to_owned(),
            |a| format!("for {}s", a.as_secs()),
        );
        let lease = match (self.now, self.lease) {
            (Some(now), Some(lease)) => {
                format!(", its lease runs {}s more", lease.saturating_sub(now))
            }
            _ => String::new(),
        };
        if self.readable {
            format!("{} (run {}) {age}{lease}", self.owner, self.run)
        } else {
            format!(
                "a deploy whose lock has no readable owner (written on a full disk?), held {age}{lease}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_lock_holder() {
        let status = parse_status(
            "current=v2\nrelease v2 abc\nrelease v1 -\nrelease .tmp-x y\nartifact=present\n",
        );
        assert_eq!(status.current.as_ref().map(ReleaseId::as_str), Some("v2"));
        assert_eq!(status.releases.len(), 2);
        assert_eq!(status.releases[1].1, None);
        assert!(status.artifact_present);
        assert!(parse_status("current=\n").current.is_none());
        let holder = LockHolder::parse(
            "ssh-deploy-lock:held now=1100\ntoken=t\nowner=alice\nrun=42\nsince=1000\n",
        );
        assert_eq!(
            (holder.owner.as_str(), holder.run.as_str()),
            ("alice", "42")
        );
        assert_eq!(holder.age(), Some(Duration::from_secs(100)));
    }
}
