//! Glob semantics: every pattern x path of a table produced by picomatch 2.3.1 with
//! `{ dot: true }` (how dorny/paths-filter calls it), see `tests/data/picomatch-oracle.js`.

use change_detect::change::{Change, Status};
use change_detect::config::parse;
use change_detect::filter::Quantifier;
use change_detect::matcher::Matcher;

#[derive(serde::Deserialize)]
struct Oracle {
    corpus: Vec<String>,
    rows: Vec<Row>,
}

#[derive(serde::Deserialize)]
struct Row {
    pattern: String,
    matches: Vec<String>,
}

/// Patterns picomatch accepts that change-detect refuses (with a hint) instead of matching
/// differently.
const REFUSED: &[&str] = &[
    "b{1..3}.txt",
    "b[!1].txt",
    "dir/+(file|server).*",
    "!(**/*.tsx|**/*.less)",
    "src/**/",
    "/src/**",
    "",
];

fn oracle() -> Oracle {
    let text = include_str!("../data/picomatch-oracle.json");
    serde_json::from_str(text).expect("oracle parses")
}

#[test]
fn every_oracle_row_matches_exactly_what_picomatch_matches() {
    let oracle = oracle();
    let changes: Vec<Change> = oracle
        .corpus
        .iter()
        .map(|p| Change::new(p.as_str(), Status::Modified))
        .collect();
    let mut failures = Vec::new();
    for row in &oracle.rows {
        let yaml = format!(
            "x:\n  - {}\n",
            serde_json::to_string(&row.pattern).expect("json")
        );
        let filters = match parse(&yaml) {
            Ok(_) if REFUSED.contains(&row.pattern.as_str()) => {
                failures.push(format!("{:?}: accepted, expected a refusal", row.pattern));
                continue;
            }
            Ok(filters) => filters,
            Err(error) => {
                if !REFUSED.contains(&row.pattern.as_str()) {
                    failures.push(format!("{:?}: refused: {error}", row.pattern));
                }
                continue;
            }
        };
        let matcher = Matcher::new(&filters, Quantifier::Some).expect("compiles");
        let matched: Vec<&str> = matcher.matches(&changes).files[0]
            .iter()
            .map(|i| oracle.corpus[i].as_str())
            .collect();
        if matched != row.matches {
            failures.push(format!(
                "{:?}:\n  picomatch:     {:?}\n  change-detect: {:?}",
                row.pattern, row.matches, matched
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(oracle.rows.len() >= 70, "the table stays broad");
    let matching_rows = oracle.rows.iter().filter(|r| !r.matches.is_empty()).count();
    assert!(matching_rows >= 60, "most rows match something");
}
