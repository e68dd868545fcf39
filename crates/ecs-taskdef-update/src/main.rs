//! `ecs-taskdef-update` entry point; the logic lives in the library.

fn main() -> std::process::ExitCode {
    runner_protocol::main(ecs_taskdef_update::run)
}
