//! Turning what the operator typed (a node name, a bare name, an OS pid, or
//! nothing) into a target and a cookie, using the BEAMs on this host, what
//! their EPMDs know, and a release's environment. Which node comes first:
//! a wrong name, a stopped node or an unreachable host is said as such
//! whatever the cookie; then which cookie.

use super::discover::{self, CookieLookup, EpmdNames, LocalNode, NameKind, Unreadable};
use super::{Cookie, CookieOrigin, NameMode, NodeName, cookie, epmd};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Every BEAM on this host, named from argv or, for nodes that start
/// distribution from inside Erlang, from their EPMD (see
/// `discover::match_epmd`); with what the EPMDs know (the default one and
/// each node's own `-epmd_port`; one that does not answer knows nothing).
pub fn local_nodes(proc_root: &Path) -> (Vec<LocalNode>, EpmdNames) {
    let mut nodes = discover::scan(proc_root);
    let default_port = epmd::port_number();
    let ports: BTreeSet<u16> = std::iter::once(default_port)
        .chain(nodes.iter().filter_map(|n| n.epmd_port))
        .collect();
    let by_port = ports
        .into_iter()
        .map(|p| {
            let names = epmd::names_at("localhost", Some(p), Duration::from_secs(2));
            (p, names.unwrap_or_default())
        })
        .collect();
    let known = EpmdNames {
        default_port,
        by_port,
    };
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

/// The distribution port its EPMD lists for a local node: the entry of its
/// name that it listens on; when its sockets cannot be read, the entry of
/// its name (a port of its user's, when that can be told).
pub fn dist_port(n: &LocalNode, epmd: &EpmdNames) -> Option<u16> {
    let short = n.name.as_deref()?.split('@').next()?;
    let blind = n.unreadable.contains(&Unreadable::Sockets);
    epmd.for_node(n)
        .iter()
        .find(|(name, port)| {
            name == short
                && if blind {
                    n.user_listen_ports
                        .as_ref()
                        .is_none_or(|ports| ports.contains(port))
                } else {
                    n.listen_ports.contains(port)
                }
        })
        .map(|(_, p)| *p)
}

/// What the operator asked for, resolved.
pub struct Resolved {
    pub target: NodeName,
    pub mode: NameMode,
    /// The local BEAM behind the target, when it runs on this host.
    pub local: Option<LocalNode>,
}

impl Resolved {
    /// The EPMD to ask for the target: its own `-epmd_port` when it runs
    /// here with one.
    pub fn epmd_port(&self) -> Option<u16> {
        self.local.as_ref().and_then(|n| n.epmd_port)
    }
}

/// `name (pid N)`, how a local node is named in lists and errors.
pub fn label(n: &LocalNode) -> String {
    let name = match (&n.name, n.unreadable.contains(&Unreadable::Sockets)) {
        (Some(name), _) => name.as_str(),
        (None, true) => "name unknown",
        (None, false) => "not distributed",
    };
    let shell = if n.temporary {
        ", a temporary shell"
    } else {
        ""
    };
    format!("{name} (pid {}{shell})", n.os_pid)
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

/// What a release's scripts (`bin/app rpc`, `bin/app remote`, `env.sh`) put
/// in the environment: the node they are about, its cookie, and how it is
/// named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseEnv {
    /// `RELEASE_NODE`: a name, with or without `@host`.
    pub node: Option<String>,
    /// `RELEASE_DISTRIBUTION`: `sname` (the default), `name` or `none`.
    pub distribution: Option<String>,
    /// `RELEASE_COOKIE`.
    pub cookie: Option<String>,
}

impl ReleaseEnv {
    /// From etop's own environment; empty values count as unset.
    pub fn from_env() -> ReleaseEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        ReleaseEnv {
            node: var("RELEASE_NODE"),
            distribution: var("RELEASE_DISTRIBUTION"),
            cookie: var("RELEASE_COOKIE"),
        }
    }

    /// The node `RELEASE_NODE` names, by the release scripts' rules: with
    /// `@host`, as it is; else on this host, its short name for `sname`, its
    /// full name for `name`. `None` without `RELEASE_NODE`.
    pub fn target(
        &self,
        short_host: &str,
        fqdn: Option<&str>,
    ) -> Option<Result<(NodeName, NameMode)>> {
        let node = self.node.as_deref()?.trim();
        let dist = self.distribution.as_deref().unwrap_or("sname").trim();
        let mode = match dist {
            "sname" => NameMode::Short,
            "name" => NameMode::Long,
            "none" => {
                return Some(Err(Error::Usage(format!(
                    "RELEASE_NODE is '{node}' but RELEASE_DISTRIBUTION is 'none': the \
                     release runs without distribution, so etop cannot attach to it \
                     ('etop threads' still shows its threads)"
                ))));
            }
            other => {
                return Some(Err(Error::Usage(format!(
                    "RELEASE_DISTRIBUTION is '{other}'; a release expects sname, name or none"
                ))));
            }
        };
        let full = if node.contains('@') {
            node.to_string()
        } else {
            let host = match mode {
                NameMode::Short => short_host.to_string(),
                NameMode::Long => fqdn.unwrap_or(short_host).to_string(),
            };
            format!("{node}@{host}")
        };
        Some(NodeName::parse(&full, short_host).map(|n| (n, mode)))
    }
}

/// Why a local BEAM without a name cannot be attached to, and what to do.
fn unnamed_error(n: &LocalNode, epmd: &EpmdNames) -> Error {
    if n.unreadable.contains(&Unreadable::Sockets) {
        let mut names: Vec<&str> = epmd.for_node(n).iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let known = if names.is_empty() {
            "EPMD here knows no names".to_string()
        } else {
            format!("EPMD here knows: {}", names.join(", "))
        };
        Error::Usage(format!(
            "the BEAM with pid {pid} (user {user}) has no -sname/-name in its arguments, and \
             etop cannot read its sockets (/proc/{pid}/fd) to find its name in EPMD; {known}; \
             give its name (etop NAME), or {who}",
            pid = n.os_pid,
            user = n.user,
            who = discover::run_as(&n.user),
        ))
    } else {
        Error::Usage(format!(
            "the BEAM with pid {pid} is not a distributed node: no -sname/-name in its \
             arguments and none of its listening ports is registered with EPMD; \
             'etop threads --pid {pid}' still shows its threads",
            pid = n.os_pid
        ))
    }
}

/// Resolves NODE: `name@host`, a bare `name` of a local node, an OS pid, or
/// nothing: the node `RELEASE_NODE` names inside a release's shell, else the
/// only distributed node on this host (a release's temporary shells aside).
pub fn resolve(given: Option<&str>, proc_root: &Path) -> Result<Resolved> {
    resolve_with(given, proc_root, &ReleaseEnv::from_env())
}

/// [`resolve`] with the release environment given.
pub fn resolve_with(
    given: Option<&str>,
    proc_root: &Path,
    release: &ReleaseEnv,
) -> Result<Resolved> {
    check_given(given)?;
    let (nodes, epmd) = local_nodes(proc_root);
    resolve_among(given, &nodes, &epmd, proc_root, release)
}

/// [`resolve`] for several NODEs, looking at the BEAMs on this host once.
pub fn resolve_all(given: &[String], proc_root: &Path) -> Result<Vec<Resolved>> {
    for g in given {
        check_given(Some(g))?;
    }
    let (nodes, epmd) = local_nodes(proc_root);
    let release = ReleaseEnv::from_env();
    given
        .iter()
        .map(|g| resolve_among(Some(g), &nodes, &epmd, proc_root, &release))
        .collect()
}

fn resolve_among(
    given: Option<&str>,
    nodes: &[LocalNode],
    epmd: &EpmdNames,
    proc_root: &Path,
    release: &ReleaseEnv,
) -> Result<Resolved> {
    let short_host = crate::host::short_hostname();
    let pick = |n: &LocalNode| -> Result<Resolved> {
        let Some(name) = n.name.as_deref() else {
            return Err(unnamed_error(n, epmd));
        };
        let target = NodeName::parse(name, &short_host)?;
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
            if let Some(named) =
                release.target(&short_host, discover::host_fqdn(proc_root).as_deref())
            {
                let (target, mode) = named?;
                let full = target.to_string();
                return match nodes
                    .iter()
                    .find(|n| n.name.as_deref() == Some(full.as_str()))
                {
                    Some(n) => pick(n),
                    None => Ok(Resolved {
                        target,
                        mode,
                        local: None,
                    }),
                };
            }
            let named: Vec<&LocalNode> = nodes
                .iter()
                .filter(|n| n.name.is_some() && !n.temporary)
                .collect();
            match named.as_slice() {
                [one] => pick(one),
                [] => {
                    // A node etop cannot name (another user's, sockets hidden)
                    // is the one meant when it is the only BEAM here.
                    if let [only] = nodes
                        && only.name.is_none()
                    {
                        return Err(unnamed_error(only, epmd));
                    }
                    Err(listing_error(
                        nodes,
                        "no distributed Erlang node found on this host; give NODE as name@host",
                    ))
                }
                _ => Err(listing_error(
                    nodes,
                    "several Erlang nodes run on this host; say which",
                )),
            }
        }
        Some(g) => match find_local(nodes, g) {
            Some(n) => pick(n),
            None if g.chars().all(|c| c.is_ascii_digit()) => Err(listing_error(
                nodes,
                &format!("no Erlang node runs as OS process {g}"),
            )),
            None => {
                let target = NodeName::parse(g, &short_host)?;
                Ok(Resolved {
                    mode: target.mode(),
                    target,
                    local: None,
                })
            }
        },
    }
}

/// The operator's own cookie sources and what etop's environment holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnCookies<'a> {
    pub file: Option<&'a Path>,
    pub flag: Option<&'a str>,
    /// `ERLANG_COOKIE`.
    pub env: Option<&'a str>,
    /// `RELEASE_COOKIE`, inside a release's shell.
    pub release_env: Option<&'a str>,
    /// Our home, for `~/.erlang.cookie`.
    pub home: Option<&'a Path>,
}

/// Where the node's cookie likely is, for a node etop knows nothing of.
fn remote_hint(target: &NodeName) -> String {
    format!(
        "pass it with --cookie-file PATH or ERLANG_COOKIE; on {} it is in the \
         ~/.erlang.cookie of the user the node runs as, or its release's \
         releases/COOKIE (etop looked in --cookie-file, --cookie, ERLANG_COOKIE, \
         RELEASE_COOKIE and ~/.erlang.cookie)",
        target.host
    )
}

/// The cookie, first found wins: `--cookie-file`, `--cookie`, `ERLANG_COOKIE`,
/// our `RELEASE_COOKIE`; then the local target's own (`-setcookie`,
/// `RELEASE_COOKIE`, `releases/COOKIE`, its user's `~/.erlang.cookie`); then
/// our `~/.erlang.cookie`. When there is none, the error names where the
/// node's cookie likely is and who may read it.
pub fn find_cookie(
    ours: &OwnCookies<'_>,
    local: Option<&LocalNode>,
    target: &NodeName,
) -> Result<(Cookie, CookieOrigin)> {
    if let Some(found) = cookie::own_cookie(ours.file, ours.flag, ours.env, None)? {
        return Ok(found);
    }
    if let Some(c) = ours.release_env.and_then(Cookie::new) {
        return Ok((c, CookieOrigin::ReleaseEnv));
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
                unreadable = Some(Error::TargetCookieUnreadable {
                    node: format!("{target} (OS pid {}, user {})", n.os_pid, n.user),
                    source_desc: format!("its {}", source.with_path()),
                    reason: reason.clone(),
                })
            }
            CookieLookup::NotFound => {}
        }
    }
    if let Some(found) = cookie::own_cookie(None, None, None, ours.home)? {
        return Ok(found);
    }
    if let Some(e) = unreadable {
        return Err(e);
    }
    Err(Error::NoCookie {
        node: target.to_string(),
        hint: match local {
            Some(n) => format!(
                "it has none in its arguments, its environment, its release or its user's \
                 home{}; pass the cookie it uses with --cookie-file PATH or ERLANG_COOKIE",
                n.home
                    .as_ref()
                    .map(|h| format!(" ({})", h.join(".erlang.cookie").display()))
                    .unwrap_or_default()
            ),
            None => remote_hint(target),
        },
    })
}

/// Where the operator may have put the cookie.
pub struct CookieSources<'a> {
    pub file: Option<&'a Path>,
    pub flag: Option<&'a str>,
}

/// How etop reaches the node: `--port`, or the EPMD; and how long it waits.
pub struct Reach {
    pub port: Option<u16>,
    pub timeout: Duration,
}

/// A node to attach to, and the cookie to attach with.
pub struct Target {
    pub name: NodeName,
    pub mode: NameMode,
    pub cookie: Cookie,
    pub origin: CookieOrigin,
    /// The local BEAM behind the target, when it runs on this host.
    pub local: Option<LocalNode>,
    /// The EPMD to ask for it: its own `-epmd_port`, if it has one.
    pub epmd_port: Option<u16>,
}

/// Which node and which cookie, from NODE as typed (or a release's
/// environment), the cookie flags, `ERLANG_COOKIE`, `RELEASE_COOKIE`, the
/// node's own files and ours. The node comes first: unless `--port` is
/// given, its EPMD must know it before any cookie is looked for, so that a
/// wrong name or a stopped node is never reported as a cookie problem.
pub fn target(
    given: Option<&str>,
    proc_root: &Path,
    sources: &CookieSources<'_>,
    reach: &Reach,
) -> Result<Target> {
    let release = ReleaseEnv::from_env();
    let resolved = resolve_with(given, proc_root, &release)?;
    // What the operator gave is checked with the arguments: a cookie file
    // that cannot be read is a mistake whatever the node.
    let env = if sources.file.is_none() && sources.flag.is_none() {
        env_cookie()?
    } else {
        None
    };
    let given_cookie = cookie::own_cookie(sources.file, sources.flag, env.as_deref(), None)?;
    let epmd_port = resolved.epmd_port();
    if reach.port.is_none() {
        epmd::port_of_at(&resolved.target, epmd_port, reach.timeout)?;
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from);
    let (cookie, origin) = match given_cookie {
        Some(found) => found,
        None => find_cookie(
            &OwnCookies {
                release_env: release.cookie.as_deref(),
                home: home.as_deref(),
                ..OwnCookies::default()
            },
            resolved.local.as_ref(),
            &resolved.target,
        )?,
    };
    Ok(Target {
        name: resolved.target,
        mode: resolved.mode,
        cookie,
        origin,
        local: resolved.local,
        epmd_port,
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
    // Inside a release's shell, its node; else the only VM, a release's
    // temporary shells aside.
    let release = ReleaseEnv::from_env();
    let released = release
        .target(
            &crate::host::short_hostname(),
            discover::host_fqdn(proc_root).as_deref(),
        )
        .and_then(|r| r.ok())
        .map(|(name, _)| name.to_string());
    let lasting: Vec<&LocalNode> = all.iter().filter(|n| !n.temporary).collect();
    let found = match (given, released) {
        (Some(n), _) => find_local(&all, n),
        (None, Some(name)) => all
            .iter()
            .find(|n| n.name.as_deref() == Some(name.as_str())),
        (None, None) if lasting.len() == 1 => lasting.first().copied(),
        (None, None) => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(node: Option<&str>, dist: Option<&str>) -> ReleaseEnv {
        ReleaseEnv {
            node: node.map(str::to_string),
            distribution: dist.map(str::to_string),
            cookie: None,
        }
    }

    fn named(r: &ReleaseEnv) -> (String, NameMode) {
        let (n, m) = r
            .target("vm", Some("vm.example.com"))
            .expect("RELEASE_NODE is set")
            .expect("a node name");
        (n.to_string(), m)
    }

    #[test]
    fn release_node_follows_the_release_scripts_rules() {
        assert!(rel(None, Some("name")).target("vm", None).is_none());
        assert_eq!(
            named(&rel(Some("shop"), None)),
            ("shop@vm".into(), NameMode::Short)
        );
        assert_eq!(
            named(&rel(Some("shop"), Some("sname"))),
            ("shop@vm".into(), NameMode::Short)
        );
        assert_eq!(
            named(&rel(Some("shop"), Some("name"))),
            ("shop@vm.example.com".into(), NameMode::Long)
        );
        assert_eq!(
            named(&rel(Some("shop@10.0.0.5"), Some("name"))),
            ("shop@10.0.0.5".into(), NameMode::Long)
        );
        // Without a FQDN, a long name takes the host name as it is.
        let (n, _) = rel(Some("shop"), Some("name"))
            .target("vm", None)
            .unwrap()
            .unwrap();
        assert_eq!(n.to_string(), "shop@vm");
        let none = rel(Some("shop"), Some("none")).target("vm", None).unwrap();
        assert!(
            none.unwrap_err()
                .to_string()
                .contains("RELEASE_DISTRIBUTION is 'none'")
        );
        let bad = rel(Some("shop"), Some("longnames"))
            .target("vm", None)
            .unwrap();
        assert!(bad.unwrap_err().to_string().contains("sname, name or none"));
    }

    #[test]
    fn cookie_order_puts_our_release_cookie_before_the_targets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".erlang.cookie"), "HOME").unwrap();
        let target = NodeName::parse("shop@vm", "vm").unwrap();
        let node = LocalNode {
            os_pid: 7,
            name: Some("shop@vm".into()),
            cookie: CookieLookup::Found {
                source: discover::CookieSource::Argv,
                cookie: Cookie::new("ARGV").unwrap(),
                loose_permissions: false,
            },
            ..LocalNode::default()
        };
        let ours = OwnCookies {
            env: Some("ENV"),
            release_env: Some("REL"),
            home: Some(dir.path()),
            ..OwnCookies::default()
        };
        let pick = |o: &OwnCookies<'_>, l: Option<&LocalNode>| find_cookie(o, l, &target).unwrap();
        assert_eq!(pick(&ours, Some(&node)).1, CookieOrigin::Env);
        let no_env = OwnCookies { env: None, ..ours };
        assert_eq!(pick(&no_env, Some(&node)).1, CookieOrigin::ReleaseEnv);
        let no_rel = OwnCookies {
            release_env: None,
            ..no_env
        };
        assert_eq!(pick(&no_rel, Some(&node)).0.expose(), "ARGV");
        assert!(matches!(pick(&no_rel, None).1, CookieOrigin::HomeFile(_)));
    }

    #[test]
    fn a_beam_without_a_name_says_why_and_what_to_do() {
        let epmd = EpmdNames::single(4369, vec![("rabbit".into(), 25672)]);
        let hidden = LocalNode {
            os_pid: 473,
            user: "rabbitmq".into(),
            unreadable: vec![Unreadable::Sockets, Unreadable::Environment],
            ..LocalNode::default()
        };
        assert_eq!(
            unnamed_error(&hidden, &epmd).to_string(),
            "the BEAM with pid 473 (user rabbitmq) has no -sname/-name in its arguments, and \
             etop cannot read its sockets (/proc/473/fd) to find its name in EPMD; EPMD here \
             knows: rabbit; give its name (etop NAME), or run as user rabbitmq or root"
        );
        let plain = LocalNode {
            os_pid: 12,
            ..LocalNode::default()
        };
        let line = unnamed_error(&plain, &epmd).to_string();
        assert!(line.contains("is not a distributed node"), "{line}");
        assert!(line.contains("'etop threads --pid 12'"), "{line}");
    }

    #[test]
    fn no_cookie_names_where_the_nodes_is_and_never_says_create_one() {
        let target = NodeName::parse("rabbit@vm", "vm").unwrap();
        let node = LocalNode {
            os_pid: 473,
            user: "rabbitmq".into(),
            name: Some("rabbit@vm".into()),
            cookie: CookieLookup::Unreadable {
                source: discover::CookieSource::HomeCookieFile {
                    path: "/var/lib/rabbitmq/.erlang.cookie".into(),
                    user: "rabbitmq".into(),
                },
                reason: "permission denied: run as user rabbitmq or root".into(),
            },
            ..LocalNode::default()
        };
        let e = find_cookie(&OwnCookies::default(), Some(&node), &target).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read the cookie of rabbit@vm (OS pid 473, user rabbitmq): its \
             $HOME/.erlang.cookie of user rabbitmq (/var/lib/rabbitmq/.erlang.cookie): \
             permission denied: run as user rabbitmq or root; or pass the node's cookie \
             with --cookie-file PATH or ERLANG_COOKIE"
        );
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        let e = find_cookie(&OwnCookies::default(), None, &target).unwrap_err();
        let line = e.to_string();
        assert!(
            line.starts_with("no cookie for rabbit@vm: pass it with"),
            "{line}"
        );
        assert!(!line.contains("create"), "{line}");
    }
}
