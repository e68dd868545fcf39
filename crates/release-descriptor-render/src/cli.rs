//! Command-line interface. Every flag also reads `RELEASE_DESCRIPTOR_RENDER_<FLAG>`
//! (see `runner_protocol::cli`); the action selects the subcommand with its `command` input.

use std::path::PathBuf;

use release_model::DescriptorArgs;
use runner_protocol::input::LineList;
use runner_protocol::{CommonArgs, ToolCli};

/// Validate release.yaml and render what CI needs from it: versions, checkouts, images, lock file, templates.
///
/// Reads the release descriptor (platform ref, frontend ref, bundle items), validates it with
/// file:line:column errors (all of them at once), and renders what CI needs from it.
#[derive(Debug, clap::Parser)]
#[command(name = "release-descriptor-render", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Flags shared by every binary of the suite.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ToolCli for Cli {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate the descriptor; outputs `valid`, `release-name`, `version`, `tag`.
    Validate(ValidateArgs),
    /// Validate, then output versions, checkouts and images, render templates, write a summary.
    Render(RenderArgs),
    /// Resolve every ref to a full commit SHA into a lock file (git ls-remote or the GitHub API).
    Lock(LockArgs),
    /// Compare this descriptor with a base one (e.g. from `main`): markdown and JSON.
    Diff(DiffArgs),
}

/// Version scheme of the platform tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// No check.
    None,
    /// Semantic Versioning 2.0.0.
    Semver,
    /// Python PEP 440.
    Pep440,
}

/// Flags of `validate` (and, flattened, of `render`).
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// The descriptor and its checks.
    #[command(flatten)]
    pub descriptor: DescriptorArgs,

    /// Ask each remote whether a ref is a tag, branch or commit (git ls-remote, or the GitHub
    /// API with --token); otherwise refs are judged by their shape, and messages say so.
    #[arg(long, value_name = "BOOL", help_heading = "Descriptor")]
    pub remote_refs: bool,

    /// Require the platform tag to be a version in this scheme: none, semver or pep440.
    #[arg(
        long,
        value_name = "SCHEME",
        default_value = "none",
        help_heading = "Descriptor"
    )]
    pub version_scheme: SchemeArg,

    /// Remote access for --remote-refs and `lock`.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// How remotes are reached.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Remotes")]
pub struct RemoteArgs {
    /// GitHub token: refs of GitHub repositories are resolved through the REST API with it
    /// (masked before use). Without it, `git ls-remote` is used.
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// GitHub REST API base URL (GitHub Enterprise Server: `https://HOST/api/v3`).
    #[arg(long, value_name = "URL", default_value = "https://api.github.com")]
    pub github_api_url: String,

    /// Base URL that `owner/name` repositories are cloned from by `git ls-remote`.
    #[arg(long, value_name = "URL", default_value = "https://github.com")]
    pub git_base_url: String,
}

/// Flags of `render`.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// Descriptor and checks.
    #[command(flatten)]
    pub validate: ValidateArgs,

    /// Directory under which each repository is checked out (`<dir>/<name>`).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "checkouts",
        help_heading = "Render"
    )]
    pub checkout_dir: String,

    /// Image registry prefix, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme`.
    #[arg(long, value_name = "REGISTRY", help_heading = "Images")]
    pub registry: Option<String>,

    /// Images built from the platform repository, tagged with the platform ref (one per line).
    #[arg(long, value_name = "NAMES", help_heading = "Images")]
    pub platform_images: Vec<LineList>,

    /// Images built from the customer repository, tagged with --customer-sha (one per line).
    #[arg(long, value_name = "NAMES", help_heading = "Images")]
    pub customer_images: Vec<LineList>,

    /// Commit of the customer repository (this repository); defaults to `GITHUB_SHA`.
    #[arg(long, value_name = "SHA", help_heading = "Images")]
    pub customer_sha: Option<String>,

    /// Templates to render, `SOURCE=DESTINATION`, one per line (minijinja, strict: an
    /// unknown variable is an error, never an empty string).
    #[arg(long, value_name = "SRC=DEST", help_heading = "Templates")]
    pub template: Vec<LineList>,

    /// Build time for templates (RFC 3339); defaults to `SOURCE_DATE_EPOCH`, else now.
    #[arg(long, value_name = "TIME", help_heading = "Templates")]
    pub build_time: Option<String>,
}

/// Flags of `lock`.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// Descriptor and checks.
    #[command(flatten)]
    pub validate: ValidateArgs,

    /// Where to write the lock file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "release.lock.json",
        help_heading = "Lock"
    )]
    pub lock_file: PathBuf,
}

/// Flags of `diff`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// Descriptor and checks (of the new side).
    #[command(flatten)]
    pub descriptor: DescriptorArgs,

    /// The base descriptor to compare with (e.g. `git show main:release.yaml > base.yaml`).
    #[arg(long, value_name = "FILE", help_heading = "Diff")]
    pub base: PathBuf,
}
