//! Retrying AWS calls that were throttled, with exponential backoff.

use std::time::Duration;

use crate::api::{ApiError, Clock};

/// Calls `call` again while it is throttled, with exponential backoff.
pub(crate) async fn retrying<T, F, Fut>(
    clock: &impl Clock,
    attempts: u32,
    mut call: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut delay = Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(ApiError::Throttled { .. }) if attempt < attempts => {
                clock.sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                attempt += 1;
            }
            other => return other,
        }
    }
}
