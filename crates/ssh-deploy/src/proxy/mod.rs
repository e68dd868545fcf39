//! The reverse proxy in front of blue-green slots: which slot gets traffic, switched atomically,
//! and how to tell when the previous slot has drained. Every function here spells a remote
//! command line (pure, snapshot-tested) or parses a command's output.

pub(crate) mod haproxy;
pub(crate) mod nginx;

use std::fmt;
use std::time::Duration;

pub(crate) use haproxy::Haproxy;
pub(crate) use nginx::Nginx;

/// One of the two slots of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// `blue`.
    Blue,
    /// `green`.
    Green,
}

impl Slot {
    /// `blue` or `green`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }

    /// The other slot.
    pub(crate) fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    /// Parses `blue` / `green`.
    pub(crate) fn parse(text: &str) -> Option<Slot> {
        match text.trim() {
            "blue" => Some(Slot::Blue),
            "green" => Some(Slot::Green),
            _ => None,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A slot with its loopback port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// The slot.
    pub slot: Slot,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The proxy that routes to the live slot.
#[derive(Debug, Clone)]
pub(crate) enum Proxy {
    /// nginx: upstream include rewritten, `nginx -t`, reload, wait for the old workers.
    Nginx(Nginx),
    /// HAProxy: runtime API `ready` new then `drain` old, wait for `scur` 0, persist.
    Haproxy(Haproxy),
}

impl Proxy {
    /// `nginx` or `haproxy`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Proxy::Nginx(_) => "nginx",
            Proxy::Haproxy(_) => "haproxy",
        }
    }

    /// Routes new requests to `to` (`from` is the slot live until now, if any). Prints
    /// `drain-token=<...>` that [`Proxy::drain`] takes back.
    pub(crate) fn switch(&self, to: Target, from: Option<Target>, token: &str) -> String {
        match self {
            Proxy::Nginx(nginx) => nginx.switch(to.port, token),
            Proxy::Haproxy(haproxy) => haproxy.switch(to.slot, from.map(|f| f.slot)),
        }
    }

    /// Waits (at most `timeout`) until `old` serves nothing through the proxy any more; prints
    /// `drained=yes|no` and what is still pinned.
    pub(crate) fn drain(&self, old: Target, drain_token: &str, timeout: Duration) -> String {
        match self {
            Proxy::Nginx(nginx) => nginx.drain(drain_token, old.port, timeout),
            Proxy::Haproxy(haproxy) => haproxy.drain(old.slot, timeout),
        }
    }

    /// After the old slot was stopped: take it out of rotation for good (HAProxy `maint`, state
    /// persisted). nginx has nothing to do: the upstream no longer names it.
    pub(crate) fn retire(&self, old: Slot) -> Option<String> {
        match self {
            Proxy::Nginx(_) => None,
            Proxy::Haproxy(haproxy) => Some(haproxy.retire(old)),
        }
    }
}

/// What a drain command reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DrainReport {
    /// The old slot stopped serving within the timeout.
    pub drained: bool,
    /// How long the wait took, in milliseconds (host clock).
    pub waited_ms: u64,
    /// Details (`old-workers-left=2 old-slot-connections=1`, `old-sessions=3`).
    pub pinned: String,
}

impl DrainReport {
    /// Parses the `drained=`, `waited-ms=` and `pinned=` lines of a drain command.
    pub(crate) fn parse(text: &str) -> Self {
        let mut report = DrainReport::default();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("drained=") {
                report.drained = value.trim() == "yes";
            } else if let Some(value) = line.strip_prefix("waited-ms=") {
                report.waited_ms = value.trim().parse().unwrap_or(0);
            } else if let Some(value) = line.strip_prefix("pinned=") {
                report.pinned = value.trim().to_owned();
            }
        }
        report
    }
}

/// The `drain-token=` line of a switch command's output (validated: digits and spaces only,
/// since it is handed back to a shell).
pub(crate) fn drain_token(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("drain-token="))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|word| word.chars().all(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A shell loop of `sleep 0.05` steps bounded by `timeout`: the body sets `ok=1` to stop.
fn bounded_poll(timeout: Duration, body: &str) -> String {
    let steps = (timeout.as_millis() / 50).max(1);
    format!(
        "i=0; ok=0; while :; do {body}; [ \"$ok\" = 1 ] && break; \
         [ \"$i\" -ge {steps} ] && break; i=$((i+1)); sleep 0.05; done; \
         echo \"waited-ms=$((i*50))\"; if [ \"$ok\" = 1 ]; then echo drained=yes; else echo drained=no; fi"
    )
}

/// Validates an upstream, backend or server name: `[A-Za-z0-9_.-]`, as both proxies accept.
pub(crate) fn validate_name(text: &str, flag: &str) -> Result<String, String> {
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "--{flag} `{}` must be a name of letters, digits, `_`, `.` or `-`",
            text.escape_debug()
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_token_keeps_only_pids() {
        assert_eq!(drain_token("x\ndrain-token= 12 345 $(id) 7\n"), "12 345 7");
        assert_eq!(drain_token("nothing"), "");
    }

    #[test]
    fn parses_drain_report() {
        let report = DrainReport::parse("waited-ms=350\ndrained=no\npinned=old-workers-left=1\n");
        assert_eq!(
            report,
            DrainReport {
                drained: false,
                waited_ms: 350,
                pinned: "old-workers-left=1".into()
            }
        );
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("app_v1.2-x", "f").is_ok());
        for bad in ["", "a b", "a;b", "a/b", "$(id)"] {
            assert!(validate_name(bad, "f").is_err(), "{bad}");
        }
    }
}
