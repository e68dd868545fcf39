//! A YAML tree whose every node knows where it came from, and the one path from a YAML
//! problem to a runner-protocol `Diagnostic` with `file:line:col`.
//!
//! `serde_yaml_ng::Value` forgets positions, and deserialising with serde stops at the first
//! error. We build our own small tree from `saphyr-parser`'s spanned events instead: one parser,
//! so the positions and the values can never disagree; callers extract their typed model from
//! it with every problem collected (release-model's `load`, ssh-deploy's compose spec).
//!
//! ```text
//! read::read_text (bounded) --parse (limits, aliases, `<<` merges)--> Node { kind, span }
//!     Node::locate("a.b[1]") --> span --diagnostic::place--> Diagnostic at file:line:col
//! ```
//!
//! Tools that keep serde_yaml_ng for their model run [`check_depth`] first (libyaml is slow
//! on deep nesting) and place serde's and their validation errors with [`Node::locate`].
//! Split out of release-model like zizmor's `yamlpath`: four tools need it.

pub mod depth;
pub mod diagnostic;
mod parse;
mod path;
pub mod read;
mod tree;

pub use depth::{MAX_DEPTH, TooDeep, check_depth};
pub use parse::{ErrorKind, Limits, SyntaxError, parse, parse_with_limits};
pub use read::{ReadError, read_text};
pub use tree::{Node, NodeKind, Position, Resolved, Span, Style, key_text};
