//! The `bundle-json-gen` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_bundle-json-gen")),
        "bundle-json-gen",
    );
}

/// No input, whatever it holds, reaches the runner as a workflow command; usage errors are
/// `::error` annotations (issue 17). The inputs come from the clap definition.
#[test]
fn no_input_can_inject_a_workflow_command() {
    // A valid descriptor, so a hostile value in any other input gets as far as the outputs.
    let descriptor = test_support::manifest_dir().join("tests/fixtures/release.yaml");
    let checked = test_support::hostile::check_every_input(
        Path::new(env!("CARGO_BIN_EXE_bundle-json-gen")),
        &runner_protocol::cli::command::<bundle_json_gen::Cli>(),
        &[(
            "BUNDLE_JSON_GEN_DESCRIPTOR",
            descriptor.to_str().expect("utf-8 path"),
        )],
    );
    println!("{checked:?}");
    assert!(
        checked.echoed > 0 && checked.usage_errors > 0,
        "no hostile value reached the output: nothing was checked ({checked:?})"
    );
}
