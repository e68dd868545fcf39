//! `release-descriptor-render` entry point; the logic lives in the library.

fn main() -> std::process::ExitCode {
    runner_protocol::main(release_descriptor_render::run)
}
