//! Upload progress a person can follow in a CI log: every few seconds one plain line per host
//! with the bytes sent, the percentage, the rate and the time left (no terminal bar, no carriage
//! returns: a CI log keeps every line), and a last line with the total once an upload that took
//! long enough to report has ended. Short uploads print nothing more than before.

use std::io::Read;
use std::time::{Duration, Instant};

use runner_protocol::console::Console;

/// How often a long upload reports.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);

/// Counts the bytes read from `inner` (what goes to the host) and logs progress.
pub(crate) struct Progress<'a, R> {
    inner: R,
    total: u64,
    sent: u64,
    started: Instant,
    last: Instant,
    reported: bool,
    console: &'a Console,
    host: String,
}

impl<'a, R> Progress<'a, R> {
    /// Reports on `host`'s upload of `total` bytes read from `inner`.
    pub(crate) fn new(inner: R, total: u64, console: &'a Console, host: &str) -> Self {
        let now = Instant::now();
        Self {
            inner,
            total,
            sent: 0,
            started: now,
            last: now,
            reported: false,
            console,
            host: host.to_owned(),
        }
    }
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.sent += read as u64;
        let now = Instant::now();
        if read == 0 {
            if self.reported {
                self.reported = false;
                self.console.log(&format!(
                    "[{}] upload: {}",
                    self.host,
                    done_line(self.sent, now - self.started)
                ));
            }
        } else if now - self.last >= INTERVAL {
            self.last = now;
            self.reported = true;
            self.console.log(&format!(
                "[{}] upload: {}",
                self.host,
                progress_line(self.sent, self.total, now - self.started)
            ));
        }
        Ok(read)
    }
}

/// `12.0 MiB of 48.0 MiB (25%), 4.0 MiB/s, about 9s left`.
pub(crate) fn progress_line(sent: u64, total: u64, elapsed: Duration) -> String {
    let rate = rate(sent, elapsed);
    let percent = (sent * 100).checked_div(total).unwrap_or(100).min(100);
    let left = if rate > 0.0 && total > sent {
        format!(", about {:.0}s left", (total - sent) as f64 / rate)
    } else {
        String::new()
    };
    format!(
        "{} of {} ({percent}%), {}/s{left}",
        size(sent),
        size(total),
        size_f(rate)
    )
}

/// `48.0 MiB in 12.1s (4.0 MiB/s)`.
pub(crate) fn done_line(sent: u64, elapsed: Duration) -> String {
    format!(
        "{} sent in {:.1}s ({}/s)",
        size(sent),
        elapsed.as_secs_f64(),
        size_f(rate(sent, elapsed))
    )
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    }
}

fn size(bytes: u64) -> String {
    size_f(bytes as f64)
}

fn size_f(bytes: f64) -> String {
    const KIB: f64 = 1024.0;
    if bytes >= KIB * KIB * KIB {
        format!("{:.1} GiB", bytes / (KIB * KIB * KIB))
    } else if bytes >= KIB * KIB {
        format!("{:.1} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB {
        format!("{:.1} KiB", bytes / KIB)
    } else {
        format!("{bytes:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_bytes_percent_rate_and_time_left() {
        assert_eq!(
            progress_line(12 << 20, 48 << 20, Duration::from_secs(3)),
            "12.0 MiB of 48.0 MiB (25%), 4.0 MiB/s, about 9s left"
        );
        assert_eq!(
            progress_line(0, 0, Duration::ZERO),
            "0 B of 0 B (100%), 0 B/s"
        );
        assert_eq!(
            done_line(48 << 20, Duration::from_millis(12_000)),
            "48.0 MiB sent in 12.0s (4.0 MiB/s)"
        );
    }
}
