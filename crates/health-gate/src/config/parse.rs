//! Reading the gate file's YAML into the [`GateFile`] model.

use super::file::GateFile;

/// A gate file that is not valid YAML for the model, or nested too deep.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// serde_yaml_ng's error (it carries its location).
    #[error(transparent)]
    Yaml(#[from] serde_yaml_ng::Error),
    /// Nested deeper than [`crate::limits::MAX_YAML_DEPTH`].
    #[error("{}", .0.to_string().split(" at line ").next().unwrap_or_default())]
    TooDeep(#[from] crate::limits::TooDeep),
}

impl ParseError {
    /// 1-based line and column.
    pub fn location(&self) -> Option<(u32, u32)> {
        let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match self {
            ParseError::Yaml(error) => error
                .location()
                .map(|l| (number(l.line()), number(l.column()))),
            ParseError::TooDeep(deep) => Some((number(deep.line), number(deep.column))),
        }
    }
}

impl GateFile {
    /// Parses YAML text; errors carry line and column. YAML nested deeper than
    /// [`crate::limits::MAX_YAML_DEPTH`] is refused before serde_yaml_ng sees it.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        crate::limits::check_yaml_depth(text)?;
        Ok(serde_yaml_ng::from_str(text)?)
    }
}
