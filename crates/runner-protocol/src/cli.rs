//! Command-line conventions shared by every binary.
//!
//! Every flag can also be given as an environment variable named by one mechanical rule:
//! the binary name and the long flag, upper-cased, `-` -> `_` (`change-detect --base-ref` ->
//! `CHANGE_DETECT_BASE_REF`). The rule is applied here, once, to the clap command, so no tool
//! spells an env name by hand and the action.yml agreement test can check it.
//!
//! Two more conventions are applied here, once:
//! - A flag with `value_name = "BOOL"` follows GitHub's boolean inputs: `--flag` means true,
//!   `--flag=false` / `FLAG=false` false (`true|True|TRUE|false|False|FALSE`, nothing else), and
//!   it is false unless the field gives another `default_value`.
//! - Every `--help` ends with the exit codes, made from [`crate::Exit`].

use clap::{Arg, ArgAction, Command};

use crate::output::OutputFormat;

/// Flags every binary accepts.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct CommonArgs {
    /// Where step outputs go.
    ///
    /// `auto` writes to $GITHUB_OUTPUT under GitHub Actions and prints one JSON object on stdout
    /// elsewhere; `dotenv` prints `NAME=value` lines (GitLab dotenv reports, `set -a; . file`).
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub output_format: OutputFormat,

    /// Print debug logs to stderr (also on when the runner sets RUNNER_DEBUG=1).
    ///
    /// Accepts true/false like every boolean input; `--verbose` alone means true.
    #[arg(long, short = 'v', value_name = "BOOL")]
    pub verbose: bool,
}

/// A binary's parsed command line, which carries the [`CommonArgs`].
pub trait ToolCli: clap::Parser {
    /// The common flags.
    fn common(&self) -> &CommonArgs;
}

/// The env prefix for a binary: `change-detect` -> `CHANGE_DETECT`.
pub fn env_prefix(binary: &str) -> String {
    env_suffix(binary)
}

fn env_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The environment variable for a flag of a binary: `PREFIX_LONG_NAME`.
pub fn env_name(binary: &str, long: &str) -> String {
    format!("{}_{}", env_prefix(binary), env_suffix(long))
}

/// True for the flags that never take an environment variable.
fn is_builtin(arg: &Arg) -> bool {
    matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    )
}

/// The value name that marks a GitHub-style boolean flag.
pub const BOOL: &str = "BOOL";

fn is_bool_flag(arg: &Arg) -> bool {
    arg.get_value_names()
        .is_some_and(|names| names.len() == 1 && names[0] == BOOL)
}

/// GitHub's boolean-input rule on a flag: an explicit value (`--flag=false`), or none
/// (`--flag`, true); false by default.
fn as_bool_flag(arg: Arg) -> Arg {
    let default = arg
        .get_default_values()
        .first()
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| value != "false")
        .unwrap_or_else(|| "false".to_owned());
    arg.action(ArgAction::Set)
        .value_parser(crate::input::parse_bool)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .default_value(default)
}

/// Attaches the suite's conventions to `command` and its subcommands: the env rule on every
/// long flag, the boolean rule on `BOOL` flags, the exit codes after the help.
pub fn with_env_names(command: Command) -> Command {
    let binary = command.get_name().to_owned();
    apply(command, &binary)
}

fn apply(command: Command, binary: &str) -> Command {
    let binary_owned = binary.to_owned();
    let command = command
        .after_help(crate::exit::help())
        .mut_args(move |arg| {
            if is_builtin(&arg) {
                return arg;
            }
            let arg = if is_bool_flag(&arg) {
                as_bool_flag(arg)
            } else {
                arg
            };
            // `--help` never shows a variable's value: it may be a secret, and it is text the
            // suite did not write.
            match arg.get_long().map(|long| env_name(&binary_owned, long)) {
                Some(name) => arg.env(name).hide_env_values(true),
                None => arg,
            }
        });
    let binary_owned = binary.to_owned();
    command.mut_subcommands(move |sub| apply(sub, &binary_owned))
}

/// The clap command of `C` with the env rule applied; use for introspection (help, docs,
/// the action.yml agreement test).
pub fn command<C: clap::CommandFactory>() -> Command {
    with_env_names(C::command())
}

/// The clap command of `C` for parsing in an environment: like [`command`], but a flag whose
/// variable is set to the empty string reads no variable at all. An action passes every input
/// through `env:`, so an input the user left out arrives as `""`, which must mean "not given"
/// (the flag's default), not an empty value. clap would read `""` as a value, and the process
/// environment cannot be edited without `unsafe`, so the binding is dropped instead.
pub fn command_in<C: clap::CommandFactory>(env: &crate::env::Env) -> Command {
    unbind_empty(command::<C>(), env)
}

fn unbind_empty(command: Command, env: &crate::env::Env) -> Command {
    let empty: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .filter_map(|name| name.to_str())
        .filter(|name| env.is_set_but_empty(name))
        .map(str::to_owned)
        .collect();
    let command = command.mut_args(move |arg| {
        let is_empty = arg
            .get_env()
            .and_then(|name| name.to_str())
            .is_some_and(|name| empty.iter().any(|e| e == name));
        if is_empty { arg.env(None) } else { arg }
    });
    let env = env.clone();
    command.mut_subcommands(move |sub| unbind_empty(sub, &env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "change-detect")]
    struct Cli {
        #[arg(long)]
        base_ref: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn empty_variables_mean_not_given() {
        use clap::FromArgMatches as _;
        let env = crate::env::Env::from_pairs([
            ("CHANGE_DETECT_VERBOSE", ""),
            ("CHANGE_DETECT_OUTPUT_FORMAT", ""),
        ]);
        let command = command_in::<Cli>(&env);
        let verbose = command
            .get_arguments()
            .find(|a| a.get_id() == "verbose")
            .expect("verbose");
        assert_eq!(verbose.get_env(), None, "binding dropped");
        let matches = command
            .try_get_matches_from(["change-detect"])
            .expect("parses");
        let cli = Cli::from_arg_matches(&matches).expect("valid");
        assert!(!cli.common.verbose);
        assert_eq!(cli.common.output_format, OutputFormat::Auto);
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches as _;
        let matches = command::<Cli>().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn env_names_follow_one_rule() {
        assert_eq!(
            env_name("change-detect", "base-ref"),
            "CHANGE_DETECT_BASE_REF"
        );
        assert_eq!(
            env_name("health-gate", "output-format"),
            "HEALTH_GATE_OUTPUT_FORMAT"
        );
        let command = command::<Cli>();
        let envs: Vec<(String, Option<String>)> = command
            .get_arguments()
            .map(|a| {
                (
                    a.get_id().to_string(),
                    a.get_env().map(|e| e.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(envs.contains(&("base_ref".into(), Some("CHANGE_DETECT_BASE_REF".into()))));
        assert!(envs.contains(&("verbose".into(), Some("CHANGE_DETECT_VERBOSE".into()))));
    }

    #[test]
    fn verbose_flag_forms() {
        assert!(!parse(&["change-detect"]).expect("ok").common.verbose);
        assert!(
            parse(&["change-detect", "--verbose"])
                .expect("ok")
                .common
                .verbose
        );
        assert!(parse(&["change-detect", "-v"]).expect("ok").common.verbose);
        assert!(
            parse(&["change-detect", "--verbose=True"])
                .expect("ok")
                .common
                .verbose
        );
        assert!(
            !parse(&["change-detect", "--verbose=FALSE"])
                .expect("ok")
                .common
                .verbose
        );
        let error = parse(&["change-detect", "--verbose=yes"]).expect_err("strict booleans");
        assert!(error.to_string().contains("true, True, TRUE"), "{error}");
    }

    #[derive(Debug, clap::Parser)]
    #[command(name = "ssh-deploy")]
    struct Flags {
        #[arg(long, value_name = "BOOL", default_value = "true")]
        wait: bool,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Deploy {
            #[arg(long, value_name = "BOOL")]
            dry_run: bool,
        },
    }

    fn parse_flags(args: &[&str]) -> Result<Flags, clap::Error> {
        use clap::FromArgMatches as _;
        let matches = command::<Flags>().try_get_matches_from(args)?;
        Flags::from_arg_matches(&matches)
    }

    #[test]
    fn bool_flags_follow_the_github_rule_at_every_level_and_keep_their_default() {
        let flags = parse_flags(&["ssh-deploy", "deploy"]).expect("ok");
        assert!(flags.wait, "its own default");
        assert!(matches!(flags.command, Sub::Deploy { dry_run: false }));
        let flags =
            parse_flags(&["ssh-deploy", "--wait=false", "deploy", "--dry-run"]).expect("ok");
        assert!(!flags.wait);
        assert!(matches!(flags.command, Sub::Deploy { dry_run: true }));
        let flags = parse_flags(&["ssh-deploy", "deploy", "--dry-run=False"]).expect("ok");
        assert!(matches!(flags.command, Sub::Deploy { dry_run: false }));
        // `--dry-run false` would make `false` a positional: the value needs `=`.
        assert!(parse_flags(&["ssh-deploy", "deploy", "--dry-run", "false"]).is_err());
        assert!(parse_flags(&["ssh-deploy", "deploy", "--dry-run=1"]).is_err());
    }

    #[test]
    fn help_ends_with_the_exit_codes_at_every_level() {
        let mut command = command::<Flags>();
        let help = command.render_help().to_string();
        assert!(
            help.trim_end().ends_with(crate::exit::help().as_str()),
            "{help}"
        );
        let deploy = command
            .find_subcommand_mut("deploy")
            .expect("deploy")
            .render_help()
            .to_string();
        assert!(deploy.contains("130  interrupted"), "{deploy}");
    }

    #[test]
    fn output_format_values() {
        let cli = parse(&["change-detect", "--output-format", "dotenv"]).expect("ok");
        assert_eq!(cli.common.output_format, OutputFormat::Dotenv);
        assert!(parse(&["change-detect", "--output-format", "xml"]).is_err());
    }
}
