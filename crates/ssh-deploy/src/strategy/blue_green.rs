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

use std::time::{Duration, Instant};

use runner_protocol::{Runner, Verdict};

use crate::cli::{DeployArgs, ManagerArg, ProxyArg, ScopeArg};
use crate::commands::Layout;
use crate::deploy::{HostError, HostRun, Shared};
use crate::options::{DeployOptions, Error, HostReport, HostSpec};
use crate::proxy::{DrainReport, Haproxy, Nginx, Proxy, Slot, Target, drain_token, validate_name};
use crate::quote::{ReleaseId, RemotePath, q};

/// How slots are started and stopped.
#[derive(Debug, Clone)]
pub enum SlotManager {
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
pub struct BlueGreen {
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
    pub fn target(&self, slot: Slot) -> Target {
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
    pub fn read_state(&self, layout: &Layout) -> String {
        format!("cat {} 2>/dev/null || true", q(&self.state_file(layout)))
    }

    /// Records the live slot (temp file + rename: readers see the old or the new file).
    pub fn write_state(
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
    pub fn link_slot(
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
    pub fn start(&self, layout: &Layout, target: Target, release: &ReleaseId) -> String {
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
    pub fn stop(&self, layout: &Layout, target: Target) -> String {
        match &self.slots {
            SlotManager::Systemd { user } => format!(
                "systemctl{} stop {}",
                if *user { " --user" } else { "" },
                q(&self.unit(target.slot))
            ),
            SlotManager::Custom { stop, .. } => self.custom(layout, target, "", stop),
        }
    }

    /// Probes `http://127.0.0.1:<port><health_path>` on the host until it answers 2xx, for at
    /// most `start_timeout`.
    pub fn health(&self, target: Target) -> Option<String> {
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
    pub fn verify(&self, target: Target, release: &ReleaseId) -> String {
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
    pub fn stop_later(&self, layout: &Layout, old: Target, new: Slot) -> String {
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
    pub fn from_args(args: &DeployArgs, services: &[String]) -> Result<Self, Error> {
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
                let probe = content.replace("{port}", "1").replace("{slot}", "blue");
                crate::deploy::resolve_gate(&probe, "127.0.0.1")
                    .map_err(|e| usage(format!("--observe-gate-file {}: {e}", path.display())))?;
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
pub struct State {
    /// The live slot.
    pub live: Option<Slot>,
    /// Its release.
    pub release: Option<String>,
}

impl State {
    /// Parses `live=`/`release=` lines.
    pub fn parse(text: &str) -> Self {
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

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it does.
    pub title: String,
    /// The exact command (`runner` for steps run from the runner).
    pub command: String,
}

/// The per-host plan for `--dry-run`, as it runs when `live` is the live slot (the real run
/// reads it from the state file).
pub fn plan(options: &DeployOptions, config: &BlueGreen, live: Option<Slot>) -> Vec<Step> {
    let layout = &options.connection.layout;
    let change = &options.change;
    let token = "<token>";
    let release = &options.release;
    let sha = options.sha256.as_str();
    let new = config.target(live.map_or(Slot::Blue, Slot::other));
    let old = live.map(|slot| config.target(slot));
    let mut steps = Vec::new();
    let mut step = |title: &str, command: String| {
        steps.push(Step {
            title: title.to_owned(),
            command,
        });
    };
    step("lock", layout.lock(token, &change.who, &change.run));
    step("status", layout.status(Some(sha)));
    step("read live slot", config.read_state(layout));
    step("upload (stdin = artifact)", layout.upload(sha, token));
    step("verify upload", layout.verify_upload(sha, token));
    step(
        "unpack",
        layout.unpack(release, sha, token, &options.shared),
    );
    step(
        &format!("stop idle slot {}", new.slot),
        config.stop(layout, new),
    );
    step(
        &format!("link slot {}", new.slot),
        config.link_slot(layout, new, release, token),
    );
    step(
        &format!("start slot {}", new.slot),
        config.start(layout, new, release),
    );
    if let Some(command) = config.health(new) {
        step(&format!("health of slot {} on its port", new.slot), command);
    }
    if change.gate.is_some() {
        step(
            &format!("gate slot {} on port {}", new.slot, new.port),
            "runner: health-gate --gate-file".into(),
        );
    }
    step(
        &format!("switch {} to {}", config.proxy.name(), new.slot),
        config.proxy.switch(new, old, token),
    );
    step(
        "record live slot",
        config.write_state(layout, new, release, token),
    );
    step("switch current", layout.switch(release, token));
    step(
        &format!("verify through {}", config.proxy.name()),
        config.verify(new, release),
    );
    if config.observe_gate.is_some() {
        step(
            "observe",
            "runner: health-gate --observe-gate-file (on failure: switch back, stop the new slot)"
                .into(),
        );
    }
    if let Some(old) = old {
        step(
            &format!("drain slot {}", old.slot),
            config
                .proxy
                .drain(old, "<pids from the switch>", config.drain_timeout),
        );
        if config.keep_old_slot.is_zero() {
            step(&format!("stop slot {}", old.slot), config.stop(layout, old));
            if let Some(command) = config.proxy.retire(old.slot) {
                step(&format!("retire slot {}", old.slot), command);
            }
        } else {
            step(
                &format!("stop slot {} later", old.slot),
                config.stop_later(layout, old, new.slot),
            );
        }
    }
    step(
        "release log",
        layout.log(release, sha, &change.who, "success"),
    );
    step("unlock", layout.unlock(token));
    steps
}

/// The dry-run text.
pub fn render(options: &DeployOptions, config: &BlueGreen) -> String {
    let mut text = format!(
        "plan: blue-green release {} of `{}` behind {} (blue :{}, green :{}) to {} host(s), one host at a time; \
         shown for a host whose live slot is blue (the idle slot is read from the host's state file)\n",
        options.release,
        config.service,
        config.proxy.name(),
        config.blue_port,
        config.green_port,
        options.connection.hosts.len(),
    );
    let steps = plan(options, config, Some(Slot::Blue));
    for host in &options.connection.hosts {
        for step in &steps {
            text.push_str(&format!(
                "  [{}] {}: {}\n",
                host.label(),
                step.title,
                step.command
            ));
        }
    }
    text
}

/// How one host ended.
#[derive(Debug)]
enum Outcome {
    /// The new slot is live.
    Deployed,
    /// Switched back to the old slot (the error says why).
    SwitchedBack(HostError),
    /// Failed before the switch: the old slot serves as before.
    Failed(HostError),
    /// The switch back failed: the host needs a look.
    SwitchBackFailed(String),
}

fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}

struct HostFlow<'a> {
    run: &'a mut HostRun,
    shared: &'a Shared<'a>,
    options: &'a DeployOptions,
    config: &'a BlueGreen,
    host: &'a HostSpec,
    token: String,
}

impl HostFlow<'_> {
    fn log(&self, text: &str) {
        self.shared
            .console
            .log(&format!("[{}] {text}", self.run.label()));
    }

    fn step(&mut self, stage: &str, command: &str) -> Result<String, HostError> {
        self.run
            .step(self.shared, stage, command, None)
            .map(|output| output.stdout)
    }

    fn gate(&self, text: &str, target: Target, stage: &str) -> Result<(), HostError> {
        let text = text
            .replace("{port}", &target.port.to_string())
            .replace("{slot}", target.slot.name());
        crate::deploy::run_gate(&text, &self.host.name()).map_err(|message| HostError {
            host: self.run.label().to_owned(),
            stage: stage.to_owned(),
            message,
            infrastructure: false,
        })
    }

    /// Switches the proxy to `to`; returns the drain token and how long the switch took.
    fn switch(
        &mut self,
        to: Target,
        from: Option<Target>,
        stage: &str,
    ) -> Result<(String, Duration), HostError> {
        let started = Instant::now();
        let command = self.config.proxy.switch(to, from, &self.token);
        let output = self.step(stage, &command)?;
        Ok((drain_token(&output), started.elapsed()))
    }

    fn drain(&mut self, old: Target, token: &str) -> Result<DrainReport, HostError> {
        let command = self
            .config
            .proxy
            .drain(old, token, self.config.drain_timeout);
        let output = self.step(&format!("drain slot {}", old.slot), &command)?;
        let report = DrainReport::parse(&output);
        if report.drained {
            self.log(&format!(
                "slot {} drained in {} ms",
                old.slot, report.waited_ms
            ));
        } else {
            self.shared.console.log(&format!(
                "warning: {}: slot {} did not drain within {}s; still pinned: {}",
                self.run.label(),
                old.slot,
                self.config.drain_timeout.as_secs(),
                report.pinned
            ));
        }
        Ok(report)
    }

    fn run(&mut self) -> Outcome {
        match self.prepare() {
            Ok((new, old)) => self.activate(new, old),
            Err(error) => Outcome::Failed(error),
        }
    }

    /// Lock, stage, start and gate the idle slot. Nothing the proxy routes to is touched.
    fn prepare(&mut self) -> Result<(Target, Option<Target>), HostError> {
        let (layout, config, options) = (self.shared.layout, self.config, self.options);
        self.run.lock(self.shared)?;
        self.run.read_status(self.shared, Some(&options.sha256))?;
        let state = State::parse(&self.step("read live slot", &config.read_state(layout))?);
        let old = state.live.map(|slot| config.target(slot));
        let new = config.target(state.live.map_or(Slot::Blue, Slot::other));
        self.log(&format!(
            "live slot: {}; deploying {} to slot {} (port {})",
            state.live.map_or("none".to_owned(), |s| format!(
                "{s} ({})",
                state.release.as_deref().unwrap_or("?")
            )),
            options.release,
            new.slot,
            new.port
        ));
        self.run.stage(
            self.shared,
            &options.artifact,
            &options.sha256,
            &options.release,
            &options.shared,
        )?;
        // The idle slot may still run the release before last (kept warm): it gets no traffic.
        self.step(
            &format!("stop idle slot {}", new.slot),
            &config.stop(layout, new),
        )?;
        let token = self.token.clone();
        self.step(
            &format!("link slot {}", new.slot),
            &config.link_slot(layout, new, &options.release, &token),
        )?;
        let started = (|| {
            self.step(
                &format!("start slot {}", new.slot),
                &config.start(layout, new, &options.release),
            )?;
            if let Some(command) = config.health(new) {
                self.step(&format!("health of slot {}", new.slot), &command)?;
            }
            if let Some(text) = self.shared.gate {
                self.gate(text, new, &format!("gate slot {}", new.slot))?;
            }
            Ok(())
        })();
        if let Err(error) = started {
            let _ = self.step(
                &format!("stop slot {}", new.slot),
                &config.stop(layout, new),
            );
            return Err(error);
        }
        self.log(&format!(
            "slot {} is healthy on port {}",
            new.slot, new.port
        ));
        Ok((new, old))
    }

    /// Switch, verify, observe; then drain and stop the old slot, or switch back.
    fn activate(&mut self, new: Target, old: Option<Target>) -> Outcome {
        let (layout, config, options) = (self.shared.layout, self.config, self.options);
        let token = self.token.clone();
        let proxy = config.proxy.name();
        let (drain_token, took) = match self.switch(new, old, &format!("switch {proxy}")) {
            Ok(switched) => switched,
            Err(error) => {
                // nginx -t failed, or HAProxy refused: the old slot still serves.
                let _ = self.step(
                    &format!("stop slot {}", new.slot),
                    &config.stop(layout, new),
                );
                return Outcome::Failed(error);
            }
        };
        self.run.switched = true;
        self.log(&format!(
            "{proxy} switched to slot {} in {} ms",
            new.slot,
            millis(took)
        ));
        let checked = (|| {
            self.step(
                "record live slot",
                &config.write_state(layout, new, &options.release, &token),
            )?;
            self.step("switch current", &layout.switch(&options.release, &token))?;
            self.step(
                &format!("verify through {proxy}"),
                &config.verify(new, &options.release),
            )?;
            self.log(&format!(
                "{} consecutive answers through {proxy} came from slot {}",
                config.verify_count, new.slot
            ));
            if let Some(text) = &config.observe_gate {
                self.gate(text, new, "observe")?;
            }
            Ok(())
        })();
        if let Err(error) = checked {
            return self.switch_back(new, old, error);
        }
        let Some(old) = old else {
            return Outcome::Deployed;
        };
        if let Err(error) = self.retire(old, new, &drain_token) {
            // The new slot serves; leaving the old one running is no harm, so warn only.
            self.shared.console.log(&format!("warning: {error}"));
        }
        Outcome::Deployed
    }

    fn retire(&mut self, old: Target, new: Target, drain_token: &str) -> Result<(), HostError> {
        let (layout, config) = (self.shared.layout, self.config);
        if !config.keep_old_slot.is_zero() {
            self.step(
                &format!("stop slot {} later", old.slot),
                &config.stop_later(layout, old, new.slot),
            )?;
            self.log(&format!(
                "slot {} keeps running for {}s (instant rollback), then stops",
                old.slot,
                config.keep_old_slot.as_secs()
            ));
            return Ok(());
        }
        self.drain(old, drain_token)?;
        self.step(
            &format!("stop slot {}", old.slot),
            &config.stop(layout, old),
        )?;
        if let Some(command) = config.proxy.retire(old.slot) {
            self.step(&format!("retire slot {}", old.slot), &command)?;
        }
        Ok(())
    }

    fn switch_back(&mut self, new: Target, old: Option<Target>, error: HostError) -> Outcome {
        let (layout, config) = (self.shared.layout, self.config);
        let Some(old) = old else {
            return Outcome::SwitchBackFailed(format!(
                "{error}; there is no previous slot to switch back to (first blue-green deploy): \
                 slot {} stays live",
                new.slot
            ));
        };
        let token = self.token.clone();
        let proxy = config.proxy.name();
        self.shared.console.log(&format!(
            "[{}] {error}; switching {proxy} back to slot {}",
            self.run.label(),
            old.slot
        ));
        let back = (|| {
            let (drain_token, took) =
                self.switch(old, Some(new), &format!("switch {proxy} back"))?;
            self.log(&format!(
                "{proxy} switched back to slot {} in {} ms",
                old.slot,
                millis(took)
            ));
            // `current` pointed at the old slot's release before this deploy.
            if let Some(previous) = self.run.previous.clone() {
                self.step(
                    "record live slot",
                    &config.write_state(layout, old, &previous, &token),
                )?;
                self.step("switch current back", &layout.switch(&previous, &token))?;
            }
            Ok::<_, HostError>(drain_token)
        })();
        match back {
            Ok(drain_token) => {
                self.run.switched = false;
                if let Err(drain_error) = self.drain(new, &drain_token) {
                    self.shared.console.log(&format!("warning: {drain_error}"));
                }
                let _ = self.step(
                    &format!("stop slot {}", new.slot),
                    &config.stop(layout, new),
                );
                if let Some(command) = config.proxy.retire(new.slot) {
                    let _ = self.step(&format!("retire slot {}", new.slot), &command);
                }
                Outcome::SwitchedBack(error)
            }
            Err(back_error) => {
                Outcome::SwitchBackFailed(format!("{error}; switching back failed: {back_error}"))
            }
        }
    }
}

/// `deploy --strategy blue-green`: hosts one at a time; the first failure stops the rollout.
pub fn deploy(options: &DeployOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let Some(config) = options.blue_green.as_ref() else {
        return Err(Error::Usage(
            "--strategy blue-green needs the blue-green settings".into(),
        ));
    };
    runner.set_output("release-id", options.release.as_str())?;
    runner.set_output("artifact-sha256", options.sha256.as_str())?;
    if options.change.dry_run {
        for line in render(options, config).lines() {
            runner.console().log(line);
        }
        runner.set_output("result", "dry-run")?;
        return Ok(Verdict::Success);
    }
    let console = runner.console().clone();
    let layout = &options.connection.layout;
    let shared = options.change.shared(layout, &console);
    let mut reports: Vec<HostReport> = Vec::new();
    let mut failure: Option<Result<Verdict, Error>> = None;
    for host in &options.connection.hosts {
        let report = |run: Option<&HostRun>, result: &str, error: Option<String>| HostReport {
            host: host.label(),
            result: result.to_owned(),
            previous: run.and_then(|r| r.previous.as_ref().map(ToString::to_string)),
            error,
            seconds: run.map_or(0.0, |r| r.started.elapsed().as_secs_f64()),
        };
        if failure.is_some() {
            reports.push(report(None, "skipped", None));
            continue;
        }
        let _group = runner.group(&format!("blue-green: {}", host.label()));
        let mut run = match options.connection.connect(host) {
            Ok(remote) => HostRun::new(remote),
            Err(error) => {
                let error = HostError {
                    host: host.label(),
                    stage: "connect".into(),
                    message: error.to_string(),
                    infrastructure: true,
                };
                reports.push(report(None, "failed", Some(error.to_string())));
                failure = Some(Err(Error::Hosts(vec![error])));
                continue;
            }
        };
        let token = runner_protocol::console::random_hex(8);
        let outcome = HostFlow {
            run: &mut run,
            shared: &shared,
            options,
            config,
            host,
            token,
        }
        .run();
        let (result, error, verdict) = match outcome {
            Outcome::Deployed => ("deployed", None, None),
            Outcome::Failed(error) => (
                "failed",
                Some(error.to_string()),
                Some(Err(Error::Hosts(vec![error]))),
            ),
            Outcome::SwitchedBack(error) => (
                "rolled-back",
                Some(error.to_string()),
                Some(Ok(Verdict::RolledBack(format!(
                    "{error}; switched back to the previous slot on {}",
                    host.label()
                )))),
            ),
            Outcome::SwitchBackFailed(message) => (
                "rollback-failed",
                Some(message.clone()),
                Some(Err(Error::RollbackFailed(message))),
            ),
        };
        let success = result == "deployed";
        let touched = run.status.current.is_some() || success;
        let logged = touched.then_some((&options.release, options.sha256.as_str()));
        for finish_error in run.finish(
            &shared,
            logged,
            if success { "success" } else { "failed" },
            success.then_some(options.keep_releases),
        ) {
            runner.warn(&finish_error.to_string());
        }
        reports.push(report(Some(&run), result, error));
        failure = verdict;
    }
    let previous = reports
        .iter()
        .find_map(|r| r.previous.clone())
        .unwrap_or_default();
    runner.set_output("previous-release-id", previous)?;
    crate::options::report_hosts(
        runner,
        &format!("ssh-deploy blue-green {}", options.release),
        &reports,
    )?;
    let result = match &failure {
        None => "success",
        Some(Ok(_)) => "rolled-back",
        Some(Err(Error::RollbackFailed(_))) => "rollback-failed",
        Some(Err(_)) => "failed",
    };
    runner.set_output("result", result)?;
    failure.unwrap_or(Ok(Verdict::Success))
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
