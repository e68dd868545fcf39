//! Built-in defaults.

use std::time::Duration;

pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Readiness interval.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);
/// Readiness deadline.
pub(super) const DEADLINE: Duration = Duration::from_secs(60);
/// Backoff cap.
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(5);
/// Body limit.
pub(super) const MAX_BODY: u64 = 64 * 1024;
/// Observation requests.
pub(super) const REQUESTS: u64 = 50;
/// Observation concurrency.
pub(super) const CONCURRENCY: u32 = 5;
/// Warm-up samples.
pub(super) const WARMUP: u64 = 1;
/// Error-rate limit (the seeds' runbooks roll back above 5 %).
pub(super) const ERROR_RATE: &str = "<= 5%";
/// SSE idle timeout.
pub(super) const SSE_IDLE: Duration = Duration::from_secs(15);
/// Redirect limit.
pub(super) const MAX_REDIRECTS: usize = 5;
