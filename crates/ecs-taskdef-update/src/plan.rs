//! From flags or a deploy file (`deploy_file`, which places every problem at its line) to validated service plans, and
//! the migration of either.

use std::path::Path;

use crate::cli::Args;
use crate::deploy_file::{FileMigration, from_file};
use crate::plan_error::PlanError;
use crate::plan_values::{base, check_service_name, image_edit, read, task_edit};
use crate::service_plan::ServicePlan;
use crate::taskdef::{self, ContainerEdit};

/// What to deploy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Services in deploy order.
    pub services: Vec<ServicePlan>,
    /// Deploy one after the other.
    pub sequential: bool,
    /// A one-off task that must pass before any service is updated.
    pub migration: Option<crate::migration::Migration>,
}

/// The migration of the deploy file or of the flags (not both), checked against the plan's
/// services.
fn migration(
    args: &Args,
    services: &[ServicePlan],
    file: Option<&FileMigration>,
) -> Result<Option<crate::migration::Migration>, PlanError> {
    let flagged = args
        .migration_command
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
        || args
            .migration_container
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        || args
            .migration_service
            .as_deref()
            .is_some_and(|s| !s.is_empty());
    if let Some(file) = file {
        if flagged {
            return Err(file.error(
                "command",
                "the deploy file declares the migration: drop the --migration-* flags (or the block)",
            ));
        }
        return file.resolve(services, args.migration_timeout).map(Some);
    }
    let Some(command) = args
        .migration_command
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    else {
        if flagged {
            return Err(PlanError::Usage(
                "--migration-container and --migration-service need --migration-command".into(),
            ));
        }
        return Ok(None);
    };
    let command = parse_command(command)?;
    let service = match args.migration_service.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => services.iter().find(|s| s.service == name).ok_or_else(|| {
            PlanError::Usage(format!(
                "--migration-service `{}` is not deployed in this run",
                name.escape_debug()
            ))
        })?,
        None => services
            .first()
            .ok_or_else(|| PlanError::Usage("no service to run the migration on".into()))?,
    };
    let container = match args
        .migration_container
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        Some(container) => container.to_owned(),
        None => match service.edits.as_slice() {
            [only] => only.name.clone(),
            _ => {
                return Err(PlanError::Usage(
                    "give --migration-container: the container whose command the migration overrides".into(),
                ));
            }
        },
    };
    Ok(Some(crate::migration::Migration {
        service: service.service.clone(),
        container,
        command,
        timeout: args.migration_timeout,
    }))
}

fn pairs(
    flag: &'static str,
    lines: &[LineListRef<'_>],
) -> Result<Vec<(String, String)>, PlanError> {
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            line.split_once('=')
                .filter(|(name, _)| !name.trim().is_empty())
                .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
                .ok_or_else(|| PlanError::Pair {
                    flag,
                    number: index + 1,
                    name: leading_name(line),
                })
        })
        .collect()
}

/// The name a malformed `NAME value` line starts with, when a separator (whitespace or `:`)
/// follows it; `None` for a line that is one word (it may be a glued secret).
fn leading_name(line: &str) -> Option<String> {
    let line = line.trim_start();
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let separator = line[end..].chars().next()?;
    (end > 0 && end <= 128 && (separator.is_whitespace() || separator == ':'))
        .then(|| line[..end].to_owned())
}

type LineListRef<'a> = &'a str;

fn flatten(lists: &[runner_protocol::input::LineList]) -> Vec<String> {
    runner_protocol::input::LineList::flatten(lists.iter().cloned())
}

/// Builds the plan from flags.
pub fn from_args(args: &Args, working_dir: &Path) -> Result<Plan, PlanError> {
    let order = flatten(&args.order);
    let (mut plan, file_migration) = match &args.deploy_file {
        Some(path) => from_file(path, args)?,
        None => (from_flags(args, working_dir)?, None),
    };
    let order = if order.is_empty() { plan.1 } else { order };
    if !order.is_empty() {
        let mut ordered = Vec::new();
        for name in &order {
            let index = plan
                .0
                .iter()
                .position(|s| &s.service == name)
                .ok_or_else(|| {
                    PlanError::Usage(format!("--order names `{name}`, which is not deployed"))
                })?;
            ordered.push(plan.0.remove(index));
        }
        ordered.append(&mut plan.0);
        let migration = migration(args, &ordered, file_migration.as_ref())?;
        return Ok(Plan {
            services: ordered,
            sequential: true,
            migration,
        });
    }
    let migration = migration(args, &plan.0, file_migration.as_ref())?;
    Ok(Plan {
        services: plan.0,
        sequential: false,
        migration,
    })
}

fn lines_of(lists: &[runner_protocol::input::LineList]) -> Vec<String> {
    flatten(lists)
}

fn str_pairs(
    flag: &'static str,
    lists: &[runner_protocol::input::LineList],
) -> Result<Vec<(String, String)>, PlanError> {
    let lines = lines_of(lists);
    pairs(flag, &lines.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `a` or `a,b`: container names, none empty (ECS container names never hold a comma).
fn container_names(text: &str) -> Result<Vec<String>, PlanError> {
    let names: Vec<String> = text.split(',').map(str::to_owned).collect();
    if names.iter().any(|n| n.trim().is_empty()) {
        return Err(PlanError::Usage(format!(
            "--container `{}` has an empty name: give one name or names separated by commas (`web,sidecar`)",
            text.escape_debug()
        )));
    }
    Ok(names.into_iter().map(|n| n.trim().to_owned()).collect())
}

fn from_flags(
    args: &Args,
    working_dir: &Path,
) -> Result<(Vec<ServicePlan>, Vec<String>), PlanError> {
    let service = args
        .service
        .clone()
        .ok_or_else(|| PlanError::Usage("give --service (or --deploy-file)".into()))?;
    check_service_name(&service)?;
    let mut env_set = str_pairs("env", &args.env)?;
    for (name, path) in str_pairs("env-from-file", &args.env_from_file)? {
        env_set.push((
            name,
            read(&working_dir.join(path), crate::limits::MAX_INPUT_FILE_BYTES)?,
        ));
    }
    let secrets_set = str_pairs("secret", &args.secret)?;
    let command = args.command.as_deref().map(parse_command).transpose()?;
    let env_files = lines_of(&args.env_files);
    let log_driver = args.log_driver.clone().filter(|d| !d.is_empty());
    if let Some(driver) = &log_driver {
        taskdef::check_log_driver(driver).map_err(PlanError::Usage)?;
    }
    let log_options = str_pairs("log-options", &args.log_options)?;
    let docker_labels = str_pairs("docker-labels", &args.docker_labels)?;
    let task_edit = task_edit(
        args.task_role_arn.as_deref(),
        args.execution_role_arn.as_deref(),
    )
    .map_err(|(_, message)| PlanError::Usage(message))?;
    let edit = ContainerEdit {
        name: String::new(),
        image: args
            .image
            .as_deref()
            .filter(|i| !i.is_empty())
            .map(image_edit),
        env_set,
        env_unset: flatten(&args.unset_env),
        secrets_set,
        secrets_unset: flatten(&args.unset_secret),
        command,
        env_files: (!env_files.is_empty()).then_some(env_files),
        log_driver,
        log_options,
        docker_labels,
    };
    let has_edit = edit
        != ContainerEdit {
            name: String::new(),
            ..ContainerEdit::default()
        };
    let edits = match (
        args.container.as_deref().filter(|c| !c.is_empty()),
        has_edit,
    ) {
        (Some(containers), _) => container_names(containers)?
            .into_iter()
            .map(|name| ContainerEdit {
                name,
                ..edit.clone()
            })
            .collect(),
        (None, true) => {
            return Err(PlanError::Usage(
                "--image, --env, --secret, --command, --env-files, --log-driver, --log-options \
                 and --docker-labels need --container"
                    .into(),
            ));
        }
        (None, false) => Vec::new(),
    };
    Ok((
        vec![ServicePlan {
            cluster: args.cluster.clone(),
            service,
            base: base(args.task_definition.as_deref(), working_dir)?,
            edits,
            task_edit,
            register: args.register,
            desired_count: args.desired_count,
            force_new_deployment: args.force_new_deployment,
        }],
        Vec::new(),
    ))
}

fn parse_command(text: &str) -> Result<Vec<String>, PlanError> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| PlanError::Usage(format!("--command is not a JSON array of strings: {e}")))
    } else {
        Ok(text.split_whitespace().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_plan::Base;
    use crate::taskdef::ImageEdit;
    use clap::FromArgMatches as _;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["ecs-taskdef-update", "deploy"];
        argv.extend_from_slice(extra);
        let matches = runner_protocol::cli::command::<crate::Cli>().get_matches_from(argv);
        match crate::Cli::from_arg_matches(&matches)
            .expect("valid flags")
            .command
        {
            crate::cli::Command::Deploy(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn one_service_flags_become_one_plan_with_values_kept_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundles = "{\n  \"bundles\": {\"a\": {\"path\": \"/bundles/a\"}}\n}\n";
        std::fs::write(dir.path().join("bundles.json"), bundles).expect("write");
        let plan = from_args(
            &args(&[
                "--service=processor",
                "--container=proc",
                "--image=:2.0",
                "--env=A=x=y\nEMPTY=",
                "--env-from-file=AGENTIC_BUNDLES_JSON=bundles.json",
                "--secret=DB=arn:aws:ssm:eu-west-1:1:parameter/db",
                "--command=[\"sh\", \"-c\", \"echo 'a b'\"]",
            ]),
            dir.path(),
        )
        .expect("plan");
        let edit = &plan.services[0].edits[0];
        assert_eq!(edit.image, Some(ImageEdit::Tag("2.0".into())));
        assert_eq!(
            edit.env_set,
            [
                ("A".to_owned(), "x=y".to_owned()),
                ("EMPTY".to_owned(), String::new()),
                ("AGENTIC_BUNDLES_JSON".to_owned(), bundles.to_owned())
            ]
        );
        assert_eq!(
            edit.command.as_deref(),
            Some(&["sh".to_owned(), "-c".into(), "echo 'a b'".into()][..])
        );
        assert_eq!(plan.services[0].base, Base::Current);
    }

    #[test]
    fn malformed_env_line_is_a_clear_error_without_its_value_issue_25() {
        let error = from_args(
            &args(&["--service=s", "--container=c", "--env=NOEQUALS_secretvalue"]),
            Path::new("."),
        )
        .expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "line 1 of --env is not NAME=value; the rest of the line is not shown, it may be a secret"
        );
        for line in [
            "DB_PASSWORD hunter2",
            "DB_PASSWORD:hunter2",
            "  DB_PASSWORD\thunter2",
        ] {
            let error = from_args(
                &args(&[
                    "--service=s",
                    "--container=c",
                    &format!("--env=A=1\n{line}"),
                ]),
                Path::new("."),
            )
            .expect_err("malformed");
            let message = error.to_string();
            assert!(!message.contains("hunter2"), "{message}");
            assert_eq!(
                message,
                "line 2 of --env is not NAME=value (it starts with `DB_PASSWORD`); the rest of the line is not shown, it may be a secret"
            );
        }
        let error = from_args(
            &args(&["--service=s", "--container=c", "--secret=TOKEN arn:aws:x"]),
            Path::new("."),
        )
        .expect_err("malformed");
        assert!(!error.to_string().contains("arn:aws:x"), "{error}");
        let error = from_args(&args(&["--service=s", "--image=x"]), Path::new("."))
            .expect_err("no container");
        assert!(error.to_string().contains("need --container"));
    }

    #[test]
    fn deploy_file_gives_three_services_in_order_with_bundles_only_for_the_processor() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            std::fs::write(dir.path().join("bundles.json"), "{\"bundles\": []}").expect("write");
            std::fs::write(
                dir.path().join("deploy.yaml"),
                "cluster: prod\norder: [processor, ingress, metrics]\nservices:\n\
                 - name: ingress\n  containers:\n  - name: ingress\n    tag: '2026.11.24'\n    env: {GATEWAY_CONFIG_JSON: {tenant: t}, WORKERS: 4}\n\
                 - name: metrics\n  containers:\n  - name: metrics\n    tag: '2026.11.24'\n\
                 - name: processor\n  desired-count: 2\n  containers:\n  - name: proc\n    image: 1.dkr.ecr.eu-west-1.amazonaws.com/p:1\n    env-from-file: {AGENTIC_BUNDLES_JSON: bundles.json}\n",
            )
            .expect("write");
        }
        let plan = from_args(
            &args(&[
                "--deploy-file",
                &dir.path().join("deploy.yaml").display().to_string(),
            ]),
            Path::new("."),
        )
        .expect("plan");
        assert!(plan.sequential);
        let names: Vec<&str> = plan.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["processor", "ingress", "metrics"]);
        assert_eq!(plan.services[0].cluster, "prod");
        assert_eq!(plan.services[0].desired_count, Some(2));
        assert_eq!(
            plan.services[0].edits[0].env_set,
            [(
                "AGENTIC_BUNDLES_JSON".to_owned(),
                "{\"bundles\": []}".to_owned()
            )]
        );
        assert_eq!(
            plan.services[1].edits[0].env_set,
            [
                (
                    "GATEWAY_CONFIG_JSON".to_owned(),
                    "{\"tenant\":\"t\"}".to_owned()
                ),
                ("WORKERS".to_owned(), "4".to_owned())
            ]
        );
        assert!(plan.services[2].edits[0].env_set.is_empty());
    }

    #[test]
    fn several_containers_get_the_same_changes_and_an_empty_name_is_refused() {
        let plan = from_args(
            &args(&[
                "--service=s",
                "--container=web,sidecar",
                "--image=nginx:1",
                "--docker-labels=a=1\nb=x=y",
                "--log-driver=awslogs",
                "--log-options=awslogs-group=/ecs/s",
                "--env-files=arn:aws:s3:::b/a.env\narn:aws:s3:::b/b.env",
                "--task-role-arn=arn:aws:iam::123456789012:role/t",
            ]),
            Path::new("."),
        )
        .expect("plan");
        let service = &plan.services[0];
        let names: Vec<&str> = service.edits.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["web", "sidecar"]);
        assert_eq!(
            service.edits[0].docker_labels,
            service.edits[1].docker_labels
        );
        assert_eq!(
            service.edits[1].docker_labels,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x=y".to_owned())
            ]
        );
        assert_eq!(service.edits[1].env_files.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            service.task_edit.task_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/t")
        );
        for bad in ["web,", ",web", "web,,sidecar"] {
            let error = from_args(
                &args(&["--service=s", &format!("--container={bad}"), "--image=x"]),
                Path::new("."),
            )
            .expect_err(bad);
            assert!(error.to_string().contains("has an empty name"), "{error}");
        }
        let error = from_args(
            &args(&["--service=s", "--container=web", "--log-driver=loki"]),
            Path::new("."),
        )
        .expect_err("bad driver");
        assert!(
            error.to_string().contains("valid drivers: json-file"),
            "{error}"
        );
        let error = from_args(
            &args(&["--service=s", "--execution-role-arn=arn:aws:iam::1:role/x"]),
            Path::new("."),
        )
        .expect_err("bad role");
        assert!(
            error.to_string().starts_with("execution-role-arn"),
            "{error}"
        );
    }

    #[test]
    fn deploy_file_entries_keep_the_order_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deploy.yaml");
        std::fs::write(
            &path,
            [
                "services:",
                "- name: a",
                "  execution-role-arn: arn:aws:iam::123456789012:role/e",
                "  containers:",
                "  - name: web",
                "    env: {ZED: '1', ALPHA: '2', MID: {k: v}}",
                "    secrets: {Z_KEY: arn:z, A_KEY: arn:a}",
                "    docker-labels: {z: '1', a: '2'}",
                "    log-driver: awslogs",
                "    log-options: {awslogs-region: eu-west-1, awslogs-group: /ecs/a}",
                "    env-files: [arn:aws:s3:::b/z.env, arn:aws:s3:::b/a.env]",
            ]
            .join("\n"),
        )
        .expect("write");
        let plan = from_args(
            &args(&["--deploy-file", &path.display().to_string()]),
            Path::new("."),
        )
        .expect("plan");
        let edit = &plan.services[0].edits[0];
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs.iter().map(|(n, _)| n.clone()).collect()
        };
        assert_eq!(names(&edit.env_set), ["ZED", "ALPHA", "MID"]);
        assert_eq!(edit.env_set[2].1, "{\"k\":\"v\"}");
        assert_eq!(names(&edit.secrets_set), ["Z_KEY", "A_KEY"]);
        assert_eq!(names(&edit.docker_labels), ["z", "a"]);
        assert_eq!(
            names(&edit.log_options),
            ["awslogs-region", "awslogs-group"]
        );
        assert_eq!(
            edit.env_files.as_deref(),
            Some(
                &[
                    "arn:aws:s3:::b/z.env".to_owned(),
                    "arn:aws:s3:::b/a.env".to_owned()
                ][..]
            )
        );
        assert_eq!(
            plan.services[0].task_edit.execution_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/e")
        );
        std::fs::write(
            &path,
            "services:\n- name: a\n  containers:\n  - name: web\n    secrets: {A: {nested: x}}\n",
        )
        .expect("write");
        let error = from_args(
            &args(&["--deploy-file", &path.display().to_string()]),
            Path::new("."),
        )
        .expect_err("structured secret");
        assert!(
            error
                .to_string()
                .contains("services[a].containers[web].secrets.A: must be a string"),
            "{error}"
        );
    }

    #[test]
    fn migration_flags_default_to_the_edited_container_and_name_what_is_missing() {
        let plan = from_args(
            &args(&[
                "--service=api",
                "--container=app",
                "--image=:2",
                "--migration-command=[\"migrate\", \"--to\", \"head tag\"]",
            ]),
            Path::new("."),
        )
        .expect("plan");
        let migration = plan.migration.expect("migration");
        assert_eq!(
            (migration.service.as_str(), migration.container.as_str()),
            ("api", "app")
        );
        assert_eq!(migration.command, ["migrate", "--to", "head tag"]);
        assert_eq!(migration.timeout, std::time::Duration::from_secs(1800));
        for (extra, message) in [
            (
                &["--service=api", "--migration-command=migrate"][..],
                "give --migration-container",
            ),
            (
                &["--service=api", "--migration-container=app"][..],
                "need --migration-command",
            ),
            (
                &[
                    "--service=api",
                    "--migration-command=migrate",
                    "--migration-container=app",
                    "--migration-service=other",
                ][..],
                "--migration-service `other` is not deployed in this run",
            ),
        ] {
            let error = from_args(&args(extra), Path::new(".")).expect_err(message);
            assert!(error.to_string().contains(message), "{error}");
        }
    }

    #[test]
    fn deploy_file_unknown_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deploy.yaml");
        std::fs::write(&path, "services:\n- name: a\n  containerz: []\n").expect("write");
        let error = from_args(
            &args(&["--deploy-file", &path.display().to_string()]),
            Path::new("."),
        )
        .expect_err("unknown");
        assert!(
            error.to_string().contains("unknown field `containerz`"),
            "{error}"
        );
    }

    const MIGRATING: &str = "cluster: prod\nservices:\n  - name: api\n    containers:\n      - {name: app, tag: '2.0'}\n      - {name: sidecar, tag: '2.0'}\n  - name: worker\n    containers:\n      - {name: work, tag: '2.0'}\n";

    fn file_plan(text: &str, extra: &[&str]) -> Result<Plan, PlanError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deploy.yaml");
        std::fs::write(&path, text).expect("write");
        let path = path.display().to_string();
        let mut flags = vec!["--deploy-file", &path];
        flags.extend_from_slice(extra);
        from_args(&args(&flags), Path::new("."))
    }

    #[test]
    fn a_migration_block_in_the_deploy_file_is_the_migration_of_the_flags() {
        let plan = file_plan(
            &format!(
                "{MIGRATING}migration:\n  service: worker\n  command: [python, -m, migrate, 'head tag']\n  timeout: 20m\n"
            ),
            &[],
        )
        .expect("valid");
        assert_eq!(
            plan.migration,
            Some(crate::migration::Migration {
                service: "worker".into(),
                container: "work".into(),
                command: vec![
                    "python".into(),
                    "-m".into(),
                    "migrate".into(),
                    "head tag".into()
                ],
                timeout: std::time::Duration::from_secs(20 * 60),
            })
        );
        // Defaults: the first service, the flag's timeout; the container named.
        let plan = file_plan(
            &format!("{MIGRATING}migration:\n  container: app\n  command: [migrate]\n"),
            &["--migration-timeout=5m"],
        )
        .expect("valid");
        let migration = plan.migration.expect("a migration");
        assert_eq!(
            (
                migration.service.as_str(),
                migration.container.as_str(),
                migration.timeout
            ),
            ("api", "app", std::time::Duration::from_secs(300))
        );
    }

    /// The diagnostic of a deploy file error: message, line, column, field.
    fn placed(error: PlanError) -> (String, Option<u32>, Option<u32>, Option<String>) {
        let PlanError::DeployFile(diagnostic) = error else {
            panic!("not a deploy file error: {error}")
        };
        let location = diagnostic.location.expect("placed in the file");
        assert!(location.file.ends_with("deploy.yaml"), "{}", location.file);
        (
            diagnostic.message,
            location.line,
            location.column,
            diagnostic.field,
        )
    }

    #[test]
    fn a_bad_migration_block_is_placed_at_its_line_and_column() {
        // MIGRATING has 9 lines: `migration:` is line 10.
        for (block, extra, (message, line, column), field) in [
            (
                "migration:\n  command: [migrate]\n  servce: api\n",
                &[][..],
                ("migration: unknown field `servce`", 12, 3),
                None,
            ),
            (
                "migration:\n  command: [migrate]\n  timeout: soon\n",
                &[][..],
                ("migration.timeout: `soon` is not a duration", 12, 12),
                Some("migration.timeout"),
            ),
            (
                "migration:\n  command: migrate\n",
                &[][..],
                (
                    "migration.command: invalid type: string \"migrate\", expected a sequence",
                    11,
                    12,
                ),
                None,
            ),
            (
                "migration:\n  command: [migrate]\n  service: billing\n",
                &[][..],
                (
                    "migration.service: `billing` is not a service of this file (services: api, worker)",
                    12,
                    12,
                ),
                Some("migration.service"),
            ),
            (
                "migration:\n  command: [migrate]\n",
                &[][..],
                (
                    "migration.container: give the container whose command the migration overrides (service `api` edits 2 containers)",
                    11,
                    3,
                ),
                Some("migration.container"),
            ),
            (
                "migration:\n  command: ['  ']\n",
                &[][..],
                (
                    "migration.command: is empty: give the command as a list of words",
                    11,
                    12,
                ),
                Some("migration.command"),
            ),
            (
                "migration:\n  container: app\n  command: [migrate]\n",
                &["--migration-command=other"][..],
                (
                    "the deploy file declares the migration: drop the --migration-* flags (or the block)",
                    12,
                    12,
                ),
                Some("migration.command"),
            ),
        ] {
            let error = file_plan(&format!("{MIGRATING}{block}"), extra).expect_err(message);
            let (text, at_line, at_column, at_field) = placed(error);
            assert!(text.contains(message), "{text}");
            assert_eq!(
                (at_line, at_column, at_field.as_deref()),
                (Some(line), Some(column), field),
                "{text}"
            );
        }
    }

    #[test]
    fn a_bad_service_entry_is_placed_at_the_field_it_is_about() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = "services:\n  - name: api\n    containers:\n      - name: app\n";
        for (text, (message, line, column), field) in [
            (
                format!("{service}        tag: '1'\n        digest: 'sha256:0'\n"),
                (
                    "services[api].containers[app]: give one of image, tag, digest",
                    4,
                    9,
                ),
                "services[0].containers[0]",
            ),
            (
                format!("{service}        docker-labels: {{a: [b]}}\n"),
                (
                    "services[api].containers[app].docker-labels.a: must be a string",
                    5,
                    28,
                ),
                "services[0].containers[0].docker-labels.a",
            ),
            (
                format!("{service}        log-driver: carrier-pigeon\n"),
                ("services[api].containers[app].log-driver: ", 5, 21),
                "services[0].containers[0].log-driver",
            ),
            (
                format!("{service}        env-from-file: {{A: missing.json}}\n"),
                (
                    "services[api].containers[app].env-from-file.A: cannot read ",
                    5,
                    28,
                ),
                "services[0].containers[0].env-from-file.A",
            ),
            (
                "services:\n  - name: api\n  - name: api\n".to_owned(),
                ("service `api` is listed twice", 3, 11),
                "services[1].name",
            ),
            (
                "services:\n  - name: api\n    task-role-arn: nope\n".to_owned(),
                ("services[api]: task-role-arn", 3, 20),
                "services[0].task-role-arn",
            ),
            (
                "services: []\n".to_owned(),
                ("`services` is empty", 1, 11),
                "services",
            ),
        ] {
            let path = dir.path().join("deploy.yaml");
            std::fs::write(&path, &text).expect("write");
            let error = from_args(
                &args(&["--deploy-file", &path.display().to_string()]),
                Path::new("."),
            )
            .expect_err(message);
            let (text, at_line, at_column, at_field) = placed(error);
            assert!(text.contains(message), "{text}");
            assert_eq!(
                (at_line, at_column, at_field.as_deref()),
                (Some(line), Some(column), Some(field)),
                "{text}"
            );
        }
        // What would be valid travels with the problem.
        let path = dir.path().join("deploy.yaml");
        std::fs::write(&path, format!("{service}        env: {{A: !x y}}\n")).expect("write");
        let error = from_args(
            &args(&["--deploy-file", &path.display().to_string()]),
            Path::new("."),
        )
        .expect_err("a tag");
        let PlanError::DeployFile(diagnostic) = error else {
            panic!("not placed: {error}")
        };
        assert_eq!(
            diagnostic.hint.as_deref(),
            Some("remove the `!tag` in front of the value")
        );
    }

    #[test]
    fn the_readme_deploy_file_parses_and_only_the_processor_gets_the_bundles() {
        let readme = include_str!("../../../actions/ecs-taskdef-update/README.md");
        let start = readme
            .find("```yaml\ncluster: kdcube-prod")
            .expect("example")
            + "```yaml\n".len();
        let yaml = &readme[start..start + readme[start..].find("```").expect("end")];
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("deploy")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("out")).expect("mkdir");
        std::fs::write(dir.path().join("out/bundles.json"), "{}").expect("write");
        std::fs::write(dir.path().join("deploy/gateway.json"), "{}").expect("write");
        let path = dir.path().join("deploy/ecs.yaml");
        std::fs::write(&path, yaml).expect("write");
        let plan = from_args(
            &args(&["--deploy-file", &path.display().to_string()]),
            Path::new("."),
        )
        .expect("the README example is valid");
        let names: Vec<&str> = plan.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["processor", "ingress", "metrics"]);
        for service in &plan.services {
            let has_bundles = service.edits[0]
                .env_set
                .iter()
                .any(|(n, _)| n == "AGENTIC_BUNDLES_JSON");
            assert_eq!(has_bundles, service.service == "processor");
        }
    }
}
