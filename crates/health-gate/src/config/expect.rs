//! Expectations as written, resolved into [`crate::expect`] values.

use crate::expect::json::{JsonAssertion, JsonExpectation};
use crate::expect::text::TextExpect;

use super::error::{ConfigError, config_error};
use super::file::{JsonAssertionConfig, TextExpectConfig};

pub(crate) fn resolve_json(
    assertions: &[JsonAssertionConfig],
    field: &str,
) -> Result<Vec<JsonAssertion>, ConfigError> {
    assertions
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let field = format!("{field}[{index}]");
            let path = serde_json_path::JsonPath::parse(&a.path).map_err(|e| {
                config_error(
                    format!("{field}.path"),
                    format!("`{}` is not a JSONPath: {e}", a.path),
                )
            })?;
            let expectation = match (&a.equals, &a.one_of, a.exists) {
                (Some(value), None, None) => JsonExpectation::Equals(value.clone()),
                (None, Some(values), None) => JsonExpectation::OneOf(values.clone()),
                (None, None, Some(exists)) => JsonExpectation::Exists(exists),
                _ => {
                    return Err(config_error(
                        field,
                        "a JSON assertion has exactly one of `equals`, `in`, `exists`",
                    ));
                }
            };
            Ok(JsonAssertion {
                path_text: a.path.clone(),
                path,
                expectation,
            })
        })
        .collect()
}

pub(crate) fn resolve_text(
    config: Option<&TextExpectConfig>,
    field: &str,
) -> Result<TextExpect, ConfigError> {
    let Some(config) = config else {
        return Ok(TextExpect::default());
    };
    let regex = config
        .regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| config_error(format!("{field}.regex"), e.to_string()))?;
    Ok(TextExpect {
        contains: config.contains.clone(),
        regex,
        json: resolve_json(&config.json, &format!("{field}.json"))?,
    })
}
