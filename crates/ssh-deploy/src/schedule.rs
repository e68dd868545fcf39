//! Which hosts go when: batches (a fixed size, a schedule of steps like `1, 30%, 100%`, canary
//! first or not), the fleet-wide failure budget, and running work on hosts in parallel.

/// One step of a rolling schedule: a batch of this many hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A number of hosts.
    Count(usize),
    /// A percentage of every host of the deploy (rounded up, at least one host).
    Percent(u32),
}

impl Step {
    fn hosts(self, total: usize) -> usize {
        match self {
            Step::Count(count) => count,
            Step::Percent(percent) => (total * percent as usize).div_ceil(100),
        }
        .max(1)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Count(count) => write!(f, "{count}"),
            Step::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// A count or a percentage: `2` or `10%`.
fn count_or_percent(text: &str, what: &str) -> Result<Step, String> {
    let text = text.trim();
    let bad = || {
        format!("{what} `{text}` must be a number of hosts (`2`) or a percentage of them (`30%`)")
    };
    match text.strip_suffix('%') {
        Some(number) => {
            let percent: u32 = number.trim().parse().map_err(|_| bad())?;
            if percent == 0 || percent > 100 {
                return Err(format!("{what} `{text}`: a percentage from 1% to 100%"));
            }
            Ok(Step::Percent(percent))
        }
        None => text.parse().map(Step::Count).map_err(|_| bad()),
    }
}

/// A rolling schedule: batch sizes in order, the last one repeated until every host is done
/// (`1, 30%, 100%`: one host, then 30 % of the fleet, then the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule(Vec<Step>);

impl Schedule {
    /// Parses `1, 30%, 100%` (commas or lines between steps).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let steps = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|step| count_or_percent(step, "--schedule step"))
            .collect::<Result<Vec<_>, _>>()?;
        if steps.is_empty() {
            return Err("--schedule names no step (e.g. `1, 30%, 100%`)".into());
        }
        if steps.contains(&Step::Count(0)) {
            return Err("--schedule: a step of 0 hosts never ends".into());
        }
        Ok(Self(steps))
    }

    /// Host indexes `first..first + hosts` per batch.
    pub(crate) fn batches(&self, first: usize, hosts: usize, total: usize) -> Vec<Vec<usize>> {
        let mut batches = Vec::new();
        let mut next = first;
        let end = first + hosts;
        let mut steps = self.0.iter();
        let mut last = self.0[0];
        while next < end {
            let step = steps.next().copied().unwrap_or(last);
            last = step;
            let size = step.hosts(total).min(end - next);
            batches.push((next..next + size).collect());
            next += size;
        }
        batches
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&steps.join(", "))
    }
}

/// How many hosts may fail across the whole rollout before it stops (`--max-failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Budget(Option<Step>);

impl Budget {
    /// Parses `2` or `10%`; empty or `0`: no failure is tolerated.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self(None));
        }
        match count_or_percent(text, "--max-failed")? {
            Step::Count(0) => Ok(Self(None)),
            step => Ok(Self(Some(step))),
        }
    }

    /// Failed hosts tolerated out of `total` (a percentage rounds down: 10% of 5 hosts is 0).
    pub(crate) fn allowed(self, total: usize) -> usize {
        match self.0 {
            None => 0,
            Some(Step::Count(count)) => count,
            Some(Step::Percent(percent)) => total * percent as usize / 100,
        }
    }

    /// For the plan: `2 of 10 hosts (max-failed 20%)`.
    pub(crate) fn describe(self, total: usize) -> String {
        match self.0 {
            None => "none: the first failed host stops the rollout (--max-failed 0)".into(),
            Some(step) => format!(
                "{} of {total} host(s) across all batches may fail (each is put back on its \
                 previous release) before the rollout stops (--max-failed {step})",
                self.allowed(total)
            ),
        }
    }
}

/// Host indexes per batch: `batch_size` 0 means one batch with every host.
pub(crate) fn batches(hosts: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let size = if batch_size == 0 {
        hosts.max(1)
    } else {
        batch_size
    };
    (0..hosts)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect()
}

/// Canary first: host 0 alone, then the other hosts in batches of `batch_size`.
pub(crate) fn canary_batches(hosts: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let mut steps = vec![vec![0]];
    if hosts > 1 {
        steps.extend(
            batches(hosts - 1, batch_size)
                .into_iter()
                .map(|batch| batch.into_iter().map(|i| i + 1).collect()),
        );
    }
    steps
}

/// Runs `work` for every item, at most `max_parallel` at once, keeping the input order.
pub(crate) fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    max_parallel: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let mut results = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<T> = items.by_ref().take(max_parallel.max(1)).collect();
        let work = &work;
        let chunk_results: Vec<R> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .into_iter()
                .map(|item| scope.spawn(move || work(item)))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(result) => result,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        results.extend(chunk_results);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_hosts_in_order() {
        assert_eq!(batches(5, 2), [vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(batches(3, 0), [vec![0, 1, 2]]);
        assert_eq!(batches(2, 9), [vec![0, 1]]);
        assert_eq!(canary_batches(5, 2), [vec![0], vec![1, 2], vec![3, 4]]);
        assert_eq!(canary_batches(3, 0), [vec![0], vec![1, 2]]);
        assert_eq!(canary_batches(1, 0), [vec![0]]);
    }

    #[test]
    fn a_schedule_of_counts_and_percentages_repeats_its_last_step() {
        let schedule = Schedule::parse("1, 30%, 100%").expect("valid");
        assert_eq!(schedule.to_string(), "1, 30%, 100%");
        let sizes = |hosts: usize| -> Vec<usize> {
            schedule
                .batches(0, hosts, hosts)
                .iter()
                .map(Vec::len)
                .collect()
        };
        assert_eq!(sizes(10), [1, 3, 6]);
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(3), [1, 1, 1]);
        let two = Schedule::parse("2\n").expect("valid");
        assert_eq!(two.batches(0, 5, 5), [vec![0, 1], vec![2, 3], vec![4]]);
        // After a canary (host 0), the schedule covers hosts 1.. of the whole fleet.
        assert_eq!(two.batches(1, 4, 5), [vec![1, 2], vec![3, 4]]);
        for bad in ["", "0", "x", "0%", "101%", "1, -2"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_failure_budget_is_a_count_or_a_percentage_of_every_host() {
        assert_eq!(Budget::parse("").expect("valid").allowed(10), 0);
        assert_eq!(Budget::parse("2").expect("valid").allowed(10), 2);
        assert_eq!(Budget::parse("10%").expect("valid").allowed(30), 3);
        assert_eq!(Budget::parse("10%").expect("valid").allowed(5), 0);
        assert!(Budget::parse("ten").is_err());
    }

    #[test]
    fn parallel_keeps_order() {
        assert_eq!(
            parallel((0..7).collect(), 3, |i| i * 2),
            [0, 2, 4, 6, 8, 10, 12]
        );
    }
}
