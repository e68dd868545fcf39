//! The results of the two phases of a check, below everything that produces or reads them
//! (readiness, observe, metrics probe, baseline, report).

mod observation;
mod readiness;

pub(crate) use observation::{HISTOGRAM_MAX_US, new_histogram};
pub use observation::{LatencySummary, ObservationOutcome, ThresholdOutcome};
pub use readiness::{ReadinessOutcome, ReadyAfter, Stopped};
