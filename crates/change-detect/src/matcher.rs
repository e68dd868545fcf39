//! Filters x changes -> matches. Pure: no git, no I/O.
//!
//! Every glob of every filter is compiled once, into an index by literal leading directory
//! (`GlobIndex`: `dir/**` globs answer by prefix, the rest go to small compiled `GlobSet`s),
//! so each changed path is looked up once against all patterns instead of files x patterns
//! regex calls. A [`Pipeline`] matches chunks of changes on worker threads while git is still
//! writing the list. Per path only the globs it hit are noted (a bit per glob); the filters
//! are then evaluated for a whole chunk at once, 64 paths per word operation, from those bits
//! and the paths' statuses, so a filter costs nothing per path none of its globs hit (even a
//! `!**/*.md` rule that holds for it). Results are bitsets over the change list, so a filter
//! matching 100,000 files costs 12 KB.

use std::collections::HashMap;
use std::sync::Arc;

use regex_automata::meta::{Cache as MetaCache, Regex as MetaRegex};
use regex_automata::{Anchored, Input, MatchKind, PatternSet};
use rustc_hash::FxHashMap;

use crate::change::{Change, Status, StatusSet};
use crate::filter::{Filter, Quantifier, Rule};
use crate::glob::Glob;
use crate::jsregex;

/// Every status, indexed by its discriminant.
const ALL_STATUSES: [Status; 7] = [
    Status::Added,
    Status::Modified,
    Status::Deleted,
    Status::Renamed,
    Status::Copied,
    Status::Unmerged,
    Status::Other,
];

/// Change lists at least this long are matched on several threads.
const PARALLEL_THRESHOLD: usize = 20_000;

/// More threads than this do not pay for themselves (the work per path is small).
const MAX_THREADS: usize = 4;

/// Errors while compiling filters (the patterns were validated when parsed, so this is rare).
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the filter patterns: {0}")]
pub struct CompileError(String);

impl CompileError {
    /// An error with a message.
    pub fn new(message: String) -> Self {
        Self(message)
    }
}

#[derive(Debug, Clone)]
struct CompiledPattern {
    globs: Vec<usize>,
    /// The glob matching the pattern's own text (picomatch's `input === glob`).
    equal: usize,
    negated: bool,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    statuses: Option<StatusSet>,
    patterns: Vec<CompiledPattern>,
}

#[derive(Debug, Clone)]
struct CompiledFilter {
    rules: Vec<CompiledRule>,
    exclude: Vec<CompiledRule>,
    quantifier: Quantifier,
}

/// Filters compiled for matching.
#[derive(Debug, Clone)]
pub struct Matcher {
    set: GlobIndex,
    /// Every glob, by index (paths with a line break or invalid UTF-8 go through these one by
    /// one, with JavaScript's semantics).
    globs: Vec<Glob>,
    glob_count: usize,
    filters: Vec<CompiledFilter>,
    /// Transitive dependencies per filter (excluding itself), in filter order.
    dependencies: Vec<Vec<usize>>,
}

/// A set of change indices, one bit per change: compact even when a filter matches nearly
/// every one of 100,000 files, and iterated in change order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSet {
    words: Vec<u64>,
}

impl FileSet {
    /// An empty set for `len` changes.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
        }
    }

    /// Adds change `index`.
    pub fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// True when change `index` is in the set.
    pub fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Adds every member of `other` (same length).
    pub fn union_with(&mut self, other: &FileSet) {
        for (word, theirs) in self.words.iter_mut().zip(&other.words) {
            *word |= theirs;
        }
    }

    /// Removes every member of `other` (same length).
    pub fn difference_with(&mut self, other: &FileSet) {
        for (word, theirs) in self.words.iter_mut().zip(&other.words) {
            *word &= !theirs;
        }
    }

    /// Adds every member of `other`, shifted by `word_offset` words, growing as needed.
    fn or_at(&mut self, other: &FileSet, word_offset: usize) {
        if other.words.is_empty() {
            return;
        }
        let needed = word_offset + other.words.len();
        if self.words.len() < needed {
            self.words.resize(needed, 0);
        }
        for (word, theirs) in self.words[word_offset..].iter_mut().zip(&other.words) {
            *word |= theirs;
        }
    }

    /// Sets the set's size to `len` changes (members beyond are dropped).
    fn resize(&mut self, len: usize) {
        self.words.resize(len.div_ceil(64), 0);
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when there is no member.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(index, word)| {
            let mut word = *word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    index * 64 + bit
                })
            })
        })
    }
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
    fn matches_on(&self, changes: &[Change], threads: usize) -> Matches {
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
    fn finish(&self, mut own: Vec<FileSet>) -> Matches {
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
    fn match_slice(&self, changes: &[Change]) -> Vec<FileSet> {
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
    fn matches_exactly(&self, path: &[u8], hits: &mut Vec<usize>) -> bool {
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

/// 64 consecutive paths of a slice, as bits: which globs hit them and their statuses.
struct Word<'a> {
    by_glob: &'a [Vec<u64>],
    by_status: &'a [Vec<u64>],
    /// Paths holding a line break (a `!` rule never holds for them, as in picomatch).
    line_breaks: &'a [u64],
    /// Word index in the slice.
    at: usize,
    /// The bits that are paths (all but in the last word).
    all: u64,
}

impl Word<'_> {
    fn glob(&self, glob: usize) -> u64 {
        self.by_glob[glob].get(self.at).copied().unwrap_or(0)
    }

    fn line_breaks(&self) -> u64 {
        self.line_breaks[self.at]
    }

    /// The paths whose status is in `statuses` (every path for `None`).
    fn statuses(&self, statuses: Option<StatusSet>) -> u64 {
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

/// Changes per worker thread in a [`Pipeline`] (a multiple of 64: whole bitset words).
const PIPELINE_CHUNK: usize = 16_384;

/// What a [`Pipeline`] worker hands back: per filter the changes matched, and the chunk itself.
type ChunkResult = (Vec<FileSet>, Vec<Change>);

/// A running [`Pipeline`] worker.
type Job = std::thread::JoinHandle<ChunkResult>;

/// Every change so far in order, and per filter the changes it matched.
type Assembled = (Vec<Change>, Vec<FileSet>);

/// What a [`Pipeline`] found.
#[derive(Debug)]
pub struct Listed {
    /// Every change, in list order.
    pub changes: Vec<Change>,
    /// What each filter matched.
    pub matches: Matches,
}

/// Matches changes while they are still being listed: every [`PIPELINE_CHUNK`] changes go to
/// a worker thread as git writes them, and an assembler thread puts the results together in
/// order as the workers finish, so matching and assembling overlap git instead of following
/// it (git spends its last milliseconds freeing memory after its last line).
#[derive(Debug)]
pub struct Pipeline {
    compiling: Option<std::thread::JoinHandle<Result<Matcher, CompileError>>>,
    matcher: Option<Arc<Matcher>>,
    error: Option<CompileError>,
    pending: Vec<Change>,
    /// Workers, in list order, for the assembler.
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    assembler: Option<std::thread::JoinHandle<Assembled>>,
}

impl Pipeline {
    /// A pipeline whose matcher is being compiled by `compiling` (joined at the first chunk).
    pub fn new(compiling: std::thread::JoinHandle<Result<Matcher, CompileError>>) -> Self {
        Self {
            compiling: Some(compiling),
            matcher: None,
            error: None,
            pending: Vec::new(),
            jobs: None,
            assembler: None,
        }
    }

    /// Takes the next change, in list order.
    pub fn push(&mut self, change: Change) {
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(PIPELINE_CHUNK);
        }
        self.pending.push(change);
        if self.pending.len() == PIPELINE_CHUNK {
            self.dispatch();
        }
    }

    fn matcher(&mut self) -> Option<Arc<Matcher>> {
        if let Some(handle) = self.compiling.take() {
            match handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            {
                Ok(matcher) => self.matcher = Some(Arc::new(matcher)),
                Err(error) => self.error = Some(error),
            }
        }
        self.matcher.clone()
    }

    fn dispatch(&mut self) {
        let chunk = std::mem::take(&mut self.pending);
        if chunk.is_empty() {
            return;
        }
        // Without a matcher (it failed to compile) the run fails in `finish`.
        let Some(matcher) = self.matcher() else {
            return;
        };
        let filters = matcher.filters.len();
        let job = std::thread::spawn(move || {
            let own = matcher.match_slice(&chunk);
            (own, chunk)
        });
        let jobs = self.jobs.get_or_insert_with(|| {
            let (jobs, received) = std::sync::mpsc::channel();
            self.assembler = Some(std::thread::spawn(move || assemble(&received, filters)));
            jobs
        });
        // The assembler only stops early by panicking, which `finish` passes on.
        let _ = jobs.send(job);
    }

    /// Waits for the workers: every change in order, and what each filter matched.
    pub fn finish(mut self) -> Result<Listed, CompileError> {
        self.dispatch();
        let matcher = self.matcher();
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let Some(matcher) = matcher else {
            return Err(CompileError::new("the filters were never compiled".into()));
        };
        drop(self.jobs.take());
        let (changes, mut own) = match self.assembler.take() {
            Some(assembler) => assembler
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => (Vec::new(), vec![FileSet::new(0); matcher.filters.len()]),
        };
        for set in &mut own {
            set.resize(changes.len());
        }
        let matches = matcher.finish(own);
        Ok(Listed { changes, matches })
    }
}

/// Joins the workers in list order as they finish, appending their chunks and results.
fn assemble(jobs: &std::sync::mpsc::Receiver<Job>, filters: usize) -> Assembled {
    let mut changes: Vec<Change> = Vec::new();
    let mut own = vec![FileSet::new(0); filters];
    for job in jobs {
        let (part_own, chunk) = job
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // Every chunk but the last is whole words long, so chunks start on a word.
        let word = changes.len() / 64;
        for (set, part) in own.iter_mut().zip(&part_own) {
            set.or_at(part, word);
        }
        if changes.is_empty() {
            changes = chunk;
        } else {
            changes.extend(chunk);
        }
    }
    (changes, own)
}

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
struct GlobIndex {
    /// Globs that match one path only, by that path.
    exact: FxHashMap<Box<[u8]>, Vec<usize>>,
    /// Groups by literal directory prefix (ending in `/`).
    groups: FxHashMap<Box<[u8]>, GlobGroup>,
    /// True at `n` when some group's prefix is `n` bytes long (only those are looked up).
    lengths: Vec<bool>,
    /// Globs without a literal directory.
    root: GlobGroup,
    /// Longest prefix with a group, in bytes (paths are not searched deeper).
    deepest: usize,
    /// Largest number of regexes in one group (the size of the reusable [`PatternSet`]).
    widest: usize,
    /// Number of regex sets (the caches a [`Scratch`] holds).
    slots: usize,
}

/// What one thread reuses between lookups: the result set, and a search cache per regex set
/// (searching with the thread's own cache instead of the regex's shared pool, which costs a
/// lock on every call from a worker thread).
struct Scratch {
    found: PatternSet,
    caches: Vec<Option<MetaCache>>,
}

#[derive(Debug, Clone, Default)]
struct GlobGroup {
    /// `prefix**` globs: every path under the prefix matches.
    everything: Vec<usize>,
    /// The other globs, compiled together, and their indices.
    set: Option<RegexSet>,
}

/// A group's regexes: a byte-regex set for ASCII paths (nearly all of them, and quick to
/// build), and the Unicode set, built the first time a path with other characters needs it.
#[derive(Debug, Clone)]
struct RegexSet {
    ascii: MetaRegex,
    /// This set's place in a [`Scratch`]'s caches.
    slot: usize,
    /// Every ASCII path one of the set's regexes matches ends with one of these (the
    /// regexes' suffix literals, [`required_suffixes`]); `None` when some regex has none.
    /// A path ending with none of them skips the set: the answer is the same, without
    /// running the regexes (for `**/*.md` most paths end otherwise).
    suffixes: Option<Vec<Vec<u8>>>,
    unicode: std::sync::Arc<std::sync::OnceLock<Result<MetaRegex, String>>>,
    patterns: Vec<String>,
    indices: Vec<usize>,
}

impl RegexSet {
    fn build(patterns: &[&str], ascii: bool) -> Result<MetaRegex, String> {
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
    fn may_match_ascii(&self, path: &[u8]) -> bool {
        self.suffixes
            .as_ref()
            .is_none_or(|suffixes| suffixes.iter().any(|suffix| path.ends_with(suffix)))
    }

    /// The set for `path` (ASCII or not).
    fn for_path(&self, ascii: bool) -> Option<&MetaRegex> {
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
    fn new(globs: &[Glob]) -> Result<Self, CompileError> {
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
    fn scratch(&self) -> Scratch {
        Scratch {
            found: PatternSet::new(self.widest.max(1)),
            caches: (0..self.slots).map(|_| None).collect(),
        }
    }

    /// Appends the indices of the globs matching `path` to `hits` (`scratch` is reused).
    #[cfg(test)]
    fn matches_into(&self, path: &[u8], hits: &mut Vec<usize>, scratch: &mut Scratch) {
        self.matches_cached(path, &mut DirCache::default(), hits, scratch);
    }

    /// The globs matching `path` (valid UTF-8 without a line break; the caller sends the
    /// others through [`Matcher::matches_exactly`]), with the groups of the path's
    /// directories taken from `cache` when the previous path was in the same directory (git
    /// lists paths sorted, so most are), instead of looking each leading directory up again.
    fn matches_cached<'a>(
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
fn required_suffixes(patterns: &[&str]) -> Option<Vec<Vec<u8>>> {
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
struct DirCache<'a> {
    /// The directory, with its trailing `/` (empty: top level).
    dir: Vec<u8>,
    /// Its groups, outermost first.
    groups: Vec<&'a GlobGroup>,
}

impl CompiledPattern {
    /// The paths one of its globs hit.
    fn hit(&self, word: &Word<'_>) -> u64 {
        self.globs
            .iter()
            .fold(0, |bits, glob| bits | word.glob(*glob))
    }

    /// The paths it holds for, as picomatch decides: those equal to the pattern's text, and
    /// those hit, or for a `!` pattern those not hit (`^(?!…).*$`: without a line break).
    fn holds(&self, word: &Word<'_>) -> u64 {
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
    fn holds(&self, word: &Word<'_>) -> u64 {
        word.statuses(self.statuses) & self.patterns.iter().fold(0, |bits, p| bits | p.holds(word))
    }
}

impl CompiledFilter {
    /// The paths of `word` the filter matches: `is_match` (the definition, kept for the
    /// tests), 64 paths at a time.
    fn evaluate(&self, word: &Word<'_>) -> u64 {
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
    fn is_match(&self, hit: &[bool], status: Status, line_break: bool) -> bool {
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
fn transitive_dependencies(filters: &[Filter]) -> Vec<Vec<usize>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn run(yaml: &str, quantifier: Quantifier, changes: &[Change]) -> Vec<(String, Vec<String>)> {
        let filters = parse(yaml).expect("valid");
        let matcher = Matcher::new(&filters, quantifier).expect("compiles");
        let matches = matcher.matches(changes);
        filters
            .iter()
            .zip(matches.files)
            .map(|(f, files)| {
                (
                    f.name.clone(),
                    files.iter().map(|i| changes[i].path.to_string()).collect(),
                )
            })
            .collect()
    }

    fn modified(paths: &[&str]) -> Vec<Change> {
        paths
            .iter()
            .map(|p| Change::new(*p, Status::Modified))
            .collect()
    }

    fn files_of(result: &[(String, Vec<String>)], name: &str) -> Vec<String> {
        result
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
            .expect("filter exists")
    }

    #[test]
    fn negation_under_some_matches_everything_else_like_dorny() {
        let changes = modified(&["src/a.js", "src/b.md", "docs/c.txt"]);
        // "in src, or anything that is not markdown" (dorny #97).
        let result = run("x: ['src/**', '!**/*.md']\n", Quantifier::Some, &changes);
        assert_eq!(
            files_of(&result, "x"),
            ["src/a.js", "src/b.md", "docs/c.txt"]
        );
        let result = run("x: ['src/**', '!**/*.md']\n", Quantifier::Every, &changes);
        assert_eq!(files_of(&result, "x"), ["src/a.js"]);
        let result = run("x: '!**/*.md'\n", Quantifier::Some, &changes);
        assert_eq!(files_of(&result, "x"), ["src/a.js", "docs/c.txt"]);
    }

    #[test]
    fn ordered_rules_are_last_match_wins() {
        let changes = modified(&["src/a.js", "src/gen/b.js", "src/gen/keep.js", "x.js"]);
        let yaml = "x: ['src/**', '!src/gen/**', 'src/gen/keep.js']\n";
        let result = run(yaml, Quantifier::Ordered, &changes);
        assert_eq!(files_of(&result, "x"), ["src/a.js", "src/gen/keep.js"]);
    }

    #[test]
    fn exclude_removes_files_under_any_quantifier() {
        let changes = modified(&["api/main.rs", "api/README.md"]);
        let yaml = "api:\n  paths: api/**\n  exclude: '**/*.md'\n";
        for quantifier in [Quantifier::Some, Quantifier::Every, Quantifier::Ordered] {
            let result = run(yaml, quantifier, &changes);
            assert_eq!(files_of(&result, "api"), ["api/main.rs"], "{quantifier:?}");
        }
    }

    #[test]
    fn every_with_no_rules_matches_every_file_like_dorny() {
        let changes = modified(&["a", "b"]);
        let result = run("x: []\n", Quantifier::Every, &changes);
        assert_eq!(files_of(&result, "x"), ["a", "b"]);
        let result = run("x: []\n", Quantifier::Some, &changes);
        assert!(files_of(&result, "x").is_empty());
    }

    #[test]
    fn status_rules_see_only_their_statuses() {
        let changes = vec![
            Change::new("a/new.rs", Status::Added),
            Change::new("a/old.rs", Status::Deleted),
            Change::new("a/mod.rs", Status::Modified),
            Change::new("a/type.rs", Status::Other),
        ];
        let result = run(
            "x:\n  - added|deleted: a/**\ny: a/**\n",
            Quantifier::Some,
            &changes,
        );
        assert_eq!(files_of(&result, "x"), ["a/new.rs", "a/old.rs"]);
        assert_eq!(files_of(&result, "y").len(), 4);
    }

    #[test]
    fn dependencies_bring_their_files_transitively_in_change_order() {
        let changes = modified(&[
            "crates/shared/lib.rs",
            "services/api/main.rs",
            "proto/a.proto",
        ]);
        let yaml = "proto: proto/**\n\
                    shared:\n  paths: crates/shared/**\n  depends-on: [proto]\n\
                    api:\n  paths: services/api/**\n  depends-on: [shared]\n\
                    worker:\n  paths: services/worker/**\n  depends-on: [shared]\n\
                    web: web/**\n";
        let result = run(yaml, Quantifier::Some, &changes);
        assert_eq!(
            files_of(&result, "api"),
            [
                "crates/shared/lib.rs",
                "services/api/main.rs",
                "proto/a.proto"
            ]
        );
        assert_eq!(
            files_of(&result, "worker"),
            ["crates/shared/lib.rs", "proto/a.proto"]
        );
        assert!(files_of(&result, "web").is_empty());
    }

    #[test]
    fn detected_renames_match_on_either_path() {
        let changes = vec![Change {
            path: "moved/x.rs".into(),
            status: Status::Renamed,
            previous: Some("api/x.rs".into()),
        }];
        let result = run(
            "api: api/**\nmoved: moved/**\nrenames:\n  - renamed: api/**\n",
            Quantifier::Some,
            &changes,
        );
        assert_eq!(files_of(&result, "api"), ["moved/x.rs"]);
        assert_eq!(files_of(&result, "moved"), ["moved/x.rs"]);
        assert_eq!(files_of(&result, "renames"), ["moved/x.rs"]);
    }

    #[test]
    fn threaded_matching_equals_one_thread_in_order() {
        let filters = parse(
            "a: 'd1/**'\nb: ['d2/**', '!**/*.md']\nc:\n  paths: '**/*.rs'\n  depends-on: [a]\n",
        )
        .expect("valid");
        let matcher = Matcher::new(&filters, Quantifier::Some).expect("compiles");
        // Every directory holds every extension in equal numbers.
        let n = 9 * 7000;
        let changes: Vec<Change> = (0..n)
            .map(|i| {
                let path = format!("d{}/f{i}.{}", i % 3, ["rs", "md", "txt"][(i / 3) % 3]);
                Change::new(path.as_str(), Status::Modified)
            })
            .collect();
        let threaded = matcher.matches_on(&changes, 3);
        let single = matcher.matches_on(&changes, 1);
        assert_eq!(threaded, single);
        let counts: Vec<usize> = single.files.iter().map(FileSet::len).collect();
        // a: d1; b: d2, or anything not markdown; c: .rs files, plus a through depends-on.
        assert_eq!(counts, [n / 3, n / 3 + 4 * n / 9, 5 * n / 9]);
        let listed: Vec<usize> = single.files[1].iter().collect();
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "ascending");
    }

    #[test]
    fn paths_no_glob_hits_take_the_filters_default_per_status() {
        let changes = vec![
            Change::new("b.rs", Status::Modified),
            Change::new("c.tmp", Status::Modified),
            Change::new("docs/d.rs", Status::Modified),
            Change::new("e.rs", Status::Added),
        ];
        let yaml = "x:\n  paths: '!docs/**'\n  exclude: '**/*.tmp'\ny:\n  - added: '!a/**'\n";
        let result = run(yaml, Quantifier::Some, &changes);
        assert_eq!(files_of(&result, "x"), ["b.rs", "e.rs"]);
        assert_eq!(files_of(&result, "y"), ["e.rs"]);
    }

    #[test]
    fn word_evaluation_equals_the_per_path_definition() {
        let yaml = "plain: 'a/**'\n\
                    negated: '!**/*.md'\n\
                    mixed: ['a/**', '!**/*.md', 'b/*.rs']\n\
                    statuses:\n  - added|deleted: 'a/**'\n  - modified: '!b/**'\n\
                    ordered: ['**', '!a/**', 'a/keep/**', '!**/*.md']\n\
                    excluded:\n  paths: ['**/*.rs', '!b/**']\n  exclude:\n    - deleted: 'a/**'\n    - '**/x.rs'\n\
                    empty: []\n";
        let statuses = [
            Status::Added,
            Status::Modified,
            Status::Deleted,
            Status::Renamed,
            Status::Other,
        ];
        let dirs = ["a", "a/keep", "b", "c"];
        let names = ["x.rs", "y.md", "z.txt"];
        // 150 changes: the last word is partial; some are renames from another directory.
        let changes: Vec<Change> = (0..150)
            .map(|i| {
                let path = format!("{}/{}", dirs[i % 4], names[i / 4 % 3]);
                let status = statuses[i / 12 % 5];
                let previous = (status == Status::Renamed && i % 2 == 0).then(|| {
                    crate::change::RepoPath::from(format!("{}/old.rs", dirs[(i + 1) % 4]).as_str())
                });
                Change {
                    path: path.as_str().into(),
                    status,
                    previous,
                }
            })
            .collect();
        let filters = parse(yaml).expect("valid");
        for quantifier in [Quantifier::Some, Quantifier::Every, Quantifier::Ordered] {
            let matcher = Matcher::new(&filters, quantifier).expect("compiles");
            let matches = matcher.matches_on(&changes, 2);
            let (mut hits, mut scratch) = (Vec::new(), matcher.set.scratch());
            for (index, change) in changes.iter().enumerate() {
                hits.clear();
                for path in std::iter::once(&change.path).chain(&change.previous) {
                    matcher
                        .set
                        .matches_into(path.as_bytes(), &mut hits, &mut scratch);
                }
                let mut hit = vec![false; matcher.glob_count];
                for glob in &hits {
                    hit[*glob] = true;
                }
                for (number, filter) in matcher.filters.iter().enumerate() {
                    assert_eq!(
                        matches.files[number].contains(index),
                        filter.is_match(&hit, change.status, false),
                        "{quantifier:?} {} {change:?}",
                        filters[number].name
                    );
                }
            }
            for set in &matches.files {
                assert!(set.iter().all(|index| index < changes.len()));
            }
        }
    }

    #[test]
    fn file_sets_iterate_in_order_across_words() {
        let mut set = FileSet::new(200);
        for index in [199, 0, 63, 64, 128] {
            set.insert(index);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 63, 64, 128, 199]);
        assert_eq!(set.len(), 5);
        assert!(!set.contains(1) && set.contains(64));
        assert!(FileSet::new(10).is_empty());
    }

    #[test]
    fn identical_globs_are_compiled_once() {
        let filters = parse("a: x/**\nb: [x/**, y/*]\n").expect("valid");
        let matcher = Matcher::new(&filters, Quantifier::Some).expect("compiles");
        // `x/**` also needs `x` (picomatch matches the directory name itself).
        assert_eq!(matcher.glob_count, 5, "x, x/**, y/* and the two texts");
        let first_glob = |filter: usize| matcher.filters[filter].rules[0].patterns[0].globs[0];
        assert_eq!((first_glob(0), first_glob(1)), (0, 0));
    }
    /// The ASCII regexes of a glob's text.
    fn ascii_regexes(source: &str) -> Vec<String> {
        crate::glob::Pattern::parse(source)
            .expect(source)
            .globs
            .into_iter()
            .filter_map(|glob| match glob {
                Glob::Regex(regex) => Some(regex.ascii.clone()),
                Glob::Exact(_) => None,
            })
            .collect()
    }

    #[test]
    fn extension_globs_give_the_suffixes_a_path_must_end_with() {
        let mut regexes = ascii_regexes("**/*.md");
        regexes.extend(ascii_regexes("services/api/src/**/*.{rs,proto}"));
        let patterns: Vec<&str> = regexes.iter().map(String::as_str).collect();
        let suffixes = required_suffixes(&patterns).expect("finite suffixes");
        // Inexact literals may be longer than the extension; each must end with one
        // (or with one and a `/`: picomatch lets a trailing slash match).
        for suffix in &suffixes {
            let suffix = suffix.strip_suffix(b"/").unwrap_or(suffix);
            assert!(
                [".md", ".rs", ".proto"]
                    .iter()
                    .any(|ext| suffix.ends_with(ext.as_bytes())),
                "{suffix:?}"
            );
        }
        for ext in [".md", ".rs", ".proto"] {
            assert!(
                suffixes.iter().any(|s| s.ends_with(ext.as_bytes())),
                "{ext}"
            );
        }
        // A glob that can end in anything turns the skip off for its whole set.
        let mut regexes = ascii_regexes("**/*.md");
        regexes.extend(ascii_regexes("docs/*"));
        let patterns: Vec<&str> = regexes.iter().map(String::as_str).collect();
        assert_eq!(required_suffixes(&patterns), None);
    }

    #[test]
    fn the_glob_index_answers_exactly_like_javascript() {
        let sources = [
            "services/api/**",
            "services/api/src/**/*.{rs,proto}",
            "**/*.md",
            "*",
            "a?b",
            "**",
            "docs/*.md",
            "docs/sub/**",
            "src/[ab].js",
            "b{1,}.txt",
            "services/**/main.rs",
            ".github/**",
            "weird\\[1\\].txt",
            "x/y/z",
            "x/y/**/q",
            "x/{y,z}/**",
            "(src|lib)/**",
            "x*/**",
            "[x].txt",
            "docs/?.md",
            "*.*",
        ];
        // Per pattern, its globs (a pattern holds when any of them does).
        let mut globs: Vec<Glob> = Vec::new();
        let mut patterns: Vec<Vec<usize>> = Vec::new();
        for source in sources {
            let mut own = Vec::new();
            for glob in crate::glob::Pattern::parse(source).expect(source).globs {
                let index = globs
                    .iter()
                    .position(|g| g.key() == glob.key())
                    .unwrap_or_else(|| {
                        globs.push(glob);
                        globs.len() - 1
                    });
                own.push(index);
            }
            patterns.push(own);
        }
        let by_pattern = |hits: &[usize]| -> Vec<usize> {
            (0..patterns.len())
                .filter(|p| patterns[*p].iter().any(|g| hits.contains(g)))
                .collect()
        };
        let index = GlobIndex::new(&globs).expect("index");
        let paths = [
            "services/api/src/main.rs",
            "services/api",
            "services/api/.env",
            "services/apix/a",
            "services/api/src/x/y.proto",
            "README.md",
            "docs/a.md",
            "docs/é.md",
            "docs/😀.md",
            "docs/sub/b.md",
            "docs/sub",
            "axb",
            "a/b",
            "src/a.js",
            "src/c.js",
            "src/x",
            "lib/y/z",
            "b.txt",
            "b1.txt",
            "services/web/main.rs",
            ".github/workflows/ci.yml",
            "weird[1].txt",
            "[x].txt",
            "x.txt",
            "x/y/z",
            "x/y/a/b/q",
            "x/y/q",
            "x/z/w",
            "x/y",
            "xa/b",
            "xa",
            "a.",
        ];
        let (mut hits, mut scratch) = (Vec::new(), index.scratch());
        let mut cache = DirCache::default();
        // Each path alone, then in sorted order through one cache, as the matcher does.
        let mut sorted = paths.to_vec();
        sorted.sort_unstable();
        let javascript = |path: &str| -> Vec<usize> {
            let units = jsregex::path_units(path.as_bytes());
            (0..globs.len())
                .filter(|g| globs[*g].matches_units(&units, path.as_bytes()))
                .collect()
        };
        for (path, cached) in paths.iter().zip(&sorted) {
            hits.clear();
            index.matches_into(path.as_bytes(), &mut hits, &mut scratch);
            assert_eq!(by_pattern(&hits), by_pattern(&javascript(path)), "{path}");
            hits.clear();
            index.matches_cached(cached.as_bytes(), &mut cache, &mut hits, &mut scratch);
            assert_eq!(
                by_pattern(&hits),
                by_pattern(&javascript(cached)),
                "{cached} (cached)"
            );
        }
        // `src/**/` puts the `/` after `src` inside an alternation: `services/api/` is the
        // longest literal directory.
        assert_eq!(index.deepest, "services/api/".len());
    }
    #[test]
    fn the_pipeline_equals_matching_the_whole_list() {
        let filters = parse(
            "a: 'd1/**'\nb: ['d2/**', '!**/*.md']\nc:\n  paths: '**/*.rs'\n  depends-on: [a]\n",
        )
        .expect("valid");
        let changes: Vec<Change> = (0..(2 * PIPELINE_CHUNK + 100))
            .map(|i| {
                let path = format!("d{}/f{i}.{}", i % 3, ["rs", "md", "txt"][(i / 3) % 3]);
                Change::new(path.as_str(), Status::Modified)
            })
            .collect();
        let whole = Matcher::new(&filters, Quantifier::Some)
            .expect("compiles")
            .matches_on(&changes, 1);
        let compiling = {
            let filters = filters.clone();
            std::thread::spawn(move || Matcher::new(&filters, Quantifier::Some))
        };
        let mut pipeline = Pipeline::new(compiling);
        for change in changes.iter().cloned() {
            pipeline.push(change);
        }
        let listed = pipeline.finish().expect("compiles");
        assert_eq!(listed.changes, changes);
        assert_eq!(listed.matches, whole);
    }
}
