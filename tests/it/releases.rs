//! Releases: inside a release's shell (`bin/app rpc`, `bin/app remote`,
//! whose environment names the release's node) etop attaches to that node
//! with no arguments, and the shell's own temporary `rpc-XXXX-`/`rem-XXXX-`
//! nodes are never candidates; a release with its own erts, and a node
//! registered with an EPMD of its own (`-epmd_port`), in `etop nodes`.

use crate::util::*;
use std::path::Path;
use std::time::Duration;

/// A release's temporary node for `node`, as `bin/app rpc` starts it.
fn rpc_shell_of(node: &Node) -> NodeOpts {
    NodeOpts {
        name: Some(format!("rpc-{}-{}", &random_hex()[..4], node.name)),
        cookie: Some(node.cookie.clone()),
        erl_args: vec!["-hidden".into()],
        ..quiet()
    }
}

#[test]
fn a_release_shell_environment_picks_its_own_node_with_no_arguments() {
    let app = Node::start(quiet());
    let shell = Node::start(rpc_shell_of(&app));
    let other = Node::start(quiet());
    // What this host runs: the release's node, its rpc shell, another node.
    let fake = FakeProc::new(&[app.os_pid(), shell.os_pid(), other.os_pid()]);
    let release_env = |e: crate::util::Etop| {
        e.env("RELEASE_NODE", &app.name)
            .env("RELEASE_COOKIE", &app.cookie)
            .env("RELEASE_DISTRIBUTION", "sname")
    };

    // Inside the release's shell: no NODE needed, the cookie is the
    // release's, and the node is the release's although three run here.
    let out = release_env(etop([
        "-v",
        "--once",
        "-i",
        QUICK,
        "--proc-root",
        &fake.arg(),
    ]))
    .run()
    .success();
    assert!(
        out.stderr.contains(&format!(
            "etop: attaching to {} with the cookie from RELEASE_COOKIE",
            app.full
        )),
        "{out}"
    );
    assert!(out.stdout.starts_with(&format!("{}  ", app.full)), "{out}");
    assert!(!parse_table(&out).is_empty(), "{out}");

    // `etop threads` too: the release's VM, without NODE or --pid.
    let out = release_env(etop([
        "threads",
        "--once",
        "-i",
        QUICK,
        "--proc-root",
        &fake.arg(),
    ]))
    .run()
    .success();
    assert!(
        out.stdout
            .starts_with(&format!("{} (beam pid {})", app.full, app.os_pid())),
        "{out}"
    );

    // The release's node need not be seen in /proc: RELEASE_NODE and the
    // release's host rules name it.
    let empty = FakeProc::new(&[]);
    release_env(etop(["--once", "-i", QUICK, "--proc-root", &empty.arg()]))
        .run()
        .success();

    // ERLANG_COOKIE ranks before RELEASE_COOKIE.
    let out = release_env(etop(["--once", "--proc-root", &fake.arg()]))
        .cookie_env(&format!("WRONG{}", random_hex()))
        .run();
    assert_eq!(out.code, Some(4), "{out}");
    assert!(
        crate::util::single_error_line(&out).contains("ERLANG_COOKIE"),
        "{out}"
    );

    // A release without distribution has no node to attach to.
    let out = etop(["--once", "--proc-root", &fake.arg()])
        .env("RELEASE_NODE", &app.name)
        .env("RELEASE_DISTRIBUTION", "none")
        .run();
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        crate::util::single_error_line(&out).contains("RELEASE_DISTRIBUTION is 'none'"),
        "{out}"
    );

    // Outside a release's environment, the shell's temporary node is no
    // candidate: with only the release's node and its shell on the host,
    // etop attaches to the release's node with its own cookie.
    let pair = FakeProc::new(&[app.os_pid(), shell.os_pid()]);
    attaches_with_targets_cookie(&pair, None, &app, "argv");
    let out = etop(["threads", "--once", "-i", QUICK, "--proc-root", &pair.arg()])
        .run()
        .success();
    assert!(out.stdout.starts_with(&app.full), "{out}");
    // It is listed, as what it is.
    let (listed, out) = nodes_json(&pair);
    let line = &listed[&u64::from(shell.os_pid())];
    assert_eq!(line["temporary"], true, "{out}");
    let text = etop(["nodes", "--proc-root", &pair.arg()]).run().success();
    assert!(
        text.stdout
            .contains(&format!("{} (temporary shell)", shell.full)),
        "{text}"
    );
    drop(other);
}

#[test]
fn a_long_name_release_node_follows_release_distribution_name() {
    let app = Node::start(NodeOpts {
        long: true,
        ..quiet()
    });
    let empty = FakeProc::new(&[]);
    let out = etop(["-v", "--once", "-i", QUICK, "--proc-root", &empty.arg()])
        .env("RELEASE_NODE", &app.full)
        .env("RELEASE_COOKIE", &app.cookie)
        .env("RELEASE_DISTRIBUTION", "name")
        .run()
        .success();
    assert!(out.stdout.starts_with(&format!("{}  ", app.full)), "{out}");
    assert!(
        out.stderr
            .contains(&format!("attached to {} as hidden node etop_", app.full)),
        "{out}"
    );
}

/// A release root with its own erts, as `mix release` leaves it: `erts-X/`
/// (links to this host's), `lib/`, `releases/start_erl.data`, a boot file,
/// and no OTP_VERSION anywhere.
fn release_with_own_erts() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let otp = Path::new("/usr/lib/erlang");
    let erts = std::fs::read_dir(otp)
        .expect("an OTP install in /usr/lib/erlang")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("erts-"))
        .expect("an erts directory");
    let vsn = erts.trim_start_matches("erts-").to_string();
    let rel = tempfile::tempdir().expect("a release root");
    let root = rel.path();
    std::os::unix::fs::symlink(otp.join(&erts), root.join(&erts)).expect("link erts");
    std::os::unix::fs::symlink(otp.join("lib"), root.join("lib")).expect("link lib");
    std::fs::create_dir_all(root.join("releases/0.1.0")).expect("releases/0.1.0");
    std::fs::write(
        root.join("releases/start_erl.data"),
        format!("{vsn} 0.1.0\n"),
    )
    .expect("start_erl.data");
    std::fs::copy(
        otp.join("bin/start_clean.boot"),
        root.join("releases/0.1.0/start.boot"),
    )
    .expect("a boot file");
    let erlexec = root.join(&erts).join("bin/erlexec");
    (rel, erlexec, vsn)
}

#[test]
fn etop_nodes_knows_the_otp_of_a_release_with_its_own_erts() {
    let (rel, erlexec, vsn) = release_with_own_erts();
    let root = path_str(rel.path()).to_string();
    let bindir = path_str(erlexec.parent().expect("bin/")).to_string();
    let node = Node::start(NodeOpts {
        program: Some(erlexec),
        env: vec![
            ("ROOTDIR".into(), root.clone()),
            ("BINDIR".into(), bindir),
            ("EMU".into(), "beam".into()),
            ("PROGNAME".into(), "erl".into()),
        ],
        erl_args: vec!["-boot".into(), format!("{root}/releases/0.1.0/start")],
        ..quiet()
    });
    let argv = std::fs::read(format!("/proc/{}/cmdline", node.os_pid())).expect("cmdline");
    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
    assert!(
        argv.contains(&format!("-root {root} ")),
        "not the release's root: {argv}"
    );
    let fake = FakeProc::new(&[node.os_pid()]);
    let (listed, out) = nodes_json(&fake);
    let line = &listed[&u64::from(node.os_pid())];
    // What the node itself says.
    let major = node
        .eval_i64("erlang:list_to_integer(erlang:system_info(otp_release))")
        .to_string();
    assert_eq!(line["otp"], major.as_str(), "{out}");
    assert_eq!(line["erts"], vsn.as_str(), "{out}");
    let text = etop(["nodes", "--proc-root", &fake.arg()]).run().success();
    let row = parse_aligned(&text, "Node ");
    assert_eq!(row[0]["OTP"], major, "{text}");
    assert_eq!(row[0]["ERTS"], vsn, "{text}");
}

#[test]
fn a_node_with_its_own_epmd_port_is_found_listed_and_attached_to() {
    let epmd = PrivateEpmd::start();
    let port = epmd.port.to_string();
    let nodes = Node::start_all(vec![
        // -epmd_port in argv, and a name known only at run time.
        NodeOpts {
            erl_args: vec!["-epmd_port".into(), port.clone()],
            naming: Naming::Runtime,
            cookie_in_home: true,
            ..quiet()
        },
        // ERL_EPMD_PORT in its environment.
        NodeOpts {
            env: vec![("ERL_EPMD_PORT".into(), port.clone())],
            ..quiet()
        },
    ]);
    // The harness waits for the default EPMD: these are not there.
    let default = etop::node::epmd::names("localhost", Duration::from_secs(2)).unwrap_or_default();
    let private = etop::node::epmd::names_at("localhost", Some(epmd.port), Duration::from_secs(2))
        .expect("the private EPMD answers");
    for n in &nodes {
        assert!(
            !default.iter().any(|(k, _)| *k == n.name),
            "{} in the default EPMD",
            n.name
        );
        assert!(
            private.iter().any(|(k, _)| *k == n.name),
            "{} not in its EPMD",
            n.name
        );
    }
    let pids: Vec<u32> = nodes.iter().map(Node::os_pid).collect();
    let fake = FakeProc::new(&pids);
    let (listed, out) = nodes_json(&fake);
    for n in &nodes {
        let l = &listed[&u64::from(n.os_pid())];
        let dist = private
            .iter()
            .find(|(k, _)| *k == n.name)
            .map(|(_, p)| u64::from(*p));
        assert_eq!(l["node"], n.full.as_str(), "{out}");
        assert_eq!(l["dist_port"].as_u64(), dist, "{out}");
        assert_eq!(l["epmd_port"].as_u64(), Some(u64::from(epmd.port)), "{out}");
    }
    // By bare name and by full name, with the node's own cookie.
    attaches_with_targets_cookie(
        &fake,
        Some(&nodes[0].name),
        &nodes[0],
        &format!("$HOME/.erlang.cookie of user {}", our_user()),
    );
    attaches_with_targets_cookie(&fake, Some(&nodes[1].full), &nodes[1], "argv");
    drop(nodes);
    drop(epmd);
}
