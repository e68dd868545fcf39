//! The JSON text every form carries, written so that no reader of those forms changes it.
//!
//! Inside a JSON string, four characters are written as `\u` escapes: `'` (`\u0027`), `$`
//! (`\u0024`), `\` (`\u005c`) and every control character. The value is the same JSON for
//! every JSON parser; the text then holds no `'` (it can sit between single quotes in a
//! `.env` file or a shell script), no `$` (python-dotenv expands `${VAR}` even inside single
//! quotes, python-dotenv 1.1.1 `main.py` `resolve_variables`), and no `\\` or `\'` pair
//! (python-dotenv decodes both inside single quotes, `parser.py` `_single_quote_escapes`):
//! the only backslashes left start `\"`, `\n`, `\t`, `\r`, `\b`, `\f` or `\u`, which none
//! of sh, bash, compose v2 or python-dotenv touch in a single-quoted value.

use std::fmt::Write as _;

use serde_json::Value;

/// Writes `text` as a JSON string literal, with the escapes above.
fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\u005c"),
            '\'' => out.push_str("\\u0027"),
            '$' => out.push_str("\\u0024"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn newline(out: &mut String, pretty: bool, depth: usize) {
    if pretty {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
}

fn write(out: &mut String, value: &Value, pretty: bool, depth: usize) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&value.to_string()),
        Value::String(text) => string(out, text),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                write(out, item, pretty, depth + 1);
            }
            newline(out, pretty, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (position, (key, item)) in map.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                string(out, key);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write(out, item, pretty, depth + 1);
            }
            newline(out, pretty, depth);
            out.push('}');
        }
    }
}

/// Compact or pretty (two-space) JSON text of `value`, with the escapes above.
pub(crate) fn json_text(value: &Value, pretty: bool) -> String {
    let mut out = String::new();
    write(&mut out, value, pretty, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_dollars_and_backslashes_become_unicode_escapes() {
        let value =
            serde_json::json!({"name": "Bob's ${PATH} $HOME \\ \\' \"q\" \n\t\u{1}\u{7f} é 😀"});
        let text = json_text(&value, false);
        assert_eq!(
            text,
            r#"{"name":"Bob\u0027s \u0024{PATH} \u0024HOME \u005c \u005c\u0027 \"q\" \n\t\u0001\u007f é 😀"}"#
        );
        for forbidden in ["'", "$", "\\\\", "\\'"] {
            assert!(!text.contains(forbidden), "{forbidden} in {text}");
        }
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), value);
    }

    #[test]
    fn pretty_and_compact_are_the_same_value_and_keep_key_order() {
        let value = serde_json::json!({"z": 1, "a": [true, null, 1.5, {}], "m": {"k": []}});
        let compact = json_text(&value, false);
        assert_eq!(compact, r#"{"z":1,"a":[true,null,1.5,{}],"m":{"k":[]}}"#);
        let pretty = json_text(&value, true);
        assert_eq!(serde_json::from_str::<Value>(&pretty).expect("json"), value);
        assert_eq!(
            pretty,
            serde_json::to_string_pretty(&value).expect("serde pretty"),
            "the same layout as serde_json's pretty printer"
        );
    }
}
