//! Durations and byte sizes as written in the gate file and flags.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `250ms`, `2s`, `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `250ms`, `2s`, `1m30s`; a bare number is refused (the unit is never guessed).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("`{text}` is not a duration: write it with a unit, e.g. 250ms, 2s, 1m30s")
    })
}

/// Parses a byte size: `65536`, `64KiB`, `1MiB`, `10kB`.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write e.g. 65536, 64KiB or 1MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit `{other}`: use B, KiB, MiB, kB or MB"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1GB").is_err());
    }
}
