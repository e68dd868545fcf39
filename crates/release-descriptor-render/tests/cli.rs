//! The `release-descriptor-render` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_release-descriptor-render")),
        "release-descriptor-render",
    );
}

/// No input, whatever it holds, reaches the runner as a workflow command; usage errors are
/// `::error` annotations (issue 17). The inputs come from the clap definition.
#[test]
fn no_input_can_inject_a_workflow_command() {
    // A valid descriptor, so a hostile value in any other input gets as far as the outputs.
    let descriptor = test_support::workspace_root().join("examples/bare-metal-app/release.yaml");
    let checked = test_support::hostile::check_every_input(
        Path::new(env!("CARGO_BIN_EXE_release-descriptor-render")),
        &runner_protocol::cli::command::<release_descriptor_render::Cli>(),
        &[(
            "RELEASE_DESCRIPTOR_RENDER_DESCRIPTOR",
            descriptor.to_str().expect("utf-8 path"),
        )],
    );
    println!("{checked:?}");
    assert!(
        checked.echoed > 0 && checked.usage_errors > 0,
        "no hostile value reached the output: nothing was checked ({checked:?})"
    );
}
