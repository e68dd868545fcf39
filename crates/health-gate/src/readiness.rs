//! Phase 1: poll until `success_threshold` consecutive successes, or fail at the deadline.
//!
//! Attempts start at a fixed rate (`interval` between starts, not after ends), so detection
//! lags readiness by at most one interval plus one attempt; backoff, when configured, grows the
//! interval after failures up to `max_interval`. Each attempt is bounded by the attempt timeout
//! and by what is left of the deadline, and is cancelled when it runs over: a hung attempt can
//! never stall the gate.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Readiness;
use crate::failure::{Failure, FailureKind};
use crate::outcome::{ReadinessOutcome, ReadyAfter, Stopped};
use crate::probe::Sample;

/// One attempt of a check, as the phases see it.
pub(crate) trait Attempt: Send + Sync + 'static {
    /// Runs one attempt.
    fn attempt(&self) -> impl std::future::Future<Output = Result<Sample, Failure>> + Send;
}

/// Polls `target` until ready, the deadline (counted from `gate_start`), or a fatal failure.
pub(crate) async fn wait_ready<A: Attempt>(
    readiness: &Readiness,
    attempt_timeout: Duration,
    gate_start: Instant,
    target: &A,
) -> ReadinessOutcome {
    let deadline = gate_start + readiness.deadline;
    let mut outcome = ReadinessOutcome {
        ready: false,
        attempts: 0,
        ready_after: None,
        stopped: None,
        last_failure: None,
        failures: BTreeMap::new(),
    };
    tokio::time::sleep_until((gate_start + readiness.initial_delay).min(deadline)).await;
    let mut interval = readiness.interval;
    let mut streak = 0u32;
    let mut last_failed_start: Option<Instant> = None;
    loop {
        let attempt_start = Instant::now();
        if attempt_start >= deadline {
            outcome.stopped = Some(Stopped::Deadline);
            return outcome;
        }
        let budget = attempt_timeout.min(deadline - attempt_start);
        let result = match tokio::time::timeout(budget, target.attempt()).await {
            Ok(result) => result,
            // Cut by the deadline rather than by its own timeout: the gate is over, and the
            // last real failure (refused, no event, ...) stays the reason reported.
            Err(_) if budget < attempt_timeout && outcome.last_failure.is_some() => {
                outcome.attempts += 1;
                outcome.stopped = Some(Stopped::Deadline);
                return outcome;
            }
            Err(_) => Err(Failure::new(
                FailureKind::Timeout,
                format!("no result within {}", humantime::format_duration(budget)),
            )),
        };
        outcome.attempts += 1;
        match result {
            Ok(_) => {
                streak += 1;
                interval = readiness.interval;
                if streak >= readiness.success_threshold {
                    outcome.ready = true;
                    outcome.ready_after = Some(ReadyAfter {
                        not_before: last_failed_start.map(|t| t - gate_start),
                        by: Instant::now() - gate_start,
                    });
                    return outcome;
                }
            }
            Err(failure) => {
                streak = 0;
                last_failed_start = Some(attempt_start);
                *outcome.failures.entry(failure.kind).or_default() += 1;
                let fatal = readiness.fatal.contains(&failure.kind);
                outcome.last_failure = Some(failure);
                if fatal {
                    outcome.stopped = Some(Stopped::Fatal);
                    return outcome;
                }
                interval = interval
                    .mul_f64(readiness.backoff_multiplier)
                    .min(readiness.max_interval.max(readiness.interval));
            }
        }
        let next = attempt_start + jittered(interval, readiness.jitter);
        if next >= deadline {
            // No attempt can start before the deadline: say so now rather than sleep to it.
            tokio::time::sleep_until(deadline).await;
            outcome.stopped = Some(Stopped::Deadline);
            return outcome;
        }
        tokio::time::sleep_until(next).await;
    }
}

fn jittered(interval: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return interval;
    }
    // Uniform in [interval * (1 - jitter), interval * (1 + jitter)].
    let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
    interval.mul_f64(factor.max(0.0))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use super::*;

    /// A target that answers from a script: each entry is (delay, result).
    pub(crate) struct Scripted {
        pub(crate) steps: Mutex<std::collections::VecDeque<(Duration, Result<(), FailureKind>)>>,
        pub(crate) starts: Mutex<Vec<Instant>>,
    }

    impl Scripted {
        pub(crate) fn new(steps: Vec<(Duration, Result<(), FailureKind>)>) -> Self {
            Self {
                steps: Mutex::new(steps.into()),
                starts: Mutex::new(Vec::new()),
            }
        }
    }

    impl Attempt for Scripted {
        async fn attempt(&self) -> Result<Sample, Failure> {
            self.starts.lock().expect("lock").push(Instant::now());
            let step = self.steps.lock().expect("lock").pop_front();
            let (delay, result) = step.unwrap_or((Duration::ZERO, Ok(())));
            tokio::time::sleep(delay).await;
            result
                .map(|()| Sample { latency: delay })
                .map_err(|kind| Failure::new(kind, "scripted"))
        }
    }

    pub(crate) fn readiness(interval_ms: u64, threshold: u32, deadline_ms: u64) -> Readiness {
        Readiness {
            initial_delay: Duration::ZERO,
            interval: Duration::from_millis(interval_ms),
            backoff_multiplier: 1.0,
            max_interval: Duration::from_secs(5),
            jitter: 0.0,
            success_threshold: threshold,
            deadline: Duration::from_millis(deadline_ms),
            fatal: BTreeSet::from([FailureKind::GrpcUnimplemented]),
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn passes_after_refusals_at_a_fixed_rate_and_brackets_readiness() {
        let target = Scripted::new(vec![
            (MS(0), Err(FailureKind::Refused)),
            (MS(0), Err(FailureKind::Refused)),
            (MS(30), Ok(())),
        ]);
        let start = Instant::now();
        let outcome = wait_ready(&readiness(100, 1, 5000), MS(2000), start, &target).await;
        assert!(outcome.ready);
        assert_eq!(outcome.attempts, 3);
        let bracket = outcome.ready_after.expect("bracket");
        assert_eq!(bracket.not_before, Some(MS(100)));
        assert_eq!(bracket.by, MS(230));
        let starts: Vec<Duration> = target
            .starts
            .lock()
            .expect("lock")
            .iter()
            .map(|t| *t - start)
            .collect();
        assert_eq!(starts, [MS(0), MS(100), MS(200)]);
        assert_eq!(outcome.failures.get(&FailureKind::Refused), Some(&2));
    }

    #[tokio::test(start_paused = true)]
    async fn flapping_never_reaches_two_consecutive_successes() {
        let steps = (0..40)
            .map(|i| {
                (
                    MS(0),
                    if i % 2 == 0 {
                        Ok(())
                    } else {
                        Err(FailureKind::Status)
                    },
                )
            })
            .collect();
        let target = Scripted::new(steps);
        let outcome = wait_ready(&readiness(100, 2, 2000), MS(500), Instant::now(), &target).await;
        assert!(!outcome.ready);
        assert_eq!(outcome.stopped, Some(Stopped::Deadline));
        assert_eq!(
            outcome.last_failure.expect("failure").kind,
            FailureKind::Status
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_attempt_is_cut_at_the_attempt_timeout_and_the_deadline_holds() {
        let target = Scripted::new(vec![(Duration::from_secs(3600), Ok(()))]);
        let start = Instant::now();
        let outcome = wait_ready(&readiness(100, 1, 1000), MS(300), start, &target).await;
        // The hung attempt is cancelled at 300 ms; the next (script exhausted) succeeds at once.
        assert!(outcome.ready);
        assert_eq!(outcome.attempts, 2);
        assert_eq!(
            outcome.last_failure.as_ref().expect("failure").kind,
            FailureKind::Timeout
        );
        assert_eq!(outcome.ready_after.expect("ready").by, MS(300));
        // Every attempt hangs: the deadline still holds.
        let start = Instant::now();
        let target = Scripted::new(vec![(Duration::from_secs(3600), Ok(())); 50]);
        let outcome = wait_ready(&readiness(100, 1, 1000), MS(300), start, &target).await;
        assert!(!outcome.ready);
        assert_eq!(outcome.stopped, Some(Stopped::Deadline));
        assert!(
            Instant::now() - start <= MS(1000) + MS(300),
            "deadline enforced preemptively"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_kinds_stop_at_once() {
        let target = Scripted::new(vec![(MS(0), Err(FailureKind::GrpcUnimplemented))]);
        let start = Instant::now();
        let outcome = wait_ready(&readiness(100, 1, 60_000), MS(500), start, &target).await;
        assert_eq!(outcome.stopped, Some(Stopped::Fatal));
        assert_eq!(outcome.attempts, 1);
        assert_eq!(Instant::now() - start, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_the_interval_up_to_the_cap_and_resets_on_success() {
        let target = Scripted::new(vec![
            (MS(0), Err(FailureKind::Refused)),
            (MS(0), Err(FailureKind::Refused)),
            (MS(0), Err(FailureKind::Refused)),
            (MS(0), Err(FailureKind::Refused)),
            (MS(0), Ok(())),
            (MS(0), Ok(())),
        ]);
        let mut settings = readiness(100, 2, 60_000);
        settings.backoff_multiplier = 2.0;
        settings.max_interval = MS(300);
        let start = Instant::now();
        let outcome = wait_ready(&settings, MS(50), start, &target).await;
        assert!(outcome.ready);
        let starts: Vec<Duration> = target
            .starts
            .lock()
            .expect("lock")
            .iter()
            .map(|t| *t - start)
            .collect();
        assert_eq!(
            starts,
            [MS(0), MS(200), MS(500), MS(800), MS(1100), MS(1200)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn initial_delay_postpones_the_first_attempt() {
        let target = Scripted::new(vec![]);
        let mut settings = readiness(100, 1, 5000);
        settings.initial_delay = MS(700);
        let start = Instant::now();
        let outcome = wait_ready(&settings, MS(50), start, &target).await;
        assert!(outcome.ready);
        assert_eq!(target.starts.lock().expect("lock")[0] - start, MS(700));
        assert_eq!(outcome.ready_after.expect("ready").not_before, None);
    }
}
