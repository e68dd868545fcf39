//! GitHub's runner rules for workflow commands, as the runner applies them to a step's output
//! (actions/runner `ActionCommandManager`): a line is a command when, after leading whitespace,
//! it starts with `::` (the v2 form), or when it holds `##[` anywhere (the v1 form). Lines end
//! at `\n`, `\r\n` or a lone `\r` (the runner reads the stream with `ReadLine`).
//!
//! act is more lenient than GitHub (it finds `##[` only at a line start), so the suite checks
//! raw output against these rules itself.

/// One line of output that GitHub's runner would take as a workflow command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// 1-based line number in the checked text.
    pub line: usize,
    /// The line, as printed.
    pub text: String,
}

/// True when GitHub's runner would read `line` (without its line ending) as a command.
pub fn is_workflow_command(line: &str) -> bool {
    line.trim_start().starts_with("::") || line.contains("##[")
}

/// Every line of `output` that GitHub's runner would read as a workflow command.
pub fn workflow_commands(output: &str) -> Vec<CommandLine> {
    output
        .split(['\n', '\r'])
        .enumerate()
        .filter(|(_, line)| is_workflow_command(line))
        .map(|(index, line)| CommandLine {
            line: index + 1,
            text: line.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_commands_the_way_githubs_runner_does() {
        let cases: &[(&str, bool)] = &[
            ("::warning::x", true),
            ("   ::error title=a::b", true),
            ("\t::add-mask::x", true),
            ("note ##[warning]mid-line", true),
            ("##[group]x", true),
            ("plain text", false),
            ("a :: b", false),
            ("x\\n::warning::y", false),
            ("#\\#[warning]y", false),
            (": :warning", false),
        ];
        for (line, expected) in cases {
            assert_eq!(is_workflow_command(line), *expected, "{line:?}");
        }
    }

    #[test]
    fn splits_lines_at_lone_carriage_returns_too() {
        let found = workflow_commands("ok\rinjected ::no\r::warning::x\nfine");
        assert_eq!(
            found,
            vec![CommandLine {
                line: 3,
                text: "::warning::x".to_owned()
            }]
        );
    }
}
