//! The filters file: dorny/paths-filter's YAML format, plus an extended form per filter.
//!
//! ```yaml
//! shared: &shared
//!   - crates/shared/**
//! api:                       # a pattern, a list (nested lists from anchors flatten) ...
//!   - *shared
//!   - services/api/**
//! docs:                      # ... or a map of statuses to patterns
//!   added|modified: docs/**
//! worker:                    # extended form (change-detect only)
//!   paths: services/worker/**
//!   exclude: ["**/*.md"]
//!   depends-on: [shared]
//!   predicate-quantifier: ordered
//!   matrix: { dir: services/worker }
//! ```
//!
//! serde_yaml_ng resolves anchors and merge keys but keeps no positions for values, so errors
//! find their line and column with a small [`Locator`] over the source text: the filter's key
//! line, then the offending scalar inside that filter's block (or anywhere, for a value that
//! came through an alias).

use std::path::PathBuf;

use runner_protocol::Diagnostic;
use runner_protocol::diagnostic::Snippet;
use serde_yaml_ng::Value;

use crate::change::{Status, StatusSet};
use crate::glob::Pattern;

/// Output names change-detect writes itself; a filter may not take them.
pub const RESERVED_NAMES: &[&str] = crate::report::STATIC_OUTPUTS;

/// Keys of the extended filter form.
const EXTENDED_KEYS: &[&str] = &[
    "paths",
    "exclude",
    "depends-on",
    "predicate-quantifier",
    "matrix",
];

/// How a filter combines its rules for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantifier {
    /// The file matches at least one rule (dorny's default).
    #[default]
    Some,
    /// The file matches every rule (dorny's `predicate-quantifier: every`).
    Every,
    /// gitignore-like: rules are read in order, the last rule whose glob matches decides, and
    /// a `!` rule excludes instead of matching everything else.
    Ordered,
}

impl Quantifier {
    /// Parses `some`, `every` or `ordered`.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "some" => Some(Quantifier::Some),
            "every" => Some(Quantifier::Every),
            "ordered" => Some(Quantifier::Ordered),
            _ => None,
        }
    }
}

/// One rule: optional statuses and one or more patterns (a status map with a list value is one
/// rule whose patterns are OR-ed, as picomatch does with an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Statuses the rule applies to; `None` means any.
    pub statuses: Option<StatusSet>,
    /// The patterns.
    pub patterns: Vec<Pattern>,
}

/// A named filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The YAML key; also the output name.
    pub name: String,
    /// The rules that select files.
    pub rules: Vec<Rule>,
    /// Files matching any of these rules are left out.
    pub exclude: Vec<Rule>,
    /// Filters whose changes count as changes of this one.
    pub depends_on: Vec<String>,
    /// Overrides the run's quantifier.
    pub quantifier: Option<Quantifier>,
    /// Extra values for this filter's `matrix` include entry.
    pub matrix: serde_json::Map<String, serde_json::Value>,
    /// False with `matrix: false`: the filter never gets a `matrix` entry (a shared crate
    /// that only feeds `depends-on`).
    pub in_matrix: bool,
}

/// Where the filters text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file (path as given, relative to the working directory).
    File(PathBuf),
    /// The `filters` input itself.
    Inline,
}

/// A configuration error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// What is wrong.
    pub message: String,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// Dotted path of the offending value (`api.exclude[1]`).
    pub field: Option<String>,
    /// The offending source line and the width to underline.
    pub snippet: Option<(String, usize)>,
    /// What to write instead.
    pub hint: Option<String>,
}

impl ConfigError {
    /// The diagnostic the runner renders, for filters text from `origin`.
    pub fn diagnostic(&self, origin: &Origin) -> Diagnostic {
        let mut diagnostic = Diagnostic::new(self.message.clone());
        match origin {
            Origin::File(path) => {
                diagnostic = diagnostic.at(path.display().to_string(), self.line, self.column);
                if let (Some((text, width)), Some(_)) = (&self.snippet, self.line) {
                    diagnostic.snippet = Some(Snippet {
                        text: text.clone(),
                        width: *width,
                        label: None,
                    });
                }
            }
            Origin::Inline => {
                if let Some(line) = self.line {
                    let column = self
                        .column
                        .map_or(String::new(), |c| format!(", column {c}"));
                    diagnostic.message = format!(
                        "{} (line {line}{column} of the `filters` input)",
                        self.message
                    );
                }
            }
        }
        if let Some(field) = &self.field {
            diagnostic = diagnostic.for_field(field.clone());
        }
        if let Some(hint) = &self.hint {
            diagnostic = diagnostic.with_hint(hint.clone());
        }
        diagnostic
    }
}

/// Parses filters text. An empty document means no filters.
pub fn parse(text: &str) -> Result<Vec<Filter>, ConfigError> {
    crate::limits::check_size(text.len())?;
    crate::limits::check_structure(text)?;
    let locator = Locator::new(text);
    let error = |message: String| ConfigError {
        message,
        line: None,
        column: None,
        field: None,
        snippet: None,
        hint: None,
    };
    let mut document: Value = match serde_yaml_ng::from_str(text) {
        Ok(value) => value,
        Err(yaml) => {
            let location = yaml.location();
            let message = format!("the filters are not valid YAML: {yaml}");
            let mut config = error(message);
            if let Some(location) = location {
                config = locator.place(config, location.line(), location.column(), 1);
            }
            return Err(config);
        }
    };
    document
        .apply_merge()
        .map_err(|e| error(format!("invalid YAML merge key: {e}")))?;
    let mapping = match document {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(mapping) => mapping,
        _ => {
            let mut config = locator.place(
                error("the filters must be a YAML mapping of filter names to patterns".into()),
                1,
                1,
                1,
            );
            config.hint = Some("write `name: pattern` or `name: [pattern, …]` per filter".into());
            return Err(config);
        }
    };
    let context = Context { locator: &locator };
    let mut filters = Vec::with_capacity(mapping.len());
    for (key, value) in mapping {
        // JavaScript object keys are strings: dorny's `2:` and `true:` are filters "2" and
        // "true".
        let name = match &key {
            Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            other => other.as_str().map(str::to_owned),
        };
        let Some(name) = name else {
            let shown = serde_yaml_ng::to_string(&key).unwrap_or_default();
            return Err(context.at_key(
                None,
                format!("filter name `{}` is not a string", shown.trim()),
                "quote the name: `\"1\": pattern`",
            ));
        };
        filters.push(context.filter(&name, &value)?);
    }
    context.check_names(&filters)?;
    context.check_dependencies(&filters)?;
    Ok(filters)
}

struct Context<'a> {
    locator: &'a Locator<'a>,
}

impl Context<'_> {
    fn base_error(
        &self,
        message: String,
        field: Option<String>,
        hint: Option<String>,
    ) -> ConfigError {
        ConfigError {
            message,
            line: None,
            column: None,
            field,
            snippet: None,
            hint,
        }
    }

    /// An error located at a filter's key.
    fn at_key(&self, filter: Option<&str>, message: String, hint: &str) -> ConfigError {
        let error = self.base_error(message, filter.map(str::to_owned), Some(hint.to_owned()));
        match filter.and_then(|name| self.locator.key(name)) {
            Some((line, column, width)) => self.locator.place(error, line, column, width),
            None => error,
        }
    }

    /// An error located at `needle` inside a filter's block (or anywhere).
    fn at_value(
        &self,
        filter: &str,
        needle: &str,
        message: String,
        field: String,
        hint: Option<String>,
    ) -> ConfigError {
        let error = self.base_error(message, Some(field), hint);
        match self
            .locator
            .value(filter, needle)
            .or_else(|| self.locator.key(filter))
        {
            Some((line, column, width)) => self.locator.place(error, line, column, width),
            None => error,
        }
    }

    fn filter(&self, name: &str, value: &Value) -> Result<Filter, ConfigError> {
        let mut filter = Filter {
            name: name.to_owned(),
            rules: Vec::new(),
            exclude: Vec::new(),
            depends_on: Vec::new(),
            quantifier: None,
            matrix: serde_json::Map::new(),
            in_matrix: true,
        };
        match value {
            Value::Mapping(mapping)
                if mapping
                    .keys()
                    .any(|k| k.as_str().is_some_and(|k| EXTENDED_KEYS.contains(&k))) =>
            {
                for (key, item) in mapping {
                    let key_text = key.as_str().unwrap_or_default();
                    let field = format!("{name}.{key_text}");
                    match key_text {
                        "paths" => self.rules(name, &field, item, &mut filter.rules)?,
                        "exclude" => {
                            self.rules(name, &field, item, &mut filter.exclude)?;
                            if let Some(negated) = filter
                                .exclude
                                .iter()
                                .flat_map(|r| &r.patterns)
                                .find(|p| p.negated)
                            {
                                return Err(self.at_value(
                                    name,
                                    &negated.source,
                                    format!(
                                        "`{}` in `exclude` of filter `{name}` is negated",
                                        negated.source
                                    ),
                                    field,
                                    Some("exclude patterns name what to leave out; move a `!` rule to `paths` with `predicate-quantifier: ordered`".into()),
                                ));
                            }
                        }
                        "depends-on" => {
                            filter.depends_on = self.strings(name, &field, item)?;
                        }
                        "predicate-quantifier" => {
                            let word = item.as_str().unwrap_or_default();
                            filter.quantifier =
                                Some(Quantifier::from_word(word).ok_or_else(|| {
                                    self.at_value(
                                    name,
                                    "predicate-quantifier",
                                    format!(
                                        "unknown predicate-quantifier `{word}` in filter `{name}`"
                                    ),
                                    field.clone(),
                                    Some("use `some`, `every` or `ordered`".into()),
                                )
                                })?);
                        }
                        "matrix" if item.as_bool() == Some(false) => filter.in_matrix = false,
                        "matrix" => {
                            let json = match item {
                                Value::Mapping(_) => serde_json::to_value(item).ok(),
                                _ => None,
                            };
                            let Some(serde_json::Value::Object(mut object)) = json else {
                                return Err(self.at_value(
                                    name,
                                    "matrix",
                                    format!("`matrix` of filter `{name}` must be a mapping"),
                                    field,
                                    Some("write `matrix: { dir: services/api }`, or `matrix: false` to leave the filter out".into()),
                                ));
                            };
                            object.remove("filter");
                            filter.matrix = object;
                        }
                        other => {
                            let shown = if other.is_empty() {
                                "(not a string)"
                            } else {
                                other
                            };
                            return Err(self.at_value(
                                name,
                                other,
                                format!("unknown key `{shown}` in filter `{name}`"),
                                field,
                                Some(format!(
                                    "the extended form takes {}; status rules go under `paths:`",
                                    EXTENDED_KEYS
                                        .iter()
                                        .map(|k| format!("`{k}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            ));
                        }
                    }
                }
            }
            Value::Null => {
                return Err(self.at_key(
                    Some(name),
                    format!("filter `{name}` has no patterns"),
                    "write at least one pattern, e.g. `services/api/**`",
                ));
            }
            other => self.rules(name, name, other, &mut filter.rules)?,
        }
        Ok(filter)
    }

    /// Collects rules from a pattern, a (nested) list or a status map.
    fn rules(
        &self,
        filter: &str,
        field: &str,
        value: &Value,
        rules: &mut Vec<Rule>,
    ) -> Result<(), ConfigError> {
        match value {
            Value::String(source) => {
                let pattern = self.pattern(filter, field, source)?;
                rules.push(Rule {
                    statuses: None,
                    patterns: vec![pattern],
                });
            }
            Value::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.rules(filter, &format!("{field}[{index}]"), item, rules)?;
                }
            }
            Value::Mapping(mapping) => {
                for (key, item) in mapping {
                    let key_text = key.as_str().unwrap_or_default();
                    let field = format!("{field}.{key_text}");
                    let statuses = self.statuses(filter, &field, key_text)?;
                    let mut patterns = Vec::new();
                    for (index, source) in self.strings(filter, &field, item)?.iter().enumerate() {
                        patterns.push(self.pattern(
                            filter,
                            &format!("{field}[{index}]"),
                            source,
                        )?);
                    }
                    rules.push(Rule {
                        statuses: Some(statuses),
                        patterns,
                    });
                }
            }
            Value::Tagged(tagged) => self.rules(filter, field, &tagged.value, rules)?,
            other => {
                let shown = serde_yaml_ng::to_string(other).unwrap_or_default();
                let shown = shown.trim();
                return Err(self.at_value(
                    filter,
                    shown,
                    format!("`{shown}` in filter `{filter}` is not a pattern"),
                    field.to_owned(),
                    Some("quote it as a string, e.g. `'1.0/**'`".into()),
                ));
            }
        }
        Ok(())
    }

    /// A string or a (nested) list of strings.
    fn strings(
        &self,
        filter: &str,
        field: &str,
        value: &Value,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) => out.push(text.clone()),
                Value::Sequence(items) => stack.extend(items.iter().rev()),
                other => {
                    let shown = serde_yaml_ng::to_string(other).unwrap_or_default();
                    let shown = shown.trim();
                    return Err(self.at_value(
                        filter,
                        shown,
                        format!(
                            "`{shown}` in filter `{filter}` must be a string or a list of strings"
                        ),
                        field.to_owned(),
                        Some("write `added|modified: [pattern, …]`".into()),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn statuses(&self, filter: &str, field: &str, key: &str) -> Result<StatusSet, ConfigError> {
        let mut set = StatusSet::default();
        for word in key.split('|').map(str::trim).filter(|w| !w.is_empty()) {
            match Status::from_word(word) {
                Some(status) => set.insert(status),
                None => {
                    return Err(self.at_value(
                        filter,
                        word,
                        format!("unknown status `{word}` in filter `{filter}`"),
                        field.to_owned(),
                        Some(format!(
                            "use {} (several joined with `|`)",
                            Status::NAMED
                                .iter()
                                .map(|s| format!("`{}`", s.word()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ));
                }
            }
        }
        if set.is_empty() {
            return Err(self.at_value(
                filter,
                key,
                format!("status rule `{key}` in filter `{filter}` names no status"),
                field.to_owned(),
                Some("write `added|modified: pattern`".into()),
            ));
        }
        Ok(set)
    }

    fn pattern(&self, filter: &str, field: &str, source: &str) -> Result<Pattern, ConfigError> {
        Pattern::parse(source).map_err(|error| {
            let needle = if source.is_empty() { "''" } else { source };
            let mut config = self.at_value(
                filter,
                needle,
                format!("pattern `{source}` in filter `{filter}`: {error}"),
                field.to_owned(),
                Some(error.hint(source)),
            );
            if source.is_empty() {
                config.message = format!("empty pattern in filter `{filter}`");
            }
            config
        })
    }

    fn check_names(&self, filters: &[Filter]) -> Result<(), ConfigError> {
        let names: std::collections::HashSet<&str> =
            filters.iter().map(|f| f.name.as_str()).collect();
        for filter in filters {
            let name = filter.name.as_str();
            if RESERVED_NAMES.contains(&name) {
                return Err(self.at_key(
                    Some(name),
                    format!("filter name `{name}` is also an output of change-detect"),
                    "rename the filter",
                ));
            }
            for suffix in ["_count", "_files"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    if names.contains(base) {
                        return Err(self.at_key(
                            Some(name),
                            format!("filter name `{name}` collides with the `{suffix}` output of filter `{base}`"),
                            "rename the filter",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_dependencies(&self, filters: &[Filter]) -> Result<(), ConfigError> {
        let index = |name: &str| filters.iter().position(|f| f.name == name);
        for filter in filters {
            for (position, dependency) in filter.depends_on.iter().enumerate() {
                if index(dependency).is_none() {
                    return Err(self.at_value(
                        &filter.name,
                        dependency,
                        format!(
                            "filter `{}` depends on `{dependency}`, which is not a filter",
                            filter.name
                        ),
                        format!("{}.depends-on[{position}]", filter.name),
                        Some(format!(
                            "name one of: {}",
                            filters
                                .iter()
                                .map(|f| format!("`{}`", f.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ));
                }
            }
        }
        // Depth-first search for a cycle.
        let mut state = vec![0u8; filters.len()]; // 0 new, 1 on stack, 2 done
        fn visit(
            node: usize,
            filters: &[Filter],
            state: &mut [u8],
            path: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            state[node] = 1;
            path.push(node);
            for dependency in &filters[node].depends_on {
                let Some(next) = filters.iter().position(|f| &f.name == dependency) else {
                    continue;
                };
                if state[next] == 1 {
                    let start = path.iter().position(|n| *n == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                if state[next] == 0 {
                    if let Some(cycle) = visit(next, filters, state, path) {
                        return Some(cycle);
                    }
                }
            }
            path.pop();
            state[node] = 2;
            None
        }
        for start in 0..filters.len() {
            if state[start] == 0 {
                if let Some(cycle) = visit(start, filters, &mut state, &mut Vec::new()) {
                    let names: Vec<&str> =
                        cycle.iter().map(|i| filters[*i].name.as_str()).collect();
                    let first = names[0];
                    return Err(self.at_value(
                        first,
                        "depends-on",
                        format!(
                            "filters depend on each other in a cycle: {}",
                            names.join(" -> ")
                        ),
                        format!("{first}.depends-on"),
                        Some("remove one of the `depends-on` entries".into()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Finds positions in the source text for values serde_yaml_ng gives no location for.
pub struct Locator<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Locator<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            lines: text
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect(),
        }
    }

    /// Fills in line, column and snippet (1-based line and column).
    fn place(
        &self,
        mut error: ConfigError,
        line: usize,
        column: usize,
        width: usize,
    ) -> ConfigError {
        error.line = u32::try_from(line).ok();
        error.column = u32::try_from(column).ok();
        if let Some(text) = line.checked_sub(1).and_then(|i| self.lines.get(i)) {
            error.snippet = Some(((*text).to_owned(), width.max(1)));
        }
        error
    }

    /// The name of a top-level key on this line, if it is one.
    fn top_level_key(line: &str) -> Option<String> {
        let first = line.chars().next()?;
        if first.is_whitespace() || matches!(first, '#' | '-' | '%') || line.starts_with("...") {
            return None;
        }
        if let Some(rest) = line.strip_prefix('"').or_else(|| line.strip_prefix('\'')) {
            let end = rest.find(first)?;
            return Some(rest[..end].to_owned());
        }
        let end = line
            .find(": ")
            .or_else(|| line.strip_suffix(':').map(str::len))
            .or_else(|| line.find(":\t"))?;
        Some(line[..end].trim_end().to_owned())
    }

    /// 0-based line range of a filter's block: its key line to the next top-level key.
    fn block(&self, name: &str) -> Option<(usize, usize)> {
        let start = self
            .lines
            .iter()
            .position(|l| Self::top_level_key(l).as_deref() == Some(name))?;
        let end = self.lines[start + 1..]
            .iter()
            .position(|l| Self::top_level_key(l).is_some())
            .map_or(self.lines.len(), |offset| start + 1 + offset);
        Some((start, end))
    }

    /// 1-based (line, column, width) of a filter's key.
    pub fn key(&self, name: &str) -> Option<(usize, usize, usize)> {
        let (start, _) = self.block(name)?;
        let quoted = usize::from(self.lines[start].starts_with(['"', '\'']));
        Some((start + 1, 1 + quoted, name.chars().count().max(1)))
    }

    /// 1-based (line, column, width) of `needle` as a token inside a filter's block, else
    /// anywhere in the text (a value that came through an alias is written elsewhere).
    pub fn value(&self, filter: &str, needle: &str) -> Option<(usize, usize, usize)> {
        if needle.is_empty() {
            return None;
        }
        let (start, end) = self.block(filter).unwrap_or((0, 0));
        let search = |range: std::ops::Range<usize>| {
            range.into_iter().find_map(|index| {
                let line = self.lines[index];
                let body = line.split(" #").next().unwrap_or(line);
                let mut from = 0;
                while let Some(offset) = body[from..].find(needle) {
                    let at = from + offset;
                    let before = body[..at].chars().next_back();
                    if before.is_none_or(|c| " \t-[{,:'\"|".contains(c)) {
                        let column = body[..at].chars().count() + 1;
                        return Some((index + 1, column, needle.chars().count()));
                    }
                    from = at + needle.len().max(1);
                }
                None
            })
        };
        let own = if start < end {
            search(start + 1..end)
        } else {
            None
        };
        own.or_else(|| search(0..self.lines.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<Filter> {
        parse(text).expect("valid filters")
    }

    fn parse_err(text: &str) -> ConfigError {
        parse(text).expect_err("invalid filters")
    }

    fn sources(rules: &[Rule]) -> Vec<Vec<&str>> {
        rules
            .iter()
            .map(|r| r.patterns.iter().map(|p| p.source.as_str()).collect())
            .collect()
    }

    #[test]
    fn accepts_dorny_forms_and_flattens_anchors() {
        let filters = parse_ok(
            "shared: &shared\n  - common/**\n  - config/**\n\
             src:\n  - *shared\n  - src/**\n\
             one: 'docs/**'\n\
             changed:\n  - added|Modified: [a/**, b/**]\n  - deleted: c/**\n",
        );
        let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["shared", "src", "one", "changed"]);
        assert_eq!(
            sources(&filters[1].rules),
            [vec!["common/**"], vec!["config/**"], vec!["src/**"]]
        );
        let changed = &filters[3].rules;
        assert_eq!(sources(changed), [vec!["a/**", "b/**"], vec!["c/**"]]);
        let statuses = changed[0].statuses.expect("status rule");
        assert!(statuses.contains(Status::Added) && statuses.contains(Status::Modified));
        assert!(!statuses.contains(Status::Deleted));
    }

    #[test]
    fn status_map_values_accept_anchored_lists() {
        let filters = parse_ok("x: &x [a/**, b/**]\ny:\n  modified: *x\n");
        assert_eq!(sources(&filters[1].rules), [vec!["a/**", "b/**"]]);
    }

    #[test]
    fn extended_form_reads_exclude_dependencies_quantifier_and_matrix() {
        let filters = parse_ok(
            "shared: crates/shared/**\n\
             api:\n  paths: [services/api/**]\n  exclude: ['**/*.md']\n  depends-on: [shared]\n  \
             predicate-quantifier: ordered\n  matrix: {dir: services/api, port: 8080}\n",
        );
        let api = &filters[1];
        assert_eq!(sources(&api.exclude), [vec!["**/*.md"]]);
        assert_eq!(api.depends_on, ["shared"]);
        assert_eq!(api.quantifier, Some(Quantifier::Ordered));
        assert_eq!(api.matrix["dir"], "services/api");
        assert_eq!(api.matrix["port"], 8080);
        assert!(api.in_matrix);
        let shared = parse_ok("shared:\n  paths: x/**\n  matrix: false\n");
        assert!(!shared[0].in_matrix);
    }

    #[test]
    fn empty_document_means_no_filters() {
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("# only a comment\n").is_empty());
    }

    #[test]
    fn unknown_status_names_file_line_column_and_field() {
        let error = parse_err("api:\n  - services/api/**\nweb:\n  - add|modified: web/**\n");
        assert_eq!(error.message, "unknown status `add` in filter `web`");
        assert_eq!((error.line, error.column), (Some(4), Some(5)));
        assert_eq!(error.field.as_deref(), Some("web[0].add|modified"));
        assert!(
            error
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("`added`")
        );
        let text = error
            .diagnostic(&Origin::File("filters.yaml".into()))
            .to_text();
        assert!(text.contains("--> filters.yaml:4:5"), "{text}");
        assert!(
            text.contains("4 |   - add|modified: web/**\n  |     ^^^"),
            "{text}"
        );
    }

    #[test]
    fn empty_pattern_is_located() {
        let error = parse_err("api:\n  - services/**\n  - ''\n");
        assert_eq!(error.message, "empty pattern in filter `api`");
        assert_eq!((error.line, error.column), (Some(3), Some(5)));
        assert_eq!(error.field.as_deref(), Some("api[1]"));
    }

    #[test]
    fn unsupported_glob_points_at_the_anchor_that_wrote_it() {
        let error = parse_err("base: &base\n  - 'b[!1].txt'\nother:\n  - x/**\n  - *base\n");
        assert_eq!((error.line, error.column), (Some(2), Some(6)));
        assert!(error.message.contains("`b[!1].txt`"), "{}", error.message);
    }

    #[test]
    fn yaml_syntax_errors_keep_their_location() {
        let error = parse_err("api:\n  - [unclosed\n");
        assert!(error.message.starts_with("the filters are not valid YAML"));
        assert!(error.line.is_some());
    }

    #[test]
    fn any_name_dorny_accepts_is_accepted_but_outputs_of_our_own_are_reserved() {
        // dorny accepts these; they have no per-filter output (see `Report::set_outputs`).
        let names: Vec<String> = parse_ok("a b: x/**\nmy.service: y/**\n2: z/**\n")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a b", "my.service", "2"]);
        let error = parse_err("changes: x/**\n");
        assert!(error.message.contains("also an output"));
        let error = parse_err("api: x/**\napi_count: y/**\n");
        assert!(error.message.contains("collides"), "{}", error.message);
        assert_eq!(error.line, Some(2));
    }

    #[test]
    fn dependencies_must_exist_and_not_cycle() {
        let error = parse_err("a:\n  paths: x/**\n  depends-on: [nope]\n");
        assert_eq!(
            error.message,
            "filter `a` depends on `nope`, which is not a filter"
        );
        assert_eq!((error.line, error.column), (Some(3), Some(16)));
        let error = parse_err(
            "a:\n  paths: x/**\n  depends-on: [b]\nb:\n  paths: y/**\n  depends-on: [a]\n",
        );
        assert_eq!(
            error.message,
            "filters depend on each other in a cycle: a -> b -> a"
        );
    }

    #[test]
    fn mixing_status_keys_into_the_extended_form_is_an_error() {
        let error = parse_err("a:\n  paths: x/**\n  added: y/**\n");
        assert_eq!(error.message, "unknown key `added` in filter `a`");
        assert_eq!(error.line, Some(3));
    }

    #[test]
    fn non_mapping_root_and_empty_filter_are_errors() {
        assert!(
            parse_err("- a/**\n")
                .message
                .contains("must be a YAML mapping")
        );
        let error = parse_err("api:\n");
        assert_eq!(error.message, "filter `api` has no patterns");
        assert_eq!(error.line, Some(1));
    }

    #[test]
    fn inline_errors_name_the_input_instead_of_a_file() {
        let error = parse("api:\n  - 'x/+(a)'\n").expect_err("extglob");
        let diagnostic = error.diagnostic(&Origin::Inline);
        assert!(diagnostic.location.is_none());
        assert!(
            diagnostic
                .message
                .ends_with("(line 2, column 6 of the `filters` input)"),
            "{}",
            diagnostic.message
        );
    }
}
