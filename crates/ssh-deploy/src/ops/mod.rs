//! The subcommands' flows, one file each: they take validated [`crate::options`] and run them.

pub(crate) mod deploy;
pub(crate) mod exec;
pub(crate) mod pack;
pub(crate) mod releases;
pub(crate) mod rollback;
pub(crate) mod unlock;
