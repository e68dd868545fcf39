//! The seed pipelines end to end (issue 21), the way their teams would run them: the workflow
//! is a template from action-templates/ (through a caller in suite-tests/workflows/seeds/) or the
//! workflow a crate README shows for the seed, run by nektos/act in host mode; the hosts are a
//! `test_support::fleet::Fleet` (each host its own network namespace, its own sshd, host keys
//! verified from known_hosts); the services are the Rust services in examples/seed-services,
//! built by the workflow, started per host by the custom service manager (deploy/bin/ctl: the
//! hosts run no systemd); nginx is the real Debian nginx.
//!
//! - `scenario_000`: five services + the frontend, one artifact, staging, three production
//!   hosts in rolling batches, restarts in dependency order, the seed's http + gRPC + SSE +
//!   WebSocket gate; a release whose gRPC service never turns SERVING on the last host rolls
//!   back every host already switched.
//! - `scenario_001`: one service: backup, stop, upload, start, verify, rollback on a failed
//!   verify; then blue-green behind nginx, with a switch-back.
//! - `scenario_002`: a five-service monorepo: change-detect on the push's commit range, only
//!   the changed services' images built and pushed to the loopback registry, staging, then
//!   production blue-green (slots are containers of the image) against a recorded baseline; a
//!   slower and a failing release are switched back.
//! - `scenario_003`: compose hosts: staging on a push to main, production on a tag, api-1..3
//!   rolled one at a time behind HAProxy with a gate each; a broken api-2 rolls back api-1
//!   (the Docker Engine, compose v2 and registry of scripts/lib/engine.sh; see there for the
//!   one dockerd both hosts share).
//! - `scenario_004`: release.yaml -> checkouts of bare platform and bundle repositories ->
//!   baked bundles -> images FROM a platform image, pushed to the loopback registry -> ECS on
//!   moto_server (the descriptor in the processor only) -> the compose host's `.env.*` files;
//!   a platform release whose loader ignores the descriptor fails the gate and every ECS
//!   service goes back to its previous task definition.
//!
//! Each scenario prints a summary (what ran where, how long, what rolled back) and the
//! measurements of issue 21: its wall time, the time from "gate failed" to "previous release
//! serving" on the fleet, and the failed requests through the proxy while it deployed
//! (`cargo test -p suite-tests --test seeds -- --nocapture` shows them).
//!
//! Stand-ins, as in the act suite (suite-tests/workflows/stand-ins/README.md): the remote actions
//! (checkout of other repositories, setup-node, upload/download-artifact) and `rustup`; the
//! frontend's `vite build` is a node script (no npm registry here). The cargo build is real
//! (offline, from the workspace's own lock file's versions). act ignores `environment:` (no
//! approval step) and `concurrency:`.

#[allow(
    dead_code,
    reason = "shared with the act suite, which uses the helpers these scenarios do not"
)]
#[path = "../act/fixture.rs"]
mod fixture;
#[allow(
    dead_code,
    reason = "shared with the act suite, which uses the helpers these scenarios do not"
)]
#[path = "../act/log.rs"]
mod log;

mod common;
mod probe;
mod scenario_000;
mod scenario_001;
mod scenario_002;
mod scenario_003;
mod scenario_004;
