//! Gathering what /proc tells of each process, with procfs.

use super::describe::{HostNames, Seen};
use super::*;
use procfs::process::{FDTarget, Process};
use std::collections::HashSet;
use std::io::Read;

/// A NUL-separated /proc file (`cmdline`, `environ`), kept as bytes: a
/// process may hold any bytes there, and those that are not UTF-8 still name
/// it (shown as U+FFFD) rather than hide it.
struct NulWords(Vec<String>);

impl procfs::FromRead for NulWords {
    fn from_read<R: Read>(mut r: R) -> procfs::ProcResult<Self> {
        let mut raw = Vec::new();
        r.read_to_end(&mut raw)?;
        Ok(NulWords(split_nul(&raw)))
    }
}

pub(super) fn scan_with(proc_root: &Path, etc_root: &Path, hostname: &str) -> Vec<LocalNode> {
    let host = HostNames::new(etc_root, hostname);
    let users = crate::host::users(etc_root);
    let Ok(all) = procfs::process::all_processes_with_root(proc_root) else {
        return Vec::new();
    };
    let mut nodes: Vec<LocalNode> = all
        .filter_map(Result::ok)
        .filter_map(|p| seen(proc_root, &p))
        .map(|s| s.describe(&host, &users))
        .collect();
    nodes.sort_by_key(|n| n.os_pid);
    nodes
}

/// What /proc tells of `p`, if it is a live BEAM.
fn seen(proc_root: &Path, p: &Process) -> Option<Seen> {
    let stat = p.stat().ok()?;
    if matches!(stat.state, 'Z' | 'X' | 'x') {
        return None;
    }
    let pid = u32::try_from(p.pid()).ok()?;
    let argv = p.read::<_, NulWords>("cmdline").ok()?.0;
    let mut seen = Seen {
        pid,
        comm: stat.comm,
        argv,
        exe: p.exe().ok().map(|e| e.to_string_lossy().into_owned()),
        ..Seen::default()
    };
    if !seen.is_beam() {
        return None;
    }
    // For a name set twice the first entry wins, as with getenv.
    seen.env = p.read::<_, NulWords>("environ").ok().map(|w| {
        let mut env = HashMap::new();
        for entry in w.0 {
            if let Some((k, v)) = entry.split_once('=') {
                env.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        }
        env
    });
    // The real uid; the owner of the /proc directory otherwise.
    seen.uid = p.status().map(|s| s.ruid).or_else(|_| p.uid()).ok()?;
    seen.cwd = p.cwd().ok();
    match listen_ports(p) {
        Some(ports) => {
            seen.listen_ports = ports;
            seen.sockets_readable = true;
        }
        None => seen.user_listen_ports = user_listen_ports(p, seen.uid),
    }
    seen.root = proc_root.join(pid.to_string()).join("root");
    // Following the link needs the same rights as reading the process's
    // memory: root, or its own user.
    seen.root_readable = std::fs::metadata(&seen.root).is_ok();
    Some(seen)
}

/// Listening TCP sockets of the process's network namespace, IPv4 and IPv6;
/// `None` when the tables cannot be read.
fn listening(p: &Process) -> Option<Vec<procfs::net::TcpNetEntry>> {
    let v4 = p.tcp().ok();
    let v6 = p.tcp6().ok();
    if v4.is_none() && v6.is_none() {
        return None;
    }
    Some(
        v4.into_iter()
            .chain(v6)
            .flatten()
            .filter(|e| e.state == procfs::net::TcpState::Listen)
            .collect(),
    )
}

fn sorted(mut ports: Vec<u16>) -> Vec<u16> {
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Ports the process listens on: its socket inodes against the TCP tables
/// of its network namespace; `None` when its sockets cannot be read.
fn listen_ports(p: &Process) -> Option<Vec<u16>> {
    let fds = p.fd().ok()?;
    let inodes: HashSet<u64> = fds
        .filter_map(Result::ok)
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect();
    if inodes.is_empty() {
        return Some(Vec::new());
    }
    let ports = listening(p)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| inodes.contains(&e.inode))
        .map(|e| e.local_address.port())
        .collect();
    Some(sorted(ports))
}

/// Ports sockets owned by `uid` listen on, in the process's network
/// namespace: what can be known of its own when its sockets cannot be read
/// (the TCP tables are readable by all and say who owns each socket).
fn user_listen_ports(p: &Process, uid: u32) -> Option<Vec<u16>> {
    let ports = listening(p)?
        .into_iter()
        .filter(|e| e.uid == uid)
        .map(|e| e.local_address.port())
        .collect();
    Some(sorted(ports))
}
