//! Which node to attach to and with which cookie: node names, cookie sources, EPMD.

use std::fmt;

/// An Erlang magic cookie. Its `Debug` and `Display` never show the value,
/// so a cookie cannot leak into logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(String);

impl Cookie {
    /// Builds a cookie from file or argument text: surrounding whitespace and
    /// newlines are trimmed, as erl does with `~/.erlang.cookie`.
    pub fn new(raw: &str) -> Option<Cookie> {
        let t = raw.trim();
        if t.is_empty() { None } else { Some(Cookie(t.to_string())) }
    }

    /// The secret itself, for the handshake only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<hidden>)")
    }
}
