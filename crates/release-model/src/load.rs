//! From the spanned YAML tree to the typed [`Release`], collecting every structural problem
//! (wrong types, missing and duplicate fields, unknown keys) instead of stopping at the first.

use crate::model::{
    BUNDLES_KEYS, BundleItem, Bundles, ITEM_KEYS, ITEM_REQUIRED, PIN_KEYS, RELEASE_KEYS, Release,
    RepoPin, Shape,
};
use crate::problem::{FieldPath, Problem, SourceFile, SpanIndex, did_you_mean};
use yaml_spans::{self as yaml, Node, NodeKind, key_text};

/// A parsed descriptor: the model (with empty placeholders where fields were missing or
/// invalid), the span index for messages, and the problems found while loading.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file.
    pub source: SourceFile,
    /// The model.
    pub release: Release,
    /// Field path -> span.
    pub index: SpanIndex,
    /// Structural problems (errors and warnings).
    pub problems: Vec<Problem>,
}

/// Parses and loads a descriptor. Never fails: problems are collected in the document.
pub fn load(source: SourceFile) -> Document {
    let mut loader = Loader::default();
    let release = match yaml::parse(&source.text) {
        Ok(root) => loader.release(&root),
        Err(error) => {
            loader
                .problems
                .push(Problem::error(FieldPath::root(), error.message).at_span(error.span));
            Release::default()
        }
    };
    Document {
        source,
        release,
        index: loader.index,
        problems: loader.problems,
    }
}

#[derive(Default)]
struct Loader {
    index: SpanIndex,
    problems: Vec<Problem>,
}

/// The fields of a mapping, by key, after duplicate and unknown-key checks.
struct Fields<'n> {
    entries: Vec<(String, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, node)| *node)
    }
}

fn expected(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Loader {
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        known: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        self.index.insert_value(path.clone(), node.span);
        let NodeKind::Mapping(entries) = &node.kind else {
            if !node.is_null() {
                self.problems.push(
                    Problem::error(
                        path.clone(),
                        format!("`{path}` must be a mapping, found {}", node.type_name()),
                    )
                    .label("expected a mapping")
                    .hint(format!("valid keys: {}", expected(known))),
                );
            }
            return None;
        };
        let mut fields = Fields {
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let name = key_text(key);
            let field = path.key(&name);
            if fields.get(&name).is_some() {
                self.problems.push(
                    Problem::error(field.clone(), format!("duplicate key `{name}`"))
                        .at_span(key.span)
                        .label("defined again here")
                        .hint("each key may appear once; remove one of them"),
                );
                continue;
            }
            self.index.insert_key(field.clone(), key.span);
            self.index.insert_value(field.clone(), value.span);
            if !known.contains(&name.as_str()) {
                let mut problem = Problem::warning(
                    field.clone(),
                    format!("unknown key `{name}` in {what}; it is ignored"),
                )
                .at_key();
                problem = match did_you_mean(&name, known) {
                    Some(suggestion) => problem
                        .label(format!("did you mean `{suggestion}`?"))
                        .hint(format!(
                            "did you mean `{suggestion}`? valid keys: {}",
                            expected(known)
                        )),
                    None => problem.hint(format!("valid keys: {}", expected(known))),
                };
                self.problems.push(problem);
                continue;
            }
            fields.entries.push((name, value));
        }
        Some(fields)
    }

    /// A required string field; reports a missing, empty or non-string value.
    fn required_string(
        &mut self,
        fields: &Fields<'_>,
        path: &FieldPath,
        key: &str,
        hint: &str,
    ) -> String {
        let field = path.key(key);
        match fields.get(key) {
            None => {
                self.problems.push(
                    Problem::error(field.clone(), format!("missing required field `{field}`"))
                        .label(format!("`{key}` is missing here"))
                        .hint(hint.to_owned()),
                );
                String::new()
            }
            Some(node) => match self.string(node, &field) {
                Some(text) if !text.trim().is_empty() => text,
                Some(_) => {
                    self.problems.push(
                        Problem::error(field.clone(), format!("`{field}` must not be empty"))
                            .hint(hint.to_owned()),
                    );
                    String::new()
                }
                None if node.is_null() => {
                    self.problems.push(
                        Problem::error(field.clone(), format!("`{field}` must not be empty"))
                            .hint(hint.to_owned()),
                    );
                    String::new()
                }
                None => String::new(),
            },
        }
    }

    /// An optional string field (null counts as absent).
    fn optional_string(
        &mut self,
        fields: &Fields<'_>,
        path: &FieldPath,
        key: &str,
    ) -> Option<String> {
        let node = fields.get(key)?;
        if node.is_null() {
            return None;
        }
        self.string(node, &path.key(key))
    }

    /// The scalar text of a string field, or a type error.
    fn string(&mut self, node: &Node, field: &FieldPath) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar(..) if node.is_null() => None,
            NodeKind::Scalar(text, _) => Some(text.clone()),
            _ => {
                self.problems.push(
                    Problem::error(
                        field.clone(),
                        format!("`{field}` must be a string, found {}", node.type_name()),
                    )
                    .label("expected a string"),
                );
                None
            }
        }
    }

    fn release(&mut self, root: &Node) -> Release {
        let path = FieldPath::root();
        let Some(fields) = self.mapping(root, &path, RELEASE_KEYS, "the release descriptor") else {
            if root.is_null() {
                self.problems.push(
                    Problem::error(path, "the release descriptor is empty")
                        .at_span(root.span)
                        .hint("a release needs `release_name`, `platform` and `bundles`"),
                );
            }
            return Release::default();
        };
        let bundles_only = fields.get("bundles").is_some()
            && ["release_name", "platform", "frontend"]
                .iter()
                .all(|k| fields.get(k).is_none());
        let mut release = Release {
            shape: if bundles_only {
                Shape::BundlesOnly
            } else {
                Shape::Release
            },
            ..Release::default()
        };
        if !bundles_only {
            release.release_name = Some(self.required_string(
                &fields,
                &path,
                "release_name",
                "name the release, e.g. `release_name: \"prod-2026-11-24\"`",
            ));
            release.platform = Some(match fields.get("platform") {
                Some(node) => self.pin(node, &path.key("platform")),
                None => {
                    self.problems.push(
                        Problem::error(path.key("platform"), "missing required field `platform`")
                            .label("`platform` is missing here")
                            .hint("pin the platform, e.g. `platform: { repo: \"acme/platform\", ref: \"v0.3.2\" }`"),
                    );
                    RepoPin::default()
                }
            });
            release.frontend = fields
                .get("frontend")
                .filter(|node| !node.is_null())
                .map(|node| self.pin(node, &path.key("frontend")));
        }
        if let Some(node) = fields.get("bundles") {
            release.bundles = self.bundles(node, &path.key("bundles"));
        }
        release
    }

    fn pin(&mut self, node: &Node, path: &FieldPath) -> RepoPin {
        let Some(fields) = self.mapping(node, path, PIN_KEYS, &format!("`{path}`")) else {
            if node.is_null() {
                self.problems.push(
                    Problem::error(path.clone(), format!("`{path}` must not be empty"))
                        .hint("give `repo` and `ref`"),
                );
            }
            return RepoPin::default();
        };
        RepoPin {
            repo: self.required_string(
                &fields,
                path,
                "repo",
                "`owner/name` on GitHub or a clone URL",
            ),
            git_ref: self.required_string(&fields, path, "ref", "a tag or a full commit SHA"),
        }
    }

    fn bundles(&mut self, node: &Node, path: &FieldPath) -> Bundles {
        let Some(fields) = self.mapping(node, path, BUNDLES_KEYS, "`bundles`") else {
            return Bundles::default();
        };
        let default_bundle_id = self.optional_string(&fields, path, "default_bundle_id");
        let version = self.optional_string(&fields, path, "version");
        let mut items = Vec::new();
        if let Some(list) = fields.get("items") {
            let items_path = path.key("items");
            match &list.kind {
                NodeKind::Sequence(nodes) => {
                    for (position, item) in nodes.iter().enumerate() {
                        items.push(self.item(item, &items_path.index(position)));
                    }
                }
                _ if list.is_null() => {}
                _ => self.problems.push(
                    Problem::error(
                        items_path.clone(),
                        format!("`{items_path}` must be a list, found {}", list.type_name()),
                    )
                    .label("expected a list of bundles")
                    .hint("write each bundle as `- id: ...` under `items:`"),
                ),
            }
        }
        Bundles {
            version,
            default_bundle_id,
            items,
        }
    }

    fn item(&mut self, node: &Node, path: &FieldPath) -> BundleItem {
        let Some(fields) = self.mapping(node, path, ITEM_KEYS, "a bundle item") else {
            if node.is_null() {
                self.problems.push(
                    Problem::error(path.clone(), format!("`{path}` is empty"))
                        .hint(format!("a bundle needs {}", expected(ITEM_REQUIRED))),
                );
            }
            return BundleItem::default();
        };
        let id = self.required_string(&fields, path, "id", "a unique id such as `support@3-1`");
        let git_fields = ["repo", "ref", "subdir"];
        let has = |key: &str| fields.get(key).is_some();
        let (mut repo, mut git_ref, mut module, mut local_path) =
            (String::new(), String::new(), String::new(), None);
        if has("path") {
            for key in git_fields.iter().filter(|k| has(k)) {
                let field = path.key(key);
                self.problems.push(
                    Problem::error(
                        field.clone(),
                        format!("`{field}` cannot be given with `path`: a `path` item is a local bundle"),
                    )
                    .at_key()
                    .label("git field on a path item")
                    .hint("keep `path` + `module` (code already in the runtime), or `repo` + `ref` + `module` (the platform recomputes `path` from `repo`)"),
                );
            }
            local_path = Some(self.required_string(
                &fields,
                path,
                "path",
                "the bundle folder in the runtime, e.g. `/bundles/my_bundle`",
            ));
            module = self.required_string(
                &fields,
                path,
                "module",
                "`entrypoint` when `path` is the bundle folder",
            );
        } else if git_fields.iter().any(|k| has(k))
            || has("module")
            || !(has("config") || has("props"))
        {
            repo = self.required_string(
                &fields,
                path,
                "repo",
                "`owner/name` on GitHub or a clone URL; or `path` + `module` for a local bundle, or only `config` for a built-in bundle",
            );
            git_ref = self.required_string(&fields, path, "ref", "a tag or a full commit SHA");
            module = self.required_string(
                &fields,
                path,
                "module",
                "`<bundle folder>.entrypoint`, relative to `subdir`",
            );
        }
        let name = self.optional_string(&fields, path, "name");
        let description = self.optional_string(&fields, path, "description");
        let subdir = self.optional_string(&fields, path, "subdir");
        let singleton = fields
            .get("singleton")
            .and_then(|node| match node.resolve() {
                Some(yaml::Resolved::Bool(value)) => Some(value),
                Some(yaml::Resolved::Null) => None,
                // `yes`/`no`/`on`/`off`: the platform (PyYAML, YAML 1.1) reads a boolean.
                Some(yaml::Resolved::String(text))
                    if matches!(node.kind, NodeKind::Scalar(_, yaml::Style::Plain)) =>
                {
                    match crate::yaml11::reading(text) {
                        crate::yaml11::Reading::Bool(value) => Some(value),
                        _ => {
                            let field = path.key("singleton");
                            self.problems.push(
                                Problem::error(
                                    field.clone(),
                                    format!("`{field}` must be a boolean, found a string"),
                                )
                                .hint("use `true` or `false`"),
                            );
                            None
                        }
                    }
                }
                _ => {
                    let field = path.key("singleton");
                    self.problems.push(
                        Problem::error(
                            field.clone(),
                            format!("`{field}` must be a boolean, found {}", node.type_name()),
                        )
                        .hint("use `true` or `false`"),
                    );
                    None
                }
            });
        let mut props = serde_json::Map::new();
        if has("config") && has("props") {
            let field = path.key("props");
            self.problems.push(
                Problem::error(field.clone(), format!("`{field}` and `config` are both given"))
                    .at_key()
                    .label("`props` is the legacy name of `config`")
                    .hint("keep one of them (the platform merges `props` over `config`); `config` is the current name"),
            );
        }
        let config_key = if has("config") { "config" } else { "props" };
        if let Some(node) = fields.get(config_key) {
            let field = path.key(config_key);
            match &node.kind {
                NodeKind::Mapping(_) => {
                    self.index_tree(node, &field);
                    self.problems
                        .extend(crate::yaml11::check_tree(node, &field));
                    if let serde_json::Value::Object(map) = crate::yaml11::to_json(node) {
                        props = map;
                    }
                }
                _ if node.is_null() => {}
                _ => self.problems.push(
                    Problem::error(
                        field.clone(),
                        format!("`{field}` must be a mapping, found {}", node.type_name()),
                    )
                    .hint(format!("write `{config_key}` as `key: value` pairs")),
                ),
            }
        }
        BundleItem {
            id,
            name,
            description,
            singleton,
            repo,
            git_ref,
            subdir,
            module,
            path: local_path,
            props,
        }
    }

    /// Indexes every node below a free-form value (props), so references in it have positions.
    fn index_tree(&mut self, node: &Node, path: &FieldPath) {
        self.index.insert_value(path.clone(), node.span);
        match &node.kind {
            NodeKind::Scalar(..) => {}
            NodeKind::Sequence(items) => {
                for (position, item) in items.iter().enumerate() {
                    self.index_tree(item, &path.index(position));
                }
            }
            NodeKind::Mapping(entries) => {
                for (key, value) in entries {
                    let field = path.key(&key_text(key));
                    self.index.insert_key(field.clone(), key.span);
                    self.index_tree(value, &field);
                }
            }
        }
    }
}
