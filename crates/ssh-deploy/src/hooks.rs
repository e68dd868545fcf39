//! Deploy hooks (issue #22, point 2) and the migration command (point 1): commands run at fixed
//! points of a deploy, on the runner or on the hosts, with the release, the previous release,
//! the host, the strategy and the result in the environment.
//!
//! `--hook 'EVENT[@runner|@hosts]=COMMAND'`, EVENT one of pre-deploy, pre-switch, post-switch,
//! post-deploy, on-rollback. A failing pre-* hook stops the deploy (on that host: nothing is
//! switched there); a failing post-* or on-rollback hook is a warning, or fails the step with
//! `--hooks-strict`. `--migrate COMMAND` runs in the new release directory after the unpack and
//! before the switch, on the first host or on each (`--migrate-on`); a non-zero exit stops the
//! deploy with nothing switched on that host.

use std::process::Stdio;

use crate::host_run::{HostContext, HostError, HostRun};
use crate::quote::{ReleaseId, q};

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Before anything: once on the runner, or on each host once its lock is held.
    PreDeploy,
    /// After the unpack, before `current` (or the proxy) is switched.
    PreSwitch,
    /// After the switch and the restarts, before the gate.
    PostSwitch,
    /// After the deploy: once on the runner (any result), or on each host that kept the release.
    PostDeploy,
    /// After a rollback: once on the runner, or on each host that was put back.
    OnRollback,
}

impl Event {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pre-deploy" => Event::PreDeploy,
            "pre-switch" => Event::PreSwitch,
            "post-switch" => Event::PostSwitch,
            "post-deploy" => Event::PostDeploy,
            "on-rollback" => Event::OnRollback,
            _ => return None,
        })
    }

    /// The name, as in `--hook`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::PreDeploy => "pre-deploy",
            Event::PreSwitch => "pre-switch",
            Event::PostSwitch => "post-switch",
            Event::PostDeploy => "post-deploy",
            Event::OnRollback => "on-rollback",
        }
    }

    /// A failure stops the deploy (pre-*), rather than being reported.
    pub(crate) fn stops(self) -> bool {
        matches!(self, Event::PreDeploy | Event::PreSwitch)
    }
}

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// On the runner, `sh -e -c` in the working directory.
    Runner,
    /// On each host, `sh -e -c` in the release directory (the deploy root before the unpack).
    Hosts,
}

/// One `--hook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    /// When.
    pub(crate) event: Event,
    /// Where.
    pub(crate) side: Side,
    /// The shell command.
    pub(crate) command: String,
}

impl Hook {
    /// Parses `EVENT[@runner|@hosts]=COMMAND`.
    pub(crate) fn parse(line: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "--hook `{line}` must be `EVENT[@runner|@hosts]=COMMAND`, EVENT one of \
                 pre-deploy, pre-switch, post-switch, post-deploy, on-rollback \
                 (e.g. `pre-switch@hosts=./bin/check`)"
            )
        };
        let (head, command) = line.split_once('=').ok_or_else(usage)?;
        let (event, side) = match head.trim().split_once('@') {
            Some((event, "runner")) => (event, Side::Runner),
            Some((event, "hosts")) => (event, Side::Hosts),
            Some(_) => return Err(usage()),
            None => (head.trim(), Side::Runner),
        };
        let event = Event::parse(event.trim()).ok_or_else(usage)?;
        if command.trim().is_empty() {
            return Err(usage());
        }
        Ok(Self {
            event,
            side,
            command: command.trim().to_owned(),
        })
    }
}

/// On which hosts the migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MigrateOn {
    /// The first host of the deploy (a shared database is migrated once).
    First,
    /// Every host (per-host state).
    Each,
}

/// The validated hooks of a deploy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hooks {
    /// In the order given.
    pub(crate) hooks: Vec<Hook>,
    /// `--migrate`: the command and where it runs.
    pub(crate) migrate: Option<(String, MigrateOn)>,
    /// A failing post-* or on-rollback hook fails the step.
    pub(crate) strict: bool,
}

impl Hooks {
    /// The hooks for `event` on `side`.
    pub(crate) fn at(&self, event: Event, side: Side) -> impl Iterator<Item = &Hook> {
        self.hooks
            .iter()
            .filter(move |h| h.event == event && h.side == side)
    }

    /// Any host-side hook, or a migration, runs between the unpack and the switch.
    pub(crate) fn before_switch(&self) -> bool {
        self.migrate.is_some() || self.hooks.iter().any(|h| h.event == Event::PreSwitch)
    }

    /// For the plan: one line per hook and the migration.
    pub(crate) fn plan(&self) -> String {
        let mut text = String::new();
        if let Some((command, on)) = &self.migrate {
            text.push_str(&format!(
                "migration: `{command}` in the new release directory on {}, after the unpack and \
                 before the switch; a non-zero exit stops the deploy with nothing switched there\n",
                match on {
                    MigrateOn::First => "the first host",
                    MigrateOn::Each => "each host",
                }
            ));
        }
        for hook in &self.hooks {
            text.push_str(&format!(
                "hook {} on {}: `{}` ({})\n",
                hook.event.name(),
                match hook.side {
                    Side::Runner => "the runner",
                    Side::Hosts => "each host",
                },
                hook.command,
                if hook.event.stops() {
                    "a failure stops the deploy"
                } else if self.strict {
                    "a failure fails the step (--hooks-strict)"
                } else {
                    "a failure is a warning"
                }
            ));
        }
        text
    }
}

/// What a hook is told, as `SSH_DEPLOY_*` environment variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct HookEnv {
    /// The event.
    pub(crate) event: String,
    /// The release being deployed.
    pub(crate) release: String,
    /// The release that was current (per host; empty on the runner or on a first deploy).
    pub(crate) previous: String,
    /// The host's name (empty for runner hooks that run once).
    pub(crate) host: String,
    /// `symlink`, `blue-green` or `compose`.
    pub(crate) strategy: String,
    /// post-deploy, on-rollback: the result (`success`, `rolled-back`, ...); else empty.
    pub(crate) result: String,
}

impl HookEnv {
    pub(crate) fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            ("SSH_DEPLOY_HOOK", &self.event),
            ("SSH_DEPLOY_RELEASE", &self.release),
            ("SSH_DEPLOY_PREVIOUS_RELEASE", &self.previous),
            ("SSH_DEPLOY_HOST", &self.host),
            ("SSH_DEPLOY_STRATEGY", &self.strategy),
            ("SSH_DEPLOY_RESULT", &self.result),
        ]
    }

    /// For a host hook: `previous` and `host` filled in.
    pub(crate) fn on_host(&self, previous: Option<&ReleaseId>, host: &str) -> Self {
        Self {
            previous: previous.map(ToString::to_string).unwrap_or_default(),
            host: host.to_owned(),
            ..self.clone()
        }
    }

    /// The same, for `event`.
    pub(crate) fn at(&self, event: &str) -> Self {
        Self {
            event: event.to_owned(),
            ..self.clone()
        }
    }
}

/// The remote command line of a host hook: `cd` into `dir`, the variables exported (each value
/// single-quoted), then `sh -e -c COMMAND`.
pub(crate) fn host_command(dir: &str, env: &HookEnv, command: &str) -> String {
    let exports: String = env
        .pairs()
        .iter()
        .map(|(name, value)| format!(" {name}={}", q(value)))
        .collect();
    format!("cd {} && env{exports} sh -e -c {}", q(dir), q(command))
}

/// Runs a runner hook with `sh -e -c`; `Ok` with its output, `Err` when it could not start or
/// exited non-zero (the text says which, with its last lines).
pub(crate) fn run_on_runner(command: &str, env: &HookEnv) -> Result<String, String> {
    let mut process = std::process::Command::new("sh");
    process
        .arg("-e")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env.pairs() {
        process.env(name, value);
    }
    let output = process
        .output()
        .map_err(|e| format!("cannot start `sh`: {e}"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "exited with {}: {}",
            output
                .status
                .code()
                .map_or_else(|| "a signal".to_owned(), |c| format!("status {c}")),
            runner_protocol::console::visible_controls(crate::host_run::last_lines(text.trim(), 5))
        ))
    }
}

/// Runs the hooks of a per-host `event` for the host of `run`: runner hooks on the runner (with
/// this host in `SSH_DEPLOY_HOST`), host hooks on the host in `dir`. The first failure is the
/// error (stage `hook EVENT`); the caller decides whether it stops the deploy.
pub(crate) fn run_for_host(
    hooks: &Hooks,
    event: Event,
    run: &mut HostRun,
    context: &HostContext<'_>,
    env: &HookEnv,
    dir: &str,
) -> Result<(), HostError> {
    let stage = format!("hook {}", event.name());
    for hook in hooks.hooks.iter().filter(|h| h.event == event) {
        match hook.side {
            Side::Hosts => {
                run.step(
                    context,
                    &stage,
                    &host_command(dir, env, &hook.command),
                    None,
                )?;
            }
            Side::Runner => {
                let output = run_on_runner(&hook.command, env).map_err(|message| HostError {
                    host: run.label().to_owned(),
                    stage: format!("{stage} (runner)"),
                    message,
                    infrastructure: false,
                })?;
                crate::host_run::echo(
                    context.console,
                    run.label(),
                    &crate::remote::ExecOutput {
                        status: 0,
                        stdout: output,
                        stderr: String::new(),
                    },
                );
            }
        }
    }
    Ok(())
}

/// Runs a per-host hook whose failure is reported, not fatal: a warning (with `--hooks-strict`
/// the error, so the caller fails the host).
pub(crate) fn report_for_host(
    hooks: &Hooks,
    event: Event,
    run: &mut HostRun,
    context: &HostContext<'_>,
    env: &HookEnv,
    dir: &str,
) -> Result<(), HostError> {
    match run_for_host(hooks, event, run, context, env, dir) {
        Err(error) if hooks.strict => Err(error),
        Err(error) => {
            context.console.warn(&error.to_string());
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::RemotePath;

    #[test]
    fn hooks_parse_with_their_side_and_refuse_what_is_not_one() {
        assert_eq!(
            Hook::parse("pre-switch@hosts=./bin/check --fast").expect("valid"),
            Hook {
                event: Event::PreSwitch,
                side: Side::Hosts,
                command: "./bin/check --fast".into()
            }
        );
        assert_eq!(
            Hook::parse("post-deploy=curl -d x=1 https://chat")
                .expect("valid")
                .side,
            Side::Runner
        );
        for bad in ["pre-build=x", "pre-deploy@moon=x", "pre-deploy=", "x"] {
            assert!(Hook::parse(bad).is_err(), "{bad}");
        }
    }

    /// A host hook's command line through a real `sh`: every value arrives as it was given.
    #[test]
    fn host_hook_values_are_quoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = RemotePath::parse(dir.path().to_str().expect("utf-8")).expect("path");
        let env = HookEnv {
            event: "pre-switch".into(),
            release: "v1".into(),
            previous: "$(touch pwned)".into(),
            host: "it's; touch pwned".into(),
            strategy: "symlink".into(),
            result: String::new(),
        };
        let line = host_command(
            path.as_str(),
            &env,
            "printf '%s|%s|%s' \"$SSH_DEPLOY_PREVIOUS_RELEASE\" \"$SSH_DEPLOY_HOST\" \"$(pwd)\"",
        );
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("$(touch pwned)|it's; touch pwned|{}", dir.path().display())
        );
        assert!(!dir.path().join("pwned").exists());
    }

    #[test]
    fn a_runner_hook_gets_the_environment_and_a_failing_line_fails_it() {
        let env = HookEnv {
            event: "post-deploy".into(),
            release: "v2".into(),
            result: "rolled-back".into(),
            ..HookEnv::default()
        };
        assert_eq!(
            run_on_runner("echo \"$SSH_DEPLOY_RELEASE $SSH_DEPLOY_RESULT\"", &env),
            Ok("v2 rolled-back\n".into())
        );
        let failed = run_on_runner("echo before; false; echo after", &env).expect_err("fails");
        assert!(
            failed.contains("status 1") && failed.contains("before"),
            "{failed}"
        );
        assert!(!failed.contains("after"), "{failed}");
    }
}
