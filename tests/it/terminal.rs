//! On a terminal: repaint in place, keys, signals, a stale mark, and the
//! terminal restored on every way out; a closed pipe ends etop quietly.

use crate::util::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[test]
fn a_closed_pipe_ends_etop_quietly() {
    let node = Node::start(NodeOpts::default());
    // etop -i 0.2 NODE | head -3
    let mut run = etop(["-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .spawn_head(3);
    for _ in 0..3 {
        if run.next_line(Duration::from_secs(20)).is_none() {
            panic!("etop printed fewer than 3 lines\n{}", run.stop());
        }
    }
    let closed = Instant::now();
    let out = run.wait(crate::util::ETOP_TIMEOUT);
    assert!(
        closed.elapsed() < Duration::from_secs(5),
        "etop kept running {:.1} s after its stdout closed\n{out}",
        closed.elapsed().as_secs_f64()
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stderr, "", "a closed pipe is not an error\n{out}");
}
