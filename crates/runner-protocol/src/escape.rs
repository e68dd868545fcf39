//! Escaping for workflow commands, as the runner unescapes them.
//!
//! The runner (actions/runner `ActionCommand.cs`) unescapes `%0D`, `%0A` in command data and
//! additionally `%3A`, `%2C` in properties, with `%25` handled last; so we escape `%` first.

/// Escapes the message part of a workflow command (`::error ...::<data>`).
pub fn escape_data(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a property value of a workflow command (`file=<property>,title=<property>`).
pub fn escape_property(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' => out.push_str("%3A"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's own unescaping, used to prove round trips.
    fn runner_unescape(value: &str, property: bool) -> String {
        let mut s = value.replace("%0D", "\r").replace("%0A", "\n");
        if property {
            s = s.replace("%3A", ":").replace("%2C", ",");
        }
        s.replace("%25", "%")
    }

    const HOSTILE: &[&str] = &[
        "",
        "plain",
        "100%",
        "%0A literal percent-escape",
        "%250A double",
        "line1\nline2",
        "crlf\r\nend",
        "::error::injected",
        "a:b,c",
        "\n::stop-commands::x\n",
        "ünïcödé ✓",
    ];

    #[test]
    fn data_escapes_percent_cr_lf_only() {
        let cases = [
            ("a%b", "a%25b"),
            ("a\nb", "a%0Ab"),
            ("a\rb", "a%0Db"),
            ("a:b,c", "a:b,c"),
            ("%0A", "%250A"),
            ("::warning::x", "::warning::x"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_data(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn property_escapes_colon_and_comma_too() {
        let cases = [
            ("src/a:b.rs", "src/a%3Ab.rs"),
            ("a,b", "a%2Cb"),
            ("t%\n", "t%25%0A"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_property(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn escaped_values_never_contain_raw_newlines_and_round_trip() {
        for value in HOSTILE {
            let data = escape_data(value);
            let property = escape_property(value);
            assert!(!data.contains(['\n', '\r']), "{value:?}");
            assert!(!property.contains(['\n', '\r', ':', ',']), "{value:?}");
            assert_eq!(runner_unescape(&data, false), *value);
            assert_eq!(runner_unescape(&property, true), *value);
        }
    }

    #[test]
    fn very_long_values_escape_completely() {
        let value = "%\n".repeat(100_000);
        let escaped = escape_data(&value);
        assert_eq!(escaped.len(), 6 * 100_000);
        assert_eq!(runner_unescape(&escaped, false), value);
    }
}
