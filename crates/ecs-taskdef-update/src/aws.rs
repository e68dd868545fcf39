//! [`EcsApi`] over `aws-sdk-ecs` and `aws-sdk-ecr`.
//!
//! Task definitions never pass through the SDK's types: DescribeTaskDefinition's raw response
//! body is captured, and RegisterTaskDefinition's request body is replaced (before signing) by
//! our checked JSON. The SDK's own model is older or newer than AWS at any given time; this way
//! it can neither reject a field it does not know nor drop one.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ecs::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_ecs::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_ecs::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_http_client::tls;
use aws_smithy_types::body::SdkBody;
use serde_json::Value;

use crate::api::{
    ApiError, ContainerState, Deployment, EcrImage, EcsApi, LogStream, ServiceEvent, ServiceState,
    StoppedTask, TaskState, UpdateRequest,
};

/// Where to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Region; otherwise the usual sources (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// An emulator or VPC endpoint for every service.
    pub endpoint_url: Option<String>,
}

/// The SDK clients.
#[derive(Debug)]
pub struct Aws {
    ecs: aws_sdk_ecs::Client,
    sdk: aws_config::SdkConfig,
    ecr: RefCell<BTreeMap<String, aws_sdk_ecr::Client>>,
}

/// No region could be found.
#[derive(Debug, thiserror::Error)]
#[error("no AWS region: set --region, AWS_REGION or a profile region")]
pub struct NoRegion;

impl Aws {
    /// Loads credentials (the default chain, web identity included) and the region.
    pub async fn connect(connection: &Connection) -> Result<Self, NoRegion> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &connection.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &connection.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(NoRegion);
        }
        Ok(Self::from_sdk(sdk))
    }

    /// The clients of an SDK configuration loaded elsewhere (tests: fixed credentials).
    pub fn from_sdk(sdk: aws_config::SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(&sdk),
            sdk,
            ecr: RefCell::default(),
        }
    }

    fn ecr(&self, region: &str) -> aws_sdk_ecr::Client {
        let mut clients = self.ecr.borrow_mut();
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_ecr::config::Builder::from(&self.sdk)
                    .region(aws_sdk_ecr::config::Region::new(region.to_owned()))
                    .build();
                aws_sdk_ecr::Client::from_conf(config)
            })
            .clone()
    }
}

/// Classifies an SDK error by its code.
fn classify<E, R>(
    operation: &'static str,
    action: &str,
    error: aws_sdk_ecs::error::SdkError<E, R>,
) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().unwrap_or_default().to_owned();
    let message = error
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| DisplayErrorContext(&error).to_string());
    match code.as_str() {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ApiError::Throttled { operation, message },
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            ApiError::AccessDenied {
                action: action.to_owned(),
                message,
            }
        }
        "ServiceNotFoundException"
        | "ClusterNotFoundException"
        | "RepositoryNotFoundException"
        | "ImageNotFoundException" => ApiError::NotFound { operation, message },
        "ClientException" | "InvalidParameterException" => ApiError::Invalid { operation, message },
        _ => ApiError::Other { operation, message },
    }
}

/// Replaces the serialized request body (before signing, so the signature covers ours).
#[derive(Debug)]
struct ReplaceBody(Arc<Vec<u8>>);

impl Intercept for ReplaceBody {
    fn name(&self) -> &'static str {
        "ReplaceBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.0.as_ref().clone());
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

/// Keeps the raw response body.
#[derive(Debug, Clone, Default)]
struct CaptureBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "CaptureBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            if let Ok(mut slot) = self.0.lock() {
                *slot = Some(bytes.to_vec());
            }
        }
        Ok(())
    }
}

/// The JSON body of a call: the captured body when the SDK parsed it, else, when the SDK's
/// model rejected a successful response (moto's RunTask/DescribeTasks give container `memory`
/// as a number; the model has a string), the raw body kept in the error.
fn raw_answer<O, E, R>(
    sent: Result<O, aws_sdk_ecs::error::SdkError<E, R>>,
    capture: &CaptureBody,
    operation: &'static str,
    action: &str,
) -> Result<Value, ApiError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + RawBody,
{
    match sent {
        Ok(_) => capture.required(operation),
        Err(error) => match error.raw_response().and_then(RawBody::success_json) {
            Some(body) => Ok(body),
            None => Err(classify(operation, action, error)),
        },
    }
}

/// A raw HTTP response whose body can be read when it was a success.
trait RawBody {
    fn success_json(&self) -> Option<Value>;
}

impl RawBody for aws_sdk_ecs::config::http::HttpResponse {
    fn success_json(&self) -> Option<Value> {
        if !self.status().is_success() {
            return None;
        }
        serde_json::from_slice(self.body().bytes()?).ok()
    }
}

fn task_state(task: &Value) -> TaskState {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    TaskState {
        arn: text(task, "taskArn").unwrap_or_default(),
        last_status: text(task, "lastStatus").unwrap_or_default(),
        stop_code: text(task, "stopCode"),
        stopped_reason: text(task, "stoppedReason"),
        containers: task
            .get("containers")
            .and_then(Value::as_array)
            .map(|containers| {
                containers
                    .iter()
                    .map(|c| ContainerState {
                        name: text(c, "name").unwrap_or_default(),
                        exit_code: c
                            .get("exitCode")
                            .and_then(Value::as_i64)
                            .and_then(|e| i32::try_from(e).ok()),
                        reason: text(c, "reason"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl CaptureBody {
    /// The captured body as JSON.
    fn json(&self) -> Option<Value> {
        let bytes = self.0.lock().ok()?.take()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The captured body as JSON, or an error naming the operation.
    fn required(&self, operation: &'static str) -> Result<Value, ApiError> {
        self.json().ok_or_else(|| ApiError::Other {
            operation,
            message: "the response body was not captured or is not JSON".into(),
        })
    }
}

impl EcsApi for Aws {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ServiceState, ApiError> {
        // The raw body too: `deploymentConfiguration.strategy` is newer than this SDK's model.
        let capture = CaptureBody::default();
        let output = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| classify("DescribeServices", "ecs:DescribeServices", e))?;
        let raw = capture.json();
        let raw_service = raw
            .as_ref()
            .and_then(|body| body.get("services")?.get(0))
            .and_then(Value::as_object);
        let strategy = raw_service
            .and_then(|s| s.get("deploymentConfiguration")?.get("strategy")?.as_str())
            .map(str::to_owned);
        let run_config = raw_service
            .map(|s| {
                crate::api::RUN_CONFIG_FIELDS
                    .iter()
                    .filter_map(|k| Some(((*k).to_owned(), s.get(*k)?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let Some(found) = output.services().first() else {
            let reason = output
                .failures()
                .first()
                .and_then(|f| f.reason())
                .unwrap_or("MISSING");
            return Ok(ServiceState {
                status: reason.to_owned(),
                ..ServiceState::default()
            });
        };
        Ok(ServiceState {
            status: found.status().unwrap_or_default().to_owned(),
            task_definition: found.task_definition().unwrap_or_default().to_owned(),
            desired: found.desired_count(),
            running: found.running_count(),
            deployments: found
                .deployments()
                .iter()
                .map(|d| Deployment {
                    id: d.id().unwrap_or_default().to_owned(),
                    status: d.status().unwrap_or_default().to_owned(),
                    task_definition: d.task_definition().unwrap_or_default().to_owned(),
                    desired: d.desired_count(),
                    running: d.running_count(),
                    pending: d.pending_count(),
                    failed_tasks: d.failed_tasks(),
                    rollout_state: d.rollout_state().map(|s| s.as_str().to_owned()),
                    rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                })
                .collect(),
            events: found
                .events()
                .iter()
                .map(|e| ServiceEvent {
                    id: e.id().unwrap_or_default().to_owned(),
                    message: e.message().unwrap_or_default().to_owned(),
                })
                .collect(),
            strategy,
            run_config,
        })
    }

    async fn describe_task_definition(&self, reference: &str) -> Result<Value, ApiError> {
        let capture = CaptureBody::default();
        self.ecs
            .describe_task_definition()
            .task_definition(reference)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| classify("DescribeTaskDefinition", "ecs:DescribeTaskDefinition", e))?;
        let bytes = capture
            .0
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| ApiError::Other {
                operation: "DescribeTaskDefinition",
                message: "the response body was not captured".into(),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Other {
            operation: "DescribeTaskDefinition",
            message: format!("the response is not JSON: {e}"),
        })
    }

    async fn register_task_definition(&self, body: &Value) -> Result<String, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Other {
            operation: "RegisterTaskDefinition",
            message: e.to_string(),
        })?;
        let family = body["family"].as_str().unwrap_or_default();
        // The builder's values only get the request through the SDK's own checks; the body
        // sent is `body`, byte for byte.
        let placeholder = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("placeholder")
            .build();
        let output = self
            .ecs
            .register_task_definition()
            .family(family)
            .container_definitions(placeholder)
            .customize()
            .interceptor(ReplaceBody(Arc::new(bytes)))
            .send()
            .await
            .map_err(|e| {
                classify(
                    "RegisterTaskDefinition",
                    "ecs:RegisterTaskDefinition (and iam:PassRole for its roles)",
                    e,
                )
            })?;
        output
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Other {
                operation: "RegisterTaskDefinition",
                message: "the response has no task definition ARN".into(),
            })
    }

    async fn update_service(&self, request: &UpdateRequest) -> Result<Option<String>, ApiError> {
        let output = self
            .ecs
            .update_service()
            .cluster(&request.cluster)
            .service(&request.service)
            .task_definition(&request.task_definition)
            .force_new_deployment(request.force_new_deployment)
            .set_desired_count(request.desired_count)
            .send()
            .await
            .map_err(|e| classify("UpdateService", "ecs:UpdateService", e))?;
        Ok(output.service().and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .and_then(|d| d.id())
                .map(str::to_owned)
        }))
    }

    async fn stopped_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: usize,
    ) -> Result<Vec<StoppedTask>, ApiError> {
        let listed = self
            .ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .max_results(i32::try_from(limit).unwrap_or(10))
            .send()
            .await
            .map_err(|e| classify("ListTasks", "ecs:ListTasks", e))?;
        let arns: Vec<String> = listed.task_arns().iter().take(limit).cloned().collect();
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let described = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .map_err(|e| classify("DescribeTasks", "ecs:DescribeTasks", e))?;
        Ok(described
            .tasks()
            .iter()
            .map(|t| StoppedTask {
                arn: t.task_arn().unwrap_or_default().to_owned(),
                task_definition: t.task_definition_arn().unwrap_or_default().to_owned(),
                stopped_reason: t.stopped_reason().unwrap_or_default().to_owned(),
                containers: t
                    .containers()
                    .iter()
                    .map(|c| {
                        (
                            c.name().unwrap_or_default().to_owned(),
                            c.exit_code(),
                            c.reason().map(str::to_owned),
                        )
                    })
                    .collect(),
            })
            .collect())
    }

    async fn image_digest(&self, image: &EcrImage) -> Result<Option<String>, ApiError> {
        let id = if image.reference.starts_with("sha256:") {
            aws_sdk_ecr::types::ImageIdentifier::builder().image_digest(&image.reference)
        } else {
            aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(&image.reference)
        }
        .build();
        let result = self
            .ecr(&image.region)
            .describe_images()
            .registry_id(&image.registry_id)
            .repository_name(&image.repository)
            .image_ids(id)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .image_details()
                .first()
                .and_then(|d| d.image_digest())
                .map(str::to_owned)),
            Err(error) if error.code() == Some("ImageNotFoundException") => Ok(None),
            Err(error) => Err(classify("DescribeImages", "ecr:DescribeImages", error)),
        }
    }

    async fn list_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Value, ApiError> {
        let capture = CaptureBody::default();
        self.ecs
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| classify("ListServiceDeployments", "ecs:ListServiceDeployments", e))?;
        capture.required("ListServiceDeployments")
    }

    async fn describe_service_deployment(&self, arn: &str) -> Result<Value, ApiError> {
        let capture = CaptureBody::default();
        self.ecs
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| {
                classify(
                    "DescribeServiceDeployments",
                    "ecs:DescribeServiceDeployments",
                    e,
                )
            })?;
        capture.required("DescribeServiceDeployments")
    }

    async fn stop_service_deployment(&self, arn: &str, stop_type: &str) -> Result<(), ApiError> {
        self.ecs
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(aws_sdk_ecs::types::StopServiceDeploymentStopType::from(
                stop_type,
            ))
            .send()
            .await
            .map_err(|e| classify("StopServiceDeployment", "ecs:StopServiceDeployment", e))?;
        Ok(())
    }

    async fn run_task(&self, body: &Value) -> Result<String, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Other {
            operation: "RunTask",
            message: e.to_string(),
        })?;
        // As for RegisterTaskDefinition: the body sent is `body`, byte for byte; the answer is
        // read from the raw body.
        let capture = CaptureBody::default();
        let sent = self
            .ecs
            .run_task()
            .task_definition(body["taskDefinition"].as_str().unwrap_or_default())
            .customize()
            .interceptor(ReplaceBody(Arc::new(bytes)))
            .interceptor(capture.clone())
            .send()
            .await;
        let answer = raw_answer(
            sent,
            &capture,
            "RunTask",
            "ecs:RunTask (and iam:PassRole for its roles)",
        )?;
        if let Some(task) = answer
            .get("tasks")
            .and_then(|t| t.get(0))
            .and_then(|t| t.get("taskArn"))
            .and_then(Value::as_str)
        {
            return Ok(task.to_owned());
        }
        let reason = answer
            .get("failures")
            .and_then(Value::as_array)
            .map(|failures| {
                failures
                    .iter()
                    .map(|f| {
                        format!(
                            "{}{}",
                            f.get("reason").and_then(Value::as_str).unwrap_or("unknown"),
                            f.get("detail")
                                .and_then(Value::as_str)
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        Err(ApiError::Other {
            operation: "RunTask",
            message: format!("no task started: {reason}"),
        })
    }

    async fn describe_task(&self, cluster: &str, arn: &str) -> Result<Option<TaskState>, ApiError> {
        let capture = CaptureBody::default();
        let sent = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(arn)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        let answer = raw_answer(sent, &capture, "DescribeTasks", "ecs:DescribeTasks")?;
        Ok(answer.get("tasks").and_then(|t| t.get(0)).map(task_state))
    }

    async fn stop_task(&self, cluster: &str, arn: &str, reason: &str) -> Result<(), ApiError> {
        self.ecs
            .stop_task()
            .cluster(cluster)
            .task(arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| classify("StopTask", "ecs:StopTask", e))?;
        Ok(())
    }

    async fn log_tail(&self, stream: &LogStream, limit: u32) -> Result<Vec<String>, ApiError> {
        // Same credentials and endpoint as ECS; the stream's own region when it names one.
        let mut config = aws_sdk_cloudwatchlogs::config::Builder::from(&self.sdk);
        if let Some(region) = &stream.region {
            config = config.region(aws_sdk_cloudwatchlogs::config::Region::new(region.clone()));
        }
        let answer = aws_sdk_cloudwatchlogs::Client::from_conf(config.build())
            .get_log_events()
            .log_group_name(&stream.group)
            .log_stream_name(&stream.stream)
            .start_from_head(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("GetLogEvents", "logs:GetLogEvents", e))?;
        Ok(answer
            .events()
            .iter()
            .filter_map(|e| e.message().map(str::to_owned))
            .collect())
    }
}
