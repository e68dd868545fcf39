//! Command-line interface. Every flag also reads `BUNDLE_JSON_GEN_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Derive the runtime bundle descriptor AGENTIC_BUNDLES_JSON from release.yaml, and stage baked bundles.
///
/// Turns the `bundles:` section of release.yaml into the runtime descriptor AGENTIC_BUNDLES_JSON
/// (baked or git delivery) and stages bundle folders for image builds.
///
/// Exit codes: 0 success, 1 check or deploy failed, 2 usage or configuration error,
/// 3 infrastructure error, 4 rollback failed, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "bundle-json-gen", version, max_term_width = 100)]
pub struct Cli {
    /// Flags shared by every binary of the suite.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl ToolCli for Cli {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}
