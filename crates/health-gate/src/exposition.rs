//! The Prometheus text exposition format (comments and timestamps ignored).

use crate::expect::text::excerpt;

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Metric name.
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Parses the Prometheus text exposition format (comments and timestamps ignored).
pub(crate) fn parse_exposition(text: &str) -> Result<Vec<Series>, String> {
    let mut series = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: `{}`", number + 1, excerpt(line, 120));
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| bad("no value"))?;
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let mut consumed = None;
            loop {
                while chars
                    .peek()
                    .is_some_and(|(_, c)| *c == ',' || c.is_whitespace())
                {
                    chars.next();
                }
                match chars.peek() {
                    Some((i, '}')) => {
                        consumed = Some(*i + 1);
                        break;
                    }
                    None => break,
                    _ => {}
                }
                let mut label = String::new();
                while let Some((_, c)) = chars.peek() {
                    if *c == '=' {
                        break;
                    }
                    label.push(*c);
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('=')
                    || chars.next().map(|(_, c)| c) != Some('"')
                {
                    return Err(bad("malformed labels"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(bad("unterminated label value")),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(bad("unterminated label value")),
                    }
                }
                labels.push((label.trim().to_owned(), value));
            }
            let consumed = consumed.ok_or_else(|| bad("unterminated labels"))?;
            rest = &inner[consumed..];
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value_text {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other.parse().map_err(|_| bad("value is not a number"))?,
        };
        series.push(Series {
            name,
            labels,
            value,
        });
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"
    # HELP http_requests_total Requests.
    # TYPE http_requests_total counter
    http_requests_total{code="200",path="/a"} 1000
    http_requests_total{code="503",path="/a"} 10
    http_requests_total{code="500",path="/b"} 5 1712000000000
    process_resident_memory_bytes 1.048576e+08
    weird{label="with \"quote\" and \\ and\nnewline"} +Inf
    "#;

    #[test]
    fn parses_the_exposition_format() {
        let series = parse_exposition(SCRAPE).expect("parses");
        assert_eq!(series.len(), 5);
        assert_eq!(
            series[0].labels,
            [("code".into(), "200".into()), ("path".into(), "/a".into())]
        );
        assert_eq!(series[3].value, 104_857_600.0);
        assert_eq!(series[4].labels[0].1, "with \"quote\" and \\ and\nnewline");
        assert!(series[4].value.is_infinite());
        assert!(parse_exposition("metric{a=\"b\" 1").is_err());
        assert!(parse_exposition("metric one").is_err());
    }
}
