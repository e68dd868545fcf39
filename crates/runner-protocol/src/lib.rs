//! The GitHub Actions runner protocol, written once for every binary of the suite.
//!
//! - [`env::Env`]: the process environment, read once.
//! - [`input`]: GitHub's boolean and multi-line list rules, as clap value parsers.
//! - [`cli`]: common flags and the flag -> environment variable rule.
//! - [`output`]: step outputs to `$GITHUB_OUTPUT` (random heredoc delimiter), JSON or dotenv.
//! - [`summary`]: the step summary with its 1 MiB budget.
//! - [`console`]: annotations, groups, masks and stop-commands, with escaping.
//! - [`command_rules`]: how the runner finds workflow commands; the rule that defuses foreign text.
//! - [`event`]: the triggering event payload.
//! - [`exit`], [`diagnostic`]: exit codes and error rendering, in one place.
//! - `signal` (feature `signals`): SIGINT/SIGTERM counted for async tools.
//!
//! A binary's `main` is one line: `runner_protocol::main(tool::run)`.

pub mod cli;
pub mod command_rules;
pub mod console;
pub mod diagnostic;
pub mod env;
pub mod escape;
pub mod event;
pub mod exit;
pub mod input;
pub mod logging;
pub mod output;
pub mod runner;
pub mod secret;
#[cfg(feature = "signals")]
pub mod signal;
pub mod summary;
pub mod testing;

pub use cli::{CommonArgs, ToolCli};
pub use console::{Annotation, Level};
pub use diagnostic::{Diagnostic, ErrorClass, Reportable};
pub use env::Env;
pub use exit::Exit;
pub use runner::{Runner, Verdict};
pub use secret::Secret;

/// Parses the command line of `C` with the environment-variable rule applied.
///
/// Returns the exit code to use instead when parsing ends the run (`--help`, `--version`: 0;
/// a usage error: 2), after clap has printed its message.
pub fn parse<C: ToolCli>() -> Result<C, Exit> {
    parse_in::<C>(&Env::from_process())
}

/// [`parse`] in a given environment snapshot (empty variables count as not given).
pub fn parse_in<C: ToolCli>(env: &Env) -> Result<C, Exit> {
    let result = cli::command_in::<C>(env)
        .try_get_matches()
        .and_then(|matches| C::from_arg_matches(&matches));
    result.map_err(|error| {
        if !error.use_stderr() {
            // Help and version: our own text, on stdout; a failed print has nowhere better to
            // go. (Environment values are never shown in help: see `cli::with_env_names`.)
            let _ = error.print();
            return Exit::Success;
        }
        let console = console::Console::new(
            env.is_github_actions(),
            env.path("GITHUB_WORKSPACE"),
            console::shared(std::io::stderr()),
            console::shared(std::io::stderr()),
            secret::Masker::default(),
        );
        let ansi = !env.no_color() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        report_usage_error(&error, &console, ansi);
        Exit::Usage
    })
}

/// Shows a command-line error. clap's message quotes the offending input, which can hold
/// anything (`5x\n::warning::…`, `##[warning]…`), so it never goes to the terminal raw: under
/// GitHub Actions it becomes one `::error` annotation with its data escaped (on stderr, so a
/// consumer of stdout sees no stray line); elsewhere it is logged through the console, whose
/// every line is defused ([`command_rules`]).
pub fn report_usage_error(error: &clap::Error, console: &console::Console, ansi: bool) {
    let rendered = error.render();
    if console.is_github() {
        let text = rendered.to_string();
        let text = text.trim_end();
        let message = text.strip_prefix("error: ").unwrap_or(text);
        console.annotate(&Annotation::new(Level::Error, message).titled("usage error"));
    } else {
        let text = if ansi {
            rendered.ansi().to_string()
        } else {
            rendered.to_string()
        };
        console.log(text.trim_end_matches('\n'));
    }
}

/// Runs a tool: parse flags, set up logging and the runner, call `run`, write outputs and the
/// summary (also after a failure), render errors, and return the documented exit code.
pub fn main<C, E>(run: impl FnOnce(C, &mut Runner) -> Result<Verdict, E>) -> std::process::ExitCode
where
    C: ToolCli,
    E: Reportable,
{
    let env = Env::from_process();
    let cli = match parse_in::<C>(&env) {
        Ok(cli) => cli,
        Err(exit) => return exit.into(),
    };
    let common = cli.common().clone();
    let mut runner = runner::process_runner(env, &common);
    logging::init(runner.env(), runner.console(), common.verbose);
    run_to_exit(cli, &mut runner, run).into()
}

/// The body of [`main`] after parsing, usable in tests with [`Runner::for_test`].
pub fn run_to_exit<C, E>(
    cli: C,
    runner: &mut Runner,
    run: impl FnOnce(C, &mut Runner) -> Result<Verdict, E>,
) -> Exit
where
    E: Reportable,
{
    let outcome = run(cli, runner);
    let finished = runner.finish();
    let exit = match &outcome {
        Ok(verdict) => {
            match verdict {
                Verdict::Success => {}
                Verdict::Failed(reason) => runner.annotate(&Annotation::new(Level::Error, reason)),
                Verdict::RolledBack(reason) => {
                    runner.annotate(&Annotation::new(Level::Error, reason).titled("rolled back"))
                }
                Verdict::Interrupted(reason) => {
                    runner.annotate(&Annotation::new(Level::Warning, reason).titled("interrupted"))
                }
            }
            verdict.exit()
        }
        Err(error) => {
            runner.report_error(error);
            error.class().exit()
        }
    };
    match finished {
        Ok(()) => exit,
        Err(error) => {
            runner.report_diagnostic(&Diagnostic::from_error(&error));
            // A run that succeeded but could not hand over its outputs did not succeed.
            if exit == Exit::Success {
                error.class().exit()
            } else {
                exit
            }
        }
    }
}

#[cfg(test)]
mod usage_error_tests {
    use super::*;
    use crate::testing::Capture;

    #[derive(Debug, clap::Parser)]
    #[command(name = "health-gate")]
    struct Cli {
        #[arg(long, value_parser = crate::input::parse_bool)]
        flag: Option<bool>,
    }

    fn console(github: bool) -> (console::Console, Capture) {
        let stderr = Capture::default();
        let console = console::Console::new(
            github,
            None,
            stderr.writer(),
            stderr.writer(),
            secret::Masker::default(),
        );
        (console, stderr)
    }

    fn hostile_error() -> clap::Error {
        use clap::CommandFactory as _;
        Cli::command()
            .try_get_matches_from([
                "health-gate",
                "--flag",
                "5x\n::warning title=INJECTED::x ##[warning]y",
            ])
            .expect_err("not a boolean")
    }

    #[test]
    fn usage_error_under_github_is_one_escaped_error_annotation() {
        let (console, stderr) = console(true);
        report_usage_error(&hostile_error(), &console, false);
        let text = stderr.text();
        let commands = command_rules::workflow_commands(&text);
        assert_eq!(commands.len(), 1, "{text}");
        assert_eq!(commands[0].command, "error");
        assert_eq!(
            commands[0].properties,
            [("title".to_owned(), "usage error".to_owned())]
        );
        assert!(
            commands[0]
                .data
                .starts_with("invalid value '5x\n::warning title=INJECTED::x ##[warning]y'"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn usage_error_locally_is_readable_and_defused() {
        let (console, stderr) = console(false);
        report_usage_error(&hostile_error(), &console, false);
        let text = stderr.text();
        assert!(text.starts_with("error: invalid value '5x\n"), "{text}");
        assert!(
            text.contains("\n\\::warning title=INJECTED::x ##\\[warning]y'"),
            "{text}"
        );
        assert!(command_rules::workflow_commands(&text).is_empty(), "{text}");
    }
}
