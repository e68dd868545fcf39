//! The act suite: the six actions and the three reusable templates run inside a
//! GitHub-compatible runner (nektos/act, host mode `-P ubuntu-latest=-self-hosted`, no Docker),
//! as a user's workflow runs them; see suite-tests/workflows/ for the workflows and the stand-ins.
//!
//! - `actions`: every action via `uses: ./actions/<name>`, with `binary-path` and with
//!   `install: download` of the pinned release tag from a loopback HTTPS mirror.
//! - `templates`: the three reusable workflows through caller workflows (`workflow_call`).
//! - `static_checks`: where act is more lenient than GitHub (undeclared composite outputs,
//!   `##[` mid-line, `$/` refs), checks that do not need act.
//!
//! Every server is on 127.0.0.1 with port 0 (or a port the harness just found free), every
//! process is stopped by pid, and act itself runs behind a dead loopback proxy so it cannot
//! reach the network even by mistake.

mod actions;
mod fixture;
mod log;
mod static_checks;
mod templates;
