//! Activation strategies beyond the `current` symlink switch (issue #11).

pub mod compose;

use crate::deploy::Strategy;
use crate::options::Error;

/// The error for a strategy this build does not carry.
pub fn unavailable(strategy: Strategy) -> Error {
    Error::Usage(format!(
        "--strategy {}: not built in this branch; use `symlink` or `compose`",
        match strategy {
            Strategy::SymlinkSwitch => "symlink",
            Strategy::BlueGreen => "blue-green",
            Strategy::Compose => "compose",
        }
    ))
}
