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

use crate::node::Cookie;

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

impl CookieSource {
    /// The file, for a source that is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CookieSource::ReleaseCookieFile(p)
            | CookieSource::HomeCookieFile { path: p, .. }
            | CookieSource::ConfigCookieFile { path: p, .. } => Some(p),
            CookieSource::Argv | CookieSource::ReleaseCookieEnv => None,
        }
    }

    /// The source and its file: `$HOME/.erlang.cookie of user app
    /// (/srv/app/.erlang.cookie)`.
    pub fn with_path(&self) -> String {
        match self.path() {
            Some(p) => format!("{self} ({})", p.display()),
            None => self.to_string(),
        }
    }
}

/// The outcome of looking for a node's cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    #[default]
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

/// How a node's name was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameFrom {
    /// `-sname`/`-name` in its arguments.
    Argv,
    /// The EPMD entry whose port it listens on (read from its sockets).
    EpmdSocket,
    /// The EPMD entry whose port a socket of its user listens on: its own
    /// sockets could not be read, the host's TCP table (which says which user
    /// owns each listening socket) could.
    EpmdUserPort,
    /// The only EPMD entry no other node claims: nothing else could be read.
    EpmdLeft,
}

impl fmt::Display for NameFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameFrom::Argv => "its arguments",
            NameFrom::EpmdSocket => "EPMD, by the port it listens on",
            NameFrom::EpmdUserPort => "EPMD, by a port its user listens on",
            NameFrom::EpmdLeft => "EPMD, the only name no other node has",
        })
    }
}

/// Who may read what another user's process hides: `run as user app or
/// root`, or `run as root` for root's own.
pub fn run_as(user: &str) -> String {
    if user == "root" {
        "run as root".to_string()
    } else {
        format!("run as user {user} or root")
    }
}

/// What /proc did not let etop read of a process (another user's, when
/// etop does not run as root or as that user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreadable {
    /// `/proc/PID/fd`: which sockets it listens on.
    Sockets,
    /// `/proc/PID/environ`: HOME, RELEASE_*, ERL_EPMD_PORT.
    Environment,
    /// `/proc/PID/root`, `cwd`: its files as it sees them (etop then reads
    /// the same paths on this host's filesystem).
    Files,
}

impl Unreadable {
    /// The /proc entry, for messages.
    pub fn entry(self) -> &'static str {
        match self {
            Unreadable::Sockets => "fd",
            Unreadable::Environment => "environ",
            Unreadable::Files => "root",
        }
    }
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unreadable::Sockets => "its sockets",
            Unreadable::Environment => "its environment",
            Unreadable::Files => "its files",
        })
    }
}

/// A BEAM running on this host.
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// How `name` was learnt.
    pub name_from: Option<NameFrom>,
    /// TCP ports the process listens on, IPv4 and IPv6, sorted and
    /// deduplicated; empty when its sockets cannot be read.
    pub listen_ports: Vec<u16>,
    /// When its sockets cannot be read: the TCP ports sockets of its user
    /// listen on in its network namespace (the TCP table says who owns a
    /// socket, not which process holds it); `None` when that table cannot
    /// be read either.
    pub user_listen_ports: Option<Vec<u16>>,
    /// The EPMD it registers with: `-epmd_port`, else `ERL_EPMD_PORT` from its
    /// environment; `None` for the default.
    pub epmd_port: Option<u16>,
    /// A temporary node: a release's `rpc-XXXX-NAME` or `rem-XXXX-NAME`
    /// (`bin/app rpc`, `bin/app remote`), or an `erl -remsh` shell. Never
    /// the node etop picks by itself.
    pub temporary: bool,
    /// `-proto_dist`, e.g. "inet_tls" or "inet6_tcp".
    pub proto_dist: Option<String>,
    /// For a TLS node, the client options etop can attach with; `None` for
    /// plain TCP.
    pub dist_tls: Option<ssl_dist::DistTls>,
    /// `-epmd_module`: the node registers somewhere other than EPMD.
    pub epmd_module: Option<String>,
    /// `RELEASE_ROOT` from the environment, else the part before
    /// `/releases/<vsn>/` in `-boot`, `-config`, `-args_file` or `-root`.
    pub release_root: Option<PathBuf>,
    /// `-home` (what erl reads the cookie file under, set from HOME), else
    /// HOME from the environment.
    pub home: Option<PathBuf>,
    /// OTP version, e.g. "26.2.5", from the `OTP_VERSION` file of the OTP
    /// install the beam runs from; for a release with its own erts (which
    /// has no such file), the OTP major release its erts version belongs to,
    /// e.g. "25".
    pub otp_release: Option<String>,
    /// The erts version the beam runs, e.g. "13.1.5": from the `erts-X`
    /// directory of its executable or `-bindir`, else the release's
    /// `releases/start_erl.data`.
    pub erts_version: Option<String>,
    pub cookie: CookieLookup,
    pub environ_readable: bool,
    /// What /proc did not let etop read.
    pub unreadable: Vec<Unreadable>,
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

/// What the EPMDs on this host know: the default one (`ERL_EPMD_PORT` or
/// 4369) and those nodes registered with by their own `-epmd_port`, each
/// by its port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpmdNames {
    pub default_port: u16,
    /// Names and distribution ports, by EPMD port; an EPMD that did not
    /// answer knows nothing.
    pub by_port: std::collections::BTreeMap<u16, Vec<(String, u16)>>,
}

impl EpmdNames {
    /// The EPMD on the default port alone.
    pub fn single(default_port: u16, names: Vec<(String, u16)>) -> EpmdNames {
        EpmdNames {
            default_port,
            by_port: [(default_port, names)].into_iter().collect(),
        }
    }

    /// The port of the EPMD `n` registers with.
    pub fn port_for(&self, n: &LocalNode) -> u16 {
        n.epmd_port.unwrap_or(self.default_port)
    }

    /// What the EPMD `n` registers with knows.
    pub fn for_node(&self, n: &LocalNode) -> &[(String, u16)] {
        self.by_port
            .get(&self.port_for(n))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Names nodes that have no name in their argv (they start distribution
/// from inside Erlang, `net_kernel:start/2`, as RabbitMQ does), from what
/// their EPMD knows, with the strongest evidence /proc gives:
///
/// 1. its sockets: the entry whose port it listens on;
/// 2. when its sockets cannot be read (another user's process): the entry,
///    no other node's, whose port a socket of its user listens on, when it
///    is the only such node of that user;
/// 3. when not even that can be read: the only entry no other node has, when
///    it is the only node left unnamed.
///
/// Nodes already named are left alone.
pub fn match_epmd(nodes: &mut [LocalNode], epmd: &EpmdNames, host: &str) {
    use std::collections::HashSet;
    let kind = if host.contains('.') {
        NameKind::Long
    } else {
        NameKind::Short
    };
    let set = |n: &mut LocalNode, name: &str, from: NameFrom| {
        n.name = Some(format!("{name}@{host}"));
        // EPMD does not say; a dotted host is what a long-names node registers under.
        n.name_kind = Some(kind);
        n.name_from = Some(from);
    };
    for n in nodes.iter_mut().filter(|n| n.name.is_none()) {
        let found = epmd
            .for_node(n)
            .iter()
            .find(|(_, port)| n.listen_ports.contains(port))
            .map(|(name, _)| name.clone());
        if let Some(name) = found {
            set(n, &name, NameFrom::EpmdSocket);
        }
    }
    // Entries some node already has: by its name, or by a port it listens on.
    let claimed = |nodes: &[LocalNode]| -> HashSet<(u16, String)> {
        let mut c = HashSet::new();
        for n in nodes {
            let port = epmd.port_for(n);
            for (name, dist) in epmd.for_node(n) {
                let by_name = n
                    .name
                    .as_deref()
                    .is_some_and(|full| full.split('@').next() == Some(name.as_str()));
                if by_name || n.listen_ports.contains(dist) {
                    c.insert((port, name.clone()));
                }
            }
        }
        c
    };
    let blind = |n: &LocalNode| n.name.is_none() && n.unreadable.contains(&Unreadable::Sockets);
    let taken = claimed(nodes);
    let free = |n: &LocalNode, taken: &HashSet<(u16, String)>| -> Vec<String> {
        let port = epmd.port_for(n);
        epmd.for_node(n)
            .iter()
            .filter(|(name, _)| !taken.contains(&(port, name.clone())))
            .map(|(name, _)| name.clone())
            .collect()
    };
    let mut named = Vec::new();
    for (i, n) in nodes.iter().enumerate().filter(|(_, n)| blind(n)) {
        let Some(user_ports) = &n.user_listen_ports else {
            continue;
        };
        let same_user = nodes
            .iter()
            .filter(|m| blind(m) && m.uid == n.uid && epmd.port_for(m) == epmd.port_for(n))
            .count();
        let port = epmd.port_for(n);
        let mine: Vec<&String> = epmd
            .for_node(n)
            .iter()
            .filter(|(name, dist)| {
                user_ports.contains(dist) && !taken.contains(&(port, name.clone()))
            })
            .map(|(name, _)| name)
            .collect();
        if let ([name], 1) = (mine.as_slice(), same_user) {
            named.push((i, (*name).clone(), NameFrom::EpmdUserPort));
        }
    }
    for (i, name, from) in named {
        set(&mut nodes[i], &name, from);
    }
    let taken = claimed(nodes);
    let left: Vec<usize> = (0..nodes.len())
        .filter(|&i| blind(&nodes[i]) && nodes[i].user_listen_ports.is_none())
        .collect();
    let unnamed = nodes.iter().filter(|n| n.name.is_none()).count();
    if let ([i], 1) = (left.as_slice(), unnamed)
        && let [name] = free(&nodes[*i], &taken).as_slice()
    {
        let name = name.clone();
        set(&mut nodes[*i], &name, NameFrom::EpmdLeft);
    }
}

/// Whether a node name is one of a release's temporary shells: Elixir's
/// `bin/app rpc` and `bin/app remote` start hidden nodes named
/// `rpc-XXXX-NODE` and `rem-XXXX-NODE` (XXXX random hex, or decimal on
/// Windows).
pub fn is_release_shell_name(name: &str) -> bool {
    let short = name.split('@').next().unwrap_or(name);
    let Some(rest) = short
        .strip_prefix("rpc-")
        .or_else(|| short.strip_prefix("rem-"))
    else {
        return false;
    };
    match rest.split_once('-') {
        Some((rand, node)) => {
            !rand.is_empty() && rand.chars().all(|c| c.is_ascii_hexdigit()) && !node.is_empty()
        }
        None => false,
    }
}

/// This host's fully qualified name, as a `-name` node without a host part
/// gets it; `None` when nothing says.
pub fn host_fqdn(proc_root: &Path) -> Option<String> {
    describe::HostNames::new(Path::new("/etc"), &crate::host::hostname_in(proc_root)).fqdn
}

/// Every live BEAM on this host, sorted by pid.
pub fn scan(proc_root: &Path) -> Vec<LocalNode> {
    scan_with(
        proc_root,
        Path::new("/etc"),
        &crate::host::hostname_in(proc_root),
    )
}

/// [`scan`] with the `/etc` used for user names and the host name given.
pub fn scan_with(proc_root: &Path, etc_root: &Path, hostname: &str) -> Vec<LocalNode> {
    #[cfg(target_os = "linux")]
    {
        linux::scan_with(proc_root, etc_root, hostname)
    }
    #[cfg(not(target_os = "linux"))]
    {
        other::scan_with(proc_root, etc_root, hostname)
    }
}

mod describe;
pub mod erl_term;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(target_os = "linux"))]
mod other;
pub mod ssl_dist;

#[cfg(test)]
mod tests;

#[cfg(all(test, target_os = "linux"))]
mod fake_proc_tests;
