//! The one way change-detect talks to the GitHub REST API: a current-thread runtime and an
//! octocrab client with the suite's timeouts, for the pull request files and the two
//! "last good commit" bases.

use std::time::Duration;

use runner_protocol::Secret;

/// A runtime for one blocking call.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A client for `url` (`GITHUB_API_URL`) authenticated with `token`.
pub fn client(url: &str, token: &Secret) -> Result<octocrab::Octocrab, octocrab::Error> {
    octocrab::Octocrab::builder()
        .base_uri(url)?
        .personal_token(token.expose().to_owned())
        .set_connect_timeout(Some(Duration::from_secs(30)))
        .set_read_timeout(Some(Duration::from_secs(60)))
        .build()
}
