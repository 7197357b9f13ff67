//! Where the cookie comes from: our own sources, the node's argv, its
//! release, its user's home; and cookie files that must be refused at once.

use crate::util::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn cookie_sources_of_our_own() {
    // A node whose cookie etop cannot find on the node itself, so that the
    // operator's sources are the only ones.
    let node = Node::start(NodeOpts {
        cookie_hidden: true,
        ..Default::default()
    });

    // --cookie-file; -v says which source was used, so a fallback to another
    // source would show.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("node.cookie");
    std::fs::write(&file, format!("{}\n", node.cookie)).expect("write cookie file");
    let cookie_file_run = || {
        etop([
            "-v",
            "--once",
            "-i",
            QUICK,
            "--cookie-file",
            file.to_str().expect("utf-8 path"),
            &node.full,
        ])
        .run()
        .success()
    };
    // A secret readable by others is used, with a warning.
    set_mode(&file, 0o644);
    let out = cookie_file_run();
    assert!(
        out.stderr.contains("readable by other users"),
        "no warning about a 0644 cookie file\n{out}"
    );
    assert!(!parse_table(&out).is_empty(), "{out}");
    set_mode(&file, 0o400);
    let out = cookie_file_run();
    assert!(
        out.stderr
            .contains(&format!("cookie from --cookie-file {}", file.display())),
        "{out}"
    );
    assert!(!out.stderr.contains("warning"), "{out}");
    assert!(!parse_table(&out).is_empty(), "{out}");

    let out = etop(["-v", "--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(out.stderr.contains("cookie from ERLANG_COOKIE"), "{out}");
    assert!(!parse_table(&out).is_empty(), "{out}");

    // ~/.erlang.cookie as erl writes it, with a trailing newline.
    let out = etop(["-v", "--once", "-i", QUICK, &node.full])
        .home_cookie(&format!("{}\n", node.cookie))
        .run()
        .success();
    assert!(out.stderr.contains("cookie from ~/.erlang.cookie"), "{out}");
    assert!(!parse_table(&out).is_empty(), "{out}");

    // --cookie works, with a warning that argv is public.
    let out = etop(["--once", "-i", QUICK, "--cookie", &node.cookie, &node.full])
        .run()
        .success();
    assert!(
        out.stderr.contains("visible to other users"),
        "no warning about --cookie\n{out}"
    );
    assert!(!parse_table(&out).is_empty(), "{out}");

    // Nothing anywhere: a usage error that names the ways to give one.
    let out = etop(["--once", &node.full]).run();
    assert_eq!(out.code, Some(2), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("ERLANG_COOKIE"), "{out}");
    assert!(line.contains("no cookie"), "{out}");
}

#[test]
fn cookie_of_a_local_node_is_found_on_the_node() {
    // Started with -setcookie: etop reads the node's own cookie, so none has
    // to be given.
    let node = Node::start(NodeOpts::default());
    let out = etop(["-v", "--once", "-i", QUICK, &node.full])
        .run()
        .success();
    assert!(out.stderr.contains("cookie from the target's"), "{out}");
    assert!(
        !out.stderr.contains(&node.cookie) && !out.stdout.contains(&node.cookie),
        "the cookie was printed\n{out}"
    );
    assert!(!parse_table(&out).is_empty(), "{out}");

    // The operator's own sources still come first: a wrong one is used and
    // rejected, not silently replaced by the node's.
    let out = etop(["--once", &node.full])
        .cookie_env(&format!("WRONG{}", crate::util::random_hex()))
        .run();
    assert_eq!(out.code, Some(4), "{out}");
    assert!(
        crate::util::single_error_line(&out).contains("ERLANG_COOKIE"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// A production host: no cookie flags, the node's own cookie.

#[test]
fn no_node_argument_attaches_to_the_only_node_with_its_argv_cookie() {
    let node = Node::start(quiet());
    let fake = FakeProc::new(&[node.os_pid()]);
    attaches_with_targets_cookie(&fake, None, &node, "argv");
}

/// A release root like `mix release` or rebar3 leave: `releases/<vsn>/sys.config`
/// and `releases/COOKIE` (no trailing newline, owner read-only).
fn release_dir(cookie: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let rel = tempfile::tempdir().expect("temp release root");
    let vsn = rel.path().join("releases/0.1.0");
    std::fs::create_dir_all(&vsn).expect("create releases/0.1.0");
    std::fs::write(vsn.join("sys.config"), "[].\n").expect("write sys.config");
    let file = rel.path().join("releases/COOKIE");
    std::fs::write(&file, cookie).expect("write releases/COOKIE");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400))
        .expect("chmod releases/COOKIE");
    rel
}

#[test]
fn release_cookies_are_found_in_precedence_order() {
    // Every node reads its cookie from its own $HOME/.erlang.cookie (erl has
    // no other source without -setcookie); the release's sources hold the
    // same cookie, and come first, so what -v names is the source etop used.
    let cookies: Vec<String> = (0..3)
        .map(|_| format!("R{}", crate::util::random_hex().to_uppercase()))
        .collect();
    let rels: Vec<tempfile::TempDir> = cookies.iter().map(|c| release_dir(c)).collect();
    let release_node = |i: usize, env: Vec<(&str, String)>| NodeOpts {
        cookie: Some(cookies[i].clone()),
        cookie_in_home: true,
        erl_args: vec![
            "-config".into(),
            path_str(&rels[i].path().join("releases/0.1.0/sys")).to_string(),
        ],
        env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..quiet()
    };
    let nodes = Node::start_all(vec![
        // mix release style: RELEASE_ROOT in the environment.
        release_node(
            0,
            vec![
                ("RELEASE_ROOT", path_str(rels[0].path()).to_string()),
                ("RELEASE_NAME", "demo".into()),
            ],
        ),
        // rebar3 style: the root only from the -config path.
        release_node(1, vec![]),
        // RELEASE_COOKIE in the environment beats releases/COOKIE.
        release_node(
            2,
            vec![
                ("RELEASE_ROOT", path_str(rels[2].path()).to_string()),
                ("RELEASE_NAME", "demo".into()),
                ("RELEASE_COOKIE", cookies[2].clone()),
            ],
        ),
    ]);
    let sources = ["releases/COOKIE", "releases/COOKIE", "RELEASE_COOKIE"];
    let pids: Vec<u32> = nodes.iter().map(Node::os_pid).collect();
    let fake = FakeProc::new(&pids);

    let (listed, out) = nodes_json(&fake);
    assert_eq!(listed.len(), 3, "{out}");
    for (node, source) in nodes.iter().zip(sources) {
        let line = &listed[&u64::from(node.os_pid())];
        assert_eq!(line["node"], node.full.as_str(), "{out}");
        assert_eq!(line["cookie"], source, "{}: {out}", node.full);
        assert_eq!(line["user"], crate::util::our_user().as_str(), "{out}");
        assert!(line["dist_port"].as_u64().is_some(), "{out}");
    }
    let text = etop(["nodes", "--proc-root", &fake.arg()]).run().success();
    for node in &nodes {
        assert!(text.stdout.contains(&node.full), "{text}");
    }
    assert!(text.stdout.contains("releases/COOKIE"), "{text}");

    for (node, source) in nodes.iter().zip(sources) {
        attaches_with_targets_cookie(&fake, Some(&node.os_pid().to_string()), node, source);
    }

    // The cookie sent is really the one in releases/COOKIE: a wrong one there
    // is used (and rejected) although the node's HOME has the right one.
    let file = rels[1].path().join("releases/COOKIE");
    std::fs::write(&file, format!("WRONG{}", crate::util::random_hex())).expect("rewrite COOKIE");
    let out = etop(["--once", "--proc-root", &fake.arg(), &nodes[1].name]).run();
    assert_eq!(out.code, Some(4), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("rejected our cookie"), "{out}");
    assert!(
        line.contains("releases/COOKIE"),
        "the source is not named\n{out}"
    );
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

#[test]
fn cookie_files_that_are_not_small_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'A'; 5000]).expect("write a big file");
    // No local nodes: nothing but the cookie file can go wrong.
    let empty = FakeProc::new(&[]);
    for (file, why) in [
        (
            fifo.as_path(),
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            Path::new("/dev/zero"),
            "it is a character device, not a regular file",
        ),
        (dir.path(), "it is a directory, not a regular file"),
        (big.as_path(), "it is larger than 4096 bytes"),
    ] {
        let out = etop([
            "--once",
            "--proc-root",
            &empty.arg(),
            "--cookie-file",
            path_str(file),
            "nobody@localhost",
        ])
        .spawn()
        .wait(AT_ONCE);
        assert_eq!(out.code, Some(2), "{out}");
        let line = crate::util::single_error_line(&out);
        assert!(
            line.starts_with(&format!(
                "etop: cannot read the cookie file '{}': {why}",
                file.display()
            )),
            "{out}"
        );
    }

    // Our own ~/.erlang.cookie, found without being named, is held to the
    // same rules. It is read only once the node is known to exist (or its
    // port given): a missing node is said as such first.
    let port = crate::util::free_port().to_string();
    let run = etop([
        "--once",
        "--proc-root",
        &empty.arg(),
        "--port",
        &port,
        "nobody@localhost",
    ]);
    let home_cookie = run.home().join(".erlang.cookie");
    mkfifo(&home_cookie);
    let out = run.spawn().wait(AT_ONCE);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        crate::util::single_error_line(&out).ends_with(&format!(
            "'{}': it is a named pipe (FIFO), not a regular file",
            home_cookie.display()
        )),
        "{out}"
    );
}

#[test]
fn a_non_utf8_erlang_cookie_is_an_error() {
    let empty = FakeProc::new(&[]);
    let out = etop(["--once", "--proc-root", &empty.arg(), "nobody@localhost"])
        .env_os("ERLANG_COOKIE", OsStr::from_bytes(b"SECRET\xff"))
        .spawn()
        .wait(AT_ONCE);
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(
        crate::util::single_error_line(&out),
        "etop: ERLANG_COOKIE is not valid UTF-8; set it to the node's cookie, \
         or pass --cookie-file PATH",
        "{out}"
    );
}

#[test]
fn links_to_cookie_files_are_followed_and_an_unused_env_is_ignored() {
    let node = Node::start(NodeOpts::default());
    // A node etop does not see as local: the cookie must come from our side.
    let empty = FakeProc::new(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let real = dir.path().join("cookie");
    std::fs::write(&real, format!("{}\n", node.cookie)).expect("write the cookie");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    // --cookie-file through a link, with a broken ERLANG_COOKIE it does not
    // need.
    etop([
        "--once",
        "-i",
        "0.2",
        "--proc-root",
        &empty.arg(),
        "--cookie-file",
        path_str(&link),
        &node.full,
    ])
    .env_os("ERLANG_COOKIE", OsStr::from_bytes(b"\xff"))
    .run()
    .success();

    // ~/.erlang.cookie as a link.
    let run = etop([
        "--once",
        "-i",
        "0.2",
        "--proc-root",
        &empty.arg(),
        &node.full,
    ]);
    std::os::unix::fs::symlink(&real, run.home().join(".erlang.cookie")).expect("symlink");
    run.run().success();
}

/// The owner of a process's /proc files: its uid while it is dumpable, root
/// once it is not.
fn proc_owner(pid: u32) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"))
        .uid()
}

#[test]
fn etop_is_not_dumpable_while_it_runs() {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    // Run etop as a user other than root, so that "owned by root" can only
    // mean "not dumpable": as ourselves when we are not root, else as nobody.
    let as_uid = if uid == 0 { 65534 } else { uid };
    let mut run = etop([
        "threads",
        "--pid",
        &std::process::id().to_string(),
        "-i",
        "0.2",
    ]);
    if uid == 0 {
        run = run.uid(as_uid);
    }
    let mut running = run.spawn();
    running.wait_for_line(AT_ONCE, |l| l.contains("threads"));
    let owner = proc_owner(running.pid());
    let out = running.stop();
    assert_eq!(
        owner, 0,
        "etop running as uid {as_uid} is dumpable: its /proc files belong to uid {owner}\n{out}"
    );
}
