//! Command-line interface. Every flag also reads `RELEASE_DESCRIPTOR_RENDER_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Validate release.yaml and render what CI needs from it: versions, checkouts, images, lock file, templates.
///
/// Reads the release descriptor (platform ref, frontend ref, bundle items), validates it with
/// file:line:column errors, and renders what CI needs from it.
///
/// Exit codes: 0 success, 1 check or deploy failed, 2 usage or configuration error,
/// 3 infrastructure error, 4 rollback failed, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "release-descriptor-render", version, max_term_width = 100)]
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
