//! How a release is activated on hosts: the `current` symlink switch in batches ([`symlink`]),
//! two slots behind a proxy ([`blue_green`]), docker compose hosts ([`compose`], issue #11).
//! Each records its hosts in a [`crate::rollout::Rollout`] and ends through it.

pub(crate) mod blue_green;
pub mod compose;
pub(crate) mod symlink;
