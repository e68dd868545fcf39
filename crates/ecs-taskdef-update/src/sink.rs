//! Where the fleet's progress lines go: the runner's log in the tool, a `Vec` in tests.

/// Where progress lines go.
pub trait Sink {
    /// A progress line of one service.
    fn line(&mut self, service: &str, text: &str);
    /// Something a person should see.
    fn warn(&mut self, service: &str, text: &str);
    /// Something worth knowing that is not a problem.
    fn notice(&mut self, service: &str, text: &str) {
        self.line(service, text);
    }
    /// Text from elsewhere (a container's log): masked and escaped so that no line of it can
    /// be read as a workflow command.
    fn untrusted(&mut self, service: &str, heading: &str, lines: &[String]) {
        self.line(service, heading);
        for line in lines {
            self.line(service, &format!("| {line}"));
        }
    }
}
