//! Local nodes: turning what the operator typed (a node name, a bare name, an
//! OS pid, or nothing) into a target and a cookie, using what /proc tells
//! about the BEAMs on this host; and the `etop nodes` listing.

use crate::discover::{self, CookieLookup, LocalNode, NameKind};
use crate::error::{Error, Result};
use crate::render::{self, Format};
use crate::target::{self, Cookie, CookieOrigin, NameMode, NodeName};
use std::path::Path;
use std::time::Duration;

/// Every BEAM on this host, named from argv or, for nodes that start
/// distribution from inside Erlang, from EPMD by their listen port.
pub fn local_nodes(proc_root: &Path) -> Vec<LocalNode> {
    let mut nodes = discover::scan(proc_root);
    if nodes.iter().any(|n| n.name.is_none()) {
        name_from_epmd(&mut nodes, &local_epmd());
    }
    nodes
}

/// What the local EPMD knows; empty when it does not answer.
fn local_epmd() -> Vec<(String, u16)> {
    target::epmd_names("localhost", Duration::from_secs(2)).unwrap_or_default()
}

fn name_from_epmd(nodes: &mut [LocalNode], epmd: &[(String, u16)]) {
    discover::match_epmd(nodes, epmd, &target::short_hostname());
}

/// The distribution port EPMD lists for a local node, if any.
fn dist_port(n: &LocalNode, epmd: &[(String, u16)]) -> Option<u16> {
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
    let nodes = local_nodes(proc_root);
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
        let target = NodeName::parse(name, &target::short_hostname())?;
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
                let target = NodeName::parse(g, &target::short_hostname())?;
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
pub fn cookie(
    flag_file: Option<&Path>,
    flag: Option<&str>,
    env: Option<&str>,
    home: Option<&Path>,
    local: Option<&LocalNode>,
) -> Result<(Cookie, CookieOrigin)> {
    if let Some(found) = target::own_cookie(flag_file, flag, env, None)? {
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
                    crate::term::say(format!(
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
    if let Some(found) = target::own_cookie(None, None, None, home)? {
        return Ok(found);
    }
    Err(match unreadable {
        Some(why) => Error::Usage(why),
        None => Error::NoCookie,
    })
}

/// One line of `etop nodes`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeLine {
    pub node: String,
    pub os_pid: u32,
    pub user: String,
    pub dist_port: Option<u16>,
    pub otp: Option<String>,
    pub cookie: String,
}

pub fn lines(nodes: &[LocalNode], epmd: &[(String, u16)]) -> Vec<NodeLine> {
    nodes
        .iter()
        .map(|n| NodeLine {
            node: match (&n.name, n.tls()) {
                (Some(name), false) => name.clone(),
                (Some(name), true) => format!("{name} (TLS distribution: not supported yet)"),
                (None, _) => "(not distributed)".to_string(),
            },
            os_pid: n.os_pid,
            user: n.user.clone(),
            dist_port: dist_port(n, epmd),
            otp: n.otp_release.clone(),
            cookie: match &n.cookie {
                CookieLookup::Found {
                    source,
                    loose_permissions,
                    ..
                } => {
                    if *loose_permissions {
                        format!("{source} (readable by others!)")
                    } else {
                        source.to_string()
                    }
                }
                CookieLookup::Unreadable { source, reason } => {
                    format!("{source}: unreadable ({reason})")
                }
                CookieLookup::NotFound => "not found (etop falls back to ~/.erlang.cookie)".into(),
            },
        })
        .collect()
}

/// `etop nodes` in the chosen format.
pub fn show(format: Format, proc_root: &Path) -> String {
    // One EPMD query serves both naming the nodes and their ports.
    let epmd = local_epmd();
    let mut nodes = discover::scan(proc_root);
    name_from_epmd(&mut nodes, &epmd);
    let l = lines(&nodes, &epmd);
    match format {
        Format::Json => l.iter().map(|n| crate::escape::json(n) + "\n").collect(),
        Format::Csv => {
            let mut s = String::from("node,os_pid,user,dist_port,otp,cookie\n");
            for n in &l {
                let f = [
                    n.node.clone(),
                    n.os_pid.to_string(),
                    n.user.clone(),
                    n.dist_port.map(|p| p.to_string()).unwrap_or_default(),
                    n.otp.clone().unwrap_or_default(),
                    n.cookie.clone(),
                ];
                s.push_str(&render::csv_line(&f));
            }
            s
        }
        Format::Text => {
            if l.is_empty() {
                return "no Erlang nodes run on this host\n".to_string();
            }
            let header = ["Node", "OS pid", "User", "Dist port", "OTP", "Cookie from"];
            let rows: Vec<Vec<String>> = l
                .iter()
                .map(|n| {
                    vec![
                        n.node.clone(),
                        n.os_pid.to_string(),
                        n.user.clone(),
                        n.dist_port.map(|p| p.to_string()).unwrap_or("-".into()),
                        n.otp.clone().unwrap_or("-".into()),
                        n.cookie.clone(),
                    ]
                })
                .collect();
            render::simple_table(&header, &rows, &[1, 3]) + "\n"
        }
    }
}
