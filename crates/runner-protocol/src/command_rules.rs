//! How the GitHub runner finds workflow commands in a step's output, and the one rule that keeps
//! text the suite did not write (inputs, file contents, remote output, server responses, git's
//! messages) from ever becoming one.
//!
//! The runner (actions/runner) reads stdout and stderr with .NET's `StreamReader.ReadLine`
//! (`ProcessInvoker.StartReadStream`): a line ends at `\n`, `\r` or `\r\n`, so a bare carriage
//! return starts a new line. Every line that contains `##[` or `::` goes to
//! `ActionCommandManager.TryProcessCommand` (`OutputManager.OnDataReceived`), which tries two
//! parsers (`ActionCommand.cs`):
//!
//! - `TryParseV2`: the line, after `TrimStart()` (every Unicode white space), starts with `::`;
//!   the command info runs to the next `::`; its first word is the command, the rest
//!   `key=value` properties separated by `,`; the data follows. `  ::error::x` is a command.
//! - `TryParse` (the old form): `##[` *anywhere* in the line, the command info runs to the next
//!   `]`, properties separated by `;`. `log: ##[warning]x` is a command.
//!
//! The command name must be registered ([`RUNNER_COMMANDS`], compared ignoring case); while
//! commands are stopped (`::stop-commands::<token>`) only `<token>` is, and it resumes them.
//! `IndexOf`/`StartsWith` there are culture-sensitive: with ICU (Linux, macOS runners) they skip
//! ignorable code points (most control and format characters: `#\u{ad}#[` can match `##[`), so
//! the model here deletes those before matching, which finds every command the runner could
//! see, and possibly a few more.
//!
//! The rule, applied by [`crate::console::Console`] to every log line and by the output writers
//! to machine output on stdout: a line that could be a command ([`could_be_command`]) is
//! defused ([`defuse_line`]): ignorable characters are shown as `\u{..}`, each `##[` becomes
//! `##\[`, and a leading `::` becomes `\::`. Workflow commands the suite means to send are
//! written only through the console's command stream, with their data escaped
//! ([`crate::escape`]); text that must stay byte-exact goes inside a stop-commands block
//! ([`crate::console::Console::untrusted`]).

use std::borrow::Cow;

/// The commands the runner registers (`ActionCommandManager` and its extensions). A line is a
/// workflow command only when its name is one of these (ignoring case) or the current resume
/// token.
pub const RUNNER_COMMANDS: &[&str] = &[
    "add-mask",
    "add-matcher",
    "add-path",
    "debug",
    "echo",
    "endgroup",
    "error",
    "group",
    "notice",
    "remove-matcher",
    "save-state",
    "set-env",
    "set-output",
    "stop-commands",
    "warning",
];

/// Which of the runner's two parsers recognised a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `::command key=value,key=value::data` (after leading white space).
    Modern,
    /// `##[command key=value;key=value]data`, anywhere in the line.
    Legacy,
}

/// One line the runner would process as a workflow command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowCommand {
    /// 1-based line number in the runner's line splitting.
    pub line_number: usize,
    /// The line as written.
    pub line: String,
    /// The parser that recognised it.
    pub form: Form,
    /// The command name as written.
    pub command: String,
    /// Properties, unescaped as the runner does.
    pub properties: Vec<(String, String)>,
    /// The data, unescaped as the runner does.
    pub data: String,
    /// True when the line started with white space (the suite never writes such a command).
    pub indented: bool,
}

/// Splits `text` into lines the way the runner does (`\n`, `\r`, `\r\n` end a line). A final
/// line terminator does not start another line.
pub fn runner_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\n' => {
                lines.push(&text[start..index]);
                index += 1;
                start = index;
            }
            b'\r' => {
                lines.push(&text[start..index]);
                index += if bytes.get(index + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = index;
            }
            _ => index += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// True for characters ICU's collation may skip when the runner looks for `##[` or `::`:
/// control characters other than tab and the line breaks (which never reach a line), and
/// Unicode's default-ignorable and format characters.
pub fn is_ignorable(c: char) -> bool {
    if c == '\t' {
        return false;
    }
    if c.is_control() {
        return true;
    }
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// `line` without the characters the runner's comparison may skip.
fn significant(line: &str) -> Cow<'_, str> {
    if line.chars().any(is_ignorable) {
        Cow::Owned(line.chars().filter(|c| !is_ignorable(*c)).collect())
    } else {
        Cow::Borrowed(line)
    }
}

/// True when the runner could read `line` (one line, see [`runner_lines`]) as a workflow
/// command of any name, now or after a future runner registers more commands: it has `##[`
/// somewhere, or starts with `::` after white space.
pub fn could_be_command(line: &str) -> bool {
    let line = significant(line);
    line.contains("##[") || line.trim_start().starts_with("::")
}

/// `line` made inert for the runner, unchanged when it could not be a command anyway. Still
/// readable: ignorable characters become `\u{..}`, `##[` becomes `##\[`, a leading `::`
/// becomes `\::`.
pub fn defuse_line(line: &str) -> Cow<'_, str> {
    if !could_be_command(line) {
        return Cow::Borrowed(line);
    }
    let mut visible = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if is_ignorable(c) {
            visible.push_str(&c.escape_unicode().to_string());
        } else {
            visible.push(c);
        }
    }
    let mut text = visible.replace("##[", "##\\[");
    let indent = text.len() - text.trim_start().len();
    if text[indent..].starts_with("::") {
        text.insert(indent, '\\');
    }
    Cow::Owned(text)
}

/// Every runner line of `text` defused ([`defuse_line`]), joined with `\n`.
pub fn defuse(text: &str) -> String {
    runner_lines(text)
        .into_iter()
        .map(defuse_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses one line like the runner (`TryParseV2`, then `TryParse`) with `registered` command
/// names (compared ignoring case); ignorable characters are removed first (see the module
/// documentation).
pub fn parse_line(line: &str, registered: &[&str]) -> Option<WorkflowCommand> {
    let significant = significant(line);
    let is_registered = |name: &str| registered.iter().any(|r| r.eq_ignore_ascii_case(name));
    let command = |form, command: &str, properties, data, indented| WorkflowCommand {
        line_number: 0,
        line: line.to_owned(),
        form,
        command: command.to_owned(),
        properties,
        data,
        indented,
    };
    // TryParseV2.
    let trimmed = significant.trim_start();
    let indented = trimmed.len() != significant.len();
    if let Some(rest) = trimmed.strip_prefix("::") {
        if let Some(end) = rest.find("::") {
            let info = &rest[..end];
            let (name, properties) = match info.find(' ') {
                Some(space) => (&info[..space], Some(info[space + 1..].trim())),
                None => (info, None),
            };
            if is_registered(name) {
                let properties = properties
                    .map(|text| split_properties(text, ',', unescape_property))
                    .unwrap_or_default();
                let data = unescape_data(&rest[end + 2..]);
                return Some(command(Form::Modern, name, properties, data, indented));
            }
        }
    }
    // TryParse.
    let prefix = significant.find("##[")?;
    let after = &significant[prefix + 3..];
    let close = after.find(']')?;
    let info = &after[..close];
    let (name, properties) = match info.find(' ') {
        Some(space) => (&info[..space], Some(&info[space + 1..])),
        None => (info, None),
    };
    if !is_registered(name) {
        return None;
    }
    let properties = properties
        .map(|text| split_properties(text, ';', unescape_legacy))
        .unwrap_or_default();
    let data = unescape_legacy(&after[close + 1..]);
    Some(command(Form::Legacy, name, properties, data, false))
}

fn split_properties(
    text: &str,
    separator: char,
    unescape: fn(&str) -> String,
) -> Vec<(String, String)> {
    text.split(separator)
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, '=').filter(|p| !p.is_empty());
            let key = parts.next()?;
            let value = parts.next()?;
            Some((key.to_owned(), unescape(value)))
        })
        .collect()
}

fn unescape_data(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

fn unescape_property(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

fn unescape_legacy(text: &str) -> String {
    text.replace("%3B", ";")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%25", "%")
}

/// Every workflow command the runner would process in `output` (one stream, or stdout and
/// stderr concatenated), following `stop-commands` and the resume token like
/// `ActionCommandManager.TryProcessCommand`. The stop and resume lines themselves are included.
pub fn workflow_commands(output: &str) -> Vec<WorkflowCommand> {
    let mut found = Vec::new();
    let mut stop_token: Option<String> = None;
    for (index, line) in runner_lines(output).into_iter().enumerate() {
        let mut registered: Vec<&str> = RUNNER_COMMANDS.to_vec();
        if let Some(token) = &stop_token {
            registered.push(token);
        }
        let Some(mut command) = parse_line(line, &registered) else {
            continue;
        };
        command.line_number = index + 1;
        match &stop_token {
            Some(token) => {
                if command.command.eq_ignore_ascii_case(token) {
                    stop_token = None;
                    found.push(command);
                }
            }
            None => {
                if command.command.eq_ignore_ascii_case("stop-commands") {
                    stop_token = Some(command.data.clone());
                }
                found.push(command);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines an attacker would try, with whether the runner processes them as a command.
    const LINES: &[(&str, bool)] = &[
        ("::warning::x", true),
        ("::WARNING title=a::x", true),
        ("   ::error::x", true),
        ("\t::notice::x", true),
        ("\u{a0}\u{2003}::add-mask::x", true),
        ("log: ##[warning]x", true),
        ("##[set-output name=a;]b", true),
        ("prefix ##[error file=a;line=1]m", true),
        ("#\u{ad}#[warning]x", true),
        ("\u{200b}##[warning]x", true),
        ("::stop-commands::tok", true),
        ("x ::warning::y", false),
        ("::unknown::x", false),
        ("::warning x", false),
        ("##[section]x", false),
        ("## [warning]x", false),
        ("#\\#[warning]x", false),
        ("\\::warning::x", false),
        ("plain text", false),
    ];

    #[test]
    fn parses_lines_like_the_runner() {
        for (line, expected) in LINES {
            assert_eq!(
                parse_line(line, RUNNER_COMMANDS).is_some(),
                *expected,
                "{line:?}"
            );
        }
        let command = parse_line("  ::error file=a%3Ab.rs,line=3::m%0An", RUNNER_COMMANDS)
            .expect("a command");
        assert_eq!(command.form, Form::Modern);
        assert!(command.indented);
        assert_eq!(
            command.properties,
            [
                ("file".to_owned(), "a:b.rs".to_owned()),
                ("line".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(command.data, "m\nn");
        let legacy = parse_line("x ##[warning title=t%5D]d%3B", RUNNER_COMMANDS).expect("legacy");
        assert_eq!(legacy.form, Form::Legacy);
        assert_eq!(legacy.properties, [("title".to_owned(), "t]".to_owned())]);
        assert_eq!(legacy.data, "d;");
    }

    #[test]
    fn splits_lines_on_lf_cr_and_crlf() {
        assert_eq!(runner_lines("a\nb\rc\r\nd\n"), ["a", "b", "c", "d"]);
        assert_eq!(runner_lines("\n\n"), ["", ""]);
        assert!(runner_lines("").is_empty());
    }

    #[test]
    fn every_command_like_line_is_flagged_and_defused() {
        for (line, processed) in LINES {
            if *processed {
                assert!(could_be_command(line), "{line:?}");
            }
            let defused = defuse_line(line);
            assert!(!could_be_command(&defused), "{line:?} -> {defused:?}");
            assert!(
                parse_line(&defused, RUNNER_COMMANDS).is_none(),
                "{defused:?}"
            );
            // Idempotent, and harmless text is left alone.
            assert_eq!(defuse_line(&defused), defused);
        }
        assert_eq!(defuse_line("log: ##[warning]x"), "log: ##\\[warning]x");
        assert_eq!(defuse_line("  ::error::x"), "  \\::error::x");
        assert_eq!(defuse_line("#\u{ad}#[x]"), "#\\u{ad}#[x]");
        assert_eq!(defuse_line("x ::warning::y"), "x ::warning::y");
    }

    #[test]
    fn defuse_splits_where_the_runner_splits() {
        let text = "ok\r::warning::a\n  ##[error]b\r\n::set-output name=x::y";
        let defused = defuse(text);
        assert!(workflow_commands(&defused).is_empty(), "{defused}");
        assert_eq!(defused.lines().count(), 4);
    }

    #[test]
    fn stop_commands_hide_everything_but_the_token() {
        let text =
            "::stop-commands::t0k\n::warning::hidden\n##[error]hidden\n::T0K::\n::notice::seen";
        let commands = workflow_commands(text);
        let names: Vec<&str> = commands.iter().map(|c| c.command.as_str()).collect();
        assert_eq!(names, ["stop-commands", "T0K", "notice"]);
        assert_eq!(commands[2].line_number, 5);
    }
}
