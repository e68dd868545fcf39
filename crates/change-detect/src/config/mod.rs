//! The filters file: dorny/paths-filter's YAML format, plus an extended form per filter.
//!
//! ```yaml
//! shared: &shared
//!   - crates/shared/**
//! api:                       # a pattern, a list (nested lists from anchors flatten) ...
//!   - *shared
//!   - services/api/**
//! docs:                      # ... or a map of statuses to patterns
//!   added|modified: docs/**
//! worker:                    # extended form (change-detect only)
//!   paths: services/worker/**
//!   exclude: ["**/*.md"]
//!   depends-on: [shared]
//!   predicate-quantifier: ordered
//!   matrix: { dir: services/worker }
//! ```
//!
//! One path from text to filters, each error a position in the tree:
//!
//! ```text
//! text --limits::check_size--> --document::read (yaml-spans within limits::LIMITS,
//!      serde_yaml_ng's refusals)--> Node --read::filters--> ReadFilter (filter + spans)
//!      --check::{names, dependencies}--> Vec<Filter>
//! ```
//!
//! Anchors, aliases and merge keys (`<<`) are expanded by yaml-spans; a node that came through
//! an alias keeps the span where the anchor wrote it, so an error in shared content points
//! there. Scalars and tags are read as serde_yaml_ng read them ([`scalar`]), which this module
//! used before, so the same files are accepted and the same matrix values written.

mod check;
mod document;
pub mod error;
pub mod limits;
mod read;
mod scalar;

pub use error::{ConfigError, FiltersError, Origin};

use crate::filter::Filter;

/// Parses filters text. An empty document means no filters.
pub fn parse(text: &str) -> Result<Vec<Filter>, ConfigError> {
    limits::check_size(text.len())?;
    let root = document::read(text)?;
    let filters = read::filters(&root)?;
    check::names(&filters)?;
    check::dependencies(&filters)?;
    Ok(filters.into_iter().map(|read| read.filter).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Status;
    use crate::filter::{Filter, Quantifier, Rule};

    fn parse_ok(text: &str) -> Vec<Filter> {
        parse(text).expect("valid filters")
    }

    fn parse_err(text: &str) -> ConfigError {
        parse(text).expect_err("invalid filters")
    }

    fn sources(rules: &[Rule]) -> Vec<Vec<&str>> {
        rules
            .iter()
            .map(|r| r.patterns.iter().map(|p| p.source.as_str()).collect())
            .collect()
    }

    #[test]
    fn accepts_dorny_forms_and_flattens_anchors() {
        let filters = parse_ok(
            "shared: &shared\n  - common/**\n  - config/**\n\
             src:\n  - *shared\n  - src/**\n\
             one: 'docs/**'\n\
             changed:\n  - added|Modified: [a/**, b/**]\n  - deleted: c/**\n",
        );
        let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["shared", "src", "one", "changed"]);
        assert_eq!(
            sources(&filters[1].rules),
            [vec!["common/**"], vec!["config/**"], vec!["src/**"]]
        );
        let changed = &filters[3].rules;
        assert_eq!(sources(changed), [vec!["a/**", "b/**"], vec!["c/**"]]);
        let statuses = changed[0].statuses.expect("status rule");
        assert!(statuses.contains(Status::Added) && statuses.contains(Status::Modified));
        assert!(!statuses.contains(Status::Deleted));
    }

    #[test]
    fn status_map_values_accept_anchored_lists() {
        let filters = parse_ok("x: &x [a/**, b/**]\ny:\n  modified: *x\n");
        assert_eq!(sources(&filters[1].rules), [vec!["a/**", "b/**"]]);
    }

    #[test]
    fn extended_form_reads_exclude_dependencies_quantifier_and_matrix() {
        let filters = parse_ok(
            "shared: crates/shared/**\n\
             api:\n  paths: [services/api/**]\n  exclude: ['**/*.md']\n  depends-on: [shared]\n  \
             predicate-quantifier: ordered\n  matrix: {dir: services/api, port: 8080}\n",
        );
        let api = &filters[1];
        assert_eq!(sources(&api.exclude), [vec!["**/*.md"]]);
        assert_eq!(api.depends_on, ["shared"]);
        assert_eq!(api.quantifier, Some(Quantifier::Ordered));
        assert_eq!(api.matrix["dir"], "services/api");
        assert_eq!(api.matrix["port"], 8080);
        assert!(api.in_matrix);
        let shared = parse_ok("shared:\n  paths: x/**\n  matrix: false\n");
        assert!(!shared[0].in_matrix);
    }

    #[test]
    fn empty_document_means_no_filters() {
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("# only a comment\n").is_empty());
    }

    #[test]
    fn unknown_status_names_file_line_column_and_field() {
        let error = parse_err("api:\n  - services/api/**\nweb:\n  - add|modified: web/**\n");
        assert_eq!(error.message, "unknown status `add` in filter `web`");
        assert_eq!((error.line(), error.column()), (Some(4), Some(5)));
        assert_eq!(error.field.as_deref(), Some("web[0].add|modified"));
        assert!(
            error
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("`added`")
        );
        let text = error
            .diagnostic(
                &Origin::File("filters.yaml".into()),
                "api:\n  - services/api/**\nweb:\n  - add|modified: web/**\n",
            )
            .to_text();
        assert!(text.contains("--> filters.yaml:4:5"), "{text}");
        assert!(
            text.contains("4 |   - add|modified: web/**\n  |     ^^^"),
            "{text}"
        );
    }

    #[test]
    fn empty_pattern_is_located() {
        let error = parse_err("api:\n  - services/**\n  - ''\n");
        assert_eq!(error.message, "empty pattern in filter `api`");
        assert_eq!((error.line(), error.column()), (Some(3), Some(5)));
        assert_eq!(error.field.as_deref(), Some("api[1]"));
    }

    #[test]
    fn unsupported_glob_points_at_the_anchor_that_wrote_it() {
        let error = parse_err("base: &base\n  - 'b[!1].txt'\nother:\n  - x/**\n  - *base\n");
        assert_eq!((error.line(), error.column()), (Some(2), Some(6)));
        assert!(error.message.contains("`b[!1].txt`"), "{}", error.message);
    }

    #[test]
    fn yaml_syntax_errors_keep_their_location() {
        let error = parse_err("api:\n  - [unclosed\n");
        assert!(error.message.starts_with("the filters are not valid YAML"));
        assert!(error.line().is_some());
    }

    #[test]
    fn any_name_dorny_accepts_is_accepted_but_outputs_of_our_own_are_reserved() {
        // dorny accepts these; they have no per-filter output (see `Report::set_outputs`).
        let names: Vec<String> = parse_ok("a b: x/**\nmy.service: y/**\n2: z/**\n")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a b", "my.service", "2"]);
        let error = parse_err("changes: x/**\n");
        assert!(error.message.contains("also an output"));
        let error = parse_err("api: x/**\napi_count: y/**\n");
        assert!(error.message.contains("collides"), "{}", error.message);
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn dependencies_must_exist_and_not_cycle() {
        let error = parse_err("a:\n  paths: x/**\n  depends-on: [nope]\n");
        assert_eq!(
            error.message,
            "filter `a` depends on `nope`, which is not a filter"
        );
        assert_eq!((error.line(), error.column()), (Some(3), Some(16)));
        let error = parse_err(
            "a:\n  paths: x/**\n  depends-on: [b]\nb:\n  paths: y/**\n  depends-on: [a]\n",
        );
        assert_eq!(
            error.message,
            "filters depend on each other in a cycle: a -> b -> a"
        );
    }

    #[test]
    fn mixing_status_keys_into_the_extended_form_is_an_error() {
        let error = parse_err("a:\n  paths: x/**\n  added: y/**\n");
        assert_eq!(error.message, "unknown key `added` in filter `a`");
        assert_eq!(error.line(), Some(3));
    }

    #[test]
    fn non_mapping_root_and_empty_filter_are_errors() {
        assert!(
            parse_err("- a/**\n")
                .message
                .contains("must be a YAML mapping")
        );
        let error = parse_err("api:\n");
        assert_eq!(error.message, "filter `api` has no patterns");
        assert_eq!(error.line(), Some(1));
    }

    #[test]
    fn inline_errors_name_the_input_instead_of_a_file() {
        let text = "api:\n  - 'x/+(a)'\n";
        let error = parse(text).expect_err("extglob");
        let diagnostic = error.diagnostic(&Origin::Inline, text);
        assert!(diagnostic.location.is_none());
        assert!(
            diagnostic
                .message
                .ends_with("(line 2, column 6 of the `filters` input)"),
            "{}",
            diagnostic.message
        );
    }

    #[test]
    fn merge_keys_bring_shared_keys_and_written_keys_win() {
        let filters = parse_ok(
            "common: &common\n  paths: a/**\n  matrix: {dir: a}\n\
             api:\n  <<: *common\n  exclude: [x/**]\n\
             web:\n  <<: [*common]\n  paths: w/**\n",
        );
        assert_eq!(sources(&filters[1].rules), [vec!["a/**"]]);
        assert_eq!(sources(&filters[1].exclude), [vec!["x/**"]]);
        assert_eq!(filters[1].matrix["dir"], "a");
        assert_eq!(
            sources(&filters[2].rules),
            [vec!["w/**"]],
            "written `paths` wins"
        );
        assert_eq!(filters[2].matrix["dir"], "a");
    }

    #[test]
    fn an_error_in_merged_content_points_where_the_anchor_wrote_it() {
        // Valid as `common` (a status map), an unknown key once merged into the extended form.
        let error = parse_err("common: &c {added: x/**}\napi:\n  paths: y/**\n  <<: *c\n");
        assert_eq!(error.message, "unknown key `added` in filter `api`");
        assert_eq!((error.line(), error.column()), (Some(1), Some(13)));
        assert_eq!(error.field.as_deref(), Some("api.added"));
        // A cycle through a merged `depends-on`: at the key the anchor wrote.
        let error = parse_err("a: &a\n  paths: x/**\n  depends-on: [b]\nb:\n  <<: *a\n");
        assert_eq!(
            error.message,
            "filters depend on each other in a cycle: b -> b"
        );
        assert_eq!((error.line(), error.column()), (Some(3), Some(3)));
    }

    #[test]
    fn an_error_in_aliased_content_points_where_the_anchor_wrote_it() {
        let error = parse_err("p: &p [nope/**]\nb:\n  paths: y/**\n  depends-on: *p\n");
        assert_eq!(
            error.message,
            "filter `b` depends on `nope/**`, which is not a filter"
        );
        assert_eq!((error.line(), error.column()), (Some(1), Some(8)));
        assert_eq!(error.field.as_deref(), Some("b.depends-on[0]"));
        let error = parse_err("list: &l ['ok/**', 'x/+(a)']\n");
        assert_eq!((error.line(), error.column()), (Some(1), Some(21)));
    }

    #[test]
    fn positions_come_from_the_tree_not_from_searching_the_text() {
        // The word `add` is also written, earlier in the same filter, as a pattern.
        let error = parse_err("api:\n  - \"add\"\n  - add: y/**\n");
        assert_eq!(error.message, "unknown status `add` in filter `api`");
        assert_eq!((error.line(), error.column()), (Some(3), Some(5)));
        // A value with no text to search for (null) is found where it is.
        let error = parse_err("api:\n  - x/**\n  - ~\n");
        assert_eq!(error.message, "`null` in filter `api` is not a pattern");
        assert_eq!((error.line(), error.column()), (Some(3), Some(5)));
        // A name that is not a string has a place too.
        let error = parse_err("api: x/**\n1.5: y/**\n");
        assert_eq!(error.message, "filter name `1.5` is not a string");
        assert_eq!((error.line(), error.column()), (Some(2), Some(1)));
    }

    #[test]
    fn a_value_is_found_after_its_anchor_and_tag() {
        let error = parse_err("my.service: &a1 1.0\n");
        assert_eq!(
            error.message,
            "`1.0` in filter `my.service` is not a pattern"
        );
        assert_eq!((error.line(), error.column()), (Some(1), Some(17)));
        let error = parse_err("api: &p 'x/+(a)'\n");
        assert_eq!((error.line(), error.column()), (Some(1), Some(10)));
        let error = parse_err("api: [&e '']\n");
        assert_eq!(error.message, "empty pattern in filter `api`");
        assert_eq!((error.line(), error.column()), (Some(1), Some(10)));
    }
}
