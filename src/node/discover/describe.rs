//! What a local BEAM is, from what the OS tells of its process: its node
//! name, release, home and cookie. The same on every OS; `linux` and
//! `other` only gather what the OS tells.

use super::*;
use std::fs;
use std::io;

/// What the OS tells of one process.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    pub pid: u32,
    pub comm: String,
    pub uid: u32,
    pub argv: Vec<String>,
    pub exe: Option<String>,
    /// `None` when the environment could not be read.
    pub env: Option<HashMap<String, String>>,
    pub cwd: Option<PathBuf>,
    pub listen_ports: Vec<u16>,
    /// `None` when its sockets (`/proc/PID/fd`) cannot be read.
    pub sockets_readable: bool,
    /// Listening TCP ports owned by its uid in its network namespace, when
    /// its sockets cannot be read; `None` when that cannot be read either.
    pub user_listen_ports: Option<Vec<u16>>,
    /// Where the process's own files are reached from here: `<proc>/<pid>/root`
    /// on Linux, so a node in a container resolves against its own tree.
    pub root: PathBuf,
    /// Whether `root` can be followed (not for another user's process,
    /// without root): if not, its files are read at the same paths here.
    pub root_readable: bool,
}

/// What the host knows about its own name.
pub(super) struct HostNames {
    pub hostname: String,
    pub fqdn: Option<String>,
}

impl HostNames {
    pub fn new(etc_root: &Path, hostname: &str) -> HostNames {
        HostNames {
            hostname: hostname.to_string(),
            fqdn: fqdn(etc_root, hostname),
        }
    }
}

pub(super) fn is_beam_name(name: &str) -> bool {
    matches!(name, "beam.smp" | "beam")
}

pub(super) fn basename(path: &str) -> &str {
    // A replaced binary reads as "/path/beam.smp (deleted)".
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path)
}

impl Seen {
    /// Is this a BEAM? Its name, its executable or its argv says so.
    pub fn is_beam(&self) -> bool {
        !self.argv.is_empty()
            && (is_beam_name(&self.comm)
                || self
                    .exe
                    .as_deref()
                    .is_some_and(|e| is_beam_name(basename(e)))
                || self.argv.first().is_some_and(|a| is_beam_name(basename(a))))
    }

    /// A path of the target's, reached through its root; the same path on
    /// this host when its root cannot be followed (same mount namespace
    /// assumed: the common case of a service on the host).
    pub fn in_target(&self, path: &Path) -> PathBuf {
        if !self.root_readable {
            return path.to_path_buf();
        }
        let rel = path.strip_prefix("/").unwrap_or(path);
        self.root.join(rel)
    }

    /// The node this BEAM is.
    pub fn describe(self, host: &HostNames, users: &HashMap<u32, String>) -> LocalNode {
        let args = ErlArgs::from_argv(&self.argv, self.env.as_ref());
        let user = users
            .get(&self.uid)
            .cloned()
            .unwrap_or_else(|| self.uid.to_string());
        let target_path = |p: &str| -> Option<PathBuf> {
            let p = Path::new(p);
            if p.is_absolute() {
                Some(p.to_path_buf())
            } else {
                self.cwd.as_ref().map(|c| c.join(p))
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
        let release_root = self
            .env
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
            .or_else(|| self.env.as_ref()?.get("HOME").map(PathBuf::from))
            .filter(|h| h.is_absolute());
        let erts_version = erts_version(&self, &args, release_root.as_deref());
        let otp_release = otp_release(&self, &args).or_else(|| {
            erts_version
                .as_deref()
                .and_then(otp_major_of_erts)
                .map(|m| m.to_string())
        });
        let proto_dist = args.first("proto_dist").map(str::to_string);
        let dist_tls = proto_dist
            .as_deref()
            .is_some_and(|p| p.contains("tls"))
            .then(|| {
                let in_target = |p: &Path| self.in_target(p);
                super::ssl_dist::lookup(
                    &args,
                    &super::ssl_dist::NodeFs {
                        cwd: self.cwd.as_deref(),
                        in_target: &in_target,
                        user: &user,
                    },
                )
            });
        let reader = |p: &Path| read_cookie_file(&self.in_target(p));
        let cookie = resolve_cookie(
            &CookieInputs {
                args: &args,
                env: self.env.as_ref(),
                release_root: release_root.as_deref(),
                home: home.as_deref(),
                user: &user,
            },
            &reader,
        );
        let epmd_port = args
            .first("epmd_port")
            .and_then(|p| p.trim().parse().ok())
            .or_else(|| self.env.as_ref()?.get("ERL_EPMD_PORT")?.trim().parse().ok());
        let mut unreadable = Vec::new();
        if !self.sockets_readable {
            unreadable.push(Unreadable::Sockets);
        }
        if self.env.is_none() {
            unreadable.push(Unreadable::Environment);
        }
        if !self.root_readable {
            unreadable.push(Unreadable::Files);
        }
        let temporary = args.all("remsh").next().is_some()
            || name.as_deref().is_some_and(is_release_shell_name);
        LocalNode {
            os_pid: self.pid,
            uid: self.uid,
            user,
            name_from: name.as_ref().map(|_| NameFrom::Argv),
            name,
            name_kind,
            listen_ports: self.listen_ports.clone(),
            user_listen_ports: self.user_listen_ports.clone(),
            epmd_port,
            temporary,
            proto_dist,
            dist_tls,
            epmd_module: args.first("epmd_module").map(str::to_string),
            release_root,
            home,
            otp_release,
            erts_version,
            cookie,
            environ_readable: self.env.is_some(),
            unreadable,
            argv: redact_argv(&self.argv),
        }
    }
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

/// The OTP version from `<root>/releases/<N>/OTP_VERSION`, for the
/// `-root` the beam runs from or the OTP install its `-bindir` is in.
fn otp_release(seen: &Seen, args: &ErlArgs) -> Option<String> {
    let bindir_root = args
        .first("bindir")
        .and_then(|b| Path::new(b).parent()?.parent().map(Path::to_path_buf));
    let roots = args
        .first("root")
        .map(PathBuf::from)
        .into_iter()
        .chain(bindir_root);
    for root in roots {
        let releases = seen.in_target(&root.join("releases"));
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

/// `13.1.5` of a path holding `erts-13.1.5/`.
fn erts_in_path(path: &str) -> Option<String> {
    path.split('/').find_map(|part| {
        let v = part.strip_prefix("erts-")?;
        (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.')).then(|| v.to_string())
    })
}

/// The erts version: from the `erts-X` directory the beam runs from (its
/// executable, `-bindir`), else from the release's `releases/start_erl.data`
/// (`ERTS_VSN REL_VSN`, which every OTP install and release has).
fn erts_version(seen: &Seen, args: &ErlArgs, release_root: Option<&Path>) -> Option<String> {
    let from_paths = seen
        .exe
        .as_deref()
        .into_iter()
        .chain(seen.argv.first().map(String::as_str))
        .chain(args.first("bindir"))
        .find_map(erts_in_path);
    if from_paths.is_some() {
        return from_paths;
    }
    release_root
        .map(Path::to_path_buf)
        .into_iter()
        .chain(args.first("root").map(PathBuf::from))
        .find_map(|root| {
            let data =
                fs::read_to_string(seen.in_target(&root.join("releases/start_erl.data"))).ok()?;
            let v = data.split_whitespace().next()?;
            v.chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                .then(|| v.to_string())
        })
}

/// The OTP major release an erts version ships with: erts 11 and later are
/// OTP 23 and later (erts major + 12); erts 10.0 to 10.3 are OTP 21, 10.4 to
/// 10.7 OTP 22; erts 9 is OTP 20, 8 OTP 19.
pub(super) fn otp_major_of_erts(erts: &str) -> Option<u32> {
    let mut parts = erts.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    match major {
        11.. => Some(major + 12),
        10 if minor >= 4 => Some(22),
        10 => Some(21),
        9 => Some(20),
        8 => Some(19),
        _ => None,
    }
}

/// A cookie file's text and mode.
pub(super) struct CookieFile {
    pub text: String,
    pub mode: u32,
}

/// A target's cookie file, with the checks and bounds of our own: a FIFO or
/// a device the node's user left there cannot stall or balloon the scan.
fn read_cookie_file(path: &Path) -> io::Result<CookieFile> {
    let (text, mode) = crate::node::cookie::read_cookie_text(path)?;
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
        format!("permission denied: {}", run_as(user))
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
    // Without the environment RELEASE_COOKIE cannot be ruled out; the files
    // are still where the cookie most likely is (a release passes its
    // RELEASE_COOKIE as -setcookie, seen above), and naming the one that
    // cannot be read says what to do.
    let empty = HashMap::new();
    let env = match inp.env {
        Some(env) => {
            if let Some(cookie) = env.get("RELEASE_COOKIE").and_then(|c| Cookie::new(c)) {
                return CookieLookup::Found {
                    source: CookieSource::ReleaseCookieEnv,
                    cookie,
                    loose_permissions: false,
                };
            }
            env
        }
        None => &empty,
    };

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

    let first_source = files.first().map(|(_, source)| source.clone());
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
    if inp.env.is_none() {
        // Nothing found, and its environment hidden: the cookie is in a file
        // etop could not see or in RELEASE_COOKIE.
        return CookieLookup::Unreadable {
            source: first_source.unwrap_or(CookieSource::ReleaseCookieEnv),
            reason: format!("cannot read the process environment: {}", run_as(inp.user)),
        };
    }
    CookieLookup::NotFound
}
