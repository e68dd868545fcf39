//! Load through the proxy while it is switched, counted the way the research note counts it
//! (strategies.md §3): wrk-style keep-alive clients (a failure on a reused connection is a
//! "reset", reported apart from status errors), a new-connection loop, and 2 s requests kept
//! in flight all the time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one load run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Keep-alive requests answered.
    pub(crate) keepalive_requests: AtomicU64,
    /// Keep-alive answers that were not 2xx.
    pub keepalive_non_2xx: AtomicU64,
    /// Reused connections that failed (reset or closed without an answer).
    pub(crate) keepalive_resets: AtomicU64,
    /// New-connection requests answered.
    pub(crate) new_requests: AtomicU64,
    /// New-connection answers that were not 2xx.
    pub new_non_2xx: AtomicU64,
    /// New connections refused or failed before an answer.
    pub(crate) new_failed: AtomicU64,
    /// Slow (2 s) requests answered with 2xx.
    pub(crate) slow_ok: AtomicU64,
    /// Slow requests that failed or were not 2xx.
    pub(crate) slow_failed: AtomicU64,
}

/// A running load; [`Load::stop`] ends it and returns the counters.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// One parsed response: status and whether the server will close the connection.
struct Response {
    status: u16,
    close: bool,
}

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let (mut length, mut close) = (None, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = header.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse::<usize>().ok();
        } else if header == "connection: close" {
            close = true;
        }
    }
    match length {
        Some(length) => {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
        }
        None => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            close = true;
        }
    }
    Ok(Response { status, close })
}

fn connect(port: u16) -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let reader = BufReader::new(stream.try_clone()?);
    Ok((stream, reader))
}

fn one_shot(port: u16, path: &str) -> Result<u16, ()> {
    let (mut stream, mut reader) = connect(port).map_err(drop)?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(drop)?;
    read_response(&mut reader).map(|r| r.status).map_err(drop)
}

impl Load {
    /// Starts `keepalive` keep-alive clients, one new-connection loop and `slow` clients that
    /// keep a 2 s request in flight each, all against `127.0.0.1:port`.
    pub(crate) fn start(port: u16, keepalive: usize, slow: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut threads = Vec::new();
        for _ in 0..keepalive {
            let (stop, c) = (stop.clone(), counters.clone());
            threads.push(std::thread::spawn(move || {
                let mut connection: Option<(TcpStream, BufReader<TcpStream>)> = None;
                while !stop.load(Ordering::SeqCst) {
                    let (stream, reader) = match connection.as_mut() {
                        Some(open) => open,
                        None => match connect(port) {
                            Ok(open) => connection.insert(open),
                            Err(_) => {
                                c.new_failed.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                        },
                    };
                    let sent = stream.write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n");
                    match sent.and_then(|()| read_response(reader)) {
                        Ok(response) => {
                            c.keepalive_requests.fetch_add(1, Ordering::SeqCst);
                            if !(200..300).contains(&response.status) {
                                c.keepalive_non_2xx.fetch_add(1, Ordering::SeqCst);
                            }
                            if response.close {
                                connection = None;
                            }
                        }
                        Err(_) => {
                            c.keepalive_resets.fetch_add(1, Ordering::SeqCst);
                            connection = None;
                        }
                    }
                }
            }));
        }
        {
            let (stop, c) = (stop.clone(), counters.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match one_shot(port, "/") {
                        Ok(status) => {
                            c.new_requests.fetch_add(1, Ordering::SeqCst);
                            if !(200..300).contains(&status) {
                                c.new_non_2xx.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(()) => {
                            c.new_failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        for _ in 0..slow {
            let (stop, c) = (stop.clone(), counters.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match one_shot(port, "/slow") {
                        Ok(status) if (200..300).contains(&status) => {
                            c.slow_ok.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {
                            c.slow_failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        Self {
            stop,
            counters,
            threads,
        }
    }

    /// Slow requests answered so far (to know they were in flight across switches).
    pub(crate) fn slow_ok(&self) -> u64 {
        self.counters.slow_ok.load(Ordering::SeqCst)
    }

    /// Ends the load (slow requests in flight finish) and returns the counters.
    pub(crate) fn stop(self) -> Arc<Counters> {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("load thread");
        }
        self.counters
    }
}
