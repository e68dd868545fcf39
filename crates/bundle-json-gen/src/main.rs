//! `bundle-json-gen` entry point; the logic lives in the library.

fn main() -> std::process::ExitCode {
    runner_protocol::main(bundle_json_gen::run)
}
