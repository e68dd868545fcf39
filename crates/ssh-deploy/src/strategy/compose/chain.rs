//! Several compose steps in one remote shell (issue 19): every SSH command costs a channel, a
//! login shell and whatever that shell sources (measured 0.3-0.5 s each on the benchmark host,
//! 0.27 s of it root's `~/.bashrc`, which bash sources for every SSH command), so the rollout
//! runs each phase between two runner-side gates as one command.
//!
//! Each part runs in its own subshell (its `set -e`, `cd` or `exit` end only that part), its
//! stderr merged into stdout in order; after it the shell prints a marker line carrying the
//! run's random tag, the part's index, its exit status and the host's clock, so the runner
//! knows which part failed and how long each took on the host. Env file contents come back as
//! length-prefixed blocks (never echoed), the snapshot's image lines as tagged lines.

/// One step of a chained command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What it does (the error's stage and the plan's title): `pull …`, `up api-1`.
    pub title: String,
    /// The service its timing is reported under (`(host)` for host-wide steps).
    pub service: String,
    /// The timing's action: `pull`, `read env + snapshot`, `write env`, `validate`, `drain`,
    /// `up`, `undrain`, `migrate`, `hook …`, `rollback`.
    pub action: String,
    /// The exact command.
    pub command: String,
    /// The service that counts as touched (rolled back on failure) once this part started.
    pub touches: Option<String>,
}

/// The marker prefix of one run: `ssh-deploy-<token>`.
pub fn tag(token: &str) -> String {
    format!("ssh-deploy-{token}")
}

/// The parts as one shell command. With `stop_on_failure` the first failing part ends the
/// command with its status; otherwise every part runs and the command exits 0.
pub fn script(parts: &[Part], token: &str, stop_on_failure: bool) -> String {
    let tag = crate::quote::q(&tag(token));
    let mut text = format!("printf '%s start %s\\n' {tag} \"$(date +%s%N)\"; ");
    for (index, part) in parts.iter().enumerate() {
        // The newline before `)`: a part may end in a comment or a here-document.
        text.push_str(&format!(
            "( {}\n) 2>&1; s=$?; printf '\\n%s part {index} %s %s\\n' {tag} \"$s\" \"$(date +%s%N)\"; ",
            part.command
        ));
        if stop_on_failure {
            text.push_str("[ \"$s\" -eq 0 ] || exit \"$s\"; ");
        }
    }
    text.push_str("exit 0");
    text
}

/// One part that ran (its marker was printed).
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The part's index.
    pub index: usize,
    /// Its exit status.
    pub status: i32,
    /// Seconds on the host's clock (0 when the host's `date` has no `%N`).
    pub seconds: f64,
    /// What it printed (stdout and stderr, in order), env blocks and image lines left out.
    pub output: String,
}

/// A chained command's output, taken apart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// The parts that ran, in order.
    pub ended: Vec<Ended>,
    /// Env file blocks: index and content (`None`: the file does not exist).
    pub env: Vec<(usize, Option<String>)>,
    /// The snapshot's image lines.
    pub images: String,
    /// Output after the last marker (a part the shell did not finish).
    pub trailing: String,
}

impl Parsed {
    /// The part that failed: the first with a non-zero status, else (the command failed
    /// without a failing marker: the shell or the connection died) the first that did not end.
    pub fn failed(&self) -> Option<usize> {
        self.ended.iter().find(|e| e.status != 0).map(|e| e.index)
    }
}

fn nanos(text: &str) -> Option<u128> {
    text.trim().parse().ok()
}

/// Takes a chained command's stdout apart (see [`script`]).
pub fn parse(stdout: &str, token: &str) -> Result<Parsed, String> {
    let tag = format!("{} ", tag(token));
    let mut parsed = Parsed::default();
    let mut current = String::new();
    let mut clock: Option<u128> = None;
    let mut rest = stdout;
    while !rest.is_empty() {
        let (line, after) = match rest.find('\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, ""),
        };
        rest = after;
        let Some(marker) = line.strip_prefix(&tag) else {
            if !line.trim().is_empty() {
                current.push_str(line);
                current.push('\n');
            }
            continue;
        };
        let fields: Vec<&str> = marker.split(' ').collect();
        match fields.as_slice() {
            ["start", at] => clock = nanos(at),
            ["part", index, status, at] => {
                let index = index
                    .parse()
                    .map_err(|_| format!("bad part marker `{marker}`"))?;
                let status = status
                    .parse()
                    .map_err(|_| format!("bad part marker `{marker}`"))?;
                let at = nanos(at);
                let seconds = match (clock, at) {
                    (Some(from), Some(to)) if to >= from => (to - from) as f64 / 1e9,
                    _ => 0.0,
                };
                clock = at;
                parsed.ended.push(Ended {
                    index,
                    status,
                    seconds,
                    output: std::mem::take(&mut current),
                });
            }
            ["env", index, "absent"] => {
                let index = index
                    .parse()
                    .map_err(|_| format!("bad env marker `{marker}`"))?;
                parsed.env.push((index, None));
            }
            ["env", index, "present", size] => {
                let (index, size): (usize, usize) = match (index.parse(), size.trim().parse()) {
                    (Ok(index), Ok(size)) => (index, size),
                    _ => return Err(format!("bad env marker `{marker}`")),
                };
                let content = rest.get(..size).ok_or_else(|| {
                    format!(
                        "env file {index}: {size} bytes announced, fewer (or not UTF-8) received"
                    )
                })?;
                parsed.env.push((index, Some(content.to_owned())));
                rest = &rest[size..];
            }
            ["image", ..] => {
                parsed.images.push_str(&marker["image ".len()..]);
                parsed.images.push('\n');
            }
            _ => return Err(format!("unknown marker `{marker}`")),
        }
    }
    parsed.trailing = current;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(title: &str, command: &str) -> Part {
        Part {
            title: title.into(),
            service: "(host)".into(),
            action: "test".into(),
            command: command.into(),
            touches: None,
        }
    }

    fn run(script: &str) -> (i32, String) {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).expect("utf-8"),
        )
    }

    /// Through a real `sh`: parts in order, each in its own subshell, a failure stops the
    /// rest, stderr in order with stdout, env blocks byte for byte (no trailing newline,
    /// lines that look like markers of another run).
    #[test]
    fn parts_run_in_order_and_the_first_failure_stops_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("env");
        let content = "A=1\nB='x y'\nssh-deploy-other part 0 0 1\nNO_NEWLINE=1";
        std::fs::write(&file, content).expect("write");
        let f = crate::quote::q(file.to_str().expect("utf-8"));
        let parts = [
            part("one", "set -e; cd /; echo one; echo warn >&2"),
            part(
                "read",
                &format!(
                    "printf '\\n%s env 0 present %s\\n' 'ssh-deploy-t0k' \"$(wc -c < {f})\"; cat {f}; printf '\\n%s env 1 absent\\n' 'ssh-deploy-t0k'; echo 'ssh-deploy-t0k image api-1 sha256:a r -'"
                ),
            ),
            part(
                "last",
                "false; echo without set -e a part's status is its last command's",
            ),
        ];
        let (status, stdout) = run(&script(&parts, "t0k", true));
        assert_eq!(status, 0, "{stdout}");
        let parsed = parse(&stdout, "t0k").expect("parses");
        assert_eq!(parsed.ended.len(), 3, "{parsed:?}");
        assert_eq!(parsed.ended[0].output, "one\nwarn\n");
        assert_eq!(parsed.env, [(0, Some(content.to_owned())), (1, None)]);
        assert_eq!(parsed.images, "api-1 sha256:a r -\n");
        assert_eq!(parsed.failed(), None);
        assert!(parsed.ended.iter().all(|e| e.seconds >= 0.0));

        let parts = [
            part("ok", "true"),
            part("fails", "set -e; false; echo after"),
            part("never", "echo never"),
        ];
        let (status, stdout) = run(&script(&parts, "t0k", true));
        assert_eq!(status, 1);
        let parsed = parse(&stdout, "t0k").expect("parses");
        assert_eq!(parsed.failed(), Some(1));
        assert!(
            !stdout.contains("never") && !stdout.contains("after"),
            "{stdout}"
        );

        // Without stop_on_failure every part runs and the command succeeds.
        let (status, stdout) = run(&script(&parts, "t0k", false));
        assert_eq!(status, 0);
        let parsed = parse(&stdout, "t0k").expect("parses");
        assert_eq!(parsed.ended.len(), 3);
        assert_eq!(parsed.ended[2].output, "never\n");
    }

    #[test]
    fn a_short_env_block_is_an_error() {
        let stdout = "ssh-deploy-t part 0 0 1\n\nssh-deploy-t env 0 present 99\nA=1\n";
        assert!(parse(stdout, "t").is_err());
    }
}
