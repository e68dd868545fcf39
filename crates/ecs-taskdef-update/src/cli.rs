//! Command-line interface. Every flag also reads `ECS_TASKDEF_UPDATE_<FLAG>`
//! (see `runner_protocol::cli`).

use runner_protocol::{CommonArgs, ToolCli};

/// Deploy to Amazon ECS: new task definition revisions, service update, honest wait, rollback.
///
/// Renders and registers new task definition revisions (images, env), updates the services, waits
/// until our deployment completes, and rolls every service back when one fails.
///
/// Exit codes: 0 success, 1 check or deploy failed, 2 usage or configuration error,
/// 3 infrastructure error, 4 rollback failed, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "ecs-taskdef-update", version, max_term_width = 100)]
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
