//! The release descriptor (`release.yaml`), shared by `release-descriptor-render` and
//! `bundle-json-gen`: typed model, parsing with spans, and validation that reports every
//! problem at once with file, line, column, field path and a hint.
//!
//! ```text
//! text --yaml_spans::parse--> spanned tree --load--> Document { Release, SpanIndex, problems }
//!                                               --validate--> every problem, as Diagnostics
//! ```

pub mod check;
pub mod limits;
pub mod load;
pub mod model;
pub mod problem;
pub mod props;
pub mod refs;
pub mod validate;
pub mod version;
pub mod yaml11;

use std::path::Path;

pub use check::{CheckError, DescriptorArgs, check_file, show_warnings};
pub use load::{Document, load};
pub use model::{BundleItem, Bundles, ItemKind, Release, RepoPin, Shape};
pub use problem::{FieldPath, Problem, Severity, SourceFile, SpanIndex};
pub use refs::{RefKind, RefLookup, ResolvedRef};
pub use validate::{Checks, LookupError, validate};
pub use version::VersionScheme;

use runner_protocol::Diagnostic;

/// Reading the descriptor failed before it could be parsed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the release descriptor {path}")]
pub struct ReadError {
    /// The path as given.
    pub path: String,
    /// The cause (unreadable, too large, not UTF-8).
    #[source]
    pub source: limits::BoundedReadError,
}

/// Reads and loads a descriptor file (at most [`limits::MAX_DESCRIPTOR_BYTES`]).
pub fn read(path: &Path) -> Result<Document, ReadError> {
    let name = path.display().to_string();
    let text =
        limits::read_text(path, limits::MAX_DESCRIPTOR_BYTES).map_err(|source| ReadError {
            path: name.clone(),
            source,
        })?;
    Ok(load(SourceFile::new(name, text)))
}

/// A descriptor with errors: every error, rendered, plus the warnings seen with them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file} is invalid: {} error(s)", errors.len())]
pub struct Invalid {
    /// The file.
    pub file: String,
    /// The errors, rendered for the runner.
    pub errors: Vec<Diagnostic>,
}

/// The outcome of checking a descriptor: warnings to show, or every error.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The document.
    pub document: Document,
    /// Warnings, rendered.
    pub warnings: Vec<Diagnostic>,
}

/// Splits problems into rendered warnings and errors; `Err` when there is any error.
pub fn into_result(
    document: Document,
    problems: &[Problem],
) -> Result<Checked, (Invalid, Vec<Diagnostic>)> {
    // Shown in source order, so a user can fix the file top to bottom.
    let render = |severity: Severity| -> Vec<Diagnostic> {
        let mut diagnostics: Vec<Diagnostic> = problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| document.source.diagnostic(p, &document.index))
            .collect();
        diagnostics.sort_by_key(|d| {
            d.location
                .as_ref()
                .map(|l| (l.line.unwrap_or(0), l.column.unwrap_or(0)))
        });
        diagnostics
    };
    let errors = render(Severity::Error);
    let warnings = render(Severity::Warning);
    if errors.is_empty() {
        Ok(Checked { document, warnings })
    } else {
        Err((
            Invalid {
                file: document.source.name.clone(),
                errors,
            },
            warnings,
        ))
    }
}
