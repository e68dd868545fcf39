//! The lookaheads picomatch writes into its regular expressions, for `dot` handling and for
//! "at least one character": the port in [`crate::picomatch`] writes them, the reader in
//! [`crate::jsregex`] recognises them by their exact text. Both import them from here.

/// No `.` or `..` segment at the start or after a `/`.
pub const NO_DOTS: &str = "(?!(?:^|\\/)\\.{1,2}(?:\\/|$))";
/// No empty or `.` segment next.
pub const NO_DOT_SLASH: &str = "(?!\\.{0,1}(?:\\/|$))";
/// No `.` or `..` segment next.
pub const NO_DOTS_SLASH: &str = "(?!\\.{1,2}(?:\\/|$))";
/// At least one character follows.
pub const ONE_CHAR: &str = "(?=.)";

/// The `dot` lookaheads, which the Rust compiler drops (git lists no `.` or `..` segment).
pub const DOT_LOOKAHEADS: [&str; 3] = [NO_DOTS, NO_DOT_SLASH, NO_DOTS_SLASH];
