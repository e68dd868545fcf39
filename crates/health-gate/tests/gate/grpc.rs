use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use health_gate::failure::FailureKind;
use health_gate::outcome::Stopped;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService, health_reporter};

use crate::{last_kind, only, run_yaml};

/// A tonic-health server on 127.0.0.1:0 whose Check calls are counted; with
/// `flip_after: Some((n, service))` the service turns SERVING exactly at the n-th call.
struct GrpcServer {
    addr: SocketAddr,
    // Owns the server task; dropping it stops the server.
    _runtime: tokio::runtime::Runtime,
}

impl GrpcServer {
    fn start(
        setup: impl FnOnce(&tokio::runtime::Runtime, HealthReporter),
        flip_after: Option<(u64, &'static str)>,
    ) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (reporter, _) = health_reporter();
        setup(&runtime, reporter.clone());
        let calls = Arc::new(AtomicU64::new(0));
        let service = HealthServer::with_interceptor(
            HealthService::from_health_reporter(reporter.clone()),
            move |request| {
                let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some((after, service)) = flip_after {
                    if call == after {
                        // Flip before this call is answered, so the n-th call already sees SERVING.
                        tokio::task::block_in_place(|| {
                            tokio::runtime::Handle::current().block_on(
                                reporter.set_service_status(service, ServingStatus::Serving),
                            )
                        });
                    }
                }
                Ok(request)
            },
        );
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream_from(listener))
                .await
        });
        Self {
            addr,
            _runtime: runtime,
        }
    }
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

fn grpc_gate(addr: SocketAddr, service: &str, readiness: &str) -> String {
    format!(
        "checks:\n  - name: memory\n    grpc: {{ addr: '{addr}', service: '{service}' }}\n    readiness: {{ interval: 50ms, deadline: 3s {readiness} }}\n"
    )
}

#[test]
fn not_serving_then_serving_becomes_ready() {
    let server = GrpcServer::start(
        |runtime, reporter| {
            runtime.block_on(
                reporter.set_service_status("memory.v1.Memory", ServingStatus::NotServing),
            )
        },
        Some((3, "memory.v1.Memory")),
    );
    let report = run_yaml(&grpc_gate(server.addr, "memory.v1.Memory", ""));
    let check = only(&report);
    assert!(check.passed, "{check:?}");
    assert_eq!(
        check.readiness.failures.get(&FailureKind::NotServing),
        Some(&2)
    );
    assert_eq!(check.readiness.attempts, 3);
}

#[test]
fn an_unknown_service_name_is_fatal_at_once() {
    let server = GrpcServer::start(|_, _| {}, None);
    let report = run_yaml(&grpc_gate(server.addr, "no.such.Service", ""));
    let check = only(&report);
    assert_eq!(last_kind(check), Some(FailureKind::GrpcNotFound));
    assert_eq!(check.readiness.stopped, Some(Stopped::Fatal));
    assert_eq!(check.readiness.attempts, 1);
}

#[test]
fn a_server_without_the_health_service_is_unimplemented_and_fatal() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    runtime.spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::default())
            .serve_with_incoming(tokio_stream_from(listener))
            .await
    });
    let report = run_yaml(&grpc_gate(addr, "", ""));
    let check = only(&report);
    assert_eq!(
        last_kind(check),
        Some(FailureKind::GrpcUnimplemented),
        "{check:?}"
    );
    assert_eq!(check.readiness.attempts, 1);
    assert!(
        check.failure_reason().contains("no grpc.health.v1 service"),
        "{}",
        check.failure_reason()
    );
}

#[test]
fn the_overall_health_and_several_services_are_checked() {
    let server = GrpcServer::start(
        |runtime, reporter| {
            runtime.block_on(async {
                reporter
                    .set_service_status("", ServingStatus::Serving)
                    .await;
                reporter
                    .set_service_status("tools.v1.Tools", ServingStatus::Serving)
                    .await;
            })
        },
        None,
    );
    let report = run_yaml(&format!(
        "checks:\n  - name: g\n    grpc: {{ addr: '{}', services: ['', tools.v1.Tools] }}\n    observe: {{ requests: 20, concurrency: 2 }}\n",
        server.addr
    ));
    let check = only(&report);
    assert!(check.passed, "{check:?}");
    assert_eq!(check.observation.as_ref().expect("observed").failed, 0);
}

#[test]
fn grpc_probe_mode_speaks_grpc_health_probe_exit_codes() {
    let server = GrpcServer::start(
        |runtime, reporter| {
            runtime.block_on(async {
                reporter
                    .set_service_status("up", ServingStatus::Serving)
                    .await;
                reporter
                    .set_service_status("down", ServingStatus::NotServing)
                    .await;
            })
        },
        None,
    );
    let probe = |args: &[&str]| {
        test_support::run(
            test_support::tool_command(std::path::Path::new(env!("CARGO_BIN_EXE_health-gate")))
                .arg("grpc-probe")
                .args(args),
        )
    };
    let addr = format!("-addr={}", server.addr);
    let serving = probe(&[&addr, "-service=up"]);
    assert_eq!(serving.code, Some(0), "{serving:?}");
    assert!(serving.stderr.contains("status: SERVING"));
    assert_eq!(probe(&[&addr, "-service", "down"]).code, Some(4));
    assert_eq!(probe(&[&addr, "-service=unknown"]).code, Some(3));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = format!("-addr={}", closed.local_addr().expect("addr"));
    drop(closed);
    assert_eq!(probe(&[&closed_addr]).code, Some(2));
    let missing = probe(&["-service=up"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("-addr not specified"),
        "{}",
        missing.stderr
    );
}
