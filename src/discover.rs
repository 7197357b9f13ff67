//! Local BEAM nodes found through /proc (Linux only): what each one calls
//! itself, where it listens, whether it speaks TLS, where its release lives
//! and which cookie it uses.
//!
//! Paths in the results are as the target sees them. Files named by the
//! target (its release, its home) are read through `<proc>/<pid>/root`, so a
//! node inside a container resolves against its own filesystem, not ours.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::target::Cookie;

/// How a node was named: `-sname` (short host part) or `-name` (fully qualified host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Short,
    Long,
}

/// Where a cookie was, or would have been, found. Variants are listed in
/// resolution order; the first source that has a cookie wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieSource {
    /// `-setcookie VALUE` in the beam's arguments.
    Argv,
    /// `RELEASE_COOKIE` in the beam's environment.
    ReleaseCookieEnv,
    /// `<release root>/releases/COOKIE`.
    ReleaseCookieFile(PathBuf),
    /// `.erlang.cookie` in the home directory of the target's user.
    HomeCookieFile { path: PathBuf, user: String },
    /// `$XDG_CONFIG_HOME/erlang/.erlang.cookie`: OTP 26 and later fall back to
    /// it when the home directory has no cookie file.
    ConfigCookieFile { path: PathBuf, user: String },
}

impl fmt::Display for CookieSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieSource::Argv => f.write_str("argv"),
            CookieSource::ReleaseCookieEnv => f.write_str("RELEASE_COOKIE"),
            CookieSource::ReleaseCookieFile(_) => f.write_str("releases/COOKIE"),
            CookieSource::HomeCookieFile { user, .. } => {
                write!(f, "$HOME/.erlang.cookie of user {user}")
            }
            CookieSource::ConfigCookieFile { user, .. } => {
                write!(f, "$XDG_CONFIG_HOME/erlang/.erlang.cookie of user {user}")
            }
        }
    }
}

/// The outcome of looking for a node's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieLookup {
    Found {
        source: CookieSource,
        cookie: Cookie,
        /// The file is readable by group or others. erl refuses a
        /// `.erlang.cookie` like that when it starts, so a running node may
        /// not be using this one.
        loose_permissions: bool,
    },
    /// The source that decides the cookie exists but we may not read it.
    Unreadable {
        source: CookieSource,
        reason: String,
    },
    NotFound,
}

impl CookieLookup {
    pub fn cookie(&self) -> Option<&Cookie> {
        match self {
            CookieLookup::Found { cookie, .. } => Some(cookie),
            _ => None,
        }
    }

    pub fn source(&self) -> Option<&CookieSource> {
        match self {
            CookieLookup::Found { source, .. } | CookieLookup::Unreadable { source, .. } => {
                Some(source)
            }
            CookieLookup::NotFound => None,
        }
    }
}

/// A BEAM running on this host.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalNode {
    pub os_pid: u32,
    pub uid: u32,
    /// Login name of `uid`, or the uid as text when it has none.
    pub user: String,
    /// The beam's arguments, with the values of `-setcookie` replaced by
    /// [`HIDDEN`] so that showing a command line never shows a cookie.
    pub argv: Vec<String>,
    /// "name@host" as the node calls itself.
    pub name: Option<String>,
    pub name_kind: Option<NameKind>,
    /// TCP ports the process listens on, IPv4 and IPv6, sorted and deduplicated.
    pub listen_ports: Vec<u16>,
    /// `-proto_dist`, e.g. "inet_tls" or "inet6_tcp".
    pub proto_dist: Option<String>,
    /// `-epmd_module`: the node registers somewhere other than EPMD.
    pub epmd_module: Option<String>,
    /// `RELEASE_ROOT` from the environment, else the part before
    /// `/releases/<vsn>/` in `-boot`, `-config`, `-args_file` or `-root`.
    pub release_root: Option<PathBuf>,
    /// `-home` (what erl reads the cookie file under, set from HOME), else
    /// HOME from the environment.
    pub home: Option<PathBuf>,
    /// OTP version, e.g. "26.2.5", from the `OTP_VERSION` file of the OTP
    /// install the beam runs from, when it has one.
    pub otp_release: Option<String>,
    pub cookie: CookieLookup,
    pub environ_readable: bool,
}

impl LocalNode {
    /// Whether distribution runs over TLS (`-proto_dist inet_tls`, `inet6_tls`, ...).
    pub fn tls(&self) -> bool {
        self.proto_dist
            .as_deref()
            .is_some_and(|p| p.contains("tls"))
    }
}

/// What [`redact_argv`] puts in place of a secret.
pub const HIDDEN: &str = "<hidden>";

/// A copy of `argv` with the words following each `-setcookie` (up to the
/// next flag) replaced by [`HIDDEN`].
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    let mut hiding = false;
    argv.iter()
        .map(|w| {
            if w.starts_with('-') {
                hiding = w == "-setcookie";
                w.clone()
            } else if hiding {
                HIDDEN.to_string()
            } else {
                w.clone()
            }
        })
        .collect()
}

/// Splits a NUL-separated /proc file (`cmdline`, `environ`). Empty words in
/// the middle are real (an empty argument); the final terminator is not.
pub fn split_nul(raw: &[u8]) -> Vec<String> {
    if raw.is_empty() {
        return Vec::new();
    }
    let body = raw.strip_suffix(&[0]).unwrap_or(raw);
    body.split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// Parses a NUL-separated environment block. For a name set twice the first
/// entry wins, as with getenv.
pub fn parse_environ(raw: &[u8]) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for entry in split_nul(raw) {
        if let Some((k, v)) = entry.split_once('=') {
            env.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    env
}

/// Splits the value of `ERL_FLAGS`, `ERL_AFLAGS` or `ERL_ZFLAGS` into words
/// the way erl does: on whitespace, with single quotes, double quotes and
/// backslash escapes.
pub fn split_flag_string(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The init flags of a beam, as `init:get_argument/1` would see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErlArgs {
    flags: Vec<(String, Vec<String>)>,
}

impl ErlArgs {
    /// Parses a beam.smp argv (from `/proc/<pid>/cmdline`).
    ///
    /// Emulator flags come first and end at the first `--`; init flags follow.
    /// `env` is the target's environment when readable: erl splices
    /// `ERL_AFLAGS`, `ERL_FLAGS` and `ERL_ZFLAGS` into the argv itself, so
    /// they are only added here when the argv does not already hold them
    /// (a beam started some other way), never counted twice.
    pub fn from_argv(argv: &[String], env: Option<&HashMap<String, String>>) -> ErlArgs {
        let init: &[String] = match argv.iter().position(|a| a == "--") {
            Some(i) => &argv[i + 1..],
            // No separator: not started by erl; take everything as init words.
            None => argv.get(1..).unwrap_or(&[]),
        };
        let missing = |var: &str| -> Vec<String> {
            let words = env
                .and_then(|e| e.get(var))
                .map(|v| split_flag_string(v))
                .unwrap_or_default();
            if words.is_empty() || init.windows(words.len()).any(|w| w == words.as_slice()) {
                Vec::new()
            } else {
                words
            }
        };
        let sep = || std::iter::once("--".to_string());
        // The order erl uses: ERL_AFLAGS, the command line, ERL_FLAGS, ERL_ZFLAGS.
        let words: Vec<String> = missing("ERL_AFLAGS")
            .into_iter()
            .chain(sep())
            .chain(init.iter().cloned())
            .chain(sep())
            .chain(missing("ERL_FLAGS"))
            .chain(sep())
            .chain(missing("ERL_ZFLAGS"))
            .collect();
        ErlArgs::parse_init_words(&words)
    }

    /// Parses init words: `-flag value...` groups; `--` ends a group; words
    /// before any flag are plain arguments; `-extra` ends flag parsing.
    pub fn parse_init_words<S: AsRef<str>>(words: &[S]) -> ErlArgs {
        let mut flags = Vec::new();
        let mut cur: Option<(String, Vec<String>)> = None;
        for w in words.iter().map(AsRef::as_ref) {
            if w == "-extra" {
                break;
            }
            if w == "--" {
                flags.extend(cur.take());
            } else if let Some(name) = w.strip_prefix('-') {
                flags.extend(cur.take());
                cur = Some((name.to_string(), Vec::new()));
            } else if let Some((_, values)) = cur.as_mut() {
                values.push(w.to_string());
            }
        }
        flags.extend(cur);
        ErlArgs { flags }
    }

    /// The values of every occurrence of `-flag`, in order.
    pub fn all<'a>(&'a self, flag: &str) -> impl Iterator<Item = &'a [String]> {
        self.flags
            .iter()
            .filter(move |(name, _)| name == flag)
            .map(|(_, values)| values.as_slice())
    }

    /// The first value of the first occurrence of `-flag` that has one.
    /// erl itself uses the first `-sname` / `-name` when given several.
    pub fn first(&self, flag: &str) -> Option<&str> {
        self.all(flag).find_map(|v| v.first()).map(String::as_str)
    }

    /// The node's own cookie from `-setcookie`, with the rules of the auth
    /// server: exactly one `-setcookie` of zero or one value, and it has one.
    /// Two-value `-setcookie Node Cookie` is another node's cookie. Any other
    /// mix makes erl ignore them all and read the cookie file instead.
    pub fn own_cookie(&self) -> Option<&str> {
        let mut own = self.all("setcookie").filter(|v| v.len() <= 1);
        match (own.next(), own.next()) {
            (Some([c]), None) => Some(c.as_str()),
            _ => None,
        }
    }

    /// The name as given to `-sname` or `-name` (with or without a host),
    /// `-sname` first as erl does. `undefined` asks for a name assigned at
    /// first connection, so the node has none yet.
    pub fn node_name(&self) -> Option<(NameKind, &str)> {
        let given = match self.first("sname") {
            Some(n) => (NameKind::Short, n),
            None => (NameKind::Long, self.first("name")?),
        };
        (given.1 != "undefined").then_some(given)
    }
}

/// The full node name: `given` as is when it has a host part, else with this
/// host's name; the short form for `-sname`, for `-name` the FQDN if known.
pub fn full_node_name(kind: NameKind, given: &str, hostname: &str, fqdn: Option<&str>) -> String {
    if given.contains('@') {
        return given.to_string();
    }
    let host = match kind {
        NameKind::Short => hostname.split('.').next().unwrap_or(hostname),
        NameKind::Long => fqdn.unwrap_or(hostname),
    };
    format!("{given}@{host}")
}

/// The release root of a path inside a release: `/opt/app/releases/1.2.0/sys.config`
/// gives `/opt/app`. The last `/releases/<vsn>/` counts, so a release may
/// itself live under a directory named `releases`.
pub fn release_root_from_path(path: &str) -> Option<PathBuf> {
    const MARK: &str = "/releases/";
    path.rmatch_indices(MARK)
        .map(|(i, _)| i)
        .find(|&i| {
            let after = &path[i + MARK.len()..];
            after.find('/').is_some_and(|slash| slash > 0)
        })
        .map(|i| {
            if i == 0 {
                PathBuf::from("/")
            } else {
                PathBuf::from(&path[..i])
            }
        })
}

/// Listening sockets in a `/proc/<pid>/net/tcp` or `tcp6` table, as (inode, port).
pub fn parse_tcp_listeners(table: &str) -> Vec<(u64, u16)> {
    // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(3) != Some(&LISTEN) {
                return None;
            }
            let port = cols.get(1)?.rsplit_once(':')?.1;
            let port = u16::from_str_radix(port, 16).ok()?;
            let inode = cols.get(9)?.parse().ok()?;
            Some((inode, port))
        })
        .collect()
}

/// Names nodes that started distribution from inside Erlang
/// (`net_kernel:start/2`) and so have no name in their argv: a node whose
/// listen ports include the port EPMD lists for a name is that name at
/// `host`. Nodes already named are left alone.
pub fn match_epmd(nodes: &mut [LocalNode], epmd: &[(String, u16)], host: &str) {
    for node in nodes.iter_mut().filter(|n| n.name.is_none()) {
        let Some((name, _)) = epmd
            .iter()
            .find(|(_, port)| node.listen_ports.contains(port))
        else {
            continue;
        };
        node.name = Some(format!("{name}@{host}"));
        // EPMD does not say; a dotted host is what a long-names node registers under.
        node.name_kind = Some(if host.contains('.') {
            NameKind::Long
        } else {
            NameKind::Short
        });
    }
}

/// Every live BEAM on this host, sorted by pid.
#[cfg(target_os = "linux")]
pub fn scan(proc_root: &Path) -> Vec<LocalNode> {
    let hostname = std::fs::read_to_string(proc_root.join("sys/kernel/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    scan_with(proc_root, Path::new("/etc"), &hostname)
}

#[cfg(not(target_os = "linux"))]
pub fn scan(_proc_root: &Path) -> Vec<LocalNode> {
    Vec::new()
}

/// [`scan`] with the `/etc` used for user names and the host name given.
#[cfg(target_os = "linux")]
pub fn scan_with(proc_root: &Path, etc_root: &Path, hostname: &str) -> Vec<LocalNode> {
    linux::scan_with(proc_root, etc_root, hostname)
}

#[cfg(not(target_os = "linux"))]
pub fn scan_with(_proc_root: &Path, _etc_root: &Path, _hostname: &str) -> Vec<LocalNode> {
    Vec::new()
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::collections::HashSet;
    use std::fs;
    use std::io;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
        let stat = crate::osview::parse_stat_line(&fs::read_to_string(dir.join("stat")).ok()?)?;
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

    fn read_cookie_file(path: &Path) -> io::Result<CookieFile> {
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let text = fs::read_to_string(path)?;
        Ok(CookieFile {
            text,
            mode: meta.permissions().mode(),
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// argv as erl builds it: emulator flags, `--`, erl's own flags, `--`, the user's.
    fn erl_argv(user: &[&str]) -> Vec<String> {
        let mut a = words(&[
            "/usr/lib/erlang/erts-14.2/bin/beam.smp",
            "-P",
            "1000000",
            "--",
            "-root",
            "/usr/lib/erlang",
            "-bindir",
            "/usr/lib/erlang/erts-14.2/bin",
            "-progname",
            "erl",
            "--",
            "-home",
            "/home/rabbit",
            "--",
        ]);
        a.extend(words(user));
        a
    }

    #[test]
    fn split_nul_keeps_odd_words() {
        let raw = b"beam.smp\0--\0-eval\0io:format(\"a 'b' c\")\0\0-sname\0with space\0\0";
        assert_eq!(
            split_nul(raw),
            words(&[
                "beam.smp",
                "--",
                "-eval",
                "io:format(\"a 'b' c\")",
                "",
                "-sname",
                "with space",
                ""
            ])
        );
        assert!(split_nul(b"").is_empty());
        assert_eq!(split_nul(b"no-terminator"), words(&["no-terminator"]));
    }

    #[test]
    fn environ_first_entry_wins_and_junk_is_skipped() {
        let e = parse_environ(b"HOME=/home/a\0JUNK\0X=a=b\0HOME=/other\0EMPTY=\0");
        assert_eq!(e.get("HOME").map(String::as_str), Some("/home/a"));
        assert_eq!(e.get("X").map(String::as_str), Some("a=b"));
        assert_eq!(e.get("EMPTY").map(String::as_str), Some(""));
        assert!(!e.contains_key("JUNK"));
    }

    #[test]
    fn flag_strings_split_like_erl() {
        assert_eq!(
            split_flag_string("  -setcookie 'a b' -x \"c \\\"d\\\"\" e\\ f ''  "),
            words(&["-setcookie", "a b", "-x", "c \"d\"", "e f", ""])
        );
        assert!(split_flag_string("   ").is_empty());
    }

    #[test]
    fn init_words_group_values_under_flags() {
        let a = ErlArgs::from_argv(
            &erl_argv(&[
                "plain", "-sname", "n1", "-eval", "x(). -y", "-noshell", "--", "-config", "a", "b",
                "-extra", "-name", "late",
            ]),
            None,
        );
        assert_eq!(a.first("root"), Some("/usr/lib/erlang"));
        assert_eq!(a.first("home"), Some("/home/rabbit"));
        assert_eq!(a.first("sname"), Some("n1"));
        assert_eq!(a.first("eval"), Some("x(). -y"));
        assert_eq!(a.all("noshell").collect::<Vec<_>>(), vec![&[] as &[String]]);
        assert_eq!(a.all("config").next(), Some(&words(&["a", "b"])[..]));
        // After -extra everything is a plain argument.
        assert_eq!(a.first("name"), None);
        // Emulator flags before the first "--" are not init flags.
        assert_eq!(a.first("P"), None);
    }

    #[test]
    fn own_cookie_follows_the_auth_server_rules() {
        let parse = |user: &[&str]| ErlArgs::from_argv(&erl_argv(user), None);
        assert_eq!(parse(&["-setcookie", "c1"]).own_cookie(), Some("c1"));
        assert_eq!(
            parse(&["-setcookie", "c1", "-setcookie", "other@host", "c2"]).own_cookie(),
            Some("c1")
        );
        // Twice, even with the same value: erl ignores both and reads the file.
        assert_eq!(
            parse(&["-setcookie", "c1", "-setcookie", "c1"]).own_cookie(),
            None
        );
        assert_eq!(
            parse(&["-setcookie", "c1", "-setcookie"]).own_cookie(),
            None
        );
        assert_eq!(parse(&["-setcookie", "-noshell"]).own_cookie(), None);
        assert_eq!(parse(&[]).own_cookie(), None);
    }

    #[test]
    fn env_flags_spliced_by_erl_are_not_counted_twice() {
        // erl already put ERL_FLAGS into the argv.
        let argv = erl_argv(&["-sname", "n1", "--", "-setcookie", "from env"]);
        let e = env(&[("ERL_FLAGS", "-setcookie 'from env'")]);
        let a = ErlArgs::from_argv(&argv, Some(&e));
        assert_eq!(a.own_cookie(), Some("from env"));
        assert_eq!(a.all("setcookie").count(), 1);

        // A beam started without erl: the flags exist only in the environment.
        let bare = words(&["/opt/erts/bin/beam.smp", "--", "-root", "/opt"]);
        let e = env(&[
            ("ERL_AFLAGS", "-sname first"),
            ("ERL_FLAGS", "-sname second -proto_dist inet_tls"),
            ("ERL_ZFLAGS", "-setcookie z"),
        ]);
        let a = ErlArgs::from_argv(&bare, Some(&e));
        assert_eq!(a.node_name(), Some((NameKind::Short, "first")));
        assert_eq!(a.first("proto_dist"), Some("inet_tls"));
        assert_eq!(a.own_cookie(), Some("z"));
        assert_eq!(a.first("root"), Some("/opt"));
    }

    #[test]
    fn node_names() {
        let parse = |user: &[&str]| ErlArgs::from_argv(&erl_argv(user), None);
        assert_eq!(
            parse(&["-name", "a", "-sname", "b"]).node_name(),
            Some((NameKind::Short, "b"))
        );
        assert_eq!(
            parse(&["-name", "a@h.example"]).node_name(),
            Some((NameKind::Long, "a@h.example"))
        );
        assert_eq!(parse(&["-sname", "undefined"]).node_name(), None);
        assert_eq!(parse(&["-noshell"]).node_name(), None);

        assert_eq!(
            full_node_name(NameKind::Short, "a", "web1.example.com", None),
            "a@web1"
        );
        assert_eq!(
            full_node_name(NameKind::Short, "a@other", "web1", None),
            "a@other"
        );
        assert_eq!(
            full_node_name(NameKind::Long, "a", "web1", Some("web1.example.com")),
            "a@web1.example.com"
        );
        assert_eq!(full_node_name(NameKind::Long, "a", "web1", None), "a@web1");
    }

    #[test]
    fn release_roots_from_paths() {
        let r = |p: &str| release_root_from_path(p);
        assert_eq!(
            r("/opt/app/releases/1.2.0/start"),
            Some(PathBuf::from("/opt/app"))
        );
        assert_eq!(
            r("/srv/releases/app/releases/0.1.0/sys.config"),
            Some(PathBuf::from("/srv/releases/app"))
        );
        assert_eq!(r("/releases/1/vm.args"), Some(PathBuf::from("/")));
        assert_eq!(r("/usr/lib/erlang"), None);
        assert_eq!(r("/opt/app/releases/COOKIE"), None);
        assert_eq!(r("/opt/app/releases//x"), None);
    }

    #[test]
    fn argv_redaction() {
        let argv = words(&[
            "beam",
            "--",
            "-setcookie",
            "s3cret",
            "-setcookie",
            "n@h",
            "other",
            "-sname",
            "a",
        ]);
        assert_eq!(
            redact_argv(&argv),
            words(&[
                "beam",
                "--",
                "-setcookie",
                HIDDEN,
                "-setcookie",
                HIDDEN,
                HIDDEN,
                "-sname",
                "a"
            ])
        );
    }

    #[test]
    fn tcp_tables() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 00000000:1112 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 501 1 0 100 0 0 10 0\n\
           1: 0100007F:9C41 0100007F:1112 01 00000000:00000000 00:00000000 00000000   999        0 502 1 0 100 0 0 10 0\n\
           2: garbage\n";
        assert_eq!(parse_tcp_listeners(t), vec![(501, 0x1112)]);
    }

    #[test]
    fn cookie_source_display() {
        assert_eq!(CookieSource::Argv.to_string(), "argv");
        assert_eq!(CookieSource::ReleaseCookieEnv.to_string(), "RELEASE_COOKIE");
        assert_eq!(
            CookieSource::ReleaseCookieFile("/x/releases/COOKIE".into()).to_string(),
            "releases/COOKIE"
        );
        let home = CookieSource::HomeCookieFile {
            path: "/var/lib/rabbitmq/.erlang.cookie".into(),
            user: "rabbit".into(),
        };
        assert_eq!(home.to_string(), "$HOME/.erlang.cookie of user rabbit");
        let conf = CookieSource::ConfigCookieFile {
            path: "/h/.config/erlang/.erlang.cookie".into(),
            user: "u".into(),
        };
        assert_eq!(
            conf.to_string(),
            "$XDG_CONFIG_HOME/erlang/.erlang.cookie of user u"
        );
    }

    #[test]
    fn epmd_names_nodes_started_from_inside() {
        let node = |pid: u32, name: Option<&str>, ports: Vec<u16>| LocalNode {
            os_pid: pid,
            uid: 0,
            user: "root".into(),
            argv: Vec::new(),
            name: name.map(str::to_string),
            name_kind: name.map(|_| NameKind::Short),
            listen_ports: ports,
            proto_dist: None,
            epmd_module: None,
            release_root: None,
            home: None,
            otp_release: None,
            cookie: CookieLookup::NotFound,
            environ_readable: true,
        };
        let mut nodes = vec![
            node(1, None, vec![80, 40001]),
            node(2, Some("named@h"), vec![40002]),
            node(3, None, vec![9999]),
        ];
        let epmd = vec![("late".to_string(), 40001), ("other".to_string(), 40002)];
        match_epmd(&mut nodes, &epmd, "h");
        assert_eq!(nodes[0].name.as_deref(), Some("late@h"));
        assert_eq!(nodes[0].name_kind, Some(NameKind::Short));
        assert_eq!(nodes[1].name.as_deref(), Some("named@h"));
        assert_eq!(nodes[2].name, None);
        match_epmd(&mut nodes[2..], &[("l".to_string(), 9999)], "h.example.com");
        assert_eq!(nodes[2].name.as_deref(), Some("l@h.example.com"));
        assert_eq!(nodes[2].name_kind, Some(NameKind::Long));
        assert!(!nodes[0].tls());
        nodes[0].proto_dist = Some("inet6_tls".into());
        assert!(nodes[0].tls());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod fake_proc_tests {
    use super::linux::{CookieFile, CookieInputs, resolve_cookie};
    use super::*;
    use std::fs;
    use std::io;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use tempfile::TempDir;

    const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    struct Fake {
        tmp: TempDir,
    }

    /// One fake process. `environ: None` leaves the file out, which the
    /// scanner must treat like an environment it may not read.
    struct Proc {
        pid: u32,
        comm: &'static str,
        state: char,
        uid: u32,
        argv: Vec<String>,
        environ: Option<Vec<(&'static str, &'static str)>>,
        exe: Option<&'static str>,
        sockets: Vec<u64>,
        tcp: String,
        tcp6: String,
    }

    fn beam(pid: u32, user_args: &[&str]) -> Proc {
        let mut argv: Vec<String> = [
            "/usr/lib/erlang/erts-14.2/bin/beam.smp",
            "--",
            "-root",
            "/usr/lib/erlang",
            "-bindir",
            "/usr/lib/erlang/erts-14.2/bin",
            "-progname",
            "erl",
            "--",
            "-home",
            "/home/rabbit",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(user_args.iter().map(|s| s.to_string()));
        Proc {
            pid,
            comm: "beam.smp",
            state: 'S',
            uid: 1000,
            argv,
            environ: Some(vec![("HOME", "/home/rabbit")]),
            exe: None,
            sockets: Vec::new(),
            tcp: String::new(),
            tcp6: String::new(),
        }
    }

    impl Fake {
        fn new() -> Fake {
            let tmp = tempfile::tempdir().unwrap();
            fs::create_dir_all(tmp.path().join("proc")).unwrap();
            fs::create_dir_all(tmp.path().join("etc")).unwrap();
            fs::write(
                tmp.path().join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nrabbit:x:1000:1000::/home/rabbit:/bin/sh\n",
            )
            .unwrap();
            fs::write(
                tmp.path().join("etc/hosts"),
                "127.0.0.1 localhost\n10.0.0.5 web1.example.com web1 # the box\n",
            )
            .unwrap();
            Fake { tmp }
        }

        fn proc_root(&self) -> PathBuf {
            self.tmp.path().join("proc")
        }

        fn scan(&self) -> Vec<LocalNode> {
            scan_with(&self.proc_root(), &self.tmp.path().join("etc"), "web1")
        }

        fn only(&self) -> LocalNode {
            let mut nodes = self.scan();
            assert_eq!(nodes.len(), 1, "{nodes:?}");
            nodes.remove(0)
        }

        fn add(&self, p: &Proc) {
            let dir = self.proc_root().join(p.pid.to_string());
            fs::create_dir_all(dir.join("fd")).unwrap();
            fs::create_dir_all(dir.join("net")).unwrap();
            fs::create_dir_all(dir.join("root")).unwrap();
            let zeros = vec!["0"; 49].join(" ");
            fs::write(
                dir.join("stat"),
                format!("{} ({}) {} {zeros}\n", p.pid, p.comm, p.state),
            )
            .unwrap();
            fs::write(
                dir.join("status"),
                format!("Name:\t{}\nUid:\t{u}\t{u}\t{u}\t{u}\n", p.comm, u = p.uid),
            )
            .unwrap();
            let mut cmdline = Vec::new();
            for a in &p.argv {
                cmdline.extend_from_slice(a.as_bytes());
                cmdline.push(0);
            }
            fs::write(dir.join("cmdline"), cmdline).unwrap();
            if let Some(env) = &p.environ {
                let mut raw = Vec::new();
                for (k, v) in env {
                    raw.extend_from_slice(format!("{k}={v}").as_bytes());
                    raw.push(0);
                }
                fs::write(dir.join("environ"), raw).unwrap();
            }
            if let Some(exe) = p.exe {
                symlink(exe, dir.join("exe")).unwrap();
            }
            symlink("/dev/null", dir.join("fd/0")).unwrap();
            for (i, inode) in p.sockets.iter().enumerate() {
                symlink(
                    format!("socket:[{inode}]"),
                    dir.join(format!("fd/{}", i + 3)),
                )
                .unwrap();
            }
            fs::write(dir.join("net/tcp"), format!("{TCP_HEADER}{}", p.tcp)).unwrap();
            fs::write(dir.join("net/tcp6"), format!("{TCP_HEADER}{}", p.tcp6)).unwrap();
        }

        /// A file at `path` as process `pid` sees it.
        fn target_file(&self, pid: u32, path: &str, text: &str, mode: u32) {
            let p = self
                .proc_root()
                .join(pid.to_string())
                .join("root")
                .join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }

        fn remove_target_file(&self, pid: u32, path: &str) {
            let p = self
                .proc_root()
                .join(pid.to_string())
                .join("root")
                .join(path.trim_start_matches('/'));
            fs::remove_file(p).unwrap();
        }
    }

    fn tcp_line(sl: u32, local: &str, state: &str, inode: u64) -> String {
        format!(
            "   {sl}: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
    }

    fn tcp6_line(sl: u32, port: u16, state: &str, inode: u64) -> String {
        format!(
            "   {sl}: 00000000000000000000000000000000:{port:04X} 00000000000000000000000000000000:0000 {state} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
    }

    fn found(lookup: &CookieLookup) -> (&CookieSource, &str, bool) {
        match lookup {
            CookieLookup::Found {
                source,
                cookie,
                loose_permissions,
            } => (source, cookie.expose(), *loose_permissions),
            other => panic!("expected a cookie, got {other:?}"),
        }
    }

    #[test]
    fn finds_beams_and_skips_zombies_and_others() {
        let f = Fake::new();
        f.add(&beam(100, &["-sname", "alive"]));
        f.add(&Proc {
            state: 'Z',
            ..beam(101, &["-sname", "zombie"])
        });
        f.add(&Proc {
            comm: "bash",
            argv: vec!["bash".into()],
            ..beam(102, &[])
        });
        // Renamed main thread, still a beam by its executable.
        f.add(&Proc {
            comm: "myapp",
            exe: Some("/opt/erts-14.2/bin/beam.smp (deleted)"),
            ..beam(103, &["-sname", "by_exe"])
        });
        f.add(&Proc {
            comm: "beam",
            ..beam(104, &["-sname", "plain_beam"])
        });
        // A kernel thread: no cmdline.
        f.add(&Proc {
            comm: "beam.smp",
            argv: Vec::new(),
            ..beam(105, &[])
        });
        fs::create_dir_all(f.proc_root().join("self")).unwrap();
        fs::write(f.proc_root().join("uptime"), "1 1\n").unwrap();

        let names: Vec<(u32, Option<String>)> =
            f.scan().into_iter().map(|n| (n.os_pid, n.name)).collect();
        assert_eq!(
            names,
            vec![
                (100, Some("alive@web1".to_string())),
                (103, Some("by_exe@web1".to_string())),
                (104, Some("plain_beam@web1".to_string())),
            ]
        );
    }

    #[test]
    fn node_fields_from_argv_and_environ() {
        let f = Fake::new();
        let mut p = beam(
            200,
            &[
                "-name",
                "api",
                "-proto_dist",
                "inet_tls",
                "-epmd_module",
                "my_epmd",
                "-setcookie",
                "s3cret",
                "-eval",
                "a b \"c\"",
                "",
            ],
        );
        p.uid = 4242;
        f.add(&p);
        f.target_file(
            200,
            "/usr/lib/erlang/releases/26/OTP_VERSION",
            "26.2.5\n",
            0o644,
        );
        f.target_file(
            200,
            "/usr/lib/erlang/releases/25/OTP_VERSION",
            "25.3\n",
            0o644,
        );
        let n = f.only();
        assert_eq!(n.name.as_deref(), Some("api@web1.example.com"));
        assert_eq!(n.name_kind, Some(NameKind::Long));
        assert_eq!(n.proto_dist.as_deref(), Some("inet_tls"));
        assert!(n.tls());
        assert_eq!(n.epmd_module.as_deref(), Some("my_epmd"));
        assert_eq!(n.uid, 4242);
        assert_eq!(n.user, "4242");
        assert_eq!(n.home.as_deref(), Some(Path::new("/home/rabbit")));
        assert_eq!(n.otp_release.as_deref(), Some("26.2.5"));
        assert_eq!(n.release_root, None);
        assert!(n.environ_readable);
        assert_eq!(found(&n.cookie), (&CookieSource::Argv, "s3cret", false));
        // The odd arguments survive intact; the cookie does not show.
        assert!(n.argv.contains(&"a b \"c\"".to_string()));
        assert_eq!(n.argv.last().map(String::as_str), Some(""));
        assert!(!n.argv.contains(&"s3cret".to_string()));
        assert!(!format!("{n:?}").contains("s3cret"));
    }

    #[test]
    fn listen_ports_ipv4_and_ipv6() {
        let f = Fake::new();
        let mut p = beam(300, &["-sname", "web"]);
        p.sockets = vec![11, 12, 13, 14];
        p.tcp = [
            tcp_line(0, "00000000:9C41", "0A", 11), // 40001, ours, listening
            tcp_line(1, "0100007F:9C42", "01", 12), // ours, established
            tcp_line(2, "00000000:1111", "0A", 999), // someone else's
        ]
        .concat();
        p.tcp6 = [tcp6_line(0, 4000, "0A", 13), tcp6_line(1, 40001, "0A", 14)].concat();
        f.add(&p);
        assert_eq!(f.only().listen_ports, vec![4000, 40001]);
    }

    #[test]
    fn node_found_only_through_epmd() {
        let f = Fake::new();
        // Distribution started with net_kernel:start/2: no name in argv.
        let mut p = beam(400, &["-noshell", "-s", "myapp"]);
        p.sockets = vec![21];
        p.tcp6 = tcp6_line(0, 43125, "0A", 21);
        f.add(&p);
        let mut nodes = f.scan();
        assert_eq!(nodes[0].name, None);
        match_epmd(
            &mut nodes,
            &[("other".into(), 40000), ("late".into(), 43125)],
            "web1",
        );
        assert_eq!(nodes[0].name.as_deref(), Some("late@web1"));
    }

    #[test]
    fn release_layout_with_cookie_file_and_env() {
        let f = Fake::new();
        let mut p = beam(
            500,
            &[
                "-sname",
                "shop",
                "-boot",
                "/opt/shop/releases/0.3.1/start",
                "-config",
                "/opt/shop/releases/0.3.1/sys",
            ],
        );
        p.environ = Some(vec![
            ("HOME", "/home/shop"),
            ("RELEASE_ROOT", "/srv/shop"),
            ("RELEASE_NAME", "shop"),
            ("RELEASE_VSN", "0.3.1"),
        ]);
        f.add(&p);
        f.target_file(500, "/srv/shop/releases/COOKIE", "release-cookie", 0o400);
        let n = f.only();
        assert_eq!(n.release_root.as_deref(), Some(Path::new("/srv/shop")));
        assert_eq!(
            found(&n.cookie),
            (
                &CookieSource::ReleaseCookieFile("/srv/shop/releases/COOKIE".into()),
                "release-cookie",
                false
            )
        );

        // Without RELEASE_ROOT, the -boot path says where the release is.
        let f = Fake::new();
        p.environ = Some(vec![("HOME", "/home/shop")]);
        f.add(&p);
        f.target_file(500, "/opt/shop/releases/COOKIE", "from-boot\n", 0o440);
        let n = f.only();
        assert_eq!(n.release_root.as_deref(), Some(Path::new("/opt/shop")));
        assert_eq!(
            found(&n.cookie),
            (
                &CookieSource::ReleaseCookieFile("/opt/shop/releases/COOKIE".into()),
                "from-boot",
                true
            )
        );
    }

    #[test]
    fn relative_boot_path_resolves_against_cwd() {
        let f = Fake::new();
        f.add(&beam(510, &["-boot", "releases/1.0.0/start"]));
        symlink("/opt/rel", f.proc_root().join("510/cwd")).unwrap();
        assert_eq!(
            f.only().release_root.as_deref(),
            Some(Path::new("/opt/rel"))
        );
    }

    #[test]
    fn home_cookie_with_trailing_newline_and_loose_mode() {
        let f = Fake::new();
        f.add(&beam(600, &["-sname", "rmq"]));
        f.target_file(600, "/home/rabbit/.erlang.cookie", "  HOMECOOKIE\n", 0o400);
        let n = f.only();
        assert_eq!(n.user, "rabbit");
        let source = CookieSource::HomeCookieFile {
            path: "/home/rabbit/.erlang.cookie".into(),
            user: "rabbit".into(),
        };
        assert_eq!(found(&n.cookie), (&source, "HOMECOOKIE", false));
        assert_eq!(
            n.cookie.source().map(ToString::to_string).as_deref(),
            Some("$HOME/.erlang.cookie of user rabbit")
        );

        f.target_file(600, "/home/rabbit/.erlang.cookie", "HOMECOOKIE\r\n", 0o644);
        assert_eq!(found(&f.only().cookie), (&source, "HOMECOOKIE", true));
    }

    #[test]
    fn config_dir_cookie_when_home_has_none() {
        let f = Fake::new();
        f.add(&beam(650, &["-sname", "x"]));
        f.target_file(
            650,
            "/home/rabbit/.config/erlang/.erlang.cookie",
            "XDG\n",
            0o400,
        );
        let source = CookieSource::ConfigCookieFile {
            path: "/home/rabbit/.config/erlang/.erlang.cookie".into(),
            user: "rabbit".into(),
        };
        assert_eq!(found(&f.only().cookie), (&source, "XDG", false));
    }

    #[test]
    fn cookie_precedence() {
        let f = Fake::new();
        let mut p = beam(
            700,
            &[
                "-sname",
                "n",
                "-setcookie",
                "ARGV",
                "-boot",
                "/opt/r/releases/1/start",
            ],
        );
        p.environ = Some(vec![("HOME", "/home/rabbit"), ("RELEASE_COOKIE", " ENV\n")]);
        f.add(&p);
        f.target_file(700, "/opt/r/releases/COOKIE", "RELFILE", 0o400);
        f.target_file(700, "/home/rabbit/.erlang.cookie", "HOME", 0o400);
        f.target_file(
            700,
            "/home/rabbit/.config/erlang/.erlang.cookie",
            "XDG",
            0o400,
        );
        let cookie = |f: &Fake| found(&f.only().cookie).1.to_string();
        assert_eq!(cookie(&f), "ARGV");

        p.argv.truncate(p.argv.len() - 4);
        p.argv
            .extend(["-boot".to_string(), "/opt/r/releases/1/start".to_string()]);
        fs::remove_dir_all(f.proc_root().join("700")).unwrap();
        f.add(&p);
        f.target_file(700, "/opt/r/releases/COOKIE", "RELFILE", 0o400);
        f.target_file(700, "/home/rabbit/.erlang.cookie", "HOME", 0o400);
        f.target_file(
            700,
            "/home/rabbit/.config/erlang/.erlang.cookie",
            "XDG",
            0o400,
        );
        assert_eq!(cookie(&f), "ENV");

        // An empty RELEASE_COOKIE is no cookie.
        p.environ = Some(vec![("HOME", "/home/rabbit"), ("RELEASE_COOKIE", "")]);
        fs::remove_file(f.proc_root().join("700/environ")).unwrap();
        let mut raw = Vec::new();
        for (k, v) in p.environ.as_ref().unwrap() {
            raw.extend_from_slice(format!("{k}={v}\0").as_bytes());
        }
        fs::write(f.proc_root().join("700/environ"), raw).unwrap();
        assert_eq!(cookie(&f), "RELFILE");

        f.remove_target_file(700, "/opt/r/releases/COOKIE");
        assert_eq!(cookie(&f), "HOME");

        f.remove_target_file(700, "/home/rabbit/.erlang.cookie");
        assert_eq!(cookie(&f), "XDG");

        f.remove_target_file(700, "/home/rabbit/.config/erlang/.erlang.cookie");
        assert_eq!(f.only().cookie, CookieLookup::NotFound);
    }

    #[test]
    fn unreadable_environment() {
        let f = Fake::new();
        f.add(&Proc {
            environ: None,
            ..beam(800, &["-sname", "locked"])
        });
        f.target_file(800, "/home/rabbit/.erlang.cookie", "HOME", 0o400);
        let n = f.only();
        assert!(!n.environ_readable);
        match &n.cookie {
            CookieLookup::Unreadable { source, reason } => {
                assert_eq!(source, &CookieSource::ReleaseCookieEnv);
                assert!(reason.contains("run as user rabbit or root"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // -home still comes from argv.
        assert_eq!(n.home.as_deref(), Some(Path::new("/home/rabbit")));

        // A cookie on the command line needs no environment.
        let f = Fake::new();
        f.add(&Proc {
            environ: None,
            ..beam(801, &["-setcookie", "visible"])
        });
        assert_eq!(found(&f.only().cookie).0, &CookieSource::Argv);
    }

    #[test]
    fn unreadable_cookie_file() {
        let f = Fake::new();
        f.add(&beam(900, &["-sname", "n"]));
        // Any error other than "missing" stops the search: here a directory.
        fs::create_dir_all(f.proc_root().join("900/root/home/rabbit/.erlang.cookie")).unwrap();
        f.target_file(
            900,
            "/home/rabbit/.config/erlang/.erlang.cookie",
            "XDG",
            0o400,
        );
        match f.only().cookie {
            CookieLookup::Unreadable {
                source: CookieSource::HomeCookieFile { path, user },
                reason,
            } => {
                assert_eq!(path, Path::new("/home/rabbit/.erlang.cookie"));
                assert_eq!(user, "rabbit");
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn permission_denied_says_who_to_run_as() {
        let args = ErlArgs::from_argv(&[], None);
        let env = HashMap::new();
        let inp = CookieInputs {
            args: &args,
            env: Some(&env),
            release_root: Some(Path::new("/opt/app")),
            home: Some(Path::new("/var/lib/rabbitmq")),
            user: "rabbitmq",
        };
        let denied = |p: &Path| -> io::Result<CookieFile> {
            if p.starts_with("/opt/app") {
                Err(io::ErrorKind::NotFound.into())
            } else {
                Err(io::ErrorKind::PermissionDenied.into())
            }
        };
        match resolve_cookie(&inp, &denied) {
            CookieLookup::Unreadable { source, reason } => {
                assert_eq!(source.to_string(), "$HOME/.erlang.cookie of user rabbitmq");
                assert_eq!(reason, "permission denied: run as user rabbitmq or root");
            }
            other => panic!("{other:?}"),
        }
        let readable = |_: &Path| -> io::Result<CookieFile> {
            Ok(CookieFile {
                text: "\n".into(),
                mode: 0o400,
            })
        };
        assert_eq!(resolve_cookie(&inp, &readable), CookieLookup::NotFound);
    }

    #[test]
    fn fqdn_from_resolver_domain() {
        let f = Fake::new();
        fs::write(f.tmp.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::write(
            f.tmp.path().join("etc/resolv.conf"),
            "# x\nsearch corp.example\nnameserver 10.0.0.1\n",
        )
        .unwrap();
        f.add(&beam(1000, &["-name", "db"]));
        assert_eq!(f.only().name.as_deref(), Some("db@web1.corp.example"));
        fs::remove_file(f.tmp.path().join("etc/resolv.conf")).unwrap();
        assert_eq!(f.only().name.as_deref(), Some("db@web1"));
    }

    #[test]
    fn missing_proc_root_is_empty() {
        assert!(scan(Path::new("/nonexistent/proc")).is_empty());
    }
}
