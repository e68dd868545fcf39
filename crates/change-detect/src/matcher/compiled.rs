//! The compiled filters: every glob once, the filters over them, and matching a chunk.

use std::collections::HashMap;

use crate::change::Change;
use crate::filter::{Filter, Quantifier, Rule};
use crate::glob::Glob;
use crate::jsregex;

use super::error::CompileError;
use super::evaluate::{
    ALL_STATUSES, CompiledFilter, CompiledPattern, CompiledRule, Word, transitive_dependencies,
};
use super::fileset::FileSet;
use super::index::{DirCache, GlobIndex};

/// Change lists at least this long are matched on several threads.
pub(super) const PARALLEL_THRESHOLD: usize = 20_000;

/// More threads than this do not pay for themselves (the work per path is small).
pub(super) const MAX_THREADS: usize = 4;

/// Filters compiled for matching.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub(super) set: GlobIndex,
    /// Every glob, by index (paths with a line break or invalid UTF-8 go through these one by
    /// one, with JavaScript's semantics).
    pub(super) globs: Vec<Glob>,
    pub(super) glob_count: usize,
    pub(super) filters: Vec<CompiledFilter>,
    /// Transitive dependencies per filter (excluding itself), in filter order.
    pub(super) dependencies: Vec<Vec<usize>>,
}

/// What each filter matched, by index into the changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matches {
    /// Per filter (in file order), the matching changes; includes the changes of the filters
    /// it depends on.
    pub files: Vec<FileSet>,
    /// Per filter, true when it changed only through `depends-on`.
    pub via_dependency: Vec<bool>,
}

impl Matcher {
    /// Compiles `filters`; `default_quantifier` applies where a filter sets none.
    pub fn new(filters: &[Filter], default_quantifier: Quantifier) -> Result<Self, CompileError> {
        let mut texts: Vec<Glob> = Vec::new();
        let mut glob_index: HashMap<String, usize> = HashMap::new();
        let mut intern = |glob: &Glob| -> usize {
            let key = glob.key();
            if let Some(index) = glob_index.get(&key) {
                return *index;
            }
            let index = texts.len();
            texts.push(glob.clone());
            glob_index.insert(key, index);
            index
        };
        let mut compile_rules = |rules: &[Rule]| -> Result<Vec<CompiledRule>, CompileError> {
            rules
                .iter()
                .map(|rule| {
                    let patterns = rule
                        .patterns
                        .iter()
                        .map(|pattern| CompiledPattern {
                            globs: pattern.globs.iter().map(&mut intern).collect(),
                            equal: intern(&Glob::Exact(pattern.source.as_bytes().to_vec())),
                            negated: pattern.negated,
                        })
                        .collect();
                    Ok(CompiledRule {
                        statuses: rule.statuses,
                        patterns,
                    })
                })
                .collect()
        };
        let mut compiled = Vec::with_capacity(filters.len());
        for filter in filters {
            let rules = compile_rules(&filter.rules)?;
            let exclude = compile_rules(&filter.exclude)?;
            let quantifier = filter.quantifier.unwrap_or(default_quantifier);
            compiled.push(CompiledFilter {
                rules,
                exclude,
                quantifier,
            });
        }
        let set = GlobIndex::new(&texts)?;
        let glob_count = texts.len();
        let dependencies = transitive_dependencies(filters);
        Ok(Self {
            set,
            globs: texts,
            glob_count,
            filters: compiled,
            dependencies,
        })
    }

    /// Matches every change against every filter.
    ///
    /// Large change lists are split across threads (each path is independent); the per-filter
    /// lists are concatenated in order, so the result does not depend on the thread count.
    pub fn matches(&self, changes: &[Change]) -> Matches {
        let threads = if changes.len() >= PARALLEL_THRESHOLD {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        } else {
            1
        };
        self.matches_on(changes, threads)
    }

    /// [`Matcher::matches`] on a given number of threads.
    pub(super) fn matches_on(&self, changes: &[Change], threads: usize) -> Matches {
        // Chunks are whole 64-bit words, so each thread's bits land in distinct words.
        let chunk = changes.len().div_ceil(threads.max(1)).div_ceil(64).max(1) * 64;
        let parts: Vec<Vec<FileSet>> = if threads > 1 {
            std::thread::scope(|scope| {
                let handles: Vec<_> = changes
                    .chunks(chunk)
                    .map(|slice| scope.spawn(move || self.match_slice(slice)))
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| {
                        handle
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        } else {
            changes.chunks(chunk).map(|s| self.match_slice(s)).collect()
        };
        let mut own = vec![FileSet::new(changes.len()); self.filters.len()];
        for (number, part) in parts.iter().enumerate() {
            for (set, found) in own.iter_mut().zip(part) {
                set.or_at(found, number * chunk / 64);
            }
        }
        self.finish(own)
    }

    /// Completes per-filter results with the changes of the filters each depends on.
    pub(super) fn finish(&self, mut own: Vec<FileSet>) -> Matches {
        // Filters with dependencies first (they read the others' sets), then move the rest.
        let mut merged: Vec<Option<FileSet>> = self
            .dependencies
            .iter()
            .enumerate()
            .map(|(filter, dependencies)| {
                (!dependencies.is_empty()).then(|| {
                    let mut merged = own[filter].clone();
                    for dependency in dependencies {
                        merged.union_with(&own[*dependency]);
                    }
                    merged
                })
            })
            .collect();
        let via_dependency = merged
            .iter()
            .zip(&own)
            .map(|(merged, own)| own.is_empty() && merged.as_ref().is_some_and(|m| !m.is_empty()))
            .collect();
        let files = merged
            .iter_mut()
            .zip(own.iter_mut())
            .map(|(merged, own)| {
                merged
                    .take()
                    .unwrap_or_else(|| std::mem::replace(own, FileSet::new(0)))
            })
            .collect();
        Matches {
            files,
            via_dependency,
        }
    }

    /// Matches a slice of the changes: per filter, the changes it matched, as a set over the
    /// slice (member `i` is `changes[i]`).
    ///
    /// Each path is looked up once in the glob index and the globs it hit are noted, a bit
    /// per glob; then every filter is evaluated for 64 paths per step from those bits and the
    /// paths' statuses ([`CompiledFilter::evaluate`]).
    pub(super) fn match_slice(&self, changes: &[Change]) -> Vec<FileSet> {
        let words = changes.len().div_ceil(64);
        // Per glob, the paths it hit; empty until its first hit (most globs hit nothing in
        // most chunks).
        let mut by_glob: Vec<Vec<u64>> = vec![Vec::new(); self.glob_count];
        let mut by_status: Vec<Vec<u64>> = vec![vec![0; words]; ALL_STATUSES.len()];
        let mut line_breaks: Vec<u64> = vec![0; words];
        let mut hits = Vec::new();
        let mut scratch = self.set.scratch();
        let mut cache = DirCache::default();
        for (index, change) in changes.iter().enumerate() {
            hits.clear();
            let (word, bit) = (index / 64, 1u64 << (index % 64));
            for path in std::iter::once(&change.path).chain(&change.previous) {
                let path = path.as_bytes();
                if self.matches_exactly(path, &mut hits) {
                    if jsregex::has_line_terminator(path) {
                        line_breaks[word] |= bit;
                    }
                } else {
                    self.set
                        .matches_cached(path, &mut cache, &mut hits, &mut scratch);
                }
            }
            for glob in &hits {
                let set = &mut by_glob[*glob];
                if set.is_empty() {
                    set.resize(words, 0);
                }
                set[word] |= bit;
            }
            by_status[change.status as usize][word] |= bit;
        }
        self.filters
            .iter()
            .map(|filter| {
                let mut set = FileSet::new(changes.len());
                for (at, out) in set.words.iter_mut().enumerate() {
                    let valid = changes.len() - at * 64;
                    let word = Word {
                        by_glob: &by_glob,
                        by_status: &by_status,
                        line_breaks: &line_breaks,
                        at,
                        all: if valid >= 64 { !0 } else { (1 << valid) - 1 },
                    };
                    *out = filter.evaluate(&word);
                }
                set
            })
            .collect()
    }
}

impl Matcher {
    /// For the paths the compiled regexes are not exact for (a line break, which JavaScript's
    /// `.` stops at, or bytes that are not UTF-8, which JavaScript reads as U+FFFD): every
    /// glob with JavaScript's semantics, one by one. False (nothing done) for other paths.
    pub(super) fn matches_exactly(&self, path: &[u8], hits: &mut Vec<usize>) -> bool {
        // Nearly every path is ASCII: one SIMD scan for `\n`/`\r` decides.
        let exact = if path.is_ascii() {
            memchr::memchr2(b'\n', b'\r', path).is_some()
        } else {
            jsregex::has_line_terminator(path) || std::str::from_utf8(path).is_err()
        };
        if !exact {
            return false;
        }
        let units = jsregex::path_units(path);
        hits.extend(
            self.globs
                .iter()
                .enumerate()
                .filter(|(_, glob)| glob.matches_units(&units, path))
                .map(|(index, _)| index),
        );
        true
    }
}
