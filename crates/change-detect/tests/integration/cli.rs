//! The `change-detect` binary's command line.

use std::path::Path;

#[test]
fn follows_the_suites_command_line_contract() {
    test_support::cli_contract::check_common(
        Path::new(env!("CARGO_BIN_EXE_change-detect")),
        "change-detect",
    );
}
