//! Command-line interface. Every flag also reads `BUNDLE_JSON_GEN_<FLAG>`
//! (see `runner_protocol::cli`); the action selects the subcommand with its `command` input.

use std::path::PathBuf;

use release_model::DescriptorArgs;
use runner_protocol::input::LineList;
use runner_protocol::{CommonArgs, ToolCli};

use crate::descriptor::Mode;

/// Derive the runtime bundle descriptor AGENTIC_BUNDLES_JSON from release.yaml, and stage baked bundles.
///
/// Turns the `bundles:` section of release.yaml (or a bundles.yaml) into the runtime
/// descriptor AGENTIC_BUNDLES_JSON (baked or git delivery), and stages bundle folders for
/// image builds.
#[derive(Debug, clap::Parser)]
#[command(name = "bundle-json-gen", version, max_term_width = 100)]
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
    /// Write the runtime descriptor as an output, a file, a compose dotenv line, an ECS entry.
    Generate(GenerateArgs),
    /// Copy each bundle folder from its checkout into a destination, with a sha256 manifest.
    Stage(StageArgs),
}

/// Flags of `generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// The descriptor and its checks.
    #[command(flatten)]
    pub descriptor: DescriptorArgs,

    /// Delivery mode: `baked` (bundles inside the image, `path` set) or `git` (no `path`).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "baked",
        help_heading = "Descriptor"
    )]
    pub mode: Mode,

    /// Bundles root inside the image: baked entries get `path=<root>` (`module=<folder>.<entry>`),
    /// or `path=<root>/<folder>` (`module=<entry>`) when the folder holds dots.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/bundles",
        help_heading = "Descriptor"
    )]
    pub bundles_root: String,

    /// Keep `repo`/`ref`/`subdir` on baked entries of AGENTIC_BUNDLES_JSON.
    ///
    /// Off by default: platform revisions from 2026-04-07 recompute `path` from `repo`, so
    /// baked entries carrying it do not load there; earlier ones need
    /// BUNDLE_GIT_RESOLUTION_ENABLED=0 on the processor. bundles.yaml keeps the source as comments.
    #[arg(long, value_name = "BOOL", help_heading = "Descriptor")]
    pub traceability: bool,

    /// The platform revision the release deploys: its commit date, `YYYY-MM-DD`.
    ///
    /// Unset, the descriptor loads on every revision that reads it; set, the checks follow
    /// that revision (see the action README's platform table).
    #[arg(
        long,
        value_name = "YYYY-MM-DD",
        value_parser = crate::platform::parse,
        help_heading = "Descriptor"
    )]
    pub platform_revision: Option<crate::platform::PlatformRevision>,

    /// Replace `env:NAME`/`file:/path` props with their values (masked before use); by
    /// default they stay references for the runtime to resolve.
    #[arg(long, value_name = "BOOL", help_heading = "Descriptor")]
    pub resolve_props: bool,

    /// Name of the environment variable in the dotenv line and the ECS entry.
    ///
    /// Letters, digits and `_`, not starting with a digit (`[A-Za-z_][A-Za-z0-9_]*`): the
    /// dotenv line is sourced by a shell, so anything else is refused (exit 2).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "AGENTIC_BUNDLES_JSON",
        value_parser = parse_env_name,
        help_heading = "Forms"
    )]
    pub env_name: String,

    /// Pretty-print the JSON (output, file, ECS entry); the dotenv line is always compact.
    #[arg(long, value_name = "BOOL", help_heading = "Forms")]
    pub pretty: bool,

    /// Write the descriptor to this file (e.g. `bundles.json`).
    #[arg(long, value_name = "FILE", help_heading = "Forms")]
    pub output_file: Option<PathBuf>,

    /// Write bundles.yaml here (what the platform reads since 2026-04-19, mounted at
    /// `BUNDLES_YAML_DESCRIPTOR_PATH`, default `/config/bundles.yaml`).
    #[arg(long, value_name = "FILE", help_heading = "Forms")]
    pub bundles_yaml_file: Option<PathBuf>,

    /// Set `<env-name>='<json>'` in this compose env file (e.g. `.env.proc`), replacing the
    /// existing value (all of its lines) or appending one; other variables are kept as they are.
    #[arg(long, value_name = "FILE", help_heading = "Forms")]
    pub dotenv_file: Option<PathBuf>,

    /// Write the ECS environment entry `{"name": ..., "value": ...}` to this file.
    #[arg(long, value_name = "FILE", help_heading = "Forms")]
    pub ecs_file: Option<PathBuf>,
}

/// Flags of `stage`.
#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// The descriptor and its checks.
    #[command(flatten)]
    pub descriptor: DescriptorArgs,

    /// Where bundle folders are staged (`<dest>/<folder>`), e.g. the build context's `bundles`.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "bundles",
        help_heading = "Stage"
    )]
    pub dest: PathBuf,

    /// The `checkouts` output of release-descriptor-render (JSON), mapping bundles to paths.
    #[arg(long, value_name = "JSON", help_heading = "Stage")]
    pub checkouts: Option<String>,

    /// `BUNDLE_ID=PATH` pairs, one per line: the checkout holding each bundle's repository.
    #[arg(long, value_name = "ID=PATH", help_heading = "Stage")]
    pub checkout: Vec<LineList>,

    /// Where to write the manifest (every staged file with its sha256).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "bundles.manifest.json",
        help_heading = "Stage"
    )]
    pub manifest: PathBuf,

    /// Replace a staged bundle folder whose contents differ (otherwise that is an error).
    #[arg(long, value_name = "BOOL", help_heading = "Stage")]
    pub replace: bool,
}

/// Accepts an environment variable name a shell can assign: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn parse_env_name(value: &str) -> Result<String, String> {
    let mut chars = value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(
            "not a variable name: use letters, digits and `_`, not starting with a digit \
             (e.g. AGENTIC_BUNDLES_JSON)"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_shell_variable_names() {
        for valid in ["AGENTIC_BUNDLES_JSON", "_x", "a1"] {
            assert_eq!(parse_env_name(valid).as_deref(), Ok(valid));
        }
        for invalid in ["", "1A", "X=1; touch marker; Y", "A-B", "A B", "Ä", "A\n"] {
            assert!(parse_env_name(invalid).is_err(), "{invalid:?}");
        }
    }
}
