//! The cloudwatch metrics source: one GetMetricData call (paged) for every rule of a check,
//! over the `window` ending now, one datapoint per `period`, combined per statistic. The
//! credentials and region come the way ecs-taskdef-update gets them: the default AWS chain
//! (environment, web identity, profile, container and instance roles), HTTPS on rustls+ring.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::config::Region;
use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StandardUnit, StatusCode,
};
use aws_smithy_http_client::tls;
use tokio::sync::OnceCell;

use crate::config::{CloudWatchMetric, CloudWatchSource};
use crate::failure::{Failure, FailureKind, classify_connect_error, error_chain};

/// Pages of one GetMetricData call read at most (each holds up to 100,800 datapoints).
const MAX_PAGES: usize = 20;

#[derive(Debug)]
pub(crate) struct CloudWatchReader {
    source: CloudWatchSource,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    client: OnceCell<aws_sdk_cloudwatch::Client>,
}

impl CloudWatchReader {
    /// The client is made at the first call (loading credentials may take a request).
    pub(crate) fn new(
        source: &CloudWatchSource,
        connect_timeout: Duration,
        attempt_timeout: Duration,
    ) -> Self {
        Self {
            source: source.clone(),
            connect_timeout,
            attempt_timeout,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&aws_sdk_cloudwatch::Client, Failure> {
        self.client
            .get_or_try_init(|| async {
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https();
                let timeouts = aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_timeout(self.attempt_timeout)
                    .build();
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(http)
                    .timeout_config(timeouts);
                if let Some(region) = &self.source.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some(url) = &self.source.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let sdk = loader.load().await;
                if sdk.region().is_none() {
                    return Err(Failure::new(
                        FailureKind::Io,
                        "no AWS region: set `metrics.cloudwatch.region`, AWS_REGION or a profile region",
                    ));
                }
                Ok(aws_sdk_cloudwatch::Client::new(&sdk))
            })
            .await
    }

    /// The value of every metric over the `window` ending now; `None` where CloudWatch
    /// returned no datapoint.
    pub(crate) async fn values(
        &self,
        metrics: &[&CloudWatchMetric],
        window: Duration,
    ) -> Result<Vec<Option<f64>>, Failure> {
        let client = self.client().await?;
        let end = SystemTime::now();
        let start = end.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        let period = i32::try_from(self.source.period.as_secs()).unwrap_or(i32::MAX);
        let queries: Vec<MetricDataQuery> = metrics
            .iter()
            .enumerate()
            .map(|(index, metric)| query(index, metric, period))
            .collect();
        let mut collected = vec![Vec::new(); metrics.len()];
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let output = client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from(start))
                .end_time(DateTime::from(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            for result in output.metric_data_results() {
                let index = result
                    .id()
                    .and_then(|id| id.strip_prefix('m'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|index| *index < metrics.len());
                let Some(index) = index else { continue };
                if let Some(StatusCode::InternalError | StatusCode::Forbidden) =
                    result.status_code()
                {
                    let messages = result
                        .messages()
                        .iter()
                        .filter_map(|m| m.value())
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(Failure::new(
                        FailureKind::Status,
                        format!(
                            "GetMetricData could not read `{}`: {messages}",
                            metrics[index].display()
                        ),
                    ));
                }
                collected[index].extend_from_slice(result.values());
            }
            token = output.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(metrics
            .iter()
            .zip(collected)
            .map(|(metric, values)| metric.stat.combine(&values))
            .collect())
    }
}

fn query(index: usize, metric: &CloudWatchMetric, period: i32) -> MetricDataQuery {
    let dimensions = metric
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    let stat = MetricStat::builder()
        .metric(
            Metric::builder()
                .namespace(&metric.namespace)
                .metric_name(&metric.name)
                .set_dimensions(Some(dimensions))
                .build(),
        )
        .period(period)
        .stat(metric.stat.as_str())
        .set_unit(metric.unit.as_deref().map(StandardUnit::from))
        .build();
    MetricDataQuery::builder()
        .id(format!("m{index}"))
        .metric_stat(stat)
        .return_data(true)
        .build()
}

/// An error of the call: AWS's answer (denied, throttled, invalid) is `status`; a timeout is
/// `timeout`; not reaching AWS is classified like any connection.
fn classify<E, R>(error: SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match &error {
        SdkError::ServiceError(_) => Failure::new(
            FailureKind::Status,
            format!(
                "GetMetricData: {}: {}",
                error.code().unwrap_or("error"),
                error.message().unwrap_or("no message")
            ),
        ),
        SdkError::TimeoutError(_) => Failure::new(
            FailureKind::Timeout,
            format!("GetMetricData: {}", DisplayErrorContext(&error)),
        ),
        SdkError::DispatchFailure(_) => {
            let kind = match std::error::Error::source(&error) {
                Some(source) => classify_connect_error(source),
                None => FailureKind::Io,
            };
            Failure::new(kind, format!("GetMetricData: {}", error_chain(&error)))
        }
        _ => Failure::new(
            FailureKind::Io,
            format!("GetMetricData: {}", DisplayErrorContext(&error)),
        ),
    }
}
