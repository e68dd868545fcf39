//! The GitHub Actions runner protocol, written once for every binary of the suite.
//!
//! - [`env::Env`]: the process environment, read once.
//! - [`input`]: GitHub's boolean and multi-line list rules, as clap value parsers.
//! - [`cli`]: common flags and the flag -> environment variable rule.
//! - [`output`]: step outputs to `$GITHUB_OUTPUT` (random heredoc delimiter), JSON or dotenv.
//! - [`summary`]: the step summary with its 1 MiB budget.
//! - [`console`]: annotations, groups, masks and stop-commands, with escaping.
//! - [`event`]: the triggering event payload.
//! - [`exit`], [`diagnostic`]: exit codes and error rendering, in one place.
//! - `signal` (feature `signals`): SIGINT/SIGTERM counted for async tools.
//!
//! A binary's `main` is one line: `runner_protocol::main(tool::run)`.

pub mod cli;
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
        // clap prints help/version to stdout and errors to stderr; a failed print has nowhere
        // better to go.
        let _ = error.print();
        if error.use_stderr() {
            Exit::Usage
        } else {
            Exit::Success
        }
    })
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
                match error {
                    output::OutputError::Write { .. } => Exit::Infrastructure,
                    _ => Exit::Usage,
                }
            } else {
                exit
            }
        }
    }
}
