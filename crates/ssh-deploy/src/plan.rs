//! The plan as data: batches of hosts, and per host the exact commands `--dry-run` prints.

use crate::commands::ReleaseContext;
use crate::options::DeployOptions;

/// Host indexes per batch: `batch_size` 0 means one batch with every host.
pub fn batches(hosts: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let size = if batch_size == 0 {
        hosts.max(1)
    } else {
        batch_size
    };
    (0..hosts)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect()
}

/// One step of a host's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it does.
    pub title: String,
    /// The exact command line (`<token>` stands for the per-run random token).
    pub command: String,
}

/// The steps for one host, in order (upload is skipped at run time when the host has it).
pub fn host_steps(options: &DeployOptions) -> Vec<Step> {
    let layout = &options.connection.layout;
    let change = &options.change;
    let token = "<token>";
    let release = &options.release;
    let sha = options.sha256.as_str();
    let ctx = ReleaseContext { layout, release };
    let mut steps = vec![
        step("lock", layout.lock(token, &change.who, &change.run)),
        step("status", layout.status(Some(sha))),
        step("upload (stdin = artifact)", layout.upload(sha, token)),
        step("verify", layout.verify_upload(sha, token)),
        step(
            "unpack",
            layout.unpack(release, sha, token, &options.shared),
        ),
    ];
    if let Some(command) = change.manager.prepare(&ctx) {
        steps.push(step("install units", command));
    }
    steps.push(step("switch", layout.switch(release, token)));
    for service in &change.services {
        steps.push(step(
            &format!("restart {service}"),
            change.manager.restart(service, &ctx),
        ));
        if let Some(command) = change.manager.is_active(service, &ctx) {
            steps.push(step(&format!("check {service}"), command));
        }
    }
    if change.gate.is_some() {
        steps.push(step("gate", "(health-gate from the runner)".into()));
    }
    steps.push(step(
        "release log",
        layout.log(release, sha, &change.who, "success"),
    ));
    steps.push(step("unlock", layout.unlock(token)));
    steps
}

fn step(title: &str, command: String) -> Step {
    Step {
        title: title.to_owned(),
        command,
    }
}

/// The dry-run text: batches, hosts, and each host's commands.
pub fn render(options: &DeployOptions) -> String {
    let mut text = format!(
        "plan: release {} (artifact sha256 {}) to {} host(s) in {} batch(es); on a failed gate the batch rolls back{}\n",
        options.release,
        options.sha256,
        options.connection.hosts.len(),
        options.batches.len(),
        if options.rollback_completed {
            ", and so do finished batches"
        } else {
            ""
        }
    );
    let steps = host_steps(options);
    for (number, batch) in options.batches.iter().enumerate() {
        text.push_str(&format!("batch {}:\n", number + 1));
        for &index in batch {
            let host = options.connection.hosts[index].label();
            for step in &steps {
                text.push_str(&format!("  [{host}] {}: {}\n", step.title, step.command));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_hosts_in_order() {
        assert_eq!(batches(5, 2), [vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(batches(3, 0), [vec![0, 1, 2]]);
        assert_eq!(batches(2, 9), [vec![0, 1]]);
    }
}
