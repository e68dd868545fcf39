//! `ssh-deploy releases`: the releases on each host, the current one marked.

use runner_protocol::{Runner, Verdict};

use crate::error::Error;
use crate::options::Connection;

/// `releases`: list per host, current marked.
pub(crate) fn releases(connection: &Connection, runner: &mut Runner) -> Result<Verdict, Error> {
    let console = runner.console().clone();
    let mut all = serde_json::Map::new();
    let mut errors = Vec::new();
    for host in &connection.hosts {
        let listed = connection.open(host).and_then(|mut run| {
            let output = run.remote_status(connection.layout_for(host))?;
            Ok(crate::status::parse_status(&output))
        });
        match listed {
            Ok(status) => {
                let block = console.untrusted();
                let mut list = Vec::new();
                for (id, sha) in &status.releases {
                    let current = status.current.as_ref() == Some(id);
                    block.line(&format!(
                        "[{}] {} {id} {}",
                        host.label(),
                        if current { "*" } else { " " },
                        sha.as_deref().map_or("-", |s| &s[..s.len().min(12)])
                    ));
                    list.push(
                        serde_json::json!({"id": id.as_str(), "current": current, "sha256": sha}),
                    );
                }
                all.insert(host.label(), serde_json::Value::Array(list));
            }
            Err(error) => errors.push(error),
        }
    }
    runner.set_output("releases", serde_json::Value::Object(all))?;
    if errors.is_empty() {
        Ok(Verdict::Success)
    } else {
        Err(Error::Hosts(errors))
    }
}
