//! Exit codes, the same for every binary of the suite.

/// What a run ended with, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: the tool did what was asked; a gate passed, a deploy is live.
    Success,
    /// 1: the check or deploy failed: a gate failed, or a deploy failed and was rolled back
    /// cleanly (every target is on its previous release).
    Failed,
    /// 2: usage or configuration error: a bad flag, input, or file. Nothing was changed.
    Usage,
    /// 3: infrastructure error: network, remote host, cloud API, git. Targets are unchanged or
    /// were restored.
    Infrastructure,
    /// 4: a rollback was needed and did not complete: a target may be on neither release.
    /// Needs a person.
    RollbackFailed,
    /// 130: interrupted by SIGINT/SIGTERM; partial results were written.
    Interrupted,
}

impl Exit {
    /// Every exit code, in order, for documentation and tests.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::Failed,
        Exit::Usage,
        Exit::Infrastructure,
        Exit::RollbackFailed,
        Exit::Interrupted,
    ];

    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Infrastructure => 3,
            Exit::RollbackFailed => 4,
            Exit::Interrupted => 130,
        }
    }

    /// One-line meaning, as documented in the README.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failed => "check or deploy failed (gate failed; deploy rolled back)",
            Exit::Usage => "usage or configuration error (bad flag, input or file)",
            Exit::Infrastructure => "infrastructure error (network, remote host, API, git)",
            Exit::RollbackFailed => "rollback failed: manual intervention needed",
            Exit::Interrupted => "interrupted (SIGINT/SIGTERM); partial report written",
        }
    }
}

/// The exit-code section of every binary's `--help`, made from [`Exit`] so that no tool copies
/// it by hand.
pub fn help() -> String {
    let mut text = String::from("Exit codes (the same for every binary of the suite):\n");
    for exit in Exit::ALL {
        text.push_str(&format!("  {:<4} {}\n", exit.code(), exit.meaning()));
    }
    text.truncate(text.trim_end().len());
    text
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_code_with_its_meaning() {
        let help = help();
        for exit in Exit::ALL {
            let line = format!("{:<4} {}", exit.code(), exit.meaning());
            assert!(help.contains(&line), "{help}");
        }
        assert_eq!(help.lines().count(), 1 + Exit::ALL.len());
    }

    #[test]
    fn codes_are_distinct_and_stable() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130]);
    }
}
