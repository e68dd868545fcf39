//! Input parsing with GitHub's rules, usable as clap value parsers.

/// The boolean spellings `@actions/core`'s `getBooleanInput` accepts; nothing else is a boolean.
pub const BOOLEAN_SPELLINGS: &[&str] = &["true", "True", "TRUE", "false", "False", "FALSE"];

/// Parses a boolean input exactly like GitHub (YAML 1.2 core schema booleans).
///
/// Use as `#[arg(value_parser = runner_protocol::input::parse_bool)]`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        other => Err(format!(
            "`{other}` is not a boolean; use one of {}",
            BOOLEAN_SPELLINGS.join(", ")
        )),
    }
}

/// Splits a multi-line input into items: one per line, trimmed, blank lines dropped
/// (like `getMultilineInput`). Windows line endings are accepted.
pub fn parse_lines(value: &str) -> Vec<String> {
    value
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A multi-line list input (hosts, patterns, `KEY=VALUE` pairs).
///
/// From the command line it may be given several times (`--host a --host b`); from an
/// environment variable or action input it is one value with one item per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineList(pub Vec<String>);

impl std::str::FromStr for LineList {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(parse_lines(value)))
    }
}

impl LineList {
    /// Flattens the values of a repeated flag into one list.
    pub fn flatten(lists: impl IntoIterator<Item = LineList>) -> Vec<String> {
        lists.into_iter().flat_map(|list| list.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_githubs_boolean_spellings() {
        for spelling in ["true", "True", "TRUE"] {
            assert_eq!(parse_bool(spelling), Ok(true));
        }
        for spelling in ["false", "False", "FALSE"] {
            assert_eq!(parse_bool(spelling), Ok(false));
        }
    }

    #[test]
    fn rejects_other_boolean_lookalikes_with_the_valid_list() {
        for spelling in ["yes", "no", "1", "0", "on", "tRUE", " true", "true\n", ""] {
            let error = parse_bool(spelling).expect_err(spelling);
            assert!(
                error.contains("true, True, TRUE, false, False, FALSE"),
                "{error}"
            );
        }
    }

    #[test]
    fn multiline_lists_drop_blank_lines_and_trim() {
        let value = "\n  a  \r\n\n b\n\t\nc";
        assert_eq!(parse_lines(value), ["a", "b", "c"]);
        assert!(parse_lines("\n\n   \n").is_empty());
    }

    #[test]
    fn repeated_line_lists_flatten_in_order() {
        let lists = ["a\nb", "", "c"].map(|s| s.parse::<LineList>().unwrap_or_default());
        assert_eq!(LineList::flatten(lists), ["a", "b", "c"]);
    }
}
