//! The step summary (`$GITHUB_STEP_SUMMARY`): markdown, kept under GitHub's 1 MiB per step.

use crate::secret::Masker;

/// GitHub rejects a step summary larger than this (the upload fails with an error annotation).
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// Room kept for the truncation line.
const TRUNCATION_RESERVE: usize = 512;

/// A markdown document with a byte budget. Blocks that do not fit are dropped whole (table rows
/// one by one) and an explicit truncation line says how much was left out.
///
/// Secrets are scrubbed from every piece of text *before* markdown escaping: escaping first
/// would turn `my_token` into `my\_token`, which no masker recognises.
#[derive(Debug, Clone)]
pub struct Summary {
    text: String,
    limit: usize,
    omitted_bytes: usize,
    masker: Masker,
}

impl Default for Summary {
    fn default() -> Self {
        Self::with_limit(STEP_SUMMARY_LIMIT)
    }
}

impl Summary {
    /// A summary with a custom limit (tests).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            text: String::new(),
            limit,
            omitted_bytes: 0,
            masker: Masker::default(),
        }
    }

    /// A summary that scrubs the secrets registered with `masker`.
    pub fn with_masker(masker: Masker) -> Self {
        Self {
            masker,
            ..Self::default()
        }
    }

    fn inline(&self, text: &str) -> String {
        escape_inline(&self.masker.scrub(text))
    }

    fn cell(&self, text: &str) -> String {
        escape_cell(&self.masker.scrub(text))
    }

    fn budget(&self) -> usize {
        self.limit.saturating_sub(TRUNCATION_RESERVE)
    }

    /// Appends raw markdown if it fits (and nothing was omitted before it).
    pub fn push_markdown(&mut self, markdown: &str) {
        let markdown = &self.masker.scrub(markdown);
        if self.omitted_bytes == 0 && self.text.len() + markdown.len() <= self.budget() {
            self.text.push_str(markdown);
        } else {
            self.omitted_bytes += markdown.len();
        }
    }

    /// `## text`
    pub fn heading(&mut self, level: u8, text: &str) {
        let hashes = "#".repeat(usize::from(level.clamp(1, 6)));
        self.push_markdown(&format!("{hashes} {}\n\n", self.inline(text)));
    }

    /// A paragraph of plain text (escaped).
    pub fn paragraph(&mut self, text: &str) {
        self.push_markdown(&format!("{}\n\n", self.inline(text)));
    }

    /// A table; cells are escaped, rows added while they fit.
    pub fn table<R, C>(&mut self, headers: &[&str], rows: R)
    where
        R: IntoIterator<Item = Vec<C>>,
        C: AsRef<str>,
    {
        let header = format!(
            "| {} |\n|{}|\n",
            headers
                .iter()
                .map(|h| self.cell(h))
                .collect::<Vec<_>>()
                .join(" | "),
            headers
                .iter()
                .map(|_| " --- ")
                .collect::<Vec<_>>()
                .join("|")
        );
        self.push_markdown(&header);
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| self.cell(c.as_ref())).collect();
            self.push_markdown(&format!("| {} |\n", cells.join(" | ")));
        }
        self.push_markdown("\n");
    }

    /// A mermaid gantt chart (GitHub renders mermaid in step summaries): one section per
    /// distinct `section` in order of first appearance, one bar per task, times in milliseconds
    /// from the start (axis `MM:SS`). Every label goes through [`mermaid_label`] after secrets are
    /// scrubbed, so no value can end the fence, open HTML, or add mermaid statements.
    pub fn gantt(&mut self, title: &str, tasks: &[GanttTask]) {
        let mut chart = format!(
            "```mermaid\ngantt\n    title {}\n    dateFormat x\n    axisFormat %M:%S\n",
            mermaid_label(&self.masker.scrub(title))
        );
        let mut sections: Vec<&str> = Vec::new();
        for task in tasks {
            if !sections.contains(&task.section.as_str()) {
                sections.push(&task.section);
            }
        }
        for section in sections {
            chart.push_str(&format!(
                "    section {}\n",
                mermaid_label(&self.masker.scrub(section))
            ));
            for task in tasks.iter().filter(|t| t.section == section) {
                chart.push_str(&format!(
                    "    {} :{}, {}\n",
                    mermaid_label(&self.masker.scrub(&task.name)),
                    task.start_ms,
                    task.end_ms.max(task.start_ms + 1)
                ));
            }
        }
        chart.push_str("```\n\n");
        self.push_markdown(&chart);
    }

    /// Bytes left out so far.
    pub fn omitted_bytes(&self) -> usize {
        self.omitted_bytes
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.omitted_bytes == 0
    }

    /// The final markdown, with the truncation line when something was left out.
    pub fn render(&self) -> String {
        let mut text = self.text.clone();
        if self.omitted_bytes > 0 {
            text.push_str(&format!(
                "\n> **Summary truncated:** {} bytes left out to stay under GitHub's 1 MiB \
                 step-summary limit. The full report is in the step log and the JSON output.\n",
                self.omitted_bytes
            ));
        }
        text
    }
}

/// Escapes text for inline markdown: HTML specials, and backslash-escapes markdown specials.
pub fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One bar of a [`Summary::gantt`] chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GanttTask {
    /// The section (row group) it belongs to, e.g. a host.
    pub section: String,
    /// The bar's label, e.g. a phase.
    pub name: String,
    /// Start, milliseconds from the chart's origin.
    pub start_ms: u64,
    /// End, milliseconds from the chart's origin (at least `start_ms + 1` is drawn).
    pub end_ms: u64,
}

/// A label mermaid and markdown read literally: ASCII letters, digits, space and `._-@()/+`
/// kept, every other character (`:` and `;` that end a statement, `#` and `%` that start
/// entities and comments, backticks that could close the fence, `<>&"'` of HTML, `,`, line
/// breaks, non-ASCII) becomes `_`; at most 80 characters, never empty.
pub fn mermaid_label(text: &str) -> String {
    let label: String = text
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-@()/+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let label = label.trim();
    if label.is_empty() {
        "_".to_owned()
    } else {
        label.to_owned()
    }
}

/// Escapes a table cell: as inline text, with line breaks kept as `<br>`.
pub fn escape_cell(text: &str) -> String {
    text.split('\n')
        .map(escape_inline)
        .collect::<Vec<_>>()
        .join("<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gantt_labels_cannot_leave_the_chart_or_the_fence() {
        let hostile =
            "web-1\n```\n<img src=x onerror=alert(1)>\nclick a call b()%%{init: {}}%%; #x: 1, 2";
        let mut summary = Summary::default();
        summary.gantt(
            hostile,
            &[
                GanttTask {
                    section: hostile.into(),
                    name: "upload".into(),
                    start_ms: 0,
                    end_ms: 1500,
                },
                GanttTask {
                    section: hostile.into(),
                    name: hostile.into(),
                    start_ms: 1500,
                    end_ms: 1500,
                },
            ],
        );
        let text = summary.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "```mermaid");
        assert_eq!(text.matches("```").count(), 2, "only our own fence: {text}");
        let label =
            "web-1______img src_x onerror_alert(1)__click a call b()___init_ ______ _x_ 1_ 2";
        assert_eq!(
            lines,
            [
                "```mermaid",
                "gantt",
                &format!("    title {label}"),
                "    dateFormat x",
                "    axisFormat %M:%S",
                &format!("    section {label}"),
                "    upload :0, 1500",
                &format!("    {label} :1500, 1501"),
                "```",
                "",
            ]
        );
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        let mut summary = Summary::default();
        summary.table(&["file", "n"], [vec!["a|b\nc<script>", "1"]]);
        assert_eq!(
            summary.render(),
            "| file | n |\n| --- | --- |\n| a\\|b<br>c&lt;script&gt; | 1 |\n\n"
        );
    }

    #[test]
    fn stays_under_limit_with_an_explicit_truncation_line() {
        let mut summary = Summary::default();
        let row = vec!["x".repeat(1000)];
        summary.table(&["big"], std::iter::repeat_n(row, 2000));
        let text = summary.render();
        assert!(text.len() <= STEP_SUMMARY_LIMIT, "{}", text.len());
        assert!(
            text.len() > STEP_SUMMARY_LIMIT - 2 * 1024,
            "used the budget"
        );
        assert!(summary.omitted_bytes() > 900_000);
        assert!(text.contains("**Summary truncated:**"));
        assert!(text.contains(&format!("{} bytes left out", summary.omitted_bytes())));
    }

    #[test]
    fn nothing_after_a_truncation_sneaks_in() {
        let mut summary = Summary::with_limit(600);
        summary.paragraph(&"a".repeat(80));
        summary.paragraph(&"b".repeat(200));
        summary.paragraph("c");
        let text = summary.render();
        assert!(text.contains(&"a".repeat(80)));
        assert!(!text.contains('b') || !text.contains("bbb"));
        assert!(!text.contains("\nc\n"));
        assert_eq!(summary.omitted_bytes(), 202 + 3);
    }

    #[test]
    fn secrets_are_scrubbed_before_markdown_escaping() {
        let masker = Masker::default();
        masker.register("my_secret_token");
        let mut summary = Summary::with_masker(masker);
        summary.paragraph("value my_secret_token");
        summary.table(&["k"], [vec!["my_secret_token|x"]]);
        let text = summary.render();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("value \\*\\*\\*"), "{text}");
    }

    #[test]
    fn headings_escape_markdown() {
        let mut summary = Summary::default();
        summary.heading(2, "release *v1* [x](y)");
        assert_eq!(summary.render(), "## release \\*v1\\* \\[x\\](y)\n\n");
    }
}
