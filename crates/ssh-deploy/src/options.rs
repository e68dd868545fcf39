//! Validated options: the clap structs turned into what the flows in [`crate::ops`] run with.
//! Validation only (reading the files a flag names included); nothing here connects.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use runner_protocol::input::LineList;
use runner_protocol::{Diagnostic, Runner};

use crate::cli::{ChangeArgs, DeployArgs, ExecArgs, HostArgs, ManagerArg, RollbackArgs, ScopeArg};
use crate::commands::{Custom, Layout, ServiceManager, Systemd};
use crate::error::{Error, usage};
use crate::hooks::{Hook, Hooks, MigrateOn};
use crate::host_run::HostContext;
use crate::quote::{ReleaseId, RemotePath, relative_path};
use crate::remote::{Auth, HostTarget, HostTrust, Timeouts};
use crate::schedule::{Budget, Schedule};
use crate::strategy::blue_green::BlueGreen;

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
                let mut inventory = crate::inventory::Inventory::load(path, &args.user, args.port)?;
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

    /// The inventory settings of `host`.
    pub(crate) fn settings_for(&self, host: &HostSpec) -> Option<&HostSettings> {
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
}

/// Validated service, gate and lock settings: what is restarted and how, what gates it, how
/// the deploy lock is taken and in whose name, and whether this is a dry run.
#[derive(Debug)]
pub(crate) struct ServiceSettings {
    /// Restart order.
    pub services: Vec<String>,
    /// The manager.
    pub manager: Box<dyn ServiceManager>,
    /// Gate file text.
    pub gate: Option<String>,
    /// The gate file's path, which places its problems (`file:line:col`).
    pub gate_file: Option<PathBuf>,
    /// Stale lock age.
    pub lock_stale_after: Duration,
    /// How long a lock another run holds is waited for (0: refuse at once).
    pub lock_wait: Duration,
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

impl ServiceSettings {
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
                let stop = pairs(&args.stop_command, "stop-command")?;
                // Blue-green starts slots with its own commands instead of restarts.
                for service in services.iter().filter(|_| restarts) {
                    if !restart.iter().any(|(name, _)| name == service) {
                        return Err(usage(format!(
                            "service `{service}` has no --restart-command (`{service}=...`), which \
                             --service-manager custom needs for every service"
                        )));
                    }
                }
                Box::new(Custom {
                    restart,
                    check,
                    stop,
                })
            }
        };
        let gate = match &args.gate_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("--gate-file {}: {e}", path.display())))?;
                // `{port}` and `{slot}` are filled in per slot by the blue-green strategy; with
                // `{vars.NAME}` the file is checked per host once the vars are known.
                if !text.contains("{vars.") {
                    crate::gate::check(&text, "127.0.0.1")
                        .map_err(|e| crate::error::gate_file(e, "--gate-file", path, &text))?;
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
            gate_file: args.gate_file.clone(),
            lock_stale_after: args.lock_stale_after,
            lock_wait: args.lock_wait,
            dry_run: args.dry_run,
            who,
            run,
            interrupt: crate::interrupt::Interrupt::default(),
        })
    }

    /// The gate text per host, `{vars.NAME}` filled in from the host's inventory vars. A
    /// problem of the filled-in file is placed at its line in the gate file and names the host.
    pub(crate) fn gates_for(&self, connection: &Connection) -> Result<Vec<Option<String>>, Error> {
        connection
            .hosts
            .iter()
            .map(|host| {
                let Some(text) = &self.gate else {
                    return Ok(None);
                };
                let rendered = crate::inventory::render_vars(text, &connection.vars_for(host))
                    .map_err(|e| usage(format!("--gate-file, host {}: {e}", host.label())))?;
                crate::gate::check(&rendered, &host.name()).map_err(|error| {
                    let flag = format!("--gate-file (host {})", host.label());
                    match (error, &self.gate_file) {
                        (crate::gate::GateError::File(error), Some(path)) => Error::Invalid(
                            error
                                .diagnostics(&path.display().to_string(), text)
                                .into_iter()
                                .map(|d| Diagnostic {
                                    message: format!("host {}: {}", host.label(), d.message),
                                    ..d
                                })
                                .collect(),
                        ),
                        (error, _) => usage(format!("{flag}: {error}")),
                    }
                })?;
                Ok(Some(rendered))
            })
            .collect()
    }

    /// The dry-run plan's line about a lock another run holds.
    pub(crate) fn lock_plan(&self) -> String {
        if self.lock_wait.is_zero() {
            "lock: a lock another run holds fails the host at once (--lock-wait 0s); a stale one is taken over\n".to_owned()
        } else {
            format!(
                "lock: a lock another run holds is waited for up to {}s (--lock-wait, its holder named), then the host fails with exit 3 and nothing changed; a stale one is taken over\n",
                self.lock_wait.as_secs()
            )
        }
    }

    /// The context of one host's steps: `layout` is the host's (inventory root or `--root`).
    pub(crate) fn context<'a>(
        &'a self,
        layout: &'a Layout,
        console: &'a runner_protocol::console::Console,
    ) -> HostContext<'a> {
        HostContext {
            layout,
            manager: self.manager.as_ref(),
            services: &self.services,
            gate: self.gate.as_deref(),
            lock_stale_after: self.lock_stale_after,
            lock_wait: self.lock_wait,
            who: &self.who,
            run: &self.run,
            console,
            interrupt: &self.interrupt,
        }
    }
}

/// How the release is activated on each host (`--strategy compose` has its own options, in
/// the compose strategy).
#[derive(Debug)]
pub(crate) enum Strategy {
    /// `current` symlink switch, restarts in order, in batches (canary first with `--canary`).
    SymlinkSwitch,
    /// Two slots behind a proxy, one host at a time ([`crate::strategy::blue_green`]).
    BlueGreen(Box<BlueGreen>),
}

/// Validated `deploy` options (symlink and blue-green strategies).
#[derive(Debug)]
pub(crate) struct DeployOptions {
    /// Hosts and credentials.
    pub(crate) connection: Connection,
    /// Services, gate, lock.
    pub(crate) settings: ServiceSettings,
    /// The artifact.
    pub(crate) artifact: PathBuf,
    /// Its SHA-256.
    pub(crate) sha256: String,
    /// The release id.
    pub(crate) release: ReleaseId,
    /// Paths kept across releases (`--shared`).
    pub(crate) shared_paths: Vec<String>,
    /// Retention.
    pub(crate) keep_releases: usize,
    /// Host indexes per batch.
    pub(crate) batches: Vec<Vec<usize>>,
    /// Hosts at once.
    pub(crate) max_parallel: usize,
    /// Roll back finished batches too.
    pub(crate) rollback_completed: bool,
    /// Activation strategy.
    pub(crate) strategy: Strategy,
    /// Gate text per host (vars filled in).
    pub(crate) gates: Vec<Option<String>>,
    /// Canary first (the first batch is the canary host).
    pub(crate) canary: Option<crate::canary::Canary>,
    /// The rolling schedule the batches come from (`--schedule`), for the plan.
    pub(crate) schedule: Option<Schedule>,
    /// Failed hosts tolerated across the rollout (`--max-failed`).
    pub(crate) budget: Budget,
    /// Hooks and the migration.
    pub(crate) hooks: Hooks,
}

impl DeployOptions {
    /// One [`HostContext`] per host: its own layout (inventory root) and gate (inventory vars).
    pub(crate) fn host_contexts<'a>(
        &'a self,
        console: &'a runner_protocol::console::Console,
    ) -> Vec<HostContext<'a>> {
        self.connection
            .hosts
            .iter()
            .zip(&self.gates)
            .map(|(host, gate)| {
                let mut context = self
                    .settings
                    .context(self.connection.layout_for(host), console);
                context.gate = gate.as_deref();
                context
            })
            .collect()
    }

    /// Validates `deploy` flags and checks the artifact (before any connection).
    pub(crate) fn from_args(args: &DeployArgs, runner: &Runner) -> Result<Self, Error> {
        let connection = Connection::from_args(&args.hosts, runner)?;
        let restarts = args.strategy == crate::cli::StrategyArg::Symlink;
        let settings =
            ServiceSettings::from_args(&args.change, Some(&args.units_dir), runner, restarts)?;
        // Both read the whole artifact; on two threads the hash costs no extra wall time.
        let (checked, hashed) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| crate::pack::sha256_file(&args.artifact));
            let checked = crate::pack::check_archive(&args.artifact);
            (checked, hashing.join())
        });
        checked?;
        let (sha256, _) = hashed.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let release = release_id(args.release_id.as_deref(), &sha256)?;
        let shared_paths = lines(&args.shared)
            .iter()
            .map(|p| relative_path(p).map_err(|e| usage(format!("--shared: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if args.keep_releases == 0 {
            return Err(usage("--keep-releases must be at least 1"));
        }
        let canary = canary_from_args(args, &connection)?;
        let schedule = args
            .schedule
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(Schedule::parse)
            .transpose()
            .map_err(usage)?;
        let budget = Budget::parse(&args.max_failed).map_err(usage)?;
        if schedule.is_some() && args.batch_size != 0 {
            return Err(usage(
                "give either --schedule or --batch-size, not both (a schedule of one step, \
                 `--schedule 5`, is --batch-size 5)",
            ));
        }
        // Every strategy rolls by --schedule with a --max-failed budget (compose validates its
        // own in ComposeOptions).
        let hooks = hooks_from_args(args)?;
        let total = connection.hosts.len();
        let mut batches = match (&canary, &schedule) {
            (Some(_), Some(schedule)) => {
                let mut batches = vec![vec![0]];
                batches.extend(schedule.batches(1, total - 1, total));
                batches
            }
            (None, Some(schedule)) => schedule.batches(0, total, total),
            (Some(_), None) => crate::schedule::canary_batches(total, args.batch_size),
            (None, None) => crate::schedule::batches(total, args.batch_size),
        };
        // A migration on the first host runs before any other host switches: that host goes
        // alone, as the first batch.
        if matches!(hooks.migrate, Some((_, MigrateOn::First))) && batches[0].len() > 1 {
            let rest: Vec<usize> = batches[0].split_off(1);
            batches.insert(1, rest);
        }
        let gates = settings.gates_for(&connection)?;
        let strategy = match args.strategy {
            crate::cli::StrategyArg::BlueGreen => {
                Strategy::BlueGreen(Box::new(BlueGreen::from_args(args, &settings.services)?))
            }
            // `ops::deploy` hands compose deploys to their own options before these exist.
            crate::cli::StrategyArg::Symlink | crate::cli::StrategyArg::Compose => {
                Strategy::SymlinkSwitch
            }
        };
        Ok(Self {
            gates,
            canary,
            connection,
            settings,
            artifact: args.artifact.clone(),
            sha256,
            release,
            shared_paths,
            keep_releases: args.keep_releases,
            batches,
            max_parallel: args.max_parallel.max(1),
            rollback_completed: args.rollback_completed,
            strategy,
            schedule,
            budget,
            hooks,
        })
    }
}

/// The hooks and the migration of `deploy` (`--hook`, `--hooks-strict`, `--migrate`).
pub(crate) fn hooks_from_args(args: &DeployArgs) -> Result<Hooks, Error> {
    let hooks = lines(&args.hook)
        .iter()
        .map(|line| Hook::parse(line))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let migrate = args
        .migrate
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .map(|command| {
            let on = match args.migrate_on {
                crate::cli::MigrateOnArg::First => MigrateOn::First,
                crate::cli::MigrateOnArg::Each => MigrateOn::Each,
            };
            (command.trim().to_owned(), on)
        });
    let hooks = Hooks {
        hooks,
        migrate,
        strict: args.hooks_strict,
    };
    Ok(hooks)
}

/// The release id: `--release-id` when given, else the first 12 hex digits of `digest` (the
/// artifact's sha256, or the compose deploy file's). The one place every strategy derives it.
pub(crate) fn release_id(flag: Option<&str>, digest: &str) -> Result<ReleaseId, Error> {
    match flag {
        Some(id) if !id.is_empty() => {
            ReleaseId::parse(id).map_err(|e| usage(format!("--release-id: {e}")))
        }
        _ => ReleaseId::parse(&digest[..12]).map_err(usage),
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
    let rendered = crate::inventory::render_vars(&text, &connection.vars_for(host))
        .map_err(|e| usage(format!("canary gate, host {}: {e}", host.label())))?;
    if let Err(error) = crate::gate::resolve_gate(&rendered, &host.name()) {
        return Err(match (&args.canary_gate_file, error) {
            (Some(path), error @ crate::gate::GateError::File(_)) => {
                crate::error::gate_file(error, "--canary-gate-file", path, &text)
            }
            (_, error) => usage(format!("canary gate ({origin}): {error}")),
        });
    }
    Ok(Some(crate::canary::Canary {
        gate: rendered,
        origin,
    }))
}

/// Validated `rollback` options.
#[derive(Debug)]
pub(crate) struct RollbackOptions {
    /// Hosts.
    pub(crate) connection: Connection,
    /// Services, gate, lock.
    pub(crate) settings: ServiceSettings,
    /// Target release.
    pub(crate) to: Option<ReleaseId>,
}

impl RollbackOptions {
    /// Validates `rollback` flags.
    pub(crate) fn from_args(args: &RollbackArgs, runner: &Runner) -> Result<Self, Error> {
        Ok(Self {
            connection: Connection::from_args(&args.hosts, runner)?,
            settings: ServiceSettings::from_args(&args.change, None, runner, true)?,
            to: args
                .to
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| ReleaseId::parse(t).map_err(|e| usage(format!("--to: {e}"))))
                .transpose()?,
        })
    }
}

/// What `exec` runs on each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExecWhat {
    /// `--run`: a command line, run with `sh -e -c`.
    Command(String),
    /// `--script`: the file's text, sent on stdin to `sh -e -s`.
    Script {
        /// The file, for the log and the plan.
        path: PathBuf,
        /// Its text.
        text: String,
    },
}

/// Validated `exec` options.
#[derive(Debug)]
pub(crate) struct ExecOptions {
    /// Hosts and credentials.
    pub(crate) connection: Connection,
    /// The command or script.
    pub(crate) what: ExecWhat,
    /// `$1`, `$2`, ...
    pub(crate) args: Vec<String>,
    /// Stdout bytes kept per host.
    pub(crate) max_output: usize,
    /// Host indexes per batch.
    pub(crate) batches: Vec<Vec<usize>>,
    /// Hosts at once.
    pub(crate) max_parallel: usize,
    /// Print the commands only.
    pub(crate) dry_run: bool,
}

/// The stand-in deploy root of `exec` without `--root` (never used as a path).
const NO_ROOT: &str = "/.ssh-deploy-exec-without-root";

impl ExecOptions {
    /// The working directory on `host`: its inventory `root:` or `--root`, else none (the
    /// login directory).
    pub(crate) fn workdir(&self, host: &HostSpec) -> Option<&RemotePath> {
        let root = self.connection.layout_for(host).root();
        (root.as_str() != NO_ROOT).then_some(root)
    }

    /// Validates `exec` flags (the script is read here, before any connection).
    pub(crate) fn from_args(args: &ExecArgs, runner: &Runner) -> Result<Self, Error> {
        // No deploy root is needed to run a command: without `--root` (or an inventory
        // `root:`), a stand-in fills the layout, and the command runs in the login directory.
        let mut host_args = args.hosts.clone();
        if host_args.root.as_deref().is_none_or(str::is_empty) {
            host_args.root = Some(NO_ROOT.to_owned());
        }
        let connection = Connection::from_args(&host_args, runner)?;
        let run = args.run.as_deref().filter(|r| !r.trim().is_empty());
        let script = args.script.as_ref().filter(|p| !p.as_os_str().is_empty());
        let what = match (run, script) {
            (Some(command), None) => ExecWhat::Command(command.to_owned()),
            (None, Some(path)) => ExecWhat::Script {
                path: path.clone(),
                text: std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("--script {}: {e}", path.display())))?,
            },
            (Some(_), Some(_)) => return Err(usage("give either --run or --script, not both")),
            (None, None) => {
                return Err(usage(
                    "exec needs what to run: --run 'COMMAND' or --script FILE",
                ));
            }
        };
        if args.max_output == 0 {
            return Err(usage("--max-output must be at least 1 byte"));
        }
        Ok(Self {
            batches: crate::schedule::batches(connection.hosts.len(), args.batch_size),
            connection,
            what,
            args: lines(&args.args),
            max_output: args.max_output,
            max_parallel: args.max_parallel.max(1),
            dry_run: args.dry_run,
        })
    }
}
