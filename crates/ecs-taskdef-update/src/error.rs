//! The error of `ecs-taskdef-update` and its exit class.

use std::path::PathBuf;

use runner_protocol::output::OutputError;
use runner_protocol::{Diagnostic, ErrorClass, Reportable};

use crate::api::ApiError;
use crate::aws::NoRegion;
use crate::plan_error::PlanError;
use crate::prepare::PrepareError;
use crate::taskdef::TaskDefError;

/// Errors of `ecs-taskdef-update`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags or the deploy file.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Before anything changed.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A task definition to render.
    #[error("service `{service}`: {source}")]
    TaskDef {
        /// Service.
        service: String,
        /// Cause.
        #[source]
        source: TaskDefError,
    },
    /// An AWS call outside the deploy.
    #[error("service `{service}`: {source}")]
    Api {
        /// Service.
        service: String,
        /// Cause.
        #[source]
        source: ApiError,
    },
    /// No region.
    #[error(transparent)]
    Region(#[from] NoRegion),
    /// The async runtime.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A rendered file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Outputs.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A rollback did not complete: a service may be on neither revision.
    #[error("{0}")]
    RollbackFailed(String),
    /// The `rollback` command failed.
    #[error("rollback of `{service}` failed: {reason}")]
    RollbackCommand {
        /// Service.
        service: String,
        /// Why.
        reason: String,
    },
}

fn api_class(error: &ApiError) -> ErrorClass {
    match error {
        ApiError::NotFound { .. } | ApiError::Invalid { .. } => ErrorClass::Usage,
        _ => ErrorClass::Infrastructure,
    }
}

impl Reportable for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Plan(_) | Error::TaskDef { .. } | Error::Region(_) => ErrorClass::Usage,
            Error::Prepare(PrepareError::Api { source, .. }) | Error::Api { source, .. } => {
                api_class(source)
            }
            Error::Prepare(_) => ErrorClass::Usage,
            Error::Runtime(_) | Error::Write { .. } => ErrorClass::Infrastructure,
            Error::Output(error) => error.class(),
            Error::RollbackFailed(_) => ErrorClass::RollbackFailed,
            Error::RollbackCommand { .. } => ErrorClass::Infrastructure,
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        if let Error::Plan(PlanError::DeployFile(placed)) = self {
            // Already placed at its file:line:col: an annotation with file, line and col.
            return vec![(**placed).clone()];
        }
        let diagnostic = Diagnostic::from_error(self);
        let hint = match self {
            Error::Prepare(PrepareError::Api {
                source: ApiError::AccessDenied { action, .. },
                ..
            })
            | Error::Api {
                source: ApiError::AccessDenied { action, .. },
                ..
            } => Some(format!(
                "allow `{action}` for the role this job runs as (the IAM policy is in the action's README)"
            )),
            Error::Prepare(PrepareError::TaskDef {
                source: TaskDefError::UnknownField { .. },
                ..
            })
            | Error::TaskDef {
                source: TaskDefError::UnknownField { .. },
                ..
            } => Some(
                "remove the field from the task definition file, or update ecs-taskdef-update if AWS added it".into(),
            ),
            Error::Prepare(PrepareError::MissingImage { .. }) => {
                Some("push the image first, or check the tag".into())
            }
            Error::RollbackFailed(_) => Some(
                "check each service in the ECS console and set its task definition by hand".into(),
            ),
            _ => None,
        };
        vec![match hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiError;
    use crate::prepare::PrepareError;
    use crate::taskdef::TaskDefError;

    #[test]
    fn access_denied_is_infrastructure_and_names_the_iam_action() {
        let error = Error::Prepare(PrepareError::Api {
            service: "processor".into(),
            source: ApiError::AccessDenied {
                action: "ecs:UpdateService".into(),
                message: "User is not authorized".into(),
            },
        });
        assert_eq!(error.class(), ErrorClass::Infrastructure);
        let diagnostic = &error.diagnostics()[0];
        assert_eq!(
            diagnostic.message,
            "service `processor`: access denied for ecs:UpdateService: User is not authorized"
        );
        assert!(
            diagnostic
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("allow `ecs:UpdateService`"))
        );
    }

    #[test]
    fn a_failed_rollback_exits_4_and_a_bad_file_exits_2() {
        assert_eq!(Error::RollbackFailed("x".into()).class().exit().code(), 4);
        let unknown = Error::TaskDef {
            service: "web".into(),
            source: TaskDefError::UnknownField { field: "x".into() },
        };
        assert_eq!(unknown.class().exit().code(), 2);
    }
}
