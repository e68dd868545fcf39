//! The two text streams a tool writes: workflow commands and human logs.
//!
//! Under GitHub Actions, workflow commands (annotations, groups, masks, stop-commands) go to the
//! command stream, which is stdout unless stdout carries machine output (`--output-format json`
//! or `dotenv`), in which case they go to stderr (the runner reads commands from both).
//! Locally the same calls render as readable text on stderr. Everything is scrubbed of
//! registered secrets before it is written.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::command_rules::{defuse_line, runner_lines};
use crate::escape::{escape_data, escape_property};
use crate::secret::Masker;

/// A writer shared between the runner and the guards it hands out.
pub type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// Wraps a writer so it can be shared.
pub fn shared(writer: impl Write + Send + 'static) -> SharedWriter {
    Arc::new(Mutex::new(Box::new(writer)))
}

fn write_line(writer: &SharedWriter, line: &str) {
    let mut guard = match writer.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    // A closed stdout/stderr must not turn into a panic mid-deploy; there is nowhere to report it.
    let _ = guard.write_all(line.as_bytes());
    let _ = guard.write_all(b"\n");
    let _ = guard.flush();
}

/// Severity of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::notice`
    Notice,
    /// `::warning`
    Warning,
    /// `::error`
    Error,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A message attached to a file position in the GitHub UI (or printed locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Severity.
    pub level: Level,
    /// The message; may span lines.
    pub message: String,
    /// Short title shown in the UI.
    pub title: Option<String>,
    /// File path; made relative to `GITHUB_WORKSPACE` when under it.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based last line.
    pub end_line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// 1-based last column.
    pub end_column: Option<u32>,
}

impl Annotation {
    /// An annotation with only a level and a message.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            title: None,
            file: None,
            line: None,
            end_line: None,
            column: None,
            end_column: None,
        }
    }

    /// Attaches a file position.
    pub fn at(mut self, file: impl Into<String>, line: Option<u32>, column: Option<u32>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self.column = column;
        self
    }

    /// Sets the title.
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The `::level props::message` command, with the runner's own position rules applied up
    /// front (columns need a line and a single-line range; `endLine` needs `line`) so what we
    /// emit is what the runner keeps.
    pub fn to_command(&self, workspace: Option<&Path>) -> String {
        let mut properties: Vec<(&str, String)> = Vec::new();
        if let Some(file) = &self.file {
            properties.push(("file", relative_to_workspace(file, workspace)));
        }
        if let Some(line) = self.line {
            properties.push(("line", line.to_string()));
            let end_line = self.end_line.filter(|end| *end >= line);
            if let Some(end) = end_line {
                properties.push(("endLine", end.to_string()));
            }
            if end_line.is_none_or(|end| end == line) {
                if let Some(column) = self.column {
                    properties.push(("col", column.to_string()));
                    if let Some(end_column) = self.end_column.filter(|end| *end >= column) {
                        properties.push(("endColumn", end_column.to_string()));
                    }
                }
            }
        }
        if let Some(title) = &self.title {
            properties.push(("title", title.clone()));
        }
        let properties = properties
            .iter()
            .map(|(key, value)| format!("{key}={}", escape_property(value)))
            .collect::<Vec<_>>()
            .join(",");
        let separator = if properties.is_empty() { "" } else { " " };
        format!(
            "::{}{separator}{properties}::{}",
            self.level.command(),
            escape_data(&self.message)
        )
    }

    /// The local, human rendering: `error: message` then ` --> file:line:col`.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}: ", self.level.command().replace("notice", "note"));
        if let Some(title) = &self.title {
            text.push_str(title);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        if let Some(file) = &self.file {
            text.push_str("\n --> ");
            text.push_str(file);
            if let Some(line) = self.line {
                text.push_str(&format!(":{line}"));
                if let Some(column) = self.column {
                    text.push_str(&format!(":{column}"));
                }
            }
        }
        text
    }
}

/// `file` relative to the workspace with `/` separators, when it lies inside it.
fn relative_to_workspace(file: &str, workspace: Option<&Path>) -> String {
    let path = Path::new(file);
    match workspace.and_then(|ws| path.strip_prefix(ws).ok()) {
        Some(relative) => relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        None => file.to_owned(),
    }
}

/// Random lowercase hex from the OS generator, for delimiters and stop-command tokens.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    if getrandom::fill(&mut buffer).is_err() {
        // Without OS randomness the delimiter would be guessable; refuse to continue quietly.
        panic!("the operating system random number generator is unavailable");
    }
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where workflow commands and logs are written, with masking applied.
#[derive(Clone)]
pub struct Console {
    github: bool,
    workspace: Option<std::path::PathBuf>,
    commands: SharedWriter,
    log: SharedWriter,
    masker: Masker,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("github", &self.github)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console writing commands to `commands` and logs to `log`.
    pub fn new(
        github: bool,
        workspace: Option<std::path::PathBuf>,
        commands: SharedWriter,
        log: SharedWriter,
        masker: Masker,
    ) -> Self {
        Self {
            github,
            workspace,
            commands,
            log,
            masker,
        }
    }

    /// True when workflow commands are emitted (running under GitHub Actions).
    pub fn is_github(&self) -> bool {
        self.github
    }

    /// The masker shared by every writer of this console.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Writes human log text to stderr, scrubbed of secrets, each line defused for the runner
    /// ([`crate::command_rules::defuse_line`]): log text may hold anything (an input, a file
    /// name, a remote's output, git's messages), and no log line may ever be read as a
    /// workflow command. Those are written only by the methods below.
    pub fn log(&self, text: &str) {
        let text = self.masker.scrub(text);
        let lines = runner_lines(&text);
        if lines.is_empty() {
            write_line(&self.log, "");
        }
        for line in lines {
            write_line(&self.log, &defuse_line(line));
        }
    }

    /// Registers a secret and, under GitHub, emits `::add-mask::` for it and each of its lines.
    pub fn add_mask(&self, value: &str) {
        for piece in self.masker.register(value) {
            if self.github {
                write_line(
                    &self.commands,
                    &format!("::add-mask::{}", escape_data(&piece)),
                );
            }
        }
    }

    /// Emits an annotation (GitHub) or prints it (locally); the message is scrubbed first.
    pub fn annotate(&self, annotation: &Annotation) {
        let mut annotation = annotation.clone();
        annotation.message = self.masker.scrub(&annotation.message);
        annotation.title = annotation.title.map(|t| self.masker.scrub(&t));
        if self.github {
            write_line(
                &self.commands,
                &annotation.to_command(self.workspace.as_deref()),
            );
        } else {
            self.log(&annotation.to_text());
        }
    }

    /// A warning without location: `::warning::` under GitHub (escaped like every annotation),
    /// `warning: ...` locally; scrubbed of secrets first.
    pub fn warn(&self, message: &str) {
        self.annotate(&Annotation::new(Level::Warning, message));
    }

    /// Opens a collapsible group; it closes when the guard drops.
    pub fn group(&self, title: &str) -> Group {
        let title = self.masker.scrub(title);
        if self.github {
            write_line(&self.commands, &format!("::group::{}", escape_data(&title)));
        } else {
            self.log(&format!("==> {title}"));
        }
        Group {
            console: self.clone(),
        }
    }

    /// Starts a block of untrusted text (remote output, file names): under GitHub, workflow
    /// commands are suspended with a random token until the guard drops, so the text cannot
    /// inject `::set-output`, `::add-mask` or annotations.
    pub fn untrusted(&self) -> UntrustedBlock {
        let token = self.github.then(|| {
            let token = random_hex(16);
            write_line(&self.commands, &format!("::stop-commands::{token}"));
            token
        });
        UntrustedBlock {
            console: self.clone(),
            token,
        }
    }
}

/// An open group; `::endgroup::` is written on drop.
#[derive(Debug)]
pub struct Group {
    console: Console,
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.console.github {
            write_line(&self.console.commands, "::endgroup::");
        }
    }
}

/// A block in which untrusted lines are echoed; commands resume on drop.
#[derive(Debug)]
pub struct UntrustedBlock {
    console: Console,
    token: Option<String>,
}

impl UntrustedBlock {
    /// Echoes one line of untrusted text, scrubbed, with control characters made visible.
    pub fn line(&self, text: &str) {
        let text = self.console.masker.scrub(&visible_controls(text));
        if self.token.is_some() {
            write_line(&self.console.commands, &text);
        } else {
            write_line(&self.console.log, &defuse_line(&text));
        }
    }
}

impl Drop for UntrustedBlock {
    fn drop(&mut self) {
        if let Some(token) = &self.token {
            write_line(&self.console.commands, &format!("::{token}::"));
        }
    }
}

/// Replaces control characters (but not tab) with `\u{..}` escapes, so a remote cannot move the
/// cursor, clear the screen or split a line it was given.
pub fn visible_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Capture;

    fn console(github: bool) -> (Console, Capture, Capture) {
        let commands = Capture::default();
        let log = Capture::default();
        let console = Console::new(
            github,
            Some("/work/repo".into()),
            commands.writer(),
            log.writer(),
            Masker::default(),
        );
        (console, commands, log)
    }

    #[test]
    fn annotation_escapes_properties_and_message() {
        let annotation = Annotation {
            title: Some("bad: value, here".into()),
            end_line: Some(3),
            end_column: Some(9),
            ..Annotation::new(Level::Error, "line1\nline2 100%").at(
                "/work/repo/dir/a,b:c.yaml",
                Some(3),
                Some(5),
            )
        };
        assert_eq!(
            annotation.to_command(Some(Path::new("/work/repo"))),
            "::error file=dir/a%2Cb%3Ac.yaml,line=3,endLine=3,col=5,endColumn=9,\
             title=bad%3A value%2C here::line1%0Aline2 100%25"
        );
    }

    #[test]
    fn warn_escapes_a_hostile_message_and_scrubs_secrets() {
        let (commands, log) = (Capture::default(), Capture::default());
        let masker = crate::secret::Masker::default();
        let console = Console::new(true, None, commands.writer(), log.writer(), masker);
        console.add_mask("hunter2");
        console.warn("host a: x\n::error::injected %0A hunter2");
        let text = commands.text();
        let warning = text.lines().last().unwrap_or_default();
        assert_eq!(
            warning,
            "::warning::host a: x%0A::error::injected %250A ***"
        );
        let local = Capture::default();
        let console = Console::new(
            false,
            None,
            Capture::default().writer(),
            local.writer(),
            crate::secret::Masker::default(),
        );
        console.warn("careful");
        assert_eq!(local.text(), "warning: careful\n");
    }

    #[test]
    fn annotation_drops_positions_the_runner_would_drop() {
        let mut annotation = Annotation::new(Level::Warning, "m").at("f", None, Some(4));
        annotation.end_line = Some(2);
        assert_eq!(annotation.to_command(None), "::warning file=f::m");

        let mut multi_line = Annotation::new(Level::Notice, "m").at("f", Some(2), Some(4));
        multi_line.end_line = Some(5);
        assert_eq!(
            multi_line.to_command(None),
            "::notice file=f,line=2,endLine=5::m"
        );

        let mut reversed = Annotation::new(Level::Notice, "m").at("f", Some(5), Some(4));
        reversed.end_line = Some(2);
        reversed.end_column = Some(1);
        assert_eq!(reversed.to_command(None), "::notice file=f,line=5,col=4::m");
    }

    #[test]
    fn annotation_without_properties_has_no_space() {
        assert_eq!(
            Annotation::new(Level::Error, "::x::").to_command(None),
            "::error::::x::"
        );
    }

    #[test]
    fn masks_each_line_of_a_multiline_secret_and_scrubs_annotations() {
        let (console, commands, log) = console(true);
        console.add_mask("first\nsecond");
        console.annotate(&Annotation::new(Level::Error, "leaked second here"));
        console.log("and first too");
        assert_eq!(
            commands.text(),
            "::add-mask::first%0Asecond\n::add-mask::first\n::add-mask::second\n\
             ::error::leaked *** here\n"
        );
        assert_eq!(log.text(), "and *** too\n");
    }

    #[test]
    fn untrusted_text_is_wrapped_in_a_random_stop_token() {
        let (console, commands, _log) = console(true);
        {
            let block = console.untrusted();
            block.line("::add-mask::nothing");
            block.line("::set-output name=x::y");
        }
        let text = commands.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let token = lines[0]
            .strip_prefix("::stop-commands::")
            .expect("stop-commands first");
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(lines[3], format!("::{token}::"));
        // A second block gets a different token.
        drop(console.untrusted());
        assert!(
            !commands
                .text()
                .ends_with(&format!("::{token}::\n::{token}::\n"))
        );
    }

    #[test]
    fn untrusted_lines_make_control_characters_visible() {
        let (console, _commands, log) = console(false);
        console.untrusted().line("a\u{1b}[2Jb\rc");
        assert_eq!(log.text(), "a\\u{1b}[2Jb\\u{d}c\n");
    }

    #[test]
    fn groups_render_locally_as_headers_and_on_github_as_commands() {
        let (github, commands, _) = console(true);
        drop(github.group("deploy\nhost"));
        assert_eq!(commands.text(), "::group::deploy%0Ahost\n::endgroup::\n");

        let (local, commands, log) = console(false);
        drop(local.group("deploy"));
        assert_eq!(commands.text(), "");
        assert_eq!(log.text(), "==> deploy\n");
    }

    #[test]
    fn log_lines_never_become_workflow_commands() {
        let (console, commands, log) = console(true);
        console.log("fetching x\n::warning title=INJECTED::y\rz ##[error]w\r\n  ::add-mask::v");
        console.log("");
        assert_eq!(commands.text(), "");
        assert_eq!(
            log.text(),
            "fetching x\n\\::warning title=INJECTED::y\nz ##\\[error]w\n  \\::add-mask::v\n\n"
        );
        assert!(crate::command_rules::workflow_commands(&log.text()).is_empty());
    }

    #[test]
    fn local_annotations_are_readable_text() {
        let (console, _, log) = console(false);
        console.annotate(&Annotation::new(Level::Error, "bad ref").at(
            "release.yaml",
            Some(4),
            Some(8),
        ));
        assert_eq!(log.text(), "error: bad ref\n --> release.yaml:4:8\n");
    }
}
