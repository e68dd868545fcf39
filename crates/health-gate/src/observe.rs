//! Phase 2: a burst of requests (a count or a duration, at a concurrency), then thresholds on
//! the error rate and latency statistics, absolute or against a recorded baseline.
//!
//! Every counted request contributes to the latency statistics, failed ones included (a user
//! waits for a timeout too); the first `warmup` requests are left out of both statistics and
//! error counts. With `abort_early`, the burst stops as soon as a threshold can no longer pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::baseline::CheckBaseline;
use crate::config::Observation;
use crate::failure::{Failure, FailureKind};
use crate::outcome::{
    HISTOGRAM_MAX_US, LatencySummary, ObservationOutcome, ThresholdOutcome, new_histogram,
};
use crate::probe::Sample;
use crate::probe::dial::DirectHttp;
use crate::readiness::Attempt;
use crate::threshold::{LatencyLimit, Statistic};

/// One observation worker: it sends its requests one after another. Workers may own a
/// connection ([`DirectHttp`]) or share a probe (`Arc<A>` for any
/// [`Attempt`]).
pub(crate) trait Worker: Send + 'static {
    /// One request.
    fn attempt(&mut self) -> impl std::future::Future<Output = Result<Sample, Failure>> + Send;
}

impl<A: Attempt> Worker for Arc<A> {
    async fn attempt(&mut self) -> Result<Sample, Failure> {
        A::attempt(self).await
    }
}

impl Worker for DirectHttp {
    async fn attempt(&mut self) -> Result<Sample, Failure> {
        DirectHttp::attempt(self).await
    }
}

/// What one worker saw; merged when the burst ends. Each worker records into its own
/// histogram, so the hot path takes no lock.
struct Tally {
    histogram: Histogram<u64>,
    counted: u64,
    failed: u64,
    warmup: u64,
    failures: BTreeMap<FailureKind, u64>,
    /// (request index, failure): the earliest few are reported.
    first_failures: Vec<(u64, Failure)>,
}

/// Counters every worker updates, for `abort_early` (touched only on failures and slow
/// requests).
struct Shared {
    observation: Observation,
    next_index: AtomicU64,
    stop: AtomicBool,
    failed: AtomicU64,
    over_limit: Vec<AtomicU64>,
    planned: Option<u64>,
}

/// Runs the burst with `concurrency` workers from `make_worker` and evaluates the thresholds.
pub(crate) async fn observe<W: Worker>(
    observation: &Observation,
    attempt_timeout: Duration,
    mut make_worker: impl FnMut() -> W,
    baseline: Option<&CheckBaseline>,
) -> ObservationOutcome {
    let started = Instant::now();
    let end = observation.duration.map(|d| started + d);
    let shared = Arc::new(Shared {
        observation: observation.clone(),
        next_index: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failed: AtomicU64::new(0),
        over_limit: observation
            .latency
            .iter()
            .map(|_| AtomicU64::new(0))
            .collect(),
        planned: observation
            .requests
            .map(|r| r.saturating_sub(observation.warmup)),
    });

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..observation.concurrency {
        let mut worker = make_worker();
        let shared = shared.clone();
        workers.spawn(async move {
            let mut tally = Tally {
                histogram: new_histogram(),
                counted: 0,
                failed: 0,
                warmup: 0,
                failures: BTreeMap::new(),
                first_failures: Vec::new(),
            };
            let observation = &shared.observation;
            loop {
                if shared.stop.load(Ordering::Relaxed)
                    || end.is_some_and(|end| Instant::now() >= end)
                {
                    return tally;
                }
                let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
                if observation
                    .requests
                    .is_some_and(|requests| index >= requests)
                {
                    return tally;
                }
                let begin = Instant::now();
                let result = match tokio::time::timeout(attempt_timeout, worker.attempt()).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure::new(
                        FailureKind::Timeout,
                        "no result within the attempt timeout",
                    )),
                };
                let latency = Instant::now() - begin;
                if index < observation.warmup {
                    tally.warmup += 1;
                    continue;
                }
                tally.counted += 1;
                let micros = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .clamp(1, HISTOGRAM_MAX_US);
                // Saturated into range above, so recording cannot fail.
                let _ = tally.histogram.record(micros);
                let mut lost = false;
                if let Err(failure) = result {
                    tally.failed += 1;
                    *tally.failures.entry(failure.kind).or_default() += 1;
                    if tally.first_failures.len() < 5 {
                        tally.first_failures.push((index, failure));
                    }
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    lost = true;
                }
                for (position, threshold) in observation.latency.iter().enumerate() {
                    if let LatencyLimit::Absolute(limit) = threshold.limit {
                        if latency > limit {
                            shared.over_limit[position].fetch_add(1, Ordering::Relaxed);
                            lost = true;
                        }
                    }
                }
                // Only a failure or a slow request can lose a threshold.
                if lost && observation.abort_early && already_lost(&shared) {
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
        });
    }
    let mut histogram = new_histogram();
    let mut total = Tally {
        histogram: new_histogram(),
        counted: 0,
        failed: 0,
        warmup: 0,
        failures: BTreeMap::new(),
        first_failures: Vec::new(),
    };
    while let Some(joined) = workers.join_next().await {
        let Ok(tally) = joined else { continue };
        // Same bounds, so adding cannot fail.
        let _ = histogram.add(&tally.histogram);
        total.counted += tally.counted;
        total.failed += tally.failed;
        total.warmup += tally.warmup;
        for (kind, count) in tally.failures {
            *total.failures.entry(kind).or_default() += count;
        }
        total.first_failures.extend(tally.first_failures);
    }
    let elapsed = Instant::now() - started;
    total.first_failures.sort_by_key(|(index, _)| *index);
    total.first_failures.truncate(5);
    let tally = total;
    let mut outcome = ObservationOutcome {
        passed: false,
        counted: tally.counted,
        failed: tally.failed,
        warmup: tally.warmup,
        concurrency: observation.concurrency,
        aborted_early: shared.stop.load(Ordering::Relaxed),
        latency_ms: LatencySummary::default(),
        failures: tally.failures,
        first_failures: tally
            .first_failures
            .into_iter()
            .map(|(_, failure)| failure)
            .collect(),
        thresholds: Vec::new(),
        requests_per_second: if elapsed.is_zero() {
            0.0
        } else {
            (tally.counted + tally.warmup) as f64 / elapsed.as_secs_f64()
        },
        histogram: Some(histogram),
    };
    let ms = |statistic| {
        outcome
            .statistic_us(statistic)
            .map_or(0.0, |us| us as f64 / 1000.0)
    };
    outcome.latency_ms = LatencySummary {
        p50: ms(Statistic::Percentile(50.0)),
        p90: ms(Statistic::Percentile(90.0)),
        p95: ms(Statistic::Percentile(95.0)),
        p99: ms(Statistic::Percentile(99.0)),
        max: ms(Statistic::Max),
        mean: ms(Statistic::Mean),
    };
    outcome.thresholds = evaluate(observation, &outcome, baseline);
    outcome.passed = outcome.thresholds.iter().all(|t| t.passed);
    outcome
}

/// True when the thresholds cannot pass any more with the planned number of counted requests.
fn already_lost(shared: &Shared) -> bool {
    let Some(planned) = shared.planned else {
        return false;
    };
    let observation = &shared.observation;
    if observation
        .error_rate
        .already_lost(shared.failed.load(Ordering::Relaxed), planned)
    {
        return true;
    }
    observation
        .latency
        .iter()
        .zip(&shared.over_limit)
        .any(|(threshold, over)| {
            // At most floor(planned * (100 - p) / 100) samples may exceed a pNN limit.
            let allowed = match threshold.statistic {
                Statistic::Percentile(p) => ((planned as f64) * (100.0 - p) / 100.0).floor() as u64,
                Statistic::Max => 0,
                Statistic::Mean => return false,
            };
            over.load(Ordering::Relaxed) > allowed
        })
}

/// Evaluates every threshold of `observation` on the outcome.
pub(crate) fn evaluate(
    observation: &Observation,
    outcome: &ObservationOutcome,
    baseline: Option<&CheckBaseline>,
) -> Vec<ThresholdOutcome> {
    let mut results = Vec::new();
    results.push(ThresholdOutcome {
        threshold: format!("min_samples >= {}", observation.min_samples),
        // An early abort already failed another threshold; too few samples is its consequence.
        passed: outcome.counted >= observation.min_samples || outcome.aborted_early,
        detail: if outcome.aborted_early {
            format!("{} counted samples (stopped early)", outcome.counted)
        } else {
            format!("{} counted samples", outcome.counted)
        },
        value: None,
    });
    let rate_passed = observation
        .error_rate
        .passes(outcome.failed, outcome.counted);
    results.push(ThresholdOutcome {
        threshold: observation.error_rate.to_string(),
        passed: rate_passed,
        detail: format!(
            "{} of {} failed ({:.2}%)",
            outcome.failed,
            outcome.counted,
            if outcome.counted == 0 {
                0.0
            } else {
                outcome.failed as f64 * 100.0 / outcome.counted as f64
            }
        ),
        value: None,
    });
    for threshold in &observation.latency {
        let label = threshold.statistic.label();
        let Some(observed_us) = outcome.statistic_us(threshold.statistic) else {
            results.push(ThresholdOutcome {
                threshold: threshold.to_string(),
                passed: false,
                detail: "no samples".into(),
                value: None,
            });
            continue;
        };
        let observed = Duration::from_micros(observed_us);
        let baseline_value = baseline
            .and_then(|b| b.latency_us.get(&label))
            .map(|us| Duration::from_micros(*us));
        let (passed, detail) = match threshold.evaluate(observed, baseline_value) {
            Ok(passed) => (
                passed,
                match baseline_value {
                    Some(b) if matches!(threshold.limit, LatencyLimit::Baseline(_)) => {
                        format!("{label} {:.1} ms (baseline {:.1} ms)", ms(observed), ms(b))
                    }
                    _ => format!("{label} {:.1} ms", ms(observed)),
                },
            ),
            Err(reason) => (false, reason),
        };
        results.push(ThresholdOutcome {
            threshold: threshold.to_string(),
            passed,
            detail,
            value: None,
        });
    }
    results
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{ErrorRateLimit, LatencyThreshold};

    /// Fails the requests whose index is in `failing`; each takes `latency(index)`.
    struct ByIndex {
        next: AtomicU64,
        failing: Vec<u64>,
        latency: fn(u64) -> Duration,
    }

    impl Attempt for ByIndex {
        async fn attempt(&self) -> Result<Sample, Failure> {
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            let latency = (self.latency)(index);
            tokio::time::sleep(latency).await;
            if self.failing.contains(&index) {
                Err(Failure::new(
                    FailureKind::Status,
                    format!("injected failure {index}"),
                ))
            } else {
                Ok(Sample { latency })
            }
        }
    }

    fn observation(requests: u64, error_rate: &str, latency: &[(&str, &str)]) -> Observation {
        Observation {
            requests: Some(requests),
            duration: None,
            concurrency: 4,
            warmup: 0,
            min_samples: requests,
            abort_early: false,
            error_rate: ErrorRateLimit::parse(error_rate).expect("valid"),
            latency: latency
                .iter()
                .map(|(s, t)| LatencyThreshold::parse_entry(s, t).expect("valid"))
                .collect(),
        }
    }

    /// Every worker shares the one target.
    fn shared<A>(target: Arc<A>) -> impl FnMut() -> Arc<A> {
        move || target.clone()
    }

    fn failing_every(n: u64, count: u64) -> Vec<u64> {
        (0..count).map(|i| i * n).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn four_percent_passes_and_six_percent_fails_a_five_percent_limit() {
        for (failures, passes) in [(8, true), (10, true), (12, false)] {
            let target = Arc::new(ByIndex {
                next: AtomicU64::new(0),
                failing: failing_every(200 / failures, failures),
                latency: |_| Duration::from_millis(1),
            });
            let outcome = observe(
                &observation(200, "<= 5%", &[]),
                Duration::from_secs(1),
                shared(target),
                None,
            )
            .await;
            assert_eq!(outcome.counted, 200);
            assert_eq!(outcome.failed, failures, "exact failure count");
            assert_eq!(outcome.passed, passes, "{failures} failures of 200");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn warmup_requests_are_not_counted() {
        let target = Arc::new(ByIndex {
            next: AtomicU64::new(0),
            failing: vec![0, 1],
            latency: |i| Duration::from_millis(if i < 2 { 900 } else { 5 }),
        });
        let mut settings = observation(22, "== 0%", &[("max", "< 100ms")]);
        settings.concurrency = 1;
        settings.warmup = 2;
        settings.min_samples = 20;
        let outcome = observe(&settings, Duration::from_secs(2), shared(target), None).await;
        assert_eq!(
            (outcome.warmup, outcome.counted, outcome.failed),
            (2, 20, 0)
        );
        assert!(outcome.passed, "{:?}", outcome.thresholds);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_against_a_baseline() {
        let make = || {
            Arc::new(ByIndex {
                next: AtomicU64::new(0),
                failing: vec![],
                latency: |_| Duration::from_millis(30),
            })
        };
        let settings = observation(20, "<= 5%", &[("p95", "< 2x baseline")]);
        let mut baseline = CheckBaseline::for_test(&settings);
        baseline.latency_us.insert("p95".into(), 20_000);
        let outcome = observe(
            &settings,
            Duration::from_secs(1),
            shared(make()),
            Some(&baseline),
        )
        .await;
        assert!(
            outcome.passed,
            "30 ms < 2 x 20 ms: {:?}",
            outcome.thresholds
        );
        baseline.latency_us.insert("p95".into(), 10_000);
        let outcome = observe(
            &settings,
            Duration::from_secs(1),
            shared(make()),
            Some(&baseline),
        )
        .await;
        assert!(!outcome.passed, "30 ms >= 2 x 10 ms");
        assert!(
            outcome.thresholds[2].detail.contains("baseline 10.0 ms"),
            "{:?}",
            outcome.thresholds
        );
        let outcome = observe(&settings, Duration::from_secs(1), shared(make()), None).await;
        assert!(
            !outcome.passed,
            "a relative threshold without a baseline fails"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn aborts_as_soon_as_the_error_budget_is_spent() {
        let target = Arc::new(ByIndex {
            next: AtomicU64::new(0),
            failing: (0..200).collect(),
            latency: |_| Duration::from_millis(10),
        });
        let mut settings = observation(200, "<= 5%", &[]);
        settings.abort_early = true;
        settings.concurrency = 1;
        let outcome = observe(&settings, Duration::from_secs(1), shared(target), None).await;
        assert!(outcome.aborted_early);
        assert_eq!(
            outcome.counted, 11,
            "stops at the 11th failure of 200 planned"
        );
        assert!(!outcome.passed);
    }

    #[tokio::test(start_paused = true)]
    async fn percentiles_are_reported_in_milliseconds() {
        let target = Arc::new(ByIndex {
            next: AtomicU64::new(0),
            failing: vec![],
            latency: |i| Duration::from_millis(i + 1),
        });
        let mut settings = observation(100, "<= 5%", &[]);
        settings.concurrency = 1;
        let outcome = observe(&settings, Duration::from_secs(1), shared(target), None).await;
        let within = |value: f64, expected: f64| (value - expected).abs() <= expected * 0.01;
        assert!(
            within(outcome.latency_ms.p50, 50.0),
            "{:?}",
            outcome.latency_ms
        );
        assert!(
            within(outcome.latency_ms.p95, 95.0),
            "{:?}",
            outcome.latency_ms
        );
        assert!(
            within(outcome.latency_ms.max, 100.0),
            "{:?}",
            outcome.latency_ms
        );
    }
}
