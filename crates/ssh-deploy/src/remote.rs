//! How commands reach a host: a [`Remote`] runs one shell command (optionally fed from a
//! reader). [`SshRemote`] is libssh2 with strict host-key checking; [`LocalRemote`] runs
//! `sh -c` on this machine (the "local transport" for demos and hosts without sshd).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use runner_protocol::Secret;
use sha2::{Digest, Sha256};

/// What a command printed and how it exited.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Exit status (-1 when the remote gave none).
    pub status: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

/// Errors reaching or talking to a host.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// TCP connect failed.
    #[error("cannot connect to {host}: {source}")]
    Connect {
        /// `host:port`.
        host: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The host offered a key nobody vouched for.
    #[error(
        "host key for {host} is not known: the server offered {key_type} {fingerprint}\n\
         if (and only if) you verified this fingerprint out of band, add this line to known-hosts:\n\
         {line}\n\
         or pin it with --host-key-fingerprint '{host}={fingerprint}'"
    )]
    UnknownHostKey {
        /// `host:port`.
        host: String,
        /// e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...`.
        fingerprint: String,
        /// The known_hosts line to add.
        line: String,
    },
    /// The host offered a key different from the one on record.
    #[error(
        "host key for {host} has CHANGED: the server offered {key_type} {fingerprint}, which matches \
         neither known-hosts nor the pinned fingerprints; this could be a man-in-the-middle attack, \
         or the host was reinstalled\n\
         if the change is expected, replace the host's entry with:\n\
         {line}"
    )]
    ChangedHostKey {
        /// `host:port`.
        host: String,
        /// e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...`.
        fingerprint: String,
        /// The known_hosts line to use instead.
        line: String,
    },
    /// The host's key is listed as `@revoked`.
    #[error("host key for {host} ({fingerprint}) is marked @revoked in known-hosts")]
    RevokedHostKey {
        /// `host:port`.
        host: String,
        /// `SHA256:...`.
        fingerprint: String,
    },
    /// No auth method worked.
    #[error(
        "authentication as `{user}` on {host} failed (tried: {tried}; the server accepts: {accepted})"
    )]
    Auth {
        /// `host:port`.
        host: String,
        /// User.
        user: String,
        /// Methods we tried.
        tried: String,
        /// Methods the server offered.
        accepted: String,
    },
    /// An SSH-level failure.
    #[error("{host}: {action}: {source}")]
    Ssh {
        /// `host:port`.
        host: String,
        /// What we were doing.
        action: String,
        /// The cause.
        source: ssh2::Error,
    },
    /// An I/O failure on the channel or local process.
    #[error("{host}: {action}: {source}")]
    Io {
        /// Host label.
        host: String,
        /// What we were doing.
        action: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs shell commands on one host.
pub trait Remote: Send {
    /// The host's label for logs (`user@host:port`).
    fn label(&self) -> &str;
    /// Runs `command` with `sh -c` semantics; `input` (if any) is streamed to its stdin.
    fn exec(
        &mut self,
        command: &str,
        input: Option<&mut dyn Read>,
    ) -> Result<ExecOutput, RemoteError>;
    /// Starts `command` and leaves it running, its stdin open, until the returned [`Hold`] is
    /// dropped (the lock lease during a gate, see [`crate::commands::Layout::holding`]).
    fn hold(&mut self, command: &str) -> Result<Hold, RemoteError>;
    /// From now on, a signal set on `interrupt` (none: no signal) also ends a blocked upload (SSH connections
    /// shut their socket, see [`crate::watchdog`]). The local transport has nothing to unblock.
    fn watch_interrupt(&mut self, _interrupt: Option<&crate::interrupt::Interrupt>) {}
    /// From now on, a signal set on `interrupt` also ends the wait for a running command's
    /// output (`exec`): SSH connections shut their socket, and the command, which keeps running
    /// on the host, must be stopped over another connection. The local transport waits.
    fn stop_waiting_on_interrupt(&mut self, _interrupt: &crate::interrupt::Interrupt) {}
    /// With `on`, from now on each command starts the next command's channel and login shell
    /// while it runs, and that shell waits for its command ([`WAITER`]): a login shell's start
    /// (its rc files: 0.16 s for root on the benchmark machine, issue 19) overlaps the command
    /// before it instead of adding to every command. Commands run exactly as with
    /// [`Remote::exec`]: same shell, same stdin (the input after the command text), stdout,
    /// stderr and exit status. Off (before the last command, so no shell is started for
    /// nothing), a shell already started is still used by the next command. The local transport
    /// has no login shell to start ahead.
    ///
    /// `idle` (may be empty) runs in the background while a shell started ahead waits (the
    /// lock's lease renewer, [`crate::commands::Layout::renewer`]): stopped before the command
    /// runs.
    fn start_ahead(&mut self, _on: bool, _idle: &str) {}
    /// Forwards a new loopback port on the runner to `127.0.0.1:port` on the host (gate checks
    /// of loopback-only services, see [`crate::tunnel`]). Only SSH connections can.
    fn tunnel(&self, port: u16) -> Result<crate::tunnel::Tunnel, String> {
        Err(format!(
            "{}: {{tunnel:{port}}} needs an SSH connection to the host",
            self.label()
        ))
    }
}

/// A host to reach over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTarget {
    /// Login user.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The inventory name, when the host comes from an inventory (part of the label, so two
    /// entries on one machine, e.g. two deploy roots, stay apart).
    pub name: Option<String>,
}

impl HostTarget {
    /// Parses `[user@]host[:port]` (IPv6 as `[::1]:22`).
    pub fn parse(text: &str, default_user: &str, default_port: u16) -> Result<Self, String> {
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (user.to_owned(), rest),
            None => (default_user.to_owned(), text),
        };
        let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
            let (host, after) = stripped
                .split_once(']')
                .ok_or_else(|| format!("host `{text}`: missing `]`"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(format!("host `{text}`: unexpected `{after}` after `]`")),
            };
            (host.to_owned(), port)
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (rest.to_owned(), None),
            }
        };
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("host `{text}`: `{port}` is not a port"))?,
            None => default_port,
        };
        Self::validated(user, host, port, text)
    }

    /// A target from its parts (inventory files), validated like [`HostTarget::parse`].
    pub fn new(user: &str, host: &str, port: u16) -> Result<Self, String> {
        Self::validated(user.to_owned(), host.to_owned(), port, host)
    }

    fn validated(user: String, host: String, port: u16, text: &str) -> Result<Self, String> {
        let bad = |s: &str| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        };
        if bad(&host) || bad(&user) {
            return Err(format!(
                "host `{}` must be `[user@]host[:port]` with a plain host name or address",
                text.escape_debug()
            ));
        }
        Ok(Self {
            user,
            host,
            port,
            name: None,
        })
    }

    /// `host:port` (`[v6]:port`).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host pattern of a known_hosts line (`host` on port 22, else `[host]:port`).
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// `user@host:port`, or `name (user@host:port)` for an inventory host.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({}@{})", self.user, self.address()),
            None => format!("{}@{}", self.user, self.address()),
        }
    }
}

/// How host keys are trusted.
#[derive(Debug, Clone, Default)]
pub struct HostTrust {
    /// known_hosts content (plain and hashed host names; `@revoked` honoured).
    pub known_hosts: String,
    /// Pinned fingerprints: `(host pattern or None for every host, "SHA256:...")`.
    pub fingerprints: Vec<(Option<String>, String)>,
    /// Accept any key (explicit, loudly warned flag).
    pub accept_any: bool,
}

/// How to log in.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// A private key (OpenSSH or PEM text), held in memory only.
    pub private_key: Option<Secret>,
    /// Its passphrase.
    pub passphrase: Option<Secret>,
    /// Try the ssh-agent.
    pub agent: bool,
    /// A password (discouraged).
    pub password: Option<Secret>,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// TCP connect and handshake.
    pub connect: Duration,
    /// Any single blocking SSH call during a command (also: longest silence of a command).
    pub command: Duration,
    /// Keepalive interval while waiting for a command's output (zero: off).
    pub keepalive: Duration,
    /// Longest time an upload may make no progress before the connection is shut.
    pub stall: Duration,
}

/// Standard base64 without padding (OpenSSH fingerprints) or with it (key blobs).
pub(crate) fn base64(bytes: &[u8], pad: bool) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// `SHA256:<base64>` of a key blob, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", base64(&Sha256::digest(key), false))
}

fn key_type_name(kind: ssh2::HostKeyType) -> &'static str {
    match kind {
        ssh2::HostKeyType::Rsa => "ssh-rsa",
        ssh2::HostKeyType::Dss => "ssh-dss",
        ssh2::HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        ssh2::HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        ssh2::HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        ssh2::HostKeyType::Ed25519 => "ssh-ed25519",
        ssh2::HostKeyType::Unknown => "unknown",
    }
}

/// Decides whether an offered key is trusted. Pure, so it is unit-tested without a server.
pub(crate) fn verify_host_key(
    target: &HostTarget,
    key: &[u8],
    key_type: &str,
    trust: &HostTrust,
    known_hosts_check: impl FnOnce() -> KnownHostsVerdict,
) -> Result<(), RemoteError> {
    let offered = fingerprint(key);
    let line = format!(
        "{} {key_type} {}",
        target.known_hosts_name(),
        base64(key, true)
    );
    let blob = base64(key, true);
    let revoked = trust.known_hosts.lines().any(|l| {
        let mut fields = l.split_whitespace();
        fields.next() == Some("@revoked") && fields.nth(2) == Some(blob.as_str())
    });
    if revoked {
        return Err(RemoteError::RevokedHostKey {
            host: target.address(),
            fingerprint: offered,
        });
    }
    if trust.accept_any {
        return Ok(());
    }
    let names = [
        target.host.clone(),
        target.address(),
        target.known_hosts_name(),
    ];
    let pins: Vec<&str> = trust
        .fingerprints
        .iter()
        .filter(|(host, _)| host.as_ref().is_none_or(|h| names.contains(h)))
        .map(|(_, fp)| fp.as_str())
        .collect();
    if pins.iter().any(|pin| pin.trim_end_matches('=') == offered) {
        return Ok(());
    }
    let verdict = if trust.known_hosts.trim().is_empty() {
        KnownHostsVerdict::NotFound
    } else {
        known_hosts_check()
    };
    match verdict {
        KnownHostsVerdict::Match => Ok(()),
        KnownHostsVerdict::Mismatch => Err(RemoteError::ChangedHostKey {
            host: target.address(),
            key_type: key_type.to_owned(),
            fingerprint: offered,
            line,
        }),
        KnownHostsVerdict::NotFound if !pins.is_empty() => Err(RemoteError::ChangedHostKey {
            host: target.address(),
            key_type: key_type.to_owned(),
            fingerprint: offered,
            line,
        }),
        KnownHostsVerdict::NotFound => Err(RemoteError::UnknownHostKey {
            host: target.address(),
            key_type: key_type.to_owned(),
            fingerprint: offered,
            line,
        }),
    }
}

/// The known_hosts lookup result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownHostsVerdict {
    /// The host is listed with this key.
    Match,
    /// The host is listed with another key.
    Mismatch,
    /// The host is not listed.
    NotFound,
}

/// The command of a channel started ahead ([`Remote::start_ahead`]): the login shell reads a
/// header line with the command's length in bytes, then exactly that many bytes (`head -c`
/// reads no further: what follows is the command's own stdin), checks it got all of them (a
/// connection cut mid-command must never run a prefix of it), and runs it with `eval`, so
/// `exit`, traps and `$?` behave as in `sh -c`. A channel closed before any header (the
/// connection ends with one started ahead and unused) exits 0 having run nothing.
/// With `idle` (a command), it runs in the background while the shell waits, and is stopped
/// (and waited for) before the command runs or the shell exits.
pub(crate) fn waiter(idle: &str) -> String {
    if idle.is_empty() {
        return WAITER.to_owned();
    }
    format!(
        "{idle} & ssh_deploy_idle=$!; IFS= read -r ssh_deploy_n; ssh_deploy_r=$?; \
         kill $ssh_deploy_idle 2>/dev/null; wait $ssh_deploy_idle 2>/dev/null; \
         [ $ssh_deploy_r -eq 0 ] || exit 0; {}",
        WAITER
            .strip_prefix("IFS= read -r ssh_deploy_n || exit 0; ")
            .unwrap_or(WAITER)
    )
}

pub(crate) const WAITER: &str = "IFS= read -r ssh_deploy_n || exit 0; \
     ssh_deploy_s=$(head -c \"$ssh_deploy_n\"; echo x); ssh_deploy_s=${ssh_deploy_s%x}; \
     [ \"$(printf '%s' \"$ssh_deploy_s\" | wc -c)\" -eq \"$ssh_deploy_n\" ] || \
     { echo \"ssh-deploy: the command arrived incomplete; nothing was run\" >&2; exit 255; }; \
     eval \"$ssh_deploy_s\"";

/// How many commands' channels [`Remote::start_ahead`] keeps started. One: a second one
/// started at the same time would compete with it for the host's CPU (and on the benchmark
/// machine for `pyenv rehash`'s lock in root's `~/.bashrc`), and is one more shell to wind down
/// at the end.
const AHEAD: usize = 1;

/// How long closing the connection waits for a login shell started ahead and never used to
/// get through its rc files and exit (see the [`Drop`] of [`SshRemote`]).
const SPARE_CLOSE: Duration = Duration::from_secs(5);

/// An SSH connection (libssh2).
pub(crate) struct SshRemote {
    label: String,
    session: ssh2::Session,
    keepalive: Duration,
    command_timeout: Duration,
    stall: Duration,
    /// A clone of the session's socket, for the watchdog to shut (see [`crate::watchdog`]).
    socket: Option<TcpStream>,
    interrupt: Option<crate::interrupt::Interrupt>,
    /// A signal also ends the wait for a command's output (not only an upload).
    stop_waiting: bool,
    /// Each command starts the next one's channel ahead ([`Remote::start_ahead`]).
    ahead: bool,
    /// What a shell started ahead runs while it waits ([`waiter`]).
    idle: String,
    /// The channels started ahead, oldest first, their login shells waiting for a command
    /// ([`WAITER`]).
    spares: std::collections::VecDeque<ssh2::Channel>,
    // Declared after `session`, so the target's session is dropped (and says goodbye) before
    // the tunnel under it and the jump host's session go away.
    _jump: Option<(crate::jump::Forwarder, Box<SshRemote>)>,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl SshRemote {
    /// Connects through `jump` (when given): the jump host's session is opened and verified
    /// first, then the target's session runs through a `direct-tcpip` tunnel (see [`crate::jump`]).
    pub(crate) fn connect_via(
        target: &HostTarget,
        jump: Option<&HostTarget>,
        auth: &Auth,
        trust: &HostTrust,
        timeouts: &Timeouts,
    ) -> Result<Self, RemoteError> {
        let Some(jump) = jump else {
            return Self::connect(target, auth, trust, timeouts);
        };
        let jump_remote = Self::connect(jump, auth, trust, timeouts)?;
        let forwarder = crate::jump::Forwarder::start(
            jump_remote.session.clone(),
            &target.host,
            target.port,
            timeouts.connect,
            timeouts.keepalive,
        )
        .map_err(|message| RemoteError::Io {
            host: target.address(),
            action: format!("through jump host {}", jump.label()),
            source: std::io::Error::other(message),
        })?;
        let stream = TcpStream::connect_timeout(&forwarder.address(), timeouts.connect).map_err(
            |source| RemoteError::Connect {
                host: format!("{} (via {})", target.address(), jump.label()),
                source,
            },
        )?;
        let mut remote = Self::over_stream(target, stream, auth, trust, timeouts)?;
        remote.label = format!("{} via {}", target.label(), jump.address());
        remote._jump = Some((forwarder, Box::new(jump_remote)));
        Ok(remote)
    }

    /// Connects, verifies the host key (before any credential is sent) and authenticates.
    pub(crate) fn connect(
        target: &HostTarget,
        auth: &Auth,
        trust: &HostTrust,
        timeouts: &Timeouts,
    ) -> Result<Self, RemoteError> {
        let host = target.address();
        let addresses: Vec<SocketAddr> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|source| RemoteError::Connect {
                host: host.clone(),
                source,
            })?
            .collect();
        let mut last = std::io::Error::other("no address");
        let mut stream = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, timeouts.connect) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(error) => last = error,
            }
        }
        let stream = stream.ok_or(RemoteError::Connect {
            host: host.clone(),
            source: last,
        })?;
        Self::over_stream(target, stream, auth, trust, timeouts)
    }

    fn over_stream(
        target: &HostTarget,
        stream: TcpStream,
        auth: &Auth,
        trust: &HostTrust,
        timeouts: &Timeouts,
    ) -> Result<Self, RemoteError> {
        let host = target.address();
        let ssh = |action: &str| {
            let host = host.clone();
            let action = action.to_owned();
            move |source| RemoteError::Ssh {
                host,
                action,
                source,
            }
        };
        // Nagle costs ~10 % on uploads (research note §3.2).
        let _ = stream.set_nodelay(true);
        // The kernel's own bound on unacknowledged data (a dead link): without it a blocked
        // write waits for the retransmission timeout, about 15 minutes. The watchdog is the
        // finer bound; this one also covers calls it does not watch.
        if !timeouts.stall.is_zero() {
            let user_timeout = timeouts.stall.max(timeouts.keepalive) * 2;
            let _ = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(user_timeout));
        }
        let socket = stream.try_clone().ok();
        let mut session = ssh2::Session::new().map_err(ssh("create session"))?;
        session.set_tcp_stream(stream);
        session.set_timeout(timeouts.connect.as_millis().try_into().unwrap_or(u32::MAX));
        // Plain host keys first, so a server with host certificates still presents a plain key.
        session
            .method_pref(
                ssh2::MethodType::HostKey,
                "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256",
            )
            .map_err(ssh("set host key preferences"))?;
        session.handshake().map_err(ssh("SSH handshake"))?;
        let (key, kind) = session.host_key().ok_or_else(|| RemoteError::Ssh {
            host: host.clone(),
            action: "read host key".into(),
            source: ssh2::Error::unknown(),
        })?;
        let key = key.to_vec();
        verify_host_key(target, &key, key_type_name(kind), trust, || {
            known_hosts_lookup(&session, target, &key, &trust.known_hosts)
        })?;
        let mut tried = Vec::new();
        if let Some(private_key) = &auth.private_key {
            tried.push("publickey");
            let _ = session.userauth_pubkey_memory(
                &target.user,
                None,
                private_key.expose(),
                auth.passphrase.as_ref().map(Secret::expose),
            );
        }
        if !session.authenticated() && auth.agent {
            tried.push("agent");
            let _ = session.userauth_agent(&target.user);
        }
        if !session.authenticated() {
            if let Some(password) = &auth.password {
                tried.push("password");
                let _ = session.userauth_password(&target.user, password.expose());
            }
        }
        if !session.authenticated() {
            let accepted = session
                .auth_methods(&target.user)
                .unwrap_or("unknown")
                .to_owned();
            return Err(RemoteError::Auth {
                host,
                user: target.user.clone(),
                tried: if tried.is_empty() {
                    "nothing: give --private-key, --use-agent or --password".into()
                } else {
                    tried.join(", ")
                },
                accepted,
            });
        }
        let keepalive_secs = u32::try_from(timeouts.keepalive.as_secs()).unwrap_or(u32::MAX);
        // libssh2_keepalive_config(want_reply, interval): the first argument is not an on/off
        // switch; an interval of 0 is what turns keepalives off (`keepalive-interval: 0s`).
        session.set_keepalive(true, keepalive_secs);
        session.set_timeout(timeouts.command.as_millis().try_into().unwrap_or(u32::MAX));
        Ok(Self {
            label: target.label(),
            session,
            keepalive: timeouts.keepalive,
            command_timeout: timeouts.command,
            stall: timeouts.stall,
            socket,
            interrupt: None,
            stop_waiting: false,
            ahead: false,
            idle: String::new(),
            spares: std::collections::VecDeque::new(),
            _jump: None,
        })
    }

    /// With [`Remote::start_ahead`], starts channels until [`AHEAD`] wait (if one cannot be
    /// started now, the command that would have used it starts its own).
    fn start_spares(&mut self) {
        while self.ahead && self.spares.len() < AHEAD {
            match self.start_waiter() {
                Ok(channel) => self.spares.push_back(channel),
                Err(_) => break,
            }
        }
    }

    /// Opens a channel running [`WAITER`] (its login shell starts now, on the host).
    fn start_waiter(&mut self) -> Result<ssh2::Channel, RemoteError> {
        let ssh = |action: &'static str| {
            let host = self.label.clone();
            move |source| RemoteError::Ssh {
                host,
                action: action.into(),
                source,
            }
        };
        let mut channel = self
            .session
            .channel_session()
            .map_err(ssh("open channel"))?;
        channel
            .exec(&waiter(&self.idle))
            .map_err(ssh("start command"))?;
        Ok(channel)
    }

    /// The part of [`Remote::exec`] that uses the open channel. `waiting`: the channel already
    /// runs [`WAITER`], and the command goes on its stdin ahead of the input.
    fn run_channel(
        &mut self,
        channel: &mut ssh2::Channel,
        command: &str,
        input: Option<&mut dyn Read>,
        watchdog: Option<&crate::watchdog::Watchdog>,
        waiting: bool,
    ) -> Result<ExecOutput, RemoteError> {
        let label = self.label.clone();
        let ssh = |action: &'static str| {
            let host = label.clone();
            move |source| RemoteError::Ssh {
                host,
                action: action.into(),
                source,
            }
        };
        let io = |action: &'static str| {
            let host = label.clone();
            move |source| RemoteError::Io {
                host,
                action: action.into(),
                source,
            }
        };
        let header = format!("{}\n{command}", command.len());
        let mut empty = std::io::empty();
        let mut waiting_input;
        let input: Option<&mut dyn Read> = if waiting {
            let rest: &mut dyn Read = match input {
                Some(input) => input,
                None => &mut empty,
            };
            waiting_input = header.as_bytes().chain(rest);
            Some(&mut waiting_input)
        } else {
            channel.exec(command).map_err(ssh("start command"))?;
            input.map(|input| -> &mut dyn Read { input })
        };
        if let Some(input) = input {
            // While the artifact is written, a stall or a signal shuts the connection.
            if let Some(dog) = watchdog {
                dog.phase(self.stall, true);
            }
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let read = input.read(&mut buffer).map_err(io("read upload"))?;
                if read == 0 {
                    break;
                }
                // Chunks small enough that progress is seen every few hundred KB.
                for chunk in buffer[..read].chunks(256 * 1024) {
                    channel.write_all(chunk).map_err(io("upload"))?;
                    if let Some(dog) = watchdog {
                        dog.progress();
                    }
                }
            }
            channel.flush().map_err(io("upload"))?;
        }
        // Reading the output: the command may run quietly for up to the command timeout; past
        // that (and a keepalive interval of slack), nothing libssh2 does keeps the deploy waiting.
        if let Some(dog) = watchdog {
            dog.phase(
                self.command_timeout + self.keepalive.max(Duration::from_secs(5)),
                self.stop_waiting,
            );
        }
        channel.send_eof().map_err(ssh("close stdin"))?;
        // The next commands' login shells start while this one runs.
        self.start_spares();
        // While the command runs quietly (a restart, a gate on the host), reads time out every
        // keepalive interval, send a keepalive and go on, up to the command timeout of silence.
        let slice = if self.keepalive.is_zero() {
            self.command_timeout
        } else {
            self.keepalive.min(self.command_timeout)
        };
        self.session
            .set_timeout(slice.as_millis().try_into().unwrap_or(u32::MAX));
        let mut stdout = Vec::new();
        let progress = || {
            if let Some(dog) = watchdog {
                dog.progress();
            }
        };
        let read = read_with_keepalive(
            &self.session,
            channel,
            self.command_timeout,
            false,
            &progress,
        );
        let read = read.and_then(|out| {
            stdout = out;
            read_with_keepalive(
                &self.session,
                channel,
                self.command_timeout,
                true,
                &progress,
            )
        });
        self.session.set_timeout(
            self.command_timeout
                .as_millis()
                .try_into()
                .unwrap_or(u32::MAX),
        );
        let stderr = read.map_err(io("read output"))?;
        channel.wait_close().map_err(ssh("close channel"))?;
        let status = channel.exit_status().map_err(ssh("exit status"))?;
        Ok(ExecOutput {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

fn known_hosts_lookup(
    session: &ssh2::Session,
    target: &HostTarget,
    key: &[u8],
    content: &str,
) -> KnownHostsVerdict {
    let Ok(mut known) = session.known_hosts() else {
        return KnownHostsVerdict::NotFound;
    };
    // libssh2 ignores marker lines; `@revoked` was handled before, `@cert-authority` is not
    // supported, so both are left out rather than misread. `read_str` takes one line per call
    // (libssh2_knownhost_readline): feeding it the whole text would only ever see the first host.
    let mut read_any = false;
    for line in content.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        read_any |= known
            .read_str(line, ssh2::KnownHostFileKind::OpenSSH)
            .is_ok();
    }
    if !read_any {
        return KnownHostsVerdict::NotFound;
    }
    match known.check_port(&target.host, target.port, key) {
        ssh2::CheckResult::Match => KnownHostsVerdict::Match,
        ssh2::CheckResult::Mismatch => KnownHostsVerdict::Mismatch,
        ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => KnownHostsVerdict::NotFound,
    }
}

impl Remote for SshRemote {
    fn label(&self) -> &str {
        &self.label
    }

    fn tunnel(&self, port: u16) -> Result<crate::tunnel::Tunnel, String> {
        crate::tunnel::Tunnel::start(self.session.clone(), port, self.keepalive)
    }

    fn watch_interrupt(&mut self, interrupt: Option<&crate::interrupt::Interrupt>) {
        self.interrupt = interrupt.cloned();
    }

    fn stop_waiting_on_interrupt(&mut self, interrupt: &crate::interrupt::Interrupt) {
        self.interrupt = Some(interrupt.clone());
        self.stop_waiting = true;
    }

    fn start_ahead(&mut self, on: bool, idle: &str) {
        self.ahead = on;
        idle.clone_into(&mut self.idle);
    }

    fn hold(&mut self, command: &str) -> Result<Hold, RemoteError> {
        let ssh = |action: &str| {
            let host = self.label.clone();
            let action = action.to_owned();
            move |source| RemoteError::Ssh {
                host,
                action,
                source,
            }
        };
        let mut channel = self
            .session
            .channel_session()
            .map_err(ssh("open channel"))?;
        channel.exec(command).map_err(ssh("start command"))?;
        let session = self.session.clone();
        let restore = self.command_timeout;
        Ok(Hold::new(move || {
            // EOF ends the command on the host. Freeing the channel may wait on the socket: on a
            // link that died during the gate, for a few seconds, not the command timeout.
            session.set_timeout(5_000);
            let _ = channel.send_eof();
            drop(channel);
            session.set_timeout(restore.as_millis().try_into().unwrap_or(u32::MAX));
        }))
    }

    fn exec(
        &mut self,
        command: &str,
        input: Option<&mut dyn Read>,
    ) -> Result<ExecOutput, RemoteError> {
        let label = self.label.clone();
        let ssh = |action: &'static str| {
            let host = label.clone();
            move |source| RemoteError::Ssh {
                host,
                action: action.into(),
                source,
            }
        };
        let watchdog = self
            .socket
            .as_ref()
            .and_then(|socket| socket.try_clone().ok())
            .map(|socket| crate::watchdog::Watchdog::start(socket, self.interrupt.clone()));
        // Whatever failed after the watchdog shut the socket, the reason is the watchdog's.
        let fired = |error: RemoteError| match watchdog.as_ref().and_then(|w| w.fired()) {
            Some(fired) => RemoteError::Io {
                host: label.clone(),
                action: "run command".into(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, fired.to_string()),
            },
            None => error,
        };
        let (mut channel, waiting) = match self.spares.pop_front() {
            Some(channel) => (channel, true),
            None if self.ahead => (self.start_waiter().map_err(fired)?, true),
            None => (
                self.session
                    .channel_session()
                    .map_err(ssh("open channel"))
                    .map_err(fired)?,
                false,
            ),
        };
        let result = self.run_channel(&mut channel, command, input, watchdog.as_ref(), waiting);
        let lost = watchdog.as_ref().and_then(|w| w.fired()).is_some()
            || result.as_ref().is_err_and(RemoteError::is_unreachable);
        if lost {
            // The connection is gone (the watchdog shut it, or it failed under us): freeing the
            // channel (and later the session) in blocking mode would wait on the socket for the
            // whole session timeout. Nothing more goes over this connection: shut it, so every
            // later call fails at once, and a rollback or unlock reconnects.
            if let Some(socket) = &self.socket {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
            self.session.set_blocking(false);
            self.spares.clear();
        }
        drop(channel);
        result.map_err(fired)
    }
}

/// The command ran but printed nothing for the command timeout: the host answered every
/// keepalive, so this is the command's doing (a hung restart), not the network's.
#[derive(Debug)]
struct Silent(Duration);

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the command printed nothing for {}s (--command-timeout)",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for Silent {}

impl RemoteError {
    /// The host could not be reached or stopped answering (connect, handshake, a lost or stalled
    /// connection), as opposed to a command that ran on it and misbehaved (printed nothing for
    /// the command timeout).
    pub fn is_unreachable(&self) -> bool {
        match self {
            RemoteError::Io { source, .. } => {
                !source.get_ref().is_some_and(|inner| inner.is::<Silent>())
            }
            _ => true,
        }
    }
}

/// Reads a channel's stdout (or stderr) to the end; on each read timeout it sends a keepalive,
/// and gives up after `limit` without any data.
fn read_with_keepalive(
    session: &ssh2::Session,
    channel: &mut ssh2::Channel,
    limit: Duration,
    stderr: bool,
    progress: &dyn Fn(),
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    // Measured, not counted in slices: a read also returns early when a signal interrupts
    // libssh2's poll(), and that must not count as a whole slice of silence.
    let mut silent_since = std::time::Instant::now();
    loop {
        let read = if stderr {
            channel.stderr().read(&mut buffer)
        } else {
            channel.read(&mut buffer)
        };
        match read {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buffer[..n]);
                silent_since = std::time::Instant::now();
                progress();
            }
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                let silent = silent_since.elapsed();
                if silent >= limit {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        Silent(silent),
                    ));
                }
                session.keepalive_send().map_err(std::io::Error::from)?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A command left running by [`Remote::hold`]; dropping it closes the command's stdin, which
/// ends it.
pub struct Hold(Option<Box<dyn FnOnce() + Send>>);

impl Hold {
    fn new(close: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(close)))
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(close) = self.0.take() {
            close();
        }
    }
}

impl Drop for SshRemote {
    /// A login shell started ahead and never used is closed gracefully: EOF on its stdin (it
    /// exits having run nothing, [`WAITER`]) and a bounded wait for it to exit, so it is not
    /// cut off half-way through its rc files when the connection goes (one killed inside
    /// `pyenv rehash` leaves that tool's lock file behind, and every later login shell on the
    /// host waits 60 s for it).
    fn drop(&mut self) {
        if self.spares.is_empty() {
            return;
        }
        self.session
            .set_timeout(SPARE_CLOSE.as_millis().try_into().unwrap_or(u32::MAX));
        for mut spare in self.spares.drain(..) {
            let _ = spare.send_eof();
            let _ = spare.wait_close();
        }
    }
}

/// Runs commands on this machine with `sh -c` (the local transport).
#[derive(Debug, Clone)]
pub(crate) struct LocalRemote {
    label: String,
}

impl Default for LocalRemote {
    fn default() -> Self {
        Self {
            label: "local".into(),
        }
    }
}

impl Remote for LocalRemote {
    fn label(&self) -> &str {
        &self.label
    }

    fn hold(&mut self, command: &str) -> Result<Hold, RemoteError> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| RemoteError::Io {
                host: self.label.clone(),
                action: "start sh".into(),
                source,
            })?;
        Ok(Hold::new(move || {
            drop(child.stdin.take());
            let _ = child.wait();
        }))
    }

    fn exec(
        &mut self,
        command: &str,
        input: Option<&mut dyn Read>,
    ) -> Result<ExecOutput, RemoteError> {
        use std::process::{Command, Stdio};
        let io = |action: &'static str| {
            let host = self.label.clone();
            move |source| RemoteError::Io {
                host,
                action: action.into(),
                source,
            }
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("start sh"))?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let (written, out, err) = std::thread::scope(|scope| {
            let out = scope.spawn(move || {
                let mut buffer = Vec::new();
                if let Some(stdout) = stdout.as_mut() {
                    let _ = stdout.read_to_end(&mut buffer);
                }
                buffer
            });
            let err = scope.spawn(move || {
                let mut buffer = Vec::new();
                if let Some(stderr) = stderr.as_mut() {
                    let _ = stderr.read_to_end(&mut buffer);
                }
                buffer
            });
            let written = match (child.stdin.take(), input) {
                (Some(mut stdin), Some(input)) => std::io::copy(input, &mut stdin).map(drop),
                _ => Ok(()),
            };
            (
                written,
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default(),
            )
        });
        let status = child.wait().map_err(io("run sh"))?;
        written.map_err(io("upload"))?;
        let output = std::process::Output {
            status,
            stdout: out,
            stderr: err,
        };
        Ok(ExecOutput {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_specs() {
        let t = HostTarget::parse("deploy@web-1.example:2222", "root", 22).expect("ok");
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("deploy", "web-1.example", 2222)
        );
        let t = HostTarget::parse("10.0.0.5", "app", 22).expect("ok");
        assert_eq!(t.label(), "app@10.0.0.5:22");
        assert_eq!(t.known_hosts_name(), "10.0.0.5");
        let t = HostTarget::parse("[::1]:2200", "app", 22).expect("ok");
        assert_eq!(t.known_hosts_name(), "[::1]:2200");
        for bad in ["", "a@", "host:x", "ho st", "$(id)@h", "h;rm"] {
            assert!(HostTarget::parse(bad, "u", 22).is_err(), "{bad}");
        }
    }

    /// What a channel started ahead does with its stdin, through the local `bash` (the login
    /// shell sshd starts runs [`WAITER`] with `-c` just so): the command runs with the rest of
    /// stdin as its own, its exit status and both streams kept; a command cut short is never
    /// run; a channel closed unused runs nothing.
    #[test]
    fn a_waiting_shell_runs_exactly_the_command_it_was_sent() {
        let waiter = |stdin: &[u8]| {
            let mut child = std::process::Command::new("bash")
                .arg("-c")
                .arg(WAITER)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("bash");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(stdin)
                .expect("write");
            let out = child.wait_with_output().expect("wait");
            (
                out.status.code(),
                String::from_utf8(out.stdout).expect("utf-8"),
                String::from_utf8(out.stderr).expect("utf-8"),
            )
        };
        let dir = tempfile::tempdir().expect("tmp");
        let marker = dir.path().join("ran");
        let command = format!(
            "set -e; echo \"it's $((1 + 1))\"; echo warn >&2; head -c 3; echo; \
             n=0; trap 'echo trapped' EXIT; touch '{}'\n\nexit 7",
            marker.display()
        );
        let mut stdin = format!("{}\n{command}", command.len()).into_bytes();
        stdin.extend_from_slice(b"abcdef");
        let (status, stdout, stderr) = waiter(&stdin);
        assert_eq!(status, Some(7), "{stdout}{stderr}");
        assert_eq!(stdout, "it's 2\nabc\ntrapped\n");
        assert_eq!(stderr, "warn\n");
        assert!(marker.exists());

        // Cut short (the connection died mid-command): nothing runs, not even a prefix.
        std::fs::remove_file(&marker).expect("rm");
        let cut = format!("{}\n{}", command.len(), &command[..command.len() - 8]);
        let (status, stdout, stderr) = waiter(cut.as_bytes());
        assert_eq!(status, Some(255));
        assert_eq!(stdout, "");
        assert!(stderr.contains("incomplete"), "{stderr}");
        assert!(!marker.exists());

        // Started ahead and never used.
        assert_eq!(waiter(b""), (Some(0), String::new(), String::new()));
    }

    /// A shell started ahead with an idle command (the lease renewer) runs it while it waits
    /// and stops it, and waits for it, before the command runs, or before it exits unused.
    #[test]
    fn a_waiting_shell_stops_its_idle_command_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("idle.log");
        let quoted = crate::quote::q(log.to_str().expect("utf-8"));
        let idle = format!(
            "( trap 'echo stopped >> {quoted}; exit 0' TERM; echo started >> {quoted}; \
             while :; do sleep 1 & wait $!; done ) </dev/null >/dev/null 2>&1"
        );
        let run = |stdin: Option<&str>| {
            let _ = std::fs::remove_file(&log);
            let mut child = std::process::Command::new("bash")
                .arg("-c")
                .arg(waiter(&idle))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("bash");
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("started")) {
                assert!(
                    std::time::Instant::now() < until,
                    "the idle command never started"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut pipe = child.stdin.take().expect("stdin");
            if let Some(command) = stdin {
                pipe.write_all(format!("{}\n{command}", command.len()).as_bytes())
                    .expect("write");
            }
            drop(pipe);
            let out = child.wait_with_output().expect("wait");
            (
                out.status.code(),
                String::from_utf8(out.stdout).expect("utf-8"),
            )
        };
        let command = format!("cat {quoted}; exit 3");
        assert_eq!(run(Some(&command)), (Some(3), "started\nstopped\n".into()));
        assert_eq!(run(None), (Some(0), String::new()));
        assert_eq!(
            std::fs::read_to_string(&log).expect("log"),
            "started\nstopped\n"
        );
    }

    #[test]
    fn base64_matches_openssh() {
        assert_eq!(base64(b"", true), "");
        assert_eq!(base64(b"f", true), "Zg==");
        assert_eq!(base64(b"fo", false), "Zm8");
        assert_eq!(base64(b"foobar", true), "Zm9vYmFy");
    }

    #[test]
    fn unknown_key_refusal_names_fingerprint_and_line() {
        let target = HostTarget::parse("u@127.0.0.1:2222", "u", 22).expect("ok");
        let error = verify_host_key(
            &target,
            b"key",
            "ssh-ed25519",
            &HostTrust::default(),
            || KnownHostsVerdict::NotFound,
        )
        .expect_err("refused");
        let text = error.to_string();
        assert!(text.contains(&fingerprint(b"key")), "{text}");
        assert!(text.contains("[127.0.0.1]:2222 ssh-ed25519 a2V5"), "{text}");
        let pinned = HostTrust {
            fingerprints: vec![(Some("127.0.0.1:2222".into()), fingerprint(b"key"))],
            ..HostTrust::default()
        };
        verify_host_key(&target, b"key", "ssh-ed25519", &pinned, || {
            KnownHostsVerdict::NotFound
        })
        .expect("pinned");
        let error = verify_host_key(&target, b"other", "ssh-ed25519", &pinned, || {
            KnownHostsVerdict::NotFound
        })
        .expect_err("changed");
        assert!(error.to_string().contains("CHANGED"), "{error}");
        let revoked = HostTrust {
            known_hosts: "@revoked * ssh-ed25519 a2V5".into(),
            accept_any: true,
            ..HostTrust::default()
        };
        assert!(matches!(
            verify_host_key(&target, b"key", "ssh-ed25519", &revoked, || {
                KnownHostsVerdict::Match
            }),
            Err(RemoteError::RevokedHostKey { .. })
        ));
    }
}
