//! `scripts/build-static` produces statically linked binaries that run.

use std::path::Path;

const BINARIES: [&str; 6] = [
    "change-detect",
    "release-descriptor-render",
    "bundle-json-gen",
    "ssh-deploy",
    "ecs-taskdef-update",
    "health-gate",
];

/// True when the ELF file needs no dynamic loader and no shared library.
fn is_static(path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(elf.interpreter.is_none() && elf.libraries.is_empty())
}

#[test]
fn build_static_produces_static_binaries_that_run() {
    let root = test_support::workspace_root();
    let out = tempfile::tempdir().expect("tempdir");
    let build = test_support::run(
        std::process::Command::new(root.join("scripts/build-static"))
            .args(["--profile", "demo"])
            .arg(out.path()),
    );
    assert_eq!(
        build.code,
        Some(0),
        "scripts/build-static failed:\n{}",
        build.stderr
    );
    let target = std::fs::read_to_string(out.path().join("TARGET")).expect("TARGET written");
    println!("static target: {}", target.trim());
    for binary in BINARIES {
        let path = out.path().join(binary);
        assert_eq!(is_static(&path), Ok(true), "{binary} is statically linked");
        let version = test_support::run(test_support::tool_command(&path).arg("--version"));
        assert_eq!(version.code, Some(0), "{binary} --version runs");
        assert!(version.stdout.starts_with(binary));
    }
}

#[test]
fn the_static_check_rejects_a_dynamic_binary() {
    // The test binary itself is dynamically linked against glibc: the check must say so.
    let this = std::env::current_exe().expect("current exe");
    assert_eq!(is_static(&this), Ok(false));
}
