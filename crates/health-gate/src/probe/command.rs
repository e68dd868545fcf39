//! Command probe: run a program (argv, no shell) or a shell line (`sh -c`, for builtins such as
//! `command -v bwrap`), judge its exit code and output. The whole process group is killed when
//! the attempt times out or is cancelled, so a hung command cannot leave children behind.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::config::{CommandSpec, Program};
use crate::failure::{Failure, FailureKind};

use super::Sample;
use crate::expect::text::excerpt;

/// Output kept per stream; the rest is read and dropped so the child never blocks on a pipe.
pub(crate) const OUTPUT_CAP: usize = 10 * 1024;

/// A command probe.
#[derive(Debug)]
pub(crate) struct CommandProbe {
    spec: CommandSpec,
    timeout: Duration,
}

/// Kills the process group when dropped (attempt cancelled or timed out).
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.take() {
            if let Ok(pid) = i32::try_from(pid) {
                // The group may already be gone; nothing to report then.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

async fn read_capped(mut stream: impl tokio::io::AsyncRead + Unpin) -> (String, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

impl CommandProbe {
    /// A probe with the attempt timeout.
    pub(crate) fn new(spec: &CommandSpec, timeout: Duration) -> Self {
        Self {
            spec: spec.clone(),
            timeout,
        }
    }

    /// Runs the command once.
    pub(crate) async fn attempt(&self) -> Result<Sample, Failure> {
        let start = Instant::now();
        let mut command = match &self.spec.program {
            Program::Argv(argv) => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
            Program::Shell(line) => {
                let mut command = tokio::process::Command::new("sh");
                command.arg("-c").arg(line);
                command
            }
        };
        command
            .envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        if let Some(cwd) = &self.spec.cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().map_err(|e| {
            Failure::new(
                FailureKind::CommandStart,
                format!("could not start `{}`: {e}", self.spec.display()),
            )
        })?;
        let mut killer = GroupKiller(child.id());
        let stdout = child.stdout.take().map(read_capped);
        let stderr = child.stderr.take().map(read_capped);
        let run = async {
            let (status, out, err) = tokio::join!(
                child.wait(),
                async {
                    match stdout {
                        Some(f) => f.await,
                        None => (String::new(), false),
                    }
                },
                async {
                    match stderr {
                        Some(f) => f.await,
                        None => (String::new(), false),
                    }
                }
            );
            (status, out, err)
        };
        let (status, (out, out_cut), (err, err_cut)) =
            match tokio::time::timeout(self.timeout, run).await {
                Ok(result) => result,
                Err(_) => {
                    drop(killer);
                    return Err(Failure::new(
                        FailureKind::Timeout,
                        format!(
                            "`{}` did not finish within {}; killed with its process group",
                            self.spec.display(),
                            humantime::format_duration(self.timeout)
                        ),
                    ));
                }
            };
        // Exited: nothing left to kill (and the pid may be reused).
        killer.0 = None;
        let status = status
            .map_err(|e| Failure::new(FailureKind::Io, format!("waiting for the command: {e}")))?;
        let shown = |text: &str, cut: bool| {
            let mut text = excerpt(text.trim_end(), 2000);
            if cut {
                text.push_str(" [output capped at 10 KiB]");
            }
            text
        };
        let code = status.code();
        if !code.is_some_and(|c| self.spec.exit_codes.contains(&c)) {
            let how = match code {
                Some(code) => format!("exited {code}"),
                None => "was killed by a signal".to_owned(),
            };
            return Err(Failure::new(
                FailureKind::ExitStatus,
                format!(
                    "`{}` {how} (accepted: {:?}); stdout: {}; stderr: {}",
                    self.spec.display(),
                    self.spec.exit_codes,
                    shown(&out, out_cut),
                    shown(&err, err_cut)
                ),
            ));
        }
        for (name, expect, text) in [
            ("stdout", &self.spec.stdout, &out),
            ("stderr", &self.spec.stderr, &err),
        ] {
            if let Err(reason) = expect.check(text) {
                return Err(Failure::new(
                    FailureKind::Assertion,
                    format!("{name} {reason}: {}", shown(text, false)),
                ));
            }
        }
        Ok(Sample {
            latency: start.elapsed(),
        })
    }
}
