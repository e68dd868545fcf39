//! Every remote command of a compose deploy, spelled by pure functions (snapshot-tested), and
//! the order they run in: the rollout plan and the rollback plan.
//!
//! Env file contents never appear in a command line: they travel on the command's stdin, so
//! logs, `--dry-run`, the report and `ps` on the host only ever see paths and keys.

use crate::quote::q;

use super::chain::Part;
use super::spec::{Service, Spec};

/// One step: what it does, the exact command, and what its stdin carries (never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it does.
    pub title: String,
    /// The exact command line.
    pub command: String,
}

/// What the host ran before the deploy, per compose service (from [`Commands::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Running {
    /// The compose service.
    pub service: String,
    /// `sha256:...` of the image the container runs, if a container exists.
    pub image_id: Option<String>,
    /// The reference the container was created from.
    pub reference: Option<String>,
    /// The image's registry digests (`name@sha256:...`), for the record.
    pub digests: Vec<String>,
}

/// Parses the snapshot output: `<service> <image id|-> <reference|-> <digest,...|->` per line.
pub fn parse_running(text: &str) -> Vec<Running> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let service = fields.next()?.to_owned();
            let known =
                |f: Option<&str>| f.filter(|f| *f != "-" && !f.is_empty()).map(str::to_owned);
            Some(Running {
                service,
                image_id: known(fields.next()),
                reference: known(fields.next()),
                digests: known(fields.next())
                    .map(|d| d.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Builds the command lines for one spec, one host run (`token`) and one release record.
#[derive(Debug, Clone)]
pub struct Commands<'a> {
    /// The deploy file.
    pub spec: &'a Spec,
    /// Per-run random token (temp file names).
    pub token: &'a str,
    /// `<root>/.ssh-deploy/compose/<release>` on the host.
    pub record: &'a str,
}

impl Commands<'_> {
    fn prelude(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.spec.remote_env {
            text.push_str(&format!("export {name}={}; ", q(value)));
        }
        // `|| exit`, not `&&`: a later `;` must never run in the wrong directory.
        text.push_str(&format!(
            "cd {} || exit 1; ",
            q(self.spec.project_dir.as_str())
        ));
        text
    }

    fn docker(&self) -> String {
        q(&self.spec.docker)
    }

    fn compose(&self) -> String {
        let mut text = format!("{} compose", self.docker());
        if let Some(name) = &self.spec.project_name {
            text.push_str(&format!(" -p {}", q(name)));
        }
        for file in &self.spec.compose_files {
            text.push_str(&format!(" -f {}", q(file)));
        }
        text
    }

    /// `docker pull <ref>`: run first, before anything on the host changes.
    pub fn pull(&self, reference: &str) -> String {
        format!("{}{} pull {}", self.prelude(), self.docker(), q(reference))
    }

    /// Copies every managed env file that exists into the release record (mode and owner kept)
    /// and prints it back as a length-prefixed block ([`chain`](super::chain), never echoed),
    /// then records which image each service's container runs and prints the image lines.
    /// One container list for the project, one `inspect` for every managed service's container
    /// and one `image inspect` for their distinct images: every docker call costs a process
    /// start (compose's plugin is a 76 MB binary), and replicas share their image. A container
    /// or image that is gone by the time it is inspected reads as no container (`- - -`). Reading the copy, not the file, makes
    /// the snapshot exactly what the new files are computed from.
    pub fn read_and_snapshot(&self) -> String {
        let record = q(self.record);
        let tag = q(&super::chain::tag(self.token));
        let mut text = format!(
            "{}set -e; rm -rf {record}/env; mkdir -p {record}/env; ",
            self.prelude()
        );
        for (index, file) in self.spec.env_files.iter().enumerate() {
            let path = q(&file.path);
            text.push_str(&format!(
                "if [ -f {path} ]; then cp -p {path} {record}/env/{index}; \
                 printf '\\n%s env {index} present %s\\n' {tag} \"$(wc -c < {record}/env/{index})\"; \
                 cat {record}/env/{index}; else printf '\\n%s env {index} absent\\n' {tag}; fi; "
            ));
        }
        let units: Vec<&str> = self.spec.services.iter().flat_map(Service::units).collect();
        let services: Vec<String> = units.iter().map(|u| q(u)).collect();
        text.push_str(&format!(
            "ps=$({list} 2>/dev/null || true); \
             ids=$(printf '%s\\n' \"$ps\" | awk -v u={units} 'NF == 2 && index(u, \" \" $1 \" \") {{ print $2 }}'); \
             info=$(if [ -n \"$ids\" ]; then {docker} inspect --format '{{{{.ID}}}} {{{{.Image}}}} {{{{.Config.Image}}}}' $ids 2>/dev/null; fi || true); \
             images=$(printf '%s\\n' \"$info\" | awk 'NF == 3 {{ print $2 }}' | sort -u); \
             digests=$(if [ -n \"$images\" ]; then {docker} image inspect --format '{{{{.ID}}}} {{{{join .RepoDigests \",\"}}}}' $images 2>/dev/null; fi || true); \
             for s in {services}; do c=$(printf '%s\\n' \"$ps\" | awk -v s=\"$s\" '$1 == s {{ print $2; exit }}'); \
             set -- $(printf '%s\\n' \"$info\" | awk -v c=\"$c\" 'c != \"\" && NF == 3 && index($1, c) == 1 {{ print $2, $3; exit }}'); \
             if [ $# -eq 2 ]; then d=$(printf '%s\\n' \"$digests\" | awk -v i=\"$1\" '$1 == i && NF == 2 {{ print $2; exit }}'); \
             echo \"$s $1 $2 ${{d:--}}\"; else echo \"$s - - -\"; fi; done > {record}/images.tmp; \
             mv -f {record}/images.tmp {record}/images; sed \"s/^/\"{tag}\" image /\" {record}/images",
            list = self.containers(),
            units = q(&format!(" {} ", units.join(" "))),
            services = services.join(" "),
            docker = self.docker(),
        ));
        text
    }

    /// Lists the project's containers as `<service> <container id>` lines. With a project
    /// name, `docker ps` by compose's labels (one-off `compose run` containers left out, as
    /// `compose ps` does): the docker CLI starts in 0.01-0.02 s where the compose plugin takes
    /// 0.08-0.14 s (it loads the whole project). Without one, only compose knows the name.
    fn containers(&self) -> String {
        match &self.spec.project_name {
            Some(name) => format!(
                "{} ps -a --filter {} --filter label=com.docker.compose.oneoff=False \
                 --format '{{{{.Label \"com.docker.compose.service\"}}}} {{{{.ID}}}}'",
                self.docker(),
                q(&format!("label=com.docker.compose.project={name}"))
            ),
            None => format!(
                "{} ps -a --format '{{{{.Service}}}} {{{{.ID}}}}'",
                self.compose()
            ),
        }
    }

    /// Writes the next `size` bytes of stdin to `path` atomically (several files share one
    /// stdin, in order): temp file beside it, checked for the full size, owner and mode of the
    /// old file, fsync, rename, fsync of the directory. A symlinked env file is written through
    /// (the link stays). The temp file is removed if anything fails. `None`: the size is not
    /// known yet (the plan).
    pub fn write_env(&self, path: &str, size: Option<usize>) -> String {
        let size = size.map_or_else(|| "<size>".to_owned(), |n| n.to_string());
        format!(
            "{}set -e; f=$(readlink -f -- {p}); t=\"$f\"{suffix}; trap 'rm -f \"$t\"' EXIT; umask 077; \
             head -c {size} > \"$t\"; \
             if [ \"$(wc -c < \"$t\")\" -ne {size} ]; then echo \"short input: {size} bytes expected\" >&2; exit 1; fi; \
             if [ -e \"$f\" ]; then chown --reference=\"$f\" \"$t\"; chmod --reference=\"$f\" \"$t\"; fi; \
             sync \"$t\"; mv -f \"$t\" \"$f\"; sync \"$(dirname \"$f\")\"",
            self.prelude(),
            p = q(path),
            suffix = q(&format!(".ssh-deploy-{}", self.token)),
        )
    }

    /// `docker compose config --quiet`: the project with the new env files must still parse.
    pub fn validate(&self) -> String {
        format!("{}{} config --quiet", self.prelude(), self.compose())
    }

    fn up_with(&self, service: &str, extra: &str) -> String {
        format!(
            "{}timeout -k 10 {} {} up -d --no-deps --wait --wait-timeout {}{extra} {}",
            self.prelude(),
            self.spec.up_timeout.as_secs().max(1),
            self.compose(),
            self.spec.wait_timeout.as_secs().max(1),
            q(service)
        )
    }

    /// Recreates one service (never more than one per `up`, so the ingress is never recreated
    /// together with anything else), waiting for its health check.
    pub fn up(&self, service: &str) -> String {
        self.up_with(service, "")
    }

    /// Brings one service back on the restored env files and images.
    pub fn up_again(&self, service: &str) -> String {
        self.up_with(service, " --force-recreate")
    }

    /// A drain or undrain hook for one replica.
    pub fn hook(&self, command: &str, service: &str) -> String {
        format!(
            "{}export SSH_DEPLOY_SERVICE={s}; {{ {}\n}}",
            self.prelude(),
            command.replace("{service}", service),
            s = q(service),
        )
    }

    /// A host hook or the migration (`sh -e -c`): in the project dir with `remote_env`
    /// exported, the hook's `SSH_DEPLOY_*` variables, and `COMPOSE_PROJECT_NAME` and
    /// `COMPOSE_FILE` set to the deploy file's, so a plain `docker compose run --rm api CMD`
    /// runs in this project, on the env files (and so the images) just written.
    pub(crate) fn host_hook(&self, env: &crate::hooks::HookEnv, command: &str) -> String {
        let mut exports: String = env
            .pairs()
            .iter()
            .map(|(name, value)| format!(" {name}={}", q(value)))
            .collect();
        if let Some(name) = &self.spec.project_name {
            exports.push_str(&format!(" COMPOSE_PROJECT_NAME={}", q(name)));
        }
        if !self.spec.compose_files.is_empty() {
            exports.push_str(&format!(
                " COMPOSE_FILE={}",
                q(&self.spec.compose_files.join(":"))
            ));
        }
        format!("{}env{exports} sh -e -c {}", self.prelude(), q(command))
    }

    /// Puts every managed env file back from the release record, byte for byte (mode and owner
    /// too); files that did not exist before are removed.
    pub fn restore_env(&self, present: &[bool]) -> String {
        let record = q(self.record);
        let mut text = format!("{}set -e", self.prelude());
        for (index, (file, present)) in self.spec.env_files.iter().zip(present).enumerate() {
            let path = q(&file.path);
            if *present {
                let suffix = q(&format!(".ssh-deploy-{}", self.token));
                text.push_str(&format!(
                    "; f=$(readlink -f -- {path}); cp -p {record}/env/{index} \"$f\"{suffix}; \
                     mv -f \"$f\"{suffix} \"$f\""
                ));
            } else {
                text.push_str(&format!("; rm -f {path}"));
            }
        }
        text
    }

    /// Points each previous reference back at the image id it had (a moved tag such as
    /// `:latest` was re-pointed by the pull).
    pub fn retag(&self, running: &[Running]) -> Option<String> {
        let pairs: Vec<String> = running
            .iter()
            .filter_map(|r| Some((r.image_id.as_deref()?, r.reference.as_deref()?)))
            .filter(|(id, reference)| id.starts_with("sha256:") && !reference.contains('@'))
            .map(|(id, reference)| format!("{} tag {} {}", self.docker(), q(id), q(reference)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        (!pairs.is_empty()).then(|| format!("{}set -e; {}", self.prelude(), pairs.join("; ")))
    }
}

fn part(title: String, service: &str, action: &str, command: String) -> Part {
    Part {
        title,
        service: service.to_owned(),
        action: action.to_owned(),
        command,
        touches: None,
    }
}

/// The service of a timing that is not one service's: read, snapshot, write, validate.
pub const HOST: &str = "(host)";

/// The first remote command: pull every new image (a registry problem stops the deploy before
/// anything changed), then read and snapshot the env files and the running images.
pub fn prepare(commands: &Commands<'_>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut pulled: Vec<&str> = Vec::new();
    for service in &commands.spec.services {
        if let Some(image) = &service.image {
            if !pulled.contains(&image.reference.as_str()) {
                pulled.push(&image.reference);
                parts.push(part(
                    format!("pull {}", image.reference),
                    &service.name,
                    "pull",
                    commands.pull(&image.reference),
                ));
            }
        }
    }
    parts.push(part(
        "snapshot".into(),
        HOST,
        "read env + snapshot",
        commands.read_and_snapshot(),
    ));
    parts
}

/// What runs between a remote command and the next: a runner-side health gate or hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// One remote command ([`chain`](super::chain)).
    Shell(Vec<Part>),
    /// health-gate for this service, from the runner.
    Gate(String),
    /// The runner's hooks of this event (`pre-switch`, `post-switch`), for this host.
    Runner(&'static str),
}

/// What runs around the services' `up`s on one host (issue 22): the migration and the host's
/// pre-switch hooks after `config --quiet`, the host's post-switch hooks after the last `up`,
/// and whether runner hooks run at either point.
#[derive(Debug, Clone, Default)]
pub struct Around {
    /// Host parts after `config --quiet`, before the first drain or `up`.
    pub before_up: Vec<Part>,
    /// Runner pre-switch hooks, after `before_up`.
    pub runner_before_up: bool,
    /// Host parts after the last `up` (and its gate and undrain).
    pub after_up: Vec<Part>,
    /// Runner post-switch hooks, after `after_up`.
    pub runner_after_up: bool,
}

/// Everything after [`prepare`], as remote commands split at the gates: the env writes (`sizes`:
/// per env file, `None` when it does not change, `Some(None)` when the size is not known yet),
/// `config --quiet`, then [`Around::before_up`] (the migration and the host's pre-switch
/// hooks), then one `up` per service in order, replicas one at a time (drain, up, gate,
/// undrain), then [`Around::after_up`] (the host's post-switch hooks). The undrain of one
/// replica and the drain and up of the next share a command.
pub fn phases(
    commands: &Commands<'_>,
    sizes: &[Option<Option<usize>>],
    around: Around,
) -> Vec<Phase> {
    let spec = commands.spec;
    let mut phases = Vec::new();
    let mut parts = Vec::new();
    for (file, size) in spec.env_files.iter().zip(sizes) {
        if let Some(size) = size {
            parts.push(part(
                format!("write {}", file.path),
                HOST,
                "write env",
                commands.write_env(&file.path, *size),
            ));
        }
    }
    parts.push(part(
        "validate".into(),
        HOST,
        "validate",
        commands.validate(),
    ));
    parts.extend(around.before_up);
    if around.runner_before_up {
        phases.push(Phase::Shell(std::mem::take(&mut parts)));
        phases.push(Phase::Runner("pre-switch"));
    }
    for service in &spec.services {
        let replica = !service.replicas.is_empty();
        for unit in service.units() {
            // Touched from the drain on: a rollback brings it back and undrains it.
            let mut touches = Some(unit.to_owned());
            if let (true, Some(drain)) = (replica, &service.drain) {
                parts.push(Part {
                    touches: touches.take(),
                    ..part(
                        format!("drain {unit}"),
                        unit,
                        "drain",
                        commands.hook(drain, unit),
                    )
                });
            }
            parts.push(Part {
                touches,
                ..part(format!("up {unit}"), unit, "up", commands.up(unit))
            });
            if service.gate.is_some() {
                phases.push(Phase::Shell(std::mem::take(&mut parts)));
                phases.push(Phase::Gate(unit.to_owned()));
            }
            if let (true, Some(undrain)) = (replica, &service.undrain) {
                parts.push(part(
                    format!("undrain {unit}"),
                    unit,
                    "undrain",
                    commands.hook(undrain, unit),
                ));
            }
        }
    }
    parts.extend(around.after_up);
    if !parts.is_empty() {
        phases.push(Phase::Shell(parts));
    }
    if around.runner_after_up {
        phases.push(Phase::Runner("post-switch"));
    }
    phases
}

/// The rollout for one host, in order, for `--dry-run` and the tests: one block per remote
/// command. Env writes read "(stdin; keys …)" in place of their content, and `head -c <size>`
/// (the size is known once the host's file is read).
pub fn rollout(commands: &Commands<'_>, before: Vec<Part>, around: Around) -> Vec<Step> {
    let spec = commands.spec;
    let mut steps = Vec::new();
    let mut shells = 0;
    let mut shell = |steps: &mut Vec<Step>, parts: Vec<Part>| {
        shells += 1;
        for part in parts {
            let title = match part.title.strip_prefix("write ") {
                Some(path) => {
                    let file = spec.env_files.iter().find(|f| f.path == path);
                    let keys: Vec<&str> = file
                        .map(|f| {
                            f.set
                                .iter()
                                .map(|(k, _)| k.as_str())
                                .chain(f.unset.iter().map(String::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{} (stdin; keys {})", part.title, keys.join(", "))
                }
                None => part.title,
            };
            steps.push(step(&format!("shell {shells}: {title}"), part.command));
        }
    };
    let mut first = before;
    first.extend(prepare(commands));
    shell(&mut steps, first);
    let sizes = vec![Some(None); spec.env_files.len()];
    for phase in phases(commands, &sizes, around) {
        match phase {
            Phase::Shell(parts) => shell(&mut steps, parts),
            Phase::Runner(event) => steps.push(step(
                &format!("hooks {event}"),
                "(the runner's hooks, with this host in SSH_DEPLOY_HOST)".into(),
            )),
            Phase::Gate(unit) => steps.push(step(
                &format!("gate {unit}"),
                "(health-gate from the runner)".into(),
            )),
        }
    }
    steps
}

/// What a failure puts back: env files from the record, previous image tags, then the touched
/// services (those an `up` was started for), newest first. A replica is drained again before
/// it is recreated: the ones that passed their gate are back in the pool by then, and
/// recreating one there fails the requests the proxy still sends it (seen against a real
/// engine behind HAProxy, issue 19). Draining one that is still drained is a no-op for a proxy.
pub fn rollback(
    commands: &Commands<'_>,
    present: &[bool],
    running: &[Running],
    touched: &[String],
) -> Vec<Step> {
    let mut steps = vec![step("restore env files", commands.restore_env(present))];
    if let Some(retag) = commands.retag(running) {
        steps.push(step("restore image tags", retag));
    }
    for service in touched.iter().rev() {
        let group = commands
            .spec
            .services
            .iter()
            .find(|s| s.replicas.iter().any(|r| r == service));
        if let Some(drain) = group.and_then(|s| s.drain.as_ref()) {
            steps.push(step(
                &format!("drain {service}"),
                commands.hook(drain, service),
            ));
        }
        steps.push(step(
            &format!("up {service} (previous)"),
            commands.up_again(service),
        ));
        if let Some(undrain) = group.and_then(|s| s.undrain.as_ref()) {
            steps.push(step(
                &format!("undrain {service}"),
                commands.hook(undrain, service),
            ));
        }
    }
    steps
}

fn step(title: &str, command: String) -> Step {
    Step {
        title: title.to_owned(),
        command,
    }
}

/// Steps as `title: command` lines.
pub fn render(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| format!("{}: {}\n", s.title, s.command))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::quote::RemotePath;
    use crate::strategy::compose::spec::{EnvFile, Image};

    fn spec() -> Spec {
        let image = |reference: &str, variable: &str| {
            Some(Image {
                reference: reference.into(),
                variable: variable.into(),
                env_file: ".env".into(),
            })
        };
        Spec {
            project_dir: RemotePath::parse("/opt/it's agentic").expect("path"),
            project_name: Some("agentic".into()),
            compose_files: vec!["docker-compose.yaml".into()],
            docker: "docker".into(),
            remote_env: vec![(
                "DOCKER_HOST".into(),
                "unix:///run/podman/podman.sock".into(),
            )],
            wait_timeout: Duration::from_secs(90),
            up_timeout: Duration::from_secs(150),
            env_files: vec![
                EnvFile {
                    path: ".env.ingress".into(),
                    set: vec![("OPENAI_API_KEY".into(), "sk-never-shown".into())],
                    unset: vec![],
                    literal: vec![],
                },
                EnvFile {
                    path: ".env.proc".into(),
                    set: vec![("AGENTIC_BUNDLES_JSON".into(), "{\"bundles\":{}}".into())],
                    unset: vec!["OLD".into()],
                    literal: vec![],
                },
                EnvFile {
                    path: ".env".into(),
                    set: vec![
                        ("INGRESS_IMAGE".into(), "ghcr.io/o/ingress:v2".into()),
                        ("API_IMAGE".into(), "ghcr.io/o/api:v2".into()),
                    ],
                    unset: vec![],
                    literal: vec![],
                },
            ],
            services: vec![
                Service {
                    name: "chat-ingress".into(),
                    replicas: vec![],
                    image: image("ghcr.io/o/ingress:v2", "INGRESS_IMAGE"),
                    gate: None,
                    drain: None,
                    undrain: None,
                },
                Service {
                    name: "api".into(),
                    replicas: vec!["api-1".into(), "api-2".into()],
                    image: image("ghcr.io/o/api:v2", "API_IMAGE"),
                    gate: Some("checks: []".into()),
                    drain: Some("./proxy drain {service}".into()),
                    undrain: Some("./proxy enable {service}".into()),
                },
            ],
        }
    }

    fn commands(spec: &Spec) -> Commands<'_> {
        Commands {
            spec,
            token: "t0k",
            record: "/srv/state/.ssh-deploy/compose/r1",
        }
    }

    #[test]
    fn rollout_commands() {
        let spec = spec();
        let steps = rollout(&commands(&spec), Vec::new(), Around::default());
        let text = render(&steps);
        assert!(
            !text.contains("sk-never-shown"),
            "values travel on stdin only"
        );
        assert!(
            !text.contains("bundles\\\":{}"),
            "values travel on stdin only"
        );
        let ups: Vec<&str> = steps
            .iter()
            .filter_map(|s| Some((s.title.split_once(": up ")?.1, s)))
            .map(|(service, up)| {
                assert_eq!(up.command.matches(" up -d").count(), 1);
                assert!(
                    up.command.ends_with(&format!("'{service}'")),
                    "one service per up"
                );
                service
            })
            .collect();
        assert_eq!(ups, ["chat-ingress", "api-1", "api-2"]);
        // One remote command up to each gate, then undrain + next drain + up together.
        let shells: Vec<&str> = steps
            .iter()
            .filter_map(|s| s.title.split_once(':').map(|(shell, _)| shell))
            .collect();
        assert_eq!(
            shells
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            4,
            "{shells:?}"
        );
        insta::assert_snapshot!("rollout_commands", text);
    }

    #[test]
    fn rollback_commands_restore_then_go_back_newest_first() {
        let spec = spec();
        let running = parse_running(
            "chat-ingress sha256:aaa ghcr.io/o/ingress:v1 ghcr.io/o/ingress@sha256:a1,mirror/ingress@sha256:a1\napi-1 sha256:bbb ghcr.io/o/api:latest -\napi-2 sha256:bbb ghcr.io/o/api:latest -\nnew - - -\npinned sha256:ccc ghcr.io/o/x@sha256:ddd -\n",
        );
        assert_eq!(running[3].image_id, None);
        assert_eq!(
            running[0].digests,
            ["ghcr.io/o/ingress@sha256:a1", "mirror/ingress@sha256:a1"]
        );
        assert!(running[1].digests.is_empty());
        let steps = rollback(
            &commands(&spec),
            &[true, true, false],
            &running,
            &["chat-ingress".into(), "api-1".into(), "api-2".into()],
        );
        insta::assert_snapshot!("rollback_commands", render(&steps));
    }
}
