//! Command-line interface. Every flag also reads `SSH_DEPLOY_<FLAG>` (see
//! `runner_protocol::cli`); the action selects the subcommand with its `command` input.

use std::path::PathBuf;
use std::time::Duration;

use runner_protocol::input::LineList;
use runner_protocol::{CommonArgs, ToolCli};

/// Deploy releases to Linux hosts over SSH: releases/<id>, atomic `current` switch, ordered restarts, gated rollback.
///
/// Uploads one versioned artifact to one host or a fleet, switches `current` atomically, restarts
/// services in order, gates the deploy and rolls back when the gate fails.
#[derive(Debug, clap::Parser)]
#[command(name = "ssh-deploy", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Flags shared by every binary of the suite.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ToolCli for Cli {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make one deterministic artifact (tar.gz or tar.zst + manifest with sha256 of every file) from a directory.
    Pack(PackArgs),
    /// Upload, unpack, switch `current`, restart, gate; roll back when the gate fails.
    Deploy(Box<DeployArgs>),
    /// Switch back to the previous release (or `--to` a named one), restart, gate.
    Rollback(RollbackArgs),
    /// List the releases on each host, the current one marked.
    Releases(HostArgs),
    /// Remove a deploy lock left behind (prints who held it).
    Unlock(HostArgs),
    /// Run an ad-hoc command or script on one host or an inventory, with errexit (`sh -e`).
    Exec(Box<ExecArgs>),
}

/// `exec` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Hosts and credentials (`--root`, when given, is the working directory).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Shell command run on every host as `sh -e -c COMMAND` (a failing line fails the host).
    ///
    /// Give this or --script. Example: `--run 'systemctl is-active web && df -h /'`.
    #[arg(long, value_name = "COMMAND", help_heading = "Exec")]
    pub run: Option<String>,
    /// Script file sent to every host on stdin and run as `sh -e -s` (a failing line fails the
    /// host, as `set -e` does).
    #[arg(long, value_name = "FILE", help_heading = "Exec")]
    pub script: Option<PathBuf>,
    /// Arguments for the command or script, one per line: `$1`, `$2`, ... on the host, each
    /// passed as one word whatever it holds (quotes, `$(...)`, newlines are not interpreted).
    #[arg(long, value_name = "ARGS", help_heading = "Exec")]
    pub args: Vec<LineList>,
    /// Most bytes of stdout kept per host in the `exec` output; the rest is cut (and said so).
    #[arg(
        long,
        value_name = "BYTES",
        default_value = "65536",
        help_heading = "Exec"
    )]
    pub max_output: usize,
    /// Hosts per batch (0: all hosts in one batch); a batch with a failed host stops the run.
    #[arg(long, value_name = "N", default_value = "0", help_heading = "Fleet")]
    pub batch_size: usize,
    /// Hosts worked on at once inside a batch.
    #[arg(long, value_name = "N", default_value = "8", help_heading = "Fleet")]
    pub max_parallel: usize,
    /// Print the exact command per host without running it.
    #[arg(long, value_name = "BOOL")]
    pub dry_run: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e} (examples: 30s, 5m, 1h)"))
}

/// `pack` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PackArgs {
    /// Directory to pack (bin/, frontend/dist, deploy/systemd, VERSION, ...).
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// The archive to write (`*.tar.zst`: zstd, else gzip); the manifest goes next to it as
    /// `<archive>.manifest.json`.
    #[arg(long, value_name = "FILE", default_value = "release.tar.gz")]
    pub artifact: PathBuf,
}

/// How to reach the hosts (every subcommand but `pack`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct HostArgs {
    /// Hosts, one per line: `[user@]host[:port]`, or `local` for this machine (no SSH).
    #[arg(long, value_name = "HOSTS", required_unless_present = "inventory")]
    pub hosts: Vec<LineList>,
    /// Inventory file (YAML): hosts, groups, per-host user/port/root/jump and vars; `{vars.NAME}`
    /// in gate files takes the host's value. Used instead of --hosts.
    #[arg(long, value_name = "FILE", conflicts_with = "hosts")]
    pub inventory: Option<PathBuf>,
    /// Only the hosts of this inventory group.
    #[arg(long, value_name = "GROUP", requires = "inventory")]
    pub group: Option<String>,
    /// Jump host (ProxyJump equivalent), `[user@]host[:port]`: the connection to every host is
    /// tunnelled through it. Its host key is verified like the targets'.
    #[arg(long, value_name = "HOST")]
    pub jump_host: Option<String>,
    /// Login user for hosts that name none.
    #[arg(long, value_name = "USER", default_value = "deploy")]
    pub user: String,
    /// SSH port for hosts that name none.
    #[arg(long, value_name = "PORT", default_value = "22")]
    pub port: u16,
    /// The deploy root on the hosts, e.g. `/opt/<app>` (holds releases/, current, shared/);
    /// an inventory host's `root:` overrides it.
    #[arg(long, value_name = "DIR")]
    pub root: Option<String>,
    /// Private key text (OpenSSH or PEM); kept in memory, never written to disk. Masked.
    #[arg(long, value_name = "KEY", hide_env_values = true)]
    pub private_key: Option<String>,
    /// Passphrase of the private key. Masked.
    #[arg(long, value_name = "TEXT", hide_env_values = true)]
    pub passphrase: Option<String>,
    /// Password login (discouraged: prefer a key). Masked.
    #[arg(long, value_name = "TEXT", hide_env_values = true)]
    pub password: Option<String>,
    /// Also try keys held by ssh-agent (SSH_AUTH_SOCK).
    #[arg(long, value_name = "BOOL")]
    pub use_agent: bool,
    /// known_hosts content (plain or hashed names; `@revoked` honoured). Hosts must be covered
    /// by this or by --host-key-fingerprint.
    #[arg(long, value_name = "TEXT")]
    pub known_hosts: Option<String>,
    /// Pinned host key fingerprints, one per line: `SHA256:...` (every host) or
    /// `host[:port]=SHA256:...` (as `ssh-keygen -lf` prints them).
    #[arg(long, value_name = "FINGERPRINTS")]
    pub host_key_fingerprint: Vec<LineList>,
    /// DANGEROUS: accept any host key (no protection against a man in the middle).
    #[arg(long, value_name = "BOOL")]
    pub insecure_accept_any_host_key: bool,
    /// TCP connect and SSH handshake timeout.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "15s")]
    pub connect_timeout: Duration,
    /// Longest wait for any single read or write of a remote command.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10m")]
    pub command_timeout: Duration,
    /// SSH keepalive interval while waiting for a command (0s: off); keeps NAT and firewalls
    /// from dropping a quiet connection during long restarts or gates.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "15s")]
    pub keepalive_interval: Duration,
    /// An upload that makes no progress for this long is stopped and its host reported
    /// unreachable (a dead link otherwise blocks until the kernel gives up, minutes later).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "20s")]
    pub stall_timeout: Duration,
    /// The deploy lock's lease: the host renews it while the deploy works there; a lock whose
    /// lease has run out (its deploy died or lost the host) is taken over at once.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s")]
    pub lock_lease: Duration,
}

/// What changes a release (deploy and rollback).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Services and gate")]
pub struct ChangeArgs {
    /// Services to restart, one per line, in dependency order (e.g. memory, tools, gateway).
    #[arg(long, value_name = "SERVICES")]
    pub services: Vec<LineList>,
    /// `systemd` (restart + is-active + journal) or `custom` (--restart-command per service).
    #[arg(long, value_name = "MANAGER", default_value = "systemd")]
    pub service_manager: ManagerArg,
    /// systemd units: `system` or `user` (`systemctl --user`).
    #[arg(long, value_name = "SCOPE", default_value = "system")]
    pub systemd_scope: ScopeArg,
    /// Restart commands for `custom`, one per line: `service=shell command` (run in `current`).
    #[arg(long, value_name = "COMMANDS")]
    pub restart_command: Vec<LineList>,
    /// Optional check commands for `custom`: `service=shell command`, exit 0 = running.
    #[arg(long, value_name = "COMMANDS")]
    pub check_command: Vec<LineList>,
    /// health-gate file checked after the restart, from the runner; `{host}` in it becomes the
    /// host's name, `{tunnel:PORT}` a runner-side address forwarded over SSH to the host's
    /// 127.0.0.1:PORT (services bound to loopback). A failed gate rolls back.
    #[arg(long, value_name = "FILE")]
    pub gate_file: Option<PathBuf>,
    /// A lock older than this is taken over (with a warning).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "1h")]
    pub lock_stale_after: Duration,
    /// How long to wait for a deploy lock another run holds, naming its holder (0s: fail at once).
    ///
    /// Past the wait the host fails with exit 3 and nothing changed on it; a signal while
    /// waiting ends the run (exit 130) with nothing taken. Example: `--lock-wait 10m`.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Print the exact commands per host without touching anything.
    #[arg(long, value_name = "BOOL")]
    pub dry_run: bool,
}

/// `deploy` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// Hosts and credentials.
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Services, gate, lock.
    #[command(flatten)]
    pub change: ChangeArgs,
    /// The artifact to deploy (tar.gz or tar.zst, e.g. from `pack`).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "release.tar.gz",
        help_heading = "Release"
    )]
    pub artifact: PathBuf,
    /// Release id (`[A-Za-z0-9._-]`); default: the first 12 hex digits of the artifact's sha256.
    #[arg(long, value_name = "ID", help_heading = "Release")]
    pub release_id: Option<String>,
    /// Paths inside the release linked to `<root>/shared/<path>`, one per line (`.env`, `data/`).
    #[arg(long, value_name = "PATHS", help_heading = "Release")]
    pub shared: Vec<LineList>,
    /// systemd only: directory inside the release whose units are installed (empty: none).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "deploy/systemd",
        help_heading = "Release"
    )]
    pub units_dir: String,
    /// Releases kept per host (never removing `current` or the rollback target).
    #[arg(long, value_name = "N", default_value = "5", help_heading = "Release")]
    pub keep_releases: usize,
    /// Hosts per rolling batch (0: all hosts in one batch).
    #[arg(long, value_name = "N", default_value = "0", help_heading = "Fleet")]
    pub batch_size: usize,
    /// Rolling schedule instead of --batch-size: batch sizes in order, each a number of hosts
    /// or a percentage of the fleet, the last one repeated until every host is done.
    ///
    /// Example: `1, 30%, 100%` (one host, then 30 % of the fleet, then the rest).
    #[arg(long, value_name = "STEPS", help_heading = "Fleet")]
    pub schedule: Option<String>,
    /// Failed hosts tolerated across the whole rollout (all batches), a number or a percentage
    /// of the fleet: each is put back on its previous release and the rollout goes on; one
    /// more stops it as any failure does without a budget.
    ///
    /// Example: `2` or `10%`. Default `0`: the first failed host stops the rollout.
    #[arg(
        long,
        value_name = "N|PERCENT",
        default_value = "0",
        help_heading = "Fleet"
    )]
    pub max_failed: String,
    /// Hosts worked on at once inside a batch.
    #[arg(long, value_name = "N", default_value = "8", help_heading = "Fleet")]
    pub max_parallel: usize,
    /// When a batch fails, also roll back the batches that already succeeded.
    #[arg(long, value_name = "BOOL", help_heading = "Fleet")]
    pub rollback_completed: bool,
    /// Hooks, one per line: `EVENT[@runner|@hosts]=COMMAND`, EVENT one of pre-deploy,
    /// pre-switch, post-switch, post-deploy, on-rollback (default side: runner).
    ///
    /// They get SSH_DEPLOY_HOOK, SSH_DEPLOY_RELEASE, SSH_DEPLOY_PREVIOUS_RELEASE,
    /// SSH_DEPLOY_HOST, SSH_DEPLOY_STRATEGY and SSH_DEPLOY_RESULT. A failing pre-* hook stops
    /// the deploy; a failing post-* or on-rollback hook is a warning (see --hooks-strict).
    /// Example: `pre-switch@hosts=./bin/check-config`.
    #[arg(long, value_name = "HOOKS", help_heading = "Hooks")]
    pub hook: Vec<LineList>,
    /// A failing post-switch hook fails its host (rolled back like a failed gate) and a failing
    /// runner post-deploy or on-rollback hook fails the step, instead of a warning.
    #[arg(long, value_name = "BOOL", help_heading = "Hooks")]
    pub hooks_strict: bool,
    /// Migration command run with `sh -e -c` in the new release directory after the unpack
    /// and before the switch; a non-zero exit stops the deploy with nothing switched there.
    /// compose: in the project directory, after the env files are written and before any
    /// service is touched (`docker compose run --rm api ./migrate` runs the new image).
    ///
    /// Example: `--migrate './bin/migrate up'` (see --migrate-on).
    #[arg(long, value_name = "COMMAND", help_heading = "Hooks")]
    pub migrate: Option<String>,
    /// Where --migrate runs: `first` (the first host, alone in the first batch, before any
    /// other host switches) or `each` (every host, before its own switch).
    #[arg(long, value_enum, default_value = "first", help_heading = "Hooks")]
    pub migrate_on: MigrateOnArg,
    /// How a release goes live: `symlink` (switch `current`, restart in place), `blue-green`
    /// (start the idle slot, switch the proxy, drain and stop the old slot) or `compose`
    /// (docker compose hosts, driven by --compose-file).
    #[arg(
        long,
        value_name = "STRATEGY",
        default_value = "symlink",
        help_heading = "Release"
    )]
    pub strategy: StrategyArg,
    /// compose: the deploy file (project dir, env files and their changes, images, services in
    /// rollout order, replicas, gates). See the README's "docker compose hosts" section.
    #[arg(long, value_name = "FILE", help_heading = "Release")]
    pub compose_file: Option<PathBuf>,
    /// Canary first: deploy the first host alone, observe it against a baseline recorded from
    /// the old release just before (--canary-url or --canary-gate-file), then the other hosts in
    /// batches. A failed canary rolls back the canary alone and stops.
    #[arg(long, value_name = "BOOL", help_heading = "Canary")]
    pub canary: bool,
    /// URL observed on the canary (`{host}`, `{vars.NAME}` allowed): --canary-requests requests
    /// with "error rate < 5 %" and "p95 < 2x baseline".
    #[arg(long, value_name = "URL", help_heading = "Canary")]
    pub canary_url: Option<String>,
    /// health-gate file observed on the canary instead of --canary-url; thresholds may be
    /// relative to the baseline (`p95: "< 2x baseline"`).
    #[arg(long, value_name = "FILE", help_heading = "Canary")]
    pub canary_gate_file: Option<PathBuf>,
    /// Requests sent to --canary-url (for the baseline, then again for the canary).
    #[arg(long, value_name = "N", default_value = "100", help_heading = "Canary")]
    pub canary_requests: u64,
    /// Blue-green settings.
    #[command(flatten)]
    pub blue_green: BlueGreenArgs,
}

/// Where `--migrate` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateOnArg {
    /// The first host only.
    First,
    /// Every host.
    Each,
}

/// How a release goes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyArg {
    /// Switch `current`, restart services in order, gate.
    Symlink,
    /// Two slots per service behind nginx or HAProxy.
    BlueGreen,
    /// docker compose hosts (--compose-file).
    Compose,
}

/// The proxy in front of blue-green slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyArg {
    /// nginx: upstream include + `nginx -t` + reload.
    Nginx,
    /// HAProxy: runtime API over the admin socket.
    Haproxy,
}

/// `--strategy blue-green` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Blue-green")]
pub struct BlueGreenArgs {
    /// The proxy in front of the slots: `nginx` or `haproxy`.
    #[arg(long, value_name = "PROXY", default_value = "nginx")]
    pub proxy: ProxyArg,
    /// Loopback port of the `blue` slot.
    #[arg(long, value_name = "PORT")]
    pub blue_port: Option<u16>,
    /// Loopback port of the `green` slot.
    #[arg(long, value_name = "PORT")]
    pub green_port: Option<u16>,
    /// custom: starts a slot; run in `<root>/slots/<service>-<slot>` with SSH_DEPLOY_SLOT and
    /// SSH_DEPLOY_SLOT_PORT set (systemd: `<service>@<slot>` is restarted instead).
    #[arg(long, value_name = "COMMAND")]
    pub slot_start_command: Option<String>,
    /// custom: stops a slot (must succeed when it is not running).
    #[arg(long, value_name = "COMMAND")]
    pub slot_stop_command: Option<String>,
    /// Path probed with curl on the host on the new slot's own port before the switch, e.g.
    /// `/health` (2xx = healthy).
    #[arg(long, value_name = "PATH")]
    pub slot_health_path: Option<String>,
    /// Longest wait for a new slot to become healthy, and for the proxy to answer from it.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s")]
    pub slot_start_timeout: Duration,
    /// URL requested on the host through the proxy after the switch, e.g.
    /// `http://127.0.0.1/version`.
    #[arg(long, value_name = "URL")]
    pub verify_url: Option<String>,
    /// Response header naming the slot or release (e.g. `X-Slot`); empty: the body's first line.
    #[arg(long, value_name = "NAME")]
    pub verify_header: Option<String>,
    /// Consecutive answers from the new slot required after the switch.
    #[arg(long, value_name = "N", default_value = "5")]
    pub verify_count: u32,
    /// health-gate file run after the switch while the old slot still runs (`{host}`,
    /// `{port}`, `{slot}` are replaced); a failure switches back.
    #[arg(long, value_name = "FILE")]
    pub observe_gate_file: Option<PathBuf>,
    /// Longest wait for the old slot to drain (old nginx workers gone / HAProxy `scur` 0).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "30s")]
    pub drain_timeout: Duration,
    /// Keep the old slot running this long after the switch for an instant rollback (0s: stop it
    /// once drained).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s")]
    pub keep_old_slot: Duration,
    /// nginx: the upstream include file ssh-deploy owns, e.g. `/etc/nginx/conf.d/app.upstream`.
    #[arg(long, value_name = "FILE")]
    pub nginx_upstream_file: Option<String>,
    /// nginx: the upstream's name (`proxy_pass http://<name>;`).
    #[arg(long, value_name = "NAME", default_value = "app")]
    pub nginx_upstream_name: String,
    /// nginx: config test command (a failure stops the deploy before any switch).
    #[arg(long, value_name = "COMMAND", default_value = "nginx -t")]
    pub nginx_test_command: String,
    /// nginx: reload command, e.g. `systemctl reload nginx`.
    #[arg(long, value_name = "COMMAND", default_value = "nginx -s reload")]
    pub nginx_reload_command: String,
    /// nginx: the master's pid file (its workers before the reload are waited for).
    #[arg(long, value_name = "FILE", default_value = "/run/nginx.pid")]
    pub nginx_pid_file: String,
    /// HAProxy: the admin socket (`stats socket ... level admin`).
    #[arg(long, value_name = "FILE", default_value = "/run/haproxy/admin.sock")]
    pub haproxy_socket: String,
    /// HAProxy: the backend with servers named `blue` and `green`.
    #[arg(long, value_name = "NAME", default_value = "app")]
    pub haproxy_backend: String,
    /// HAProxy: the server-state file to persist runtime changes to (`server-state-file`).
    #[arg(long, value_name = "FILE")]
    pub haproxy_state_file: Option<String>,
}

/// `rollback` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    /// Hosts and credentials.
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Services, gate, lock.
    #[command(flatten)]
    pub change: ChangeArgs,
    /// The release to go back to (default: the one active before `current`).
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
}

/// Service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ManagerArg {
    /// systemctl.
    Systemd,
    /// --restart-command per service.
    Custom,
}

/// systemd scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// System units.
    System,
    /// `--user` units.
    User,
}
