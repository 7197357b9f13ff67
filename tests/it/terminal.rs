//! On a terminal: repaint in place, keys, signals, a stale mark, and the
//! terminal restored on every way out; a closed pipe ends etop quietly.

use crate::util::pty::Terminal;
use crate::util::*;
use std::time::{Duration, Instant};

/// Runs etop on a pseudo-terminal until its table is on screen, ends it with
/// `end`, and returns everything it wrote plus its exit status.
fn on_a_terminal(node: &Node, end: impl FnOnce(&mut Terminal)) -> (String, i32) {
    let mut t = Terminal::start(node, &["-i", "0.5"], 100, 30);
    assert!(t.canonical_with_echo(), "a fresh pty is canonical");
    t.wait_for(Duration::from_secs(20), "the table", |s| {
        s.contains("Current Function")
    });
    end(&mut t);
    let code = t.wait_exit(Duration::from_secs(5));
    assert!(t.canonical_with_echo(), "raw mode was left on after exit");
    (t.text(), code)
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
    let (screen, code) = on_a_terminal(&node, |t| t.type_keys(b"q"));
    assert_restored(&screen, code);
    // Repaint mode: the header is redrawn in place, not appended line by line.
    assert!(screen.contains("\x1b[1;1H"), "cursor-home repaint expected");
}

#[test]
fn sigterm_restores_the_terminal() {
    let node = Node::start(NodeOpts::default());
    let (screen, code) = on_a_terminal(&node, |t| {
        // SAFETY: kill with a valid pid of our own child and a real signal.
        unsafe { libc::kill(t.pid() as i32, libc::SIGTERM) };
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
    let (screen, code) = on_a_terminal(&node, |t| {
        let text = || t.text();
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
        t.wait_shown(Duration::from_secs(10), "a fresh frame", |s| {
            !s.contains("STALE") && s.contains("Current Function")
        });
        t.type_keys(b"q");
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
