//! `ssh-deploy unlock`: removes a host's deploy lock, saying who held it.

use runner_protocol::{Runner, Verdict};

use crate::error::Error;
use crate::options::Connection;

/// `unlock`: remove the deploy lock, saying who held it.
pub(crate) fn unlock(connection: &Connection, runner: &mut Runner) -> Result<Verdict, Error> {
    let mut errors = Vec::new();
    for host in &connection.hosts {
        let result = connection
            .open(host)
            .and_then(|mut run| run.remote_force_unlock(connection.layout_for(host)));
        match result {
            Ok(owner) => {
                let holder = crate::status::LockHolder::parse(&owner);
                if owner.trim().is_empty() {
                    runner
                        .console()
                        .log(&format!("[{}] no lock held", host.label()));
                } else {
                    runner.warn(&format!(
                        "{}: removed the deploy lock held by {} (run {})",
                        host.label(),
                        holder.owner,
                        holder.run
                    ));
                }
            }
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(Verdict::Success)
    } else {
        Err(Error::Hosts(errors))
    }
}
