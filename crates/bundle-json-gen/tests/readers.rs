//! Every form `generate` writes, read by the platform's own readers (issue 20): python-dotenv
//! 1.1.1 and PyYAML 6.0.2 (the versions kdcube-ai-app pins in
//! `app/ai-app/src/kdcube-ai-app/requirements-chat-processor.txt` at eefe18532, installed by
//! `ensure_platform_readers` in scripts/lib/deps.sh), a real `sh` and `bash`.
//!
//! The platform itself (kdcube_ai_app) is not on any registry, and the PyPI package kdcube-cli
//! (2026.10.25.130) carries only the CLI's own listing of bundles.yaml items, not the runtime
//! loader; so the loader rules these tests apply are written out below, each with the file and
//! revision of github.com/kdcube/kdcube-ai-app it comes from.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::{run, tool_command};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bundle-json-gen"))
}

/// Where `ensure_platform_readers` installs python-dotenv and PyYAML.
fn readers_dir() -> PathBuf {
    let env = runner_protocol::env::Env::from_process();
    if let Some(dir) = env.path("DEPLOY_SUITE_PLATFORM_READERS") {
        return dir;
    }
    env.path("DEPLOY_SUITE_CACHE")
        .or_else(|| env.path("XDG_CACHE_HOME").map(|c| c.join("deploy-suite")))
        .or_else(|| env.path("HOME").map(|h| h.join(".cache/deploy-suite")))
        .expect("HOME is set")
        .join("platform-readers")
}

/// Runs `script` with the platform's readers importable; `args` become `sys.argv[1:]`.
fn python(script: &str, args: &[&Path]) -> String {
    let python = test_support::require_program("python3", "apt-get install -y python3");
    let dir = readers_dir();
    let check = "import importlib.metadata as m, yaml\n\
                 assert m.version('python-dotenv') == '1.1.1', m.version('python-dotenv')\n\
                 assert yaml.__version__ == '6.0.2', yaml.__version__\n";
    let output = run(Command::new(python)
        .env("PYTHONPATH", &dir)
        .env("PYTHONIOENCODING", "utf-8")
        .arg("-c")
        .arg(format!("{check}{script}"))
        .args(args));
    assert_eq!(
        output.code,
        Some(0),
        "python with the platform's readers from {} failed; install them with: \
         bash -c 'source scripts/lib/deps.sh && ensure_python_tools && ensure_platform_readers' \
         (scripts/test installs every test dependency)\n{output:?}",
        dir.display()
    );
    output.stdout
}

/// `set -a; . FILE` in `shell`, printing `$NAME`.
fn shell_reads(shell: &str, file: &Path, name: &str) -> String {
    let program = test_support::require_program(shell, "apt-get install -y dash bash");
    let output = run(Command::new(program)
        .args([
            "-c",
            &format!("set -a; . \"$1\"; printf '%s' \"${name}\""),
            shell,
        ])
        .arg(file));
    assert_eq!(output.code, Some(0), "{shell}: {output:?}");
    output.stdout
}

/// Bundle names and config no reader may change: `$`, `${...}`, `\`, quotes, newlines, unicode.
const HOSTILE: &[&str] = &[
    "${PATH}",
    "${HOME:-fallback}",
    "$HOME and $$ and $",
    "back\\slash \\\\ double \\' escaped quote \\n not a newline",
    "Bob's \"quoted\" 'single'",
    "line one\nline two\r\nend\ttab",
    "ünïcödé — 日本語 😀 \u{2028}\u{85}",
    "# not a comment = not a key",
];

/// release.yaml with every hostile string as a bundle name and as config values, plus the
/// dotted id of the platform's docs, a path item and a config-only item (`modern`: `config`,
/// the platform docs' bare `kdcube-ai-app`; otherwise `props` and the items every version of
/// this tool reads).
fn hostile_release(dir: &Path, modern: bool) -> PathBuf {
    let (config, platform) = if modern {
        ("config", "kdcube-ai-app")
    } else {
        ("props", "acme/platform")
    };
    let quoted: Vec<String> = HOSTILE
        .iter()
        .map(|s| serde_json::to_string(s).expect("json"))
        .collect();
    let mut text = String::from(
        "release_name: \"r1\"\nplatform: { repo: \"PLATFORM\", ref: \"v0.3.2\" }\nbundles:\n  default_bundle_id: \"b0@1-0\"\n  items:\n",
    )
    .replace("PLATFORM", platform);
    for (position, name) in quoted.iter().enumerate() {
        text.push_str(&format!(
            "    - id: \"b{position}@1-0\"\n      name: {name}\n      repo: \"acme/customer\"\n      ref: \"v1\"\n      subdir: \"bundles\"\n      module: \"b{position}@1-0.entrypoint\"\n      {config}:\n        value: {name}\n        list: [{name}, 1, 1.5, true]\n        {name}: \"key\"\n"
        ));
    }
    if !modern {
        let path = dir.join("release.yaml");
        std::fs::write(&path, text).expect("write release.yaml");
        return path;
    }
    text = text.replace("bundles:\n", "bundles:\n  version: \"1\"\n");
    text.push_str(
        "    - id: \"my-bundle@2.0.0\"\n      repo: \"https://git.example.com/org/my-bundle.git\"\n      ref: \"v2.0.0\"\n      subdir: \"bundles\"\n      module: \"my-bundle@2.0.0.entrypoint\"\n      config:\n        enabled: no\n        paging: On\n        quoted: \"no\"\n        big: 1.0e+300\n    - id: \"local@1-0\"\n      path: \"/bundles/local\"\n      module: \"entrypoint\"\n    - id: \"kdcube.admin\"\n      config: { enabled: { bundle: false } }\n",
    );
    let path = dir.join("release.yaml");
    std::fs::write(&path, text).expect("write release.yaml");
    path
}

/// What the platform's installer writes: the descriptor as a 14-line single-quoted block
/// (issue 20), between other variables, one of them multi-line too.
const INSTALLER_ENV: &str = "REDIS_URL=redis://redis:6379/0\n\
AGENTIC_BUNDLES_JSON='{\n\
  \"default_bundle_id\": \"old@1-0\",\n\
  \"bundles\": {\n\
    \"old@1-0\": {\n\
      \"id\": \"old@1-0\",\n\
      \"name\": \"Old\",\n\
      \"path\": \"/bundles\",\n\
      \"module\": \"old@1-0.entrypoint\",\n\
      \"props\": {\n\
        \"x\": 1\n\
      }\n\
    }\n\
  }\n\
}'\n\
GATEWAY_CONFIG_JSON='{\"tenant\": \"t\",\n  \"project\": \"p\"}'\n\
# a comment\n\
export TAIL=\"end\"\n";

fn generate(dir: &Path, descriptor: &Path, extra: &[&str]) -> test_support::Output {
    run(tool_command(binary())
        .current_dir(dir)
        .args(["--output-format", "json", "generate", "--descriptor"])
        .arg(descriptor)
        .args(extra))
}

#[test]
fn hostile_values_round_trip_through_python_dotenv_sh_and_bash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let descriptor = hostile_release(dir.path(), false);
    let env_file = dir.path().join(".env.proc");
    let start = INSTALLER_ENV.find("AGENTIC_BUNDLES_JSON=").expect("start");
    let end = INSTALLER_ENV.find("GATEWAY_CONFIG_JSON=").expect("end");
    // The installer's block is the other test's subject; here: one line to replace.
    let env = format!(
        "{}AGENTIC_BUNDLES_JSON='old'\n{}",
        &INSTALLER_ENV[..start],
        &INSTALLER_ENV[end..]
    );
    std::fs::write(&env_file, env).expect("write env");
    let output = generate(
        dir.path(),
        &descriptor,
        &[
            "--dotenv-file",
            ".env.proc",
            "--output-file",
            "bundles.json",
        ],
    );
    assert_eq!(output.code, Some(0), "{output:?}");
    let compact = std::fs::read_to_string(dir.path().join("bundles.json"))
        .expect("bundles.json")
        .trim_end()
        .to_owned();
    let value: serde_json::Value = serde_json::from_str(&compact).expect("json");
    for (position, hostile) in HOSTILE.iter().enumerate() {
        let entry = &value["bundles"][format!("b{position}@1-0")];
        assert_eq!(entry["name"], *hostile);
        assert_eq!(entry["props"]["value"], *hostile);
        assert_eq!(entry["props"][*hostile], "key");
    }

    // python-dotenv 1.1.1, as the processor loads .env.proc (dotenv_values = load_dotenv's
    // parse, with interpolation on, its default).
    let read = python(
        "import json, sys\nfrom dotenv import dotenv_values\n\
         values = dotenv_values(sys.argv[1])\n\
         print(json.dumps({'keys': list(values), 'json': values['AGENTIC_BUNDLES_JSON'], 'gateway': values['GATEWAY_CONFIG_JSON'], 'tail': values['TAIL']}))\n",
        &[&env_file],
    );
    let read: serde_json::Value = serde_json::from_str(&read).expect("python output");
    assert_eq!(
        read["keys"],
        serde_json::json!([
            "REDIS_URL",
            "AGENTIC_BUNDLES_JSON",
            "GATEWAY_CONFIG_JSON",
            "TAIL"
        ]),
        "no variable invented or lost"
    );
    assert_eq!(
        read["json"],
        compact.as_str(),
        "python-dotenv reads the exact text"
    );
    assert_eq!(
        read["gateway"],
        "{\"tenant\": \"t\",\n  \"project\": \"p\"}"
    );
    assert_eq!(read["tail"], "end");

    for shell in ["sh", "bash"] {
        assert_eq!(
            shell_reads(shell, &env_file, "AGENTIC_BUNDLES_JSON"),
            compact,
            "{shell}"
        );
        assert_eq!(
            shell_reads(shell, &env_file, "GATEWAY_CONFIG_JSON"),
            "{\"tenant\": \"t\",\n  \"project\": \"p\"}",
            "{shell}"
        );
    }
}

#[test]
fn the_installers_multi_line_value_is_replaced_and_every_other_byte_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join(".env.proc");
    std::fs::write(&env_file, INSTALLER_ENV).expect("write env");
    let descriptor = test_support::manifest_dir().join("tests/fixtures/release.yaml");
    let output = generate(dir.path(), &descriptor, &["--dotenv-file", ".env.proc"]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    let line = outputs["dotenv-line"].as_str().expect("line");
    let start = INSTALLER_ENV.find("AGENTIC_BUNDLES_JSON=").expect("start");
    let end = INSTALLER_ENV.find("GATEWAY_CONFIG_JSON=").expect("end");
    let expected = format!(
        "{}{line}\n{}",
        &INSTALLER_ENV[..start],
        &INSTALLER_ENV[end..]
    );
    assert_eq!(std::fs::read_to_string(&env_file).expect("env"), expected);
}

#[test]
fn an_unclosed_quote_in_the_env_file_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join(".env.proc");
    let broken = "A=1\nAGENTIC_BUNDLES_JSON='{\n  \"bundles\": {}\n";
    std::fs::write(&env_file, broken).expect("write env");
    let descriptor = test_support::manifest_dir().join("tests/fixtures/release.yaml");
    let output = generate(dir.path(), &descriptor, &["--dotenv-file", ".env.proc"]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains(
            "error: cannot update .env.proc: the value of `AGENTIC_BUNDLES_JSON` opens a single quote that is never closed\n --> .env.proc:2:22"
        ),
        "{}",
        output.stderr
    );
    assert_eq!(std::fs::read_to_string(&env_file).expect("env"), broken);
}

/// Stages a bundle folder per item under `root` whose `entrypoint.py` records the bundle id.
fn stage_folders(root: &Path, folders: &[(&str, &str)]) {
    for (folder, id) in folders {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("entrypoint.py"), format!("BUNDLE_ID = {id:?}\n")).expect("write");
    }
}

/// The loader's import rule, run on what we wrote: `module` is a dotted path below `path`,
/// the file `<path>/<module with dots as slashes>.py`, loaded under a package named after
/// the folder (`_load_module_from_dir` in
/// `app/ai-app/services/kdcube-ai-app/kdcube_ai_app/infra/plugin/agentic_loader.py` at
/// 88852901d, 2026-03-01; unchanged in `src/...` at eefe18532).
const LOAD_ENTRY: &str = r#"
import importlib.util, pathlib
def load(path, module, root):
    path = str(path).replace('/bundles', root, 1)
    target = pathlib.Path(path) / (module.replace('.', '/') + '.py')
    assert target.exists(), f'the loader imports {target}, which does not exist'
    spec = importlib.util.spec_from_file_location('kdcube_bundle_x.' + module, str(target))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.BUNDLE_ID
"#;

fn load_staged(form: &str, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let descriptor = test_support::manifest_dir().join("tests/fixtures/release.yaml");
    let staged = dir.path().join("image-bundles");
    stage_folders(
        &staged,
        &[
            ("support@3-1", "support@3-1"),
            ("my-bundle@2.0.0", "my-bundle@2.0.0"),
        ],
    );
    let output = generate(dir.path(), &descriptor, args);
    assert_eq!(output.code, Some(0), "{output:?}");
    let entries = match form {
        "json" => "[dict(e, id=k) for k, e in json.load(open(sys.argv[1]))['bundles'].items()]",
        _ => "yaml.safe_load(open(sys.argv[1]))['bundles']['items']",
    };
    let script = format!(
        "{LOAD_ENTRY}{}",
        r#"
import json, sys, yaml
loaded = {}
entries = ENTRIES
for e in entries:
    loaded[e['id']] = load(e['path'], e['module'], sys.argv[2])
for e in entries:
    assert 'repo' not in e, f"{e['id']} carries repo: the platform recomputes path from it since ec362c0ab"
print(json.dumps(loaded, sort_keys=True))
"#
        .replace("ENTRIES", entries)
    );
    let file = dir.path().join(args[1]);
    let loaded = python(&script, &[&file, &staged]);
    serde_json::from_str(&loaded).expect("json")
}

#[test]
fn baked_json_entries_load_by_the_platforms_import_rule_dotted_ids_included() {
    assert_eq!(
        load_staged("json", &["--output-file", "bundles.json"]),
        serde_json::json!({"my-bundle@2.0.0": "my-bundle@2.0.0", "support@3-1": "support@3-1"})
    );
}

#[test]
fn baked_bundles_yaml_items_load_by_the_platforms_import_rule() {
    assert_eq!(
        load_staged("yaml", &["--bundles-yaml-file", "bundles.yaml"]),
        serde_json::json!({"my-bundle@2.0.0": "my-bundle@2.0.0", "support@3-1": "support@3-1"})
    );
}

#[test]
fn bundles_yaml_reads_back_in_pyyaml_exactly_with_yaml_1_1_booleans_as_the_platform_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let descriptor = hostile_release(dir.path(), true);
    let output = generate(
        dir.path(),
        &descriptor,
        &[
            "--bundles-yaml-file",
            "out/bundles.yaml",
            "--output-file",
            "bundles.json",
        ],
    );
    assert_eq!(output.code, Some(0), "{output:?}");
    // The YAML 1.1 booleans are read as the platform reads them, with a warning at their place.
    assert!(
        output.stderr.contains("warning: `bundles.items[8].config.enabled` is `no`: the platform (PyYAML, YAML 1.1) reads the boolean false"),
        "{}",
        output.stderr
    );
    // The bare platform repository of the platform's own docs is a warning here: unused.
    assert!(
        output.stderr.contains("warning: `platform.repo` is not a repository: `kdcube-ai-app` (not used by this command"),
        "{}",
        output.stderr
    );
    // PyYAML safe_load, then the registry's items-by-id shape (`bundle_store.py` at
    // eefe18532: `bundles.items` -> {id: item}; `config`, with `props` its legacy alias).
    let read = python(
        "import json, sys, yaml\n\
         data = yaml.safe_load(open(sys.argv[1], encoding='utf-8'))\n\
         block = data['bundles']\n\
         items = {i['id']: i for i in block['items']}\n\
         print(json.dumps({'version': block['version'], 'default': block['default_bundle_id'], 'items': items}))\n",
        &[&dir.path().join("out/bundles.yaml")],
    );
    let read: serde_json::Value = serde_json::from_str(&read).expect("python output");
    assert_eq!(read["version"], "1");
    assert_eq!(read["default"], "b0@1-0");
    for (position, hostile) in HOSTILE.iter().enumerate() {
        let item = &read["items"][format!("b{position}@1-0")];
        assert_eq!(item["name"], *hostile, "item {position}");
        assert_eq!(
            item["config"],
            serde_json::json!({"value": hostile, "list": [hostile, 1, 1.5, true], *hostile: "key"})
        );
        assert_eq!(item["path"], "/bundles");
        assert!(item.get("repo").is_none());
    }
    assert_eq!(
        read["items"]["my-bundle@2.0.0"],
        serde_json::json!({"id": "my-bundle@2.0.0", "path": "/bundles/my-bundle@2.0.0",
            "module": "entrypoint",
            "config": {"enabled": false, "paging": true, "quoted": "no", "big": 1e300}})
    );
    assert_eq!(
        read["items"]["local@1-0"],
        serde_json::json!({"id": "local@1-0", "path": "/bundles/local", "module": "entrypoint"})
    );
    assert_eq!(
        read["items"]["kdcube.admin"],
        serde_json::json!({"id": "kdcube.admin", "config": {"enabled": {"bundle": false}}})
    );
    // The JSON form carries the same booleans; the config-only item is left out of it
    // (loaders that read the variable refuse an entry with neither `path` nor `repo`).
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("bundles.json")).expect("json"),
    )
    .expect("json");
    assert_eq!(
        json["bundles"]["my-bundle@2.0.0"]["props"]["enabled"],
        false
    );
    assert!(json["bundles"].get("kdcube.admin").is_none());
    assert!(
        output
            .stderr
            .contains("bundle `kdcube.admin` has only `config`"),
        "{}",
        output.stderr
    );
}

#[test]
fn ambiguous_yaml_scalars_in_config_are_refused_with_their_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bundles.yaml"),
        "bundles:\n  items:\n    - id: a@1\n      repo: acme/x\n      ref: v1\n      module: a@1.entrypoint\n      config:\n        mode: 010\n        on: 1\n",
    )
    .expect("write");
    let output = generate(dir.path(), Path::new("bundles.yaml"), &[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains(
            "error: `bundles.items[0].config.mode` is `010`: the platform (PyYAML, YAML 1.1) reads an integer, YAML 1.2 reads the integer 10\n --> bundles.yaml:8:15"
        ),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("hint: quote it (`\"010\"`)"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("error: the key `on` of `bundles.items[0].config` is the boolean true to the platform (PyYAML, YAML 1.1)"),
        "{}",
        output.stderr
    );
}

/// `bundle_registry._normalize` from ec362c0ab (2026-04-07) sets `path` from `repo` whenever
/// `repo` is given: by default no baked entry carries it.
#[test]
fn baked_entries_carry_no_repo_unless_traceability_is_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let descriptor = test_support::manifest_dir().join("tests/fixtures/release.yaml");
    let output = generate(dir.path(), &descriptor, &[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    let bundles = outputs["bundles-json"]["bundles"]
        .as_object()
        .expect("bundles");
    assert_eq!(bundles.len(), 2);
    for (id, entry) in bundles {
        for field in ["repo", "ref", "subdir"] {
            assert!(entry.get(field).is_none(), "{id} carries {field}: {entry}");
        }
        assert!(
            entry["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/bundles")),
            "{entry}"
        );
    }
}

#[test]
fn traceability_is_refused_for_a_platform_that_recomputes_path_from_repo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let descriptor = test_support::manifest_dir().join("tests/fixtures/release.yaml");
    let output = generate(
        dir.path(),
        &descriptor,
        &["--traceability", "--platform-revision", "2026-04-07"],
    );
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(output.stderr.contains("ec362c0ab"), "{}", output.stderr);
    let before = generate(
        dir.path(),
        &descriptor,
        &["--traceability", "--platform-revision", "2026-03-01"],
    );
    assert_eq!(before.code, Some(0), "{before:?}");
    let outputs: serde_json::Value = serde_json::from_str(&before.stdout).expect("json");
    assert_eq!(
        outputs["bundles-json"]["bundles"]["support@3-1"]["ref"],
        "bundles-v2026.11.24"
    );
}

/// `stage` then `generate`, and each staged bundle imported from each form by the loader's rule:
/// a release.yaml item in the platform docs' bundle-root shape (`subdir` the bundle folder,
/// `module: entrypoint`) next to a dotted folder in the parent shape.
#[test]
fn staged_bundle_root_and_dotted_items_import_from_both_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkout = dir.path().join("checkout");
    stage_folders(
        &checkout.join("src"),
        &[("marketing_bundle", "acme.marketing@2-0")],
    );
    stage_folders(
        &checkout.join("bundles"),
        &[("my-bundle@2.0.0", "my-bundle@2.0.0")],
    );
    std::fs::write(
        dir.path().join("release.yaml"),
        "bundles:\n  items:\n    - id: \"acme.marketing@2-0\"\n      repo: \"git@github.com:example-org/acme-platform.git\"\n      ref: \"v1.0.0\"\n      subdir: \"src/marketing_bundle\"\n      module: \"entrypoint\"\n    - id: \"my-bundle@2.0.0\"\n      repo: \"git@github.com:example-org/acme-platform.git\"\n      ref: \"v1.0.0\"\n      subdir: \"bundles\"\n      module: \"my-bundle@2.0.0.entrypoint\"\n",
    )
    .expect("write");
    let stage = run(tool_command(binary())
        .current_dir(dir.path())
        .args(["stage", "--descriptor", "release.yaml", "--dest", "staged"])
        .arg("--checkout")
        .arg(format!(
            "acme.marketing@2-0={0}\nmy-bundle@2.0.0={0}",
            checkout.display()
        )));
    assert_eq!(stage.code, Some(0), "{stage:?}");
    assert!(
        dir.path()
            .join("staged/marketing_bundle/entrypoint.py")
            .is_file()
    );
    let args = [
        "--output-file",
        "bundles.json",
        "--bundles-yaml-file",
        "bundles.yaml",
    ];
    let output = generate(dir.path(), Path::new("release.yaml"), &args);
    // Two bundle-root entries share the module name `entrypoint`: refused for platform
    // revisions before 16eb1d711 (2026-04-04), which cache it once in `sys.modules`.
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output
            .stderr
            .contains("both load as the top-level module `entrypoint`"),
        "{output:?}"
    );
    let mut args = args.to_vec();
    args.extend(["--platform-revision", "2026-04-04"]);
    let output = generate(dir.path(), Path::new("release.yaml"), &args);
    assert_eq!(output.code, Some(0), "{output:?}");
    let script = format!(
        "{LOAD_ENTRY}{}",
        r#"
import json, sys, yaml
root = sys.argv[3]
loaded = {}
for k, e in json.load(open(sys.argv[1]))['bundles'].items():
    loaded['json:' + k] = load(e['path'], e['module'], root)
for e in yaml.safe_load(open(sys.argv[2]))['bundles']['items']:
    loaded['yaml:' + e['id']] = load(e['path'], e['module'], root)
print(json.dumps(loaded, sort_keys=True))
"#
    );
    let loaded = python(
        &script,
        &[
            &dir.path().join("bundles.json"),
            &dir.path().join("bundles.yaml"),
            &dir.path().join("staged"),
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&loaded).expect("json"),
        serde_json::json!({
            "json:acme.marketing@2-0": "acme.marketing@2-0", "json:my-bundle@2.0.0": "my-bundle@2.0.0",
            "yaml:acme.marketing@2-0": "acme.marketing@2-0", "yaml:my-bundle@2.0.0": "my-bundle@2.0.0"
        })
    );
}

#[test]
fn a_module_without_a_dot_needs_a_subdir_naming_the_bundle_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bundles.yaml"),
        "bundles:\n  items:\n    - id: a@1\n      repo: acme/x\n      ref: v1\n      module: entrypoint\n",
    )
    .expect("write");
    let output = generate(dir.path(), Path::new("bundles.yaml"), &[]);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains(
            "error: `bundles.items[0].module` is `entrypoint` with no dot, and there is no `subdir` naming the bundle folder\n --> bundles.yaml:6:15"
        ),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("hint: set `subdir` to the bundle folder"),
        "{}",
        output.stderr
    );
}

/// The release.yaml of the platform's docs (kdcube-ai-app
/// `docs/service/cicd/release-descriptor-README.md`) names the platform and the frontend by bare
/// names; `generate` uses neither and warns instead of refusing (issue 20).
#[test]
fn the_platform_docs_release_yaml_with_bare_repository_names_generates_with_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("release.yaml"),
        "release_name: \"prod-2026-01-30\"\nplatform:\n  repo: \"kdcube-ai-app\"\n  ref: \"2026.1.30.317\"\nfrontend:\n  repo: \"customer-repo\"\n  ref: \"ui-v2026.01.30\"\nbundles:\n  default_bundle_id: \"support@3-1\"\n  items:\n    - id: \"support@3-1\"\n      repo: \"git@github.com:customer/customer-repo.git\"\n      ref: \"bundles-v2026.01.30\"\n      subdir: \"service/bundles\"\n      module: \"support@3-1.entrypoint\"\n",
    )
    .expect("write");
    let output = generate(dir.path(), Path::new("release.yaml"), &[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    for (field, value, at) in [
        ("platform.repo", "kdcube-ai-app", "release.yaml:3:9"),
        ("frontend.repo", "customer-repo", "release.yaml:6:9"),
    ] {
        assert!(
            output.stderr.contains(&format!(
                "warning: `{field}` is not a repository: `{value}` (not used by this command; a checkout or a lock would refuse it)\n --> {at}"
            )),
            "{}",
            output.stderr
        );
    }
}

/// The platform reads props with PyYAML (YAML 1.1): `enabled: no` is `False` there, so the
/// JSON says `false` (it said the string `"no"`, which Python finds true).
#[test]
fn yaml_1_1_booleans_in_props_reach_the_json_as_the_platform_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bundles.yaml"),
        "bundles:\n  items:\n    - id: a@1\n      repo: acme/x\n      ref: v1\n      module: a@1.entrypoint\n      props:\n        enabled: no\n        paging: on\n        label: \"no\"\n",
    )
    .expect("write");
    let output = generate(dir.path(), Path::new("bundles.yaml"), &[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(
        outputs["bundles-json"]["bundles"]["a@1"]["props"],
        serde_json::json!({"enabled": false, "paging": true, "label": "no"})
    );
    assert!(
        output.stderr.contains("warning: `bundles.items[0].props.enabled` is `no`: the platform (PyYAML, YAML 1.1) reads the boolean false, and so does this tool\n --> bundles.yaml:8:18"),
        "{}",
        output.stderr
    );
}
