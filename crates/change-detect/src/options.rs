//! The validated options of a run: the command line mapped to domain types.

use std::path::PathBuf;

use crate::change::Renames;
use crate::cli::{
    Cli, CliForcePush, CliListFormat, CliOnTruncation, CliQuantifier, CliRenames, CliSource,
};
use crate::filter::Quantifier;
use crate::format::ListFormat;

/// What a force push is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForcePush {
    /// The tip before the push (`before..after`).
    #[default]
    PreviousTip,
    /// The default branch, at the merge base.
    BaseBranch,
}

/// Where changes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Git with a checkout, else the API on pull requests.
    #[default]
    Auto,
    /// Git only.
    Git,
    /// The REST API only.
    Api,
}

/// What a truncated REST API list leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTruncation {
    /// Git when there is a checkout, else an error.
    #[default]
    Git,
    /// An error.
    Fail,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `filters` input: inline YAML or a path.
    pub filters: String,
    /// Default quantifier.
    pub quantifier: Quantifier,
    /// `--base`.
    pub base: Option<String>,
    /// `--ref`.
    pub head: Option<String>,
    /// `--force-push`.
    pub force_push: ForcePush,
    /// `--tag-pattern`.
    pub tag_pattern: String,
    /// `--include-untracked`.
    pub include_untracked: bool,
    /// `--renames`.
    pub renames: Renames,
    /// `--source`.
    pub source: Source,
    /// `--on-truncation`.
    pub on_truncation: OnTruncation,
    /// `--token` (masked as soon as the run starts).
    pub token: Option<String>,
    /// `--working-directory`, or the current directory.
    pub working_directory: PathBuf,
    /// `--initial-fetch-depth`.
    pub initial_fetch_depth: u64,
    /// `--max-fetch-depth`.
    pub max_fetch_depth: u64,
    /// `--unshallow`.
    pub unshallow: bool,
    /// `--list-files`.
    pub list_files: ListFormat,
    /// `--files-dir`.
    pub files_dir: Option<PathBuf>,
    /// GitLab, Buildkite or Jenkins, when change-detect runs there (read from the
    /// environment by `run`; decides the base when there is no GitHub event and no `base`).
    pub ci: Option<crate::ci::CiContext>,
}

/// A flag value that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OptionsError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Options {
    /// Validates the command line.
    pub fn from_cli(cli: Cli) -> Result<Self, OptionsError> {
        let filters = cli.filters.filter(|f| !f.trim().is_empty()).ok_or_else(|| OptionsError {
            message: "no filters given".into(),
            hint: "pass --filters (the action's `filters` input): inline YAML or the path of a YAML file".into(),
        })?;
        if cli.initial_fetch_depth == 0 {
            return Err(OptionsError {
                message: "--initial-fetch-depth must be at least 1".into(),
                hint: "the default is 100".into(),
            });
        }
        if cli.tag_pattern.is_empty() || crate::glob::build(&cli.tag_pattern).is_err() {
            return Err(OptionsError {
                message: format!("--tag-pattern `{}` is not a glob", cli.tag_pattern),
                hint: "write e.g. `v*` or `api-v*`".into(),
            });
        }
        let token = cli.token.filter(|t| !t.is_empty());
        Ok(Self {
            filters,
            quantifier: match cli.predicate_quantifier {
                CliQuantifier::Some => Quantifier::Some,
                CliQuantifier::Every => Quantifier::Every,
                CliQuantifier::Ordered => Quantifier::Ordered,
            },
            base: cli.base.filter(|b| !b.is_empty()),
            head: cli.git_ref.filter(|r| !r.is_empty()),
            force_push: match cli.force_push {
                CliForcePush::PreviousTip => ForcePush::PreviousTip,
                CliForcePush::BaseBranch => ForcePush::BaseBranch,
            },
            tag_pattern: cli.tag_pattern,
            include_untracked: cli.include_untracked,
            renames: match cli.renames {
                CliRenames::Split => Renames::Split,
                CliRenames::Detect => Renames::Detect,
            },
            source: match cli.source {
                CliSource::Auto => Source::Auto,
                CliSource::Git => Source::Git,
                CliSource::Api => Source::Api,
            },
            on_truncation: match cli.on_truncation {
                CliOnTruncation::Git => OnTruncation::Git,
                CliOnTruncation::Fail => OnTruncation::Fail,
            },
            token,
            // Paths are strings so an action input left empty (an empty variable) means unset.
            working_directory: cli
                .working_directory
                .filter(|d| !d.is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from),
            initial_fetch_depth: cli.initial_fetch_depth,
            max_fetch_depth: cli.max_fetch_depth,
            unshallow: cli.unshallow,
            list_files: match cli.list_files {
                CliListFormat::None => ListFormat::None,
                CliListFormat::Csv => ListFormat::Csv,
                CliListFormat::Json => ListFormat::Json,
                CliListFormat::Shell => ListFormat::Shell,
                CliListFormat::Escape => ListFormat::Escape,
            },
            files_dir: cli.files_dir.filter(|d| !d.is_empty()).map(PathBuf::from),
            ci: None,
        })
    }

    /// True when the filters input is inline YAML rather than a path (dorny's rule: a value
    /// with a newline or a `:` is YAML).
    pub fn filters_are_inline(&self) -> bool {
        self.filters.contains('\n') || self.filters.contains(':')
    }
}
