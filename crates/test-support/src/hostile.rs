//! Every input of a tool fed a hostile value under `GITHUB_ACTIONS=true`, its raw stdout and
//! stderr checked against the runner's own command rules (`runner_protocol::command_rules`).
//!
//! The inputs come from the tool's clap definition with the suite's env rule applied (the same
//! source as the action.yml agreement test), so a new flag is covered without editing a list.

use std::path::Path;

use runner_protocol::command_rules::{Form, WorkflowCommand, workflow_commands};

use crate::{Output, run, tool_command};

/// The marker every injected command would carry as its title and data.
pub const MARKER: &str = "INJECTED";

/// Values that, printed raw, would be workflow commands: after a line break (LF, CR), after
/// leading white space, `##[` mid-line (also with an ignorable character inside), and a
/// `stop-commands` that would silence the suite's own annotations.
pub const HOSTILE_VALUES: &[&str] = &[
    "5x\n::warning title=INJECTED::INJECTED\r  ::notice title=INJECTED::INJECTED",
    "5 ##[warning title=INJECTED]INJECTED",
    "x\r\n\t::stop-commands::INJECTED\n#\u{ad}#[error title=INJECTED]INJECTED",
];

/// One input of a tool: the subcommand it belongs to (if any) and its environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Subcommand to run, `None` for a tool without subcommands.
    pub subcommand: Option<String>,
    /// The environment variable (`HEALTH_GATE_DEADLINE`).
    pub env: String,
}

/// Every input (every long flag with an environment variable) of `command` and its
/// subcommands.
pub fn inputs(command: &clap::Command) -> Vec<Input> {
    let mut found = Vec::new();
    let mut collect = |command: &clap::Command, subcommand: Option<&str>| {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                found.push(Input {
                    subcommand: subcommand.map(str::to_owned),
                    env: env.to_string_lossy().into_owned(),
                });
            }
        }
    };
    if command.has_subcommands() {
        // Flags of the tool itself are given with its first subcommand.
        let first = command
            .get_subcommands()
            .next()
            .map(clap::Command::get_name);
        collect(command, first);
        for sub in command.get_subcommands() {
            collect(sub, Some(sub.get_name()));
        }
    } else {
        collect(command, None);
    }
    found
}

/// What [`check_every_input`] ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Inputs found in the clap definition.
    pub inputs: usize,
    /// Runs (inputs times hostile values).
    pub runs: usize,
    /// Runs whose output showed the marker (escaped or defused).
    pub echoed: usize,
    /// Runs that ended in a usage error (exit 2), each with its `::error` annotation.
    pub usage_errors: usize,
}

/// Why a processed command is one the suite did not intend, if it is.
fn injected(command: &WorkflowCommand) -> Option<&'static str> {
    if command.form == Form::Legacy {
        return Some("the suite never writes `##[` commands");
    }
    if command.indented {
        return Some("the suite never indents a command");
    }
    if command.data.trim() == MARKER || command.properties.iter().any(|(_, v)| v == MARKER) {
        return Some("it carries the injected title or data");
    }
    let name = command.command.to_ascii_lowercase();
    let ours = [
        "error", "warning", "notice", "group", "endgroup", "add-mask",
    ];
    if name == "stop-commands" {
        let token_ok =
            command.data.len() == 32 && command.data.chars().all(|c| c.is_ascii_hexdigit());
        return (!token_ok).then_some("a stop-commands token the suite did not choose");
    }
    if ours.contains(&name.as_str()) || name.len() == 32 {
        return None;
    }
    Some("a command the suite never writes")
}

/// Commands in `output` (one stream) that the suite did not intend, with the reason.
pub fn injected_commands(output: &str) -> Vec<(WorkflowCommand, &'static str)> {
    workflow_commands(output)
        .into_iter()
        .filter_map(|command| injected(&command).map(|why| (command, why)))
        .collect()
}

/// Runs `binary` once per input and hostile value, under `GITHUB_ACTIONS=true`, in an empty
/// temporary directory and in a network namespace of its own (`unshare -rn`: nothing a hostile
/// value names can be reached), with `baseline` variables set first (values that let the tool
/// get past its required inputs quickly; the input under test replaces its own). The first
/// value also runs with `GITHUB_OUTPUT` set, so commands go to stdout instead of stderr.
///
/// Fails when any stream holds a workflow command the suite did not intend, or when a usage
/// error (exit 2) comes without an `::error` annotation. Returns what was run, so a caller can
/// check the values reached the output at all.
pub fn check_every_input(
    binary: &Path,
    command: &clap::Command,
    baseline: &[(&str, &str)],
) -> Checked {
    let unshare = crate::require_program("unshare", "apt-get install util-linux");
    let inputs = inputs(command);
    assert!(!inputs.is_empty(), "no inputs found in the clap definition");
    let mut echoed = 0;
    let mut usage_errors = 0;
    let mut failures = Vec::new();
    for input in &inputs {
        for (index, value) in HOSTILE_VALUES.iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut spawn = tool_command(&unshare);
            spawn
                .args(["-rn", "timeout", "-k", "5", "60"])
                .arg(binary)
                .current_dir(dir.path())
                .env("HOME", dir.path())
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", dir.path());
            if let Some(subcommand) = &input.subcommand {
                spawn.arg(subcommand);
            }
            for (name, baseline_value) in baseline {
                spawn.env(name, baseline_value);
            }
            spawn.env(&input.env, value);
            if index == 0 {
                spawn.env("GITHUB_OUTPUT", dir.path().join("github-output"));
            }
            let output = run(&mut spawn);
            if let Some(problem) = check_run(&output) {
                failures.push(format!(
                    "{} {}={value:?}: {problem}\n--- stdout\n{}\n--- stderr\n{}",
                    input.subcommand.as_deref().unwrap_or(""),
                    input.env,
                    output.stdout,
                    output.stderr
                ));
            }
            if output.stdout.contains(MARKER) || output.stderr.contains(MARKER) {
                echoed += 1;
            }
            if output.code == Some(2) {
                usage_errors += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs let a value through as a workflow command:\n\n{}",
        failures.len(),
        inputs.len() * HOSTILE_VALUES.len(),
        failures.join("\n\n")
    );
    Checked {
        inputs: inputs.len(),
        runs: inputs.len() * HOSTILE_VALUES.len(),
        echoed,
        usage_errors,
    }
}

fn check_run(output: &Output) -> Option<String> {
    if output.code == Some(124) || output.code == Some(137) || output.code.is_none() {
        return Some(format!("did not finish within 60 s ({:?})", output.code));
    }
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if let Some((command, why)) = injected_commands(text).into_iter().next() {
            return Some(format!(
                "{stream} line {} is a workflow command ({why}): {:?}",
                command.line_number, command.line
            ));
        }
    }
    if output.code == Some(2) {
        let annotated = [&output.stdout, &output.stderr]
            .iter()
            .flat_map(|text| workflow_commands(text))
            .any(|command| command.command == "error");
        if !annotated {
            return Some("a usage error (exit 2) without an ::error annotation".to_owned());
        }
    }
    None
}

/// Shows that [`injected_commands`] catches what each hostile value does when printed raw.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_hostile_values_are_caught_and_the_suites_own_commands_are_not() {
        for value in HOSTILE_VALUES {
            let raw = format!("error: invalid value '{value}' for '--deadline'\n");
            assert!(!injected_commands(&raw).is_empty(), "{value:?}");
            let escaped = format!(
                "::error title=usage error::{}\n",
                runner_protocol::escape::escape_data(&raw)
            );
            assert!(injected_commands(&escaped).is_empty(), "{escaped:?}");
        }
        let block = "::stop-commands::0123456789abcdef0123456789abcdef\n::set-output name=a::INJECTED\n::0123456789abcdef0123456789abcdef::\n";
        assert!(injected_commands(block).is_empty());
    }
}
