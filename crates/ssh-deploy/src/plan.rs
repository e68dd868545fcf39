//! The `--dry-run` plan of the symlink strategy: steps (canary, batches) with their hosts, gates
//! and rollback scope, and per host the exact commands.

use crate::commands::ReleaseContext;
use crate::options::DeployOptions;

/// One step of a host's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// What it does.
    pub title: String,
    /// The exact command line (`<token>` stands for the per-run random token).
    pub command: String,
}

/// The steps for one host with its layout (inventory `root:` or `--root`), in order (the
/// upload is skipped at run time when the host has the artifact).
pub(crate) fn host_steps_on(
    options: &DeployOptions,
    layout: &crate::commands::Layout,
) -> Vec<Step> {
    let settings = &options.settings;
    let token = "<token>";
    let release = &options.release;
    let sha = options.sha256.as_str();
    let ctx = ReleaseContext { layout, release };
    // The steps are grouped as `HostRun` runs them: one remote command per group.
    let mut steps = vec![
        step(
            "lock + status",
            layout.lock_and_status(token, &settings.who, &settings.run, Some(sha)),
        ),
        stage_step(options, layout, true),
    ];
    let restarts =
        crate::commands::restart_parts(settings.manager.as_ref(), &settings.services, &ctx);
    if !restarts.is_empty() {
        let (title, command) = crate::commands::combined(&restarts, true);
        steps.push(step(&title, command));
    }
    if settings.gate.is_some() {
        steps.push(step("gate", "(health-gate from the runner)".into()));
    }
    steps.push(finish_step(layout, release, sha, &settings.who));
    steps
}

/// The upload, its checksum, the unpack and the units (and the switch, with `switch`) as the
/// one remote command `HostRun` runs for them.
pub(crate) fn stage_step(
    options: &DeployOptions,
    layout: &crate::commands::Layout,
    switch: bool,
) -> Step {
    let release = &options.release;
    let token = "<token>";
    let ctx = ReleaseContext { layout, release };
    let mut parts = layout.stage_parts(
        release,
        &options.sha256,
        token,
        &options.shared_paths,
        crate::pack::Compression::detect(&options.artifact)
            .unwrap_or(crate::pack::Compression::Gzip),
        true,
        options.settings.manager.prepare(&ctx),
    );
    if switch {
        parts.push(("switch".to_owned(), layout.switch(release, token)));
    }
    let (title, command) = crate::commands::combined(&parts, true);
    step(&format!("{title} (stdin = artifact)"), command)
}

/// The last step of a successful deploy: release log and unlock, as one remote command.
pub(crate) fn finish_step(
    layout: &crate::commands::Layout,
    release: &crate::quote::ReleaseId,
    sha: &str,
    who: &str,
) -> Step {
    let (title, command) = crate::commands::combined(
        &[
            (
                "release log".to_owned(),
                layout.log(release, sha, who, "success"),
            ),
            ("unlock".to_owned(), layout.unlock("<token>")),
        ],
        false,
    );
    step(&title, command)
}

fn step(title: &str, command: String) -> Step {
    Step {
        title: title.to_owned(),
        command,
    }
}

/// The dry-run text: steps (canary, batches) with their hosts, gates and rollback scope, and
/// each host's exact commands.
pub(crate) fn render(options: &DeployOptions) -> String {
    let hosts = &options.connection.hosts;
    let mut text = format!(
        "plan: release {} (artifact sha256 {}) to {} host(s) in {} step(s){}\n",
        options.release,
        options.sha256,
        hosts.len(),
        options.batches.len(),
        if options.canary.is_some() {
            ", canary first"
        } else {
            ""
        }
    );
    text.push_str(&options.settings.lock_plan());
    let sizes: Vec<String> = options
        .batches
        .iter()
        .map(|b| b.len().to_string())
        .collect();
    match &options.schedule {
        Some(schedule) => text.push_str(&format!(
            "schedule: {schedule} (--schedule) -> batches of {} host(s)\n",
            sizes.join(", ")
        )),
        None => text.push_str(&format!("batches of {} host(s)\n", sizes.join(", "))),
    }
    text.push_str(&format!(
        "failure budget: {}\n",
        options.budget.describe(hosts.len())
    ));
    let budget = options.budget.allowed(hosts.len());
    let mut batch_number = 0;
    for (number, batch) in options.batches.iter().enumerate() {
        let names: Vec<String> = batch.iter().map(|&i| hosts[i].label()).collect();
        let canary = options.canary.as_ref().filter(|_| number == 0);
        match canary {
            Some(canary) => {
                text.push_str(&format!(
                    "step {}/{}: canary {}\n  baseline: recorded from the release serving now, before anything changes ({})\n  gate: {}, then the canary observed against the baseline\n  on failure: roll back the canary alone and stop\n",
                    number + 1,
                    options.batches.len(),
                    names.join(", "),
                    canary.origin,
                    gate_summary(options),
                ));
            }
            None => {
                batch_number += 1;
                text.push_str(&format!(
                    "step {}/{}: batch {batch_number}: {}\n  gate: {}\n  on failure: {}roll back {}, then stop\n",
                    number + 1,
                    options.batches.len(),
                    names.join(", "),
                    gate_summary(options),
                    if budget > 0 {
                        "while the failure budget lasts, put the failed hosts back and go on; past it "
                    } else {
                        ""
                    },
                    if options.rollback_completed && number > 0 {
                        "this batch and every step before it"
                    } else {
                        "this batch"
                    }
                ));
            }
        }
        for &index in batch {
            let host = &hosts[index];
            let layout = options.connection.layout_for(host);
            for step in host_steps_on(options, layout) {
                let command = match (&step.title[..], options.gates.get(index)) {
                    ("gate", Some(Some(gate))) => gate_targets(gate, &host.name()),
                    _ => step.command,
                };
                text.push_str(&format!("  [{}] {}: {command}\n", host.label(), step.title));
            }
        }
    }
    text.push_str(
        "on SIGINT/SIGTERM: the current step finishes, every host switched by this run is rolled back, locks are released (exit 130)\n",
    );
    text
}

fn gate_summary(options: &DeployOptions) -> &'static str {
    if options.settings.gate.is_none() {
        "none (services are checked active only)"
    } else {
        "the health-gate file, per host (see each host's `gate` line)"
    }
}

/// What a host's gate probes, e.g. `health-gate: web http://10.0.0.5:8081/health`.
fn gate_targets(text: &str, host: &str) -> String {
    match crate::gate::resolve_gate(text, host) {
        Ok(gate) => format!(
            "health-gate from the runner: {}",
            gate.checks
                .iter()
                .map(|c| format!("{} {}", c.name, c.probe.target()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(error) => format!("(gate file invalid for this host: {error})"),
    }
}
