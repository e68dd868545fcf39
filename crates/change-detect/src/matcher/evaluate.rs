//! Filters evaluated over a chunk's bits: which globs hit each path, and its status.

use std::collections::HashMap;

use crate::change::{Status, StatusSet};
use crate::filter::{Filter, Quantifier};

/// Every status, indexed by its discriminant.
pub(super) const ALL_STATUSES: [Status; 7] = [
    Status::Added,
    Status::Modified,
    Status::Deleted,
    Status::Renamed,
    Status::Copied,
    Status::Unmerged,
    Status::Other,
];

#[derive(Debug, Clone)]
pub(super) struct CompiledPattern {
    pub(super) globs: Vec<usize>,
    /// The glob matching the pattern's own text (picomatch's `input === glob`).
    pub(super) equal: usize,
    pub(super) negated: bool,
}

#[derive(Debug, Clone)]
pub(super) struct CompiledRule {
    pub(super) statuses: Option<StatusSet>,
    pub(super) patterns: Vec<CompiledPattern>,
}

#[derive(Debug, Clone)]
pub(super) struct CompiledFilter {
    pub(super) rules: Vec<CompiledRule>,
    pub(super) exclude: Vec<CompiledRule>,
    pub(super) quantifier: Quantifier,
}

/// 64 consecutive paths of a slice, as bits: which globs hit them and their statuses.
pub(super) struct Word<'a> {
    pub(super) by_glob: &'a [Vec<u64>],
    pub(super) by_status: &'a [Vec<u64>],
    /// Paths holding a line break (a `!` rule never holds for them, as in picomatch).
    pub(super) line_breaks: &'a [u64],
    /// Word index in the slice.
    pub(super) at: usize,
    /// The bits that are paths (all but in the last word).
    pub(super) all: u64,
}

impl Word<'_> {
    pub(super) fn glob(&self, glob: usize) -> u64 {
        self.by_glob[glob].get(self.at).copied().unwrap_or(0)
    }

    pub(super) fn line_breaks(&self) -> u64 {
        self.line_breaks[self.at]
    }

    /// The paths whose status is in `statuses` (every path for `None`).
    pub(super) fn statuses(&self, statuses: Option<StatusSet>) -> u64 {
        match statuses {
            None => self.all,
            Some(set) => ALL_STATUSES
                .iter()
                .filter(|status| set.contains(**status))
                .fold(0, |bits, status| {
                    bits | self.by_status[*status as usize][self.at]
                }),
        }
    }
}

impl CompiledPattern {
    /// The paths one of its globs hit.
    pub(super) fn hit(&self, word: &Word<'_>) -> u64 {
        self.globs
            .iter()
            .fold(0, |bits, glob| bits | word.glob(*glob))
    }

    /// The paths it holds for, as picomatch decides: those equal to the pattern's text, and
    /// those hit, or for a `!` pattern those not hit (`^(?!…).*$`: without a line break).
    pub(super) fn holds(&self, word: &Word<'_>) -> u64 {
        let hit = self.hit(word);
        let equal = word.glob(self.equal);
        if self.negated {
            (!hit & word.all & !word.line_breaks()) | equal
        } else {
            hit | equal
        }
    }
}

impl CompiledRule {
    /// dorny's predicate: status applies and any pattern holds.
    pub(super) fn holds(&self, word: &Word<'_>) -> u64 {
        word.statuses(self.statuses) & self.patterns.iter().fold(0, |bits, p| bits | p.holds(word))
    }
}

impl CompiledFilter {
    /// The paths of `word` the filter matches: `is_match` (the definition, kept for the
    /// tests), 64 paths at a time.
    pub(super) fn evaluate(&self, word: &Word<'_>) -> u64 {
        let selected = match self.quantifier {
            Quantifier::Some => self.rules.iter().fold(0, |bits, r| bits | r.holds(word)),
            Quantifier::Every => self
                .rules
                .iter()
                .fold(word.all, |bits, r| bits & r.holds(word)),
            Quantifier::Ordered => {
                // Last match wins: a hit pattern selects, or for `!` deselects, its paths.
                let mut selected = 0;
                for rule in &self.rules {
                    let applies = word.statuses(rule.statuses);
                    for pattern in &rule.patterns {
                        let hit = applies & pattern.hit(word);
                        selected = if pattern.negated {
                            selected & !hit
                        } else {
                            selected | hit
                        };
                    }
                }
                selected
            }
        };
        let excluded = self.exclude.iter().fold(0, |bits, rule| {
            bits | (word.statuses(rule.statuses)
                & rule.patterns.iter().fold(0, |hit, p| hit | p.hit(word)))
        });
        selected & !excluded
    }

    /// What [`CompiledFilter::evaluate`] computes, one path at a time: `hit` tells
    /// which globs hit the path. Kept as the reference the tests compare against.
    #[cfg(test)]
    pub(super) fn is_match(&self, hit: &[bool], status: Status, line_break: bool) -> bool {
        let applies = |rule: &CompiledRule| rule.statuses.is_none_or(|set| set.contains(status));
        let any_hit = |pattern: &CompiledPattern| pattern.globs.iter().any(|g| hit[*g]);
        let pattern_holds = |p: &CompiledPattern| {
            hit[p.equal]
                || if p.negated {
                    !any_hit(p) && !line_break
                } else {
                    any_hit(p)
                }
        };
        let holds = |rule: &CompiledRule| applies(rule) && rule.patterns.iter().any(pattern_holds);
        let selected = match self.quantifier {
            Quantifier::Some => self.rules.iter().any(holds),
            Quantifier::Every => self.rules.iter().all(holds),
            Quantifier::Ordered => {
                let mut selected = false;
                for rule in self.rules.iter().filter(|r| applies(r)) {
                    for pattern in &rule.patterns {
                        if any_hit(pattern) {
                            selected = !pattern.negated;
                        }
                    }
                }
                selected
            }
        };
        selected
            && !self
                .exclude
                .iter()
                .any(|rule| applies(rule) && rule.patterns.iter().any(any_hit))
    }
}

/// For each filter, every filter it depends on directly or indirectly (cycles were rejected
/// when parsing; a cycle here would just stop the walk).
pub(super) fn transitive_dependencies(filters: &[Filter]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    (0..filters.len())
        .map(|start| {
            let mut seen = vec![false; filters.len()];
            seen[start] = true;
            let mut stack = vec![start];
            let mut out = Vec::new();
            while let Some(node) = stack.pop() {
                for name in &filters[node].depends_on {
                    if let Some(&next) = index.get(name.as_str()) {
                        if !seen[next] {
                            seen[next] = true;
                            out.push(next);
                            stack.push(next);
                        }
                    }
                }
            }
            out.sort_unstable();
            out
        })
        .collect()
}
