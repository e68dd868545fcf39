//! What the readiness phase of one check found.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::failure::{Failure, FailureKind};

/// Why readiness stopped without success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// The deadline passed.
    Deadline,
    /// A fatal failure kind occurred.
    Fatal,
    /// The gate was cancelled.
    Cancelled,
}

/// When the target became ready, as far as polling can tell: after `not_before` (the start of
/// the last failed attempt; `None` when the first attempt already succeeded) and by `by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReadyAfter {
    /// Milliseconds after the gate started.
    #[serde(with = "millis_option")]
    pub not_before: Option<Duration>,
    /// Milliseconds after the gate started.
    #[serde(with = "millis")]
    pub by: Duration,
}

/// The readiness result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadinessOutcome {
    /// Reached the success threshold.
    pub ready: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Readiness bracket when ready.
    pub ready_after: Option<ReadyAfter>,
    /// Why it stopped when not ready.
    pub stopped: Option<Stopped>,
    /// The last failure seen (when not ready, the reason).
    pub last_failure: Option<Failure>,
    /// Failed attempts per kind.
    pub failures: BTreeMap<FailureKind, u32>,
}

mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
    }
}

mod millis_option {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}
