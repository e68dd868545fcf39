//! Hooks and the migration on compose hosts (issue 22). Compose hosts have no release
//! directory: host hooks and the migration run in the compose project directory, with the
//! deploy file's `remote_env` exported, the `SSH_DEPLOY_*` variables of every strategy, and
//! `COMPOSE_PROJECT_NAME` / `COMPOSE_FILE` set so `docker compose run --rm <service> CMD`
//! targets the project ([`Commands::host_hook`]).
//!
//! When they run on one host: pre-deploy@hosts first in the first command (before the pulls;
//! a failure changes nothing); the migration (`--migrate`, on the first host or each) and
//! pre-switch@hosts after the env files are written and `config --quiet` passed, before the
//! first service is drained or recreated, so `compose run` uses the new images and env
//! files (a failure restores the env files and image tags: no service was touched); runner
//! pre-switch hooks at the same point; post-switch after the last service's `up`, gate and
//! undrain (a failure is a warning, or with `--hooks-strict` rolls the host back like a failed
//! gate); post-deploy@hosts after success and on-rollback@hosts after a rollback (a failure
//! is a warning). Runner pre-deploy, post-deploy and on-rollback hooks run once around the
//! whole deploy ([`crate::ops::deploy`]).

use crate::hooks::{Event, HookEnv, Hooks, MigrateOn, Side};

use super::chain::Part;
use super::plan::{Around, Commands, HOST};

/// The hooks and migration of one host.
pub(crate) struct Lifecycle<'a> {
    hooks: &'a Hooks,
    env: HookEnv,
    migrate: bool,
}

impl<'a> Lifecycle<'a> {
    /// For the host `host` (its name), the `index`-th of the deploy.
    pub(crate) fn new(hooks: &'a Hooks, release: &str, host: &str, index: usize) -> Self {
        let migrate = match &hooks.migrate {
            Some((_, MigrateOn::Each)) => true,
            Some((_, MigrateOn::First)) => index == 0,
            None => false,
        };
        Self {
            hooks,
            env: HookEnv {
                release: release.to_owned(),
                host: host.to_owned(),
                strategy: "compose".into(),
                ..HookEnv::default()
            },
            migrate,
        }
    }

    /// The variables a hook of `event` gets.
    pub(crate) fn env(&self, event: Event, result: &str) -> HookEnv {
        HookEnv {
            result: result.to_owned(),
            ..self.env.at(event.name())
        }
    }

    /// The host hooks of `event`, as parts.
    pub(crate) fn parts(&self, commands: &Commands<'_>, event: Event, result: &str) -> Vec<Part> {
        let env = self.env(event, result);
        self.hooks
            .at(event, Side::Hosts)
            .map(|hook| Part {
                title: format!("hook {}", event.name()),
                service: HOST.to_owned(),
                action: format!("hook {}", event.name()),
                command: commands.host_hook(&env, &hook.command),
                touches: None,
            })
            .collect()
    }

    /// What runs around the `up`s: the migration and pre-switch, post-switch.
    pub(crate) fn around(&self, commands: &Commands<'_>) -> Around {
        let mut before_up = Vec::new();
        if let (true, Some((command, _))) = (self.migrate, &self.hooks.migrate) {
            before_up.push(Part {
                title: "migrate".into(),
                service: HOST.to_owned(),
                action: "migrate".into(),
                command: commands.host_hook(&self.env.at("migrate"), command),
                touches: None,
            });
        }
        before_up.extend(self.parts(commands, Event::PreSwitch, ""));
        Around {
            before_up,
            runner_before_up: self.hooks.at(Event::PreSwitch, Side::Runner).count() > 0,
            after_up: self.parts(commands, Event::PostSwitch, ""),
            runner_after_up: self.hooks.at(Event::PostSwitch, Side::Runner).count() > 0,
        }
    }

    /// Runs the runner's hooks of `event` for this host; the output of each, or the first
    /// failure.
    pub(crate) fn on_runner(&self, event: Event) -> Result<Vec<String>, String> {
        let env = self.env(event, "");
        self.hooks
            .at(event, Side::Runner)
            .map(|hook| {
                crate::hooks::run_on_runner(&hook.command, &env)
                    .map_err(|e| format!("the {} hook `{}` {e}", event.name(), hook.command))
            })
            .collect()
    }
}

/// The plan's lines for the hooks and the migration of a compose deploy.
pub(crate) fn plan(hooks: &Hooks) -> String {
    let mut text = String::new();
    if let Some((command, on)) = &hooks.migrate {
        text.push_str(&format!(
            "migration: `{command}` in the compose project dir on {}, after the env files are \
             written and `config --quiet` passed, before any service is drained or recreated \
             (COMPOSE_PROJECT_NAME and COMPOSE_FILE set: `docker compose run --rm SERVICE CMD` \
             runs the new image); a non-zero exit restores the env files and image tags with \
             no service touched\n",
            match on {
                MigrateOn::First => "the first host (alone in the first batch)",
                MigrateOn::Each => "each host",
            }
        ));
    }
    for hook in &hooks.hooks {
        let (side, when) = match (hook.side, hook.event) {
            (Side::Runner, Event::PreDeploy | Event::PostDeploy | Event::OnRollback) => {
                ("the runner", "once for the deploy")
            }
            (Side::Runner, _) => ("the runner", "for each host"),
            (Side::Hosts, _) => ("each host", "in the compose project dir"),
        };
        let failure = match hook.event {
            Event::PreDeploy | Event::PreSwitch => "a failure stops the deploy",
            Event::PostSwitch if hooks.strict => "a failure rolls the host back (--hooks-strict)",
            Event::PostDeploy | Event::OnRollback if hooks.strict && hook.side == Side::Runner => {
                "a failure fails the step (--hooks-strict)"
            }
            _ => "a failure is a warning",
        };
        text.push_str(&format!(
            "hook {} on {side} ({when}): `{}` ({failure})\n",
            hook.event.name(),
            hook.command,
        ));
    }
    text
}
