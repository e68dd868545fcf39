//! `stage` on real directory trees: copies, manifest, hostile symlinks and paths, and never
//! replacing a different bundle silently.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use test_support::{run, tool_command};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bundle-json-gen"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// A workspace with a checkout holding two bundle folders and a descriptor using them.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(subdir: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundles = dir
            .path()
            .join("checkouts/bundles-customer/service/bundles");
        write(
            &bundles.join("support@3-1/entrypoint.py"),
            "def main(): pass\n",
        );
        write(&bundles.join("support@3-1/lib/tools.py"), "X = 1\n");
        write(
            &bundles.join("sales@1.0.0/entrypoint/__init__.py"),
            "# package\n",
        );
        write(&bundles.join("unrelated/entrypoint.py"), "# not staged\n");
        write(
            &dir.path().join("release.yaml"),
            &format!(
                "bundles:\n  default_bundle_id: support@3-1\n  items:\n\
                 \x20   - id: support@3-1\n      repo: git@github.com:acme/customer.git\n      ref: bundles-v1\n      subdir: {subdir}\n      module: support@3-1.entrypoint\n\
                 \x20   - id: sales@1.0.0\n      repo: git@github.com:acme/customer.git\n      ref: bundles-v1\n      subdir: {subdir}\n      module: sales@1.0.0.entrypoint\n"
            ),
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn source(&self, rest: &str) -> PathBuf {
        self.path()
            .join("checkouts/bundles-customer/service/bundles")
            .join(rest)
    }

    /// The `checkouts` output release-descriptor-render would give for this descriptor.
    fn checkouts_json(&self) -> String {
        serde_json::json!([
            {"name": "bundles-customer", "repository": "acme/customer", "url": "git@github.com:acme/customer.git",
             "ref": "bundles-v1", "path": "checkouts/bundles-customer", "bundles": ["support@3-1", "sales@1.0.0"]}
        ])
        .to_string()
    }

    fn stage(&self, extra: &[&str]) -> test_support::Output {
        run(tool_command(binary())
            .current_dir(self.path())
            .args([
                "--output-format",
                "json",
                "stage",
                "--dest",
                "build/bundles",
                "--checkouts",
            ])
            .arg(self.checkouts_json())
            .args(extra))
    }
}

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).expect("read"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn stages_each_bundle_folder_with_a_sha256_manifest() {
    let workspace = Workspace::new("service/bundles");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let dest = workspace.path().join("build/bundles");
    assert_eq!(
        std::fs::read_to_string(dest.join("support@3-1/lib/tools.py")).expect("copied"),
        "X = 1\n"
    );
    assert!(dest.join("sales@1.0.0/entrypoint/__init__.py").is_file());
    assert!(
        !dest.join("unrelated").exists(),
        "only listed bundles are staged"
    );
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(
        outputs["staged"],
        serde_json::json!(["support@3-1", "sales@1.0.0"])
    );
    assert_eq!(outputs["manifest"], "bundles.manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.path().join("bundles.manifest.json")).expect("manifest"),
    )
    .expect("json");
    let files = &manifest["bundles"][0]["files"];
    assert_eq!(files[0]["path"], "entrypoint.py");
    assert_eq!(files[1]["path"], "lib/tools.py");
    assert_eq!(
        files[1]["sha256"],
        sha256(&workspace.source("support@3-1/lib/tools.py"))
    );
    assert_eq!(manifest["bundles"][0]["status"], "copied");

    // Staging again with identical contents is a no-op, not an error.
    let again = workspace.stage(&[]);
    assert_eq!(again.code, Some(0), "{again:?}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.path().join("bundles.manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["bundles"][0]["status"], "unchanged");
}

#[test]
fn checkouts_can_be_given_as_id_path_pairs() {
    let workspace = Workspace::new("service/bundles");
    let output = run(tool_command(binary())
        .current_dir(workspace.path())
        .args(["stage", "--dest", "out"])
        .env(
            "BUNDLE_JSON_GEN_CHECKOUT",
            "support@3-1=checkouts/bundles-customer\nsales@1.0.0=checkouts/bundles-customer\n",
        ));
    assert_eq!(output.code, Some(0), "{output:?}");
    assert!(
        workspace
            .path()
            .join("out/support@3-1/entrypoint.py")
            .is_file()
    );
}

#[test]
fn never_replaces_a_different_bundle_silently() {
    let workspace = Workspace::new("service/bundles");
    assert_eq!(workspace.stage(&[]).code, Some(0));
    write(
        &workspace.source("support@3-1/entrypoint.py"),
        "def main(): return 2\n",
    );
    let refused = workspace.stage(&[]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("already exists with different contents"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--replace=true"),
        "{}",
        refused.stderr
    );
    let staged = workspace
        .path()
        .join("build/bundles/support@3-1/entrypoint.py");
    assert_eq!(
        std::fs::read_to_string(&staged).expect("kept"),
        "def main(): pass\n"
    );

    let replaced = workspace.stage(&["--replace"]);
    assert_eq!(replaced.code, Some(0), "{replaced:?}");
    assert_eq!(
        std::fs::read_to_string(&staged).expect("replaced"),
        "def main(): return 2\n"
    );
}

#[cfg(unix)]
#[test]
fn refuses_symlinks_that_leave_the_bundle_folder() {
    for target in [
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "lib/../../unrelated/entrypoint.py",
    ] {
        let workspace = Workspace::new("service/bundles");
        symlink(target, &workspace.source("support@3-1/evil"));
        let output = workspace.stage(&[]);
        assert_eq!(output.code, Some(2), "{target}: {output:?}");
        assert!(
            output
                .stderr
                .contains("is a symlink pointing outside the bundle folder"),
            "{target}: {}",
            output.stderr
        );
        assert!(
            !workspace.path().join("build/bundles/support@3-1").exists(),
            "{target}: nothing copied"
        );
    }
}

#[cfg(unix)]
#[test]
fn keeps_symlinks_that_stay_inside() {
    let workspace = Workspace::new("service/bundles");
    symlink(
        "lib/tools.py",
        &workspace.source("support@3-1/tools_link.py"),
    );
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let link = workspace
        .path()
        .join("build/bundles/support@3-1/tools_link.py");
    assert_eq!(
        std::fs::read_link(&link).expect("a link"),
        PathBuf::from("lib/tools.py")
    );
    assert_eq!(std::fs::read_to_string(&link).expect("resolves"), "X = 1\n");
}

#[test]
fn refuses_dot_dot_paths_before_touching_anything() {
    let workspace = Workspace::new("../service/bundles");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains("must stay inside the repository"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("release.yaml:"), "{}", output.stderr);
    assert!(!workspace.path().join("build").exists());
}

#[test]
fn a_missing_entrypoint_or_folder_is_an_error() {
    let workspace = Workspace::new("service/bundles");
    std::fs::remove_file(workspace.source("support@3-1/entrypoint.py")).expect("remove");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains("no entrypoint module"),
        "{}",
        output.stderr
    );

    let workspace = Workspace::new("service/bundles");
    std::fs::remove_dir_all(workspace.source("sales@1.0.0")).expect("remove");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains("is not a directory"),
        "{}",
        output.stderr
    );

    let output = run(tool_command(binary())
        .current_dir(workspace.path())
        .args(["stage"]));
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output
            .stderr
            .contains("no checkout for bundle `support@3-1`"),
        "{}",
        output.stderr
    );
}

#[cfg(unix)]
#[test]
fn links_are_resolved_through_the_real_tree_not_as_written_issue_25() {
    // `a -> .` makes `a/..` the parent of the bundle folder, though it reads as "here".
    let workspace = Workspace::new("service/bundles");
    symlink(".", &workspace.source("support@3-1/a"));
    symlink("a/..", &workspace.source("support@3-1/b"));
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains("support@3-1/b")
            && output
                .stderr
                .contains("is a symlink pointing outside the bundle folder"),
        "{}",
        output.stderr
    );
    assert!(!workspace.path().join("build/bundles/support@3-1").exists());
    // A chain that stays inside is kept: `c -> lib`, `d -> c/../lib/tools.py`.
    let workspace = Workspace::new("service/bundles");
    symlink("lib", &workspace.source("support@3-1/c"));
    symlink("c/../lib/tools.py", &workspace.source("support@3-1/d"));
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let staged = workspace.path().join("build/bundles/support@3-1/d");
    assert_eq!(
        std::fs::read_to_string(staged).expect("resolves"),
        "X = 1\n"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_subdir_out_of_the_checkout_is_refused_issue_25() {
    let workspace = Workspace::new("service/bundles");
    // The checkout's `service` becomes a link to a tree outside it, with the same layout.
    let outside = workspace.path().join("outside");
    std::fs::rename(
        workspace.path().join("checkouts/bundles-customer/service"),
        &outside,
    )
    .expect("move");
    std::os::unix::fs::symlink(
        &outside,
        workspace.path().join("checkouts/bundles-customer/service"),
    )
    .expect("symlink");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output
            .stderr
            .contains("resolves outside the checkout (through a symlink)"),
        "{}",
        output.stderr
    );
    assert!(!workspace.path().join("build/bundles/support@3-1").exists());
    // A link that stays inside the checkout is followed.
    let workspace = Workspace::new("service/bundles");
    std::os::unix::fs::symlink(
        "service",
        workspace.path().join("checkouts/bundles-customer/alias"),
    )
    .expect("symlink");
    let release = workspace.path().join("release.yaml");
    let text = std::fs::read_to_string(&release).expect("read");
    std::fs::write(
        &release,
        text.replace("subdir: service/bundles", "subdir: alias/bundles"),
    )
    .expect("write");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert!(
        workspace
            .path()
            .join("build/bundles/support@3-1/lib/tools.py")
            .is_file()
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_destination_folder_is_refused_issue_25() {
    let workspace = Workspace::new("service/bundles");
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(workspace.path().join("build/bundles")).expect("mkdir");
    std::os::unix::fs::symlink(
        outside.path(),
        workspace.path().join("build/bundles/support@3-1"),
    )
    .expect("symlink");
    let output = workspace.stage(&["--replace=true"]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output
            .stderr
            .contains("is a symlink; refusing to stage through it"),
        "{}",
        output.stderr
    );
    assert_eq!(std::fs::read_dir(outside.path()).expect("list").count(), 0);
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_keep_their_bytes_and_never_collapse_issue_25() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let workspace = Workspace::new("service/bundles");
    let folder = workspace.source("support@3-1");
    std::fs::write(folder.join(OsStr::from_bytes(b"m\xfe.py")), "FE = 1\n").expect("write");
    std::fs::write(folder.join(OsStr::from_bytes(b"m\xff.py")), "FF = 1\n").expect("write");
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let staged = workspace.path().join("build/bundles/support@3-1");
    assert_eq!(
        std::fs::read_to_string(staged.join(OsStr::from_bytes(b"m\xfe.py"))).expect("fe"),
        "FE = 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(staged.join(OsStr::from_bytes(b"m\xff.py"))).expect("ff"),
        "FF = 1\n"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.path().join("bundles.manifest.json")).expect("manifest"),
    )
    .expect("json");
    let files = manifest["bundles"][0]["files"].as_array().expect("files");
    let odd: Vec<(&str, &str)> = files
        .iter()
        .filter(|f| f.get("path_bytes").is_some())
        .map(|f| {
            (
                f["path"].as_str().expect("path"),
                f["path_bytes"].as_str().expect("hex"),
            )
        })
        .collect();
    assert_eq!(
        odd,
        [("m\\xfe.py", "6dfe2e7079"), ("m\\xff.py", "6dff2e7079")]
    );
    // Staging again finds the same tree: both names compared byte for byte.
    let output = workspace.stage(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.path().join("bundles.manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["bundles"][0]["status"], "unchanged");
}
