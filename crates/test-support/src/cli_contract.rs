//! The command-line behaviour every binary of the suite shares, checked on the real binary.

use std::path::Path;

use crate::{run, tool_command};

/// Checks `--help`, `--version`, usage errors, the env spelling of flags and strict booleans.
pub fn check_common(binary: &Path, name: &str) {
    let prefix = name.to_ascii_uppercase().replace('-', "_");

    let help = run(tool_command(binary).arg("--help"));
    assert_eq!(help.code, Some(0), "--help exits 0: {help:?}");
    assert!(
        help.stdout.contains(&format!("Usage: {name}")),
        "{}",
        help.stdout
    );
    for flag in ["--output-format", "--verbose"] {
        assert!(help.stdout.contains(flag), "--help lists {flag}");
    }
    assert!(
        help.stdout
            .contains(&format!("[env: {prefix}_OUTPUT_FORMAT]")),
        "--help names each flag's env var:\n{}",
        help.stdout
    );
    // ... but never a variable's value (a secret, or text the suite did not write).
    let with_value = run(tool_command(binary)
        .arg("--help")
        .env(format!("{prefix}_OUTPUT_FORMAT"), "json"));
    assert!(
        !with_value.stdout.contains("_OUTPUT_FORMAT=json"),
        "--help shows no env values:\n{}",
        with_value.stdout
    );
    assert!(
        help.stdout.contains("Exit codes"),
        "--help documents exit codes"
    );

    let version = run(tool_command(binary).arg("--version"));
    assert_eq!(version.code, Some(0));
    assert_eq!(
        version.stdout.trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION"))
    );

    let unknown = run(tool_command(binary).arg("--no-such-flag"));
    assert_eq!(
        unknown.code,
        Some(2),
        "unknown flag is a usage error: {unknown:?}"
    );
    assert!(
        unknown.stderr.contains("--no-such-flag"),
        "{}",
        unknown.stderr
    );

    // Booleans from the environment are as strict as on the command line.
    let bad_bool = run(tool_command(binary)
        .arg("--help")
        .env(format!("{prefix}_VERBOSE"), "yes"));
    assert_eq!(
        bad_bool.code,
        Some(0),
        "--help works even with a bad environment"
    );
    let bad_bool = run(tool_command(binary).env(format!("{prefix}_VERBOSE"), "yes"));
    assert_eq!(bad_bool.code, Some(2), "{bad_bool:?}");
    assert!(
        bad_bool
            .stderr
            .contains("true, True, TRUE, false, False, FALSE"),
        "{}",
        bad_bool.stderr
    );

    // An action passes every input through env:, so an input left empty arrives as "".
    let empty = run(tool_command(binary)
        .arg("--help")
        .env(format!("{prefix}_OUTPUT_FORMAT"), ""));
    assert_eq!(
        empty.code,
        Some(0),
        "empty env values are treated as unset: {empty:?}"
    );
}
