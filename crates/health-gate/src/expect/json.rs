//! JSONPath assertions on a JSON value.

use crate::failure::{Failure, FailureKind};

/// A compiled JSONPath assertion.
#[derive(Debug, Clone)]
pub struct JsonAssertion {
    /// The path as written.
    pub path_text: String,
    /// Compiled path.
    pub path: serde_json_path::JsonPath,
    /// What must hold.
    pub expectation: JsonExpectation,
}

/// What a JSONPath assertion requires.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpectation {
    /// Equal to.
    Equals(serde_json::Value),
    OneOf(Vec<serde_json::Value>),
    /// Exists (true) or is absent (false).
    Exists(bool),
}

/// Checks JSONPath assertions against a document.
pub(crate) fn check_json(
    assertions: &[JsonAssertion],
    value: &serde_json::Value,
) -> Result<(), Failure> {
    for assertion in assertions {
        let found = assertion.path.query(value).all();
        let failure = |detail: String| {
            Err(Failure::new(
                FailureKind::Assertion,
                format!("{}: {detail}", assertion.path_text),
            ))
        };
        match &assertion.expectation {
            JsonExpectation::Exists(true) if found.is_empty() => return failure("missing".into()),
            JsonExpectation::Exists(false) if !found.is_empty() => {
                return failure("present".into());
            }
            JsonExpectation::Exists(_) => {}
            JsonExpectation::Equals(expected) => match found.first() {
                Some(actual) if *actual == expected => {}
                Some(actual) => return failure(format!("is {actual}, expected {expected}")),
                None => return failure(format!("missing, expected {expected}")),
            },
            JsonExpectation::OneOf(options) => match found.first() {
                Some(actual) if options.contains(actual) => {}
                Some(actual) => {
                    return failure(format!(
                        "is {actual}, expected one of {}",
                        serde_json::Value::Array(options.clone())
                    ));
                }
                None => return failure("missing".into()),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(path: &str, expectation: JsonExpectation) -> Vec<JsonAssertion> {
        vec![JsonAssertion {
            path_text: path.to_owned(),
            path: serde_json_path::JsonPath::parse(path).expect("a JSONPath"),
            expectation,
        }]
    }

    #[test]
    fn json_assertions_report_what_was_found() {
        let doc = json!({"status": "ok", "checks": {"db": "degraded"}});
        let equals = |path, value| one(path, JsonExpectation::Equals(value));
        assert!(check_json(&equals("$.status", json!("ok")), &doc).is_ok());
        let either = JsonExpectation::OneOf(vec![json!("ok"), json!("degraded")]);
        assert!(check_json(&one("$.checks.db", either), &doc).is_ok());
        let error = check_json(&equals("$.status", json!("down")), &doc).expect_err("mismatch");
        assert_eq!(error.detail, "$.status: is \"ok\", expected \"down\"");
        let error = check_json(&one("$.missing", JsonExpectation::Exists(true)), &doc)
            .expect_err("missing");
        assert_eq!(error.kind, FailureKind::Assertion);
        assert!(check_json(&one("$.missing", JsonExpectation::Exists(false)), &doc).is_ok());
    }
}
