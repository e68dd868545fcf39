//! A set of change indices as bits.

/// A set of change indices, one bit per change: compact even when a filter matches nearly
/// every one of 100,000 files, and iterated in change order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSet {
    pub(super) words: Vec<u64>,
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
    pub(super) fn or_at(&mut self, other: &FileSet, word_offset: usize) {
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
    pub(super) fn resize(&mut self, len: usize) {
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
