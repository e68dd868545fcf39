//! The runner: the one object a tool talks to for outputs, summary, masks, logs and the event.

use crate::cli::CommonArgs;
use crate::console::{Annotation, Console, Group, Level, SharedWriter, random_hex, shared};
use crate::diagnostic::{Diagnostic, Reportable};
use crate::env::Env;
use crate::event::{EventContext, EventError};
use crate::exit::Exit;
use crate::output::{GITHUB_OUTPUT_JOB_LIMIT, OutputError, OutputFormat, Outputs};
use crate::secret::{Masker, Secret};
use crate::summary::Summary;
use crate::testing::Capture;

/// How a run ended when it did not end in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything passed.
    Success,
    /// A check failed, nothing needed rolling back (exit 1).
    Failed(String),
    /// A deploy failed and every target was put back on its previous release (exit 1).
    RolledBack(String),
    /// Stopped by a signal; partial results were written (exit 130).
    Interrupted(String),
}

impl Verdict {
    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            Verdict::Success => Exit::Success,
            Verdict::Failed(_) | Verdict::RolledBack(_) => Exit::Failed,
            Verdict::Interrupted(_) => Exit::Interrupted,
        }
    }
}

/// Talks to the runner (or, outside GitHub, to the terminal and stdout) on a tool's behalf.
pub struct Runner {
    env: Env,
    console: Console,
    format: OutputFormat,
    outputs: Outputs,
    summary: Summary,
    stdout: SharedWriter,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("format", &self.format)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

/// In-memory streams of a test runner.
#[derive(Debug, Clone, Default)]
pub struct TestStreams {
    /// Machine output and, under GitHub with `--output-format github`, workflow commands.
    pub stdout: Capture,
    /// Logs.
    pub stderr: Capture,
}

impl Runner {
    /// A runner for `env` writing to the given streams.
    pub fn new(env: Env, common: &CommonArgs, stdout: SharedWriter, stderr: SharedWriter) -> Self {
        let format = match common.output_format {
            OutputFormat::Auto if env.get("GITHUB_OUTPUT").is_some() => OutputFormat::Github,
            OutputFormat::Auto => OutputFormat::Json,
            other => other,
        };
        let github = env.is_github_actions();
        // Workflow commands must not corrupt machine output on stdout.
        let commands = match format {
            OutputFormat::Json | OutputFormat::Dotenv => stderr.clone(),
            _ => stdout.clone(),
        };
        let masker = Masker::default();
        let console = Console::new(
            github,
            env.path("GITHUB_WORKSPACE"),
            commands,
            stderr,
            masker.clone(),
        );
        Self {
            env,
            console,
            format,
            outputs: Outputs::default(),
            summary: Summary::with_masker(masker),
            stdout,
        }
    }

    /// A runner over in-memory streams, for tests.
    pub fn for_test(env: Env, common: &CommonArgs) -> (Self, TestStreams) {
        let streams = TestStreams::default();
        let runner = Self::new(
            env,
            common,
            streams.stdout.writer(),
            streams.stderr.writer(),
        );
        (runner, streams)
    }

    /// The environment snapshot.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The console (logs, annotations, groups, untrusted echo).
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The resolved output format (never `Auto`).
    pub fn output_format(&self) -> OutputFormat {
        self.format
    }

    /// Records a step output; written when the run finishes.
    ///
    /// Text stays text; `bool`, numbers and `serde_json::Value` keep their type in
    /// `--output-format json` (GitHub and dotenv receive their JSON text).
    pub fn set_output(
        &mut self,
        name: &str,
        value: impl Into<crate::output::OutputValue>,
    ) -> Result<(), OutputError> {
        self.outputs.set(name, value)
    }

    /// The outputs recorded so far.
    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    /// The step summary being built.
    pub fn summary(&mut self) -> &mut Summary {
        &mut self.summary
    }

    /// Wraps a secret and masks it (`::add-mask::`, local scrubbing) before anything can print it.
    pub fn secret(&self, value: impl Into<String>) -> Secret {
        let value = value.into();
        self.console.add_mask(&value);
        Secret::new_unregistered(value)
    }

    /// Emits an annotation.
    pub fn annotate(&self, annotation: &Annotation) {
        self.console.annotate(annotation);
    }

    /// A warning without location.
    pub fn warn(&self, message: &str) {
        self.console
            .annotate(&Annotation::new(Level::Warning, message));
    }

    /// A notice without location.
    pub fn notice(&self, message: &str) {
        self.console
            .annotate(&Annotation::new(Level::Notice, message));
    }

    /// Opens a log group.
    pub fn group(&self, title: &str) -> Group {
        self.console.group(title)
    }

    /// The triggering event, `None` outside GitHub Actions.
    pub fn event(&self) -> Result<Option<EventContext>, EventError> {
        EventContext::from_env(&self.env)
    }

    /// Writes outputs and the step summary. Called once, at the end, even after a failure,
    /// so partial results (a `decision`, a report path) still reach the workflow.
    pub fn finish(&mut self) -> Result<(), OutputError> {
        let mut result = self.write_outputs();
        if let Err(error) = self.write_summary() {
            result = result.and(Err(error));
        }
        result
    }

    fn write_outputs(&mut self) -> Result<(), OutputError> {
        match self.format {
            OutputFormat::Github => {
                let path = self
                    .env
                    .path("GITHUB_OUTPUT")
                    .ok_or(OutputError::NoGithubOutputFile)?;
                if self.outputs.github_size() > GITHUB_OUTPUT_JOB_LIMIT {
                    self.warn(&format!(
                        "step outputs take about {} bytes; GitHub allows 1 MB per job, so some may be \
                         dropped: write large lists to files instead",
                        self.outputs.github_size()
                    ));
                }
                let delimiter = format!("ghadelimiter_{}", random_hex(16));
                self.outputs.append_to_github_file(&path, &delimiter)
            }
            OutputFormat::Json => self.write_stdout(&self.outputs.to_json()),
            OutputFormat::Dotenv => {
                let text = self.outputs.to_dotenv()?;
                self.write_stdout(&text)
            }
            OutputFormat::None | OutputFormat::Auto => Ok(()),
        }
    }

    fn write_stdout(&self, text: &str) -> Result<(), OutputError> {
        let mut stdout = match self.stdout.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|source| OutputError::Write {
                path: "stdout".into(),
                source,
            })
    }

    fn write_summary(&mut self) -> Result<(), OutputError> {
        let Some(path) = self.env.path("GITHUB_STEP_SUMMARY") else {
            return Ok(());
        };
        if self.summary.is_empty() {
            return Ok(());
        }
        let text = self.summary.render();
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)?;
            file.write_all(text.as_bytes())
        };
        write().map_err(|source| OutputError::Write { path, source })
    }

    /// Shows an error the tool returned: annotations under GitHub, text locally.
    pub fn report_error<E: Reportable>(&self, error: &E) {
        for diagnostic in error.diagnostics() {
            self.report_diagnostic(&diagnostic);
        }
    }

    /// Shows one diagnostic.
    pub fn report_diagnostic(&self, diagnostic: &Diagnostic) {
        if self.console.is_github() {
            self.console.annotate(&diagnostic.to_annotation());
        } else {
            for line in diagnostic.to_text().lines() {
                self.console.log(line);
            }
        }
    }
}

use std::io::Write as _;

/// Builds a runner over the real stdout/stderr.
pub(crate) fn process_runner(env: Env, common: &CommonArgs) -> Runner {
    Runner::new(
        env,
        common,
        shared(std::io::stdout()),
        shared(std::io::stderr()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(format: OutputFormat) -> CommonArgs {
        CommonArgs {
            output_format: format,
            verbose: false,
        }
    }

    #[test]
    fn auto_writes_github_output_file_with_random_heredoc_delimiter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = dir.path().join("output");
        std::fs::write(&output, "earlier=kept\n").expect("write");
        let env = Env::from_pairs([
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("GITHUB_OUTPUT", output.display().to_string()),
        ]);
        let (mut runner, streams) = Runner::for_test(env, &common(OutputFormat::Auto));
        runner.set_output("changes", "[\"api\"]").expect("valid");
        runner.set_output("multi", "a\nb").expect("valid");
        runner.finish().expect("written");
        let text = std::fs::read_to_string(&output).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "earlier=kept");
        let delimiter = lines[1].strip_prefix("changes<<").expect("heredoc");
        assert!(delimiter.starts_with("ghadelimiter_") && delimiter.len() == 13 + 32);
        assert_eq!(
            lines[2..],
            [
                "[\"api\"]",
                delimiter,
                &format!("multi<<{delimiter}"),
                "a",
                "b",
                delimiter
            ]
        );
        assert_eq!(streams.stdout.text(), "", "nothing on stdout");
    }

    #[test]
    fn auto_prints_json_outside_github() {
        let (mut runner, streams) = Runner::for_test(Env::default(), &common(OutputFormat::Auto));
        runner.set_output("a", "1").expect("valid");
        runner.finish().expect("written");
        assert_eq!(streams.stdout.text(), "{\"a\":\"1\"}\n");
    }

    #[test]
    fn explicit_github_format_without_file_is_an_error() {
        let (mut runner, _) = Runner::for_test(Env::default(), &common(OutputFormat::Github));
        assert!(matches!(
            runner.finish(),
            Err(OutputError::NoGithubOutputFile)
        ));
    }

    #[test]
    fn json_under_github_moves_workflow_commands_to_stderr() {
        let env = Env::from_pairs([("GITHUB_ACTIONS", "true")]);
        let (mut runner, streams) = Runner::for_test(env, &common(OutputFormat::Json));
        runner.warn("careful");
        runner.set_output("a", "1").expect("valid");
        runner.finish().expect("written");
        assert_eq!(streams.stdout.text(), "{\"a\":\"1\"}\n");
        assert_eq!(streams.stderr.text(), "::warning::careful\n");
    }

    #[test]
    fn summary_is_appended_and_scrubbed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = dir.path().join("summary.md");
        let env = Env::from_pairs([("GITHUB_STEP_SUMMARY", summary.display().to_string())]);
        let (mut runner, _) = Runner::for_test(env, &common(OutputFormat::None));
        let secret = runner.secret("s3cr3t_value");
        runner
            .summary()
            .paragraph(&format!("token is {}", secret.expose()));
        runner.finish().expect("written");
        // Scrubbed before markdown escaping (which would turn `_` into `\_`).
        let written = std::fs::read_to_string(&summary).expect("read");
        assert!(!written.contains("s3cr3t"), "{written}");
        assert!(written.starts_with("token is "), "{written}");
    }

    #[test]
    fn secrets_are_masked_before_first_use_under_github() {
        let env = Env::from_pairs([("GITHUB_ACTIONS", "true")]);
        let (runner, streams) = Runner::for_test(env, &common(OutputFormat::Github));
        let secret = runner.secret("p@ss\nword");
        runner.console().log(&format!("using {}", secret.expose()));
        assert_eq!(
            streams.stdout.text(),
            "::add-mask::p@ss%0Aword\n::add-mask::p@ss\n::add-mask::word\n"
        );
        assert_eq!(streams.stderr.text(), "using ***\n");
    }

    #[test]
    fn verdicts_map_to_exit_codes() {
        assert_eq!(Verdict::Success.exit().code(), 0);
        assert_eq!(Verdict::Failed("x".into()).exit().code(), 1);
        assert_eq!(Verdict::RolledBack("x".into()).exit().code(), 1);
        assert_eq!(Verdict::Interrupted("x".into()).exit().code(), 130);
    }
}
