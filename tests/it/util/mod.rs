//! The harness for etop's integration tests: real `erl` nodes running the demo
//! scenario, and the real `etop` binary run in a hermetic environment.
//!
//! Everything here is bounded in time: a node that never comes up, an etop that
//! hangs, or a frame that never arrives fails the test instead of blocking CI.
//! Every node is killed when its `Node` is dropped, and halts itself after
//! `NodeOpts::seconds` anyway in case the test process dies first.

use etop::dist::term::{self, Term};
use etop::dist::{ConnectOpts, Connection};
use etop::node::{Cookie, CookieOrigin, NodeName};
pub mod pty;

use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any one etop run may take before it is killed and the test fails.
pub const ETOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node may take to register with EPMD and start the scenario.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Searches PATH like a shell does.
fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The `erl` executable. These tests need a real node: a missing Erlang is an
/// error of the test machine, never a reason to skip.
pub fn erl() -> PathBuf {
    which("erl").unwrap_or_else(|| {
        panic!(
            "erl not found: install Erlang with `apt-get install -y erlang-nox` (make test does it)"
        )
    })
}

/// The directory holding the compiled demo scenario, compiled once per test
/// run (all tests share it).
pub fn demo_ebin() -> &'static Path {
    static EBIN: OnceLock<PathBuf> = OnceLock::new();
    EBIN.get_or_init(|| {
        erl();
        let erlc = which("erlc").unwrap_or_else(|| {
            panic!("erlc not found: install Erlang with `apt-get install -y erlang-nox`")
        });
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("erl-test");
        std::fs::create_dir_all(&dir).expect("create the erl-test directory");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/etop_demo.erl");
        let out = Command::new(erlc)
            .arg("-o")
            .arg(&dir)
            .arg(&src)
            .output()
            .expect("run erlc");
        assert!(
            out.status.success(),
            "erlc {} failed:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Random hex, different for every call in this and any other test process:
/// node names and cookies must never collide with a node another test (or
/// another checkout's test run) has started.
pub fn random_hex() -> String {
    use std::hash::BuildHasher;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = std::collections::hash_map::RandomState::new().hash_one((n, nanos, std::process::id()));
    format!("{h:016x}")
}

/// The host part of `-sname` nodes on this machine, as etop computes it.
pub fn short_host() -> String {
    etop::host::short_hostname()
}

/// What the demo node runs (see demo/etop_demo.erl). The defaults are a quiet
/// node: no busy loop and no flood unless a test asks for them.
#[derive(Debug, Clone)]
pub struct NodeOpts {
    /// `-name NAME@127.0.0.1` instead of `-sname NAME`.
    pub long: bool,
    pub idle: u32,
    pub busy: u32,
    pub flood_per_sec: u32,
    pub flood_cap: u32,
    pub ets_rows_per_sec: u32,
    /// The node halts itself after this long, so a leaked node goes away.
    pub seconds: u32,
    /// Start without `-setcookie`: the node makes up a cookie in its
    /// `$HOME/.erlang.cookie`, which the harness reads and then deletes. etop
    /// then cannot find the cookie on the target and needs one of its own
    /// sources.
    pub cookie_hidden: bool,
    /// How the node gets its name (see [`Naming`]).
    pub naming: Naming,
    /// The cookie to use instead of a random one.
    pub cookie: Option<String>,
    /// Start without `-setcookie`, with the cookie (and a trailing newline,
    /// as `echo` writes it) in the node's own `$HOME/.erlang.cookie`, mode
    /// 0400, left there for etop to find.
    pub cookie_in_home: bool,
    /// 1 KB UDP datagrams a second from the registered `metrics_exporter`
    /// to a socket on 127.0.0.1.
    pub udp_per_sec: u32,
    /// More erl arguments, before the harness's own (`+S 1`, `-config PATH`).
    pub erl_args: Vec<String>,
    /// More environment variables for the node (`RELEASE_ROOT`, ...).
    pub env: Vec<(String, String)>,
    /// The files the harness's own connection (`eval`) uses for a node
    /// started with `-proto_dist inet_tls` (in `erl_args`).
    pub tls: Option<etop::node::discover::ssl_dist::TlsFiles>,
    /// Ready when the node prints that its scenario runs, not when the
    /// harness can `eval` there: for nodes no client may attach to (a
    /// certificate etop must refuse). `eval` fails on them.
    pub ready_by_log: bool,
    /// The part before '@' instead of a random one: to start a node again
    /// under the name of one that stopped, or a name of a given shape.
    pub name: Option<String>,
    /// Run the node as this user (its HOME and cookie file are theirs);
    /// needs root.
    pub run_as: Option<UserIds>,
    /// The program to start instead of `erl`: a release's own
    /// `erts-X/bin/erlexec`, whose ROOTDIR, BINDIR, EMU and PROGNAME go in
    /// `env`.
    pub program: Option<PathBuf>,
}

/// How a test node becomes a distributed node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// `-sname NAME` (or `-name` with `long`) in argv.
    #[default]
    Argv,
    /// No name in argv: the node starts distribution from inside Erlang,
    /// `net_kernel:start([NAME, shortnames])`, like some services do.
    Runtime,
    /// Not distributed at all: no name, no EPMD entry, no `eval`.
    None,
}

impl NodeOpts {
    /// The EPMD the node registers with when not the default one: its
    /// `-epmd_port`, else its `ERL_EPMD_PORT`.
    pub fn own_epmd_port(&self) -> Option<u16> {
        let argv = self
            .erl_args
            .windows(2)
            .find(|w| w[0] == "-epmd_port")
            .map(|w| w[1].clone());
        let env = || {
            self.env
                .iter()
                .find(|(k, _)| k == "ERL_EPMD_PORT")
                .map(|(_, v)| v.clone())
        };
        argv.or_else(env).and_then(|p| p.parse().ok())
    }
}

impl Default for NodeOpts {
    fn default() -> Self {
        NodeOpts {
            long: false,
            idle: 100,
            busy: 0,
            flood_per_sec: 0,
            flood_cap: 200_000,
            ets_rows_per_sec: 0,
            seconds: 300,
            cookie_hidden: false,
            naming: Naming::Argv,
            cookie: None,
            cookie_in_home: false,
            udp_per_sec: 0,
            erl_args: Vec::new(),
            env: Vec::new(),
            tls: None,
            ready_by_log: false,
            name: None,
            run_as: None,
            program: None,
        }
    }
}

/// How the harness's own hidden node names begin (the connection `eval`
/// uses), so that a test can tell it from etop's on the node.
pub const EVAL_NAME_PREFIX: &str = "etop_t_eval_";

/// What a node that is not distributed prints when its scenario runs: the
/// harness cannot ask it over distribution.
const READY_MARK: &str = "etop_test_node_ready";

/// A running demo node, killed on drop.
pub struct Node {
    /// The part before '@', which is also what a bare NODE argument means.
    /// (With `Naming::None` the node has no name: this one is unused.)
    pub name: String,
    /// `name@host`, as etop is given it.
    pub full: String,
    pub cookie: String,
    pub opts: NodeOpts,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// The harness's own connection for `eval`, kept open so that the
    /// processes it costs the node stay the same between two evals.
    conn: Mutex<Option<Connection>>,
}

impl Node {
    pub fn start(opts: NodeOpts) -> Node {
        assert!(
            !(opts.cookie_hidden && (opts.cookie_in_home || opts.cookie.is_some())),
            "cookie_hidden makes the node invent its cookie: it cannot be given"
        );
        assert!(
            !(opts.long && opts.naming == Naming::Runtime),
            "Naming::Runtime starts short names only"
        );
        let ebin = demo_ebin();
        let dir = tempfile::tempdir().expect("temp dir for the node");
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| format!("etop_t_{}", random_hex()));
        // With `cookie_hidden` the node makes up its own; see `wait_ready`.
        let cookie = opts
            .cookie
            .clone()
            .unwrap_or_else(|| format!("C{}", random_hex().to_uppercase()));
        let host = if opts.long {
            "127.0.0.1".to_string()
        } else {
            short_host()
        };
        let full = format!("{name}@{host}");
        let log = dir.path().join("node.log");
        let log_file = std::fs::File::create(&log).expect("node log file");
        let mut scenario = format!(
            "etop_demo:start(#{{idle => {}, busy => {}, flood_per_sec => {}, flood_cap => {}, \
             ets_rows_per_sec => {}, udp_per_sec => {}, seconds => {}}})",
            opts.idle,
            opts.busy,
            opts.flood_per_sec,
            opts.flood_cap,
            opts.ets_rows_per_sec,
            opts.udp_per_sec,
            opts.seconds
        );
        match opts.naming {
            Naming::Argv => {}
            Naming::Runtime => {
                scenario =
                    format!("{{ok, _}} = net_kernel:start(['{name}', shortnames]), {scenario}")
            }
            Naming::None => {
                scenario = format!("{scenario}, io:format(\"~s~n\", [\"{READY_MARK}\"])")
            }
        }
        if opts.ready_by_log && opts.naming != Naming::None {
            scenario = format!("{scenario}, io:format(\"~s~n\", [\"{READY_MARK}\"])");
        }
        if opts.cookie_in_home {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(".erlang.cookie");
            std::fs::write(&p, format!("{cookie}\n")).expect("write the node's cookie file");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400))
                .expect("chmod the node's cookie file");
        }
        // Another user's node: its HOME (and the cookie in it) is its own,
        // and it loads the scenario from there, wherever this checkout is.
        let ebin = match opts.run_as {
            Some(ids) => {
                let own = dir.path().join("ebin");
                std::fs::create_dir_all(&own).expect("the node's ebin");
                std::fs::copy(ebin.join("etop_demo.beam"), own.join("etop_demo.beam"))
                    .expect("copy etop_demo.beam");
                chown_tree(dir.path(), ids);
                own
            }
            None => ebin.to_path_buf(),
        };
        let mut cmd = Command::new(opts.program.clone().unwrap_or_else(erl));
        if let Some(ids) = opts.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(ids.uid).gid(ids.gid);
        }
        cmd.args(&opts.erl_args);
        match (opts.naming, opts.long) {
            (Naming::Argv, true) => {
                cmd.arg("-name").arg(&full);
            }
            (Naming::Argv, false) => {
                cmd.arg("-sname").arg(&name);
            }
            (Naming::Runtime | Naming::None, _) => {}
        }
        // The default limit is about a million processes.
        if opts.idle + opts.busy > 500_000 {
            cmd.arg("+P").arg("2000000");
        }
        if !opts.cookie_hidden && !opts.cookie_in_home && opts.naming != Naming::None {
            cmd.arg("-setcookie").arg(&cookie);
        }
        cmd.arg("-noshell")
            .arg("-pa")
            .arg(&ebin)
            .arg("-eval")
            .arg(&scenario)
            // erl needs a HOME; an empty one keeps the operator's
            // ~/.erlang.cookie out of the test.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file);
        let child = cmd.spawn().expect("spawn erl");
        let mut node = Node {
            name,
            full,
            cookie,
            opts,
            child,
            log,
            _dir: dir,
            conn: Mutex::new(None),
        };
        node.wait_ready();
        node
    }

    /// Starts several nodes at once (each start mostly waits for erl to
    /// boot), in the order given.
    pub fn start_all(opts: Vec<NodeOpts>) -> Vec<Node> {
        std::thread::scope(|s| {
            let handles: Vec<_> = opts
                .into_iter()
                .map(|o| s.spawn(move || Node::start(o)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// The OS pid of the node's `beam.smp` (erl execs the VM).
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's HOME, where its `.erlang.cookie` is with `cookie_in_home`.
    pub fn home(&self) -> &Path {
        self._dir.path()
    }

    /// Waits until EPMD knows the node and the scenario has started (its
    /// `metrics_worker` is registered after all idle and busy processes).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + NODE_START_TIMEOUT;
        if self.opts.naming == Naming::None {
            while !self.log().contains(READY_MARK) {
                self.assert_alive("starting the demo scenario");
                assert!(
                    Instant::now() < deadline,
                    "node (pid {}) did not start the demo scenario within {:?}\n{}",
                    self.os_pid(),
                    NODE_START_TIMEOUT,
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let epmd_port = self.opts.own_epmd_port();
        let registered = || {
            etop::node::epmd::names_at("localhost", epmd_port, Duration::from_secs(1))
                .map(|names| names.iter().any(|(n, _)| *n == self.name))
                .unwrap_or(false)
        };
        while !registered() {
            self.assert_alive("registering with EPMD");
            assert!(
                Instant::now() < deadline,
                "node {} did not register with EPMD within {:?}\n{}",
                self.full,
                NODE_START_TIMEOUT,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.opts.ready_by_log {
            while !self.log().contains(READY_MARK) {
                self.assert_alive("starting the demo scenario");
                assert!(
                    Instant::now() < deadline,
                    "node {} did not start the demo scenario within {:?}\n{}",
                    self.full,
                    NODE_START_TIMEOUT,
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        if self.opts.cookie_hidden {
            // The auth server writes the file before net_kernel registers
            // with EPMD, so it is there by now.
            let file = self._dir.path().join(".erlang.cookie");
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "node {}: no {}: {e}\n{}",
                    self.full,
                    file.display(),
                    self.log()
                )
            });
            self.cookie = text.trim().to_string();
            assert!(!self.cookie.is_empty(), "empty {}", file.display());
            std::fs::remove_file(&file).expect("remove the node's cookie file");
        }
        while self.eval("erlang:whereis(metrics_worker)") == "'undefined'" {
            assert!(
                Instant::now() < deadline,
                "node {} did not start the demo scenario within {:?}\n{}",
                self.full,
                NODE_START_TIMEOUT,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_alive(&self, doing: &str) {
        // `try_wait` needs `&mut`; /proc tells the same without it.
        let pid = self.child.id();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        assert!(
            !state.is_empty() && !zombie,
            "node {} exited while {doing}\n{}",
            self.full,
            self.log()
        );
    }

    /// The node's own output (erl's stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "--- node {} log ---\n{text}--- end of node log ---",
            self.full
        )
    }

    /// How to connect to this node under our own name `name`.
    pub fn connect_opts_for(&self, name: &str) -> ConnectOpts {
        ConnectOpts {
            our_name: name.to_string(),
            ..self.connect_opts()
        }
    }

    fn connect_opts(&self) -> ConnectOpts {
        let target = NodeName::parse(&self.full, &short_host()).expect("our node name parses");
        ConnectOpts {
            mode: target.mode(),
            target,
            port: None,
            epmd_port: self.opts.own_epmd_port(),
            cookie: Cookie::new(&self.cookie).expect("non-empty cookie"),
            cookie_origin: CookieOrigin::Flag,
            our_name: format!("{EVAL_NAME_PREFIX}{}", &random_hex()[..8]),
            // Generous: the machine may be busy with other nodes (a TLS
            // handshake on a loaded machine has taken over 5 s).
            timeout: Duration::from_secs(20),
            tls: self.opts.tls.clone(),
        }
    }

    /// Evaluates Erlang expressions on the node through etop's own connection
    /// layer, the way `agent::Agent::start` does (erl_scan, erl_parse,
    /// erl_eval through rex), and returns the value.
    pub fn eval_term(&self, src: &str) -> Term {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let conn = Connection::connect(&self.connect_opts()).unwrap_or_else(|e| {
                panic!(
                    "harness: cannot connect to {}: {e}\n{}",
                    self.full,
                    self.log()
                )
            });
            *guard = Some(conn);
        }
        let conn = guard.as_mut().expect("connected above");
        let fail = |what: &str, detail: String| -> ! {
            panic!(
                "harness: eval of `{src}` on {} failed at {what}: {detail}\n{}",
                self.full,
                self.log()
            )
        };
        let timeout = Duration::from_secs(15);
        let src = if src.trim_end().ends_with('.') {
            src.to_string()
        } else {
            format!("{src}.")
        };
        let scanned = conn
            .rpc("erl_scan", "string", vec![term::charlist(&src)], timeout)
            .unwrap_or_else(|e| fail("erl_scan:string/1", e.to_string()));
        let tokens = match term::as_tuple(&scanned) {
            Some([ok, tokens, _]) if term::is_atom(ok, "ok") => tokens.clone(),
            _ => fail("erl_scan:string/1", scanned.to_string()),
        };
        let parsed = conn
            .rpc("erl_parse", "parse_exprs", vec![tokens], timeout)
            .unwrap_or_else(|e| fail("erl_parse:parse_exprs/1", e.to_string()));
        let exprs = match term::as_tuple(&parsed) {
            Some([ok, exprs]) if term::is_atom(ok, "ok") => exprs.clone(),
            _ => fail("erl_parse:parse_exprs/1", parsed.to_string()),
        };
        let value = conn
            .rpc(
                "erl_eval",
                "exprs",
                vec![exprs, term::list(vec![])],
                timeout,
            )
            .unwrap_or_else(|e| fail("erl_eval:exprs/2", e.to_string()));
        match term::as_tuple(&value) {
            Some([tag, v, _bindings]) if term::is_atom(tag, "value") => v.clone(),
            _ => fail("erl_eval:exprs/2", value.to_string()),
        }
    }

    /// `eval_term` as text: atoms print quoted (`'undefined'`), integers bare.
    pub fn eval(&self, src: &str) -> String {
        self.eval_term(src).to_string()
    }

    pub fn eval_i64(&self, src: &str) -> i64 {
        let t = self.eval_term(src);
        term::as_i64(&t).unwrap_or_else(|| panic!("`{src}` gave {t}, not an integer"))
    }

    /// Drops the harness's connection, so that the node sees no hidden node
    /// but the ones a test starts.
    pub fn disconnect(&self) {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.disconnect();
        // Only the process this harness started, by its pid (erl execs the
        // VM, so this is beam.smp itself).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Formats a pid term as etop and the Erlang shell print local pids.
pub fn local_pid(t: &Term) -> String {
    match t {
        Term::Pid(p) => format!("<0.{}.{}>", p.id, p.serial),
        other => panic!("{other} is not a pid"),
    }
}

/// Does `s` look like a local pid, `<0.N.M>`?
pub fn is_local_pid(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("<0.").and_then(|r| r.strip_suffix('>')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split('.').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A port on loopback that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A proc filesystem that shows only some processes: a temp dir with
/// `<pid> -> /proc/<pid>` for each, and the host-wide files etop reads
/// (`sys/kernel/hostname`, `stat`, `loadavg`). `etop --proc-root DIR` then
/// sees only the nodes of this test, whatever else runs on the host.
pub struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    pub fn new(pids: &[u32]) -> FakeProc {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("temp dir for a fake /proc");
        let root = dir.path();
        for pid in pids {
            symlink(format!("/proc/{pid}"), root.join(pid.to_string())).expect("symlink a pid");
        }
        std::fs::create_dir_all(root.join("sys/kernel")).expect("create sys/kernel");
        std::fs::copy(
            "/proc/sys/kernel/hostname",
            root.join("sys/kernel/hostname"),
        )
        .expect("copy the hostname");
        for f in ["stat", "loadavg"] {
            symlink(Path::new("/proc").join(f), root.join(f)).expect("symlink a host file");
        }
        FakeProc { dir }
    }

    /// The value for `--proc-root`.
    pub fn arg(&self) -> String {
        self.dir
            .path()
            .to_str()
            .expect("temp paths are UTF-8")
            .to_string()
    }
}

/// The login name of the user the tests run as, as etop names a node's
/// user (the uid when /etc/passwd does not know it).
pub fn our_user() -> String {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let mut cols = l.split(':');
            let (name, _, id) = (cols.next()?, cols.next()?, cols.next()?);
            (id.parse() == Ok(uid)).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

// --- other users ---------------------------------------------------------

/// A user's uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
}

/// `chown -R` of a directory the harness made.
fn chown_tree(path: &Path, ids: UserIds) {
    std::os::unix::fs::lchown(path, Some(ids.uid), Some(ids.gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("read a dir to chown") {
            chown_tree(&entry.expect("a dir entry").path(), ids);
        }
    }
}

/// Whether every user may run or read `path`: every directory above it
/// searchable and the file itself readable by others.
fn reachable_by_all(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    path.ancestors().skip(1).all(|d| mode(d) & 0o001 != 0) && mode(path) & 0o004 != 0
}

/// A user made for one test and removed after it, also when the test
/// fails (on drop). Its name is unique to this test run and short
/// (`etop` + a letter + 7 hex digits). Only root can make users: the tests
/// that need them fail when not run as root, as they are in CI.
pub struct TestUser {
    pub name: String,
    pub ids: UserIds,
    /// A home of its own (it owns it), removed with it.
    pub home: tempfile::TempDir,
}

impl TestUser {
    pub fn create(tag: char) -> TestUser {
        // SAFETY: getuid(2) cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            uid, 0,
            "this test runs a node as one user and etop as another: it creates \
             temporary users, which needs root (run the tests as root, as CI does)"
        );
        let name = format!("etop{tag}{}", &random_hex()[..7]);
        let home = tempfile::Builder::new()
            .prefix("etop-user-")
            .tempdir()
            .expect("a home for a test user");
        let out = Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg("--home-dir")
            .arg(home.path())
            .arg(&name)
            .output()
            .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
        assert!(
            out.status.success(),
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The guard first: a failure below must still remove the user.
        let mut user = TestUser {
            name,
            ids: UserIds { uid: 0, gid: 0 },
            home,
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .arg(flag)
                .arg(&user.name)
                .output()
                .expect("run id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("id {flag} {}: {out:?}", user.name))
        };
        let ids = UserIds {
            uid: id("-u"),
            gid: id("-g"),
        };
        user.ids = ids;
        chown_tree(user.home.path(), user.ids);
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Its processes are the test's nodes and etops, stopped by their own
        // guards first (declared after this one).
        let _ = Command::new("userdel").arg(&self.name).output();
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// An EPMD of its own on a free port, stopped (by its pid) on drop: for
/// nodes started with `-epmd_port` or `ERL_EPMD_PORT`.
pub struct PrivateEpmd {
    pub port: u16,
    child: Child,
}

impl PrivateEpmd {
    pub fn start() -> PrivateEpmd {
        let epmd = which("epmd").unwrap_or_else(|| {
            panic!("epmd not found: install Erlang with `apt-get install -y erlang-nox`")
        });
        let port = free_port();
        // In the foreground, so that this process is EPMD itself.
        let child = Command::new(epmd)
            .arg("-port")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start epmd");
        let e = PrivateEpmd { port, child };
        wait_until(Duration::from_secs(10), "the private EPMD answers", || {
            etop::node::epmd::names_at("localhost", Some(port), Duration::from_secs(1)).is_ok()
        });
        e
    }
}

impl Drop for PrivateEpmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One etop invocation, with a hermetic environment: PATH, an empty HOME of
/// its own, and only the variables the test adds.
pub struct Etop {
    cmd: Command,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    home: tempfile::TempDir,
}

pub fn etop<I, S>(args: I) -> Etop
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let home = tempfile::tempdir().expect("temp HOME");
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etop"));
    cmd.args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdin(Stdio::null());
    Etop {
        cmd,
        args,
        envs: Vec::new(),
        home,
    }
}

impl Etop {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// An environment variable whose value need not be UTF-8.
    pub fn env_os(mut self, key: &str, value: &std::ffi::OsStr) -> Self {
        self.cmd.env(key, value);
        self.envs
            .push((key.to_string(), value.to_string_lossy().into_owned()));
        self
    }

    /// Runs etop as another user (uid and gid alike); needs root.
    pub fn uid(self, id: u32) -> Self {
        self.run_as(UserIds { uid: id, gid: id })
    }

    /// Runs etop as `user`, an ordinary user, with the temp HOME its own.
    pub fn user(self, user: &TestUser) -> Self {
        let mut run = self.run_as(user.ids);
        run.envs.push(("USER".into(), user.name.clone()));
        run.cmd.env("USER", &user.name);
        run
    }

    /// Runs etop under `ids`, with the temp HOME theirs. A binary they may
    /// not reach (a checkout in a private directory, as `mktemp -d` makes)
    /// is run from a copy in that HOME.
    fn run_as(mut self, ids: UserIds) -> Self {
        use std::os::unix::process::CommandExt;
        let bin = Path::new(env!("CARGO_BIN_EXE_etop"));
        if !reachable_by_all(bin) {
            let copy = self.home.path().join("etop");
            std::fs::copy(bin, &copy).expect("copy etop for another user");
            let mut cmd = Command::new(&copy);
            cmd.args(&self.args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", self.home.path())
                .envs(self.envs.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null());
            self.cmd = cmd;
        }
        chown_tree(self.home.path(), ids);
        self.cmd.uid(ids.uid).gid(ids.gid);
        self
    }

    /// The usual way to pass a node's cookie in these tests.
    pub fn cookie_env(self, cookie: &str) -> Self {
        self.env("ERLANG_COOKIE", cookie)
    }

    /// Starts etop with fork(2) rather than std's posix_spawn (vfork), so
    /// that `Running::wait_measured` reports etop's own peak memory: a
    /// vforked child's `ru_maxrss` starts at its parent's peak (here, the
    /// test binary's).
    pub fn own_memory(mut self) -> Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: the hook does nothing; its mere presence makes std fork.
        unsafe {
            self.cmd.pre_exec(|| Ok(()));
        }
        self
    }

    /// The temp HOME etop runs with.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Writes `$HOME/.erlang.cookie` as erl does (owner read-only).
    pub fn home_cookie(self, contents: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let p = self.home.path().join(".erlang.cookie");
        std::fs::write(&p, contents).expect("write ~/.erlang.cookie");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400))
            .expect("chmod ~/.erlang.cookie");
        self
    }

    fn cmdline(&self) -> String {
        let envs: Vec<String> = self.envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!("{}etop {}", envs.concat(), self.args.join(" "))
    }

    /// Runs etop to completion; kills it and fails the test after
    /// `ETOP_TIMEOUT`.
    pub fn run(self) -> Output {
        self.spawn().wait(ETOP_TIMEOUT)
    }

    /// Starts etop with its output piped; lines of stdout arrive as they are
    /// printed.
    pub fn spawn(self) -> Running {
        self.spawn_inner(None)
    }

    /// Like `etop ... | head -n N`: stdout is read for `lines` lines, then
    /// its read end is closed.
    pub fn spawn_head(self, lines: usize) -> Running {
        self.spawn_inner(Some(lines))
    }

    fn spawn_inner(mut self, limit: Option<usize>) -> Running {
        let cmdline = self.cmdline();
        let started = Instant::now();
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let out_reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut n = 0;
            loop {
                if limit.is_some_and(|l| n >= l) {
                    // Dropping `r` closes the pipe's read end, as `head` does
                    // when it exits.
                    break;
                }
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        n += 1;
                        if tx.send((Instant::now(), line)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Running {
            cmdline,
            child,
            started,
            lines,
            seen: Vec::new(),
            out_reader: Some(out_reader),
            err_reader: Some(err_reader),
            _home: self.home,
        }
    }
}

/// An etop process that is still running; killed on drop.
pub struct Running {
    cmdline: String,
    child: Child,
    started: Instant,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Lines of stdout received so far, with when they arrived.
    seen: Vec<(Instant, String)>,
    out_reader: Option<JoinHandle<()>>,
    err_reader: Option<JoinHandle<String>>,
    _home: tempfile::TempDir,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while etop has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The next line of stdout, or `None` if none came within `timeout` (or
    /// stdout was closed).
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let (at, line) = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push((at, line.clone()));
        Some(line)
    }

    /// Waits for the first line of stdout that satisfies `pred`; fails the
    /// test, with everything etop printed, if none comes within `timeout`.
    pub fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(l) if pred(&l) => return l,
                Some(_) => continue,
                None => {
                    let out = self.stop();
                    panic!("the expected line did not come within {timeout:?}\n{out}");
                }
            }
        }
    }

    /// Sends a signal to etop (SIGTERM for a polite stop).
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // reaped yet (we hold its `Child`), so the pid cannot be reused.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits for etop to exit on its own; kills it and fails the test after
    /// `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = self.started + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let out = self.stop();
                    panic!("etop did not exit within {timeout:?}; killed it\n{out}");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waiting for {}: {e}", self.cmdline),
            }
        }
        self.collect()
    }

    /// Kills etop (SIGKILL) and returns what it printed.
    pub fn stop(&mut self) -> Output {
        let _ = self.child.kill();
        self.collect()
    }

    /// Like `wait`, and also returns etop's peak resident memory in KB, as
    /// the kernel recorded it for the process (`wait4`, `ru_maxrss`): the
    /// true peak, however briefly it was held and however soon etop exited.
    /// Start etop with `Etop::own_memory`, or this is at least the test
    /// binary's own peak.
    pub fn wait_measured(mut self, timeout: Duration) -> (Output, u64) {
        use std::os::unix::process::ExitStatusExt;
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        let deadline = self.started + timeout;
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: rusage is plain data; all zeroes is a valid value.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on our own child, which nothing else reaps (its
            // `Child` is only waited for through here); both pointers are
            // to live locals.
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            if r == pid {
                let out = self.collect_with(std::process::ExitStatus::from_raw(status));
                return (out, u64::try_from(usage.ru_maxrss).unwrap_or(0));
            }
            assert!(
                r == 0,
                "wait4({pid}) failed: {}",
                std::io::Error::last_os_error()
            );
            if Instant::now() >= deadline {
                let out = self.stop();
                panic!("etop did not exit within {timeout:?}; killed it\n{out}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn collect(&mut self) -> Output {
        let status = self.child.wait().expect("wait for etop");
        self.collect_with(status)
    }

    fn collect_with(&mut self, status: std::process::ExitStatus) -> Output {
        let elapsed = self.started.elapsed();
        if let Some(h) = self.out_reader.take() {
            let _ = h.join();
        }
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        let stderr = self
            .err_reader
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Output {
            cmdline: self.cmdline.clone(),
            code: status.code(),
            stdout: self.seen.iter().map(|(_, l)| l.as_str()).collect(),
            stderr,
            elapsed,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one etop run did. `Display` shows all of it, for assertion messages.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// `None` when etop was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Asserts exit status 0 and returns self, for chaining.
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "etop failed\n{self}");
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.cmdline)?;
        writeln!(
            f,
            "exit code: {:?}, after {:.2} s",
            self.code,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}--- end ---", self.stderr)
    }
}

/// The process table of a text frame: one map per row, keyed by the column
/// titles. Titles are separated by two or more spaces; no cell contains a
/// space (pids, atoms, MFAs, numbers), so rows split on whitespace.
pub fn parse_table(out: &Output) -> Vec<std::collections::HashMap<String, String>> {
    table_under(out, "table header line starting with 'Pid'", |l| {
        l.starts_with("Pid ")
    })
}

/// The table whose title line is the first that `is_header` accepts, read
/// as `parse_table` reads the process table.
pub fn table_under(
    out: &Output,
    what: &str,
    is_header: impl Fn(&str) -> bool,
) -> Vec<std::collections::HashMap<String, String>> {
    let lines = out.stdout_lines();
    let start = lines
        .iter()
        .position(|l| is_header(l))
        .unwrap_or_else(|| panic!("no {what}\n{out}"));
    let titles: Vec<String> = lines[start]
        .split("  ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    lines[start + 1..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(
                cells.len(),
                titles.len(),
                "row '{l}' does not have one cell per column {titles:?}\n{out}"
            );
            titles
                .iter()
                .cloned()
                .zip(cells.into_iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Parses CSV text (RFC 4180 quoting) into records.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    for line in text.lines() {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut field)),
                (c, _) => field.push(c),
            }
        }
        fields.push(field);
        records.push(fields);
    }
    records
}

/// A table whose cells may be empty (ports without a remote address, ETS
/// tables without an id): columns are found by position. The table starts at
/// the first line of stdout that starts with `first_title` (leading spaces
/// aside: right-aligned titles are indented) and ends at the first blank
/// line. Two or more spaces on every line of the table separate columns (the
/// renderer leaves two after each), so a title may hold single spaces
/// ("Thread type") and a column may be empty on some rows.
pub fn parse_aligned(
    out: &Output,
    first_title: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let lines = out.stdout_lines();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with(first_title))
        .unwrap_or_else(|| panic!("no table header line starting with '{first_title}'\n{out}"));
    let table: Vec<Vec<char>> = lines[start..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.chars().collect())
        .collect();
    let width = table.iter().map(Vec::len).max().unwrap_or(0);
    let blank = |i: usize| table.iter().all(|l| l.get(i).is_none_or(|c| *c == ' '));
    // Column spans: runs of positions not blank on every line, split where
    // at least two blank positions follow each other.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < width {
        if blank(i) {
            i += 1;
            continue;
        }
        let begin = i;
        let mut end = i;
        while i < width {
            if !blank(i) {
                end = i + 1;
                i += 1;
            } else if i + 1 < width && !blank(i + 1) {
                // A single blank position inside a column.
                i += 1;
            } else {
                break;
            }
        }
        spans.push((begin, end));
    }
    let cell = |l: &[char], (b, e): (usize, usize)| -> String {
        l.get(b.min(l.len())..e.min(l.len()))
            .map(|c| c.iter().collect::<String>().trim().to_string())
            .unwrap_or_default()
    };
    let titles: Vec<String> = spans.iter().map(|s| cell(&table[0], *s)).collect();
    assert!(
        titles.iter().all(|t| !t.is_empty()),
        "a column without a title: {titles:?}\n{out}"
    );
    table[1..]
        .iter()
        .map(|l| {
            titles
                .iter()
                .cloned()
                .zip(spans.iter().map(|s| cell(l, *s)))
                .collect()
        })
        .collect()
}

/// The one line etop prints on stderr for a fatal error.
pub fn single_error_line(out: &Output) -> &str {
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "expected exactly one line on stderr\n{out}");
    assert!(out.stdout.is_empty(), "expected nothing on stdout\n{out}");
    lines[0]
}

// --- checks the tests share ---------------------------------------------

/// `etop nodes --format json` through a fake /proc, by OS pid.
pub fn nodes_json(fake: &FakeProc) -> (std::collections::HashMap<u64, Value>, Output) {
    let out = etop(["nodes", "--format", "json", "--proc-root", &fake.arg()])
        .run()
        .success();
    let by_pid = json_lines(&out)
        .into_iter()
        .map(|v| {
            let pid = v["os_pid"]
                .as_u64()
                .unwrap_or_else(|| panic!("no os_pid in {v}\n{out}"));
            (pid, v)
        })
        .collect();
    (by_pid, out)
}

/// `etop -v --once` through a fake /proc with no cookie given in any way
/// (the harness's etop has an empty HOME and no ERLANG_COOKIE): it must
/// attach to `node` with the cookie from `source` on the target.
pub fn attaches_with_targets_cookie(
    fake: &FakeProc,
    node_arg: Option<&str>,
    node: &Node,
    source: &str,
) {
    let mut args = vec!["-v", "--once", "-i", QUICK];
    let proc_root = fake.arg();
    args.extend(["--proc-root", &proc_root]);
    args.extend(node_arg);
    let out = etop(&args).run().success();
    let said = format!(
        "etop: attaching to {} with the cookie from the target's {source}\n",
        node.full
    );
    assert!(
        out.stderr.contains(&said),
        "-v does not say '{}'\n{out}",
        said.trim_end()
    );
    assert!(
        out.stdout.starts_with(&format!("{}  ", node.full)),
        "the header does not name {}\n{out}",
        node.full
    );
    assert!(!parse_table(&out).is_empty(), "{out}");
    assert!(
        !out.stderr.contains(&node.cookie) && !out.stdout.contains(&node.cookie),
        "the cookie was printed\n{out}"
    );
}

/// A short sampling window for runs that only need a frame, not its numbers.
pub const QUICK: &str = "0.2";

/// A quiet node: few processes, so nodes start fast on a loaded host.
pub fn quiet() -> NodeOpts {
    NodeOpts {
        idle: 10,
        ..Default::default()
    }
}

pub fn json_lines(out: &Output) -> Vec<Value> {
    out.stdout_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): '{l}'\n{out}")))
        .collect()
}

pub fn the_json(out: &Output) -> Value {
    let mut v = json_lines(out);
    assert_eq!(v.len(), 1, "expected one JSON line\n{out}");
    v.remove(0)
}

pub fn num(v: &Value, what: &str, out: &Output) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is {v}, not a number\n{out}"))
}

/// Bytes as etop prints them (`1.8M`, `759K`, `40`).
pub fn human_bytes(s: &str) -> f64 {
    let (digits, mult) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1024.0),
        Some('M') => (&s[..s.len() - 1], 1024.0 * 1024.0),
        Some('G') => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1.0),
    };
    digits
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("'{s}' is not a byte count"))
        * mult
}

/// Polls `cond` every 50 ms; fails with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Whether microstate accounting is on, without touching the flag: the
/// counters move only while it is on.
pub fn msacc_on(node: &Node) -> bool {
    let v = node.eval(
        "R = fun() -> lists:sum([lists:sum(maps:values(C)) \
                || #{counters := C} <- erlang:statistics(microstate_accounting)]) end, \
         A = R(), timer:sleep(50), A =/= R()",
    );
    match v.as_str() {
        "'true'" => true,
        "'false'" => false,
        other => panic!("msacc_on: {other}"),
    }
}

/// Polls until the node has `procs_before` processes and neither flag etop
/// touches is on.
pub fn assert_restored(node: &Node, procs_before: i64, after_what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = node.eval_i64("length(erlang:processes())");
        let swt = node.eval("erlang:statistics(scheduler_wall_time)");
        let msacc = msacc_on(node);
        if procs == procs_before && swt == "'undefined'" && !msacc {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{after_what}: the node has {procs} processes (was {procs_before}), \
             scheduler_wall_time is {swt}, microstate accounting on: {msacc}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Long enough for a loaded machine, short against "hangs forever".
pub const AT_ONCE: Duration = Duration::from_secs(20);
