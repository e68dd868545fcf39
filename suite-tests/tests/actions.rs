//! Each `actions/<name>/action.yml` agrees with its binary: inputs <-> flags <-> env vars,
//! declared outputs <-> what the tool writes, and the README tables list every input.

use std::collections::{BTreeMap, BTreeSet};

use runner_protocol::cli::env_name;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    name: String,
    description: String,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    branding: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    inputs: BTreeMap<String, Input>,
    #[serde(default)]
    outputs: BTreeMap<String, ActionOutput>,
    runs: Runs,
}

#[derive(Debug, Deserialize)]
struct Input {
    description: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ActionOutput {
    description: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct Runs {
    using: String,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
struct Step {
    id: Option<String>,
    shell: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    run: Option<String>,
}

/// Inputs that configure the action wrapper, not the binary.
const ACTION_ONLY_INPUTS: &[&str] = &["install", "binary-path", "download-url"];
/// Flags that make no sense inside an action (outputs always go to GITHUB_OUTPUT there).
const CLI_ONLY_FLAGS: &[&str] = &["output-format"];
/// For a binary with subcommands, the input that selects the subcommand. It is passed as
/// `<PREFIX>_COMMAND` and given to the binary as its first argument (a subcommand cannot come
/// from an environment variable), so the run step is `"$DEPLOY_SUITE_BINARY" "$<PREFIX>_COMMAND"`.
const COMMAND_INPUT: &str = "command";

/// The `run:` line of an action's run step.
fn expected_run_line(tool: &Tool) -> String {
    if tool.command.has_subcommands() {
        format!(
            "\"$DEPLOY_SUITE_BINARY\" \"${}\"",
            env_name(tool.name, COMMAND_INPUT)
        )
    } else {
        "\"$DEPLOY_SUITE_BINARY\"".to_owned()
    }
}

struct Tool {
    name: &'static str,
    command: clap::Command,
    outputs: &'static [&'static str],
}

fn tools() -> Vec<Tool> {
    use runner_protocol::cli::command;
    vec![
        Tool {
            name: "change-detect",
            command: command::<change_detect::Cli>(),
            outputs: change_detect::OUTPUTS,
        },
        Tool {
            name: "release-descriptor-render",
            command: command::<release_descriptor_render::Cli>(),
            outputs: release_descriptor_render::OUTPUTS,
        },
        Tool {
            name: "bundle-json-gen",
            command: command::<bundle_json_gen::Cli>(),
            outputs: bundle_json_gen::OUTPUTS,
        },
        Tool {
            name: "ssh-deploy",
            command: command::<ssh_deploy::Cli>(),
            outputs: ssh_deploy::OUTPUTS,
        },
        Tool {
            name: "ecs-taskdef-update",
            command: command::<ecs_taskdef_update::Cli>(),
            outputs: ecs_taskdef_update::OUTPUTS,
        },
        Tool {
            name: "health-gate",
            command: command::<health_gate::Cli>(),
            outputs: health_gate::OUTPUTS,
        },
    ]
}

/// Every long flag of a command and its subcommands, with its env var and default.
fn flags(command: &clap::Command) -> BTreeMap<String, (String, Option<String>)> {
    let mut flags = BTreeMap::new();
    for arg in command.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let default = arg
            .get_default_values()
            .first()
            .map(|v| v.to_string_lossy().into_owned());
        flags.insert(
            long.to_owned(),
            (env.to_string_lossy().into_owned(), default),
        );
    }
    for sub in command.get_subcommands() {
        for (long, value) in flags_of(sub) {
            // One input feeds every subcommand that has the flag: they must agree on it.
            if let Some(existing) = flags.get(&long) {
                assert_eq!(existing, &value, "--{long} differs between subcommands");
            }
            flags.insert(long, value);
        }
    }
    flags
}

fn flags_of(command: &clap::Command) -> BTreeMap<String, (String, Option<String>)> {
    flags(command)
}

fn load(name: &str) -> (Action, String) {
    let root = test_support::workspace_root();
    let path = root.join("actions").join(name).join("action.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let action: Action =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (action, text)
}

fn input_reference(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("${{ inputs.")?
        .strip_suffix(" }}")
}

#[test]
fn every_action_is_a_composite_that_installs_then_runs_its_binary() {
    for tool in tools() {
        let (action, _) = load(tool.name);
        assert_eq!(action.name, tool.name);
        assert!(!action.description.is_empty());
        assert!(action.author.is_some() && action.branding.is_some());
        assert_eq!(action.runs.using, "composite", "{}", tool.name);
        let ids: Vec<_> = action.runs.steps.iter().map(|s| s.id.as_deref()).collect();
        assert_eq!(ids, [Some("install"), Some("run")], "{}", tool.name);
        let install = &action.runs.steps[0];
        let install_run = install.run.as_deref().expect("install runs a script");
        assert!(
            install_run.contains(&format!(
                "\"$GITHUB_ACTION_PATH/../../scripts/install.sh\" {}",
                tool.name
            )),
            "{}: {install_run}",
            tool.name
        );
        for step in &action.runs.steps {
            assert_eq!(step.shell.as_deref(), Some("bash"), "{}", tool.name);
            let run = step.run.as_deref().unwrap_or_default();
            assert!(
                !run.contains("${{"),
                "{}: no expressions inside run:",
                tool.name
            );
        }
        let run = &action.runs.steps[1];
        assert_eq!(run.run.as_deref(), Some(expected_run_line(&tool).as_str()));
        assert_eq!(
            run.env.get("DEPLOY_SUITE_BINARY").map(String::as_str),
            Some("${{ steps.install.outputs.path }}")
        );
    }
}

#[test]
fn action_inputs_flags_and_env_vars_agree() {
    for tool in tools() {
        let (action, _) = load(tool.name);
        let flags = flags(&tool.command);
        let run_env = &action.runs.steps[1].env;

        // Every env var the run step sets is an input passed under the binary's env name.
        for (key, value) in run_env {
            if key == "DEPLOY_SUITE_BINARY" {
                continue;
            }
            if tool.command.has_subcommands() && input_reference(value) == Some(COMMAND_INPUT) {
                assert_eq!(key, &env_name(tool.name, COMMAND_INPUT), "{}", tool.name);
                continue;
            }
            let input = input_reference(value).unwrap_or_else(|| {
                panic!("{}: env {key} must be `${{{{ inputs.x }}}}`", tool.name)
            });
            assert_eq!(
                key,
                &env_name(tool.name, input),
                "{}: env name rule",
                tool.name
            );
            let (flag_env, _) = flags
                .get(input)
                .unwrap_or_else(|| panic!("{}: input `{input}` has no --{input} flag", tool.name));
            assert_eq!(flag_env, key, "{}: --{input} reads {flag_env}", tool.name);
        }

        // Every input reaches the binary (or is one of the wrapper's own).
        let passed: BTreeSet<&str> = run_env
            .values()
            .filter_map(|v| input_reference(v))
            .collect();
        for (name, input) in &action.inputs {
            assert!(
                !input.description.trim().is_empty(),
                "{}: {name} needs a description",
                tool.name
            );
            if ACTION_ONLY_INPUTS.contains(&name.as_str()) {
                continue;
            }
            if tool.command.has_subcommands() && name == COMMAND_INPUT {
                assert!(
                    passed.contains(COMMAND_INPUT),
                    "{}: `command` is passed",
                    tool.name
                );
                let default = input.default.as_deref().unwrap_or_default();
                assert!(
                    tool.command.find_subcommand(default).is_some(),
                    "{}: the default of `command` must be a subcommand, found `{default}`",
                    tool.name
                );
                continue;
            }
            assert!(
                passed.contains(name.as_str()),
                "{}: input `{name}` is never passed",
                tool.name
            );
            // The action's default must be the binary's default, so both ways behave alike.
            // The exception is the job token: an expression only the runner can evaluate,
            // for a flag that has (and must have) no default.
            let (_, flag_default) = &flags[name];
            let expression_default =
                input.default.as_deref() == Some("${{ github.token }}") && flag_default.is_none();
            if !input.required && !expression_default {
                assert_eq!(
                    input.default.as_deref().filter(|d| !d.is_empty()),
                    flag_default.as_deref(),
                    "{}: default of input `{name}` differs from --{name}",
                    tool.name
                );
            }
        }

        if tool.command.has_subcommands() {
            assert!(
                action.inputs.contains_key(COMMAND_INPUT),
                "{}: a binary with subcommands needs a `command` input",
                tool.name
            );
        }

        // Every flag is an input (or deliberately CLI-only).
        for flag in flags.keys() {
            if CLI_ONLY_FLAGS.contains(&flag.as_str()) {
                continue;
            }
            assert!(
                action.inputs.contains_key(flag),
                "{}: --{flag} has no action input",
                tool.name
            );
        }
    }
}

#[test]
fn declared_outputs_match_what_the_tool_writes() {
    for tool in tools() {
        let (action, _) = load(tool.name);
        let declared: BTreeSet<&str> = action.outputs.keys().map(String::as_str).collect();
        let written: BTreeSet<&str> = tool.outputs.iter().copied().collect();
        assert_eq!(
            declared, written,
            "{}: action.yml outputs vs the tool's OUTPUTS",
            tool.name
        );
        for (name, output) in &action.outputs {
            assert!(!output.description.trim().is_empty());
            assert_eq!(
                output.value,
                format!("${{{{ steps.run.outputs.{name} }}}}"),
                "{}: output {name} is re-exported from the run step",
                tool.name
            );
        }
    }
}

#[test]
fn action_readmes_list_every_input_with_its_env_var() {
    for tool in tools() {
        let (action, _) = load(tool.name);
        let root = test_support::workspace_root();
        let readme =
            std::fs::read_to_string(root.join("actions").join(tool.name).join("README.md"))
                .expect("each action has a README.md");
        for name in action.inputs.keys() {
            let row_start = format!("| `{name}` | ");
            let row = readme
                .lines()
                .find(|l| l.starts_with(&row_start))
                .unwrap_or_else(|| panic!("{}: README has no row for input `{name}`", tool.name));
            if !ACTION_ONLY_INPUTS.contains(&name.as_str()) {
                assert!(
                    row.contains(&format!("`{}`", env_name(tool.name, name))),
                    "{}: README row for `{name}` names its env var",
                    tool.name
                );
            }
        }
        for output in action.outputs.keys() {
            assert!(
                readme.contains(&format!("| `{output}` |")),
                "{}: README lists output `{output}`",
                tool.name
            );
        }
    }
}

/// No flag is a bare switch: a boolean input arrives as `true`/`false` text from `env:`, so every
/// boolean flag must be marked `value_name = "BOOL"`, which `runner_protocol::cli` turns into
/// GitHub's rule once. A `bool` field without the mark is clap's `SetTrue` and would refuse
/// `--flag=false`.
#[test]
fn every_boolean_flag_takes_githubs_true_and_false() {
    fn switches(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if matches!(
                arg.get_action(),
                clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
            ) {
                found.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            switches(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }
    let mut found = Vec::new();
    for tool in tools() {
        switches(&tool.command, tool.name, &mut found);
    }
    assert!(
        found.is_empty(),
        "boolean flags without value_name = \"BOOL\": {found:?}"
    );
}
