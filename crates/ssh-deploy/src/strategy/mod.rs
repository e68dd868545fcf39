//! Activation strategies beyond the default `current` switch (issue #11).

pub mod blue_green;
pub mod compose;
