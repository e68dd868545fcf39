//! Results as step outputs, a step summary, a table on stderr and optional list files.

use std::path::Path;

use runner_protocol::Runner;
use runner_protocol::output::{OutputError, OutputValue};

use crate::base_source::BaseSource;
use crate::change::{Change, RepoPath};
use crate::filter::Filter;
use crate::format::{self, ListFormat};
use crate::matcher::{FileSet, Matches};

/// Files shown per filter in the summary and the log.
const PREVIEW: usize = 5;

/// One filter's result.
#[derive(Debug, Clone)]
pub struct FilterResult<'a> {
    /// The filter name.
    pub name: &'a str,
    /// Matching changes.
    set: &'a FileSet,
    /// All changes (the set indexes them).
    changes: &'a [Change],
    /// Number of matching files.
    pub count: usize,
    /// Changed only through `depends-on`.
    pub via_dependency: bool,
}

impl<'a> FilterResult<'a> {
    /// Matching paths, in diff order.
    pub fn paths(&self) -> impl Iterator<Item = &'a RepoPath> + '_ {
        self.set.iter().map(|index| &self.changes[index].path)
    }

    /// True when the filter matched something.
    pub fn changed(&self) -> bool {
        self.count > 0
    }
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// Per filter, in file order.
    pub results: Vec<FilterResult<'a>>,
    /// All changes considered.
    pub total_changes: usize,
    /// What was compared, for humans (`abc123...def456`).
    pub range: String,
    /// Resolved base commit (empty when not applicable).
    pub base: String,
    /// Resolved head commit (empty when not applicable).
    pub head: String,
    /// The rule that chose the base.
    pub base_source: BaseSource,
    /// Extra matrix values per filter; `None` for filters left out of the matrix.
    pub matrix_values: Vec<Option<&'a serde_json::Map<String, serde_json::Value>>>,
}

impl<'a> Report<'a> {
    /// Assembles a report from the matcher's answer.
    pub fn new(
        filters: &'a [Filter],
        changes: &'a [Change],
        matches: &'a Matches,
        range: String,
        base: String,
        head: String,
        base_source: BaseSource,
    ) -> Self {
        let results = filters
            .iter()
            .zip(&matches.files)
            .zip(&matches.via_dependency)
            .map(|((filter, set), via)| FilterResult {
                name: &filter.name,
                set,
                changes,
                count: set.len(),
                via_dependency: *via,
            })
            .collect();
        Self {
            results,
            total_changes: changes.len(),
            range,
            base,
            head,
            base_source,
            matrix_values: filters
                .iter()
                .map(|f| f.in_matrix.then_some(&f.matrix))
                .collect(),
        }
    }

    /// Names of the filters that changed, in file order.
    pub fn changed(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.changed())
            .map(|r| r.name)
            .collect()
    }

    /// `{"include": [{"filter": "api", …matrix values}, …]}` for `strategy.matrix`.
    pub fn matrix(&self) -> serde_json::Value {
        let include: Vec<serde_json::Value> = self
            .results
            .iter()
            .zip(&self.matrix_values)
            .filter(|(r, _)| r.changed())
            .filter_map(|(r, values)| values.map(|values| (r, values)))
            .map(|(r, values)| {
                let mut entry = serde_json::Map::new();
                entry.insert("filter".into(), r.name.into());
                entry.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
                serde_json::Value::Object(entry)
            })
            .collect();
        serde_json::json!({ "include": include })
    }

    /// `{"api": {"changed": true, "count": 3, "files": […]}, …}`; `files` only when lists
    /// are requested.
    pub fn filters_json(&self, with_files: bool) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for result in &self.results {
            let mut entry = serde_json::Map::new();
            entry.insert("changed".into(), result.changed().into());
            entry.insert("count".into(), result.count.into());
            if with_files {
                let files: Vec<String> =
                    result.paths().map(|p| p.to_lossy().into_owned()).collect();
                entry.insert("files".into(), files.into());
            }
            object.insert(result.name.to_owned(), serde_json::Value::Object(entry));
        }
        serde_json::Value::Object(object)
    }

    /// Records every output on the runner.
    ///
    /// Filter names that cannot be output names (`my.service`, `2`: dorny accepts them) get
    /// no per-filter outputs, with a notice; they are in `changes`, `filters` and `matrix`
    /// like any other.
    pub fn set_outputs(&self, runner: &mut Runner, list: ListFormat) -> Result<(), OutputError> {
        let unnamed: Vec<&str> = self
            .results
            .iter()
            .map(|r| r.name)
            .filter(|name| !runner_protocol::output::is_valid_output_name(name))
            .collect();
        if !unnamed.is_empty() {
            runner.notice(&format!(
                "filter name(s) {} cannot be step output names (letters, digits, `_` and `-`, \
                 starting with a letter or `_`): read them from the `changes` and `filters` \
                 outputs",
                unnamed
                    .iter()
                    .map(|n| format!("`{}`", n.escape_debug()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Typed for `--output-format json` (booleans, numbers, arrays, objects); GitHub and
        // dotenv get the same text as before.
        for result in &self.results {
            if unnamed.contains(&result.name) {
                continue;
            }
            runner.set_output(result.name, result.changed())?;
            runner.set_output(&format!("{}_count", result.name), result.count)?;
            if let Some(files) = list.format(result.paths()) {
                let value = match list {
                    ListFormat::Json => OutputValue::json_text(files),
                    _ => OutputValue::Text(files),
                };
                runner.set_output(&format!("{}_files", result.name), value)?;
            }
        }
        runner.set_output("changes", serde_json::json!(self.changed()))?;
        runner.set_output("matrix", self.matrix())?;
        runner.set_output("filters", self.filters_json(list != ListFormat::None))?;
        runner.set_output("base", self.base.clone())?;
        runner.set_output("head", self.head.clone())?;
        runner.set_output("base-source", self.base_source.as_str())?;
        Ok(())
    }

    /// The step summary: one table row per filter.
    pub fn write_summary(&self, runner: &mut Runner) {
        let summary = runner.summary();
        summary.heading(3, "change-detect");
        summary.paragraph(&format!(
            "{} changed files in {}; {} of {} filters changed.",
            self.total_changes,
            self.range,
            self.changed().len(),
            self.results.len()
        ));
        let rows = self.results.iter().map(|r| {
            let mut first: Vec<String> = r
                .paths()
                .take(PREVIEW)
                .map(|p| p.to_lossy().into_owned())
                .collect();
            if r.count > PREVIEW {
                first.push(format!("… {} more", r.count - PREVIEW));
            }
            vec![
                r.name.to_owned(),
                changed_word(r).to_owned(),
                r.count.to_string(),
                first.join("\n"),
            ]
        });
        summary.table(&["filter", "changed", "count", "first files"], rows);
    }

    /// A readable table on stderr, then one line per changed filter with its first files
    /// (file names go through an untrusted block). Few, whole writes: stderr is unbuffered.
    pub fn log_table(&self, runner: &Runner) {
        let console = runner.console();
        let width = self
            .results
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("filter".len());
        let mut table = format!("{} changed files in {}\n", self.total_changes, self.range);
        table.push_str(&format!("{:width$}  {:<14}  count", "filter", "changed"));
        for result in &self.results {
            table.push_str(&format!(
                "\n{:width$}  {:<14}  {}",
                result.name,
                changed_word(result),
                result.count
            ));
        }
        console.log(&table);
        let changed: Vec<&FilterResult<'_>> = self.results.iter().filter(|r| r.changed()).collect();
        if changed.is_empty() {
            return;
        }
        let block = console.untrusted();
        for result in changed {
            let mut line = format!("{}: ", result.name);
            let first: Vec<String> = result
                .paths()
                .take(PREVIEW)
                .map(|p| p.to_lossy().into_owned())
                .collect();
            line.push_str(&first.join(", "));
            if result.count > PREVIEW {
                line.push_str(&format!(", … {} more", result.count - PREVIEW));
            }
            block.line(&line);
        }
    }

    /// What the file lists would take as step outputs, in bytes as GitHub counts them (UTF-16):
    /// every `<filter>_files` value and the `files` arrays of the `filters` output. Computed
    /// name by name, without building the lists.
    pub fn list_output_size(&self, list: ListFormat) -> usize {
        if list == ListFormat::None {
            return 0;
        }
        self.results
            .iter()
            .map(|result| {
                let own = if runner_protocol::output::is_valid_output_name(result.name) {
                    list.utf16_len(result.paths())
                } else {
                    0
                };
                2 * (own + ListFormat::Json.utf16_len(result.paths()))
            })
            .sum()
    }

    /// Writes `<dir>/<filter>.txt` (NUL-terminated raw paths) and `<dir>/<filter>.json`,
    /// streamed name by name (memory does not grow with the lists).
    pub fn write_files(&self, dir: &Path) -> Result<(), std::io::Error> {
        use std::io::Write as _;
        std::fs::create_dir_all(dir)?;
        for result in &self.results {
            let stem = file_stem(result.name);
            let mut raw =
                std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{stem}.txt")))?);
            for path in result.paths() {
                raw.write_all(path.as_bytes())?;
                raw.write_all(b"\0")?;
            }
            raw.flush()?;
            let mut json =
                std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{stem}.json")))?);
            json.write_all(b"[")?;
            for (index, path) in result.paths().enumerate() {
                if index > 0 {
                    json.write_all(b",")?;
                }
                json.write_all(format::json_string(path).as_bytes())?;
            }
            json.write_all(b"]")?;
            json.flush()?;
        }
        Ok(())
    }
}

/// The file name of a filter's lists in `files-dir`: the name itself when it is plain
/// (letters, digits, `.`, `_`, `-`, not starting with `.`), else every other byte as `%XX`,
/// so that no name can leave the directory (`../x`, `a/b`).
pub fn file_stem(name: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if !name.is_empty() && !name.starts_with('.') && name.bytes().all(plain) {
        return name.to_owned();
    }
    name.bytes()
        .map(|b| {
            if plain(b) && b != b'.' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn changed_word(result: &FilterResult<'_>) -> &'static str {
    match (!result.changed(), result.via_dependency) {
        (true, _) => "no",
        (false, true) => "yes (depends)",
        (false, false) => "yes",
    }
}
