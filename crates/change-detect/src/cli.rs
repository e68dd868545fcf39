//! Command-line interface. Every flag also reads `CHANGE_DETECT_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Find which services changed: named glob filters over git diffs, per event (push, pull request, merge queue, tags).
///
/// Decides, per event, which named path filters matched the changed files, so that only the
/// affected services build, test and deploy.
///
/// Exit codes: 0 success, 1 check or deploy failed, 2 usage or configuration error,
/// 3 infrastructure error, 4 rollback failed, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "change-detect", version, max_term_width = 100)]
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
