//! The globs of all filters, indexed by literal leading directory.

use regex_automata::meta::{Cache as MetaCache, Regex as MetaRegex};
use regex_automata::{Anchored, Input, MatchKind, PatternSet};
use rustc_hash::FxHashMap;

use crate::glob::Glob;
use crate::jsregex;

use super::error::CompileError;

/// The globs of all filters, indexed by their literal leading directories.
///
/// Monorepo filters mostly name a directory (`services/api/**`) or a file. Rather than run
/// every path through one regex set of every glob, each glob is filed under its literal
/// directory prefix (`services/api/`): a path then looks up each of its own leading
/// directories, takes the `dir/**` globs filed there as matches outright, and runs only the
/// few other globs filed there through a small multi-pattern regex. Globs without a literal
/// directory (`**/*.md`) form the root group, seen by every path. A glob can only match
/// paths that start with its literal prefix, so the answer is exactly the full set's.
#[derive(Debug, Clone)]
pub(super) struct GlobIndex {
    /// Globs that match one path only, by that path.
    pub(super) exact: FxHashMap<Box<[u8]>, Vec<usize>>,
    /// Groups by literal directory prefix (ending in `/`).
    pub(super) groups: FxHashMap<Box<[u8]>, GlobGroup>,
    /// True at `n` when some group's prefix is `n` bytes long (only those are looked up).
    pub(super) lengths: Vec<bool>,
    /// Globs without a literal directory.
    pub(super) root: GlobGroup,
    /// Longest prefix with a group, in bytes (paths are not searched deeper).
    pub(super) deepest: usize,
    /// Largest number of regexes in one group (the size of the reusable [`PatternSet`]).
    pub(super) widest: usize,
    /// Number of regex sets (the caches a [`Scratch`] holds).
    pub(super) slots: usize,
}

/// What one thread reuses between lookups: the result set, and a search cache per regex set
/// (searching with the thread's own cache instead of the regex's shared pool, which costs a
/// lock on every call from a worker thread).
pub(super) struct Scratch {
    pub(super) found: PatternSet,
    pub(super) caches: Vec<Option<MetaCache>>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct GlobGroup {
    /// `prefix**` globs: every path under the prefix matches.
    pub(super) everything: Vec<usize>,
    /// The other globs, compiled together, and their indices.
    pub(super) set: Option<RegexSet>,
}

/// A group's regexes: a byte-regex set for ASCII paths (nearly all of them, and quick to
/// build), and the Unicode set, built the first time a path with other characters needs it.
#[derive(Debug, Clone)]
pub(super) struct RegexSet {
    pub(super) ascii: MetaRegex,
    /// This set's place in a [`Scratch`]'s caches.
    pub(super) slot: usize,
    /// Every ASCII path one of the set's regexes matches ends with one of these (the
    /// regexes' suffix literals, [`required_suffixes`]); `None` when some regex has none.
    /// A path ending with none of them skips the set: the answer is the same, without
    /// running the regexes (for `**/*.md` most paths end otherwise).
    pub(super) suffixes: Option<Vec<Vec<u8>>>,
    pub(super) unicode: std::sync::Arc<std::sync::OnceLock<Result<MetaRegex, String>>>,
    pub(super) patterns: Vec<String>,
    pub(super) indices: Vec<usize>,
}

impl RegexSet {
    pub(super) fn build(patterns: &[&str], ascii: bool) -> Result<MetaRegex, String> {
        MetaRegex::builder()
            // Only the lazy DFA (and the PikeVM behind it) answer "which patterns match";
            // a full DFA, a one-pass DFA or a backtracker would only cost build time here.
            .configure(
                MetaRegex::config()
                    .match_kind(MatchKind::All)
                    .dfa(false)
                    .onepass(false)
                    .backtrack(false),
            )
            .syntax(regex_automata::util::syntax::Config::new().utf8(!ascii))
            .build_many(patterns)
            .map_err(|e| e.to_string())
    }

    /// False when no regex of the set can match the ASCII `path` (it ends with none of the
    /// required suffixes); true when one may.
    pub(super) fn may_match_ascii(&self, path: &[u8]) -> bool {
        self.suffixes
            .as_ref()
            .is_none_or(|suffixes| suffixes.iter().any(|suffix| path.ends_with(suffix)))
    }

    /// The set for `path` (ASCII or not).
    pub(super) fn for_path(&self, ascii: bool) -> Option<&MetaRegex> {
        if ascii {
            return Some(&self.ascii);
        }
        let unicode = self.unicode.get_or_init(|| {
            let patterns: Vec<&str> = self.patterns.iter().map(String::as_str).collect();
            Self::build(&patterns, false)
        });
        // The patterns were compiled once already (as bytes), so this does not fail; if it
        // did, the path is matched by nothing rather than by the wrong thing.
        unicode.as_ref().ok()
    }
}

impl GlobIndex {
    pub(super) fn new(globs: &[Glob]) -> Result<Self, CompileError> {
        let mut exact: FxHashMap<Box<[u8]>, Vec<usize>> = FxHashMap::default();
        // Per prefix: its `prefix**` globs, and its other globs.
        let mut pending: FxHashMap<Box<[u8]>, [Vec<usize>; 2]> = FxHashMap::default();
        for (index, glob) in globs.iter().enumerate() {
            match glob {
                Glob::Exact(path) => exact.entry(path.as_slice().into()).or_default().push(index),
                Glob::Regex(regex) => {
                    let entry = pending.entry(regex.prefix.as_slice().into()).or_default();
                    let everything = regex.everything && !regex.prefix.is_empty();
                    entry[usize::from(!everything)].push(index);
                }
            }
        }
        let mut groups = FxHashMap::default();
        let mut root = GlobGroup::default();
        let (mut deepest, mut widest, mut slots) = (0, 0, 0);
        for (prefix, [everything, others]) in pending {
            let set = if others.is_empty() {
                None
            } else {
                let regexes: Vec<&crate::glob::Regex> = others
                    .iter()
                    .filter_map(|index| match &globs[*index] {
                        Glob::Regex(regex) => Some(regex.as_ref()),
                        Glob::Exact(_) => None,
                    })
                    .collect();
                let ascii: Vec<&str> = regexes.iter().map(|r| r.ascii.as_str()).collect();
                let set = RegexSet {
                    ascii: RegexSet::build(&ascii, true).map_err(CompileError)?,
                    slot: slots,
                    suffixes: required_suffixes(&ascii),
                    unicode: Default::default(),
                    patterns: regexes.iter().map(|r| r.rust.clone()).collect(),
                    indices: others,
                };
                widest = widest.max(set.indices.len());
                slots += 1;
                Some(set)
            };
            let group = GlobGroup { everything, set };
            if prefix.is_empty() {
                root = group;
            } else {
                deepest = deepest.max(prefix.len());
                groups.insert(prefix, group);
            }
        }
        let mut lengths = vec![false; deepest + 1];
        for prefix in groups.keys() {
            lengths[prefix.len()] = true;
        }
        Ok(Self {
            exact,
            groups,
            lengths,
            root,
            deepest,
            widest,
            slots,
        })
    }

    /// A reusable result set and caches for [`GlobIndex::matches_cached`].
    pub(super) fn scratch(&self) -> Scratch {
        Scratch {
            found: PatternSet::new(self.widest.max(1)),
            caches: (0..self.slots).map(|_| None).collect(),
        }
    }

    /// Appends the indices of the globs matching `path` to `hits` (`scratch` is reused).
    #[cfg(test)]
    pub(super) fn matches_into(&self, path: &[u8], hits: &mut Vec<usize>, scratch: &mut Scratch) {
        self.matches_cached(path, &mut DirCache::default(), hits, scratch);
    }

    /// The globs matching `path` (valid UTF-8 without a line break; the caller sends the
    /// others through [`Matcher::matches_exactly`]), with the groups of the path's
    /// directories taken from `cache` when the previous path was in the same directory (git
    /// lists paths sorted, so most are), instead of looking each leading directory up again.
    pub(super) fn matches_cached<'a>(
        &'a self,
        path: &[u8],
        cache: &mut DirCache<'a>,
        hits: &mut Vec<usize>,
        scratch: &mut Scratch,
    ) {
        if let Some(found) = self.exact.get(path) {
            hits.extend_from_slice(found);
        }
        // The groups depend on the directories before the last component only: a group
        // needs something after its `/`, so a trailing `/` does not count.
        let dir = path[..path.len().saturating_sub(1)]
            .iter()
            .rposition(|b| *b == b'/')
            .map_or(0, |slash| slash + 1);
        if cache.dir != path[..dir] {
            cache.dir.clear();
            cache.dir.extend_from_slice(&path[..dir]);
            cache.groups.clear();
            let searched = &path[..dir.min(self.deepest)];
            for (slash, _) in searched.iter().enumerate().filter(|(_, b)| **b == b'/') {
                if self.lengths[slash + 1] {
                    if let Some(group) = self.groups.get(&path[..=slash]) {
                        cache.groups.push(group);
                    }
                }
            }
        }
        let mut mapped = None;
        let ascii = path.is_ascii();
        for group in std::iter::once(&self.root).chain(cache.groups.iter().copied()) {
            hits.extend_from_slice(&group.everything);
            let Some(set) = &group.set else {
                continue;
            };
            let found = &mut scratch.found;
            found.clear();
            if ascii {
                if !set.may_match_ascii(path) {
                    continue;
                }
                let cache =
                    scratch.caches[set.slot].get_or_insert_with(|| set.ascii.create_cache());
                let input = Input::new(path).anchored(Anchored::Yes);
                set.ascii
                    .which_overlapping_matches_with(cache, &input, found);
            } else {
                let Some(regex) = set.for_path(false) else {
                    continue;
                };
                let haystack = mapped.get_or_insert_with(|| jsregex::map_path(path));
                let input = Input::new(haystack.as_ref()).anchored(Anchored::Yes);
                regex.which_overlapping_matches(&input, found);
            }
            hits.extend(found.iter().map(|pattern| set.indices[pattern.as_usize()]));
        }
    }
}

/// The literals every match of one of `patterns` (ASCII regexes, anchored at both ends) ends
/// with, when each pattern has a finite set of non-empty ones; `None` otherwise (then the set
/// is always searched). regex-syntax's extractor guarantees that every match ends with one of
/// a finite sequence's literals, exact or not, which is all the skip relies on.
pub(super) fn required_suffixes(patterns: &[&str]) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Suffix);
    let mut all = Vec::new();
    for pattern in patterns {
        // The same syntax as `RegexSet::build` with `ascii` (bytes, not UTF-8).
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(pattern)
            .ok()?;
        let suffixes = extractor.extract(&hir);
        let literals = suffixes.literals()?;
        if literals.is_empty() || literals.iter().any(|literal| literal.as_bytes().is_empty()) {
            return None;
        }
        all.extend(literals.iter().map(|literal| literal.as_bytes().to_vec()));
    }
    all.sort();
    all.dedup();
    Some(all)
}

/// The groups of the last directory a [`GlobIndex`] looked up.
#[derive(Debug, Default)]
pub(super) struct DirCache<'a> {
    /// The directory, with its trailing `/` (empty: top level).
    pub(super) dir: Vec<u8>,
    /// Its groups, outermost first.
    pub(super) groups: Vec<&'a GlobGroup>,
}
