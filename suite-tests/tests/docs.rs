//! The README documents what the binaries do: exit codes, output formats, the two commands.

use runner_protocol::Exit;

fn readme() -> String {
    std::fs::read_to_string(test_support::workspace_root().join("README.md")).expect("README.md")
}

#[test]
fn readme_documents_every_exit_code() {
    let readme = readme();
    for exit in Exit::ALL {
        let row = format!("| {} | {} |", exit.code(), exit.meaning());
        assert!(
            readme.contains(&row),
            "README lacks the exit-code row `{row}`"
        );
    }
}

#[test]
fn readme_starts_with_the_demo_and_test_commands_and_ci_runs_the_test_command() {
    let readme = readme();
    // Both commands come before the first section, in a code block, demo first.
    let intro = &readme[..readme.find("\n## ").expect("README has sections")];
    let demo = intro
        .find("\nscripts/demo ")
        .expect("the intro names scripts/demo");
    let test = intro
        .find("\nscripts/test ")
        .expect("the intro names scripts/test");
    assert!(demo < test, "the main job comes first");
    let ci =
        std::fs::read_to_string(test_support::workspace_root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "exec scripts/test"),
        ".ci/run runs scripts/test"
    );
}

#[test]
fn readme_documents_every_output_format() {
    let readme = readme();
    for format in ["auto", "github", "json", "dotenv", "none"] {
        assert!(
            readme.contains(&format!("`{format}`")),
            "README documents --output-format {format}"
        );
    }
}
