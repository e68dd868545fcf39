//! The small PromQL subset the scrape source evaluates itself: `metric{label="v",code=~"5.."}`
//! (sum of matching series), `increase(m)`, `rate(m)` over the window, numbers, `/`, `*`,
//! parentheses.

use std::time::Duration;

use crate::exposition::Series;

fn excerpt(text: &str) -> String {
    crate::expect::text::excerpt(text, 120)
}

/// A label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub label: String,
    /// `=`, `!=`, `=~`, `!~`.
    pub op: MatchOp,
    /// Value or regex (anchored).
    pub value: String,
    regex: Option<regex::Regex>,
}

/// Matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl Matcher {
    fn matches(&self, labels: &[(String, String)]) -> bool {
        let value = labels
            .iter()
            .find(|(l, _)| *l == self.label)
            .map_or("", |(_, v)| v.as_str());
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

/// A series selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Metric name.
    pub name: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    fn select<'a>(&'a self, scrape: &'a [Series]) -> impl Iterator<Item = &'a Series> + 'a {
        scrape.iter().filter(move |s| {
            s.name == self.name && self.matchers.iter().all(|m| m.matches(&s.labels))
        })
    }
}

/// A scrape-source expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Number(f64),
    /// Sum of the matching series at the end of the window.
    Instant(Selector),
    /// Sum over matching series of their increase over the window (counter resets handled).
    Increase(Selector),
    /// Increase per second.
    Rate(Selector),
    /// `a / b`
    Div(Box<Expr>, Box<Expr>),
    /// `a * b`
    Mul(Box<Expr>, Box<Expr>),
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.text[self.position..].starts_with(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.position..].starts_with(token) {
            self.position += token.len();
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        let rest = &self.text[self.position..];
        let length = rest
            .char_indices()
            .find(|(i, c)| {
                !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    || (*i == 0 && c.is_ascii_digit())
            })
            .map_or(rest.len(), |(i, _)| i);
        (length > 0).then(|| {
            self.position += length;
            rest[..length].to_owned()
        })
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        loop {
            if self.eat("/") {
                left = Expr::Div(Box::new(left), Box::new(self.term()?));
            } else if self.eat("*") {
                left = Expr::Mul(Box::new(left), Box::new(self.term()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        self.skip_space();
        if self.eat("(") {
            let inner = self.expr()?;
            return if self.eat(")") {
                Ok(inner)
            } else {
                Err("missing `)`".into())
            };
        }
        let rest = &self.text[self.position..];
        let number_length = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
            .unwrap_or(rest.len());
        if number_length > 0 && rest.starts_with(|c: char| c.is_ascii_digit()) {
            let number = rest[..number_length]
                .parse()
                .map_err(|_| format!("`{}` is not a number", &rest[..number_length]))?;
            self.position += number_length;
            return Ok(Expr::Number(number));
        }
        let name = self
            .identifier()
            .ok_or_else(|| format!("unexpected `{}`", excerpt(rest)))?;
        match name.as_str() {
            "increase" | "rate" => {
                if !self.eat("(") {
                    return Err(format!("`{name}` needs `(`"));
                }
                let selector = self.selector_after_name(None)?;
                if self.eat("[") {
                    return Err(format!(
                        "`{name}(...[range])`: the range is the check's `window`; write `{name}({})`",
                        selector.name
                    ));
                }
                if !self.eat(")") {
                    return Err(format!("`{name}(` takes one selector"));
                }
                Ok(if name == "increase" {
                    Expr::Increase(selector)
                } else {
                    Expr::Rate(selector)
                })
            }
            "sum" | "avg" | "max" | "min" | "histogram_quantile" | "irate" | "delta" => Err(
                format!("`{name}()` is PromQL the scrape source does not evaluate"),
            ),
            _ => Ok(Expr::Instant(self.selector_after_name(Some(name))?)),
        }
    }

    fn selector_after_name(&mut self, name: Option<String>) -> Result<Selector, String> {
        let name = match name {
            Some(name) => name,
            None => self.identifier().ok_or("expected a metric name")?,
        };
        let mut matchers = Vec::new();
        if self.eat("{") {
            loop {
                if self.eat("}") {
                    break;
                }
                let label = self.identifier().ok_or("expected a label name")?;
                let op = if self.eat("=~") {
                    MatchOp::Regex
                } else if self.eat("!~") {
                    MatchOp::NotRegex
                } else if self.eat("!=") {
                    MatchOp::NotEqual
                } else if self.eat("=") {
                    MatchOp::Equal
                } else {
                    return Err(format!("expected =, !=, =~ or !~ after `{label}`"));
                };
                self.skip_space();
                if !self.eat("\"") {
                    return Err("label values are double-quoted".into());
                }
                let rest = &self.text[self.position..];
                let end = rest.find('"').ok_or("unterminated label value")?;
                let value = rest[..end].to_owned();
                self.position += end + 1;
                let regex = match op {
                    MatchOp::Regex | MatchOp::NotRegex => Some(
                        regex::Regex::new(&format!("^(?:{value})$"))
                            .map_err(|e| format!("label regex: {e}"))?,
                    ),
                    _ => None,
                };
                matchers.push(Matcher {
                    label,
                    op,
                    value,
                    regex,
                });
                self.eat(",");
            }
        }
        Ok(Selector { name, matchers })
    }
}

/// Parses a scrape-source expression.
pub(crate) fn parse_expr(text: &str) -> Result<Expr, String> {
    let mut parser = Parser { text, position: 0 };
    let expr = parser.expr()?;
    parser.skip_space();
    if parser.position != text.len() {
        return Err(format!(
            "unexpected `{}`",
            excerpt(&text[parser.position..])
        ));
    }
    Ok(expr)
}

/// Evaluates `expr` over a window; `None` when a selector matched no series (no data).
pub(crate) fn evaluate(
    expr: &Expr,
    start: Option<&[Series]>,
    end: &[Series],
    window: Duration,
) -> Option<f64> {
    match expr {
        Expr::Number(n) => Some(*n),
        Expr::Instant(selector) => {
            let values: Vec<f64> = selector.select(end).map(|s| s.value).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        }
        Expr::Increase(selector) | Expr::Rate(selector) => {
            let start = start.unwrap_or(end);
            let mut any = false;
            let mut total = 0.0;
            for series in selector.select(end) {
                any = true;
                let before = start
                    .iter()
                    .find(|s| s.name == series.name && s.labels == series.labels)
                    .map_or(0.0, |s| s.value);
                // A counter that went down was reset: everything it counted since is new.
                total += if series.value >= before {
                    series.value - before
                } else {
                    series.value
                };
            }
            if !any {
                return None;
            }
            Some(match expr {
                Expr::Rate(_) if !window.is_zero() => total / window.as_secs_f64(),
                _ => total,
            })
        }
        Expr::Div(a, b) => {
            let (a, b) = (
                evaluate(a, Some(start.unwrap_or(end)), end, window)?,
                evaluate(b, start, end, window)?,
            );
            // 0/0 (no traffic in the window) is no data, not a ratio of 0.
            (b != 0.0).then(|| a / b)
        }
        Expr::Mul(a, b) => {
            Some(evaluate(a, start, end, window)? * evaluate(b, start, end, window)?)
        }
    }
}

/// The first selector of `expr` that matches no series, by metric name.
pub(crate) fn missing_selector(expr: &Expr, series: &[Series]) -> Option<String> {
    match expr {
        Expr::Number(_) => None,
        Expr::Instant(selector) | Expr::Increase(selector) | Expr::Rate(selector) => selector
            .select(series)
            .next()
            .is_none()
            .then(|| selector.name.clone()),
        Expr::Div(a, b) | Expr::Mul(a, b) => {
            missing_selector(a, series).or_else(|| missing_selector(b, series))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::parse_exposition;

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
    fn error_ratio_over_the_window() {
        let start = parse_exposition(SCRAPE).expect("parses");
        let end_text = SCRAPE
            .replace("} 1000", "} 1190")
            .replace("path=\"/a\"} 10", "path=\"/a\"} 14")
            .replace("path=\"/b\"} 5 ", "path=\"/b\"} 11 ");
        let end = parse_exposition(&end_text).expect("parses");
        let ratio = parse_expr(
            r#"increase(http_requests_total{code=~"5.."}) / increase(http_requests_total)"#,
        )
        .expect("parses");
        // 5xx: +4 +6 = 10 of +200 in all: 5 %.
        let value = evaluate(&ratio, Some(&start), &end, Duration::from_secs(10)).expect("data");
        assert!((value - 0.05).abs() < 1e-12, "{value}");
        let rate = parse_expr("rate(http_requests_total)").expect("parses");
        assert_eq!(
            evaluate(&rate, Some(&start), &end, Duration::from_secs(10)),
            Some(20.0)
        );
    }

    #[test]
    fn counter_resets_and_missing_series() {
        let start = parse_exposition("c 100\n").expect("parses");
        let end = parse_exposition("c 7\n").expect("parses");
        let increase = parse_expr("increase(c)").expect("parses");
        assert_eq!(
            evaluate(&increase, Some(&start), &end, Duration::from_secs(1)),
            Some(7.0)
        );
        let missing = parse_expr("increase(nope)").expect("parses");
        assert_eq!(
            evaluate(&missing, Some(&start), &end, Duration::from_secs(1)),
            None
        );
        let idle = parse_expr("increase(c) / increase(c)").expect("parses");
        assert_eq!(
            evaluate(&idle, Some(&end), &end, Duration::from_secs(1)),
            None,
            "0/0 is no data"
        );
    }

    #[test]
    fn unsupported_promql_is_refused_with_a_pointer() {
        for text in [
            "sum(rate(x[1m]))",
            "increase(x[5m])",
            "x +",
            "x{a=b}",
            "histogram_quantile(0.9, x)",
        ] {
            assert!(parse_expr(text).is_err(), "{text}");
        }
        assert!(parse_expr(r#"process_resident_memory_bytes{job!="x"} * 2"#).is_ok());
    }
}
