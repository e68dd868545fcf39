//! `generate` on the real binary: golden output for both modes, every output form read back
//! the way its consumer reads it, and resolved props that never leak.

use std::path::PathBuf;

use test_support::{run, tool_command};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bundle-json-gen"))
}

fn fixture() -> PathBuf {
    test_support::manifest_dir().join("tests/fixtures/release.yaml")
}

fn json_outputs(stdout: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(stdout) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("not one JSON object: {stdout:?} {other:?}"),
    }
}

fn text(outputs: &serde_json::Map<String, serde_json::Value>, name: &str) -> String {
    outputs[name].as_str().expect("string output").to_owned()
}

/// `generate` with `--output-file`: the text the tool writes (what `$GITHUB_OUTPUT` gets), after
/// checking that the JSON output holds the same document as a typed value, not a string.
fn generate_document(args: &[&str]) -> (serde_json::Map<String, serde_json::Value>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bundles.json");
    let mut all = args.to_vec();
    all.extend(["--output-file", file.to_str().expect("utf-8 path")]);
    let (outputs, _) = run_generate(&all);
    let text = std::fs::read_to_string(&file).expect("output file");
    let value: serde_json::Value = serde_json::from_str(&text).expect("file is JSON");
    assert!(outputs["bundles-json"].is_object(), "typed output");
    assert_eq!(outputs["bundles-json"], value);
    (outputs, text.trim_end().to_owned())
}

/// Reads a `$GITHUB_OUTPUT` file the way the runner does (heredoc entries).
fn parse_github_output(file: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut lines = file.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("heredoc form");
        let mut value = Vec::new();
        for body in lines.by_ref() {
            if body == delimiter {
                break;
            }
            value.push(body);
        }
        entries.push((name.to_owned(), value.join("\n")));
    }
    entries
}

/// docker compose's dotenv reading of a single-quoted value (compose-go `dotenv/parser.go`),
/// in both of its generations: older releases take everything up to the first `'` not
/// preceded by `\` literally; newer ones also turn `\'` into `'` and keep any other `\x`.
/// No interpolation happens inside single quotes in either.
fn compose_single_quoted(line: &str, generation: u8) -> (String, String) {
    let (key, rest) = line.split_once('=').expect("KEY=VALUE");
    let body = rest.strip_prefix('\'').expect("single-quoted");
    let bytes = body.as_bytes();
    let mut value = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'\'' && (index == 0 || bytes[index - 1] != b'\\') {
            assert_eq!(&body[index + 1..], "", "nothing after the closing quote");
            return (key.to_owned(), String::from_utf8(value).expect("utf-8"));
        }
        if generation == 2 && byte == b'\\' && bytes.get(index + 1) == Some(&b'\'') {
            value.push(b'\'');
            index += 2;
            continue;
        }
        value.push(byte);
        index += 1;
    }
    panic!("unterminated quoted value: {line}");
}

fn run_generate(
    args: &[&str],
) -> (
    serde_json::Map<String, serde_json::Value>,
    test_support::Output,
) {
    let output = run(tool_command(binary())
        .args(["--output-format", "json", "generate", "--descriptor"])
        .arg(fixture())
        .args(args));
    assert_eq!(output.code, Some(0), "{output:?}");
    (json_outputs(&output.stdout), output)
}

#[test]
fn baked_mode_golden() {
    let (outputs, written) = generate_document(&["--pretty"]);
    insta::assert_snapshot!("baked", written);
    assert_eq!(text(&outputs, "default-bundle-id"), "support@3-1");
    assert_eq!(
        outputs["bundle-ids"],
        serde_json::json!(["support@3-1", "my-bundle@2.0.0"])
    );
}

#[test]
fn git_mode_golden() {
    let (outputs, written) = generate_document(&["--mode", "git", "--pretty"]);
    let value = &outputs["bundles-json"];
    assert!(value["bundles"]["support@3-1"].get("path").is_none());
    insta::assert_snapshot!("git", written);
}

#[test]
fn bundles_yaml_golden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(tool_command(binary())
        .current_dir(test_support::manifest_dir())
        .args(["--output-format", "json", "generate", "--descriptor"])
        .arg("tests/fixtures/release.yaml")
        .arg("--bundles-yaml-file")
        .arg(dir.path().join("bundles.yaml")));
    assert_eq!(output.code, Some(0), "{output:?}");
    let written = std::fs::read_to_string(dir.path().join("bundles.yaml")).expect("written");
    assert_eq!(
        json_outputs(&output.stdout)["bundles-yaml"],
        written.as_str()
    );
    insta::assert_snapshot!("bundles_yaml", written);
}

#[test]
fn the_mode_and_root_come_from_env_vars_too() {
    let output = run(tool_command(binary())
        .args(["--output-format", "json", "generate"])
        .env("BUNDLE_JSON_GEN_DESCRIPTOR", fixture())
        .env("BUNDLE_JSON_GEN_BUNDLES_ROOT", "/opt/bundles")
        .env("BUNDLE_JSON_GEN_MODE", "baked"));
    assert_eq!(output.code, Some(0), "{output:?}");
    let value = &json_outputs(&output.stdout)["bundles-json"];
    // A folder with dots is described by itself (bundle-root shape).
    assert_eq!(
        value["bundles"]["my-bundle@2.0.0"]["path"],
        "/opt/bundles/my-bundle@2.0.0"
    );
    assert_eq!(value["bundles"]["support@3-1"]["path"], "/opt/bundles");
}

#[test]
fn every_output_form_reads_back_as_the_same_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let github_output = dir.path().join("github_output");
    let env_file = dir.path().join(".env.proc");
    std::fs::write(
        &env_file,
        "REDIS_URL=redis://x\nAGENTIC_BUNDLES_JSON='stale'\n",
    )
    .expect("write");
    let output = run(tool_command(binary())
        .args(["generate", "--descriptor"])
        .arg(fixture())
        .arg("--output-file")
        .arg(dir.path().join("out/bundles.json"))
        .arg("--dotenv-file")
        .arg(&env_file)
        .arg("--ecs-file")
        .arg(dir.path().join("ecs.json"))
        .env("GITHUB_OUTPUT", &github_output));
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.stdout, "", "outputs went to GITHUB_OUTPUT");

    let entries =
        parse_github_output(&std::fs::read_to_string(&github_output).expect("output file"));
    let get = |name: &str| {
        entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no output {name}"))
    };
    let compact = get("bundles-json");
    let expected: serde_json::Value = serde_json::from_str(&compact).expect("output is JSON");
    assert_eq!(
        expected["bundles"]["support@3-1"]["name"],
        "Bob's support assistant"
    );
    assert!(
        compact.contains("\\u0027"),
        "the quote is escaped inside the JSON string"
    );

    // File.
    let file = std::fs::read_to_string(dir.path().join("out/bundles.json")).expect("file");
    assert_eq!(file, format!("{compact}\n"));

    // Compose env file: the stale line is replaced, the others kept.
    let env_text = std::fs::read_to_string(&env_file).expect("env file");
    let lines: Vec<&str> = env_text.lines().collect();
    assert_eq!(lines.len(), 2, "{env_text}");
    assert_eq!(lines[0], "REDIS_URL=redis://x");
    assert_eq!(lines[1], get("dotenv-line"));
    for generation in [1, 2] {
        let (key, value) = compose_single_quoted(lines[1], generation);
        assert_eq!(key, "AGENTIC_BUNDLES_JSON");
        assert_eq!(value, compact, "compose generation {generation}");
    }
    // A POSIX shell reading the same file (`set -a; . ./.env.proc`).
    let sh = test_support::require_program("sh", "apt-get install -y dash");
    let shell = run(std::process::Command::new(sh)
        .args([
            "-c",
            "set -a; . \"$1\"; printf '%s' \"$AGENTIC_BUNDLES_JSON\"",
            "sh",
        ])
        .arg(&env_file));
    assert_eq!(shell.code, Some(0), "{shell:?}");
    assert_eq!(shell.stdout, compact);

    // ECS entry.
    let ecs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ecs.json")).expect("ecs"))
            .expect("json");
    assert_eq!(ecs["name"], "AGENTIC_BUNDLES_JSON");
    assert_eq!(ecs["value"].as_str(), Some(compact.as_str()));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&get("ecs-environment")).expect("json"),
        ecs
    );

    // Pretty is the same value.
    let (pretty, _) = run_generate(&["--pretty"]);
    assert_eq!(pretty["bundles-json"], expected);
}

#[test]
fn an_empty_bundle_list_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundles.yaml");
    std::fs::write(&path, "bundles:\n  items: []\n").expect("write");
    let output = run(tool_command(binary())
        .args(["--output-format", "json", "generate", "--descriptor"])
        .arg(&path));
    assert_eq!(output.code, Some(0), "{output:?}");
    let outputs = json_outputs(&output.stdout);
    assert_eq!(outputs["bundles-json"], serde_json::json!({"bundles": {}}));
    assert_eq!(text(&outputs, "default-bundle-id"), "");
}

#[test]
fn invalid_descriptors_report_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bundles.yaml"),
        "bundles:\n  default_bundle_id: a@1\n  items:\n    - id: a@1\n      repo: acme/x\n      ref: v1\n      module: ../a@1.entrypoint\n",
    )
    .expect("write");
    let output = run(tool_command(binary()).current_dir(dir.path()).args([
        "generate",
        "--descriptor",
        "bundles.yaml",
    ]));
    assert_eq!(output.code, Some(2), "{output:?}");
    insta::assert_snapshot!(output.stderr, @r"
    error: `bundles.items[0].module` must be a dotted module path relative to `subdir`, found `../a@1.entrypoint`
     --> bundles.yaml:7:15
      |
    7 |       module: ../a@1.entrypoint
      |               ^^^^^^^^^^^^^^^^^ not `<folder>.entrypoint`
      = field: bundles.items[0].module
      = hint: write `<bundle folder>.entrypoint`, e.g. `support@3-1.entrypoint`; `subdir` holds the folder
    error: bundles.yaml is invalid: 1 error(s)
    ");
}

const SECRET: &str = "s3cr3t-'docs'-$HOME-\\n-token";

#[test]
fn resolved_props_are_masked_and_appear_only_in_the_intended_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let github_output = dir.path().join("github_output");
    let summary = dir.path().join("summary.md");
    let output = run(tool_command(binary())
        .args(["--verbose", "generate", "--resolve-props", "--descriptor"])
        .arg(fixture())
        .env("DOCS_TOKEN", SECRET)
        .env("GITHUB_OUTPUT", &github_output)
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(output.code, Some(0), "{output:?}");
    let summary = std::fs::read_to_string(&summary).expect("summary");
    assert!(summary.contains("support@3-1"), "{summary}");
    for (name, text) in [
        ("stdout", &output.stdout),
        ("stderr", &output.stderr),
        ("summary", &summary),
    ] {
        assert!(!text.contains("s3cr3t"), "secret in {name}: {text}");
    }
    let entries = parse_github_output(&std::fs::read_to_string(&github_output).expect("output"));
    for (name, value) in &entries {
        let carries = value.contains("s3cr3t");
        let intended = [
            "bundles-json",
            "bundles-yaml",
            "dotenv-line",
            "ecs-environment",
        ]
        .contains(&name.as_str());
        assert_eq!(carries, intended, "output {name}: {value}");
    }
    let json = &entries
        .iter()
        .find(|(n, _)| n == "bundles-json")
        .expect("json")
        .1;
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(
        value["bundles"]["support@3-1"]["props"]["knowledge"]["token"],
        SECRET
    );

    // Under GitHub Actions the value is registered with ::add-mask:: before anything else.
    let github = run(tool_command(binary())
        .args(["generate", "--resolve-props", "--descriptor"])
        .arg(fixture())
        .env("DOCS_TOKEN", SECRET)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &github_output));
    assert_eq!(github.code, Some(0), "{github:?}");
    let first = github.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::s3cr3t"), "{}", github.stdout);
    for line in github.stdout.lines().chain(github.stderr.lines()) {
        assert!(
            !line.contains("s3cr3t") || line.starts_with("::add-mask::"),
            "secret outside ::add-mask::: {line}"
        );
    }
}

#[test]
fn unresolvable_props_name_the_bundle_and_prop_path_without_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundles.yaml");
    std::fs::write(
        &path,
        "bundles:\n  items:\n    - id: a@1\n      repo: acme/x\n      ref: v1\n      module: a@1.entrypoint\n      props:\n        present: env:PRESENT_TOKEN\n        missing: env:MISSING_TOKEN\n        key: file:/nonexistent/deploy-suite/key\n",
    )
    .expect("write");
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .args([
            "generate",
            "--resolve-props",
            "--descriptor",
            "bundles.yaml",
        ])
        .env("PRESENT_TOKEN", "present-s3cr3t"));
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(!output.stdout.contains("present-s3cr3t") && !output.stderr.contains("present-s3cr3t"));
    insta::assert_snapshot!(output.stderr, @r"
    error: environment variable `MISSING_TOKEN` referenced by `bundles.items[0].props.missing` is not set
     --> bundles.yaml:9:18
      |
    9 |         missing: env:MISSING_TOKEN
      |                  ^^^^^^^^^^^^^^^^^
      = field: bundles.items[0].props.missing
      = hint: bundle `a@1`: set the variable or create the file before this step, or run without --resolve-props so the runtime resolves it
    error: cannot read file `/nonexistent/deploy-suite/key` referenced by `bundles.items[0].props.key`: entity not found
      --> bundles.yaml:10:14
       |
    10 |         key: file:/nonexistent/deploy-suite/key
       |              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
       = field: bundles.items[0].props.key
       = hint: bundle `a@1`: set the variable or create the file before this step, or run without --resolve-props so the runtime resolves it
    error: 2 prop reference(s) could not be resolved
    ");
}

#[test]
fn an_alias_bomb_is_refused_with_the_file_and_line_issue_25() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let list = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    std::fs::write(dir.path().join("release.yaml"), text).expect("write");
    let started = std::time::Instant::now();
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .arg("generate"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains(
            "error: YAML expands to more than 100000 nodes (aliases expanded); refusing an alias bomb\n --> release.yaml:5:"
        ),
        "{}",
        output.stderr
    );
}

/// An `env-name` that is not a shell variable name would make the dotenv line run code when
/// sourced: it is a usage error, and nothing is written (issue 17).
#[test]
fn an_env_name_that_is_not_a_variable_name_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join(".env.proc");
    let output = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["--output-format", "dotenv", "generate", "--descriptor"])
        .arg(fixture())
        .args(["--env-name", "X=1; touch marker; Y", "--dotenv-file"])
        .arg(&env_file));
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(output.stderr.contains("not a variable name"), "{output:?}");
    assert_eq!(output.stdout, "");
    assert!(!env_file.exists() && !dir.path().join("marker").exists());
}
