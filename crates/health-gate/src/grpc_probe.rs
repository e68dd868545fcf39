//! `health-gate grpc-probe`: a drop-in for grpc_health_probe, for people migrating scripts and
//! Kubernetes exec probes. Same flags (Go style: `-addr=host:port` or `-addr host:port`,
//! `--flag` also works) and the same exit codes, which differ from the suite's on purpose:
//!
//! | code | grpc_health_probe meaning |
//! | --- | --- |
//! | 0 | SERVING |
//! | 1 | invalid arguments |
//! | 2 | connection failed or timed out (TLS failures included) |
//! | 3 | the RPC failed or timed out (UNIMPLEMENTED, NOT_FOUND, DEADLINE_EXCEEDED, ...) |
//! | 4 | the RPC answered a status other than SERVING |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Check, GrpcSpec, HeaderValue, ProbeSpec, Readiness, TlsSpec};
use crate::failure::FailureKind;
use crate::probe::{Phase, Probe, ResolvedHeaders};

/// The subcommand name that selects this mode.
pub(crate) const SUBCOMMAND: &str = "grpc-probe";

/// Parsed grpc_health_probe flags.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbeArgs {
    /// `-addr`
    pub addr: String,
    /// `-service`
    pub service: String,
    /// `-connect-timeout`
    pub connect_timeout: Duration,
    /// `-rpc-timeout`
    pub rpc_timeout: Duration,
    /// `-rpc-header name: value` (repeatable)
    pub headers: Vec<(String, String)>,
    /// `-tls`
    pub tls: bool,
    /// `-tls-ca-cert`
    pub ca_cert: Option<PathBuf>,
    /// `-tls-client-cert` and `-tls-client-key`
    pub client: Option<(PathBuf, PathBuf)>,
    /// `-tls-server-name`
    pub server_name: Option<String>,
    /// `-v`
    pub verbose: bool,
}

const USAGE: &str = "usage: health-gate grpc-probe -addr=HOST:PORT [-service=NAME] [-connect-timeout=1s] \
[-rpc-timeout=1s] [-rpc-header='name: value']... [-tls [-tls-ca-cert=FILE] [-tls-client-cert=FILE -tls-client-key=FILE] \
[-tls-server-name=NAME]] [-v]";

fn go_duration(flag: &str, text: &str) -> Result<Duration, String> {
    let duration = crate::config::parse_duration(text)
        .map_err(|_| format!("invalid value {text:?} for flag -{flag}"))?;
    if duration.is_zero() {
        return Err(format!("-{flag} must be greater than zero"));
    }
    Ok(duration)
}

/// Parses the arguments after `grpc-probe`.
pub(crate) fn parse(args: &[String]) -> Result<ProbeArgs, String> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut flags = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let bare = arg.trim_start_matches('-');
        if bare.len() == arg.len() || bare.is_empty() {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let (name, inline) = match bare.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (bare.to_owned(), None),
        };
        match name.as_str() {
            "tls" | "tls-no-verify" | "v" | "gzip" | "alts" | "spiffe" | "h" | "help"
            | "version" => {
                if let Some(value) = inline {
                    if !matches!(value.as_str(), "true" | "1") {
                        continue;
                    }
                }
                flags.push(name);
            }
            "addr" | "service" | "connect-timeout" | "rpc-timeout" | "rpc-header"
            | "user-agent" | "tls-ca-cert" | "tls-client-cert" | "tls-client-key"
            | "tls-server-name" => {
                let value = match inline {
                    Some(value) => value,
                    None => iter
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
                };
                values.entry(name).or_default().push(value);
            }
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    if flags.iter().any(|f| matches!(f.as_str(), "h" | "help")) {
        return Err(USAGE.into());
    }
    for unsupported in ["tls-no-verify", "alts", "spiffe", "gzip"] {
        if flags.iter().any(|f| f == unsupported) {
            return Err(format!(
                "-{unsupported} is not supported by health-gate; use -tls-ca-cert to trust the server"
            ));
        }
    }
    let one = |name: &str| values.get(name).and_then(|v| v.last().cloned());
    let addr = one("addr")
        .filter(|a| !a.is_empty())
        .ok_or("-addr not specified")?;
    let tls = flags.iter().any(|f| f == "tls");
    let ca_cert = one("tls-ca-cert").map(PathBuf::from);
    let server_name = one("tls-server-name");
    let client = match (one("tls-client-cert"), one("tls-client-key")) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        _ => return Err("specify both -tls-client-cert and -tls-client-key".into()),
    };
    if !tls && (ca_cert.is_some() || server_name.is_some() || client.is_some()) {
        return Err(
            "-tls-ca-cert, -tls-client-cert, -tls-client-key and -tls-server-name require -tls"
                .into(),
        );
    }
    let mut headers = Vec::new();
    for header in values.get("rpc-header").into_iter().flatten() {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("-rpc-header {header:?} is not 'name: value'"))?;
        headers.push((name.trim().to_owned(), value.trim_start().to_owned()));
    }
    Ok(ProbeArgs {
        addr,
        service: one("service").unwrap_or_default(),
        connect_timeout: one("connect-timeout")
            .map(|t| go_duration("connect-timeout", &t))
            .transpose()?
            .unwrap_or(Duration::from_secs(1)),
        rpc_timeout: one("rpc-timeout")
            .map(|t| go_duration("rpc-timeout", &t))
            .transpose()?
            .unwrap_or(Duration::from_secs(1)),
        headers,
        tls,
        ca_cert,
        client,
        server_name,
        verbose: flags.iter().any(|f| f == "v"),
    })
}

/// grpc_health_probe's exit code for a failure kind.
pub(crate) fn exit_code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::NotServing => 4,
        FailureKind::Refused
        | FailureKind::ConnectTimeout
        | FailureKind::Dns
        | FailureKind::TlsVerify
        | FailureKind::TlsHandshake => 2,
        _ => 3,
    }
}

/// Runs one probe; returns the exit code and the line to print (stdout for SERVING, stderr
/// otherwise, as grpc_health_probe does).
pub(crate) fn run(args: &ProbeArgs) -> (u8, String) {
    let check = Check {
        name: "grpc-probe".into(),
        probe: ProbeSpec::Grpc(GrpcSpec {
            addr: args.addr.clone(),
            services: vec![args.service.clone()],
            use_tls: args.tls,
            tls: TlsSpec {
                verify: true,
                ca_file: args.ca_cert.clone(),
                client_identity: args.client.clone(),
                server_name: args.server_name.clone(),
            },
            authority: None,
            metadata: args
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), HeaderValue::Literal(v.clone())))
                .collect(),
            rpc_timeout: args.rpc_timeout,
        }),
        attempt_timeout: args.connect_timeout + args.rpc_timeout,
        connect_timeout: args.connect_timeout,
        readiness: Readiness {
            initial_delay: Duration::ZERO,
            interval: Duration::from_secs(1),
            backoff_multiplier: 1.0,
            max_interval: Duration::from_secs(1),
            jitter: 0.0,
            success_threshold: 1,
            deadline: Duration::from_secs(1),
            fatal: Default::default(),
        },
        observe: None,
    };
    let headers = ResolvedHeaders(
        args.headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone(), false))
            .collect(),
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return (1, format!("error: cannot start the runtime: {error}")),
    };
    let probe = match Probe::build(&check, &headers, Phase::Readiness) {
        Ok(probe) => probe,
        Err(error) => return (1, format!("error: {error}")),
    };
    match runtime.block_on(probe.attempt()) {
        Ok(sample) if args.verbose => (
            0,
            format!("status: SERVING (time elapsed: {:?})", sample.latency),
        ),
        Ok(_) => (0, "status: SERVING".into()),
        Err(failure) => (
            exit_code(failure.kind),
            format!("error: {}", failure.detail),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<ProbeArgs, String> {
        parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_go_style_flags() {
        let parsed = args(&[
            "-addr=localhost:5000",
            "-service",
            "memory",
            "--rpc-timeout=250ms",
            "-rpc-header",
            "x-env: prod",
            "-v",
        ])
        .expect("valid");
        assert_eq!(parsed.addr, "localhost:5000");
        assert_eq!(parsed.service, "memory");
        assert_eq!(parsed.rpc_timeout, Duration::from_millis(250));
        assert_eq!(parsed.connect_timeout, Duration::from_secs(1));
        assert_eq!(parsed.headers, [("x-env".to_owned(), "prod".to_owned())]);
        assert!(parsed.verbose && !parsed.tls);
    }

    #[test]
    fn rejects_what_grpc_health_probe_rejects() {
        assert_eq!(args(&[]).expect_err("no addr"), "-addr not specified");
        assert!(
            args(&["-addr=x:1", "-tls-ca-cert=ca.pem"])
                .expect_err("needs tls")
                .contains("require -tls")
        );
        assert!(args(&["-addr=x:1", "-tls", "-tls-client-cert=c.pem"]).is_err());
        assert!(args(&["-addr=x:1", "-rpc-timeout=0s"]).is_err());
        assert!(
            args(&["-addr=x:1", "-bogus"])
                .expect_err("unknown")
                .contains("not defined: -bogus")
        );
        assert!(
            args(&["-addr=x:1", "-tls", "-tls-no-verify"])
                .expect_err("refused")
                .contains("not supported")
        );
    }

    #[test]
    fn exit_codes_follow_grpc_health_probe() {
        assert_eq!(exit_code(FailureKind::NotServing), 4);
        assert_eq!(exit_code(FailureKind::Refused), 2);
        assert_eq!(exit_code(FailureKind::TlsVerify), 2);
        assert_eq!(exit_code(FailureKind::GrpcUnimplemented), 3);
        assert_eq!(exit_code(FailureKind::GrpcNotFound), 3);
        assert_eq!(exit_code(FailureKind::Timeout), 3);
    }
}
