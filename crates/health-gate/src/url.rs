//! URLs as shown to people: never with a password.

/// A URL as shown in reports, baselines and logs: a password in it (`user:pass@`) is
/// replaced by `****`; the request still sends it (as basic auth).
pub(crate) fn display_url(url: &reqwest::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    match shown.set_password(Some("****")) {
        Ok(()) => shown.to_string(),
        Err(()) => format!(
            "{}://****@{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ),
    }
}

/// [`display_url`] for text that may not parse as a URL (configuration errors echo it).
pub(crate) fn display_url_text(text: &str) -> String {
    let Some(start) = text.find("://").map(|at| at + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| start + at);
    match text[start..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &text[start..start + at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let password = if userinfo.contains(':') { ":****" } else { "" };
            format!("{}{user}{password}{}", &text[..start], &text[start + at..])
        }
        None => text.to_owned(),
    }
}
