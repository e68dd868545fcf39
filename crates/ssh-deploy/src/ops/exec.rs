//! `ssh-deploy exec`: an ad-hoc command or script on one host or an inventory, in batches, with
//! host keys verified like every connection. Scripts and commands run with errexit (`sh -e`):
//! a failing line fails the host with its exit code (appleboy/ssh-action's most reported bug is
//! a script whose failing line still reports success). Per host: the exit code, stdout in the
//! `exec` output (capped, secrets masked), stdout and stderr in the log.
//!
//! SIGINT/SIGTERM (a cancelled step): no new batch or host starts, the wait for a running
//! command ends at once, and the command is stopped on its host over a new connection (SIGTERM
//! to its process group, SIGKILL after 5 s), or the report says it may still run; exit 130.

use std::time::Instant;

use runner_protocol::{Runner, Verdict};

use crate::error::Error;
use crate::host_run::{HostError, echo};
use crate::interrupt::Interrupt;
use crate::options::{ExecOptions, ExecWhat, HostSpec};
use crate::quote::{RemotePath, q};
use crate::remote::ExecOutput;
use crate::schedule::parallel;

/// `$0` of the command (`sh -c` takes the first word after the command as `$0`).
const ZERO: &str = "ssh-deploy-exec";

/// The remote command line for `what` in `workdir` with `args` as `$1`, `$2`, ...: every
/// value single-quoted, so no argument is split, globbed or expanded on the host. A script goes
/// on stdin (`sh -e -s`), never on the command line.
pub(crate) fn command_line(
    workdir: Option<&RemotePath>,
    what: &ExecWhat,
    args: &[String],
) -> String {
    let (cd, inner) = parts(workdir, what, args);
    format!("{cd}exec {inner}")
}

/// The `cd` prefix and the `sh -e` command of [`command_line`].
fn parts(workdir: Option<&RemotePath>, what: &ExecWhat, args: &[String]) -> (String, String) {
    let cd = workdir.map_or(String::new(), |dir| format!("cd {} && ", q(dir.as_str())));
    let args: String = args.iter().map(|a| format!(" {}", q(a))).collect();
    let inner = match what {
        ExecWhat::Command(command) => format!("sh -e -c {} {ZERO}{args}", q(command)),
        ExecWhat::Script { .. } => format!("sh -e -s --{args}"),
    };
    (cd, inner)
}

/// The host file holding the process group of the command run with `token`.
fn pid_file(token: &str) -> String {
    format!("\"${{TMPDIR:-/tmp}}\"/ssh-deploy-exec-{token}.pid")
}

/// [`command_line`] as it runs: the login shell (which sshd made a session and process group
/// leader) first records its pid, the group of everything the command starts, in a file only
/// this run knows (`set -C`: never through an existing file); the file goes when the command
/// ends. A cancelled run stops the group with [`stop_line`].
fn tracked_line(
    workdir: Option<&RemotePath>,
    what: &ExecWhat,
    args: &[String],
    token: &str,
) -> String {
    let (cd, inner) = parts(workdir, what, args);
    format!(
        "p={file}; (set -C; echo \"$$\" > \"$p\") || exit 125; {cd}{inner}; s=$?; rm -f \"$p\"; exit $s",
        file = pid_file(token),
    )
}

/// Stops the process group [`tracked_line`] recorded: SIGTERM, SIGKILL after 5 s (a member
/// that is only a zombie waiting for its reaper counts as gone; without `ps`, `kill -0` decides).
/// Prints `stopped`, `killed` or `finished` (the command had ended).
fn stop_line(token: &str) -> String {
    format!(
        "p={file}; alive() {{ if command -v ps >/dev/null 2>&1; then \
         ps -e -o pgid= -o stat= | awk -v g=\"$g\" '$1 == g && $2 !~ /^Z/ {{ f = 1 }} END {{ exit !f }}'; \
         else kill -0 -\"$g\" 2>/dev/null; fi; }}; \
         if [ -f \"$p\" ]; then g=$(cat \"$p\"); kill -TERM -\"$g\" 2>/dev/null; i=0; \
         while alive && [ \"$i\" -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
         if alive; then kill -KILL -\"$g\"; echo killed; else echo stopped; fi; \
         rm -f \"$p\"; else echo finished; fi",
        file = pid_file(token),
    )
}

/// How one host ended.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ExecReport {
    /// Host label.
    pub(crate) host: String,
    /// The command's exit code (`null` when it never ran: not reachable, or skipped).
    pub(crate) exit_code: Option<i32>,
    /// Stdout, secrets masked, at most `--max-output` bytes.
    pub(crate) stdout: String,
    /// Stdout was longer and was cut.
    pub(crate) stdout_truncated: bool,
    /// Why it did not run (connection, refused host key), or what a cancel did to it.
    pub(crate) error: Option<String>,
    /// `skipped`: an earlier batch failed.
    pub(crate) skipped: bool,
    /// Seconds on the host.
    pub(crate) seconds: f64,
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn cap(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

/// How a host's command ended.
enum Ran {
    /// It ran to its end (any exit code).
    Done(ExecOutput),
    /// It did not run or could not be followed (unreachable, refused host key).
    Failed(HostError),
    /// Cancelled: what became of the command on the host.
    Interrupted(String),
}

fn run_on(options: &ExecOptions, host: &HostSpec, interrupt: &Interrupt) -> Ran {
    if interrupt.is_set() {
        return Ran::Interrupted("not started (SIGINT/SIGTERM)".into());
    }
    let token = runner_protocol::console::random_hex(8);
    let command = tracked_line(options.workdir(host), &options.what, &options.args, &token);
    let mut run = match options.connection.open(host) {
        Ok(run) => run,
        Err(error) => return Ran::Failed(error),
    };
    run.stop_waiting_on_interrupt(interrupt);
    let mut script = match &options.what {
        ExecWhat::Script { text, .. } => Some(std::io::Cursor::new(text.as_bytes())),
        ExecWhat::Command(_) => None,
    };
    let result = run.exec_quiet(
        "exec",
        &command,
        script.as_mut().map(|s| s as &mut dyn std::io::Read),
    );
    match result {
        Ok(output) => Ran::Done(output),
        Err(error) if !interrupt.is_set() => Ran::Failed(error),
        Err(_) => {
            drop(run);
            // The wait ended, not the command: stop it over a new connection.
            let stopped = options
                .connection
                .open(host)
                .and_then(|mut run| run.exec_quiet("stop", &stop_line(&token), None));
            Ran::Interrupted(match stopped {
                Ok(output) if output.status == 0 => match output.stdout.trim() {
                    "finished" => "interrupted; the command had already ended".to_owned(),
                    "killed" => {
                        "interrupted; the command was killed (SIGKILL: SIGTERM did not end it \
                         within 5s)"
                            .to_owned()
                    }
                    _ => "interrupted; the command was stopped (SIGTERM to its process group)"
                        .to_owned(),
                },
                Ok(output) => format!(
                    "interrupted; stopping the command failed (exit {}): {}; it may still run \
                     (its process group is in {})",
                    output.status,
                    output.stderr.trim(),
                    pid_file(&token)
                ),
                Err(error) => format!(
                    "interrupted; the command may still run: {error} (its process group is in {})",
                    pid_file(&token)
                ),
            })
        }
    }
}

/// `exec`.
pub(crate) fn exec(options: &ExecOptions, runner: &mut Runner) -> Result<Verdict, Error> {
    let hosts = &options.connection.hosts;
    let command =
        |host: &HostSpec| command_line(options.workdir(host), &options.what, &options.args);
    if options.dry_run {
        let what = match &options.what {
            ExecWhat::Command(_) => "command".to_owned(),
            ExecWhat::Script { path, .. } => format!("script {} on stdin", path.display()),
        };
        runner.console().log(&format!(
            "plan: exec ({what}, errexit) on {} host(s) in {} batch(es) of at most {} at once; \
             a batch with a failed host stops the run",
            hosts.len(),
            options.batches.len(),
            options.max_parallel
        ));
        for (number, batch) in options.batches.iter().enumerate() {
            for &index in batch {
                runner.console().log(&format!(
                    "  batch {}: [{}] {}",
                    number + 1,
                    hosts[index].label(),
                    command(&hosts[index])
                ));
            }
        }
        runner.set_output("result", "dry-run")?;
        return Ok(Verdict::Success);
    }
    let console = runner.console().clone();
    let interrupt = Interrupt::default();
    interrupt.listen_saying(
        &console,
        "stopping the running commands on their hosts; no other host or batch starts",
    );
    let mut reports: Vec<Option<ExecReport>> = vec![None; hosts.len()];
    let mut stopped = false;
    let mut interrupted: Vec<String> = Vec::new();
    for (number, batch) in options.batches.iter().enumerate() {
        if stopped || interrupt.is_set() {
            break;
        }
        let _group = runner.group(&format!(
            "exec batch {}/{}: {}",
            number + 1,
            options.batches.len(),
            batch
                .iter()
                .map(|&i| hosts[i].label())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let results = parallel(batch.clone(), options.max_parallel, |index| {
            let started = Instant::now();
            let result = run_on(options, &hosts[index], &interrupt);
            (index, result, started.elapsed().as_secs_f64())
        });
        for (index, result, seconds) in results {
            let host = hosts[index].label();
            let report = match result {
                Ran::Interrupted(what) => {
                    console.warn(&format!("[{host}] {what}"));
                    interrupted.push(format!("{host}: {what}"));
                    ExecReport {
                        host,
                        exit_code: None,
                        stdout: String::new(),
                        stdout_truncated: false,
                        error: Some(what),
                        skipped: false,
                        seconds,
                    }
                }
                Ran::Done(output) => {
                    echo(&console, &host, &output);
                    let (stdout, truncated) =
                        cap(&console.masker().scrub(&output.stdout), options.max_output);
                    if truncated {
                        console.warn(&format!(
                            "{host}: stdout is longer than --max-output ({} bytes); the `exec` output holds the first {} bytes",
                            output.stdout.len(),
                            options.max_output
                        ));
                    }
                    console.log(&format!("[{host}] exit code {}", output.status));
                    ExecReport {
                        host,
                        exit_code: Some(output.status),
                        stdout,
                        stdout_truncated: truncated,
                        error: None,
                        skipped: false,
                        seconds,
                    }
                }
                Ran::Failed(error) => ExecReport {
                    host,
                    exit_code: None,
                    stdout: String::new(),
                    stdout_truncated: false,
                    error: Some(error.to_string()),
                    skipped: false,
                    seconds,
                },
            };
            stopped |= report.exit_code != Some(0);
            reports[index] = Some(report);
        }
    }
    let reports: Vec<ExecReport> = reports
        .into_iter()
        .enumerate()
        .map(|(index, report)| {
            report.unwrap_or_else(|| ExecReport {
                host: hosts[index].label(),
                exit_code: None,
                stdout: String::new(),
                stdout_truncated: false,
                error: None,
                skipped: true,
                seconds: 0.0,
            })
        })
        .collect();
    runner.set_output("exec", serde_json::to_value(&reports).unwrap_or_default())?;
    let summary = runner.summary();
    summary.heading(3, "ssh-deploy exec");
    summary.table(
        &["host", "exit code", "time", "error"],
        reports.iter().map(|r| {
            vec![
                r.host.clone(),
                match (r.exit_code, r.skipped) {
                    (Some(code), _) => code.to_string(),
                    (None, true) => "skipped".into(),
                    (None, false) => "-".into(),
                },
                format!("{:.1}s", r.seconds),
                r.error.clone().unwrap_or_default(),
            ]
        }),
    );
    if interrupt.is_set() {
        runner.set_output("result", "interrupted")?;
        let finished = reports
            .iter()
            .filter(|r| r.exit_code.is_some())
            .map(|r| format!("{} (exit {})", r.host, r.exit_code.unwrap_or_default()))
            .collect::<Vec<_>>();
        let mut message = String::from("interrupted (SIGINT/SIGTERM)");
        if !interrupted.is_empty() {
            message.push_str(&format!("; {}", interrupted.join("; ")));
        }
        if !finished.is_empty() {
            message.push_str(&format!("; finished before: {}", finished.join(", ")));
        }
        let skipped = reports.iter().filter(|r| r.skipped).count();
        if skipped > 0 {
            message.push_str(&format!("; {skipped} host(s) not started"));
        }
        return Ok(Verdict::Interrupted(message));
    }
    let unreachable: Vec<HostError> = reports
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|message| HostError {
                host: r.host.clone(),
                stage: "exec".into(),
                message: message.clone(),
                infrastructure: true,
            })
        })
        .collect();
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match r.exit_code {
            Some(code) if code != 0 => Some(format!("{} (exit {code})", r.host)),
            _ => None,
        })
        .collect();
    let result = if unreachable.is_empty() && failed.is_empty() {
        "success"
    } else {
        "failed"
    };
    runner.set_output("result", result)?;
    if !unreachable.is_empty() {
        return Err(Error::Hosts(unreachable));
    }
    if !failed.is_empty() {
        return Ok(Verdict::Failed(format!(
            "the command failed on {}",
            failed.join(", ")
        )));
    }
    Ok(Verdict::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the host's `sh` makes of the command line: `$1`, `$2`, ... exactly as given.
    #[test]
    fn hostile_arguments_reach_the_command_as_single_words() {
        let hostile = [
            "a b",
            "it's",
            "$(touch pwned)",
            "`touch pwned`",
            "; touch pwned",
            "\"quoted\"",
            "*",
            "$HOME",
            "--",
            "-e",
            "back\\slash",
            "line\nbreak",
        ]
        .map(str::to_owned);
        let dir = tempfile::tempdir().expect("tempdir");
        let workdir = RemotePath::parse(dir.path().to_str().expect("utf-8")).expect("path");
        let what = ExecWhat::Command("for a in \"$@\"; do printf '%s\\0' \"$a\"; done".into());
        let line = command_line(Some(&workdir), &what, &hostile);
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh");
        assert!(output.status.success(), "{output:?}");
        let words: Vec<String> = output
            .stdout
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert_eq!(words, hostile);
        assert!(!dir.path().join("pwned").exists(), "nothing ran");
    }

    #[test]
    fn a_failing_line_fails_the_script_and_nothing_after_it_runs() {
        let what = ExecWhat::Script {
            path: "s.sh".into(),
            text: "echo one\nfalse\necho two\n".into(),
        };
        let line = command_line(None, &what, &[]);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        if let (ExecWhat::Script { text, .. }, Some(mut stdin)) = (&what, child.stdin.take()) {
            std::io::Write::write_all(&mut stdin, text.as_bytes()).expect("write");
        }
        let output = child.wait_with_output().expect("wait");
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "one\n");
    }

    #[test]
    fn stdout_is_cut_on_a_character_boundary() {
        assert_eq!(cap("abc", 5), ("abc".to_owned(), false));
        assert_eq!(cap("aé", 2), ("a".to_owned(), true));
    }
}
