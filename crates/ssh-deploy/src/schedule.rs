//! Which hosts go when: batches (canary first or not) and running work on hosts in parallel.

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
    fn parallel_keeps_order() {
        assert_eq!(
            parallel((0..7).collect(), 3, |i| i * 2),
            [0, 2, 4, 6, 8, 10, 12]
        );
    }
}
