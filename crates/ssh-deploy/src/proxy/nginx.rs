//! nginx: the upstream include is written to a temp file and renamed into place, `nginx -t`
//! checks the whole config (a broken config puts the previous include back and fails before
//! any switch), then the reload. A reload returns before the new workers serve and while the
//! old ones still finish their requests, so [`Nginx::drain`] waits until every worker of the
//! previous generation has exited (research note strategies.md §4.1: stopping the old slot when
//! the reload returns cost 9,304 to 12,305 × 502 per 20 s run, waiting cost none).
//!
//! The workers are the master's children (`pgrep -P`, or without procps `/proc/<pid>/stat` read
//! one file at a time: a single `awk` over the glob gives up on the first process that exits
//! meanwhile (mawk), which lost the whole list under load).

use std::time::Duration;

use crate::quote::{RemotePath, q};

/// nginx settings.
#[derive(Debug, Clone)]
pub(crate) struct Nginx {
    /// The include file holding `upstream <name> { server 127.0.0.1:<port>; }`.
    pub upstream_file: RemotePath,
    /// The upstream's name (what `proxy_pass http://<name>;` refers to).
    pub upstream_name: String,
    /// Checks the config (shell text from the workflow author), e.g. `nginx -t`.
    pub test_command: String,
    /// Reloads, e.g. `nginx -s reload` or `systemctl reload nginx`.
    pub reload_command: String,
    /// The master's pid file: its children before the reload are the generation to wait for.
    pub pid_file: RemotePath,
}

impl Nginx {
    /// The include file's text for the live port.
    pub(crate) fn upstream_text(&self, port: u16) -> String {
        format!(
            "# written by ssh-deploy (blue-green); do not edit\nupstream {} {{\n    server 127.0.0.1:{port};\n}}\n",
            self.upstream_name
        )
    }

    /// Records the current worker pids, swaps the include, tests, reloads; prints
    /// `drain-token=<old worker pids>`.
    pub(crate) fn switch(&self, port: u16, token: &str) -> String {
        let file = self.upstream_file.as_str();
        format!(
            "set -e; f={file}; t={tmp}; p={prev}; \
             m=$(cat {pid} 2>/dev/null || true); old=; \
             if [ -n \"$m\" ] && command -v pgrep >/dev/null 2>&1; then old=$(pgrep -P \"$m\" | tr '\\n' ' '); \
             elif [ -n \"$m\" ]; then for s in /proc/[0-9]*/stat; do \
             read -r pid comm state ppid rest < \"$s\" 2>/dev/null || continue; \
             if [ \"$ppid\" = \"$m\" ]; then old=\"$old $pid\"; fi; done; fi; \
             if [ -z \"$old\" ]; then echo {no_workers} >&2; fi; \
             if [ -f \"$f\" ]; then cp -p \"$f\" \"$p\"; fi; \
             printf '%s' {text} > \"$t\"; mv -f \"$t\" \"$f\"; \
             if ! {{ {test}\n}} > \"$t.log\" 2>&1; then cat \"$t.log\" >&2; rm -f \"$t.log\"; \
             if [ -f \"$p\" ]; then mv -f \"$p\" \"$f\"; else rm -f \"$f\"; fi; \
             echo 'nginx config test failed: the previous upstream file is back and nothing was switched' >&2; exit 1; fi; \
             rm -f \"$t.log\"; \
             if ! {{ {reload}\n}}; then if [ -f \"$p\" ]; then mv -f \"$p\" \"$f\"; fi; \
             echo 'nginx reload failed: the previous upstream file is back' >&2; exit 1; fi; \
             rm -f \"$p\"; echo \"drain-token=$old\"",
            file = q(file),
            tmp = q(&format!("{file}.tmp-{token}")),
            prev = q(&format!("{file}.prev-{token}")),
            pid = q(self.pid_file.as_str()),
            no_workers = q(&format!(
                "warning: no nginx workers found through {}: the old slot cannot be drained by waiting for them",
                self.pid_file.as_str()
            )),
            text = q(&self.upstream_text(port)),
            test = self.test_command,
            reload = self.reload_command,
        )
    }

    /// Waits until the worker pids recorded by [`Nginx::switch`] are gone (a `/proc` check, so
    /// it works for a deploy user that may not signal nginx's workers), capped by `timeout`;
    /// reports workers left and established connections still open to the old port
    /// (WebSockets keep an old worker alive until they close).
    pub(crate) fn drain(&self, drain_token: &str, old_port: u16, timeout: Duration) -> String {
        let body = "alive=; for p in $old; do if [ -d /proc/\"$p\" ]; then alive=\"$alive $p\"; fi; done; \
                    if [ -z \"$alive\" ]; then ok=1; fi";
        format!(
            "old={old}; {poll}; \
             n=0; for p in $alive; do n=$((n+1)); done; \
             c=$(ss -Htn state established '( dport = :{old_port} )' 2>/dev/null | wc -l || echo unknown); \
             echo \"pinned=old-workers-left=$n old-slot-connections=$c\"",
            old = q(drain_token),
            poll = super::bounded_poll(timeout, body),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx() -> Nginx {
        Nginx {
            upstream_file: RemotePath::parse("/etc/nginx/conf.d/it's app.upstream").expect("path"),
            upstream_name: "app".into(),
            test_command: "nginx -t".into(),
            reload_command: "nginx -s reload".into(),
            pid_file: RemotePath::parse("/run/nginx.pid").expect("path"),
        }
    }

    #[test]
    fn nginx_commands() {
        let nginx = nginx();
        insta::assert_snapshot!(
            "nginx_commands",
            [
                nginx.upstream_text(8082),
                nginx.switch(8082, "t0k"),
                nginx.drain("101 102", 8081, Duration::from_secs(30)),
            ]
            .join("\n")
        );
    }

    /// The switch command against a scratch directory with `true`/`false` standing in for
    /// nginx: a failed test restores the previous file and exits non-zero.
    #[test]
    fn failed_config_test_restores_the_previous_upstream() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("upstream.conf");
        std::fs::write(&file, "previous").expect("write");
        let mut nginx = nginx();
        nginx.upstream_file = RemotePath::parse(file.to_str().expect("utf8")).expect("path");
        nginx.pid_file = RemotePath::parse("/nonexistent/nginx.pid").expect("path");
        nginx.test_command = "echo broken >&2; false".into();
        let run = |command: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .output()
                .expect("sh")
        };
        let failed = run(&nginx.switch(8082, "t0k"));
        assert!(!failed.status.success());
        assert!(String::from_utf8_lossy(&failed.stderr).contains("broken"));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "previous");
        nginx.test_command = "true".into();
        nginx.reload_command = "echo reloaded".into();
        let ok = run(&nginx.switch(8082, "t0k"));
        assert!(ok.status.success(), "{ok:?}");
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert!(stdout.contains("reloaded\ndrain-token="), "{stdout}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            nginx.upstream_text(8082)
        );
        let leftovers = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(leftovers, 1, "no temp or backup files left behind");
    }
}
