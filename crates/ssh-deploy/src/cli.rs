//! Command-line interface. Every flag also reads `SSH_DEPLOY_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Deploy releases to Linux hosts over SSH: releases/<id>, atomic `current` switch, ordered restarts, gated rollback.
///
/// Uploads one versioned artifact to one host or a fleet, switches `current` atomically, restarts
/// services in order, gates the deploy and rolls back when the gate fails.
///
/// Exit codes: 0 success, 1 check or deploy failed, 2 usage or configuration error,
/// 3 infrastructure error, 4 rollback failed, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "ssh-deploy", version, max_term_width = 100)]
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
