//! Every failure the operator can meet, as one line that says what happened and
//! what to do, and the exit code scripts can tell apart.

use thiserror::Error;

/// Exit codes, documented in the README and the man page.
pub mod exit {
    pub const OK: i32 = 0;
    /// Anything unexpected: a bug, an I/O error on our side.
    pub const FAILURE: i32 = 1;
    /// Bad arguments, or nothing to attach to.
    pub const USAGE: i32 = 2;
    /// The node cannot be reached: EPMD down, unknown name, refused, timed out.
    pub const UNREACHABLE: i32 = 3;
    /// The node refused us: wrong cookie, or not allowed to connect.
    pub const REJECTED: i32 = 4;
    /// We were attached and the connection was lost for good.
    pub const LOST: i32 = 5;
    /// The node answered, but a remote call failed (for example an OTP release
    /// older than 23).
    pub const REMOTE: i32 = 6;
    /// `etop watch`: a `--fail-if` condition held.
    pub const CONDITION: i32 = 7;
    /// TLS distribution: a certificate was refused, the node's by etop or
    /// etop's by the node.
    pub const TLS: i32 = 8;
}

#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("'{given}' is not a node name: {why}")]
    BadNodeName { given: String, why: String },

    /// No cookie anywhere: `hint` says where the node's cookie likely is.
    /// Never advice to make one up: a new random cookie can only be rejected.
    #[error("no cookie for {node}: {hint}")]
    NoCookie { node: String, hint: String },

    /// The node's own cookie is where etop may not read it.
    #[error(
        "cannot read the cookie of {node}: {source_desc}: {reason}; or pass the node's \
         cookie with --cookie-file PATH or ERLANG_COOKIE"
    )]
    TargetCookieUnreadable {
        node: String,
        source_desc: String,
        reason: String,
    },

    #[error("cannot read the cookie file '{path}': {err}")]
    CookieFile { path: String, err: std::io::Error },

    #[error(
        "cannot reach EPMD on {host}:{port} ({err}); is a node running there? \
         (use --port to connect to a node's distribution port directly)"
    )]
    EpmdUnreachable {
        host: String,
        port: u16,
        err: String,
    },

    #[error(
        "EPMD on {host}:{port} sent a reply etop cannot use ({err}); is something else \
         listening on EPMD's port? (use --port to connect to a node's distribution port directly)"
    )]
    EpmdBadReply {
        host: String,
        port: u16,
        err: String,
    },

    #[error("no node named '{name}' on {host}; EPMD there knows {}", known_list(.known))]
    UnknownNode {
        name: String,
        host: String,
        known: Vec<String>,
    },

    #[error("cannot resolve host '{host}': {err}")]
    Resolve { host: String, err: String },

    #[error("cannot connect to {node} at {addr}: {err}")]
    Connect {
        node: String,
        addr: String,
        err: String,
    },

    #[error("{node} did not answer {what} within {secs:.0} s")]
    Timeout {
        node: String,
        what: String,
        secs: f64,
    },

    #[error(
        "node {node} rejected our cookie (taken from {source_desc}); pass the node's cookie \
         with --cookie-file PATH or ERLANG_COOKIE"
    )]
    CookieRejected { node: String, source_desc: String },

    #[error("node {node} does not allow connections from {ours} (net_kernel:allow/1 is set)")]
    NotAllowed { node: String, ours: String },

    #[error(
        "node {node} refused our name: {ours}..{last} are all connected already; \
         pass --name to pick another"
    )]
    NamesTaken {
        node: String,
        ours: String,
        last: String,
    },

    #[error("handshake with {node} failed: {err}")]
    Handshake { node: String, err: String },

    #[error("lost the connection to {node}: {reason}")]
    ConnectionLost { node: String, reason: String },

    /// The connection dropped during a measurement window (msacc): a new one
    /// would know nothing of the window, so there is nothing to retry.
    #[error(
        "lost the connection to {node} during the measurement; the node put \
         microstate accounting back as it was"
    )]
    WindowLost { node: String },

    /// We had been attached; the node went away and did not come back.
    #[error("lost the node after {tries} attempts to reconnect; the last one: {last}")]
    Gone { tries: u32, last: Box<Error> },

    #[error("{node} failed to run {what}: {detail}")]
    Remote {
        node: String,
        what: String,
        detail: String,
    },

    /// A frame worker hit its heap ceiling and the VM stopped it.
    #[error(
        "this frame ({what}) needs more than {} MB of heap on {node}; etop's worker was \
         stopped there and the node is untouched (raise the ceiling with --agent-max-heap MB)",
        .limit_bytes.div_ceil(1 << 20)
    )]
    HeapLimit {
        node: String,
        what: String,
        limit_bytes: u64,
    },

    /// The process asked about did not answer within the bound (a huge
    /// mailbox can make it slow to answer).
    #[error(
        "the process did not answer within {ms} ms on {node}; it may be busy or have a huge mailbox"
    )]
    SlowProcess { node: String, ms: u64 },

    /// No such process on the node (it exited, or the pid is not one).
    #[error("no such process on {node} (it has exited, or the pid is not one of this node's)")]
    NoProcess { node: String },

    /// `etop watch` saw a condition hold; it has said which on its output.
    #[error("a --fail-if condition held")]
    ConditionHeld,
    #[error("cannot use the TLS {what} '{path}' ({named_by}): {err}")]
    TlsFile {
        what: &'static str,
        path: String,
        /// `--tls-cert`, or the node's option that names the file.
        named_by: String,
        err: String,
    },

    /// A certificate refused, by etop (the node's) or by the node (ours).
    #[error("TLS with {node}: {why}")]
    TlsRefused { node: String, why: String },

    #[error("TLS handshake with {node} failed: {err}")]
    TlsHandshake { node: String, err: String },

    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no nodes (start the node with -sname or -name)".to_string()
    } else {
        format!("these: {}", known.join(", "))
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::BadNodeName { .. }
            | Error::NoCookie { .. }
            | Error::TargetCookieUnreadable { .. } => exit::USAGE,
            Error::CookieFile { .. } | Error::TlsFile { .. } => exit::USAGE,
            Error::EpmdUnreachable { .. }
            | Error::EpmdBadReply { .. }
            | Error::UnknownNode { .. }
            | Error::Resolve { .. }
            | Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::NamesTaken { .. }
            | Error::Handshake { .. }
            | Error::TlsHandshake { .. } => exit::UNREACHABLE,
            Error::TlsRefused { .. } => exit::TLS,
            Error::CookieRejected { .. } | Error::NotAllowed { .. } => exit::REJECTED,
            Error::ConnectionLost { .. } | Error::Gone { .. } | Error::WindowLost { .. } => {
                exit::LOST
            }
            Error::Remote { .. } | Error::HeapLimit { .. } => exit::REMOTE,
            Error::SlowProcess { .. } | Error::NoProcess { .. } => exit::REMOTE,
            Error::ConditionHeld => exit::CONDITION,
            Error::Io(_) => exit::FAILURE,
        }
    }

    /// Errors after which trying again later can succeed: the node may come
    /// back (restart) or answer the next time.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::EpmdUnreachable { .. }
                | Error::UnknownNode { .. }
                | Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::ConnectionLost { .. }
                | Error::Handshake { .. }
                | Error::SlowProcess { .. }
                | Error::TlsHandshake { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_node_lists_what_epmd_knows() {
        let e = Error::UnknownNode {
            name: "foo".into(),
            host: "db1".into(),
            known: vec!["demo".into(), "rabbit".into()],
        };
        assert_eq!(
            e.to_string(),
            "no node named 'foo' on db1; EPMD there knows these: demo, rabbit"
        );
        assert_eq!(e.exit_code(), exit::UNREACHABLE);
        let e = Error::UnknownNode {
            name: "foo".into(),
            host: "db1".into(),
            known: vec![],
        };
        assert!(
            e.to_string()
                .ends_with("knows no nodes (start the node with -sname or -name)")
        );
    }

    #[test]
    fn exit_codes_are_distinct_per_kind() {
        let rejected = Error::CookieRejected {
            node: "a@b".into(),
            source_desc: "~/.erlang.cookie".into(),
        };
        let lost = Error::ConnectionLost {
            node: "a@b".into(),
            reason: "closed".into(),
        };
        let codes = [
            Error::NoCookie {
                node: "a@b".into(),
                hint: "h".into(),
            }
            .exit_code(),
            Error::EpmdUnreachable {
                host: "h".into(),
                port: 4369,
                err: "refused".into(),
            }
            .exit_code(),
            rejected.exit_code(),
            lost.exit_code(),
            Error::TlsRefused {
                node: "a@b".into(),
                why: "its certificate has expired".into(),
            }
            .exit_code(),
        ];
        let mut sorted = codes.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len());
    }
}
