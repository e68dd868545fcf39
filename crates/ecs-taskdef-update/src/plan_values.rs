//! The values a service plan is made of, checked the same way whether flags or the deploy file
//! give them: service names, images, bases (a reference or a JSON file), roles, and bounded
//! reads of the files they name.

use std::path::Path;

use serde_json::Value;

use crate::plan_error::PlanError;
use crate::service_plan::{Base, ServicePlan};
use crate::taskdef::{self, ImageEdit, TaskEdit};

pub(crate) fn read(path: &Path, limit: u64) -> Result<String, PlanError> {
    crate::limits::read_text(path, limit).map_err(|error| match error {
        crate::limits::ReadError::Io(source) => PlanError::Read {
            path: path.to_owned(),
            source,
        },
        other => PlanError::Limit {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// ECS service names: 1-255 letters, digits, hyphens and underscores. Checked before use,
/// since `render` writes `<output-dir>/<service>.json`: `../../x` must not leave it.
pub(crate) fn check_service_name(name: &str) -> Result<(), PlanError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(PlanError::ServiceName {
            name: name.escape_debug().to_string(),
        })
    }
}

/// Resolves a base: a path to an existing file (or ending in `.json`) is a document,
/// anything else a reference.
pub(crate) fn base(reference: Option<&str>, relative_to: &Path) -> Result<Base, PlanError> {
    let Some(reference) = reference.filter(|r| !r.is_empty()) else {
        return Ok(Base::Current);
    };
    let path = relative_to.join(reference);
    if reference.ends_with(".json") || (!reference.starts_with("arn:") && path.is_file()) {
        let text = read(&path, crate::limits::MAX_INPUT_FILE_BYTES)?;
        let document: Value =
            serde_json::from_str(&text).map_err(|source| PlanError::Json { path, source })?;
        return Ok(Base::Document(document));
    }
    Ok(Base::Reference(reference.to_owned()))
}

pub(crate) fn image_edit(image: &str) -> ImageEdit {
    if let Some(tag) = image.strip_prefix(':') {
        ImageEdit::Tag(tag.to_owned())
    } else if let Some(digest) = image.strip_prefix('@') {
        ImageEdit::Digest(digest.to_owned())
    } else {
        ImageEdit::Full(image.to_owned())
    }
}

/// The role changes, checked; the error names the field it is about (`task-role-arn`,
/// `execution-role-arn`) and what is wrong.
pub(crate) fn task_edit(
    task_role_arn: Option<&str>,
    execution_role_arn: Option<&str>,
) -> Result<TaskEdit, (&'static str, String)> {
    let task_role_arn = task_role_arn.filter(|a| !a.is_empty());
    let execution_role_arn = execution_role_arn.filter(|a| !a.is_empty());
    for (field, arn) in [
        ("task-role-arn", task_role_arn),
        ("execution-role-arn", execution_role_arn),
    ] {
        if let Some(arn) = arn {
            taskdef::check_role_arn(field, arn).map_err(|message| (field, message))?;
        }
    }
    Ok(TaskEdit {
        task_role_arn: task_role_arn.map(str::to_owned),
        execution_role_arn: execution_role_arn.map(str::to_owned),
    })
}

pub(crate) fn names(services: &[ServicePlan]) -> String {
    services
        .iter()
        .map(|s| s.service.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
