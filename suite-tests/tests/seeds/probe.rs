//! What the scenarios measure from outside the fleet: a plain HTTP/1.1 GET, a load loop
//! through a proxy (every failed request counted), and a watcher that samples each host's
//! release and health, so "previous release serving" is a time the test saw, not one a tool
//! reported.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One GET's answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// GET `http://addr/path` (`Connection: close`), every step bounded by `timeout`.
pub(crate) fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Answer, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|error| format!("connect: {error}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|error| error.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|error| error.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|error| format!("write: {error}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|error| format!("read: {error}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no response head in {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Requests sent through a proxy, back to back, until stopped.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<LoadResult>>,
}

/// What a [`Load`] saw.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    pub(crate) requests: u64,
    /// Non-2xx answers and failed exchanges, with what happened (the first 20).
    pub(crate) failed: u64,
    pub(crate) failures: Vec<String>,
    /// Answers per release (`X-Release` header, else the body's first word).
    pub(crate) releases: std::collections::BTreeMap<String, u64>,
}

impl Load {
    /// Starts GETs of `path` on `addr`.
    pub(crate) fn start(addr: SocketAddr, path: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut result = LoadResult::default();
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                result.requests += 1;
                match get(addr, path, Duration::from_secs(5)) {
                    Ok(answer) if (200..300).contains(&answer.status) => {
                        let release = answer.header("X-Release").map_or_else(
                            || {
                                answer
                                    .body
                                    .split_whitespace()
                                    .next()
                                    .unwrap_or_default()
                                    .to_owned()
                            },
                            str::to_owned,
                        );
                        *result.releases.entry(release).or_default() += 1;
                    }
                    outcome => {
                        result.failed += 1;
                        if result.failures.len() < 20 {
                            let what = match outcome {
                                Ok(answer) => format!("status {}", answer.status),
                                Err(error) => error,
                            };
                            result
                                .failures
                                .push(format!("{:.3}s: {what}", started.elapsed().as_secs_f64()));
                        }
                    }
                }
                // A steady rate that leaves the two cores to the deploy: ~100 requests/s.
                std::thread::sleep(Duration::from_millis(10));
            }
            result
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the loop and returns what it saw.
    pub(crate) fn finish(mut self) -> LoadResult {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|handle| handle.join().expect("load thread"))
            .unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One sample of one host: when, whether it answered 2xx, and which release.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) ok: bool,
    pub(crate) release: String,
}

/// Samples `path` on every address every 50 ms until finished.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Vec<Sample>>>,
}

impl Watcher {
    /// `release_of` reads the release from an answer.
    pub(crate) fn start(
        addrs: Vec<SocketAddr>,
        path: &'static str,
        release_of: fn(&Answer) -> String,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = addrs
            .into_iter()
            .map(|addr| {
                let flag = stop.clone();
                std::thread::spawn(move || {
                    let mut samples = Vec::new();
                    while !flag.load(Ordering::SeqCst) {
                        let answer = get(addr, path, Duration::from_secs(2));
                        samples.push(Sample {
                            at: Instant::now(),
                            ok: answer
                                .as_ref()
                                .is_ok_and(|answer| (200..300).contains(&answer.status)),
                            release: answer.as_ref().map(release_of).unwrap_or_default(),
                        });
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    samples
                })
            })
            .collect();
        Self { stop, handles }
    }

    /// Stops sampling; the samples per address, in order.
    pub(crate) fn finish(self) -> Vec<Vec<Sample>> {
        self.stop.store(true, Ordering::SeqCst);
        self.handles
            .into_iter()
            .map(|handle| handle.join().expect("watcher thread"))
            .collect()
    }
}

/// When every host was, for good, healthy on `release`: per host, the first sample after
/// which every sample is; the latest of those (None if a host never settled there).
pub(crate) fn settled_on(samples: &[Vec<Sample>], release: &str) -> Option<Instant> {
    let mut latest: Option<Instant> = None;
    for host in samples {
        let good = |sample: &Sample| sample.ok && sample.release == release;
        if !host.last().is_some_and(good) {
            return None;
        }
        let first_of_run = host
            .iter()
            .rposition(|sample| !good(sample))
            .map_or(0, |bad| bad + 1);
        let at = host[first_of_run].at;
        latest = Some(latest.map_or(at, |other| other.max(at)));
    }
    latest
}
