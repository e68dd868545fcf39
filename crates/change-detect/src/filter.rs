//! The filter model: what the filters file says, once read (below both the reading in
//! [`crate::config`] and the matching in [`crate::matcher`]).

use crate::change::StatusSet;
use crate::glob::Pattern;

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

impl Filter {
    /// A filter with no rules yet.
    pub fn named(name: &str) -> Self {
        Filter {
            name: name.to_owned(),
            rules: Vec::new(),
            exclude: Vec::new(),
            depends_on: Vec::new(),
            quantifier: None,
            matrix: serde_json::Map::new(),
            in_matrix: true,
        }
    }
}
