//! Which node, and with which cookie: what the operator typed (a node name,
//! a bare name, an OS pid, or nothing) turned into a target, using what the
//! OS tells of the BEAMs on this host (`discover`), what EPMD knows (`epmd`)
//! and the cookie sources (`cookie`). One home for both questions.

pub mod cookie;
pub mod discover;
pub mod epmd;
mod local;

pub use cookie::{Cookie, CookieOrigin};
pub use local::{
    CookieSources, OwnCookies, Reach, ReleaseEnv, Resolved, Target, check_given, dist_port,
    find_cookie, find_local, label, listing_error, local_nodes, local_os_pid, local_vm, resolve,
    resolve_all, resolve_with, target,
};

use crate::error::{Error, Result};
use std::fmt;
use std::net::IpAddr;

/// Whether a node runs with `-sname` (plain host) or `-name` (dotted host or
/// IP). Erlang refuses a peer whose host part is of the other kind, so our own
/// name must match the target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMode {
    Short,
    Long,
}

/// A target node's name, `name@host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName {
    pub name: String,
    pub host: String,
}

impl NodeName {
    /// Parses what the operator typed: `name@host`, or `name` alone for a
    /// node on this host.
    pub fn parse(given: &str, local_host: &str) -> Result<NodeName> {
        let bad = |why: &str| Error::BadNodeName {
            given: given.to_string(),
            why: why.to_string(),
        };
        let (name, host) = match given.split_once('@') {
            Some((n, h)) => (n, h),
            None => (given, local_host),
        };
        if name.is_empty() {
            return Err(bad("the part before '@' is empty"));
        }
        if host.is_empty() {
            return Err(bad("the host after '@' is empty"));
        }
        if host.contains('@') {
            return Err(bad("it has more than one '@'"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.'))
        {
            return Err(bad(&format!("'{c}' cannot appear in a node name")));
        }
        if host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(bad("the host part is not a host name"));
        }
        if name.len() + host.len() + 1 > 255 {
            return Err(bad("it is longer than 255 characters"));
        }
        Ok(NodeName {
            name: name.to_string(),
            host: host.to_string(),
        })
    }

    /// Long-name nodes have a dotted host or an IP address.
    pub fn mode(&self) -> NameMode {
        if self.host.contains('.') || self.host.parse::<IpAddr>().is_ok() {
            NameMode::Long
        } else {
            NameMode::Short
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_long_and_bare_names() {
        let n = NodeName::parse("demo@vm", "here").unwrap();
        assert_eq!(
            (n.name.as_str(), n.host.as_str(), n.mode()),
            ("demo", "vm", NameMode::Short)
        );
        let n = NodeName::parse("demo@db1.example.com", "here").unwrap();
        assert_eq!(n.mode(), NameMode::Long);
        let n = NodeName::parse("demo@127.0.0.1", "here").unwrap();
        assert_eq!(n.mode(), NameMode::Long);
        let n = NodeName::parse("demo@::1", "here").unwrap();
        assert_eq!(n.mode(), NameMode::Long);
        let n = NodeName::parse("demo", "here").unwrap();
        assert_eq!(n.to_string(), "demo@here");
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["@vm", "demo@", "a@b@c", "de mo@vm", "demo@a b", ""] {
            let e = NodeName::parse(bad, "here").unwrap_err();
            assert!(matches!(e, Error::BadNodeName { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("is not a node name"));
        }
    }
}
