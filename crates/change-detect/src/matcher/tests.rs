use super::compiled::Matcher;
use super::fileset::FileSet;
use super::index::{DirCache, GlobIndex, required_suffixes};
use super::pipeline::{PIPELINE_CHUNK, Pipeline};
use crate::change::{Change, Status};
use crate::config::parse;
use crate::filter::Quantifier;
use crate::glob::Glob;
use crate::jsregex;

fn run(yaml: &str, quantifier: Quantifier, changes: &[Change]) -> Vec<(String, Vec<String>)> {
    let filters = parse(yaml).expect("valid");
    let matcher = Matcher::new(&filters, quantifier).expect("compiles");
    let matches = matcher.matches(changes);
    filters
        .iter()
        .zip(matches.files)
        .map(|(f, files)| {
            (
                f.name.clone(),
                files.iter().map(|i| changes[i].path.to_string()).collect(),
            )
        })
        .collect()
}

fn modified(paths: &[&str]) -> Vec<Change> {
    paths
        .iter()
        .map(|p| Change::new(*p, Status::Modified))
        .collect()
}

fn files_of(result: &[(String, Vec<String>)], name: &str) -> Vec<String> {
    result
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, f)| f.clone())
        .expect("filter exists")
}

#[test]
fn negation_under_some_matches_everything_else_like_dorny() {
    let changes = modified(&["src/a.js", "src/b.md", "docs/c.txt"]);
    // "in src, or anything that is not markdown" (dorny #97).
    let result = run("x: ['src/**', '!**/*.md']\n", Quantifier::Some, &changes);
    assert_eq!(
        files_of(&result, "x"),
        ["src/a.js", "src/b.md", "docs/c.txt"]
    );
    let result = run("x: ['src/**', '!**/*.md']\n", Quantifier::Every, &changes);
    assert_eq!(files_of(&result, "x"), ["src/a.js"]);
    let result = run("x: '!**/*.md'\n", Quantifier::Some, &changes);
    assert_eq!(files_of(&result, "x"), ["src/a.js", "docs/c.txt"]);
}

#[test]
fn ordered_rules_are_last_match_wins() {
    let changes = modified(&["src/a.js", "src/gen/b.js", "src/gen/keep.js", "x.js"]);
    let yaml = "x: ['src/**', '!src/gen/**', 'src/gen/keep.js']\n";
    let result = run(yaml, Quantifier::Ordered, &changes);
    assert_eq!(files_of(&result, "x"), ["src/a.js", "src/gen/keep.js"]);
}

#[test]
fn exclude_removes_files_under_any_quantifier() {
    let changes = modified(&["api/main.rs", "api/README.md"]);
    let yaml = "api:\n  paths: api/**\n  exclude: '**/*.md'\n";
    for quantifier in [Quantifier::Some, Quantifier::Every, Quantifier::Ordered] {
        let result = run(yaml, quantifier, &changes);
        assert_eq!(files_of(&result, "api"), ["api/main.rs"], "{quantifier:?}");
    }
}

#[test]
fn every_with_no_rules_matches_every_file_like_dorny() {
    let changes = modified(&["a", "b"]);
    let result = run("x: []\n", Quantifier::Every, &changes);
    assert_eq!(files_of(&result, "x"), ["a", "b"]);
    let result = run("x: []\n", Quantifier::Some, &changes);
    assert!(files_of(&result, "x").is_empty());
}

#[test]
fn status_rules_see_only_their_statuses() {
    let changes = vec![
        Change::new("a/new.rs", Status::Added),
        Change::new("a/old.rs", Status::Deleted),
        Change::new("a/mod.rs", Status::Modified),
        Change::new("a/type.rs", Status::Other),
    ];
    let result = run(
        "x:\n  - added|deleted: a/**\ny: a/**\n",
        Quantifier::Some,
        &changes,
    );
    assert_eq!(files_of(&result, "x"), ["a/new.rs", "a/old.rs"]);
    assert_eq!(files_of(&result, "y").len(), 4);
}

#[test]
fn dependencies_bring_their_files_transitively_in_change_order() {
    let changes = modified(&[
        "crates/shared/lib.rs",
        "services/api/main.rs",
        "proto/a.proto",
    ]);
    let yaml = "proto: proto/**\n\
                shared:\n  paths: crates/shared/**\n  depends-on: [proto]\n\
                api:\n  paths: services/api/**\n  depends-on: [shared]\n\
                worker:\n  paths: services/worker/**\n  depends-on: [shared]\n\
                web: web/**\n";
    let result = run(yaml, Quantifier::Some, &changes);
    assert_eq!(
        files_of(&result, "api"),
        [
            "crates/shared/lib.rs",
            "services/api/main.rs",
            "proto/a.proto"
        ]
    );
    assert_eq!(
        files_of(&result, "worker"),
        ["crates/shared/lib.rs", "proto/a.proto"]
    );
    assert!(files_of(&result, "web").is_empty());
}

#[test]
fn detected_renames_match_on_either_path() {
    let changes = vec![Change {
        path: "moved/x.rs".into(),
        status: Status::Renamed,
        previous: Some("api/x.rs".into()),
    }];
    let result = run(
        "api: api/**\nmoved: moved/**\nrenames:\n  - renamed: api/**\n",
        Quantifier::Some,
        &changes,
    );
    assert_eq!(files_of(&result, "api"), ["moved/x.rs"]);
    assert_eq!(files_of(&result, "moved"), ["moved/x.rs"]);
    assert_eq!(files_of(&result, "renames"), ["moved/x.rs"]);
}

#[test]
fn threaded_matching_equals_one_thread_in_order() {
    let filters =
        parse("a: 'd1/**'\nb: ['d2/**', '!**/*.md']\nc:\n  paths: '**/*.rs'\n  depends-on: [a]\n")
            .expect("valid");
    let matcher = Matcher::new(&filters, Quantifier::Some).expect("compiles");
    // Every directory holds every extension in equal numbers.
    let n = 9 * 7000;
    let changes: Vec<Change> = (0..n)
        .map(|i| {
            let path = format!("d{}/f{i}.{}", i % 3, ["rs", "md", "txt"][(i / 3) % 3]);
            Change::new(path.as_str(), Status::Modified)
        })
        .collect();
    let threaded = matcher.matches_on(&changes, 3);
    let single = matcher.matches_on(&changes, 1);
    assert_eq!(threaded, single);
    let counts: Vec<usize> = single.files.iter().map(FileSet::len).collect();
    // a: d1; b: d2, or anything not markdown; c: .rs files, plus a through depends-on.
    assert_eq!(counts, [n / 3, n / 3 + 4 * n / 9, 5 * n / 9]);
    let listed: Vec<usize> = single.files[1].iter().collect();
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "ascending");
}

#[test]
fn paths_no_glob_hits_take_the_filters_default_per_status() {
    let changes = vec![
        Change::new("b.rs", Status::Modified),
        Change::new("c.tmp", Status::Modified),
        Change::new("docs/d.rs", Status::Modified),
        Change::new("e.rs", Status::Added),
    ];
    let yaml = "x:\n  paths: '!docs/**'\n  exclude: '**/*.tmp'\ny:\n  - added: '!a/**'\n";
    let result = run(yaml, Quantifier::Some, &changes);
    assert_eq!(files_of(&result, "x"), ["b.rs", "e.rs"]);
    assert_eq!(files_of(&result, "y"), ["e.rs"]);
}

#[test]
fn word_evaluation_equals_the_per_path_definition() {
    let yaml = "plain: 'a/**'\n\
                negated: '!**/*.md'\n\
                mixed: ['a/**', '!**/*.md', 'b/*.rs']\n\
                statuses:\n  - added|deleted: 'a/**'\n  - modified: '!b/**'\n\
                ordered: ['**', '!a/**', 'a/keep/**', '!**/*.md']\n\
                excluded:\n  paths: ['**/*.rs', '!b/**']\n  exclude:\n    - deleted: 'a/**'\n    - '**/x.rs'\n\
                empty: []\n";
    let statuses = [
        Status::Added,
        Status::Modified,
        Status::Deleted,
        Status::Renamed,
        Status::Other,
    ];
    let dirs = ["a", "a/keep", "b", "c"];
    let names = ["x.rs", "y.md", "z.txt"];
    // 150 changes: the last word is partial; some are renames from another directory.
    let changes: Vec<Change> = (0..150)
        .map(|i| {
            let path = format!("{}/{}", dirs[i % 4], names[i / 4 % 3]);
            let status = statuses[i / 12 % 5];
            let previous = (status == Status::Renamed && i % 2 == 0).then(|| {
                crate::change::RepoPath::from(format!("{}/old.rs", dirs[(i + 1) % 4]).as_str())
            });
            Change {
                path: path.as_str().into(),
                status,
                previous,
            }
        })
        .collect();
    let filters = parse(yaml).expect("valid");
    for quantifier in [Quantifier::Some, Quantifier::Every, Quantifier::Ordered] {
        let matcher = Matcher::new(&filters, quantifier).expect("compiles");
        let matches = matcher.matches_on(&changes, 2);
        let (mut hits, mut scratch) = (Vec::new(), matcher.set.scratch());
        for (index, change) in changes.iter().enumerate() {
            hits.clear();
            for path in std::iter::once(&change.path).chain(&change.previous) {
                matcher
                    .set
                    .matches_into(path.as_bytes(), &mut hits, &mut scratch);
            }
            let mut hit = vec![false; matcher.glob_count];
            for glob in &hits {
                hit[*glob] = true;
            }
            for (number, filter) in matcher.filters.iter().enumerate() {
                assert_eq!(
                    matches.files[number].contains(index),
                    filter.is_match(&hit, change.status, false),
                    "{quantifier:?} {} {change:?}",
                    filters[number].name
                );
            }
        }
        for set in &matches.files {
            assert!(set.iter().all(|index| index < changes.len()));
        }
    }
}

#[test]
fn file_sets_iterate_in_order_across_words() {
    let mut set = FileSet::new(200);
    for index in [199, 0, 63, 64, 128] {
        set.insert(index);
    }
    assert_eq!(set.iter().collect::<Vec<_>>(), [0, 63, 64, 128, 199]);
    assert_eq!(set.len(), 5);
    assert!(!set.contains(1) && set.contains(64));
    assert!(FileSet::new(10).is_empty());
}

#[test]
fn identical_globs_are_compiled_once() {
    let filters = parse("a: x/**\nb: [x/**, y/*]\n").expect("valid");
    let matcher = Matcher::new(&filters, Quantifier::Some).expect("compiles");
    // `x/**` also needs `x` (picomatch matches the directory name itself).
    assert_eq!(matcher.glob_count, 5, "x, x/**, y/* and the two texts");
    let first_glob = |filter: usize| matcher.filters[filter].rules[0].patterns[0].globs[0];
    assert_eq!((first_glob(0), first_glob(1)), (0, 0));
}
/// The ASCII regexes of a glob's text.
fn ascii_regexes(source: &str) -> Vec<String> {
    crate::glob::Pattern::parse(source)
        .expect(source)
        .globs
        .into_iter()
        .filter_map(|glob| match glob {
            Glob::Regex(regex) => Some(regex.ascii.clone()),
            Glob::Exact(_) => None,
        })
        .collect()
}

#[test]
fn extension_globs_give_the_suffixes_a_path_must_end_with() {
    let mut regexes = ascii_regexes("**/*.md");
    regexes.extend(ascii_regexes("services/api/src/**/*.{rs,proto}"));
    let patterns: Vec<&str> = regexes.iter().map(String::as_str).collect();
    let suffixes = required_suffixes(&patterns).expect("finite suffixes");
    // Inexact literals may be longer than the extension; each must end with one
    // (or with one and a `/`: picomatch lets a trailing slash match).
    for suffix in &suffixes {
        let suffix = suffix.strip_suffix(b"/").unwrap_or(suffix);
        assert!(
            [".md", ".rs", ".proto"]
                .iter()
                .any(|ext| suffix.ends_with(ext.as_bytes())),
            "{suffix:?}"
        );
    }
    for ext in [".md", ".rs", ".proto"] {
        assert!(
            suffixes.iter().any(|s| s.ends_with(ext.as_bytes())),
            "{ext}"
        );
    }
    // A glob that can end in anything turns the skip off for its whole set.
    let mut regexes = ascii_regexes("**/*.md");
    regexes.extend(ascii_regexes("docs/*"));
    let patterns: Vec<&str> = regexes.iter().map(String::as_str).collect();
    assert_eq!(required_suffixes(&patterns), None);
}

#[test]
fn the_glob_index_answers_exactly_like_javascript() {
    let sources = [
        "services/api/**",
        "services/api/src/**/*.{rs,proto}",
        "**/*.md",
        "*",
        "a?b",
        "**",
        "docs/*.md",
        "docs/sub/**",
        "src/[ab].js",
        "b{1,}.txt",
        "services/**/main.rs",
        ".github/**",
        "weird\\[1\\].txt",
        "x/y/z",
        "x/y/**/q",
        "x/{y,z}/**",
        "(src|lib)/**",
        "x*/**",
        "[x].txt",
        "docs/?.md",
        "*.*",
    ];
    // Per pattern, its globs (a pattern holds when any of them does).
    let mut globs: Vec<Glob> = Vec::new();
    let mut patterns: Vec<Vec<usize>> = Vec::new();
    for source in sources {
        let mut own = Vec::new();
        for glob in crate::glob::Pattern::parse(source).expect(source).globs {
            let index = globs
                .iter()
                .position(|g| g.key() == glob.key())
                .unwrap_or_else(|| {
                    globs.push(glob);
                    globs.len() - 1
                });
            own.push(index);
        }
        patterns.push(own);
    }
    let by_pattern = |hits: &[usize]| -> Vec<usize> {
        (0..patterns.len())
            .filter(|p| patterns[*p].iter().any(|g| hits.contains(g)))
            .collect()
    };
    let index = GlobIndex::new(&globs).expect("index");
    let paths = [
        "services/api/src/main.rs",
        "services/api",
        "services/api/.env",
        "services/apix/a",
        "services/api/src/x/y.proto",
        "README.md",
        "docs/a.md",
        "docs/é.md",
        "docs/😀.md",
        "docs/sub/b.md",
        "docs/sub",
        "axb",
        "a/b",
        "src/a.js",
        "src/c.js",
        "src/x",
        "lib/y/z",
        "b.txt",
        "b1.txt",
        "services/web/main.rs",
        ".github/workflows/ci.yml",
        "weird[1].txt",
        "[x].txt",
        "x.txt",
        "x/y/z",
        "x/y/a/b/q",
        "x/y/q",
        "x/z/w",
        "x/y",
        "xa/b",
        "xa",
        "a.",
    ];
    let (mut hits, mut scratch) = (Vec::new(), index.scratch());
    let mut cache = DirCache::default();
    // Each path alone, then in sorted order through one cache, as the matcher does.
    let mut sorted = paths.to_vec();
    sorted.sort_unstable();
    let javascript = |path: &str| -> Vec<usize> {
        let units = jsregex::path_units(path.as_bytes());
        (0..globs.len())
            .filter(|g| globs[*g].matches_units(&units, path.as_bytes()))
            .collect()
    };
    for (path, cached) in paths.iter().zip(&sorted) {
        hits.clear();
        index.matches_into(path.as_bytes(), &mut hits, &mut scratch);
        assert_eq!(by_pattern(&hits), by_pattern(&javascript(path)), "{path}");
        hits.clear();
        index.matches_cached(cached.as_bytes(), &mut cache, &mut hits, &mut scratch);
        assert_eq!(
            by_pattern(&hits),
            by_pattern(&javascript(cached)),
            "{cached} (cached)"
        );
    }
    // `src/**/` puts the `/` after `src` inside an alternation: `services/api/` is the
    // longest literal directory.
    assert_eq!(index.deepest, "services/api/".len());
}
#[test]
fn the_pipeline_equals_matching_the_whole_list() {
    let filters =
        parse("a: 'd1/**'\nb: ['d2/**', '!**/*.md']\nc:\n  paths: '**/*.rs'\n  depends-on: [a]\n")
            .expect("valid");
    let changes: Vec<Change> = (0..(2 * PIPELINE_CHUNK + 100))
        .map(|i| {
            let path = format!("d{}/f{i}.{}", i % 3, ["rs", "md", "txt"][(i / 3) % 3]);
            Change::new(path.as_str(), Status::Modified)
        })
        .collect();
    let whole = Matcher::new(&filters, Quantifier::Some)
        .expect("compiles")
        .matches_on(&changes, 1);
    let compiling = {
        let filters = filters.clone();
        std::thread::spawn(move || Matcher::new(&filters, Quantifier::Some))
    };
    let mut pipeline = Pipeline::new(compiling);
    for change in changes.iter().cloned() {
        pipeline.push(change);
    }
    let listed = pipeline.finish().expect("compiles");
    assert_eq!(listed.changes, changes);
    assert_eq!(listed.matches, whole);
}
