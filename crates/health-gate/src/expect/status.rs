//! Accepted HTTP statuses.

/// Accepted statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    /// 200-299.
    pub fn default_success() -> Self {
        StatusSet(vec![(200, 299)])
    }

    /// True when `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }

    /// Parses `200`, `200-299`, `2xx`, comma lists.
    pub fn parse_list(items: &[String]) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in items.iter().flat_map(|i| i.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let range = if let Some(class) = item.strip_suffix("xx") {
                let digit: u16 = class.parse().map_err(|_| status_error(item))?;
                (digit * 100, digit * 100 + 99)
            } else if let Some((low, high)) = item.split_once('-') {
                let low: u16 = low.trim().parse().map_err(|_| status_error(item))?;
                let high: u16 = high.trim().parse().map_err(|_| status_error(item))?;
                (low, high)
            } else {
                let code: u16 = item.parse().map_err(|_| status_error(item))?;
                (code, code)
            };
            if range.0 < 100 || range.1 > 599 || range.0 > range.1 {
                return Err(status_error(item));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Ok(Self::default_success());
        }
        Ok(StatusSet(ranges))
    }
}

fn status_error(item: &str) -> String {
    format!("`{item}` is not a status: write 200, 200-299 or 2xx (100..599)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists() {
        let set = StatusSet::parse_list(&["2xx, 304".into()]).expect("valid");
        assert!(set.contains(204) && set.contains(304) && !set.contains(301));
        assert!(StatusSet::parse_list(&["99".into()]).is_err());
        assert!(StatusSet::parse_list(&["300-200".into()]).is_err());
        assert_eq!(
            StatusSet::parse_list(&[]).expect("empty"),
            StatusSet::default_success()
        );
    }
}
