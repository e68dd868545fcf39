//! A `command:` check: its validated spec and how it is resolved.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::expect::text::TextExpect;

use super::error::{ConfigError, config_error};
use super::expect::resolve_text;
use super::file::CommandConfig;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// Program and arguments.
    Argv(Vec<String>),
    /// `sh -c LINE`.
    Shell(String),
}

/// A validated command check.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// What to run.
    pub program: Program,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Accepted exit codes.
    pub exit_codes: Vec<i32>,
    /// stdout expectations.
    pub stdout: TextExpect,
    /// stderr expectations.
    pub stderr: TextExpect,
}

impl CommandSpec {
    /// The command as shown in reports.
    pub fn display(&self) -> String {
        match &self.program {
            Program::Argv(argv) => argv.join(" "),
            Program::Shell(line) => format!("sh -c {}", runner_protocol::output::shell_quote(line)),
        }
    }
}

/// Validates a `command:` config.
pub(crate) fn resolve_command(
    config: CommandConfig,
    field: &str,
) -> Result<CommandSpec, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let program = match (config.argv, config.shell) {
        (Some(argv), None) if !argv.is_empty() && !argv[0].is_empty() => Some(Program::Argv(argv)),
        (None, Some(line)) if !line.trim().is_empty() => Some(Program::Shell(line)),
        _ => {
            errors.push(config_error(
                field,
                "give exactly one of `argv` (a non-empty list, run without a shell) or `shell` (a command line for sh -c)",
            ));
            None
        }
    };
    let stdout = resolve_text(config.stdout.as_ref(), &format!("{field}.stdout"))
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let stderr = resolve_text(config.stderr.as_ref(), &format!("{field}.stderr"))
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let exit_codes = config.exit_codes.unwrap_or_else(|| vec![0]);
    if exit_codes.is_empty() {
        errors.push(config_error(
            format!("{field}.exit_codes"),
            "list at least one accepted exit code",
        ));
    }
    match program {
        Some(program) if errors.is_empty() => Ok(CommandSpec {
            program,
            env: config.env,
            cwd: config.cwd,
            exit_codes,
            stdout,
            stderr,
        }),
        _ => Err(errors),
    }
}
