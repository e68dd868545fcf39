//! Integration tests of `change-detect`: the binary's command line, glob semantics against a
//! picomatch oracle, every event path against real git repositories, and the REST path
//! against a local HTTP server.

mod api;
mod ci;
mod cli;
mod common;
mod events;
mod filters;
mod globs;
mod last_deployment;
mod last_success;
mod limits;
mod lists;
mod oracle;
