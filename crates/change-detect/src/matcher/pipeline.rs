//! Matching while git is still listing: chunks on worker threads, assembled in order.

use std::sync::Arc;

use crate::change::Change;

use super::compiled::{Matcher, Matches};
use super::error::CompileError;
use super::fileset::FileSet;

/// Changes per worker thread in a [`Pipeline`] (a multiple of 64: whole bitset words).
pub(super) const PIPELINE_CHUNK: usize = 16_384;

/// What a [`Pipeline`] worker hands back: per filter the changes matched, and the chunk itself.
pub(super) type ChunkResult = (Vec<FileSet>, Vec<Change>);

/// A running [`Pipeline`] worker.
pub(super) type Job = std::thread::JoinHandle<ChunkResult>;

/// Every change so far in order, and per filter the changes it matched.
pub(super) type Assembled = (Vec<Change>, Vec<FileSet>);

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
    pub(super) compiling: Option<std::thread::JoinHandle<Result<Matcher, CompileError>>>,
    pub(super) matcher: Option<Arc<Matcher>>,
    pub(super) error: Option<CompileError>,
    pub(super) pending: Vec<Change>,
    /// Workers, in list order, for the assembler.
    pub(super) jobs: Option<std::sync::mpsc::Sender<Job>>,
    pub(super) assembler: Option<std::thread::JoinHandle<Assembled>>,
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

    pub(super) fn matcher(&mut self) -> Option<Arc<Matcher>> {
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

    pub(super) fn dispatch(&mut self) {
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
pub(super) fn assemble(jobs: &std::sync::mpsc::Receiver<Job>, filters: usize) -> Assembled {
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
