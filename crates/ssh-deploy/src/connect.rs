//! The one way every flow connects to a host: [`Connection::connect`] (through the host's jump
//! host, if any) and [`Connection::open`], which starts a [`HostRun`] on the connection.

use crate::host_run::{HostError, HostRun};
use crate::options::{Connection, HostSpec};
use crate::remote::{LocalRemote, Remote, RemoteError, SshRemote};

impl Connection {
    /// Opens a connection to `host` (through its jump host, if any).
    pub fn connect(&self, host: &HostSpec) -> Result<Box<dyn Remote>, RemoteError> {
        match host {
            HostSpec::Local => Ok(Box::new(LocalRemote::default())),
            HostSpec::Ssh(target) => Ok(Box::new(SshRemote::connect_via(
                target,
                self.settings_for(host).and_then(|s| s.jump.as_ref()),
                &self.auth,
                &self.trust,
                &self.timeouts,
            )?)),
        }
    }

    /// Opens a connection to `host` and starts a [`HostRun`] on it: the one way every flow
    /// connects (a failure is an infrastructure error of stage `connect`).
    pub(crate) fn open(&self, host: &HostSpec) -> Result<HostRun, HostError> {
        self.connect(host)
            .map(HostRun::new)
            .map_err(|error| HostError {
                host: host.label(),
                stage: "connect".into(),
                message: error.to_string(),
                infrastructure: true,
            })
    }
}
