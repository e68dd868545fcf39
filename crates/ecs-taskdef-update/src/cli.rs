//! Command-line interface. Every flag also reads `ECS_TASKDEF_UPDATE_<FLAG>`
//! (see `runner_protocol::cli`).

use std::path::PathBuf;

use runner_protocol::input::LineList;
use runner_protocol::{CommonArgs, ToolCli};

/// Deploy to Amazon ECS: new task definition revisions, service update, honest wait, rollback.
///
/// Renders and registers new task definition revisions (images, env, secrets, command),
/// updates the services, waits until our deployment completes, and rolls every changed service
/// back when one fails.
#[derive(Debug, clap::Parser)]
#[command(name = "ecs-taskdef-update", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Flags shared by every binary of the suite.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The subcommands; all take the same flags.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Render, check images, register, update, wait; roll back on failure.
    Deploy(Args),
    /// Write the rendered task definitions as JSON (register input), change nothing.
    Render(Args),
    /// Show what would change per container (secrets and long values redacted).
    Diff(Args),
    /// Put a service back on its previous revision (or --to-revision) and wait.
    Rollback(Args),
}

impl Command {
    /// The flags.
    pub fn args(&self) -> &Args {
        match self {
            Command::Deploy(args)
            | Command::Render(args)
            | Command::Diff(args)
            | Command::Rollback(args) => args,
        }
    }
}

/// Flags of every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Deploy file (YAML) listing services and per-container changes.
    ///
    /// Replaces the one-service flags (--service, --container, --image, --env …).
    #[arg(long, value_name = "PATH", help_heading = "What to deploy")]
    pub deploy_file: Option<PathBuf>,

    /// ECS cluster (a deploy file's `cluster:` wins).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "default",
        help_heading = "What to deploy"
    )]
    pub cluster: String,

    /// Service (one-service case).
    #[arg(long, value_name = "NAME", help_heading = "What to deploy")]
    pub service: Option<String>,

    /// Container to change (one-service case); several as `a,b`: each gets the same changes.
    #[arg(long, value_name = "NAME[,NAME…]", help_heading = "What to deploy")]
    pub container: Option<String>,

    /// New image: a full reference, `:TAG` (new tag, same repository) or `@sha256:…`.
    #[arg(long, value_name = "IMAGE", help_heading = "What to deploy")]
    pub image: Option<String>,

    /// Environment variables to set, `NAME=value`, one per line (the value may contain `=`).
    #[arg(long, value_name = "NAME=VALUE", help_heading = "What to deploy")]
    pub env: Vec<LineList>,

    /// Environment variables whose value is a file's content, `NAME=path` (JSON, multi-line).
    ///
    /// Example: `AGENTIC_BUNDLES_JSON=bundles.json`.
    #[arg(long, value_name = "NAME=PATH", help_heading = "What to deploy")]
    pub env_from_file: Vec<LineList>,

    /// Environment variables to remove, one name per line.
    #[arg(long, value_name = "NAME", help_heading = "What to deploy")]
    pub unset_env: Vec<LineList>,

    /// Secrets to set, `NAME=valueFrom` (an SSM parameter or Secrets Manager ARN).
    #[arg(long, value_name = "NAME=ARN", help_heading = "What to deploy")]
    pub secret: Vec<LineList>,

    /// Secrets to remove, one name per line.
    #[arg(long, value_name = "NAME", help_heading = "What to deploy")]
    pub unset_secret: Vec<LineList>,

    /// S3 environment files (object ARNs), one per line: they replace `environmentFiles`.
    #[arg(long, value_name = "ARN", help_heading = "What to deploy")]
    pub env_files: Vec<LineList>,

    /// Log driver (`awslogs`, `awsfirelens`, `splunk`, `fluentd`, `gelf`, `json-file`,
    /// `journald`, `logentries`, `syslog`).
    #[arg(long, value_name = "DRIVER", help_heading = "What to deploy")]
    pub log_driver: Option<String>,

    /// Log driver options to set, `key=value`, one per line (merged by key).
    #[arg(long, value_name = "KEY=VALUE", help_heading = "What to deploy")]
    pub log_options: Vec<LineList>,

    /// Docker labels to set, `key=value`, one per line (merged by key).
    #[arg(long, value_name = "KEY=VALUE", help_heading = "What to deploy")]
    pub docker_labels: Vec<LineList>,

    /// Task role (`taskRoleArn`): an IAM role ARN.
    #[arg(long, value_name = "ARN", help_heading = "What to deploy")]
    pub task_role_arn: Option<String>,

    /// Task execution role (`executionRoleArn`): an IAM role ARN.
    #[arg(long, value_name = "ARN", help_heading = "What to deploy")]
    pub execution_role_arn: Option<String>,

    /// Register a new revision (default), or deploy --task-definition (`family:revision` or
    /// ARN) as it is, without registering anything.
    #[arg(
        long,
        value_name = "BOOL",
        default_value = "true",
        help_heading = "What to deploy"
    )]
    pub register: bool,

    /// New command: a JSON array (`["sh","-c","run x"]`) or words split on whitespace.
    #[arg(long, value_name = "COMMAND", help_heading = "What to deploy")]
    pub command: Option<String>,

    /// Base task definition: `family`, `family:revision`, an ARN, or a JSON file
    /// (describe output, with or without the `{"taskDefinition": …}` wrapper).
    ///
    /// Default: the service's current task definition.
    #[arg(long, value_name = "REF|PATH", help_heading = "What to deploy")]
    pub task_definition: Option<String>,

    /// New desired count.
    #[arg(long, value_name = "N", help_heading = "What to deploy")]
    pub desired_count: Option<i32>,

    /// Start new tasks even when the task definition did not change.
    #[arg(long, value_name = "BOOL", help_heading = "What to deploy")]
    pub force_new_deployment: bool,

    /// Rewrite checked ECR images to `repository@sha256:…` so the deploy is immutable.
    #[arg(long, value_name = "BOOL", help_heading = "How")]
    pub pin_digest: bool,

    /// Migration: a command run as a one-off task on the new revision (of --migration-service)
    /// before any service is updated; a JSON array or words split on whitespace. A failed
    /// migration (exit code not 0) changes no service.
    #[arg(long, value_name = "COMMAND", help_heading = "Migration")]
    pub migration_command: Option<String>,

    /// Migration: the container whose command is overridden and whose exit code gates
    /// (default: --container, when it names one).
    #[arg(long, value_name = "NAME", help_heading = "Migration")]
    pub migration_container: Option<String>,

    /// Migration: the service whose new revision, launch type and network configuration the
    /// task uses (default: the first service deployed).
    #[arg(long, value_name = "SERVICE", help_heading = "Migration")]
    pub migration_service: Option<String>,

    /// Migration: how long the task may take (then it is stopped and the deploy fails).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration, help_heading = "Migration")]
    pub migration_timeout: std::time::Duration,

    /// Deploy services one after the other in this order (one name per line); default: all
    /// at once.
    #[arg(long, value_name = "SERVICE", help_heading = "How")]
    pub order: Vec<LineList>,

    /// Give up waiting for a service after this long (then roll back).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration, help_heading = "How")]
    pub timeout: std::time::Duration,

    /// Poll interval while waiting.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration, help_heading = "How")]
    pub poll_interval: std::time::Duration,

    /// Blue/green, linear and canary services: how long a PAUSE lifecycle hook may hold the
    /// deployment (waiting for ContinueServiceDeployment) before we stop it with a rollback.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration, help_heading = "How")]
    pub pause_timeout: std::time::Duration,

    /// Fail once our deployment has this many failed tasks (0: leave it to rolloutState).
    #[arg(long, value_name = "N", default_value = "3", help_heading = "How")]
    pub max_failed_tasks: i32,

    /// Accept a desired count of 0 as success (nothing runs the new revision).
    #[arg(long, value_name = "BOOL", help_heading = "How")]
    pub allow_zero_desired: bool,

    /// Roll every changed service back to the revision it ran before when one fails.
    #[arg(
        long,
        value_name = "BOOL",
        default_value = "true",
        help_heading = "How"
    )]
    pub rollback: bool,

    /// rollback: the revision to go to (`family:revision` or ARN); default: the previous
    /// ACTIVE revision.
    #[arg(long, value_name = "REF", help_heading = "How")]
    pub to_revision: Option<String>,

    /// render: directory for `<service>.json` files.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ecs-task-definitions",
        help_heading = "How"
    )]
    pub output_dir: PathBuf,

    /// AWS region (default: AWS_REGION, the profile, or instance metadata).
    #[arg(long, value_name = "REGION", help_heading = "AWS")]
    pub region: Option<String>,

    /// Endpoint for ECS and ECR, e.g. an emulator (`http://127.0.0.1:5000`).
    #[arg(long, value_name = "URL", help_heading = "AWS")]
    pub endpoint_url: Option<String>,
}

impl ToolCli for Cli {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}
