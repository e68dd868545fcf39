//! Random comparison with dorny/paths-filter's own matching (issue #23): random trees of
//! changed files (unicode, spaces, dot files, glob characters and line breaks in names,
//! statuses, renames split into deleted + added as dorny's git path does) and random filters
//! (status rules, `!` rules, lists, `some`/`every`), run through picomatch 2.3.1 from npm with
//! dorny's `Filter.isMatch` (`tests/data/dorny-filter-oracle.js`) and through change-detect's
//! parser and matcher. Every case must agree, except patterns change-detect refuses with a
//! hint (the README lists them), which are counted and must stay a minority.
//!
//! Seeds `0..CASES` run every time, plus every seed that ever failed (`REGRESSIONS`). To
//! explore more: `CHANGE_DETECT_ORACLE_SEEDS=100000..105000 cargo test -p change-detect
//! oracle`; a failure prints its seed: add it to `REGRESSIONS`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use change_detect::change::{Change, Status};
use change_detect::config::parse;
use change_detect::filter::Quantifier;
use change_detect::matcher::Matcher;
use serde_json::{Value, json};

/// Cases per run.
const CASES: u64 = 600;

/// Seeds that once disagreed with dorny; kept as regression cases.
const REGRESSIONS: &[u64] = &[3653, 3830, 4073, 4691, 11129, 12024];

/// A small deterministic generator (xorshift64*), so a seed is a case.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Name pieces for files; patterns reuse them so that they hit.
const NAMES: &[&str] = &[
    "src",
    "lib",
    "docs",
    "a",
    "b",
    "x",
    "app",
    ".github",
    ".env",
    "README.md",
    "main.rs",
    "index.js",
    "a.ts",
    "b.md",
    "café.txt",
    "é.md",
    "日本.txt",
    "😀.md",
    "file with space.txt",
    "[x].txt",
    "weird[1].txt",
    "a{b}.txt",
    "(a).js",
    "a|b",
    "+x",
    "@y",
    "$z",
    "^w",
    "!bang",
    "a,b",
    "b1.txt",
    "b.txt",
    "x.JS",
    "**",
    "*",
    "?",
    ".hidden",
    "tab\tname",
    "new\nline",
    "cr\rname",
    "ls\u{2028}sep",
    "a.",
    "...",
    "-dash",
    "#hash",
    "%pct",
    "'quote",
    "\"dq",
    "back\\slash",
    "}",
    "{",
    "]",
    "x*y",
    "a.b.c",
    "node_modules",
    "svc-001",
];

/// Glob pieces for one path segment.
const GLOB_SEGMENTS: &[&str] = &[
    "*",
    "**",
    "?",
    "??",
    "*.md",
    "*.{js,ts}",
    "{src,lib}",
    "{a}",
    "{,b}",
    "[ab]",
    "[^a]*",
    "[a-c]*",
    "[[:digit:]]*",
    "b[0-9].txt",
    "caf[eé].txt",
    "?.md",
    "*.txt",
    "(src|lib)",
    "(a|b).js",
    "*.js|*.ts",
    "[x].txt",
    "x*",
    "s*",
    "*x",
    "a?b",
    ".*",
    "*.*",
    "**.md",
    "**.txt",
    "\\*",
    "\\[x\\].txt",
    "a\\{b\\}.txt",
    "+x",
    "@y",
    "$z",
    "^w",
    "}",
    "a,b",
    "file with space.txt",
    "[/]",
    "a[.-_]b",
    "é.md",
    "😀.md",
    "??.md",
    "????.md",
    "%pct",
    "#hash",
    "'quote",
    "x[",
    "a)",
    "(a",
    "*(",
    "b{1,}.txt",
    "{src,{docs,x}}",
    "[]]",
    "[!]",
    "\\d*",
    "\\w*",
    "x+",
    "(x)+",
    "(a)?",
];

fn random_path(random: &mut Random) -> String {
    let depth = 1 + random.below(4);
    (0..depth)
        .map(|_| (*random.pick(NAMES)).to_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A random pattern change-detect accepts; the ones it refuses are counted in `refused`.
fn random_pattern(random: &mut Random, paths: &[String], refused: &mut Vec<String>) -> String {
    loop {
        let pattern = any_pattern(random, paths);
        match change_detect::glob::Pattern::parse(&pattern) {
            Ok(_) => return pattern,
            Err(error) => refused.push(format!("{pattern:?}: {error}")),
        }
    }
}

fn any_pattern(random: &mut Random, paths: &[String]) -> String {
    let mut pattern = if random.chance(12) && !paths.is_empty() {
        // A path as written (its name may hold glob characters).
        random.pick(paths).clone()
    } else {
        let depth = 1 + random.below(3);
        (0..depth)
            .map(|_| {
                if random.chance(45) {
                    (*random.pick(NAMES)).to_owned()
                } else {
                    (*random.pick(GLOB_SEGMENTS)).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    if random.chance(15) {
        pattern.push_str("/**");
    }
    if random.chance(6) {
        pattern.insert_str(0, "./");
    }
    let bangs = [0, 0, 0, 0, 0, 1, 1, 2][random.below(8)];
    pattern.insert_str(0, &"!".repeat(bangs));
    pattern
}

const STATUSES: &[&str] = &[
    "added", "modified", "deleted", "renamed", "copied", "unmerged",
];

/// One rule: statuses (`None`: any) and patterns.
type RandomRule = (Option<Vec<&'static str>>, Vec<String>);

struct Case {
    quantifier: &'static str,
    /// Per filter, its rules.
    filters: Vec<Vec<RandomRule>>,
    files: Vec<(String, Status)>,
}

fn generate(seed: u64, refused: &mut Vec<String>) -> Case {
    let mut random = Random::new(seed);
    let mut files = Vec::new();
    for _ in 0..(5 + random.below(40)) {
        let path = random_path(&mut random);
        match random.below(10) {
            0..=3 => files.push((path, Status::Modified)),
            4..=5 => files.push((path, Status::Added)),
            6..=7 => files.push((path, Status::Deleted)),
            // A rename, as dorny's git diff (`--no-renames`) reports it.
            _ => {
                files.push((random_path(&mut random), Status::Deleted));
                files.push((path, Status::Added));
            }
        }
    }
    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let filters = (0..(1 + random.below(6)))
        .map(|_| {
            (0..(1 + random.below(3)))
                .map(|_| {
                    if random.chance(25) {
                        let statuses: Vec<&str> = (0..(1 + random.below(2)))
                            .map(|_| *random.pick(STATUSES))
                            .collect();
                        let patterns = (0..(1 + random.below(2)))
                            .map(|_| random_pattern(&mut random, &paths, refused))
                            .collect();
                        (Some(statuses), patterns)
                    } else {
                        (None, vec![random_pattern(&mut random, &paths, refused)])
                    }
                })
                .collect()
        })
        .collect();
    Case {
        quantifier: if random.chance(30) { "every" } else { "some" },
        filters,
        files,
    }
}

/// The filters file change-detect reads for a case: JSON, which YAML reads as well.
fn filters_yaml(case: &Case) -> String {
    let mut root = serde_json::Map::new();
    for (number, rules) in case.filters.iter().enumerate() {
        let items: Vec<Value> = rules
            .iter()
            .map(|(statuses, patterns)| match statuses {
                None => json!(patterns[0]),
                Some(statuses) => json!({ statuses.join("|"): patterns }),
            })
            .collect();
        root.insert(format!("f{number}"), Value::Array(items));
    }
    serde_json::to_string(&Value::Object(root)).expect("json")
}

fn status_word(status: Status) -> &'static str {
    status.word()
}

fn env() -> runner_protocol::env::Env {
    runner_protocol::env::Env::from_process()
}

/// Where `ensure_picomatch` (scripts/lib/deps.sh) installs it.
fn picomatch_dir() -> std::path::PathBuf {
    let env = env();
    if let Some(dir) = env.path("PICOMATCH_DIR") {
        return dir;
    }
    let cache = env
        .path("DEPLOY_SUITE_CACHE")
        .or_else(|| {
            env.path("XDG_CACHE_HOME")
                .map(|cache| cache.join("deploy-suite"))
        })
        .or_else(|| {
            env.path("HOME")
                .map(|home| home.join(".cache/deploy-suite"))
        })
        .expect("HOME is set");
    cache.join("npm/picomatch-2.3.1/node_modules/picomatch")
}

/// dorny's answers for the cases, from node.
fn oracle(cases: &[Case]) -> Vec<Value> {
    let install = "bash -c 'source scripts/lib/deps.sh && ensure_picomatch'";
    let node = test_support::require_program("node", "apt-get install nodejs npm");
    let dir = picomatch_dir();
    assert!(
        dir.join("package.json").is_file(),
        "picomatch 2.3.1 is required by this test and is not installed in {}.\n\
         Install it with: {install}\n(scripts/test installs every test dependency)",
        dir.display()
    );
    let input: Vec<Value> = cases
        .iter()
        .map(|case| {
            json!({
                "quantifier": case.quantifier,
                "filters": case.filters.iter().map(|rules| json!({
                    "rules": rules.iter().map(|(statuses, patterns)| json!({
                        "status": statuses, "patterns": patterns,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "files": case.files.iter().map(|(path, status)| json!({
                    "filename": path, "status": status_word(*status),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let script = test_support::manifest_dir().join("tests/data/dorny-filter-oracle.js");
    let mut child = Command::new(node)
        .arg(script)
        .env("PICOMATCH_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let body = serde_json::to_vec(&input).expect("json");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output().expect("node runs");
    writer.join().expect("writer").expect("written");
    assert!(output.status.success(), "the oracle failed");
    serde_json::from_slice(&output.stdout).expect("oracle output")
}

/// change-detect's answers: per filter the matching file indices, or the refusal.
fn ours(case: &Case) -> Result<Vec<Vec<usize>>, String> {
    let filters = parse(&filters_yaml(case)).map_err(|e| e.message)?;
    let quantifier = Quantifier::from_word(case.quantifier).expect("quantifier");
    let matcher = Matcher::new(&filters, quantifier).expect("compiles");
    let changes: Vec<Change> = case
        .files
        .iter()
        .map(|(path, status)| Change::new(path.as_str(), *status))
        .collect();
    let matches = matcher.matches(&changes);
    Ok(matches
        .files
        .iter()
        .map(|set| set.iter().collect())
        .collect())
}

fn seeds() -> Vec<u64> {
    let mut seeds: Vec<u64> = (0..CASES).chain(REGRESSIONS.iter().copied()).collect();
    if let Some(range) = env().get("CHANGE_DETECT_ORACLE_SEEDS") {
        let (from, to) = range.split_once("..").expect("FROM..TO");
        seeds.extend(from.parse::<u64>().expect("from")..to.parse::<u64>().expect("to"));
    }
    seeds
}

#[test]
fn random_trees_and_filters_match_exactly_what_dorny_matches() {
    let seeds = seeds();
    let mut refused = Vec::new();
    let cases: Vec<Case> = seeds
        .iter()
        .map(|seed| generate(*seed, &mut refused))
        .collect();
    let patterns: usize = cases
        .iter()
        .flat_map(|c| &c.filters)
        .flatten()
        .map(|r| r.1.len())
        .sum();
    let expected = oracle(&cases);
    let mut compared = 0;
    let mut failures = Vec::new();
    for ((seed, case), dorny) in seeds.iter().zip(&cases).zip(&expected) {
        let dorny_throws = dorny
            .as_array()
            .is_some_and(|filters| filters.iter().any(|f| f.get("error").is_some()));
        match ours(case) {
            Err(message) => failures.push(format!(
                "seed {seed}: change-detect refuses the filters ({message}):\n{}",
                filters_yaml(case)
            )),
            Ok(_) if dorny_throws => failures.push(format!(
                "seed {seed}: dorny fails ({dorny}), change-detect accepts:\n{}",
                filters_yaml(case)
            )),
            Ok(ours) => {
                compared += 1;
                let theirs: Vec<Vec<usize>> =
                    serde_json::from_value(dorny.clone()).expect("indices");
                if ours != theirs {
                    let files: Vec<&(String, Status)> = case.files.iter().collect();
                    failures.push(format!(
                        "seed {seed} ({}):\n  filters: {}\n  files: {files:?}\n  dorny:         {theirs:?}\n  change-detect: {ours:?}",
                        case.quantifier,
                        filters_yaml(case),
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with dorny/paths-filter (add each seed to REGRESSIONS once fixed):\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    // Refusals are for the classes the README lists; they must not hide the comparison.
    assert_eq!(compared, seeds.len());
    let hits: usize = expected
        .iter()
        .flat_map(|filters| filters.as_array().into_iter().flatten())
        .map(|files| files.as_array().map_or(0, Vec::len))
        .sum();
    eprintln!(
        "{compared} cases, {patterns} patterns ({} refused and drawn again), {hits} filter x file matches",
        refused.len()
    );
    if env().get("CHANGE_DETECT_ORACLE_REFUSALS").is_some() {
        eprintln!("{}", refused.join("\n"));
    }
    assert!(
        hits >= seeds.len() * 5,
        "the cases match too little to mean much: {hits}"
    );
    assert!(
        refused.len() * 4 <= patterns,
        "{} patterns refused for {patterns} accepted:\n{}",
        refused.len(),
        refused.join("\n")
    );
}
