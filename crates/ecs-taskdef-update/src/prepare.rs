//! Preparing a fleet: describe every service, render its task definition, check its ECR
//! images; nothing changes on AWS.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{ApiError, Clock, EcrImage, EcsApi};
use crate::fleet_config::FleetConfig;
use crate::prepared::Prepared;
use crate::retry::retrying;
use crate::service_plan::{Base, ServicePlan};
use crate::sink::Sink;
use crate::taskdef::{self, ImageRef, TaskDefError, TaskEdit};

/// Errors before anything changed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// An AWS call failed.
    #[error("service `{service}`: {source}")]
    Api {
        /// Service.
        service: String,
        /// Cause.
        #[source]
        source: ApiError,
    },
    /// The service does not exist or is not active.
    #[error("service `{service}` in cluster `{cluster}` is {status}")]
    NotActive {
        /// Cluster.
        cluster: String,
        /// Service.
        service: String,
        /// Status.
        status: String,
    },
    /// The task definition cannot be rendered.
    #[error("service `{service}`: {source}")]
    TaskDef {
        /// Service.
        service: String,
        /// Cause.
        #[source]
        source: TaskDefError,
    },
    /// `register: false` with edits, or without a revision to deploy.
    #[error("service `{service}`: {message}")]
    Existing {
        /// Service.
        service: String,
        /// What is wrong.
        message: String,
    },
    /// An ECR image does not exist.
    #[error("service `{service}`: image `{image}` does not exist in ECR")]
    MissingImage {
        /// Service.
        service: String,
        /// Image.
        image: String,
    },
}

/// Describes, renders and (for ECR) checks the images of every service; changes nothing.
pub async fn prepare(
    api: &impl EcsApi,
    clock: &impl Clock,
    plans: &[ServicePlan],
    config: &FleetConfig,
    sink: &mut impl Sink,
) -> Result<Vec<Prepared>, PrepareError> {
    let mut prepared = Vec::new();
    for plan in plans {
        let service = plan.service.clone();
        let api_error = |source| PrepareError::Api {
            service: service.clone(),
            source,
        };
        let before = retrying(clock, config.max_attempts, || {
            api.describe_service(&plan.cluster, &plan.service)
        })
        .await
        .map_err(api_error)?;
        if before.status != "ACTIVE" {
            return Err(PrepareError::NotActive {
                cluster: plan.cluster.clone(),
                service: plan.service.clone(),
                status: before.status,
            });
        }
        let document = match &plan.base {
            Base::Document(document) => document.clone(),
            Base::Current => retrying(clock, config.max_attempts, || {
                api.describe_task_definition(&before.task_definition)
            })
            .await
            .map_err(api_error)?,
            Base::Reference(reference) => retrying(clock, config.max_attempts, || {
                api.describe_task_definition(reference)
            })
            .await
            .map_err(api_error)?,
        };
        let taskdef_error = |source| PrepareError::TaskDef {
            service: service.clone(),
            source,
        };
        let existing = if plan.register {
            None
        } else {
            let existing_error = |message: String| PrepareError::Existing {
                service: service.clone(),
                message,
            };
            if !matches!(plan.base, Base::Reference(_)) {
                return Err(existing_error(
                    "register: false deploys an existing revision: give task-definition as \
                     `family:revision` or an ARN"
                        .into(),
                ));
            }
            if !plan.edits.is_empty() || plan.task_edit != TaskEdit::default() {
                return Err(existing_error(
                    "register: false deploys the revision as it is: remove the container and \
                     role changes, or let ecs-taskdef-update register a new revision"
                        .into(),
                ));
            }
            let arn = arn_of(&document).ok_or_else(|| {
                existing_error("DescribeTaskDefinition returned no taskDefinitionArn".into())
            })?;
            let status = document
                .get("taskDefinition")
                .unwrap_or(&document)
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("ACTIVE");
            if status != "ACTIVE" {
                // AWS refuses to update a service to an INACTIVE revision; say so first.
                return Err(existing_error(format!(
                    "{arn} is {status}: a service cannot be updated to it"
                )));
            }
            Some(arn)
        };
        let base = taskdef::from_describe(&document).map_err(taskdef_error)?;
        let mut rendered =
            taskdef::render(&base, &plan.task_edit, &plan.edits).map_err(taskdef_error)?;
        let edited: Vec<&str> = plan
            .edits
            .iter()
            .filter(|e| e.image.is_some())
            .map(|e| e.name.as_str())
            .collect();
        let mut image_digests = BTreeMap::new();
        let containers = rendered
            .0
            .get_mut("containerDefinitions")
            .and_then(Value::as_array_mut);
        for container in containers.into_iter().flatten() {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let Some(image) = container
                .get("image")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            let reference = ImageRef::parse(&image);
            let Some((registry_id, region)) = reference.ecr() else {
                if edited.contains(&name.as_str()) {
                    sink.line(
                        &plan.service,
                        &format!("{image}: not an ECR image, not checked"),
                    );
                }
                continue;
            };
            let lookup = EcrImage {
                registry_id,
                region,
                repository: reference.repository.clone(),
                reference: reference
                    .digest
                    .clone()
                    .or_else(|| reference.tag.clone())
                    .unwrap_or_else(|| "latest".into()),
            };
            let digest = retrying(clock, config.max_attempts, || api.image_digest(&lookup))
                .await
                .map_err(api_error)?
                .ok_or_else(|| PrepareError::MissingImage {
                    service: plan.service.clone(),
                    image: image.clone(),
                })?;
            sink.line(&plan.service, &format!("{image}: {digest}"));
            if config.pin_digest && edited.contains(&name.as_str()) && reference.digest.is_none() {
                if let Some(object) = container.as_object_mut() {
                    object.insert("image".into(), Value::String(reference.pinned(&digest)));
                }
            }
            image_digests.insert(image, digest);
        }
        prepared.push(Prepared {
            plan: plan.clone(),
            before,
            base,
            rendered,
            image_digests,
            existing,
        });
    }
    Ok(prepared)
}

/// The ARN of a DescribeTaskDefinition answer (or of the bare definition).
pub(crate) fn arn_of(document: &Value) -> Option<String> {
    document
        .get("taskDefinition")
        .unwrap_or(document)
        .get("taskDefinitionArn")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
