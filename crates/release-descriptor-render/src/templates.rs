//! Text templates (systemd units, `config.json`, `.env.*` fragments, a `VERSION` file)
//! rendered with the release values by minijinja in strict mode: an unknown variable is an
//! error, never an empty string.
//!
//! A template is code a pull request can edit, so it runs within limits: at most
//! [`MAX_TEMPLATE_BYTES`] of template, [`FUEL`] engine instructions (loops cannot spin),
//! [`RECURSION_LIMIT`] levels of macro or include recursion, and [`MAX_OUTPUT_BYTES`] of
//! output. A destination that is a symlink, or lies under one, is refused: the result is never
//! written anywhere but the path given.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use runner_protocol::Diagnostic;
use runner_protocol::diagnostic::Snippet;

/// One template to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateJob {
    /// The template file.
    pub source: PathBuf,
    /// Where the result goes.
    pub destination: PathBuf,
}

/// A template that could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A `--template` entry is not `SRC=DEST`.
    #[error("--template `{entry}` must be `SOURCE=DESTINATION`")]
    Spec { entry: String },
    /// The template file is larger than [`MAX_TEMPLATE_BYTES`] or not UTF-8.
    #[error("cannot read template {path}: {reason}")]
    Read {
        /// The template.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The destination is a symlink or lies under one.
    #[error("refusing to write {path}: {link} is a symlink")]
    Symlink {
        /// The destination as given.
        path: PathBuf,
        /// The symlink on the way.
        link: PathBuf,
    },
    /// Reading the template or writing the result failed.
    #[error("cannot {action} {path}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The template is invalid or uses an unknown value.
    #[error("{}", .diagnostic.message)]
    Render {
        /// Rendered with file, line, column and snippet.
        diagnostic: Box<Diagnostic>,
    },
}

impl TemplateError {
    /// The diagnostic to show.
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            TemplateError::Render { diagnostic } => (**diagnostic).clone(),
            other => Diagnostic::from_error(other),
        }
    }
}

/// Parses `SRC=DEST` entries.
pub(crate) fn parse_jobs(entries: &[String]) -> Result<Vec<TemplateJob>, TemplateError> {
    entries
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((source, destination))
                if !source.trim().is_empty() && !destination.trim().is_empty() =>
            {
                Ok(TemplateJob {
                    source: PathBuf::from(source.trim()),
                    destination: PathBuf::from(destination.trim()),
                })
            }
            _ => Err(TemplateError::Spec {
                entry: entry.clone(),
            }),
        })
        .collect()
}

/// Largest template file read (1 MiB).
pub(crate) const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;
/// Engine instructions one template may execute (each loop iteration costs a few): far
/// above any config file's needs, and under a second of work.
pub(crate) const FUEL: u64 = 5_000_000;
/// Levels of macro, include and block recursion (minijinja's own cap is 500).
pub(crate) const RECURSION_LIMIT: usize = 100;
/// Largest rendered output (10 MiB).
pub(crate) const MAX_OUTPUT_BYTES: usize = 10 * 1024 * 1024;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // Templates produce config files, not HTML: no implicit escaping (use `|tojson`).
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// Renders `text` (named `name` in messages) with `context`.
pub(crate) fn render_text(
    name: &str,
    text: &str,
    context: &serde_json::Value,
) -> Result<String, TemplateError> {
    let env = environment();
    let mut output = LimitedOutput::default();
    let result = env
        .template_from_named_str(name, text)
        .and_then(|template| {
            template
                .render_captured_to(context, &mut output)
                .map(|_| ())
        });
    match result {
        Ok(()) => String::from_utf8(output.bytes).map_err(|_| TemplateError::Render {
            diagnostic: Box::new(
                Diagnostic::new("template output is not UTF-8").at(name, None, None),
            ),
        }),
        Err(error) => {
            let mut diagnostic = diagnostic(name, text, &error);
            if output.overflowed {
                diagnostic.message =
                    format!("template output exceeds {MAX_OUTPUT_BYTES} bytes; rendering stopped");
                diagnostic.hint = Some("a config file is far smaller: check the loops".into());
            }
            Err(TemplateError::Render {
                diagnostic: Box::new(diagnostic),
            })
        }
    }
}

/// The rendered text, refusing to grow past [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct LimitedOutput {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for LimitedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn diagnostic(name: &str, text: &str, error: &minijinja::Error) -> Diagnostic {
    let mut message = match error.kind() {
        minijinja::ErrorKind::UndefinedError => {
            "template uses a value the release does not have".to_owned()
        }
        minijinja::ErrorKind::SyntaxError => "template syntax error".to_owned(),
        minijinja::ErrorKind::OutOfFuel => {
            format!("template ran out of fuel ({FUEL} instructions): a loop runs too long")
        }
        _ => format!("template error: {}", error.kind()),
    };
    if let Some(detail) = error.detail() {
        message.push_str(&format!(": {detail}"));
    }
    let expression = error
        .range()
        .and_then(|range| text.get(range))
        .filter(|expression| !expression.contains('\n'));
    if let (minijinja::ErrorKind::UndefinedError, Some(expression)) = (error.kind(), expression) {
        message = format!("template uses `{expression}`, which the release does not define");
    }
    let line = error.line().and_then(|l| u32::try_from(l).ok());
    let mut result = Diagnostic::new(message).at(name, line, None);
    if let (Some(range), Some(line)) = (error.range(), line) {
        let line_start = text[..range.start.min(text.len())]
            .rfind('\n')
            .map_or(0, |at| at + 1);
        let column = text[line_start..range.start.min(text.len())]
            .chars()
            .count()
            + 1;
        let line_text = text[line_start..].lines().next().unwrap_or_default();
        let width = text
            .get(range.clone())
            .map_or(1, |s| s.lines().next().unwrap_or_default().chars().count());
        result = result.at(name, Some(line), u32::try_from(column).ok());
        result.snippet = Some(Snippet {
            text: line_text.to_owned(),
            width,
            label: None,
        });
    }
    if error.kind() == minijinja::ErrorKind::UndefinedError {
        result = result.with_hint(
            "available: release_name, version, tag, platform, frontend (when set), bundles, \
             checkouts, images, git_sha (with --customer-sha or GITHUB_SHA), build_time; \
             use `{% if x is defined %}` for optional values",
        );
    }
    result
}

/// Renders one job to its destination (parent directories are created). The result is
/// written to a temporary file beside the destination and renamed over it, so the final
/// component is never followed; a destination that is a symlink or lies under one is refused.
pub(crate) fn render_job(
    job: &TemplateJob,
    context: &serde_json::Value,
) -> Result<(), TemplateError> {
    let text =
        release_model::limits::read_text(&job.source, MAX_TEMPLATE_BYTES).map_err(|error| {
            match error {
                release_model::limits::BoundedReadError::Io(source) => TemplateError::Io {
                    action: "read template",
                    path: job.source.clone(),
                    source,
                },
                other => TemplateError::Read {
                    path: job.source.clone(),
                    reason: other.to_string(),
                },
            }
        })?;
    let name = job.source.display().to_string();
    let output = render_text(&name, &text, context)?;
    refuse_symlinks(&job.destination)?;
    let write = |path: &Path| -> std::io::Result<()> {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            std::fs::create_dir_all(parent)?;
        }
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let temporary = parent
            .unwrap_or(Path::new("."))
            .join(format!(".{file_name}.{}.tmp", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .and_then(|mut file| std::io::Write::write_all(&mut file, output.as_bytes()))
            .and_then(|()| std::fs::rename(&temporary, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    };
    write(&job.destination).map_err(|source| TemplateError::Io {
        action: "write",
        path: job.destination.clone(),
        source,
    })
}

/// Refuses `destination` when it, or a directory on the way to it inside the working
/// directory (the checkout, where a pull request could plant a link), is a symlink. Outside
/// the working directory (an absolute path elsewhere, e.g. under `RUNNER_TEMP`) only the file
/// itself is checked: the directories above it belong to the machine, not to the repository.
fn refuse_symlinks(destination: &Path) -> Result<(), TemplateError> {
    let is_link =
        |path: &Path| std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let refuse = |link: PathBuf| TemplateError::Symlink {
        path: destination.to_owned(),
        link,
    };
    let working_dir = std::env::current_dir().unwrap_or_default();
    let (mut current, inside) = if destination.is_relative() {
        (PathBuf::new(), Some(destination))
    } else {
        match destination.strip_prefix(&working_dir) {
            Ok(rest) => (working_dir.clone(), Some(rest)),
            Err(_) => (PathBuf::new(), None),
        }
    };
    match inside {
        Some(rest) => {
            for component in rest.components() {
                current.push(component);
                if matches!(component, std::path::Component::Normal(_)) && is_link(&current) {
                    return Err(refuse(current));
                }
            }
        }
        None if is_link(destination) => return Err(refuse(destination.to_owned())),
        None => {}
    }
    Ok(())
}

/// RFC 3339 UTC text for seconds since the Unix epoch (`2026-11-24T09:30:00Z`).
pub(crate) fn rfc3339_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_and_keeps_the_trailing_newline() {
        let context = serde_json::json!({"version": "0.3.2", "platform": {"ref": "v0.3.2"}});
        let out = render_text("VERSION.j2", "{{ version }} {{ platform.ref }}\n", &context)
            .expect("renders");
        assert_eq!(out, "0.3.2 v0.3.2\n");
    }

    #[test]
    fn unknown_values_are_errors_with_a_position() {
        let context = serde_json::json!({"version": "0.3.2"});
        let error = render_text("unit.service.j2", "a\nX={{ versoin }}\n", &context)
            .expect_err("strict mode");
        let diagnostic = error.diagnostic();
        assert_eq!(
            diagnostic.to_text().lines().take(5).collect::<Vec<_>>(),
            [
                "error: template uses `versoin`, which the release does not define",
                " --> unit.service.j2:2:6",
                "  |",
                "2 | X={{ versoin }}",
                "  |      ^^^^^^^"
            ]
        );
    }

    #[test]
    fn missing_attributes_are_errors_too() {
        let context = serde_json::json!({"platform": {"ref": "v1"}});
        assert!(render_text("t", "{{ platform.sha }}", &context).is_err());
        assert!(render_text("t", "{{ frontend.ref }}", &context).is_err());
        let optional = render_text(
            "t",
            "{% if frontend is defined %}{{ frontend.ref }}{% else %}none{% endif %}",
            &context,
        )
        .expect("guarded");
        assert_eq!(optional, "none");
    }

    #[test]
    fn no_html_escaping_in_config_files() {
        let context = serde_json::json!({"name": "a<b>&\"c\""});
        let out = render_text("config.json.j2", "{{ name }} {{ name|tojson }}", &context)
            .expect("renders");
        assert_eq!(out, "a<b>&\"c\" \"a\\u003cb\\u003e\\u0026\\\"c\\\"\"");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let error = render_text("t.j2", "ok\n{% if %}\n", &serde_json::json!({})).expect_err("bad");
        let text = error.diagnostic().to_text();
        assert!(text.starts_with("error: template syntax error"), "{text}");
        assert!(text.contains("t.j2:2"), "{text}");
    }

    #[test]
    fn an_endless_loop_runs_out_of_fuel() {
        // No clock here (a loaded machine makes any bound flaky): 10^10 iterations cannot end
        // in a test's lifetime, so getting the fuel error at all is the proof.
        let error = render_text(
            "spin.j2",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            &serde_json::json!({}),
        )
        .expect_err("10^10 iterations");
        let diagnostic = error.diagnostic();
        assert!(
            diagnostic.message.starts_with("template ran out of fuel"),
            "{diagnostic:?}"
        );
        assert_eq!(
            diagnostic.location.as_ref().map(|l| l.file.as_str()),
            Some("spin.j2")
        );
    }

    #[test]
    fn output_is_capped() {
        // 100,000 x 1,000 bytes = 100 MB, within the fuel: the output cap stops it.
        let error = render_text(
            "big.j2",
            "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
            &serde_json::json!({}),
        )
        .expect_err("100 MB of output");
        let message = error.diagnostic().message;
        assert_eq!(
            message,
            format!("template output exceeds {MAX_OUTPUT_BYTES} bytes; rendering stopped")
        );
        let fits = render_text(
            "ok.j2",
            "{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}",
            &serde_json::json!({}),
        )
        .expect("1 MB is fine");
        assert_eq!(fits.len(), 1_000_000);
    }

    #[test]
    fn deep_macro_recursion_is_an_error() {
        let error = render_text(
            "rec.j2",
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            &serde_json::json!({}),
        )
        .expect_err("endless recursion");
        assert!(
            error.diagnostic().message.contains("recursion"),
            "{:?}",
            error.diagnostic()
        );
    }

    #[test]
    fn template_specs_are_source_equals_destination() {
        let jobs = parse_jobs(&["a.j2=out/a".into(), " b = c ".into()]).expect("valid");
        assert_eq!(jobs[1].source, PathBuf::from("b"));
        assert!(parse_jobs(&["nodest".into()]).is_err());
        assert!(parse_jobs(&["=x".into()]).is_err());
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_512_600), "2026-11-24T09:30:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
