//! Checks across filters: names that collide with change-detect's own outputs, and
//! dependencies that name no filter or go round in a cycle.

use std::collections::HashSet;

use crate::config::error::ConfigError;
use crate::config::read::ReadFilter;
use crate::outputs::STATIC_OUTPUTS;

/// Refuses a filter named like an output change-detect writes itself.
pub(crate) fn names(filters: &[ReadFilter]) -> Result<(), ConfigError> {
    let names: HashSet<&str> = filters.iter().map(|f| f.filter.name.as_str()).collect();
    for read in filters {
        let name = read.filter.name.as_str();
        let refuse = |message: String| {
            ConfigError::new(message)
                .at(read.key)
                .field(name)
                .hint("rename the filter")
        };
        if STATIC_OUTPUTS.contains(&name) {
            return Err(refuse(format!(
                "filter name `{name}` is also an output of change-detect"
            )));
        }
        for suffix in ["_count", "_files"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if names.contains(base) {
                    return Err(refuse(format!(
                        "filter name `{name}` collides with the `{suffix}` output of filter `{base}`"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Refuses a dependency on no filter, and filters that depend on each other in a cycle.
pub(crate) fn dependencies(filters: &[ReadFilter]) -> Result<(), ConfigError> {
    let index = |name: &str| filters.iter().position(|f| f.filter.name == name);
    for read in filters {
        let filter = &read.filter;
        for (position, dependency) in filter.depends_on.iter().enumerate() {
            if index(dependency).is_none() {
                return Err(ConfigError::new(format!(
                    "filter `{}` depends on `{dependency}`, which is not a filter",
                    filter.name
                ))
                .at(read.depends_on[position])
                .field(format!("{}.depends-on[{position}]", filter.name))
                .hint(format!(
                    "name one of: {}",
                    filters
                        .iter()
                        .map(|f| format!("`{}`", f.filter.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    // Depth-first search for a cycle.
    let mut state = vec![0u8; filters.len()]; // 0 new, 1 on stack, 2 done
    fn visit(
        node: usize,
        filters: &[ReadFilter],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[node] = 1;
        path.push(node);
        for dependency in &filters[node].filter.depends_on {
            let Some(next) = filters.iter().position(|f| &f.filter.name == dependency) else {
                continue;
            };
            if state[next] == 1 {
                let start = path.iter().position(|n| *n == next).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(next);
                return Some(cycle);
            }
            if state[next] == 0 {
                if let Some(cycle) = visit(next, filters, state, path) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        state[node] = 2;
        None
    }
    for start in 0..filters.len() {
        if state[start] != 0 {
            continue;
        }
        if let Some(cycle) = visit(start, filters, &mut state, &mut Vec::new()) {
            let names: Vec<&str> = cycle
                .iter()
                .map(|i| filters[*i].filter.name.as_str())
                .collect();
            let first = &filters[cycle[0]];
            let mut error = ConfigError::new(format!(
                "filters depend on each other in a cycle: {}",
                names.join(" -> ")
            ))
            .field(format!("{}.depends-on", names[0]))
            .hint("remove one of the `depends-on` entries");
            error.span = first.depends_on_key.or(Some(first.key));
            return Err(error);
        }
    }
    Ok(())
}
