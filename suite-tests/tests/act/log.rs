//! act's `--json` log, read back: per step, its result, outputs, annotations, summary, masks,
//! exit status and raw output lines; and the checks act itself is too lenient to make.

use std::collections::BTreeMap;

use serde_json::Value;
use suite_tests::runner_rules::is_workflow_command;

/// Commands the suite's steps may send on purpose. Anything else a step's output makes into a
/// command (`set-env`, `add-path`, `save-state`, an unknown one) came from data, not from us.
const EXPECTED_COMMANDS: &[&str] = &[
    "error",
    "warning",
    "notice",
    "debug",
    "add-mask",
    "group",
    "endgroup",
    "stop-commands",
    // act names a stop-commands block's resume token after the token itself, and logs lines
    // inside the block as `ignored`; both are checked separately below.
    "ignored",
    // Written through GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, logged by act as commands.
    "set-output",
    "summary",
];

/// One act run's events, in order.
#[derive(Debug)]
pub(crate) struct ActLog {
    events: Vec<Value>,
    /// act's exit code.
    pub(crate) code: Option<i32>,
    /// Lines that were not JSON (act's own errors).
    pub(crate) other: String,
}

/// An annotation a step sent.
#[derive(Debug, Clone)]
pub(crate) struct Annotation {
    /// `error`, `warning` or `notice`.
    pub(crate) level: String,
    /// Its properties (`file`, `line`, `col`, `title`).
    pub(crate) properties: BTreeMap<String, String>,
    /// The message.
    pub(crate) message: String,
}

fn step_id(event: &Value) -> Vec<String> {
    event["stepID"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl ActLog {
    /// Parses act's stdout (`--json`: one JSON object a line).
    pub(crate) fn parse(stdout: &str, code: Option<i32>) -> Self {
        let mut events = Vec::new();
        let mut other = String::new();
        for line in stdout.lines() {
            match serde_json::from_str::<Value>(line) {
                Ok(event) if event.is_object() => events.push(event),
                _ => {
                    other.push_str(line);
                    other.push('\n');
                }
            }
        }
        Self {
            events,
            code,
            other,
        }
    }

    /// Events of one job (act's `jobID`) and, below it, one step path (`["gate"]` is the
    /// `uses:` step, `["gate", "run"]` the composite's inner step).
    fn of<'a>(&'a self, job: &'a str, step: &'a [&'a str]) -> impl Iterator<Item = &'a Value> {
        self.events.iter().filter(move |event| {
            event["jobID"].as_str() == Some(job)
                && step_id(event)
                    .iter()
                    .map(String::as_str)
                    .eq(step.iter().copied())
        })
    }

    /// Every `jobID` with its final result (`success`/`failure`).
    pub(crate) fn job_results(&self) -> BTreeMap<String, String> {
        self.events
            .iter()
            .filter_map(|event| {
                Some((
                    event["jobID"].as_str()?.to_owned(),
                    event["jobResult"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// The result of the step's main stage (`success`, `failure`, `skipped`).
    pub(crate) fn step_result(&self, job: &str, step: &[&str]) -> Option<String> {
        self.of(job, step)
            .filter(|event| event["stage"].as_str() != Some("Post"))
            .filter_map(|event| event["stepResult"].as_str())
            .last()
            .map(str::to_owned)
    }

    /// The exit status act reports for a failed step (`exit status N`).
    pub(crate) fn exit_status(&self, job: &str, step: &[&str]) -> Option<i32> {
        self.of(job, step)
            .filter_map(|event| {
                event["msg"]
                    .as_str()?
                    .strip_prefix("exit status ")?
                    .trim()
                    .parse()
                    .ok()
            })
            .last()
    }

    /// The outputs a `uses:` step exposes (`steps.<id>.outputs.*`): what act set at that level.
    pub(crate) fn outputs(&self, job: &str, step: &[&str]) -> BTreeMap<String, String> {
        self.of(job, step)
            .filter(|event| event["command"].as_str() == Some("set-output"))
            .filter_map(|event| {
                Some((
                    event["name"].as_str()?.to_owned(),
                    event["arg"].as_str().unwrap_or_default().to_owned(),
                ))
            })
            .collect()
    }

    /// The annotations a step sent.
    pub(crate) fn annotations(&self, job: &str, step: &[&str]) -> Vec<Annotation> {
        self.of(job, step)
            .filter(|event| {
                matches!(
                    event["command"].as_str(),
                    Some("error" | "warning" | "notice")
                )
            })
            .map(|event| Annotation {
                level: event["command"].as_str().unwrap_or_default().to_owned(),
                properties: event["kvPairs"]
                    .as_object()
                    .map(|pairs| {
                        pairs
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                message: event["arg"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// The step summary a step wrote (act logs it as a `summary` command with its `content`).
    pub(crate) fn summary(&self, job: &str, step: &[&str]) -> String {
        self.of(job, step)
            .filter(|event| event["command"].as_str() == Some("summary"))
            .filter_map(|event| event["content"].as_str())
            .collect()
    }

    /// Values a step masked with `::add-mask::`.
    pub(crate) fn masks(&self, job: &str, step: &[&str]) -> Vec<String> {
        self.of(job, step)
            .filter(|event| event["command"].as_str() == Some("add-mask"))
            .filter_map(|event| event["arg"].as_str().map(str::to_owned))
            .collect()
    }

    /// Where act is more lenient than GitHub's runner: every line of step output that GitHub
    /// would read as a workflow command but act printed as text (`##[` after the line start,
    /// `::` after leading whitespace), outside a stop-commands block; and every command other
    /// than the expected ones. Each finding names the step and the line.
    pub(crate) fn runner_rule_violations(&self) -> Vec<String> {
        let mut findings = Vec::new();
        let mut stopped: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for event in &self.events {
            let step = step_id(event);
            if let Some(command) = event["command"].as_str() {
                if command == "stop-commands" {
                    let token = event["arg"].as_str().unwrap_or_default().to_owned();
                    stopped.insert(step.clone(), token);
                    continue;
                }
                if stopped.get(&step).is_some_and(|token| token == command) {
                    stopped.remove(&step);
                    continue;
                }
                // Without `raw`, act read the command from a file (GITHUB_OUTPUT, GITHUB_ENV,
                // GITHUB_STEP_SUMMARY), not from a line of output.
                let from_output = event["raw"].is_string();
                if from_output && !EXPECTED_COMMANDS.contains(&command) {
                    findings.push(format!(
                        "{step:?}: unexpected workflow command `{command}`: {}",
                        event["raw"].as_str().unwrap_or_default().trim_end()
                    ));
                }
                continue;
            }
            if event["raw_output"].as_bool() != Some(true) || stopped.contains_key(&step) {
                continue;
            }
            for line in event["msg"]
                .as_str()
                .unwrap_or_default()
                .split(['\n', '\r'])
            {
                if is_workflow_command(line) {
                    findings.push(format!(
                        "{step:?}: GitHub would read this line as a workflow command: {line:?}"
                    ));
                }
            }
        }
        findings
    }

    /// The whole log as text, for assertion messages (the tail, where failures are).
    pub(crate) fn tail(&self) -> String {
        let lines: Vec<String> = self
            .events
            .iter()
            .map(|event| {
                format!(
                    "{:?} {}",
                    step_id(event),
                    event["msg"].as_str().unwrap_or_default().trim_end()
                )
            })
            .collect();
        let start = lines.len().saturating_sub(150);
        format!("{}\n{}", lines[start..].join("\n"), self.other)
    }

    /// True when `text` appears anywhere in act's output (raw lines, commands, messages).
    pub(crate) fn contains(&self, text: &str) -> bool {
        self.other.contains(text)
            || self
                .events
                .iter()
                .any(|event| event["msg"].as_str().is_some_and(|msg| msg.contains(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::ActLog;

    fn event(step: &str, fields: &str) -> String {
        format!("{{\"jobID\":\"j\",\"stepID\":[\"{step}\",\"run\"],{fields}}}")
    }

    #[test]
    fn flags_what_github_would_read_as_a_command_and_act_printed_as_text() {
        let lines = [
            event("a", r#""raw_output":true,"msg":"fine\n""#),
            event(
                "a",
                r###""raw_output":true,"msg":"x ##[warning]mid-line\n""###,
            ),
            event("a", r#""raw_output":true,"msg":"  ::warning::indented\n""#),
            event(
                "b",
                r#""command":"stop-commands","arg":"tok","raw":"::stop-commands::tok\n""#,
            ),
            event(
                "b",
                r###""raw_output":true,"msg":"y ##[warning]inside the block\n""###,
            ),
            event("b", r#""command":"tok","arg":"","raw":"::tok::\n""#),
            event(
                "b",
                r###""raw_output":true,"msg":"z ##[warning]after the block\n""###,
            ),
            event("c", r#""command":"set-env","raw":"::set-env name=A::1\n""#),
            event("c", r#""command":"set-env","name":"A","arg":"1""#),
        ];
        let log = ActLog::parse(&lines.join("\n"), Some(0));
        let found = log.runner_rule_violations();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].contains("mid-line") && found[1].contains("indented"),
            "{found:#?}"
        );
        assert!(found[2].contains("after the block"), "{found:#?}");
        assert!(found[3].contains("set-env"), "{found:#?}");
    }
}
