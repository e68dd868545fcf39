//! Blue-green on one host: two slots per service (`blue`, `green`), each on its own loopback
//! port, one of them live behind nginx or HAProxy.
//!
//! Per host: lock -> stage the release -> point the idle slot at it and start it -> gate it
//! *directly on its port* -> switch the proxy atomically -> verify through the proxy that N
//! consecutive responses come from the new slot -> observe (health-gate) while the old slot
//! still runs -> on failure switch back and stop the new slot; on success wait until the old
//! slot has drained, then stop it (or keep it warm for a while, so a rollback is instant).
//!
//! Layout added to the deploy root (`<root>`; `<service>` from `--services`):
//!
//! ```text
//! <root>/slots/<service>-<slot>      -> ../releases/<id>  (the slot's release, renamed into place)
//! <root>/slots/<service>-<slot>.env  PORT=, SLOT=, RELEASE= (systemd: EnvironmentFile=)
//! <root>/.ssh-deploy/blue-green.<service>  live=<slot>, release=, port= (temp + rename)
//! ```
//!
//! `current` follows the live slot, so `releases` and the release log stay meaningful.

pub(crate) mod flow;

use std::time::Duration;

use crate::cli::{DeployArgs, ManagerArg, ProxyArg, ScopeArg};
use crate::commands::Layout;
use crate::error::Error;
use crate::proxy::{Haproxy, Nginx, Proxy, Slot, Target, validate_name};
use crate::quote::{ReleaseId, RemotePath, q};

/// How slots are started and stopped.
#[derive(Debug, Clone)]
pub(crate) enum SlotManager {
    /// systemd template instances: `<service>@blue`, `<service>@green`.
    Systemd {
        /// `systemctl --user`.
        user: bool,
    },
    /// Shell commands run in the slot's directory with `SSH_DEPLOY_SLOT`, `SSH_DEPLOY_SLOT_PORT`,
    /// `SSH_DEPLOY_RELEASE`, `SSH_DEPLOY_SERVICE`, `SSH_DEPLOY_ROOT` exported.
    Custom {
        /// Starts the slot (returns once it is started; readiness is gated separately).
        start: String,
        /// Stops the slot; must succeed when it is not running.
        stop: String,
    },
}

/// Validated blue-green settings.
#[derive(Debug, Clone)]
pub(crate) struct BlueGreen {
    /// The service (one per deploy; one state file per service).
    pub service: String,
    /// The proxy in front.
    pub proxy: Proxy,
    /// Loopback port of `blue`.
    pub blue_port: u16,
    /// Loopback port of `green`.
    pub green_port: u16,
    /// Starts and stops slots.
    pub slots: SlotManager,
    /// Path probed on the host with curl on the new slot's own port before the switch.
    pub health_path: Option<String>,
    /// How long a new slot may take to become healthy, and the verify step's deadline.
    pub start_timeout: Duration,
    /// URL requested on the host through the proxy to see which slot answers.
    pub verify_url: String,
    /// Response header naming the slot (or release); empty: the body's first line does.
    pub verify_header: Option<String>,
    /// Consecutive answers from the new slot required.
    pub verify_count: u32,
    /// health-gate file run through the proxy after the switch (`{host}`, `{port}`, `{slot}`).
    pub observe_gate: Option<String>,
    /// Longest wait for the old slot to drain before it is stopped anyway.
    pub drain_timeout: Duration,
    /// Keep the old slot running this long after a successful switch (0: stop after drain).
    pub keep_old_slot: Duration,
}

impl BlueGreen {
    /// A slot with its port.
    pub(crate) fn target(&self, slot: Slot) -> Target {
        Target {
            slot,
            port: match slot {
                Slot::Blue => self.blue_port,
                Slot::Green => self.green_port,
            },
        }
    }

    fn slot_dir(&self, layout: &Layout, slot: Slot) -> String {
        layout
            .root()
            .join(&format!("slots/{}-{}", self.service, slot.name()))
    }

    fn state_file(&self, layout: &Layout) -> String {
        layout
            .root()
            .join(&format!(".ssh-deploy/blue-green.{}", self.service))
    }

    /// Prints the state file (nothing on a first deploy).
    pub(crate) fn read_state(&self, layout: &Layout) -> String {
        format!("cat {} 2>/dev/null || true", q(&self.state_file(layout)))
    }

    /// Records the live slot (temp file + rename: readers see the old or the new file).
    pub(crate) fn write_state(
        &self,
        layout: &Layout,
        live: Target,
        release: &ReleaseId,
        token: &str,
    ) -> String {
        let file = self.state_file(layout);
        format!(
            "printf 'live=%s\\nrelease=%s\\nport=%s\\n' {slot} {release} {port} > {tmp} && mv -f {tmp} {file}",
            slot = q(live.slot.name()),
            release = q(release.as_str()),
            port = live.port,
            tmp = q(&format!("{file}.tmp-{token}")),
            file = q(&file),
        )
    }

    /// Points the slot at the release and writes its env file, both renamed into place.
    pub(crate) fn link_slot(
        &self,
        layout: &Layout,
        target: Target,
        release: &ReleaseId,
        token: &str,
    ) -> String {
        let dir = self.slot_dir(layout, target.slot);
        format!(
            "set -e; mkdir -p {slots}; test -d {release_dir}; \
             ln -sfn {relative} {tmp_link}; mv -Tf {tmp_link} {dir}; \
             printf 'PORT=%s\\nSLOT=%s\\nRELEASE=%s\\n' {port} {slot} {id} > {tmp_env}; mv -f {tmp_env} {env}",
            slots = q(&layout.root().join("slots")),
            release_dir = q(&layout.root().join(&format!("releases/{release}"))),
            relative = q(&format!("../releases/{release}")),
            tmp_link = q(&format!("{dir}.tmp-{token}")),
            dir = q(&dir),
            port = target.port,
            slot = q(target.slot.name()),
            id = q(release.as_str()),
            tmp_env = q(&format!("{dir}.env.tmp-{token}")),
            env = q(&format!("{dir}.env")),
        )
    }

    fn unit(&self, slot: Slot) -> String {
        format!("{}@{}.service", self.service, slot.name())
    }

    fn custom(&self, layout: &Layout, target: Target, release: &str, command: &str) -> String {
        format!(
            "cd {dir} 2>/dev/null || cd {root}; export SSH_DEPLOY_ROOT={root} SSH_DEPLOY_RELEASE={release} \
             SSH_DEPLOY_SERVICE={service} SSH_DEPLOY_SLOT={slot} SSH_DEPLOY_SLOT_PORT={port} && {{ {command}\n}}",
            dir = q(&self.slot_dir(layout, target.slot)),
            root = q(layout.root().as_str()),
            release = q(release),
            service = q(&self.service),
            slot = q(target.slot.name()),
            port = target.port,
        )
    }

    /// Starts (restarts) the slot on its release.
    pub(crate) fn start(&self, layout: &Layout, target: Target, release: &ReleaseId) -> String {
        match &self.slots {
            SlotManager::Systemd { user } => {
                let scope = if *user { " --user" } else { "" };
                format!(
                    "systemctl{scope} restart {unit} && systemctl{scope} is-active --quiet {unit}",
                    unit = q(&self.unit(target.slot))
                )
            }
            SlotManager::Custom { start, .. } => {
                self.custom(layout, target, release.as_str(), start)
            }
        }
    }

    /// Stops the slot (succeeds when it is not running).
    pub(crate) fn stop(&self, layout: &Layout, target: Target) -> String {
        match &self.slots {
            SlotManager::Systemd { user } => format!(
                "systemctl{} stop {}",
                if *user { " --user" } else { "" },
                q(&self.unit(target.slot))
            ),
            // A slot that was never pointed at a release (the other slot on a first deploy)
            // runs nothing: the stop command, which usually lives in the slot's release
            // (`deploy/bin/ctl slot-stop`), has nowhere to run, so it is not run.
            SlotManager::Custom { stop, .. } => format!(
                "if [ -d {dir} ]; then {command}\nelse echo {nothing}; fi",
                dir = q(&self.slot_dir(layout, target.slot)),
                command = self.custom(layout, target, "", stop),
                nothing = q(&format!(
                    "slot {} has no release yet: nothing to stop",
                    target.slot
                )),
            ),
        }
    }

    /// Probes `http://127.0.0.1:<port><health_path>` on the host until it answers 2xx, for at
    /// most `start_timeout`.
    pub(crate) fn health(&self, target: Target) -> Option<String> {
        let path = self.health_path.as_ref()?;
        let steps = (self.start_timeout.as_millis() / 200).max(1);
        Some(format!(
            "i=0; until curl -fsS -o /dev/null --max-time 2 {url} 2>/dev/null; do i=$((i+1)); \
             if [ \"$i\" -ge {steps} ]; then echo {message} >&2; curl -sS -o /dev/null --max-time 2 {url} || true; exit 1; fi; \
             sleep 0.2; done",
            url = q(&format!("http://127.0.0.1:{}{path}", target.port)),
            message = q(&format!(
                "slot {} is not healthy on port {} after {}s",
                target.slot,
                target.port,
                self.start_timeout.as_secs()
            )),
        ))
    }

    /// Requests `verify_url` on the host until `verify_count` consecutive 2xx answers name the
    /// new slot (or release), within `start_timeout`.
    pub(crate) fn verify(&self, target: Target, release: &ReleaseId) -> String {
        let steps = (self.start_timeout.as_millis() / 50).max(1);
        let fetch = match &self.verify_header {
            Some(header) => format!(
                "r=$(curl -sS --max-time 5 -D - -o /dev/null {url} 2>&1 | tr -d '\\r'); \
                 code=$(printf '%s\\n' \"$r\" | awk 'NR == 1 {{ print $2 }}'); \
                 id=$(printf '%s\\n' \"$r\" | awk -v h={header} 'BEGIN {{ h = tolower(h) \":\" }} index(tolower($0), h) == 1 {{ sub(/^[^:]*:[ \\t]*/, \"\"); print; exit }}')",
                url = q(&self.verify_url),
                header = q(header),
            ),
            None => format!(
                "code=$(curl -sS --max-time 5 -o \"$b\" -w '%{{http_code}}' {url} 2>/dev/null || true); \
                 id=$(head -n 1 \"$b\" 2>/dev/null | tr -d '\\r')",
                url = q(&self.verify_url),
            ),
        };
        format!(
            "b=$(mktemp); ok=0; n=0; id=; code=; while [ \"$ok\" -lt {count} ]; do {fetch}; \
             case \"$code\" in 2??) ;; *) id=\"HTTP status ${{code:-none}}\";; esac; \
             if [ \"$id\" = {slot} ] || [ \"$id\" = {release} ]; then ok=$((ok+1)); else ok=0; \
             n=$((n+1)); if [ \"$n\" -ge {steps} ]; then rm -f \"$b\"; \
             echo \"the proxy still does not answer from slot \"{slot}\" after {seconds}s: last answer: $id\" >&2; exit 1; fi; \
             sleep 0.05; fi; done; rm -f \"$b\"; echo \"verified=$ok\"",
            count = self.verify_count,
            slot = q(target.slot.name()),
            release = q(release.as_str()),
            seconds = self.start_timeout.as_secs(),
        )
    }

    /// Stops the old slot after `keep_old_slot`, in the background on the host, unless a later
    /// switch made it live again by then.
    pub(crate) fn stop_later(&self, layout: &Layout, old: Target, new: Slot) -> String {
        let mut stop = self.stop(layout, old);
        if let Some(retire) = self.proxy.retire(old.slot) {
            stop = format!("{stop}\n{retire}");
        }
        let inner = format!(
            "sleep {secs}; if grep -qx {live} {state}; then {stop}\nfi",
            secs = self.keep_old_slot.as_secs(),
            live = q(&format!("live={}", new.name())),
            state = q(&self.state_file(layout)),
        );
        format!("nohup sh -c {} >/dev/null 2>&1 </dev/null &", q(&inner))
    }
}

impl BlueGreen {
    /// Validates the `--strategy blue-green` flags.
    pub(crate) fn from_args(args: &DeployArgs, services: &[String]) -> Result<Self, Error> {
        let bg = &args.blue_green;
        let usage = |message: String| Error::Usage(message);
        let service = match services {
            [service] => validate_name(service, "services").map_err(usage)?,
            _ => {
                return Err(usage(format!(
                    "--strategy blue-green deploys one service per run (its two slots `<service>@blue` and \
                     `<service>@green`), but --services names {}; run one deploy per service",
                    services.len()
                )));
            }
        };
        let (blue_port, green_port) = match (bg.blue_port, bg.green_port) {
            (Some(blue), Some(green)) if blue != 0 && green != 0 && blue != green => (blue, green),
            _ => {
                return Err(usage(
                    "--strategy blue-green needs --blue-port and --green-port: two different \
                     non-zero loopback ports"
                        .into(),
                ));
            }
        };
        let text = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        let slots = match args.change.service_manager {
            ManagerArg::Systemd => SlotManager::Systemd {
                user: args.change.systemd_scope == ScopeArg::User,
            },
            ManagerArg::Custom => match (text(&bg.slot_start_command), text(&bg.slot_stop_command))
            {
                (Some(start), Some(stop)) => SlotManager::Custom { start, stop },
                _ => {
                    return Err(usage(
                        "--service-manager custom with --strategy blue-green needs \
                         --slot-start-command and --slot-stop-command"
                            .into(),
                    ));
                }
            },
        };
        let health_path = text(&bg.slot_health_path);
        if let Some(path) = &health_path {
            if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                return Err(usage(format!(
                    "--slot-health-path `{}` must start with `/` and hold no spaces",
                    path.escape_debug()
                )));
            }
        }
        let Some(verify_url) = text(&bg.verify_url) else {
            return Err(usage(
                "--strategy blue-green needs --verify-url: a URL requested on the host through the \
                 proxy whose answer names the slot (a header, see --verify-header) or the release"
                    .into(),
            ));
        };
        if !(verify_url.starts_with("http://") || verify_url.starts_with("https://")) {
            return Err(usage(format!(
                "--verify-url `{verify_url}` must be an http:// or https:// URL"
            )));
        }
        let verify_header = text(&bg.verify_header);
        if let Some(header) = &verify_header {
            validate_name(header, "verify-header").map_err(usage)?;
        }
        if bg.verify_count == 0 {
            return Err(usage("--verify-count must be at least 1".into()));
        }
        let observe_gate = match &bg.observe_gate_file {
            Some(path) if !path.as_os_str().is_empty() => {
                let content = std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("--observe-gate-file {}: {e}", path.display())))?;
                crate::gate::check(&content, "127.0.0.1").map_err(|e| {
                    crate::error::gate_file(e, "--observe-gate-file", path, &content)
                })?;
                Some(content)
            }
            _ => None,
        };
        let path = |value: &str, flag: &str| {
            RemotePath::parse(value).map_err(|e| usage(format!("--{flag}: {e}")))
        };
        let command = |value: &str, flag: &str| {
            if value.trim().is_empty() {
                Err(usage(format!("--{flag} must not be empty")))
            } else {
                Ok(value.to_owned())
            }
        };
        let proxy = match bg.proxy {
            ProxyArg::Nginx => {
                let Some(upstream_file) = text(&bg.nginx_upstream_file) else {
                    return Err(usage(
                        "--proxy nginx needs --nginx-upstream-file: the include file ssh-deploy \
                         rewrites, included inside `http {}` of nginx.conf"
                            .into(),
                    ));
                };
                Proxy::Nginx(Nginx {
                    upstream_file: path(&upstream_file, "nginx-upstream-file")?,
                    upstream_name: validate_name(&bg.nginx_upstream_name, "nginx-upstream-name")
                        .map_err(usage)?,
                    test_command: command(&bg.nginx_test_command, "nginx-test-command")?,
                    reload_command: command(&bg.nginx_reload_command, "nginx-reload-command")?,
                    pid_file: path(&bg.nginx_pid_file, "nginx-pid-file")?,
                })
            }
            ProxyArg::Haproxy => Proxy::Haproxy(Haproxy {
                socket: path(&bg.haproxy_socket, "haproxy-socket")?,
                backend: validate_name(&bg.haproxy_backend, "haproxy-backend").map_err(usage)?,
                state_file: text(&bg.haproxy_state_file)
                    .map(|file| path(&file, "haproxy-state-file"))
                    .transpose()?,
            }),
        };
        Ok(Self {
            service,
            proxy,
            blue_port,
            green_port,
            slots,
            health_path,
            start_timeout: bg.slot_start_timeout,
            verify_url,
            verify_header,
            verify_count: bg.verify_count,
            observe_gate,
            drain_timeout: bg.drain_timeout,
            keep_old_slot: bg.keep_old_slot,
        })
    }
}

/// The state file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// The live slot.
    pub live: Option<Slot>,
    /// Its release.
    pub release: Option<String>,
}

impl State {
    /// Parses `live=`/`release=` lines.
    pub(crate) fn parse(text: &str) -> Self {
        let mut state = State::default();
        for line in text.lines() {
            if let Some(slot) = line.strip_prefix("live=") {
                state.live = Slot::parse(slot);
            } else if let Some(release) = line.strip_prefix("release=") {
                state.release = Some(release.trim().to_owned());
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxy: Proxy, slots: SlotManager) -> BlueGreen {
        BlueGreen {
            service: "api".into(),
            proxy,
            blue_port: 8081,
            green_port: 8082,
            slots,
            health_path: Some("/health".into()),
            start_timeout: Duration::from_secs(30),
            verify_url: "http://127.0.0.1/version".into(),
            verify_header: Some("X-Slot".into()),
            verify_count: 5,
            observe_gate: None,
            drain_timeout: Duration::from_secs(30),
            keep_old_slot: Duration::ZERO,
        }
    }

    fn nginx() -> Proxy {
        Proxy::Nginx(Nginx {
            upstream_file: RemotePath::parse("/etc/nginx/api.upstream").expect("path"),
            upstream_name: "api".into(),
            test_command: "nginx -t".into(),
            reload_command: "nginx -s reload".into(),
            pid_file: RemotePath::parse("/run/nginx.pid").expect("path"),
        })
    }

    fn layout() -> Layout {
        Layout::new(RemotePath::parse("/opt/it's app").expect("path"))
    }

    #[test]
    fn slot_commands() {
        let layout = layout();
        let release = ReleaseId::parse("v2").expect("id");
        let systemd = config(nginx(), SlotManager::Systemd { user: false });
        let mut custom = config(
            Proxy::Haproxy(Haproxy {
                socket: RemotePath::parse("/run/haproxy/admin.sock").expect("path"),
                backend: "api".into(),
                state_file: None,
            }),
            SlotManager::Custom {
                start: "./bin/api --port \"$SSH_DEPLOY_SLOT_PORT\" &".into(),
                stop: "pkill -f \"api --port $SSH_DEPLOY_SLOT_PORT\" || true".into(),
            },
        );
        custom.verify_header = None;
        custom.keep_old_slot = Duration::from_secs(600);
        let green = systemd.target(Slot::Green);
        let blue = systemd.target(Slot::Blue);
        insta::assert_snapshot!(
            "blue_green_slot_commands",
            [
                systemd.read_state(&layout),
                systemd.write_state(&layout, green, &release, "t0k"),
                systemd.link_slot(&layout, green, &release, "t0k"),
                systemd.start(&layout, green, &release),
                systemd.stop(&layout, blue),
                systemd.health(green).unwrap_or_default(),
                systemd.verify(green, &release),
                custom.start(&layout, green, &release),
                custom.stop(&layout, blue),
                custom.verify(green, &release),
                custom.stop_later(&layout, blue, Slot::Green),
            ]
            .join("\n")
        );
    }

    #[test]
    fn parses_state() {
        assert_eq!(
            State::parse("live=green\nrelease=v2\nport=8082\n"),
            State {
                live: Some(Slot::Green),
                release: Some("v2".into())
            }
        );
        assert_eq!(State::parse(""), State::default());
        assert_eq!(State::parse("live=purple\n").live, None);
    }

    /// The state and slot commands against a scratch root: the state file and the slot link
    /// are replaced by rename and read back.
    #[test]
    fn state_and_slot_link_round_trip_through_a_shell() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("it's root");
        std::fs::create_dir_all(root.join("releases/v2")).expect("mkdir");
        std::fs::create_dir_all(root.join(".ssh-deploy")).expect("mkdir");
        let layout = Layout::new(RemotePath::parse(root.to_str().expect("utf8")).expect("path"));
        let config = config(nginx(), SlotManager::Systemd { user: false });
        let release = ReleaseId::parse("v2").expect("id");
        let sh = |command: &str| {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .output()
                .expect("sh");
            assert!(output.status.success(), "{command}: {output:?}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        assert_eq!(
            State::parse(&sh(&config.read_state(&layout))),
            State::default()
        );
        let green = config.target(Slot::Green);
        sh(&config.write_state(&layout, green, &release, "t"));
        sh(&config.link_slot(&layout, green, &release, "t"));
        sh(&config.link_slot(&layout, green, &release, "u"));
        assert_eq!(
            State::parse(&sh(&config.read_state(&layout))).live,
            Some(Slot::Green)
        );
        assert_eq!(
            std::fs::read_link(root.join("slots/api-green")).expect("link"),
            std::path::Path::new("../releases/v2")
        );
        assert_eq!(
            std::fs::read_to_string(root.join("slots/api-green.env")).expect("env"),
            "PORT=8082\nSLOT=green\nRELEASE=v2\n"
        );
        let slots: Vec<_> = std::fs::read_dir(root.join("slots"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(slots.len(), 2, "no temp files left: {slots:?}");
    }
}
