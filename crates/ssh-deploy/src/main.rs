//! `ssh-deploy` entry point; the logic lives in the library.

fn main() -> std::process::ExitCode {
    runner_protocol::main(ssh_deploy::run)
}
