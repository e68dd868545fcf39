//! Cross-cutting tests live in `suite-tests/` (package `suite-tests`); this library holds what several of them share.

pub mod runner_rules;
