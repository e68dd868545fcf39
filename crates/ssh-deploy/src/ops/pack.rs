//! `ssh-deploy pack`: the release tree into one reproducible archive and its manifest.

use std::path::PathBuf;

use runner_protocol::{Runner, Verdict};

use crate::cli::PackArgs;
use crate::error::Error;

/// `pack`.
pub(crate) fn pack(args: &PackArgs, runner: &mut Runner) -> Result<Verdict, Error> {
    let mtime = runner
        .env()
        .get("SOURCE_DATE_EPOCH")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut manifest_path = args.artifact.clone().into_os_string();
    manifest_path.push(".manifest.json");
    let manifest_path = PathBuf::from(manifest_path);
    let manifest = crate::pack::pack(&args.source, &args.artifact, &manifest_path, mtime)?;
    runner.console().log(&format!(
        "packed {} entries into {} ({} bytes, sha256 {})",
        manifest.files.len(),
        args.artifact.display(),
        manifest.archive_size,
        manifest.archive_sha256
    ));
    runner.set_output("artifact", args.artifact.display().to_string())?;
    runner.set_output("artifact-sha256", manifest.archive_sha256)?;
    runner.set_output("manifest", manifest_path.display().to_string())?;
    Ok(Verdict::Success)
}
