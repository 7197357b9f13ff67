//! Turning what the operator typed (a node name, a bare name, an OS pid, or
//! nothing) into a target and a cookie, using the BEAMs on this host.

use super::discover::{self, CookieLookup, LocalNode, NameKind};
use super::{Cookie, CookieOrigin, NameMode, NodeName, cookie, epmd};
use crate::error::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// Every BEAM on this host, named from argv or, for nodes that start
/// distribution from inside Erlang, from EPMD by their listen port; with
/// what the local EPMD knows (empty when it does not answer).
pub fn local_nodes(proc_root: &Path) -> (Vec<LocalNode>, Vec<(String, u16)>) {
    let mut nodes = discover::scan(proc_root);
    let known = epmd::names("localhost", Duration::from_secs(2)).unwrap_or_default();
    discover::match_epmd(&mut nodes, &known, &crate::host::short_hostname());
    (nodes, known)
}

/// The OS pid of the local BEAM named `name` (`name@host`): found again
/// after the node restarted under another pid.
pub fn local_os_pid(name: &str, proc_root: &Path) -> Option<u32> {
    let (nodes, _) = local_nodes(proc_root);
    nodes
        .iter()
        .find(|n| n.name.as_deref() == Some(name))
        .map(|n| n.os_pid)
}

/// The distribution port EPMD lists for a local node, if any.
pub fn dist_port(n: &LocalNode, epmd: &[(String, u16)]) -> Option<u16> {
    let short = n.name.as_deref()?.split('@').next()?;
    epmd.iter()
        .find(|(name, port)| name == short && n.listen_ports.contains(port))
        .map(|(_, p)| *p)
}

/// What the operator asked for, resolved.
pub struct Resolved {
    pub target: NodeName,
    pub mode: NameMode,
    /// The local BEAM behind the target, when it runs on this host.
    pub local: Option<LocalNode>,
}

/// `name (pid N)`, how a local node is named in lists and errors.
pub fn label(n: &LocalNode) -> String {
    format!(
        "{} (pid {})",
        n.name.as_deref().unwrap_or("not distributed"),
        n.os_pid
    )
}

/// A usage error that lists the local nodes to choose from.
pub fn listing_error(nodes: &[LocalNode], why: &str) -> Error {
    let mut msg = why.to_string();
    if !nodes.is_empty() {
        let named: Vec<String> = nodes.iter().map(label).collect();
        msg.push_str(&format!(
            "; local nodes: {}; pick one with 'etop NODE'",
            named.join(", ")
        ));
    }
    Error::Usage(msg)
}

/// The local node the operator means by `given`: an OS pid, a full node
/// name, or a bare name that exactly one local node has.
pub fn find_local<'a>(nodes: &'a [LocalNode], given: &str) -> Option<&'a LocalNode> {
    if !given.is_empty() && given.chars().all(|c| c.is_ascii_digit()) {
        return nodes.iter().find(|n| n.os_pid.to_string() == given);
    }
    if given.contains('@') {
        return nodes.iter().find(|n| n.name.as_deref() == Some(given));
    }
    let mut m = nodes
        .iter()
        .filter(|n| n.name.as_deref().map(short_part) == Some(given));
    match (m.next(), m.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

fn short_part(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// An empty NODE (`etop ''`, an unset variable in a script) is a mistake to
/// name as such, not a node name to parse or a node to search for.
pub fn check_given(given: Option<&str>) -> Result<()> {
    match given {
        Some(g) if g.trim().is_empty() => Err(Error::Usage(
            "NODE is empty; give name@host, a bare name or the OS pid of a node on \
             this host, or leave NODE out for the only node on this host"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Resolves NODE: `name@host`, a bare `name` of a local node, an OS pid, or
/// nothing (the only distributed node on this host).
pub fn resolve(given: Option<&str>, proc_root: &Path) -> Result<Resolved> {
    check_given(given)?;
    let (nodes, _) = local_nodes(proc_root);
    let pick = |n: &LocalNode| -> Result<Resolved> {
        if n.tls() {
            return Err(Error::Usage(format!(
                "{} uses TLS distribution (-proto_dist {}): not supported yet",
                n.name.as_deref().unwrap_or("the node"),
                n.proto_dist.as_deref().unwrap_or("?")
            )));
        }
        let name = n.name.as_deref().ok_or_else(|| {
            Error::Usage(format!(
                "the BEAM with pid {} is not a distributed node (no -sname/-name); \
                 'etop threads --pid {}' still shows its threads",
                n.os_pid, n.os_pid
            ))
        })?;
        let target = NodeName::parse(name, &crate::host::short_hostname())?;
        let mode = match n.name_kind {
            Some(NameKind::Long) => NameMode::Long,
            Some(NameKind::Short) => NameMode::Short,
            None => target.mode(),
        };
        Ok(Resolved {
            target,
            mode,
            local: Some(n.clone()),
        })
    };
    match given {
        None => {
            let named: Vec<&LocalNode> = nodes.iter().filter(|n| n.name.is_some()).collect();
            match named.as_slice() {
                [one] => pick(one),
                [] => Err(listing_error(
                    &nodes,
                    "no distributed Erlang node found on this host; give NODE as name@host",
                )),
                _ => Err(listing_error(
                    &nodes,
                    "several Erlang nodes run on this host; say which",
                )),
            }
        }
        Some(g) => match find_local(&nodes, g) {
            Some(n) => pick(n),
            None if g.chars().all(|c| c.is_ascii_digit()) => Err(listing_error(
                &nodes,
                &format!("no Erlang node runs as OS process {g}"),
            )),
            None => {
                let target = NodeName::parse(g, &crate::host::short_hostname())?;
                Ok(Resolved {
                    mode: target.mode(),
                    target,
                    local: None,
                })
            }
        },
    }
}

/// The cookie, first found wins: `--cookie-file`, `--cookie`, `ERLANG_COOKIE`;
/// then the local target's own (`-setcookie`, `RELEASE_COOKIE`,
/// `releases/COOKIE`, its user's `~/.erlang.cookie`); then ours.
pub fn find_cookie(
    flag_file: Option<&Path>,
    flag: Option<&str>,
    env: Option<&str>,
    home: Option<&Path>,
    local: Option<&LocalNode>,
) -> Result<(Cookie, CookieOrigin)> {
    if let Some(found) = cookie::own_cookie(flag_file, flag, env, None)? {
        return Ok(found);
    }
    let mut unreadable = None;
    if let Some(n) = local {
        match &n.cookie {
            CookieLookup::Found {
                source,
                cookie,
                loose_permissions,
            } => {
                if *loose_permissions {
                    crate::text::say(format!(
                        "warning: the cookie file ({source}) is readable by other users"
                    ));
                }
                return Ok((cookie.clone(), CookieOrigin::Target(source.to_string())));
            }
            CookieLookup::Unreadable { source, reason } => {
                unreadable = Some(format!(
                    "cannot read the cookie of the node ({source}): {reason}"
                ))
            }
            CookieLookup::NotFound => {}
        }
    }
    if let Some(found) = cookie::own_cookie(None, None, None, home)? {
        return Ok(found);
    }
    Err(match unreadable {
        Some(why) => Error::Usage(why),
        None => Error::NoCookie,
    })
}

/// Where the operator may have put the cookie.
pub struct CookieSources<'a> {
    pub file: Option<&'a Path>,
    pub flag: Option<&'a str>,
}

/// A node to attach to, and the cookie to attach with.
pub struct Target {
    pub name: NodeName,
    pub mode: NameMode,
    pub cookie: Cookie,
    pub origin: CookieOrigin,
    /// The local BEAM behind the target, when it runs on this host.
    pub local: Option<LocalNode>,
}

/// Which node and which cookie, from NODE as typed, the cookie flags,
/// `ERLANG_COOKIE`, the node's own files and ours.
pub fn target(
    given: Option<&str>,
    proc_root: &Path,
    sources: &CookieSources<'_>,
) -> Result<Target> {
    let resolved = resolve(given, proc_root)?;
    let env = if sources.file.is_none() && sources.flag.is_none() {
        env_cookie()?
    } else {
        None
    };
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from);
    let (cookie, origin) = find_cookie(
        sources.file,
        sources.flag,
        env.as_deref(),
        home.as_deref(),
        resolved.local.as_ref(),
    )?;
    Ok(Target {
        name: resolved.target,
        mode: resolved.mode,
        cookie,
        origin,
        local: resolved.local,
    })
}

/// `ERLANG_COOKIE`, when set. A value that is not UTF-8 cannot be the
/// node's cookie as typed: an error, not a silent fall-through to the next
/// source.
fn env_cookie() -> Result<Option<String>> {
    match std::env::var("ERLANG_COOKIE") {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(
            "ERLANG_COOKIE is not valid UTF-8; set it to the node's cookie, \
             or pass --cookie-file PATH"
                .into(),
        )),
    }
}

/// The VM on this host that NODE names (a name, a bare name, an OS pid), or
/// the only one; distributed or not (`etop threads` needs no distribution).
pub fn local_vm(given: Option<&str>, proc_root: &Path) -> Result<LocalNode> {
    check_given(given)?;
    let (all, _) = local_nodes(proc_root);
    let found = match given {
        Some(n) => find_local(&all, n),
        None if all.len() == 1 => all.first(),
        None => None,
    };
    match found {
        Some(l) => Ok(l.clone()),
        None if all.is_empty() => Err(Error::Usage(
            "which VM? no Erlang VM runs on this host; pass --pid".into(),
        )),
        None => Err(listing_error(
            &all,
            "which VM? name a local node or pass --pid",
        )),
    }
}
