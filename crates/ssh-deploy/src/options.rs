//! Validated options (from the clap structs) and the subcommands' flows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use runner_protocol::input::LineList;
use runner_protocol::{ErrorClass, Reportable, Runner, Verdict};

use crate::cli::{ChangeArgs, DeployArgs, HostArgs, ManagerArg, PackArgs, RollbackArgs, ScopeArg};
use crate::commands::{Custom, Layout, ServiceManager, Systemd};
use crate::deploy::{HostError, HostRun, Shared, Strategy, parallel};
use crate::pack::PackError;
use crate::quote::{ReleaseId, RemotePath, relative_path};
use crate::remote::{
    Auth, HostTarget, HostTrust, LocalRemote, Remote, RemoteError, SshRemote, Timeouts,
};

/// Errors of `ssh-deploy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or inputs.
    #[error("{0}")]
    Usage(String),
    /// Packing or checking the artifact failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// One or more hosts failed before anything was switched (or nothing needed rolling back).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Hosts(Vec<HostError>),
    /// A host failed for an infrastructure reason (unreachable, connection lost, a stalled
    /// upload) and every host this run switched was rolled back: exit 3, targets restored.
    #[error("{0}")]
    RestoredAfterInfrastructure(String),
    /// A rollback did not complete: some host may serve the new release.
    #[error("rollback failed, manual intervention needed: {0}")]
    RollbackFailed(String),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] runner_protocol::output::OutputError),
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Usage(_) => ErrorClass::Usage,
            Error::Pack(PackError::Unsafe { .. } | PackError::NonUtf8 { .. }) => ErrorClass::Usage,
            Error::Pack(PackError::Io { .. }) => ErrorClass::Usage,
            // Host errors that reach here failed before anything was switched (a held lock, a
            // refused command, a lost connection): the hosts are unchanged, which exit 3 says.
            // Failures after a switch end as RolledBack (exit 1) or RollbackFailed (exit 4).
            Error::Hosts(_) | Error::RestoredAfterInfrastructure(_) => ErrorClass::Infrastructure,
            Error::Output(error) => error.class(),
            Error::RollbackFailed(_) => ErrorClass::RollbackFailed,
        }
    }
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// A host: SSH or this machine.
#[derive(Debug, Clone)]
pub enum HostSpec {
    /// Over SSH.
    Ssh(HostTarget),
    /// `local`: commands run with `sh -c` here.
    Local,
}

impl HostSpec {
    /// Label for logs.
    pub fn label(&self) -> String {
        match self {
            HostSpec::Ssh(target) => target.label(),
            HostSpec::Local => "local".into(),
        }
    }

    /// The name `{host}` becomes in the gate file.
    pub fn name(&self) -> String {
        match self {
            HostSpec::Ssh(target) => target.host.clone(),
            HostSpec::Local => "127.0.0.1".into(),
        }
    }
}

/// Per-host settings from an inventory (same order as [`Connection::hosts`]).
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// The host's layout (its own root, or `--root`).
    pub layout: Layout,
    /// Vars for `{vars.NAME}` in gate files.
    pub vars: BTreeMap<String, String>,
    /// Jump host, if any.
    pub jump: Option<HostTarget>,
}

/// Validated connection settings.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Hosts in order.
    pub hosts: Vec<HostSpec>,
    /// Deploy root layout (`--root`; a host may have its own, see [`Connection::layout_for`]).
    pub layout: Layout,
    /// Per-host settings, parallel to `hosts`.
    pub settings: Vec<HostSettings>,
    /// Credentials.
    pub auth: Auth,
    /// Host key trust.
    pub trust: HostTrust,
    /// Timeouts.
    pub timeouts: Timeouts,
}

fn lines(lists: &[LineList]) -> Vec<String> {
    LineList::flatten(lists.iter().cloned())
}

impl Connection {
    /// Validates host flags; secrets are masked here, before anything can print them.
    pub fn from_args(args: &HostArgs, runner: &Runner) -> Result<Self, Error> {
        let private_key = args
            .private_key
            .as_ref()
            .filter(|k| !k.trim().is_empty())
            .map(|k| {
                let mut key = k.replace("\r\n", "\n");
                if !key.ends_with('\n') {
                    key.push('\n');
                }
                runner.secret(key)
            });
        let passphrase = args
            .passphrase
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| runner.secret(p.clone()));
        let password = args
            .password
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| runner.secret(p.clone()));
        if password.is_some() {
            runner.warn("password login is discouraged: use --private-key (a deploy key) instead");
        }
        let jump = args
            .jump_host
            .as_deref()
            .filter(|j| !j.trim().is_empty())
            .map(|j| HostTarget::parse(j.trim(), &args.user, 22))
            .transpose()
            .map_err(|e| usage(format!("--jump-host: {e}")))?;
        let root = match args.root.as_deref().filter(|r| !r.is_empty()) {
            Some(root) => Some(RemotePath::parse(root).map_err(|e| usage(format!("--root: {e}")))?),
            None => None,
        };
        let lease = args.lock_lease.as_secs();
        let bound = args.command_timeout.as_secs();
        let mut hosts = Vec::new();
        let mut settings = Vec::new();
        let missing_root = || {
            usage("--root is required (or `root:` for every host in the inventory), e.g. /opt/app")
        };
        match &args.inventory {
            Some(path) => {
                let origin = path.display().to_string();
                let mut inventory = crate::inventory::Inventory::load(path, &args.user, args.port)
                    .map_err(|e| usage(e.to_string()))?;
                if let Some(group) = args.group.as_deref().filter(|g| !g.is_empty()) {
                    inventory = inventory
                        .select(group, &origin)
                        .map_err(|e| usage(e.to_string()))?;
                }
                for host in inventory.hosts {
                    let host_root = host.root.or(root.clone()).ok_or_else(missing_root)?;
                    settings.push(HostSettings {
                        layout: Layout::new(host_root).with_lease(lease, bound),
                        vars: host.vars,
                        jump: host.jump.or(jump.clone()),
                    });
                    hosts.push(HostSpec::Ssh(host.target));
                }
            }
            None => {
                let root = root.clone().ok_or_else(missing_root)?;
                for text in lines(&args.hosts) {
                    if text == "local" {
                        hosts.push(HostSpec::Local);
                    } else {
                        hosts.push(HostSpec::Ssh(
                            HostTarget::parse(&text, &args.user, args.port).map_err(usage)?,
                        ));
                    }
                    settings.push(HostSettings {
                        layout: Layout::new(root.clone()).with_lease(lease, bound),
                        vars: BTreeMap::new(),
                        jump: jump.clone(),
                    });
                }
            }
        }
        if hosts.is_empty() {
            return Err(usage("--hosts names no host"));
        }
        let root = match root {
            Some(root) => root,
            None => settings[0].layout.root().clone(),
        };
        let mut fingerprints = Vec::new();
        for pin in lines(&args.host_key_fingerprint) {
            let (host, fingerprint) = match pin.rsplit_once('=') {
                Some((host, fp)) if fp.starts_with("SHA256:") => {
                    (Some(host.to_owned()), fp.to_owned())
                }
                _ => (None, pin.clone()),
            };
            if !fingerprint.starts_with("SHA256:") {
                return Err(usage(format!(
                    "--host-key-fingerprint `{pin}` must be `SHA256:...` or `host=SHA256:...` \
                     (as `ssh-keygen -lf` prints it)"
                )));
            }
            fingerprints.push((host, fingerprint));
        }
        let known_hosts = args.known_hosts.clone().unwrap_or_default();
        if args.insecure_accept_any_host_key {
            runner.warn(
                "--insecure-accept-any-host-key is set: host keys are NOT verified, so anyone able to \
                 intercept the connection can impersonate the hosts and receive the release; pin \
                 --host-key-fingerprint or --known-hosts instead",
            );
        } else if known_hosts.trim().is_empty()
            && fingerprints.is_empty()
            && hosts.iter().any(|h| matches!(h, HostSpec::Ssh(_)))
        {
            return Err(usage(
                "no host key is trusted: give --known-hosts (e.g. the output of `ssh-keyscan -p PORT HOST`, \
                 checked out of band) or --host-key-fingerprint SHA256:...; host keys are verified by default",
            ));
        }
        Ok(Self {
            hosts,
            layout: Layout::new(root).with_lease(lease, bound),
            settings,
            auth: Auth {
                private_key,
                passphrase,
                agent: args.use_agent,
                password,
            },
            trust: HostTrust {
                known_hosts,
                fingerprints,
                accept_any: args.insecure_accept_any_host_key,
            },
            timeouts: Timeouts {
                connect: args.connect_timeout,
                command: args.command_timeout,
                keepalive: args.keepalive_interval,
                stall: args.stall_timeout,
            },
        })
    }

    fn settings_for(&self, host: &HostSpec) -> Option<&HostSettings> {
        let label = host.label();
        self.hosts
            .iter()
            .position(|h| h.label() == label)
            .and_then(|index| self.settings.get(index))
    }

    /// The layout of `host` (its inventory root, or `--root`).
    pub fn layout_for(&self, host: &HostSpec) -> &Layout {
        self.settings_for(host).map_or(&self.layout, |s| &s.layout)
    }

    /// The vars of `host` (empty without an inventory).
    pub fn vars_for(&self, host: &HostSpec) -> BTreeMap<String, String> {
        self.settings_for(host)
            .map(|s| s.vars.clone())
            .unwrap_or_default()
    }

    /// Opens a connection to `host` (through its jump host, if any).
    pub fn connect(&self, host: &HostSpec) -> Result<Box<dyn Remote>, RemoteError> {
        match host {
            HostSpec::Local => Ok(Box::new(LocalRemote::default())),
            HostSpec::Ssh(target) => Ok(Box::new(SshRemote::connect_via(
                target,
                self.settings_for(host).and_then(|s| s.jump.as_ref()),
                &self.auth,
                &self.trust,
                &self.timeouts,
            )?)),
        }
    }

    fn open(&self, host: &HostSpec) -> Result<HostRun, HostError> {
        self.connect(host)
            .map(HostRun::new)
            .map_err(|error| HostError {
                host: host.label(),
                stage: "connect".into(),
                message: error.to_string(),
                infrastructure: true,
            })
    }
}

/// Validated service and gate settings.
#[derive(Debug)]
pub struct Change {
    /// Restart order.
    pub services: Vec<String>,
    /// The manager.
    pub manager: Box<dyn ServiceManager>,
    /// Gate file text.
    pub gate: Option<String>,
    /// Stale lock age.
    pub lock_stale_after: Duration,
    /// Print the plan only.
    pub dry_run: bool,
    /// Who deploys.
    pub who: String,
    /// The CI run.
    pub run: String,
    /// SIGINT/SIGTERM seen (listening starts when a deploy starts).
    pub interrupt: crate::interrupt::Interrupt,
}

fn pairs(lists: &[LineList], flag: &str) -> Result<Vec<(String, String)>, Error> {
    lines(lists)
        .into_iter()
        .map(|line| match line.split_once('=') {
            Some((service, command))
                if !service.trim().is_empty() && !command.trim().is_empty() =>
            {
                Ok((service.trim().to_owned(), command.trim().to_owned()))
            }
            _ => Err(usage(format!(
                "--{flag} `{line}` must be `service=shell command`"
            ))),
        })
        .collect()
}

impl Change {
    pub(crate) fn from_args(
        args: &ChangeArgs,
        units_dir: Option<&str>,
        runner: &Runner,
        restarts: bool,
    ) -> Result<Self, Error> {
        let services = lines(&args.services);
        let manager: Box<dyn ServiceManager> = match args.service_manager {
            ManagerArg::Systemd => {
                let units_dir = units_dir
                    .filter(|d| !d.is_empty())
                    .map(|d| relative_path(d).map_err(|e| usage(format!("--units-dir: {e}"))))
                    .transpose()?;
                Box::new(Systemd {
                    user: args.systemd_scope == ScopeArg::User,
                    units_dir,
                })
            }
            ManagerArg::Custom => {
                let restart = pairs(&args.restart_command, "restart-command")?;
                let check = pairs(&args.check_command, "check-command")?;
                // Blue-green starts slots with its own commands instead of restarts.
                for service in services.iter().filter(|_| restarts) {
                    if !restart.iter().any(|(name, _)| name == service) {
                        return Err(usage(format!(
                            "service `{service}` has no --restart-command (`{service}=...`), which \
                             --service-manager custom needs for every service"
                        )));
                    }
                }
                Box::new(Custom { restart, check })
            }
        };
        let gate = match &args.gate_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("--gate-file {}: {e}", path.display())))?;
                // `{port}` and `{slot}` are filled in per slot by the blue-green strategy; with
                // `{vars.NAME}` the file is checked per host once the vars are known.
                if !text.contains("{vars.") {
                    let probe = crate::tunnel::probe(&text)
                        .map_err(|e| usage(format!("--gate-file {}: {e}", path.display())))?
                        .replace("{port}", "1")
                        .replace("{slot}", "blue");
                    crate::deploy::resolve_gate(&probe, "127.0.0.1")
                        .map_err(|e| usage(format!("--gate-file {}: {e}", path.display())))?;
                }
                Some(text)
            }
            None => None,
        };
        let env = runner.env();
        let who = env.get("GITHUB_ACTOR").unwrap_or("unknown").to_owned();
        let run = match (
            env.get("GITHUB_SERVER_URL"),
            env.get("GITHUB_REPOSITORY"),
            env.get("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repo), Some(id)) => format!("{server}/{repo}/actions/runs/{id}"),
            _ => format!("local pid {}", std::process::id()),
        };
        Ok(Self {
            services,
            manager,
            gate,
            lock_stale_after: args.lock_stale_after,
            dry_run: args.dry_run,
            who,
            run,
            interrupt: crate::interrupt::Interrupt::default(),
        })
    }

    /// The gate text per host, `{vars.NAME}` filled in from the host's inventory vars.
    pub fn gates_for(&self, connection: &Connection) -> Result<Vec<Option<String>>, String> {
        connection
            .hosts
            .iter()
            .map(|host| {
                let Some(text) = &self.gate else {
                    return Ok(None);
                };
                let rendered = crate::inventory::render_vars(text, &connection.vars_for(host))
                    .map_err(|e| format!("--gate-file, host {}: {e}", host.label()))?;
                let probe = crate::tunnel::probe(&rendered)
                    .map_err(|e| format!("--gate-file, host {}: {e}", host.label()))?
                    .replace("{port}", "1")
                    .replace("{slot}", "blue");
                crate::deploy::resolve_gate(&probe, &host.name())
                    .map_err(|e| format!("--gate-file, host {}: {e}", host.label()))?;
                Ok(Some(rendered))
            })
            .collect()
    }

    pub(crate) fn shared<'a>(
        &'a self,
        layout: &'a Layout,
        console: &'a runner_protocol::console::Console,
    ) -> Shared<'a> {
        Shared {
            layout,
            manager: self.manager.as_ref(),
            services: &self.services,
            gate: self.gate.as_deref(),
            lock_stale_after: self.lock_stale_after,
            who: &self.who,
            run: &self.run,
            console,
            interrupt: &self.interrupt,
        }
    }
}

/// Validated `deploy` options.
#[derive(Debug)]
pub struct DeployOptions {
    /// Hosts and credentials.
    pub connection: Connection,
    /// Services and gate.
    pub change: Change,
    /// The artifact.
    pub artifact: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// The release id.
    pub release: ReleaseId,
    /// Shared paths.
    pub shared: Vec<String>,
    /// Retention.
    pub keep_releases: usize,
    /// Host indexes per batch.
    pub batches: Vec<Vec<usize>>,
    /// Hosts at once.
    pub max_parallel: usize,
    /// Roll back finished batches too.
    pub rollback_completed: bool,
    /// Activation strategy.
    pub strategy: Strategy,
    /// Blue-green settings (with `Strategy::BlueGreen`).
    pub blue_green: Option<crate::strategy::blue_green::BlueGreen>,
    /// Gate text per host (vars filled in).
    pub gates: Vec<Option<String>>,
    /// Canary first (the first batch is the canary host).
    pub canary: Option<crate::canary::Canary>,
}

impl DeployOptions {
    /// One [`Shared`] per host: its own layout (inventory root) and gate (inventory vars).
    pub fn per_host_shared<'a>(
        &'a self,
        console: &'a runner_protocol::console::Console,
    ) -> Vec<Shared<'a>> {
        self.connection
            .hosts
            .iter()
            .zip(&self.gates)
            .map(|(host, gate)| {
                let mut shared = self
                    .change
                    .shared(self.connection.layout_for(host), console);
                shared.gate = gate.as_deref();
                shared
            })
            .collect()
    }
}

impl DeployOptions {
    /// Validates `deploy` flags and checks the artifact (before any connection).
    pub fn from_args(args: &DeployArgs, runner: &Runner) -> Result<Self, Error> {
        let connection = Connection::from_args(&args.hosts, runner)?;
        let restarts = args.strategy == crate::cli::StrategyArg::Symlink;
        let change = Change::from_args(&args.change, Some(&args.units_dir), runner, restarts)?;
        // Both read the whole artifact; on two threads the hash costs no extra wall time.
        let (checked, hashed) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| crate::pack::sha256_file(&args.artifact));
            let checked = crate::pack::check_archive(&args.artifact);
            (checked, hashing.join())
        });
        checked?;
        let (sha256, _) = hashed.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let release = match &args.release_id {
            Some(id) if !id.is_empty() => {
                ReleaseId::parse(id).map_err(|e| usage(format!("--release-id: {e}")))?
            }
            _ => ReleaseId::parse(&sha256[..12]).map_err(usage)?,
        };
        let shared = lines(&args.shared)
            .iter()
            .map(|p| relative_path(p).map_err(|e| usage(format!("--shared: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if args.keep_releases == 0 {
            return Err(usage("--keep-releases must be at least 1"));
        }
        let canary = crate::options::canary_from_args(args, &connection)?;
        let batches = match canary {
            Some(_) => crate::plan::canary_batches(connection.hosts.len(), args.batch_size),
            None => crate::plan::batches(connection.hosts.len(), args.batch_size),
        };
        let gates = change.gates_for(&connection).map_err(usage)?;
        let (strategy, blue_green) = match args.strategy {
            crate::cli::StrategyArg::Symlink => (Strategy::SymlinkSwitch, None),
            crate::cli::StrategyArg::BlueGreen => (
                Strategy::BlueGreen,
                Some(crate::strategy::blue_green::BlueGreen::from_args(
                    args,
                    &change.services,
                )?),
            ),
            // `run` hands compose deploys to strategy::compose before these options exist.
            crate::cli::StrategyArg::Compose => {
                return Err(usage("--strategy compose is run by strategy::compose"));
            }
        };
        Ok(Self {
            gates,
            canary,
            connection,
            change,
            artifact: args.artifact.clone(),
            sha256,
            release,
            shared,
            keep_releases: args.keep_releases,
            batches,
            max_parallel: args.max_parallel.max(1),
            rollback_completed: args.rollback_completed,
            strategy,
            blue_green,
        })
    }
}

/// The canary settings for the first host, or `None` without `--canary`.
fn canary_from_args(
    args: &DeployArgs,
    connection: &Connection,
) -> Result<Option<crate::canary::Canary>, Error> {
    if !args.canary {
        return Ok(None);
    }
    let url = args.canary_url.as_deref().filter(|u| !u.is_empty());
    let (text, origin) = match (&args.canary_gate_file, url) {
        (Some(path), None) => (
            std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--canary-gate-file {}: {e}", path.display())))?,
            format!("gate file {}", path.display()),
        ),
        (None, Some(url)) => (
            crate::canary::quick_gate(url, args.canary_requests.max(1)),
            format!(
                "{url}: {} requests, error rate < 5 %, p95 < 2x baseline",
                args.canary_requests.max(1)
            ),
        ),
        (Some(_), Some(_)) => {
            return Err(usage(
                "give either --canary-url or --canary-gate-file, not both",
            ));
        }
        (None, None) => {
            return Err(usage(
                "--canary needs what to observe: --canary-url URL (error rate < 5 %, p95 < 2x \
                 baseline) or --canary-gate-file FILE",
            ));
        }
    };
    let host = &connection.hosts[0];
    let text = crate::inventory::render_vars(&text, &connection.vars_for(host))
        .map_err(|e| usage(format!("canary gate, host {}: {e}", host.label())))?;
    crate::deploy::resolve_gate(&text, &host.name())
        .map_err(|e| usage(format!("canary gate ({origin}): {e}")))?;
    Ok(Some(crate::canary::Canary { gate: text, origin }))
}

/// `pack`.
pub fn pack(args: &PackArgs, runner: &mut Runner) -> Result<Verdict, Error> {
    let mtime = runner
        .env()
        .get("SOURCE_DATE_EPOCH")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut manifest_path = args.artifact.clone().into_os_string();
    manifest_path.push(".manifest.json");
    let manifest_path = PathBuf::from(manifest_path);
    let manifest = crate::pack::pack(&args.source, &args.artifact, &manifest_path, mtime)?;
    runner.console().log(&format!(
        "packed {} entries into {} ({} bytes, sha256 {})",
        manifest.files.len(),
        args.artifact.display(),
        manifest.archive_size,
        manifest.archive_sha256
    ));
    runner.set_output("artifact", args.artifact.display().to_string())?;
    runner.set_output("artifact-sha256", manifest.archive_sha256)?;
    runner.set_output("manifest", manifest_path.display().to_string())?;
    Ok(Verdict::Success)
}

/// The outcome of one host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostReport {
    /// Host label.
    pub host: String,
    /// `deployed`, `unchanged`, `rolled-back`, `failed`, `skipped`, `rollback-failed`.
    pub result: String,
    /// The release before.
    pub previous: Option<String>,
    /// Error text, if any.
    pub error: Option<String>,
    /// Seconds spent.
    pub seconds: f64,
}

pub(crate) fn report_hosts(
    runner: &mut Runner,
    title: &str,
    reports: &[HostReport],
) -> Result<(), Error> {
    runner.set_output("hosts", serde_json::to_string(reports).unwrap_or_default())?;
    let summary = runner.summary();
    summary.heading(3, title);
    summary.table(
        &["host", "result", "previous release", "time", "error"],
        reports.iter().map(|r| {
            vec![
                r.host.clone(),
                r.result.clone(),
                r.previous.clone().unwrap_or_else(|| "-".into()),
                format!("{:.1}s", r.seconds),
                r.error.clone().unwrap_or_default(),
            ]
        }),
    );
    for r in reports {
        runner.console().log(&format!(
            "{:<30} {:<16} previous={} {:.1}s",
            r.host,
            r.result,
            r.previous.as_deref().unwrap_or("-"),
            r.seconds
        ));
    }
    Ok(())
}

/// Host runs with their index in `--hosts`.
type Runs = Vec<(usize, HostRun)>;

/// `deploy`.
pub fn deploy(options: &DeployOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    match options.strategy {
        Strategy::SymlinkSwitch => {}
        Strategy::BlueGreen => return crate::strategy::blue_green::deploy(options, runner),
        Strategy::Compose => return Err(usage("--strategy compose is run by strategy::compose")),
    }
    runner.set_output("release-id", options.release.as_str())?;
    runner.set_output("artifact-sha256", options.sha256.as_str())?;
    if options.change.dry_run {
        let text = crate::plan::render(options);
        for line in text.lines() {
            runner.console().log(line);
        }
        runner.set_output("result", "dry-run")?;
        return Ok(Verdict::Success);
    }
    let console = runner.console().clone();
    let shareds = options.per_host_shared(&console);
    let hosts = &options.connection.hosts;
    let reports: Mutex<Vec<Option<HostReport>>> = Mutex::new(vec![None; hosts.len()]);
    let set = |index: usize, run: Option<&HostRun>, result: &str, error: Option<String>| {
        if let Ok(mut reports) = reports.lock() {
            reports[index] = Some(HostReport {
                host: hosts[index].label(),
                result: result.to_owned(),
                previous: run.and_then(|r| r.previous.as_ref().map(ToString::to_string)),
                error,
                seconds: run.map_or(0.0, |r| r.started.elapsed().as_secs_f64()),
            });
        }
    };
    options.change.interrupt.listen(&console);
    let mut completed: Vec<(usize, HostRun)> = Vec::new();
    let mut failure: Option<(Vec<HostError>, Runs)> = None;
    for (number, batch) in options.batches.iter().enumerate() {
        if options.change.interrupt.is_set() {
            break;
        }
        let canary = options.canary.as_ref().filter(|_| number == 0);
        let _group = runner.group(&format!(
            "{} {}/{}: {}",
            if canary.is_some() { "canary" } else { "batch" },
            number + 1,
            options.batches.len(),
            batch
                .iter()
                .map(|&i| hosts[i].label())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let results = parallel(batch.clone(), options.max_parallel, |index| {
            let host = &hosts[index];
            let mut run = match options.connection.open(host) {
                Ok(run) => run,
                Err(error) => return (index, None, Err(error)),
            };
            let outcome = match canary {
                Some(canary) => crate::canary::deploy_canary(
                    &mut run,
                    &shareds[index],
                    canary,
                    &host.name(),
                    |run| prepare_host(run, &shareds[index], options),
                    |run| roll_host(run, &shareds[index], options, host),
                ),
                None => deploy_host(&mut run, &shareds[index], options, host),
            };
            (index, Some(run), outcome)
        });
        let mut errors = Vec::new();
        let mut runs = Vec::new();
        for (index, run, outcome) in results {
            match outcome {
                Ok(()) => {}
                Err(error) => {
                    set(index, run.as_ref(), "failed", Some(error.to_string()));
                    errors.push(error);
                }
            }
            if let Some(run) = run {
                runs.push((index, run));
            }
        }
        if errors.is_empty() {
            completed.extend(runs);
        } else {
            failure = Some((errors, runs));
            break;
        }
    }
    // Interrupted: what was switched goes back, finished batches included. A signal that came
    // while the last step ran (a restart, with no gate after it to notice) counts too: the
    // deploy was asked to stop before it finished, and the documented answer is a rollback.
    let interrupted = options.change.interrupt.is_set();
    let failure = match failure {
        None if interrupted => Some((Vec::new(), Vec::new())),
        other => other,
    };
    let mut rollback_errors = Vec::new();
    let verdict = match failure {
        None => None,
        Some((errors, mut batch_runs)) => {
            let mut to_revert: Vec<&mut (usize, HostRun)> = batch_runs.iter_mut().collect();
            if options.rollback_completed || interrupted {
                to_revert.extend(completed.iter_mut());
            }
            let mut rolled_back = Vec::new();
            for (index, run) in to_revert {
                if !run.switched {
                    continue;
                }
                let Some(previous) = run.previous.clone() else {
                    let message = "no previous release to roll back to (first deploy)".to_owned();
                    set(*index, Some(run), "rollback-failed", Some(message.clone()));
                    rollback_errors.push(format!("{}: {message}", run.label()));
                    continue;
                };
                console.log(&format!("rolling back {} to {previous}", run.label()));
                let mut reverted = run.revert(&shareds[*index], &previous, &hosts[*index].name());
                if reverted.as_ref().is_err_and(|e| e.infrastructure) {
                    // A lost connection must not leave the host on the new release: reconnect
                    // once and retry the rollback.
                    if let Ok(remote) = options.connection.connect(&hosts[*index]) {
                        run.reconnect(remote);
                        reverted = run.revert(&shareds[*index], &previous, &hosts[*index].name());
                    }
                }
                match reverted {
                    Ok(()) => {
                        set(*index, Some(run), "rolled-back", None);
                        rolled_back.push(run.label().to_owned());
                    }
                    Err(error) => {
                        set(
                            *index,
                            Some(run),
                            "rollback-failed",
                            Some(error.to_string()),
                        );
                        rollback_errors.push(error.to_string());
                    }
                }
            }
            for (index, run) in &batch_runs {
                if let Ok(reports) = reports.lock() {
                    if reports[*index].is_none() {
                        drop(reports);
                        set(*index, Some(run), "failed", None);
                    }
                }
                let _ = run;
            }
            let first = errors.first().map(ToString::to_string).unwrap_or_default();
            Some((errors, rolled_back, first, batch_runs))
        }
    };
    // Finish: release log, retention for successful hosts, unlock everywhere.
    let failed_batch = verdict.is_some();
    let mut finish_errors = Vec::new();
    let mut finish_all = |runs: &mut Vec<(usize, HostRun)>, in_failed_batch: bool| {
        for (index, run) in runs.iter_mut() {
            let reverted = reports
                .lock()
                .map(|r| {
                    r[*index]
                        .as_ref()
                        .is_some_and(|r| r.result != "deployed" && r.result != "unchanged")
                })
                .unwrap_or(false);
            let success = !in_failed_batch && !reverted;
            let unchanged = run.previous.as_ref() == Some(&options.release);
            if success {
                set(
                    *index,
                    Some(run),
                    if unchanged { "unchanged" } else { "deployed" },
                    None,
                );
            }
            let result = if success { "success" } else { "failed" };
            let touched = run.status.current.is_some() || run.switched || success;
            let release = touched.then_some((&options.release, options.sha256.as_str()));
            let keep = success.then_some(options.keep_releases);
            let mut errors = run.finish(&shareds[*index], release, result, keep);
            if run.holds_lock() {
                // The connection dropped (e.g. mid-upload): reconnect once to release the lock
                // and remove this run's partial upload, so a re-run is not blocked.
                if let Ok(remote) = options.connection.connect(&hosts[*index]) {
                    console.log(&format!(
                        "[{}] reconnected to release the deploy lock",
                        run.label()
                    ));
                    run.reconnect(remote);
                    errors = run.finish(&shareds[*index], None, result, None);
                }
            }
            finish_errors.extend(errors);
        }
    };
    finish_all(&mut completed, false);
    let mut failed_runs = Vec::new();
    let summary_line = match verdict {
        None => None,
        Some((errors, rolled_back, first, mut batch_runs)) => {
            finish_all(&mut batch_runs, true);
            failed_runs = errors;
            Some((rolled_back, first))
        }
    };
    for error in &finish_errors {
        runner.warn(&error.to_string());
    }
    let reports: Vec<HostReport> = reports
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            r.unwrap_or(HostReport {
                host: hosts[index].label(),
                result: "skipped".into(),
                previous: None,
                error: None,
                seconds: 0.0,
            })
        })
        .collect();
    let previous = reports
        .iter()
        .find_map(|r| r.previous.clone())
        .unwrap_or_default();
    runner.set_output("previous-release-id", previous)?;
    report_hosts(runner, &format!("ssh-deploy {}", options.release), &reports)?;
    if !rollback_errors.is_empty() {
        runner.set_output("result", "rollback-failed")?;
        return Err(Error::RollbackFailed(rollback_errors.join("; ")));
    }
    if interrupted {
        runner.set_output("result", "interrupted")?;
        let rolled_back = summary_line.map(|(hosts, _)| hosts).unwrap_or_default();
        return Ok(Verdict::Interrupted(if rolled_back.is_empty() {
            "interrupted: nothing was switched; locks released".to_owned()
        } else {
            format!(
                "interrupted: rolled back to the previous release on {}; locks released",
                rolled_back.join(", ")
            )
        }));
    }
    match summary_line {
        None => {
            runner.set_output("result", "success")?;
            Ok(Verdict::Success)
        }
        Some((rolled_back, first)) if !rolled_back.is_empty() => {
            runner.set_output("result", "rolled-back")?;
            let message = format!(
                "{first}; rolled back to the previous release on {}",
                rolled_back.join(", ")
            );
            // What failed was the network or a host, not the release: exit 3 (targets restored),
            // as for a connection lost before any switch.
            if !failed_runs.is_empty() && failed_runs.iter().all(|e| e.infrastructure) {
                return Err(Error::RestoredAfterInfrastructure(message));
            }
            Ok(Verdict::RolledBack(message))
        }
        Some(_) if failed_batch => {
            runner.set_output("result", "failed")?;
            Err(Error::Hosts(failed_runs))
        }
        Some(_) => Ok(Verdict::Success),
    }
}

fn deploy_host(
    run: &mut HostRun,
    shared: &Shared<'_>,
    options: &DeployOptions,
    host: &HostSpec,
) -> Result<(), HostError> {
    prepare_host(run, shared, options)?;
    roll_host(run, shared, options, host)
}

/// Lock, then read what the host has.
fn prepare_host(
    run: &mut HostRun,
    shared: &Shared<'_>,
    options: &DeployOptions,
) -> Result<(), HostError> {
    run.lock_and_read_status(shared, Some(&options.sha256))
}

/// Upload, unpack, switch, restart, gate.
fn roll_host(
    run: &mut HostRun,
    shared: &Shared<'_>,
    options: &DeployOptions,
    host: &HostSpec,
) -> Result<(), HostError> {
    run.stage_and_activate(
        shared,
        &options.artifact,
        &options.sha256,
        &options.release,
        &options.shared,
    )?;
    run.gate(shared, &host.name())
}

/// Validated `rollback` options.
#[derive(Debug)]
pub struct RollbackOptions {
    /// Hosts.
    pub connection: Connection,
    /// Services and gate.
    pub change: Change,
    /// Target release.
    pub to: Option<ReleaseId>,
}

impl RollbackOptions {
    /// Validates `rollback` flags.
    pub fn from_args(args: &RollbackArgs, runner: &Runner) -> Result<Self, Error> {
        Ok(Self {
            connection: Connection::from_args(&args.hosts, runner)?,
            change: Change::from_args(&args.change, None, runner, true)?,
            to: args
                .to
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| ReleaseId::parse(t).map_err(|e| usage(format!("--to: {e}"))))
                .transpose()?,
        })
    }
}

/// `rollback`: every host back to `--to` or to its previous release.
pub fn rollback(options: &RollbackOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let hosts = options.connection.hosts.clone();
    let gates = options
        .change
        .gates_for(&options.connection)
        .map_err(usage)?;
    let results = parallel(
        hosts.clone().into_iter().enumerate().collect(),
        8,
        |(index, host): (usize, HostSpec)| {
            let mut shared = options
                .change
                .shared(options.connection.layout_for(&host), &console);
            shared.gate = gates[index].as_deref();
            let mut run = options.connection.open(&host)?;
            let result = (|| {
                run.lock_and_read_status(&shared, None)?;
                let target = match &options.to {
                    Some(to) => to.clone(),
                    None => run
                        .status
                        .releases
                        .iter()
                        .map(|(id, _)| id)
                        .find(|id| Some(*id) != run.status.current.as_ref())
                        .cloned()
                        .ok_or_else(|| HostError {
                            host: run.label().to_owned(),
                            stage: "rollback".into(),
                            message: "no other release on the host".into(),
                            infrastructure: false,
                        })?,
                };
                if !run.status.releases.iter().any(|(id, _)| *id == target) {
                    return Err(HostError {
                        host: run.label().to_owned(),
                        stage: "rollback".into(),
                        message: format!("release {target} is not on the host"),
                        infrastructure: false,
                    });
                }
                if options.change.dry_run {
                    console.log(&format!(
                        "[{}] would switch current to {target}",
                        run.label()
                    ));
                    return Ok(target);
                }
                run.revert(&shared, &target, &host.name())?;
                Ok(target)
            })();
            let sha = String::from("-");
            let logged = result.as_ref().ok().map(|t| (t.clone(), sha));
            let errors = run.finish(
                &shared,
                logged.as_ref().map(|(t, s)| (t, s.as_str())),
                if result.is_ok() {
                    "rollback"
                } else {
                    "rollback-failed"
                },
                None,
            );
            for error in errors {
                console.log(&format!("warning: {error}"));
            }
            result.map(|target| (run.previous.clone(), target))
        },
    );
    let mut errors = Vec::new();
    let mut reports = Vec::new();
    for (host, result) in hosts.iter().zip(results) {
        match result {
            Ok((previous, target)) => {
                runner.set_output("release-id", target.as_str())?;
                reports.push(HostReport {
                    host: host.label(),
                    result: format!("rolled back to {target}"),
                    previous: previous.map(|p| p.to_string()),
                    error: None,
                    seconds: 0.0,
                });
            }
            Err(error) => {
                reports.push(HostReport {
                    host: host.label(),
                    result: "failed".into(),
                    previous: None,
                    error: Some(error.to_string()),
                    seconds: 0.0,
                });
                errors.push(error);
            }
        }
    }
    report_hosts(runner, "ssh-deploy rollback", &reports)?;
    if errors.is_empty() {
        runner.set_output("result", "success")?;
        Ok(Verdict::Success)
    } else {
        runner.set_output("result", "rollback-failed")?;
        Err(Error::RollbackFailed(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// `releases`: list per host, current marked.
pub fn releases(connection: &Connection, runner: &mut Runner) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let mut all = serde_json::Map::new();
    let mut errors = Vec::new();
    for host in &connection.hosts {
        let listed = connection.open(host).and_then(|mut run| {
            let output = run.remote_status(connection.layout_for(host))?;
            Ok(crate::deploy::parse_status(&output))
        });
        match listed {
            Ok(status) => {
                let block = console.untrusted();
                let mut list = Vec::new();
                for (id, sha) in &status.releases {
                    let current = status.current.as_ref() == Some(id);
                    block.line(&format!(
                        "[{}] {} {id} {}",
                        host.label(),
                        if current { "*" } else { " " },
                        sha.as_deref().map_or("-", |s| &s[..s.len().min(12)])
                    ));
                    list.push(
                        serde_json::json!({"id": id.as_str(), "current": current, "sha256": sha}),
                    );
                }
                all.insert(host.label(), serde_json::Value::Array(list));
            }
            Err(error) => errors.push(error),
        }
    }
    runner.set_output("releases", serde_json::Value::Object(all).to_string())?;
    if errors.is_empty() {
        Ok(Verdict::Success)
    } else {
        Err(Error::Hosts(errors))
    }
}

/// `unlock`: remove the deploy lock, saying who held it.
pub fn unlock(connection: &Connection, runner: &mut Runner) -> Result<Verdict, Error> {
    let mut errors = Vec::new();
    for host in &connection.hosts {
        let result = connection
            .open(host)
            .and_then(|mut run| run.remote_force_unlock(connection.layout_for(host)));
        match result {
            Ok(owner) => {
                let holder = crate::deploy::LockHolder::parse(&owner);
                if owner.trim().is_empty() {
                    runner
                        .console()
                        .log(&format!("[{}] no lock held", host.label()));
                } else {
                    runner.warn(&format!(
                        "{}: removed the deploy lock held by {} (run {})",
                        host.label(),
                        holder.owner,
                        holder.run
                    ));
                }
            }
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(Verdict::Success)
    } else {
        Err(Error::Hosts(errors))
    }
}
