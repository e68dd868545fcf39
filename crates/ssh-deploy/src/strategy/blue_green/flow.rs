//! The blue-green run: per host the sequence in the parent module's docs, hosts one at a time
//! (or, with `--schedule`, the schedule's batches, a batch's hosts in parallel), a failure
//! budget across the fleet (`--max-failed`), and the `--dry-run` plan spelled from the same
//! command functions.

use std::time::{Duration, Instant};

use runner_protocol::{Runner, Verdict};

use super::{BlueGreen, State};
use crate::error::Error;
use crate::hooks::{self, Event, HookEnv, Hooks, MigrateOn, Side};
use crate::host_run::{HostContext, HostError, HostRun};
use crate::options::{DeployOptions, HostSpec};
use crate::proxy::{DrainReport, Slot, Target, drain_token};
use crate::report::HostResult;
use crate::rollout::{FleetOutcome, Rollout};

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// What it does.
    pub title: String,
    /// The exact command (`runner` for steps run from the runner).
    pub command: String,
}

/// The per-host plan for `--dry-run`, as it runs when `live` is the live slot (the real run
/// reads it from the state file).
pub(crate) fn plan(options: &DeployOptions, config: &BlueGreen, live: Option<Slot>) -> Vec<Step> {
    let layout = &options.connection.layout;
    let settings = &options.settings;
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
    step(
        "lock + status",
        layout.lock_and_status(token, &settings.who, &settings.run, Some(sha)),
    );
    step("read live slot", config.read_state(layout));
    let stage = crate::plan::stage_step(options, layout, false);
    step(&stage.title, stage.command);
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
    if settings.gate.is_some() {
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
    let finish = crate::plan::finish_step(layout, release, sha, &settings.who);
    step(&finish.title, finish.command);
    steps
}

/// The dry-run text.
pub(crate) fn render(options: &DeployOptions, config: &BlueGreen) -> String {
    let hosts = &options.connection.hosts;
    let batches = batches(options);
    let how = match &options.schedule {
        Some(_) => format!(
            "in {} batch(es), a batch's hosts in parallel (at most {} at once)",
            batches.len(),
            options.max_parallel
        ),
        None => "one host at a time".to_owned(),
    };
    let mut text = format!(
        "plan: blue-green release {} of `{}` behind {} (blue :{}, green :{}) to {} host(s), {how}; \
         shown for a host whose live slot is blue (the idle slot is read from the host's state file)\n",
        options.release,
        config.service,
        config.proxy.name(),
        config.blue_port,
        config.green_port,
        hosts.len(),
    );
    text.push_str(&options.settings.lock_plan());
    if let Some(schedule) = &options.schedule {
        let sizes: Vec<String> = batches.iter().map(|b| b.len().to_string()).collect();
        text.push_str(&format!(
            "schedule: {schedule} (--schedule) -> batches of {} host(s)\n",
            sizes.join(", ")
        ));
        for (number, batch) in batches.iter().enumerate() {
            let names: Vec<String> = batch.iter().map(|&i| hosts[i].label()).collect();
            text.push_str(&format!(
                "  batch {}/{}: {}\n",
                number + 1,
                batches.len(),
                names.join(", ")
            ));
        }
    }
    text.push_str(&format!(
        "failure budget: {}; a failed host is left on (or switched back to) its previous slot\n",
        options.budget.describe(hosts.len())
    ));
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
    context: &'a HostContext<'a>,
    options: &'a DeployOptions,
    config: &'a BlueGreen,
    host: &'a HostSpec,
    /// The host's place in the deploy (`--migrate-on first` runs on host 0).
    index: usize,
    token: String,
}

impl HostFlow<'_> {
    /// Records the phase `name` from `start` until now (the summary's timeline).
    fn mark(&mut self, name: &'static str, start: Instant) {
        self.run.phases.push(crate::host_run::Phase {
            name,
            start,
            end: Instant::now(),
        });
    }

    fn log(&self, text: &str) {
        self.context
            .console
            .log(&format!("[{}] {text}", self.run.label()));
    }

    fn step(&mut self, stage: &str, command: &str) -> Result<String, HostError> {
        self.run
            .step(self.context, stage, command, None)
            .map(|output| output.stdout)
    }

    fn gate(&self, text: &str, target: Target, stage: &str) -> Result<(), HostError> {
        let text = text
            .replace("{port}", &target.port.to_string())
            .replace("{slot}", target.slot.name());
        let interrupt = crate::interrupt::Interrupt::default();
        self.run
            .run_gate_text(&text, &self.host.name(), &interrupt)
            .map_err(|message| HostError {
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
            self.context.console.warn(&format!(
                "{}: slot {} did not drain within {}s; still pinned: {}",
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
        let (layout, config, options) = (self.context.layout, self.config, self.options);
        self.run
            .lock_and_read_status(self.context, Some(&options.sha256))?;
        let env = self.hook_env(Event::PreDeploy);
        let root = layout.root().as_str().to_owned();
        let on_hosts = Hooks {
            hooks: options
                .hooks
                .at(Event::PreDeploy, Side::Hosts)
                .cloned()
                .collect(),
            ..Hooks::default()
        };
        hooks::run_for_host(
            &on_hosts,
            Event::PreDeploy,
            self.run,
            self.context,
            &env,
            &root,
        )?;
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
            self.context,
            &options.artifact,
            &options.sha256,
            &options.release,
            &options.shared_paths,
        )?;
        self.before_switch()?;
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
        let gate_start = Instant::now();
        let started = (|| {
            self.step(
                &format!("start slot {}", new.slot),
                &config.start(layout, new, &options.release),
            )?;
            if let Some(command) = config.health(new) {
                self.step(&format!("health of slot {}", new.slot), &command)?;
            }
            if let Some(text) = self.context.gate {
                self.gate(text, new, &format!("gate slot {}", new.slot))?;
            }
            Ok(())
        })();
        self.mark("start + gate", gate_start);
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

    fn hook_env(&self, event: Event) -> HookEnv {
        HookEnv {
            event: event.name().to_owned(),
            release: self.options.release.to_string(),
            strategy: "blue-green".to_owned(),
            ..HookEnv::default()
        }
        .on_host(self.run.previous.as_ref(), &self.host.name())
    }

    /// The migration (on the first host or each) and the pre-switch hooks, in the new release
    /// directory, before the new slot is linked and started: nothing the proxy routes to has
    /// changed yet.
    fn before_switch(&mut self) -> Result<(), HostError> {
        let hooks = &self.options.hooks;
        let dir = self
            .context
            .layout
            .root()
            .join(&format!("releases/{}", self.options.release));
        if let Some((command, on)) = &hooks.migrate {
            if *on == MigrateOn::Each || self.index == 0 {
                let env = self.hook_env(Event::PreSwitch).at("migrate");
                let line = hooks::host_command(&dir, &env, command);
                self.run.step(self.context, "migrate", &line, None)?;
            }
        }
        let env = self.hook_env(Event::PreSwitch);
        hooks::run_for_host(hooks, Event::PreSwitch, self.run, self.context, &env, &dir)
    }

    /// Switch, verify, observe; then drain and stop the old slot, or switch back.
    fn activate(&mut self, new: Target, old: Option<Target>) -> Outcome {
        let (layout, config, options) = (self.context.layout, self.config, self.options);
        let token = self.token.clone();
        let proxy = config.proxy.name();
        let switch_start = Instant::now();
        let switched = self.switch(new, old, &format!("switch {proxy}"));
        self.mark("switch", switch_start);
        let (drain_token, took) = match switched {
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
        let verify_start = Instant::now();
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
            let current = layout.root().join("current");
            let env = self.hook_env(Event::PostSwitch);
            let hooks = &options.hooks;
            hooks::report_for_host(
                hooks,
                Event::PostSwitch,
                self.run,
                self.context,
                &env,
                &current,
            )?;
            if let Some(text) = &config.observe_gate {
                self.gate(text, new, "observe")?;
            }
            Ok(())
        })();
        self.mark("verify", verify_start);
        if let Err(error) = checked {
            let back_start = Instant::now();
            let outcome = self.switch_back(new, old, error);
            self.mark("rollback", back_start);
            if matches!(outcome, Outcome::SwitchedBack(_)) {
                self.host_hook(Event::OnRollback, "rolled-back");
            }
            return outcome;
        }
        if let Some(old) = old {
            let retire_start = Instant::now();
            let retired = self.retire(old, new, &drain_token);
            self.mark("drain + stop", retire_start);
            if let Err(error) = retired {
                // The new slot serves; leaving the old one running is no harm, so warn only.
                self.context.console.warn(&error.to_string());
            }
        }
        self.host_hook(Event::PostDeploy, "success");
        Outcome::Deployed
    }

    /// Runs the host-side hooks of `event` (post-deploy, on-rollback) in `current`; a failure
    /// is a warning.
    fn host_hook(&mut self, event: Event, result: &str) {
        let hooks = Hooks {
            hooks: self.options.hooks.at(event, Side::Hosts).cloned().collect(),
            ..Hooks::default()
        };
        let env = HookEnv {
            result: result.to_owned(),
            ..self.hook_env(event)
        };
        let current = self.context.layout.root().join("current");
        if let Err(error) =
            hooks::run_for_host(&hooks, event, self.run, self.context, &env, &current)
        {
            self.context.console.warn(&error.to_string());
        }
    }

    fn retire(&mut self, old: Target, new: Target, drain_token: &str) -> Result<(), HostError> {
        let (layout, config) = (self.context.layout, self.config);
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
        let (layout, config) = (self.context.layout, self.config);
        let Some(old) = old else {
            return Outcome::SwitchBackFailed(format!(
                "{error}; there is no previous slot to switch back to (first blue-green deploy): \
                 slot {} stays live",
                new.slot
            ));
        };
        let token = self.token.clone();
        let proxy = config.proxy.name();
        self.context.console.log(&format!(
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
                    self.context.console.warn(&drain_error.to_string());
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

/// The host batches of a blue-green deploy: the schedule's (`--schedule`), else one host each.
fn batches(options: &DeployOptions) -> Vec<Vec<usize>> {
    if options.schedule.is_some() {
        options.batches.clone()
    } else {
        (0..options.connection.hosts.len())
            .map(|i| vec![i])
            .collect()
    }
}

/// `deploy --strategy blue-green`: batch after batch (one host each without `--schedule`). A
/// failed host is left on, or switched back to, its previous slot by its own flow; while the
/// failure budget (`--max-failed`) lasts the rollout goes on (`partial`, exit 1), past it (and
/// always when a switch back fails) it stops, and later hosts are `skipped`.
pub(crate) fn deploy(
    options: &DeployOptions,
    config: &BlueGreen,
    runner: &mut Runner,
) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let layout = &options.connection.layout;
    let context = options.settings.context(layout, &console);
    let hosts = &options.connection.hosts;
    let mut rollout = Rollout::new(
        &options.connection,
        &options.release,
        &options.sha256,
        Some(options.keep_releases),
        console.clone(),
    );
    let allowed = options.budget.allowed(hosts.len());
    let batches = batches(options);
    let mut tolerated: Vec<String> = Vec::new();
    let mut outcome = FleetOutcome::Success;
    for (number, batch) in batches.iter().enumerate() {
        if !matches!(outcome, FleetOutcome::Success) {
            break;
        }
        let names: Vec<String> = batch.iter().map(|&i| hosts[i].label()).collect();
        let _group = runner.group(
            &if batches.len() == hosts.len() && options.schedule.is_none() {
                format!("blue-green: {}", names.join(", "))
            } else {
                format!(
                    "blue-green batch {}/{}: {}",
                    number + 1,
                    batches.len(),
                    names.join(", ")
                )
            },
        );
        let results = crate::schedule::parallel(batch.clone(), options.max_parallel, |index| {
            let host = &hosts[index];
            let mut run = match options.connection.open(host) {
                Ok(run) => run,
                Err(error) => return (index, None, Outcome::Failed(error)),
            };
            let token = runner_protocol::console::random_hex(8);
            let ended = HostFlow {
                run: &mut run,
                context: &context,
                options,
                config,
                host,
                index,
                token,
            }
            .run();
            (index, Some(run), ended)
        });
        // This batch's failures: (message, rolled back, infrastructure).
        let mut failures: Vec<(HostError, bool)> = Vec::new();
        let mut switch_back_failed: Vec<String> = Vec::new();
        for (index, run, ended) in results {
            let (result, error) = match ended {
                Outcome::Deployed => (HostResult::Deployed, None),
                Outcome::Failed(error) => {
                    let text = error.to_string();
                    failures.push((error, false));
                    (HostResult::Failed, Some(text))
                }
                Outcome::SwitchedBack(error) => {
                    let text = error.to_string();
                    failures.push((error, true));
                    (HostResult::RolledBack, Some(text))
                }
                Outcome::SwitchBackFailed(message) => {
                    switch_back_failed.push(message.clone());
                    (HostResult::RollbackFailed, Some(message))
                }
            };
            let Some(mut run) = run else {
                rollout.record(index, None, result, error);
                continue;
            };
            let success = result == HostResult::Deployed;
            let touched = run.status.current.is_some() || success;
            rollout.record(index, Some(&run), result, error);
            let word = if success { "success" } else { "failed" };
            rollout.finish(index, &mut run, &context, touched.then_some(word));
        }
        if !switch_back_failed.is_empty() {
            outcome = FleetOutcome::RollbackFailed(switch_back_failed.join("; "));
            break;
        }
        if failures.is_empty() {
            continue;
        }
        if tolerated.len() + failures.len() <= allowed {
            for (error, switched_back) in &failures {
                tolerated.push(if *switched_back {
                    format!("{error} (switched back to the previous slot)")
                } else {
                    format!("{error} (the previous slot kept serving)")
                });
            }
            console.warn(&format!(
                "batch {}: {} host(s) failed, within the failure budget ({} of {allowed} used); \
                 the rollout goes on",
                number + 1,
                failures.len(),
                tolerated.len()
            ));
            continue;
        }
        let rolled_back: Vec<String> = failures
            .iter()
            .filter(|(_, back)| *back)
            .map(|(error, _)| error.host.clone())
            .collect();
        outcome = if rolled_back.is_empty() {
            FleetOutcome::Failed(failures.into_iter().map(|(error, _)| error).collect())
        } else {
            let first = failures
                .first()
                .map(|(error, _)| error.to_string())
                .unwrap_or_default();
            FleetOutcome::RolledBack {
                message: format!(
                    "{first}; switched back to the previous slot on {}",
                    rolled_back.join(", ")
                ),
                infrastructure: false,
            }
        };
    }
    if matches!(outcome, FleetOutcome::Success) && !tolerated.is_empty() {
        outcome = FleetOutcome::Partial(format!(
            "{} host(s) failed within the failure budget ({} of {allowed}): {}; every other host \
             serves {}",
            tolerated.len(),
            tolerated.len(),
            tolerated.join("; "),
            options.release
        ));
    }
    rollout.conclude(
        runner,
        &format!("ssh-deploy blue-green {}", options.release),
        outcome,
    )
}
