use super::describe::{CookieFile, CookieInputs, resolve_cookie};
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
    let argv = super::tests::erl_argv(user_args);
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
        crate::host::fake::ProcFixture::new(p.pid, p.comm)
            .state(p.state)
            .uid(p.uid)
            .write(&self.proc_root());
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
        &EpmdNames::single(4369, vec![("other".into(), 40000), ("late".into(), 43125)]),
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
    // Nothing where the cookie would be: the likeliest file is named, with
    // who may read the environment.
    let n = f.only();
    assert!(!n.environ_readable);
    assert!(n.unreadable.contains(&Unreadable::Environment));
    match &n.cookie {
        CookieLookup::Unreadable { source, reason } => {
            assert_eq!(
                source.with_path(),
                "$HOME/.erlang.cookie of user rabbit (/home/rabbit/.erlang.cookie)"
            );
            assert!(reason.contains("run as user rabbit or root"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // -home still comes from argv.
    assert_eq!(n.home.as_deref(), Some(Path::new("/home/rabbit")));
    // A file that can be read is the cookie, environment or not.
    f.target_file(800, "/home/rabbit/.erlang.cookie", "HOME", 0o400);
    assert_eq!(found(&f.only().cookie).1, "HOME");

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

/// What the scan says of the home cookie file of the only node, bounded in
/// time: a scan that blocks on a FIFO fails the test instead of hanging it.
fn home_cookie_reason(f: Fake) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f.only().cookie));
    match rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the scan blocked on the cookie file")
    {
        CookieLookup::Unreadable {
            source: CookieSource::HomeCookieFile { .. },
            reason,
        } => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fifo_or_a_huge_file_as_the_targets_cookie_is_refused_at_once() {
    let f = Fake::new();
    f.add(&beam(950, &["-sname", "n"]));
    let home = f.proc_root().join("950/root/home/rabbit");
    fs::create_dir_all(&home).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(home.join(".erlang.cookie"))
        .status()
        .expect("run mkfifo");
    assert!(st.success());
    assert_eq!(
        home_cookie_reason(f),
        "it is a named pipe (FIFO), not a regular file"
    );

    let f = Fake::new();
    f.add(&beam(951, &["-sname", "n"]));
    f.target_file(
        951,
        "/home/rabbit/.erlang.cookie",
        &"A".repeat(100_000),
        0o400,
    );
    assert!(home_cookie_reason(f).contains("larger than 4096 bytes"));
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

#[test]
fn a_tls_nodes_client_options_are_read_inside_its_root() {
    use super::ssl_dist::{DistTls, ServerName};
    let f = Fake::new();
    f.add(&beam(
        300,
        &[
            "-sname",
            "tls",
            "-proto_dist",
            "inet_tls",
            "-ssl_dist_optfile",
            "/etc/erl/dist.conf",
        ],
    ));
    symlink("/srv/app", f.proc_root().join("300/cwd")).unwrap();
    f.target_file(
        300,
        "/etc/erl/dist.conf",
        "%% only the client section matters to etop\n\
         [{server, [{certfile, \"/etc/erl/server.pem\"}]},\n \
          {client, [{certfile, \"/etc/erl/client.pem\"}, {cacertfile, \"ca.pem\"}]}].\n",
        0o600,
    );
    let n = f.only();
    assert!(n.tls());
    let Some(DistTls::Client(files)) = &n.dist_tls else {
        panic!("{:?}", n.dist_tls)
    };
    let root = f.proc_root().join("300/root");
    let cert = files.cert.as_ref().unwrap();
    assert_eq!(cert.path, Path::new("/etc/erl/client.pem"));
    assert_eq!(cert.open, root.join("etc/erl/client.pem"));
    assert_eq!(files.ca.path, Path::new("/srv/app/ca.pem"));
    assert_eq!(files.ca.open, root.join("srv/app/ca.pem"));
    assert!(files.key.is_none());
    assert_eq!(files.server_name, ServerName::NodeHost);

    // A plain node has no TLS options at all.
    let f = Fake::new();
    f.add(&beam(301, &["-sname", "plain"]));
    assert_eq!(f.only().dist_tls, None);
}

#[test]
fn hidden_sockets_leave_the_ports_its_user_listens_on() {
    let f = Fake::new();
    let mut p = beam(1100, &["-noshell"]);
    p.tcp = [
        tcp_line(0, "00000000:62A8", "0A", 31), // 25256, uid 1000, listening
        tcp_line(1, "0100007F:1F90", "01", 32), // established: not a listener
    ]
    .concat();
    f.add(&p);
    // Another user's process: its fd directory cannot be read.
    fs::remove_dir_all(f.proc_root().join("1100/fd")).unwrap();
    let n = f.only();
    assert_eq!(n.listen_ports, Vec::<u16>::new());
    assert_eq!(n.user_listen_ports, Some(vec![25256]));
    assert!(n.unreadable.contains(&Unreadable::Sockets), "{n:?}");
    assert!(!n.unreadable.contains(&Unreadable::Files), "{n:?}");
}

#[test]
fn erts_and_otp_of_an_otp_install_and_of_a_release_with_its_own_erts() {
    // An OTP install: OTP_VERSION says it all; erts from the executable's path.
    let f = Fake::new();
    f.add(&beam(1200, &["-sname", "plain"]));
    f.target_file(
        1200,
        "/usr/lib/erlang/releases/26/OTP_VERSION",
        "26.2.5\n",
        0o644,
    );
    let n = f.only();
    assert_eq!(
        (n.otp_release.as_deref(), n.erts_version.as_deref()),
        (Some("26.2.5"), Some("14.2"))
    );

    // A release with its own erts: no OTP_VERSION; the erts version is in
    // the paths, and says which OTP major release it is.
    let f = Fake::new();
    let mut p = beam(1201, &["-sname", "shop"]);
    p.argv = vec![
        "/opt/shop/erts-13.1.5/bin/beam.smp".into(),
        "--".into(),
        "-root".into(),
        "/opt/shop".into(),
        "-bindir".into(),
        "/opt/shop/erts-13.1.5/bin".into(),
        "--".into(),
        "-sname".into(),
        "shop".into(),
    ];
    f.add(&p);
    let n = f.only();
    assert_eq!(
        (n.otp_release.as_deref(), n.erts_version.as_deref()),
        (Some("25"), Some("13.1.5"))
    );

    // Paths without the version (a link named bin/): start_erl.data has it.
    let f = Fake::new();
    p.argv[0] = "/opt/shop/bin/beam.smp".into();
    p.argv[5] = "/opt/shop/bin".into();
    f.add(&p);
    f.target_file(
        1201,
        "/opt/shop/releases/start_erl.data",
        "14.2.5 0.3.1\n",
        0o644,
    );
    let n = f.only();
    assert_eq!(
        (n.otp_release.as_deref(), n.erts_version.as_deref()),
        (Some("26"), Some("14.2.5"))
    );
}

#[test]
fn own_epmd_port_and_temporary_shells() {
    let f = Fake::new();
    f.add(&beam(1300, &["-sname", "a", "-epmd_port", "4400"]));
    let mut p = beam(1301, &["-sname", "rpc-1f2e-shop", "-hidden"]);
    p.environ = Some(vec![("HOME", "/home/rabbit"), ("ERL_EPMD_PORT", "4401")]);
    f.add(&p);
    f.add(&beam(1302, &["-sname", "sh", "-remsh", "shop@web1"]));
    let nodes = f.scan();
    let got: Vec<(Option<u16>, bool)> = nodes.iter().map(|n| (n.epmd_port, n.temporary)).collect();
    assert_eq!(
        got,
        vec![(Some(4400), false), (Some(4401), true), (None, true)]
    );
}
