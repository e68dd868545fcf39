//! Command-line interface. Every flag also reads `HEALTH_GATE_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Gate a deploy: wait for readiness, then observe success rate and latency, and decide go or rollback.
///
/// Polls http, gRPC, SSE and TCP checks until ready, then observes them under a small concurrent
/// burst against error-rate and latency thresholds, and decides `go` or `rollback`.
///
/// Exit codes: 0 success, 1 check or deploy failed, 2 usage or configuration error,
/// 3 infrastructure error, 4 rollback failed, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "health-gate", version, max_term_width = 100)]
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
