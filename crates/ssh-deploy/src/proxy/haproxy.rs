//! HAProxy through its runtime API (the admin socket, spoken with `socat`): the new server is
//! set `ready` and only then the old one `drain`, on one command line. The reverse order leaves
//! an instant without an eligible server (research note strategies.md §4.2, H2: 207,333 × 503
//! over 7 switches); this order gave 0 errors and 0 keep-alive resets (H1). Runtime changes are
//! lost on reload unless dumped to the server-state file (`server-state-file` +
//! `load-server-state-from-file global` in haproxy.cfg), so every change is persisted there.
//!
//! The backend has one server per slot, named after it: `server blue 127.0.0.1:<port>` and
//! `server green 127.0.0.1:<port>`.

use std::time::Duration;

use super::Slot;
use crate::quote::{RemotePath, q};

/// HAProxy settings.
#[derive(Debug, Clone)]
pub(crate) struct Haproxy {
    /// The admin socket (`stats socket <path> level admin`).
    pub socket: RemotePath,
    /// The backend holding the `blue` and `green` servers.
    pub backend: String,
    /// The server-state file to keep in step with the runtime state (none: not persisted).
    pub state_file: Option<RemotePath>,
}

impl Haproxy {
    /// Sends `commands` (`;`-separated) to the admin socket; prints HAProxy's answer.
    pub(crate) fn api(&self, commands: &str) -> String {
        format!(
            "printf '%s\\n' {commands} | socat -t 10 - UNIX-CONNECT:{socket}",
            commands = q(commands),
            socket = q(self.socket.as_str()),
        )
    }

    fn server(&self, slot: Slot) -> String {
        format!("{}/{}", self.backend, slot.name())
    }

    /// Dumps the servers' state to the state file (temp + rename), when one is configured. A
    /// failure here only warns: the runtime state is already right, and failing the step
    /// would make the caller undo a switch that happened.
    fn persist(&self) -> String {
        match &self.state_file {
            Some(file) => format!(
                "; if ! {{ {api} > {tmp} && mv -f {tmp} {file}; }}; then \
                 echo {warning} >&2; fi",
                api = self.api("show servers state"),
                tmp = q(&format!("{}.tmp", file.as_str())),
                file = q(file.as_str()),
                warning = q(&format!(
                    "warning: could not write the HAProxy server-state file {}: a reload would revert the switch",
                    file.as_str()
                )),
            ),
            None => String::new(),
        }
    }

    /// Sends one command; any answer text is HAProxy's error (`set server` answers nothing on
    /// success). `on_error` runs before failing.
    fn checked(&self, command: &str, on_error: &str) -> String {
        format!(
            "out=$({api} 2>&1) || out=\"${{out:-socat failed}}\"; if [ -n \"$(printf '%s' \"$out\" | tr -d ' \\n')\" ]; then {on_error}\
             echo \"haproxy refused \"{quoted}\": $out\" >&2; exit 1; fi",
            api = self.api(command),
            quoted = q(command),
        )
    }

    /// `ready` the new server, and only once that was accepted `drain` the old one (never the
    /// reverse). If the drain is refused the new server goes back to `maint`, so a failed
    /// switch leaves the routing as it was.
    pub(crate) fn switch(&self, to: Slot, from: Option<Slot>) -> String {
        let from = from.unwrap_or(to.other());
        let ready = format!("set server {} state ready", self.server(to));
        let drain = format!("set server {} state drain", self.server(from));
        let undo = format!(
            "{} >/dev/null; ",
            self.api(&format!("set server {} state maint", self.server(to)))
        );
        format!(
            "{}; {}{}",
            self.checked(&ready, ""),
            self.checked(&drain, &undo),
            self.persist()
        )
    }

    /// Waits (capped by `timeout`) until the old server's current sessions (`scur`, field 5 of
    /// `show stat`) are 0; reports the count left.
    pub(crate) fn drain(&self, old: Slot, timeout: Duration) -> String {
        let body = format!(
            "s=$({api} | awk -F, -v b={backend} -v s={server} '$1 == b && $2 == s {{ print $5 }}'); \
             if [ \"$s\" = 0 ]; then ok=1; fi",
            api = self.api("show stat"),
            backend = q(&self.backend),
            server = q(old.name()),
        );
        format!(
            "{poll}; echo \"pinned=old-sessions=${{s:-unknown}}\"",
            poll = super::bounded_poll(timeout, &body)
        )
    }

    /// The old slot is stopped: `maint` (no checks, no traffic) and persist.
    pub(crate) fn retire(&self, old: Slot) -> String {
        format!(
            "{}{}",
            self.checked(&format!("set server {} state maint", self.server(old)), ""),
            self.persist()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_commands() {
        let haproxy = Haproxy {
            socket: RemotePath::parse("/run/haproxy/admin.sock").expect("path"),
            backend: "app".into(),
            state_file: Some(RemotePath::parse("/var/lib/haproxy/server-state").expect("path")),
        };
        let unpersisted = Haproxy {
            state_file: None,
            ..haproxy.clone()
        };
        insta::assert_snapshot!(
            "haproxy_commands",
            [
                haproxy.switch(Slot::Green, Some(Slot::Blue)),
                haproxy.switch(Slot::Blue, None),
                haproxy.drain(Slot::Blue, Duration::from_secs(30)),
                haproxy.retire(Slot::Blue),
                unpersisted.switch(Slot::Blue, Some(Slot::Green)),
            ]
            .join("\n")
        );
    }

    #[test]
    fn ready_comes_before_drain() {
        let haproxy = Haproxy {
            socket: RemotePath::parse("/s").expect("path"),
            backend: "app".into(),
            state_file: None,
        };
        let line = haproxy.switch(Slot::Green, Some(Slot::Blue));
        let ready = line
            .find("'set server app/green state ready'")
            .expect("ready");
        let drain = line
            .find("'set server app/blue state drain'")
            .expect("drain");
        assert!(ready < drain, "{line}");
    }
}
