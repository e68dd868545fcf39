//! `health-gate` entry point; the logic lives in the library.

fn main() -> std::process::ExitCode {
    // `health-gate grpc-probe ...` speaks grpc_health_probe's flags and exit codes.
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = health_gate::grpc_probe_mode(&args) {
        return code;
    }
    runner_protocol::main(health_gate::run)
}
