//! Reading /proc: the Linux half of discovery.

use super::*;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

/// What the host knows about its own name.
struct HostNames {
    hostname: String,
    fqdn: Option<String>,
}

pub(super) fn scan_with(proc_root: &Path, etc_root: &Path, hostname: &str) -> Vec<LocalNode> {
    let host = HostNames {
        hostname: hostname.to_string(),
        fqdn: fqdn(etc_root, hostname),
    };
    let users = passwd(etc_root);
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut nodes: Vec<LocalNode> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| inspect(proc_root, pid, &host, &users))
        .collect();
    nodes.sort_by_key(|n| n.os_pid);
    nodes
}

fn is_beam_name(name: &str) -> bool {
    matches!(name, "beam.smp" | "beam")
}

fn basename(path: &str) -> &str {
    // A replaced binary reads as "/path/beam.smp (deleted)".
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path)
}

fn inspect(
    proc_root: &Path,
    pid: u32,
    host: &HostNames,
    users: &HashMap<u32, String>,
) -> Option<LocalNode> {
    let dir = proc_root.join(pid.to_string());
    let stat = crate::osview::parse_stat_line(&crate::osview::read_text(&dir.join("stat")).ok()?)?;
    if matches!(stat.state, 'Z' | 'X' | 'x') {
        return None;
    }
    let argv = split_nul(&fs::read(dir.join("cmdline")).ok()?);
    let exe = fs::read_link(dir.join("exe")).ok();
    let beam = is_beam_name(&stat.comm)
        || exe
            .as_ref()
            .and_then(|e| e.to_str())
            .is_some_and(|e| is_beam_name(basename(e)))
        || argv.first().is_some_and(|a| is_beam_name(basename(a)));
    if !beam || argv.is_empty() {
        return None;
    }

    let env = fs::read(dir.join("environ"))
        .ok()
        .map(|raw| parse_environ(&raw));
    let args = ErlArgs::from_argv(&argv, env.as_ref());
    let uid = owner_uid(&dir)?;
    let user = users.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
    let cwd = fs::read_link(dir.join("cwd")).ok();
    let target_path = |p: &str| -> Option<PathBuf> {
        let p = Path::new(p);
        if p.is_absolute() {
            Some(p.to_path_buf())
        } else {
            cwd.as_ref().map(|c| c.join(p))
        }
    };

    let (name, name_kind) = match args.node_name() {
        Some((kind, given)) => (
            Some(full_node_name(
                kind,
                given,
                &host.hostname,
                host.fqdn.as_deref(),
            )),
            Some(kind),
        ),
        None => (None, None),
    };

    let release_root = env
        .as_ref()
        .and_then(|e| e.get("RELEASE_ROOT"))
        .filter(|r| !r.is_empty())
        .and_then(|r| target_path(r))
        .or_else(|| {
            ["boot", "config", "args_file", "root"]
                .iter()
                .flat_map(|f| args.all(f).flatten())
                .filter_map(|p| target_path(p))
                .find_map(|p| release_root_from_path(p.to_str()?))
        });

    // The auth server builds the cookie path from `-home`, which erl sets
    // from HOME; the environment is the fallback for beams started otherwise.
    let home = args
        .first("home")
        .map(PathBuf::from)
        .or_else(|| env.as_ref()?.get("HOME").map(PathBuf::from))
        .filter(|h| h.is_absolute());

    let otp_release = otp_release(proc_root, pid, &args);

    let reader = |p: &Path| read_cookie_file(&in_target(proc_root, pid, p));
    let cookie = resolve_cookie(
        &CookieInputs {
            args: &args,
            env: env.as_ref(),
            release_root: release_root.as_deref(),
            home: home.as_deref(),
            user: &user,
        },
        &reader,
    );

    Some(LocalNode {
        os_pid: pid,
        uid,
        user,
        name,
        name_kind,
        listen_ports: listen_ports(proc_root, pid),
        proto_dist: args.first("proto_dist").map(str::to_string),
        epmd_module: args.first("epmd_module").map(str::to_string),
        release_root,
        home,
        otp_release,
        cookie,
        environ_readable: env.is_some(),
        argv: redact_argv(&argv),
    })
}

/// A path of the target's, reached through its root so container paths resolve.
pub(super) fn in_target(proc_root: &Path, pid: u32, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    proc_root.join(pid.to_string()).join("root").join(rel)
}

/// The real uid from `status`; the owner of the /proc directory otherwise.
fn owner_uid(dir: &Path) -> Option<u32> {
    let from_status = fs::read_to_string(dir.join("status")).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    });
    from_status.or_else(|| fs::metadata(dir).ok().map(|m| m.uid()))
}

fn passwd(etc_root: &Path) -> HashMap<u32, String> {
    let Ok(text) = fs::read_to_string(etc_root.join("passwd")) else {
        return HashMap::new();
    };
    let mut users = HashMap::new();
    for line in text.lines() {
        let mut cols = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse() {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

/// This host's fully qualified name, as a `-name` node without a host
/// part would get it: the hostname if dotted, else a dotted alias in the
/// hosts file, else the hostname plus the resolver's domain.
fn fqdn(etc_root: &Path, hostname: &str) -> Option<String> {
    if hostname.contains('.') {
        return Some(hostname.to_string());
    }
    let prefix = format!("{hostname}.");
    if let Ok(hosts) = fs::read_to_string(etc_root.join("hosts")) {
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let names: Vec<&str> = line.split_whitespace().skip(1).collect();
            if names.contains(&hostname)
                && let Some(full) = names.iter().find(|n| n.starts_with(&prefix))
            {
                return Some(full.to_string());
            }
        }
    }
    let resolv = fs::read_to_string(etc_root.join("resolv.conf")).ok()?;
    resolv.lines().find_map(|line| {
        let mut w = line.split_whitespace();
        match w.next()? {
            "domain" | "search" => Some(format!("{hostname}.{}", w.next()?)),
            _ => None,
        }
    })
}

/// Ports the process listens on, found by matching its socket inodes
/// against the TCP tables of its network namespace.
fn listen_ports(proc_root: &Path, pid: u32) -> Vec<u16> {
    let dir = proc_root.join(pid.to_string());
    let Ok(fds) = fs::read_dir(dir.join("fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<u64> = fds
        .filter_map(Result::ok)
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut ports: Vec<u16> = ["net/tcp", "net/tcp6"]
        .iter()
        .filter_map(|t| fs::read_to_string(dir.join(t)).ok())
        .flat_map(|table| parse_tcp_listeners(&table))
        .filter(|(inode, _)| inodes.contains(inode))
        .map(|(_, port)| port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The OTP version from `<root>/releases/<N>/OTP_VERSION`, for the
/// `-root` the beam runs from or the OTP install its `-bindir` is in.
fn otp_release(proc_root: &Path, pid: u32, args: &ErlArgs) -> Option<String> {
    let bindir_root = args
        .first("bindir")
        .and_then(|b| Path::new(b).parent()?.parent().map(Path::to_path_buf));
    let roots = args
        .first("root")
        .map(PathBuf::from)
        .into_iter()
        .chain(bindir_root);
    for root in roots {
        let releases = in_target(proc_root, pid, &root.join("releases"));
        let Ok(entries) = fs::read_dir(&releases) else {
            continue;
        };
        let mut majors: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
            .collect();
        majors.sort();
        for (_, dir) in majors.iter().rev() {
            if let Ok(v) = fs::read_to_string(dir.join("OTP_VERSION"))
                && let Some(v) = v.split_whitespace().next()
            {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// A cookie file's text and mode.
pub(super) struct CookieFile {
    pub text: String,
    pub mode: u32,
}

/// A target's cookie file, with the checks and bounds of our own: a FIFO or
/// a device the node's user left there cannot stall or balloon the scan.
fn read_cookie_file(path: &Path) -> io::Result<CookieFile> {
    let (text, mode) = crate::target::read_cookie_text(path)?;
    Ok(CookieFile { text, mode })
}

/// What cookie resolution looks at, besides the files themselves.
pub(super) struct CookieInputs<'a> {
    pub args: &'a ErlArgs,
    /// `None` when the environment could not be read.
    pub env: Option<&'a HashMap<String, String>>,
    pub release_root: Option<&'a Path>,
    pub home: Option<&'a Path>,
    pub user: &'a str,
}

fn unreadable_reason(err: &io::Error, user: &str) -> String {
    if err.kind() == io::ErrorKind::PermissionDenied {
        format!("permission denied: run as user {user} or root")
    } else {
        err.to_string()
    }
}

/// Finds the cookie in resolution order; `read` reads a file named by its
/// path as the target sees it.
pub(super) fn resolve_cookie(
    inp: &CookieInputs<'_>,
    read: &dyn Fn(&Path) -> io::Result<CookieFile>,
) -> CookieLookup {
    if let Some(cookie) = inp.args.own_cookie().and_then(Cookie::new) {
        return CookieLookup::Found {
            source: CookieSource::Argv,
            cookie,
            loose_permissions: false,
        };
    }
    // Without the environment we cannot rule out RELEASE_COOKIE, and
    // anything found further down might not be the cookie in use.
    let Some(env) = inp.env else {
        return CookieLookup::Unreadable {
            source: CookieSource::ReleaseCookieEnv,
            reason: format!(
                "cannot read the process environment: run as user {} or root",
                inp.user
            ),
        };
    };
    if let Some(cookie) = env.get("RELEASE_COOKIE").and_then(|c| Cookie::new(c)) {
        return CookieLookup::Found {
            source: CookieSource::ReleaseCookieEnv,
            cookie,
            loose_permissions: false,
        };
    }

    let user = || inp.user.to_string();
    let mut files = Vec::new();
    if let Some(root) = inp.release_root {
        let path = root.join("releases/COOKIE");
        files.push((path.clone(), CookieSource::ReleaseCookieFile(path)));
    }
    if let Some(home) = inp.home {
        let path = home.join(".erlang.cookie");
        let user = user();
        files.push((path.clone(), CookieSource::HomeCookieFile { path, user }));
    }
    let config_dir = env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| inp.home.map(|h| h.join(".config")));
    if let Some(dir) = config_dir {
        let path = dir.join("erlang/.erlang.cookie");
        let user = user();
        files.push((path.clone(), CookieSource::ConfigCookieFile { path, user }));
    }

    for (path, source) in files {
        match read(&path) {
            Ok(file) => {
                // An empty file holds no cookie; erl would refuse it, so keep looking.
                if let Some(cookie) = Cookie::new(&file.text) {
                    return CookieLookup::Found {
                        source,
                        cookie,
                        loose_permissions: file.mode & 0o044 != 0,
                    };
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let reason = unreadable_reason(&e, inp.user);
                return CookieLookup::Unreadable { source, reason };
            }
        }
    }
    CookieLookup::NotFound
}
