//! Inventory files: hosts, groups, per-host user/port/root/jump host and vars (YAML).
//!
//! ```yaml
//! user: deploy                # defaults for every host
//! root: /opt/app
//! vars: { web_port: 8080 }
//! groups:
//!   web:
//!     vars: { role: web }
//!     hosts:
//!       web-1: { address: 10.0.0.5, port: 2222, vars: { web_port: 8081 } }
//!       web-2: {}
//! hosts:                      # hosts outside any group
//!   worker-1: { user: ops, jump: bastion@10.0.0.1 }
//! ```
//!
//! Hosts keep file order (groups first, then `hosts:`). Vars resolve host > group > file and
//! are used in gate files as `{vars.NAME}`. Errors carry `file:line:column` from the parser;
//! validation happens while deserializing, so a bad host name or path is reported where it is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use runner_protocol::Diagnostic;
use yaml_spans::{Node, NodeKind, Position, Span, key_text};

use crate::quote::RemotePath;
use crate::remote::HostTarget;

/// An inventory problem, rendered `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InventoryError {
    /// The file could not be read.
    #[error("inventory {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// YAML syntax, an unknown field, an invalid value, a host listed twice: placed at its
    /// `file:line:col`.
    #[error("{}", yaml_spans::diagnostic::one_line(.0))]
    At(Box<Diagnostic>),
    /// A problem outside the file (the `--group` it does not have).
    #[error("{path}: {message}")]
    File {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// `message` at `span` of the inventory `text` (read from `origin`).
fn placed(origin: &str, text: &str, span: Span, message: String) -> InventoryError {
    InventoryError::At(Box::new(yaml_spans::diagnostic::place(
        Diagnostic::new(message),
        origin,
        text,
        span,
        None,
    )))
}

/// Where host `name` is listed: `groups.<group>.hosts.<name>`, or `hosts.<name>` (the key:
/// a host may be listed with no settings). Host names may hold dots, so keys are matched
/// whole, not as a dotted path.
fn host_span(root: &Node, group: Option<&str>, name: &str) -> Span {
    fn entry<'n>(node: &'n Node, key: &str) -> Option<(Span, &'n Node)> {
        match &node.kind {
            NodeKind::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| key_text(k) == key)
                .map(|(k, v)| (k.span, v)),
            _ => None,
        }
    }
    let mut node = root;
    let mut span = root.span;
    let route = group
        .map(|g| vec!["groups", g, "hosts", name])
        .unwrap_or_else(|| vec!["hosts", name]);
    for key in route {
        match entry(node, key) {
            Some((key_span, value)) => {
                span = key_span;
                node = value;
            }
            None => break,
        }
    }
    span
}

impl From<InventoryError> for crate::error::Error {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::At(diagnostic) => crate::error::Error::Invalid(vec![*diagnostic]),
            other => crate::error::usage(other.to_string()),
        }
    }
}

/// One host of the inventory, with everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InventoryHost {
    /// The name in the file (`web-1`); `{host}` in gate files is the address.
    pub name: String,
    /// Where to connect.
    pub target: HostTarget,
    /// Deploy root for this host (else `--root`).
    pub root: Option<RemotePath>,
    /// Jump host for this host (else `--jump-host`).
    pub jump: Option<HostTarget>,
    /// Vars: host > group > file.
    pub vars: BTreeMap<String, String>,
    /// Groups the host belongs to.
    pub groups: Vec<String>,
}

/// A parsed inventory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inventory {
    /// Hosts in file order.
    pub hosts: Vec<InventoryHost>,
}

/// A map that keeps file order (serde maps into `BTreeMap` would sort the hosts).
#[derive(Debug)]
struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut items: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<Name>()? {
                    if items.iter().any(|(k, _)| *k == key.0) {
                        return Err(serde::de::Error::custom(format!(
                            "`{}` is listed twice",
                            key.0
                        )));
                    }
                    let value = map.next_value::<V>()?;
                    items.push((key.0, value));
                }
                Ok(Ordered(items))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(std::marker::PhantomData))
    }
}

/// A host, group or var name: `[A-Za-z0-9._-]`.
#[derive(Debug)]
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(Name(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "name `{}` may only hold letters, digits, `.`, `_` and `-`",
                text.escape_debug()
            )))
        }
    }
}

/// A var value: any scalar, kept as text.
#[derive(Debug)]
struct VarValue(String);

impl<'de> Deserialize<'de> for VarValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = VarValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VarValue, E> {
                Ok(VarValue(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<VarValue, E> {
                Ok(VarValue(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<VarValue, E> {
                Ok(VarValue(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<VarValue, E> {
                Ok(VarValue(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<VarValue, E> {
                Ok(VarValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// `[user@]host[:port]` for a jump host, validated where it is written; the user defaults to
/// the target's.
#[derive(Debug, Clone)]
struct Jump(String);

impl<'de> Deserialize<'de> for Jump {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HostTarget::parse(&text, "user", 22)
            .map(|_| Jump(text))
            .map_err(|e| serde::de::Error::custom(format!("`jump`: {e}")))
    }
}

/// A deploy root, validated where it is written.
#[derive(Debug)]
struct Root(RemotePath);

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RemotePath::parse(&text)
            .map(Root)
            .map_err(|e| serde::de::Error::custom(format!("`root`: {e}")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    user: Option<Name>,
    port: Option<u16>,
    root: Option<Root>,
    jump: Option<Jump>,
    #[serde(default)]
    vars: Ordered<VarValue>,
    #[serde(default)]
    groups: Ordered<GroupSpec>,
    #[serde(default)]
    hosts: Ordered<Option<HostSpecFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    user: Option<Name>,
    port: Option<u16>,
    root: Option<Root>,
    jump: Option<Jump>,
    #[serde(default)]
    vars: Ordered<VarValue>,
    #[serde(default)]
    hosts: Ordered<Option<HostSpecFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpecFile {
    address: Option<String>,
    user: Option<Name>,
    port: Option<u16>,
    root: Option<Root>,
    jump: Option<Jump>,
    #[serde(default)]
    vars: Ordered<VarValue>,
}

/// The largest inventory file read, in bytes.
pub(crate) const MAX_INVENTORY_BYTES: u64 = 1024 * 1024;

impl Inventory {
    /// Reads and validates an inventory file (at most [`MAX_INVENTORY_BYTES`], nested at most
    /// 64 levels deep).
    pub(crate) fn load(
        path: &Path,
        default_user: &str,
        default_port: u16,
    ) -> Result<Self, InventoryError> {
        // Bounded like every input file of the suite (a pull request can edit it).
        let text = yaml_spans::read_text(path, MAX_INVENTORY_BYTES).map_err(|error| {
            InventoryError::Read {
                path: path.display().to_string(),
                source: match error {
                    yaml_spans::ReadError::Io(source) => source,
                    other => std::io::Error::other(other.to_string()),
                },
            }
        })?;
        Self::parse(
            &text,
            &path.display().to_string(),
            default_user,
            default_port,
        )
    }

    /// Parses inventory text; `origin` names the file in errors.
    pub(crate) fn parse(
        text: &str,
        origin: &str,
        default_user: &str,
        default_port: u16,
    ) -> Result<Self, InventoryError> {
        let at = |line: usize, column: usize, message: String| {
            let number = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let start = Position {
                line: number(line),
                column: number(column),
                offset: 0,
            };
            placed(origin, text, Span { start, end: start }, message)
        };
        // Refused in linear time before libyaml sees it (deep nesting takes it minutes).
        yaml_spans::check_depth(text)
            .map_err(|deep| at(deep.line, deep.column, deep.to_string()))?;
        let spec: FileSpec = serde_yaml_ng::from_str(text).map_err(|error| {
            let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
            // serde_yaml_ng appends " at line L column C"; the position is in front already.
            let message = error.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            at(line, column, message)
        })?;
        // The same text as a spanned tree, for problems found after serde (a host listed
        // twice, a bad address): each is placed at the host it is about.
        let tree = yaml_spans::parse(text).ok();
        let host_error = |group: &Option<String>, name: &str, message: String| {
            let span = tree.as_ref().map_or_else(Span::default, |root| {
                host_span(root, group.as_deref(), name)
            });
            placed(origin, text, span, message)
        };
        let file_vars: BTreeMap<String, String> =
            spec.vars.0.into_iter().map(|(k, v)| (k, v.0)).collect();
        let mut hosts: Vec<InventoryHost> = Vec::new();
        let ungrouped = GroupSpec {
            user: None,
            port: None,
            root: None,
            jump: None,
            vars: Ordered::default(),
            hosts: spec.hosts,
        };
        let groups = spec
            .groups
            .0
            .into_iter()
            .map(|(name, group)| (Some(name), group))
            .chain(std::iter::once((None, ungrouped)));
        for (group_name, group) in groups {
            for (name, host) in group.hosts.0 {
                let host = host.unwrap_or_default();
                if let Some(existing) = hosts.iter_mut().find(|h| h.name == name) {
                    // A host in a second group: the first listing holds its settings; this one
                    // only adds the membership (and the group's vars the host does not set).
                    let explicit = host.address.is_some()
                        || host.user.is_some()
                        || host.port.is_some()
                        || host.root.is_some()
                        || host.jump.is_some()
                        || !host.vars.0.is_empty();
                    if explicit {
                        return Err(host_error(
                            &group_name,
                            &name,
                            format!(
                                "host `{name}`{} has settings, but it was listed before (groups: {}); \
                             give its settings once and only its name elsewhere",
                                in_group(&group_name),
                                if existing.groups.is_empty() {
                                    "none".to_owned()
                                } else {
                                    existing.groups.join(", ")
                                }
                            ),
                        ));
                    }
                    existing.groups.extend(group_name.clone());
                    for (key, value) in &group.vars.0 {
                        existing
                            .vars
                            .entry(key.clone())
                            .or_insert_with(|| value.0.clone());
                    }
                    continue;
                }
                let user = host
                    .user
                    .or(group.user.as_ref().map(|n| Name(n.0.clone())))
                    .or(spec.user.as_ref().map(|n| Name(n.0.clone())))
                    .map_or_else(|| default_user.to_owned(), |n| n.0);
                let port = host
                    .port
                    .or(group.port)
                    .or(spec.port)
                    .unwrap_or(default_port);
                let address = host.address.clone().unwrap_or_else(|| name.clone());
                let mut target = HostTarget::new(&user, &address, port).map_err(|e| {
                    host_error(
                        &group_name,
                        &name,
                        format!("host `{name}`{}: {e}", in_group(&group_name)),
                    )
                })?;
                target.name = Some(name.clone());
                let mut vars = file_vars.clone();
                vars.extend(group.vars.0.iter().map(|(k, v)| (k.clone(), v.0.clone())));
                vars.extend(host.vars.0.into_iter().map(|(k, v)| (k, v.0)));
                let root = host
                    .root
                    .map(|r| r.0)
                    .or(group.root.as_ref().map(|r| r.0.clone()))
                    .or(spec.root.as_ref().map(|r| r.0.clone()));
                let jump = host
                    .jump
                    .or(group.jump.clone())
                    .or(spec.jump.clone())
                    .map(|j| HostTarget::parse(&j.0, &user, 22))
                    .transpose()
                    .map_err(|e| host_error(&group_name, &name, e))?;
                hosts.push(InventoryHost {
                    name,
                    target,
                    root,
                    jump,
                    vars,
                    groups: group_name.iter().cloned().collect(),
                });
            }
        }
        if hosts.is_empty() {
            let span = tree.as_ref().map_or_else(Span::default, |root| root.span);
            return Err(placed(
                origin,
                text,
                span,
                "names no host: list them under `hosts:` or `groups: <name>: hosts:`".into(),
            ));
        }
        Ok(Self { hosts })
    }

    /// Only the hosts in `group`; an unknown group is an error listing the known ones.
    pub(crate) fn select(self, group: &str, origin: &str) -> Result<Self, InventoryError> {
        let mut known: Vec<&str> = self
            .hosts
            .iter()
            .flat_map(|h| h.groups.iter().map(String::as_str))
            .collect();
        known.sort_unstable();
        known.dedup();
        if !known.contains(&group) {
            return Err(InventoryError::File {
                path: origin.to_owned(),
                message: format!(
                    "no group `{group}` (groups: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        let hosts = self
            .hosts
            .into_iter()
            .filter(|h| h.groups.iter().any(|g| g == group))
            .collect();
        Ok(Self { hosts })
    }
}

fn in_group(group: &Option<String>) -> String {
    group
        .as_ref()
        .map(|g| format!(" in group `{g}`"))
        .unwrap_or_default()
}

/// Replaces `{vars.NAME}` in `text`; an unknown name is an error naming it and the known ones.
pub(crate) fn render_vars(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{vars.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{vars.".len()..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "`{{vars.` without a closing `}}` in `{}`",
                &rest[start..rest.len().min(start + 40)]
            ));
        };
        let name = &after[..end];
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None => {
                return Err(format!(
                    "`{{vars.{name}}}` is not defined for this host (vars: {})",
                    if vars.is_empty() {
                        "none".to_owned()
                    } else {
                        vars.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_or_deep_inventories_are_refused_fast() {
        let dir = tempfile::tempdir().expect("tmp");
        let deep = dir.path().join("deep.yaml");
        std::fs::write(&deep, format!("hosts:\n  a: {}", "[".repeat(200_000))).expect("write");
        let started = std::time::Instant::now();
        let error = Inventory::load(&deep, "deploy", 22).expect_err("too deep");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(
            error.to_string().contains("deep.yaml:2:") && error.to_string().contains("nested"),
            "{error}"
        );
        let huge = dir.path().join("huge.yaml");
        std::fs::write(&huge, format!("# {}\n", "x".repeat(2 << 20))).expect("write");
        let error = Inventory::load(&huge, "deploy", 22).expect_err("too large");
        assert!(
            error.to_string().contains("larger than 1048576 bytes"),
            "{error}"
        );
    }

    use super::*;

    const EXAMPLE: &str = "\
user: deploy
root: /opt/app
vars: { web_port: 8080, env: prod }
groups:
  web:
    vars: { role: web }
    hosts:
      web-1: { address: 10.0.0.5, port: 2222, vars: { web_port: 8081 } }
      web-2:
  workers:
    port: 2200
    hosts:
      worker-1: { user: ops, root: /srv/worker, jump: jump@10.0.0.1:2022 }
      web-2:
hosts:
  db-1: { address: '::1' }
";

    #[test]
    fn resolves_hosts_in_file_order_with_precedence() {
        let inventory = Inventory::parse(EXAMPLE, "inv.yaml", "root", 22).expect("parses");
        let names: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["web-1", "web-2", "worker-1", "db-1"]);
        let web1 = &inventory.hosts[0];
        assert_eq!(web1.target.label(), "web-1 (deploy@10.0.0.5:2222)");
        assert_eq!(web1.vars["web_port"], "8081");
        assert_eq!(web1.vars["role"], "web");
        assert_eq!(web1.vars["env"], "prod");
        assert_eq!(web1.root.as_ref().map(RemotePath::as_str), Some("/opt/app"));
        let web2 = &inventory.hosts[1];
        assert_eq!(web2.groups, ["web", "workers"]);
        assert_eq!(web2.vars["web_port"], "8080");
        let worker = &inventory.hosts[2];
        assert_eq!(worker.target.label(), "worker-1 (ops@worker-1:2200)");
        assert_eq!(
            worker.root.as_ref().map(RemotePath::as_str),
            Some("/srv/worker")
        );
        assert_eq!(
            worker.jump.as_ref().map(HostTarget::label).as_deref(),
            Some("jump@10.0.0.1:2022")
        );
        assert_eq!(inventory.hosts[3].target.address(), "[::1]:22");
        let workers = inventory.select("workers", "inv.yaml").expect("group");
        assert_eq!(workers.hosts.len(), 2);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            (
                "hosts:\n  web-1: { prot: 22 }\n",
                "inv.yaml:2:12: hosts.web-1: unknown field `prot`, expected one of `address`",
            ),
            ("hosts:\n  web-1: { port: 99999 }\n", "inv.yaml:2:18:"),
            (
                "hosts:\n  'a b': {}\n",
                "inv.yaml:2:3: hosts: name `a b` may only hold",
            ),
            (
                "hosts:\n  a: { jump: 'x y' }\n",
                "inv.yaml:2:6: hosts.a: `jump`: host `x y` must be",
            ),
            (
                "root: relative/path\nhosts: { a: }\n",
                "inv.yaml:1:1: `root`: remote path `relative/path` must be absolute",
            ),
            ("hosts:\n  a: { vars: { k: [1] } }\n", "inv.yaml:2:19:"),
            ("hosts: [a, b]\n", "inv.yaml:1:8:"),
            ("hosts:\n  a: {}\n  a: {}\n", "`a` is listed twice"),
            (
                "groups:\n  web:\n    hosts: { a: }\n  db:\n    hosts:\n      a: { port: 2 }\n",
                "inv.yaml:6:7: host `a` in group `db` has settings, but it was listed before",
            ),
            (
                "hosts:\n  ok: {}\n  b: { address: 'x y' }\n",
                "inv.yaml:3:3: host `b`",
            ),
        ];
        for (text, expected) in cases {
            let error = Inventory::parse(text, "inv.yaml", "u", 22)
                .expect_err(text)
                .to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let error = Inventory::parse("vars: {}\n", "inv.yaml", "u", 22).expect_err("empty");
        assert!(
            error.to_string().starts_with("inv.yaml:1:1: names no host"),
            "{error}"
        );
        let inventory = Inventory::parse(EXAMPLE, "inv.yaml", "u", 22).expect("ok");
        let error = inventory
            .select("db", "inv.yaml")
            .expect_err("unknown group");
        assert_eq!(
            error.to_string(),
            "inv.yaml: no group `db` (groups: web, workers)"
        );
    }

    #[test]
    fn renders_vars_and_names_unknown_ones() {
        let vars: BTreeMap<String, String> = [("port".to_owned(), "8081".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(
            render_vars("http://{host}:{vars.port}/", &vars).expect("ok"),
            "http://{host}:8081/"
        );
        let error = render_vars("{vars.nope}", &vars).expect_err("unknown");
        assert!(error.contains("`{vars.nope}` is not defined"), "{error}");
        assert!(error.contains("vars: port"), "{error}");
        assert!(render_vars("{vars.port", &vars).is_err());
    }
}
