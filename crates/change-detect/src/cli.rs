//! Command-line interface. Every flag also reads `CHANGE_DETECT_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Find which services changed: named glob filters over git diffs, per event (push, pull request, merge queue, tags).
///
/// Decides, per event, which named path filters matched the changed files, so that only the
/// affected services build, test and deploy. The filters file is dorny/paths-filter's format.
#[derive(Debug, clap::Parser)]
#[command(name = "change-detect", version, max_term_width = 100)]
pub struct Cli {
    /// The filters: inline YAML, or the path of a YAML file.
    ///
    /// A value without a newline and without `:` is a path (relative to --working-directory),
    /// as in dorny/paths-filter. Example: `--filters .github/filters.yaml`.
    #[arg(long, value_name = "YAML|PATH", help_heading = "Filters")]
    pub filters: Option<String>,

    /// How a filter combines its rules: some, every or ordered.
    ///
    /// `some`: a file matches when any rule matches (a `!` rule matches everything it does not
    /// name). `every`: all rules must match. `ordered`: gitignore-like, the last matching rule
    /// wins and `!` excludes. A filter's own `predicate-quantifier:` key overrides this.
    #[arg(
        long,
        value_name = "QUANTIFIER",
        default_value = "some",
        help_heading = "Filters"
    )]
    pub predicate_quantifier: CliQuantifier,

    /// Branch, tag or SHA to compare against, or HEAD for uncommitted local changes.
    ///
    /// Default: per event (push: the previous tip; pull request: its base; merge queue: the
    /// queue's base; tag: the previous tag). A branch or tag name is compared at the merge
    /// base (three-dot); a full SHA directly (two-dot).
    #[arg(long, value_name = "REF", help_heading = "Range")]
    pub base: Option<String>,

    /// Branch, tag or SHA whose changes are detected (default: the event's head commit).
    #[arg(long = "ref", value_name = "REF", help_heading = "Range")]
    pub git_ref: Option<String>,

    /// What a force push is compared with: previous-tip or base-branch.
    ///
    /// `previous-tip` shows what changed since the tip before the push (dorny's behaviour);
    /// `base-branch` shows what the branch changes against the default branch.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "previous-tip",
        help_heading = "Range"
    )]
    pub force_push: CliForcePush,

    /// Tags a tag push is compared with: the previous tag (in version order) matching this glob.
    #[arg(long, value_name = "GLOB", default_value = "*", help_heading = "Range")]
    pub tag_pattern: String,

    /// With --base HEAD, count untracked (not ignored) files as added.
    #[arg(long, value_name = "BOOL", help_heading = "Range")]
    pub include_untracked: bool,

    /// How renames are reported: split or detect.
    ///
    /// `split` (dorny's model): the old path is `deleted` and the new path `added`, and both
    /// are matched. `detect`: one `renamed` change that matches through either path.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "split",
        help_heading = "Range"
    )]
    pub renames: CliRenames,

    /// Where changes come from: auto, git or api.
    ///
    /// `auto` uses git when the working directory is a git checkout, and otherwise, on pull
    /// request events, the REST API (needs --token). The API lists at most 3000 files; a
    /// longer pull request falls back to git or fails, never reports a partial list.
    #[arg(
        long,
        value_name = "SOURCE",
        default_value = "auto",
        help_heading = "Source"
    )]
    pub source: CliSource,

    /// What to do when the REST API's list is truncated (at most 3000 files): git or fail.
    ///
    /// `git` uses git when the working directory is a checkout and fails otherwise; `fail`
    /// always fails. A truncated list is never reported as complete.
    #[arg(
        long,
        value_name = "ACTION",
        default_value = "git",
        help_heading = "Source"
    )]
    pub on_truncation: CliOnTruncation,

    /// GitHub token for the REST API (pull requests without a checkout).
    #[arg(
        long,
        value_name = "TOKEN",
        hide_env_values = true,
        help_heading = "Source"
    )]
    pub token: Option<String>,

    /// Directory to run in (the repository or a directory inside it).
    #[arg(long, value_name = "DIR", help_heading = "Source")]
    pub working_directory: Option<String>,

    /// Commits fetched first when a shallow clone lacks the merge base; doubles each round.
    #[arg(long, value_name = "N", default_value = "100", help_heading = "Source")]
    pub initial_fetch_depth: u64,

    /// Stop deepening a shallow clone after this many commits.
    #[arg(
        long,
        value_name = "N",
        default_value = "10000",
        help_heading = "Source"
    )]
    pub max_fetch_depth: u64,

    /// After --max-fetch-depth, fetch the whole history (`git fetch --unshallow`) instead of
    /// failing.
    #[arg(
        long,
        value_name = "BOOL",
        default_value = "true",
        help_heading = "Source"
    )]
    pub unshallow: bool,

    /// Format of the `<filter>_files` outputs: none, csv, json, shell or escape.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "none",
        ignore_case = true,
        help_heading = "Results"
    )]
    pub list_files: CliListFormat,

    /// Also write each filter's files to DIR/<filter>.txt (NUL-terminated, exact bytes) and
    /// DIR/<filter>.json, for lists too large for step outputs (1 MB per job).
    #[arg(long, value_name = "DIR", help_heading = "Results")]
    pub files_dir: Option<String>,

    /// Flags shared by every binary of the suite.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ToolCli for Cli {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// `--predicate-quantifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliQuantifier {
    /// Any rule.
    Some,
    /// All rules.
    Every,
    /// Last matching rule wins.
    Ordered,
}

/// `--force-push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliForcePush {
    /// Since the tip before the push.
    PreviousTip,
    /// Against the default branch.
    BaseBranch,
}

/// `--renames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliRenames {
    /// Deleted + added.
    Split,
    /// Renamed, with the previous path.
    Detect,
}

/// `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliSource {
    /// Git when there is a checkout, else the API.
    Auto,
    /// Always git.
    Git,
    /// Always the REST API (pull request events only).
    Api,
}

/// `--on-truncation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliOnTruncation {
    /// Git when checked out, else fail.
    Git,
    /// Always fail.
    Fail,
}

/// `--list-files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliListFormat {
    /// No `_files` outputs.
    None,
    /// Comma-separated.
    Csv,
    /// JSON array.
    Json,
    /// Shell words, single-quoted.
    Shell,
    /// Shell words, backslash-escaped.
    Escape,
}
