//! The process view's options and the terminal, against real nodes:
//! --schedulers, --accumulate, --port without EPMD, the OS line of a local
//! node, and repaint mode on a pseudo-terminal (alternate screen entered, and
//! everything restored after `q` or SIGTERM).

mod util;

use serde_json::Value;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::{Node, NodeOpts, etop};

fn the_json(out: &util::Output) -> Value {
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 1, "expected one JSON line\n{out}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e})\n{out}"))
}

#[test]
fn schedulers_line_shows_each_scheduler() {
    let node = Node::start(NodeOpts {
        busy: 1,
        ..Default::default()
    });
    let out = etop(["--once", "-i", "0.5", "--schedulers", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let line = out
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("Sched:"))
        .unwrap_or_else(|| panic!("no 'Sched:' line with --schedulers\n{out}"))
        .to_string();
    assert!(line.contains("1 ") && line.contains('%'), "'{line}'\n{out}");
    // Without the flag the line is not there.
    let plain = etop(["--once", "-i", "0.3", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        !plain.stdout_lines().iter().any(|l| l.starts_with("Sched:")),
        "{plain}"
    );
    // JSON always carries them; the busy loop keeps one normal scheduler busy.
    let j = the_json(
        &etop(["--once", "-i", "0.5", "--format", "json", &node.full])
            .cookie_env(&node.cookie)
            .run()
            .success(),
    );
    let scheds = j["header"]["schedulers"]
        .as_array()
        .unwrap_or_else(|| panic!("no schedulers in {j}"));
    let normal: Vec<f64> = scheds
        .iter()
        .filter(|s| s["kind"] == "normal")
        .filter_map(|s| s["pct"].as_f64())
        .collect();
    assert!(!normal.is_empty(), "{j}");
    assert!(
        normal.iter().any(|p| *p > 40.0),
        "no busy normal scheduler: {j}"
    );
}

#[test]
fn accumulate_shows_totals_from_one_sample() {
    let node = Node::start(NodeOpts {
        busy: 1,
        ..Default::default()
    });
    let started = Instant::now();
    // A 5 s window would show if --accumulate still sampled twice.
    let out = etop(["--once", "-a", "-i", "5", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "--once --accumulate waited for a window\n{out}"
    );
    let j = the_json(&out);
    assert_eq!(j["header"]["accumulate"], true, "{j}");
    assert!(j["header"]["window_secs"].is_null(), "{j}");
    // The busy loop's total only grows: a later windowed frame shows less
    // than the total seen now plus what it could do in the window.
    let total = j["rows"][0]["reds"].as_u64().unwrap_or(0);
    let text = etop(["--once", "-a", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        text.stdout.contains("reductions: totals"),
        "the header must say the numbers are totals\n{text}"
    );
    let later = etop(["--once", "-a", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let later_total = the_json(&later)["rows"][0]["reds"].as_u64().unwrap_or(0);
    assert!(
        total > 0 && later_total > total,
        "totals {total} then {later_total}: not growing\n{later}"
    );
}

#[test]
fn port_connects_directly_without_epmd() {
    let node = Node::start(NodeOpts::default());
    let names = etop::node::epmd::names("localhost", Duration::from_secs(3)).expect("EPMD");
    let port = names
        .iter()
        .find(|(n, _)| *n == node.name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("{} not in EPMD: {names:?}", node.name));
    // EPMD "moved" to a closed port: only --port can reach the node now.
    let dead = util::free_port().to_string();
    let out = etop([
        "--once",
        "-i",
        QUICK,
        "--port",
        &port.to_string(),
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .env("ERL_EPMD_PORT", &dead)
    .run()
    .success();
    assert!(out.stdout.contains("Pid"), "{out}");
    let without = etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .env("ERL_EPMD_PORT", &dead)
        .run();
    assert_eq!(without.code, Some(3), "{without}");
}

const QUICK: &str = "0.3";

#[test]
fn a_local_node_gets_the_os_line() {
    let node = Node::start(NodeOpts::default());
    let out = etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let os = out
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("OS:"))
        .unwrap_or_else(|| panic!("no OS line for a node on this host\n{out}"))
        .to_string();
    assert!(
        os.contains("rss") && os.contains("VM total") && os.contains("threads"),
        "'{os}'"
    );
    let j = the_json(
        &etop(["--once", "-i", QUICK, "--format", "json", &node.full])
            .cookie_env(&node.cookie)
            .run()
            .success(),
    );
    let rss = j["header"]["os"]["rss_bytes"].as_u64().unwrap_or(0);
    let vm_total = j["header"]["memory"]["total"].as_u64().unwrap_or(u64::MAX);
    assert!(rss > 0, "{j}");
    // The OS always sees at least what the VM says it allocated.
    assert!(rss >= vm_total / 2, "rss {rss} vs VM total {vm_total}: {j}");
    assert!(
        j["header"]["os"]["os_threads"].as_u64().unwrap_or(0) >= 2,
        "{j}"
    );
}

/// A pseudo-terminal: the master side for the test, the slave as the
/// child's stdin, stdout and stderr.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

fn open_pty() -> Pty {
    let (mut m, mut s) = (0, 0);
    let ws = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds into the given ints; name and termios
    // may be null, the winsize pointer is valid for the call.
    let rc = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned by nobody else.
    unsafe {
        Pty {
            master: OwnedFd::from_raw_fd(m),
            slave: OwnedFd::from_raw_fd(s),
        }
    }
}

fn canonical_with_echo(fd: &OwnedFd) -> bool {
    // SAFETY: termios is plain data; tcgetattr fills it for a valid tty fd.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) };
    assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
    t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
}

/// Runs etop on a pseudo-terminal until its table is on screen, ends it with
/// `end`, and returns everything it wrote plus its exit status.
fn on_a_terminal(
    node: &Node,
    end: impl FnOnce(&mut std::fs::File, u32, &dyn Fn() -> String),
) -> (String, i32) {
    let pty = open_pty();
    assert!(canonical_with_echo(&pty.slave), "a fresh pty is canonical");
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
    let home = tempfile::tempdir().expect("temp HOME");
    let mut child = Command::new(env!("CARGO_BIN_EXE_etop"))
        .args(["-i", "0.5", &node.full])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("TERM", "xterm")
        .env("ERLANG_COOKIE", &node.cookie)
        .stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave))
        .spawn()
        .expect("spawn etop");
    let screen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut reader = std::fs::File::from(pty.master.try_clone().expect("dup master"));
    let sink = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once every slave fd is closed: the child is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.extend_from_slice(&buf[..n]);
            }
        }
    });
    let text = || {
        String::from_utf8_lossy(&screen.lock().map(|s| s.clone()).unwrap_or_default()).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text().contains("Current Function") {
        assert!(
            Instant::now() < deadline,
            "no table on the terminal:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut writer = std::fs::File::from(pty.master.try_clone().expect("dup master"));
    end(&mut writer, child.id(), &text);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for etop") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("etop did not exit within 5 s:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        canonical_with_echo(&pty.slave),
        "raw mode was left on after exit"
    );
    std::thread::sleep(Duration::from_millis(200));
    (text(), status.code().unwrap_or(-1))
}

fn assert_restored(screen: &str, code: i32) {
    assert_eq!(code, 0, "exit status\n{screen}");
    let enter = screen
        .find("\x1b[?1049h")
        .expect("alternate screen entered");
    let leave = screen
        .rfind("\x1b[?1049l")
        .unwrap_or_else(|| panic!("alternate screen never left:\n{screen:?}"));
    assert!(leave > enter);
    assert!(screen.contains("\x1b[?25l"), "cursor hidden while running");
    assert!(
        screen.rfind("\x1b[?25h").is_some_and(|i| i > enter),
        "cursor shown again on exit"
    );
}

#[test]
fn q_quits_and_restores_the_terminal() {
    let node = Node::start(NodeOpts::default());
    let (screen, code) = on_a_terminal(&node, |w, _, _| {
        w.write_all(b"q").expect("type q");
    });
    assert_restored(&screen, code);
    // Repaint mode: the header is redrawn in place, not appended line by line.
    assert!(screen.contains("\x1b[1;1H"), "cursor-home repaint expected");
}

#[test]
fn sigterm_restores_the_terminal() {
    let node = Node::start(NodeOpts::default());
    let (screen, code) = on_a_terminal(&node, |_, pid, _| {
        // SAFETY: kill with a valid pid of our own child and a real signal.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    });
    assert_restored(&screen, code);
}

/// A node that stops answering is marked stale on the screen within
/// max(2 intervals, 3 s), long before the request times out; when it
/// answers again the mark goes away.
#[test]
fn a_node_that_stops_answering_is_marked_stale() {
    let node = Node::start(NodeOpts::default());
    let beam = node.os_pid() as i32;
    let (screen, code) = on_a_terminal(&node, |w, _, text| {
        // SAFETY: signals to the node this test started, by its pid.
        unsafe { libc::kill(beam, libc::SIGSTOP) };
        let stopped = Instant::now();
        let deadline = stopped + Duration::from_secs(8);
        while !text().contains("STALE") {
            if Instant::now() > deadline {
                unsafe { libc::kill(beam, libc::SIGCONT) };
                panic!("no stale mark 8 s after the node stopped:\n{}", text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let marked_after = stopped.elapsed();
        unsafe { libc::kill(beam, libc::SIGCONT) };
        assert!(
            marked_after >= Duration::from_secs(2),
            "marked stale after {marked_after:?}, before 3 s of silence"
        );
        // The next frame clears the mark.
        let len = text().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !text()[len..].contains("q quits") {
            assert!(Instant::now() < deadline, "no fresh frame:\n{}", text());
            std::thread::sleep(Duration::from_millis(100));
        }
        w.write_all(b"q").expect("type q");
    });
    assert_restored(&screen, code);
}
