//! Cookie hygiene: a cookie file that is not a small regular file (a FIFO, a
//! device, a directory, a huge file) is refused at once with one line, a
//! symbolic link to a good one works, an `ERLANG_COOKIE` that is not UTF-8 is
//! an error, and etop is non-dumpable while it runs.

mod util;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;
use util::{FakeProc, Node, NodeOpts, etop};

/// Long enough for a loaded machine, short against "hangs forever".
const AT_ONCE: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
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
        let line = util::single_error_line(&out);
        assert!(
            line.starts_with(&format!(
                "etop: cannot read the cookie file '{}': {why}",
                file.display()
            )),
            "{out}"
        );
    }

    // Our own ~/.erlang.cookie, found without being named, is held to the
    // same rules.
    let run = etop(["--once", "--proc-root", &empty.arg(), "nobody@localhost"]);
    let home_cookie = run.home().join(".erlang.cookie");
    mkfifo(&home_cookie);
    let out = run.spawn().wait(AT_ONCE);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        util::single_error_line(&out).ends_with(&format!(
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
        util::single_error_line(&out),
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
