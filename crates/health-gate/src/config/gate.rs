//! The validated gate and the resolution of a whole gate file.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::url::display_url;

use super::command::CommandSpec;
use super::defaults;
use super::error::{ConfigError, config_error};
use super::file::{
    CheckConfig, DefaultsConfig, GateFile, ObserveConfig, ObserveSetting, RequireConfig,
};
use super::grpc::{GrpcSpec, resolve_grpc};
use super::http::{HttpSpec, resolve_http};
use super::metrics::MetricsSpec;
use super::observation::{Observation, merge_observe};
use super::readiness::{Readiness, merge_readiness};
use super::sse::{SseSpec, resolve_sse};
use super::tcp::{TcpSpec, resolve_tcp};
use super::ws::WsSpec;

// ----------------------------------------------------------------------------------------
// The resolved, validated gate.

/// A validated gate.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Checks, in file order.
    pub checks: Vec<Check>,
    /// How many must pass.
    pub require: Require,
    /// Baseline to compare relative thresholds with.
    pub baseline_file: Option<PathBuf>,
}

/// How many checks must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// Every check.
    All,
    /// At least this many.
    Quorum(usize),
}

/// One validated check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Unique name.
    pub name: String,
    /// What to probe.
    pub probe: ProbeSpec,
    /// Whole-attempt timeout.
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    /// Readiness settings.
    pub readiness: Readiness,
    /// Observation settings, if any.
    pub observe: Option<Observation>,
}

/// What a check probes.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    Http(HttpSpec),
    /// gRPC health.
    Grpc(GrpcSpec),
    /// Server-sent events.
    Sse(SseSpec),
    /// TCP connect.
    Tcp(TcpSpec),
    /// WebSocket.
    Ws(WsSpec),
    /// A local command.
    Command(CommandSpec),
    /// Prometheus metrics.
    Metrics(MetricsSpec),
}

impl ProbeSpec {
    /// `http`, `grpc`, `sse`, `tcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Grpc(_) => "grpc",
            ProbeSpec::Sse(_) => "sse",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Ws(_) => "ws",
            ProbeSpec::Command(_) => "command",
            ProbeSpec::Metrics(_) => "metrics",
        }
    }

    /// The target, for reports and baselines.
    pub fn target(&self) -> String {
        match self {
            ProbeSpec::Http(spec) => display_url(&spec.url),
            ProbeSpec::Grpc(spec) => format!(
                "{}{}",
                spec.addr,
                spec.services
                    .first()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
            ProbeSpec::Sse(spec) => display_url(&spec.url),
            ProbeSpec::Tcp(spec) => spec.addr.clone(),
            ProbeSpec::Ws(spec) => display_url(&spec.url),
            ProbeSpec::Command(spec) => spec.display(),
            ProbeSpec::Metrics(spec) => spec.source_url(),
        }
    }
}

impl GateFile {
    /// Validates and resolves into a [`Gate`]; reports every problem, not only the first.
    pub fn resolve(self) -> Result<Gate, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Some(version) = self.version {
            if version != 1 {
                errors.push(config_error(
                    "version",
                    format!("version {version} is not supported; use 1"),
                ));
            }
        }
        if self.checks.is_empty() {
            errors.push(config_error("checks", "at least one check is required"));
        }
        let mut names = BTreeSet::new();
        let mut checks = Vec::new();
        for (index, check) in self.checks.into_iter().enumerate() {
            let field = format!("checks[{index}]");
            if check.name.trim().is_empty() {
                errors.push(config_error(
                    format!("{field}.name"),
                    "a check needs a non-empty name",
                ));
            } else if !names.insert(check.name.clone()) {
                errors.push(config_error(
                    format!("{field}.name"),
                    format!("duplicate check name `{}`", check.name),
                ));
            }
            match resolve_check(check, &self.defaults, &field) {
                Ok(check) => checks.push(check),
                Err(mut more) => errors.append(&mut more),
            }
        }
        let require = match self.gate.require {
            None => Require::All,
            Some(RequireConfig::Word(word)) if word == "all" => Require::All,
            Some(RequireConfig::Word(word)) => {
                errors.push(config_error(
                    "gate.require",
                    format!("`{word}` is not valid: use `all` or `{{ quorum: N }}`"),
                ));
                Require::All
            }
            Some(RequireConfig::Quorum { quorum }) => {
                if quorum == 0 || quorum > checks.len().max(1) {
                    errors.push(config_error(
                        "gate.require.quorum",
                        format!("quorum {quorum} must be between 1 and the number of checks"),
                    ));
                }
                Require::Quorum(quorum)
            }
        };
        if errors.is_empty() {
            Ok(Gate {
                checks,
                require,
                baseline_file: self.baseline.map(|b| b.file),
            })
        } else {
            Err(errors)
        }
    }
}

fn resolve_check(
    check: CheckConfig,
    defaults: &DefaultsConfig,
    field: &str,
) -> Result<Check, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let attempt_timeout = check
        .attempt_timeout
        .or(defaults.attempt_timeout)
        .map_or(defaults::ATTEMPT_TIMEOUT, |d| d.0);
    let connect_timeout = check
        .connect_timeout
        .or(defaults.connect_timeout)
        .map_or(defaults::CONNECT_TIMEOUT, |d| d.0);
    if attempt_timeout.is_zero() || connect_timeout.is_zero() {
        errors.push(config_error(
            format!("{field}.attempt_timeout"),
            "timeouts must be greater than zero",
        ));
    }
    let kinds = [
        check.http.is_some(),
        check.grpc.is_some(),
        check.sse.is_some(),
        check.tcp.is_some(),
        check.ws.is_some(),
        check.command.is_some(),
        check.metrics.is_some(),
    ];
    let probe = match kinds.iter().filter(|k| **k).count() {
        1 => {
            let probe = if let Some(http) = check.http {
                resolve_http(http, defaults, &format!("{field}.http")).map(ProbeSpec::Http)
            } else if let Some(grpc) = check.grpc {
                resolve_grpc(grpc, defaults, attempt_timeout, &format!("{field}.grpc"))
                    .map(ProbeSpec::Grpc)
            } else if let Some(sse) = check.sse {
                resolve_sse(sse, defaults, attempt_timeout, &format!("{field}.sse"))
                    .map(ProbeSpec::Sse)
            } else if let Some(tcp) = check.tcp {
                resolve_tcp(tcp, &format!("{field}.tcp")).map(ProbeSpec::Tcp)
            } else if let Some(ws) = check.ws {
                super::ws::resolve_ws(ws, defaults, attempt_timeout, &format!("{field}.ws"))
                    .map(ProbeSpec::Ws)
            } else if let Some(command) = check.command {
                super::command::resolve_command(command, &format!("{field}.command"))
                    .map(ProbeSpec::Command)
            } else if let Some(metrics) = check.metrics {
                super::metrics::resolve_metrics(metrics, &format!("{field}.metrics"))
                    .map(ProbeSpec::Metrics)
            } else {
                unreachable!("one kind is present")
            };
            match probe {
                Ok(probe) => Some(probe),
                Err(mut more) => {
                    errors.append(&mut more);
                    None
                }
            }
        }
        0 => {
            errors.push(config_error(
                field,
                "a check needs one of `http`, `grpc`, `sse`, `tcp`, `ws`, `command` or `metrics`",
            ));
            None
        }
        _ => {
            errors.push(config_error(field, "a check has exactly one of `http`, `grpc`, `sse`, `tcp`, `ws`, `command` or `metrics`; split it into several checks"));
            None
        }
    };
    let readiness = merge_readiness(
        &defaults.readiness,
        check.readiness.as_ref(),
        &format!("{field}.readiness"),
    )
    .map_err(|e| errors.push(e))
    .ok();
    let observe = match check.observe {
        Some(ObserveSetting::Off) => Ok(None),
        Some(ObserveSetting::On(config)) => merge_observe(
            &defaults.observe,
            Some(&config),
            &format!("{field}.observe"),
        )
        .map(Some),
        None if observe_configured(&defaults.observe) => {
            merge_observe(&defaults.observe, None, &format!("{field}.observe")).map(Some)
        }
        None => Ok(None),
    };
    let observe = match observe {
        Ok(observe) => observe,
        Err(mut more) => {
            errors.append(&mut more);
            None
        }
    };
    match (probe, readiness, errors.is_empty()) {
        (Some(probe), Some(readiness), true) => Ok(Check {
            name: check.name,
            probe,
            attempt_timeout,
            connect_timeout,
            readiness,
            observe,
        }),
        _ => Err(errors),
    }
}

fn observe_configured(config: &ObserveConfig) -> bool {
    config.requests.is_some() || config.duration.is_some() || config.thresholds.is_some()
}
