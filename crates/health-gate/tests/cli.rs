//! The `health-gate` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_health-gate")),
        "health-gate",
    );
}

/// No input, whatever it holds, reaches the runner as a workflow command; usage errors are
/// `::error` annotations (issue 17). The inputs come from the clap definition.
#[test]
fn no_input_can_inject_a_workflow_command() {
    let checked = test_support::hostile::check_every_input(
        Path::new(env!("CARGO_BIN_EXE_health-gate")),
        &runner_protocol::cli::command::<health_gate::Cli>(),
        &[
            // One check that passes at once, and a short deadline for when the command
            // itself is the hostile value (it then fails until the deadline).
            ("HEALTH_GATE_COMMAND", "true"),
            ("HEALTH_GATE_DEADLINE", "3s"),
        ],
    );
    println!("{checked:?}");
    assert!(
        checked.echoed > 0 && checked.usage_errors > 0,
        "no hostile value reached the output: nothing was checked ({checked:?})"
    );
}
