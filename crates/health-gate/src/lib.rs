//! health-gate: wait for readiness, then observe success rate and latency, and decide whether
//! a deploy goes ahead or rolls back.
//!
//! The engine is a library, in layers that import only downwards (no cycle):
//!
//! 1. pure pieces: [`failure`] (classified failures), [`limits`] (bounded reads), `threshold`
//!    (error-rate and latency thresholds), `url` (URLs without passwords), `expect`
//!    (statuses, JSONPath, text), `exposition` and `promql` (Prometheus text and the PromQL
//!    subset the scrape source evaluates);
//! 2. [`config`]: the gate file and the quick-form flags, validated into a [`config::Gate`],
//!    one module per probe kind; [`outcome`]: what the two phases of a check found;
//! 3. `probe` (one attempt of each kind), `readiness` and `observe` (the two phases),
//!    [`baseline`], [`report`];
//! 4. [`gate`]: runs every check; this file: flags -> options -> gate -> outputs.
//!
//! ssh-deploy embeds a gate through [`embed`] (parse, evaluate, verdict, baseline).

// Bottom: pure data and parsing, no I/O beyond bounded file reads.
mod expect;
mod exposition;
pub mod failure;
pub mod limits;
mod promql;
mod threshold;
mod url;
// The gate file and flags, validated; the results of a check's two phases.
pub mod config;
pub mod outcome;
// Running a check: one attempt, then the phases, then the verdict.
pub mod baseline;
pub mod gate;
mod observe;
mod probe;
mod readiness;
pub mod report;
// The narrow API ssh-deploy embeds a gate through.
pub mod embed;
// The command line and the grpc_health_probe-compatible mode.
mod cli;
mod grpc_probe;

mod error;
pub use error::Error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use cli::Cli;
use runner_protocol::{Runner, Verdict};

use crate::baseline::BaselineFile;
use crate::config::{
    CheckConfig, CommandConfig, ConfigError, DefaultsConfig, ExpectConfig, Gate, GateFile,
    GrpcConfig, HttpConfig, HumanDuration, ObserveConfig, ProbeSpec, ReadinessConfig, SseConfig,
    TcpConfig, ThresholdsConfig, TlsConfig, WsConfig,
};
use crate::gate::{CheckInputs, Progress, baseline_from, build_report, run_gate};
use crate::probe::ResolvedHeaders;
use crate::report::{Decision, Report};

/// The step outputs this tool writes; `action.yml` must declare exactly these.
pub const OUTPUTS: &[&str] = &["decision", "report"];

/// Validated options.
#[derive(Debug)]
pub struct Options {
    /// The gate.
    pub gate: Gate,
    /// Baseline to load.
    pub baseline: Option<PathBuf>,
    /// Where to record a new baseline.
    pub record_baseline: Option<PathBuf>,
    /// Where to write the report.
    pub report_file: Option<PathBuf>,
    /// Where each check of `gate.checks` comes from (the gate file's path, or
    /// `command line`) and its index there, for messages.
    pub origins: Vec<(String, usize)>,
    /// The gate file's text, which places problems found after validation (an unset
    /// header variable) at their line.
    pub gate_text: Option<String>,
}

fn flag_lines(lists: &[runner_protocol::input::LineList]) -> Vec<String> {
    runner_protocol::input::LineList::flatten(lists.iter().cloned())
}

fn quick_form(cli: &Cli) -> Result<Option<GateFile>, Error> {
    let mut headers = BTreeMap::new();
    for line in flag_lines(&cli.header) {
        let (name, value) = line.split_once(':').ok_or_else(|| Error::Flag {
            flag: "--header",
            message: format!("`{line}` is not `Name: value`"),
        })?;
        headers.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    let mut checks = Vec::new();
    let check = |name: &str| CheckConfig {
        name: name.to_owned(),
        http: None,
        grpc: None,
        sse: None,
        tcp: None,
        ws: None,
        command: None,
        metrics: None,
        attempt_timeout: None,
        connect_timeout: None,
        readiness: None,
        observe: None,
    };
    if let Some(url) = &cli.url {
        checks.push(CheckConfig {
            http: Some(HttpConfig {
                url: url.clone(),
                method: Some(cli.method.clone()),
                headers: BTreeMap::new(),
                body: None,
                expect: ExpectConfig {
                    status: vec![serde_yaml_ng::Value::String(cli.expect_status.clone())],
                    body_contains: cli.body_contains.iter().cloned().collect(),
                    ..ExpectConfig::default()
                },
                max_body: None,
                redirects: Default::default(),
                tls: None,
                connect_to: cli.connect_to.clone(),
                proxy: None,
            }),
            ..check("url")
        });
    }
    if let Some(addr) = &cli.grpc_addr {
        let services = flag_lines(&cli.grpc_service);
        checks.push(CheckConfig {
            grpc: Some(GrpcConfig {
                addr: addr.clone(),
                service: None,
                services: (!services.is_empty()).then_some(services),
                tls: cli.grpc_tls,
                authority: None,
                metadata: BTreeMap::new(),
                rpc_timeout: None,
            }),
            ..check("grpc")
        });
    }
    if let Some(url) = &cli.sse_url {
        checks.push(CheckConfig {
            sse: Some(SseConfig {
                url: url.clone(),
                headers: BTreeMap::new(),
                first_event_within: None,
                event: None,
                data_contains: None,
                json: Vec::new(),
                events: None,
                idle_timeout: None,
                heartbeat_counts: None,
                tls: None,
                connect_to: cli.connect_to.clone(),
                proxy: None,
            }),
            ..check("sse")
        });
    }
    if let Some(addr) = &cli.tcp_addr {
        checks.push(CheckConfig {
            tcp: Some(TcpConfig { addr: addr.clone() }),
            ..check("tcp")
        });
    }
    if let Some(url) = &cli.ws_url {
        checks.push(CheckConfig {
            ws: Some(WsConfig {
                url: url.clone(),
                headers: BTreeMap::new(),
                subprotocols: flag_lines(&cli.ws_subprotocol),
                handshake_timeout: None,
                steps: Vec::new(),
                tls: None,
            }),
            ..check("ws")
        });
    }
    if let Some(line) = &cli.command {
        checks.push(CheckConfig {
            command: Some(CommandConfig {
                argv: None,
                shell: Some(line.clone()),
                env: BTreeMap::new(),
                cwd: None,
                exit_codes: None,
                stdout: None,
                stderr: None,
            }),
            ..check("command")
        });
    }
    if checks.is_empty() {
        return Ok(None);
    }
    let mut thresholds = vec![format!("rate{}", cli.max_error_rate.trim())];
    thresholds.extend(flag_lines(&cli.threshold));
    Ok(Some(GateFile {
        version: Some(1),
        defaults: DefaultsConfig {
            attempt_timeout: Some(HumanDuration(cli.attempt_timeout)),
            connect_timeout: Some(HumanDuration(cli.connect_timeout)),
            headers,
            tls: TlsConfig {
                verify: Some(!cli.insecure),
                ca_file: cli.ca_file.clone(),
                client_cert: cli.client_cert.clone(),
                client_key: cli.client_key.clone(),
                server_name: cli.tls_server_name.clone(),
            },
            proxy: None,
            readiness: ReadinessConfig {
                initial_delay: Some(HumanDuration(cli.initial_delay)),
                interval: Some(HumanDuration(cli.interval)),
                backoff: None,
                success_threshold: Some(cli.success_threshold),
                deadline: Some(HumanDuration(cli.deadline)),
                fatal: None,
            },
            observe: if cli.observe_requests > 0 {
                ObserveConfig {
                    requests: Some(cli.observe_requests),
                    concurrency: Some(cli.concurrency),
                    warmup: Some(cli.warmup),
                    thresholds: Some(ThresholdsConfig::K6(thresholds)),
                    ..ObserveConfig::default()
                }
            } else {
                ObserveConfig::default()
            },
        },
        baseline: None,
        checks,
        gate: Default::default(),
    }))
}

/// Reads and parses the gate file; returns its text too, for the positions of validation errors.
fn load_gate_file(path: &Path) -> Result<(GateFile, String), Error> {
    let text = limits::read_text(path, limits::MAX_GATE_FILE_BYTES).map_err(|error| {
        Error::ReadGateFile {
            path: path.to_owned(),
            source: error.into_io(),
        }
    })?;
    let file = GateFile::parse(&text).map_err(|error| Error::ParseGateFile {
        path: path.to_owned(),
        text: text.clone(),
        problem: config::GateFileError::from_parse(&error),
    })?;
    Ok((file, text))
}

impl Options {
    /// Validates the command line (and reads the gate file).
    pub fn from_cli(cli: &Cli) -> Result<Self, Error> {
        let mut checks = Vec::new();
        let mut origins = Vec::new();
        let mut baseline = cli.baseline.clone();
        let mut require = config::Require::All;
        let mut gate_text = None;
        if let Some(path) = &cli.gate_file {
            let (file, text) = load_gate_file(path)?;
            let gate = file.resolve().map_err(|errors| Error::Config {
                origin: path.display().to_string(),
                errors,
                text: Some(text.clone()),
            })?;
            baseline = baseline.or(gate.baseline_file);
            require = gate.require;
            origins.extend((0..gate.checks.len()).map(|i| (path.display().to_string(), i)));
            checks.extend(gate.checks);
            gate_text = Some(text);
        }
        if let Some(file) = quick_form(cli)? {
            let gate = file.resolve().map_err(|errors| Error::Config {
                origin: "command line".into(),
                errors,
                text: None,
            })?;
            for (index, check) in gate.checks.into_iter().enumerate() {
                if checks.iter().any(|c: &config::Check| c.name == check.name) {
                    return Err(Error::Config {
                        origin: "command line".into(),
                        errors: vec![ConfigError {
                            field: check.name.clone(),
                            message: format!(
                                "the gate file already has a check named `{}`",
                                check.name
                            ),
                        }],
                        text: None,
                    });
                }
                origins.push(("command line".to_owned(), index));
                checks.push(check);
            }
        }
        if checks.is_empty() {
            return Err(Error::NoChecks);
        }
        Ok(Self {
            gate: Gate {
                checks,
                require,
                baseline_file: baseline.clone(),
            },
            baseline,
            record_baseline: cli.record_baseline.clone(),
            report_file: cli.report_file.clone(),
            origins,
            gate_text,
        })
    }
}

/// The URLs a check sends requests to (a password in one is masked before anything runs).
fn check_urls(check: &config::Check) -> Vec<&reqwest::Url> {
    match &check.probe {
        ProbeSpec::Http(spec) => vec![&spec.url],
        ProbeSpec::Sse(spec) => vec![&spec.url],
        ProbeSpec::Ws(spec) => vec![&spec.url],
        ProbeSpec::Metrics(spec) => match &spec.source {
            config::Source::Scrape(url) | config::Source::Prometheus(url) => {
                vec![url]
            }
            config::Source::CloudWatch(_) => Vec::new(),
        },
        ProbeSpec::Grpc(_) | ProbeSpec::Tcp(_) | ProbeSpec::Command(_) => Vec::new(),
    }
}

/// Resolves headers and metadata, masking values read from the environment and passwords in
/// URLs. An unset variable is reported with the file (or command line) and check it is in.
fn check_inputs(
    gate: &Gate,
    origins: &[(String, usize)],
    gate_text: Option<&str>,
    runner: &Runner,
    baseline: Option<&BaselineFile>,
) -> Result<CheckInputs, Error> {
    let mut inputs = CheckInputs::default();
    for (position, check) in gate.checks.iter().enumerate() {
        for url in check_urls(check) {
            if let Some(password) = url.password() {
                runner.secret(password);
                if let Ok(decoded) = percent_decode(password) {
                    runner.secret(&decoded);
                }
            }
        }
        let declared = match &check.probe {
            ProbeSpec::Http(spec) => spec.headers.clone(),
            ProbeSpec::Sse(spec) => spec.headers.clone(),
            ProbeSpec::Grpc(spec) => spec.metadata.clone(),
            ProbeSpec::Ws(spec) => spec.headers.clone(),
            ProbeSpec::Metrics(spec) => spec.headers.clone(),
            ProbeSpec::Tcp(_) | ProbeSpec::Command(_) => Vec::new(),
        };
        let mut lookup = |name: &str| {
            runner
                .env()
                .get(name)
                .map(|value| runner.secret(value).expose().to_owned())
        };
        let headers = ResolvedHeaders::resolve(&declared, &mut lookup).map_err(|e| {
            let (origin, index) = origins
                .get(position)
                .cloned()
                .unwrap_or_else(|| ("command line".to_owned(), position));
            let list = if matches!(check.probe, ProbeSpec::Grpc(_)) {
                "metadata"
            } else {
                "headers"
            };
            let name = match &e {
                probe::SetupError::MissingEnv { name, .. } => name.clone(),
                _ => String::new(),
            };
            let text = gate_text
                .filter(|_| origin != "command line")
                .map(str::to_owned);
            Error::Config {
                origin,
                errors: vec![ConfigError {
                    field: format!("checks[{index}].{}.{list}.{name}", check.probe.kind()),
                    message: format!(
                        "check `{}`: {e}; set it in the step's `env:` (e.g. from a secret)",
                        check.name
                    ),
                }],
                text,
            }
        })?;
        inputs.headers.insert(check.name.clone(), headers);
        if let (Some(file), ProbeSpec::Metrics(_)) = (baseline, &check.probe) {
            if let Some(recorded) = file.checks.get(&check.name) {
                recorded.check_same_target(check)?;
                inputs
                    .baselines
                    .insert(check.name.clone(), recorded.clone());
            }
        } else if let (Some(file), Some(observation)) = (baseline, &check.observe) {
            if let Some(recorded) = file.checks.get(&check.name) {
                recorded.check_comparable(check, observation)?;
                inputs
                    .baselines
                    .insert(check.name.clone(), recorded.clone());
            }
        }
    }
    Ok(inputs)
}

fn warn_about_insecure_tls(gate: &Gate, runner: &Runner) {
    for check in &gate.checks {
        let verify = match &check.probe {
            ProbeSpec::Http(spec) => spec.tls.verify,
            ProbeSpec::Sse(spec) => spec.tls.verify,
            ProbeSpec::Grpc(spec) => spec.tls.verify,
            ProbeSpec::Ws(spec) => spec.tls.verify,
            ProbeSpec::Tcp(_) | ProbeSpec::Command(_) | ProbeSpec::Metrics(_) => true,
        };
        if !verify {
            runner.warn(&format!(
                "check `{}` does NOT verify TLS certificates: any server, including an attacker's, is accepted; trust the server with a CA file instead",
                check.name
            ));
        }
    }
}

/// Percent-decodes a URL component (a password as written in the URL).
fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[index], bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) if hex(high).is_some() && hex(low).is_some() => {
                let value = hex(high).unwrap_or(0) * 16 + hex(low).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                index += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// `health-gate grpc-probe ...`: when the first argument selects the grpc_health_probe
/// compatible mode, runs it (printing like grpc_health_probe) and returns its exit code.
pub fn grpc_probe_mode(args: &[String]) -> Option<std::process::ExitCode> {
    if args.get(1).map(String::as_str) != Some(grpc_probe::SUBCOMMAND) {
        return None;
    }
    let (code, line) = match grpc_probe::parse(&args[2..]) {
        Ok(probe_args) => grpc_probe::run(&probe_args),
        Err(message) => (1, message),
    };
    let console = runner_protocol::console::Console::new(
        false,
        None,
        runner_protocol::console::shared(std::io::stdout()),
        runner_protocol::console::shared(std::io::stderr()),
        runner_protocol::secret::Masker::default(),
    );
    // grpc_health_probe logs its result on stderr, success included.
    console.log(&line);
    Some(std::process::ExitCode::from(code))
}

/// Runs `health-gate` with parsed flags.
pub fn run(cli: Cli, runner: &mut Runner) -> Result<Verdict, Error> {
    let options = Options::from_cli(&cli)?;
    let baseline = options
        .baseline
        .as_deref()
        .map(BaselineFile::load)
        .transpose()?;
    let inputs = check_inputs(
        &options.gate,
        &options.origins,
        options.gate_text.as_deref(),
        runner,
        baseline.as_ref(),
    )?;
    warn_about_insecure_tls(&options.gate, runner);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let progress: Progress = Arc::new(Mutex::new(vec![None; options.gate.checks.len()]));
    let started = std::time::Instant::now();
    tracing::info!(
        checks = options.gate.checks.len(),
        "health-gate: waiting for readiness"
    );
    let interrupted = runtime.block_on(async {
        let interrupts = runner_protocol::signal::Interrupts::listen().map_err(Error::Runtime)?;
        Ok::<_, Error>(tokio::select! {
            () = run_gate(&options.gate, &inputs, progress.clone()) => false,
            _ = interrupts.after(0) => true,
        })
    })?;
    // Cancel whatever is still running at once (a hung attempt must not delay the exit).
    runtime.shutdown_background();
    let report = build_report(&options.gate, &progress, interrupted, started.elapsed());
    publish(runner, &report, options.report_file.as_deref())?;

    if let Some(path) = &options.record_baseline {
        if report.decision == Decision::Go {
            baseline_from(&options.gate, &report).save(path)?;
            runner.notice(&format!("recorded a baseline in {}", path.display()));
        } else {
            runner.warn("not recording a baseline: the gate did not pass");
        }
    }
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.failure_reason()))
        .collect();
    Ok(if interrupted {
        Verdict::Interrupted(format!(
            "health-gate interrupted after {} of {} checks finished; decision rollback",
            report.checks.len(),
            options.gate.checks.len()
        ))
    } else if report.decision == Decision::Go {
        Verdict::Success
    } else {
        Verdict::Failed(format!(
            "health-gate decided rollback: {}",
            failed.join("; ")
        ))
    })
}

fn publish(runner: &mut Runner, report: &Report, report_file: Option<&Path>) -> Result<(), Error> {
    let json = serde_json::to_value(report)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    runner.set_output("decision", report.decision.as_str())?;
    // An object in `--output-format json`; GitHub gets its compact JSON text.
    runner.set_output("report", json)?;
    if let Some(path) = report_file {
        let pretty = serde_json::to_string_pretty(report).unwrap_or_default();
        let write = || {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, pretty + "\n")
        };
        write().map_err(|source| Error::WriteReport {
            path: path.to_owned(),
            source,
        })?;
    }
    for line in report.text_table().lines() {
        runner.console().log(line);
    }
    runner.console().log(&format!(
        "decision: {} ({} of {} checks passed, {} required)",
        report.decision.as_str(),
        report.passed,
        report.checks.len(),
        report.required
    ));
    let summary = runner.summary();
    summary.heading(2, &format!("health-gate: {}", report.decision.as_str()));
    summary.table(&Report::HEADERS, report.rows());
    Ok(())
}
