//! Hostile peers: what a node, or anything answering on a node's or EPMD's
//! port, may send etop. Each case ends in one clear line and a non-zero exit,
//! or the message is dropped, counted, and etop goes on; always within a
//! bounded time, and with etop's peak memory (the kernel's `ru_maxrss`)
//! under 64 MB.
//!
//! The peers: a real node sending etop's pid what any process may send; a
//! proxy in front of a real node that slips crafted frames into its stream;
//! a fake node that performs the node side of the handshake with the
//! cookie; fake EPMDs on a port of their own (`ERL_EPMD_PORT`).

use crate::util::*;
use etop::dist::term::{Pid, Term};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What etop may hold at its peak, whatever it is sent.
const RSS_LIMIT_KB: u64 = 64 * 1024;

/// How long one hostile run may take: failing fast is part of the point.
const QUICK: Duration = Duration::from_secs(20);

fn quiet() -> NodeOpts {
    NodeOpts {
        idle: 100,
        flood_per_sec: 0,
        seconds: 120,
        ..Default::default()
    }
}

fn assert_small(rss_kb: u64, out: &crate::util::Output) {
    assert!(
        rss_kb < RSS_LIMIT_KB,
        "etop peaked at {rss_kb} KB, over {RSS_LIMIT_KB} KB\n{out}"
    );
    eprintln!("peak RSS {} KB: {}", rss_kb, out.cmdline);
}

/// etop exited with `code`, one line on stderr that says `what`, and stayed small.
fn ends_in_one_line(out: &crate::util::Output, rss_kb: u64, code: i32, what: &str) {
    assert_eq!(out.code, Some(code), "{out}");
    let line = crate::util::single_error_line(out);
    assert!(line.contains(what), "{out}");
    assert_small(rss_kb, out);
}

fn stats_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON stats line"))
        .collect()
}

fn dropped(v: &Value, kind: &str) -> u64 {
    v["dropped"][kind].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------- encoding

fn encode(t: &Term) -> Vec<u8> {
    let mut v = Vec::new();
    t.encode(&mut v).expect("encode a term");
    v
}

/// A frame: its length, the pass-through byte, then `parts`.
fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = std::iter::once(112u8)
        .chain(parts.iter().flat_map(|p| p.iter().copied()))
        .collect();
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend(body);
    f
}

/// SEND to `to`, with a raw payload (the payload may be anything).
fn send_to(to: &Pid, payload: &[u8]) -> Vec<u8> {
    let ctrl = etop::dist::term::tuple(vec![
        etop::dist::term::int(2),
        etop::dist::term::atom(""),
        to.clone().into(),
    ]);
    frame(&[&encode(&ctrl), payload])
}

/// The messages no decoder may choke on, each alone in a well-framed frame.
fn crafted_messages(to: &Pid) -> Vec<Vec<u8>> {
    let mut deep = vec![131];
    for _ in 0..3000 {
        deep.extend([104, 1]);
    }
    deep.push(106);
    vec![
        // A 10-byte message claiming a list of 0xFFFFFFFF elements.
        send_to(to, &[131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1, 106, 0]),
        // An atom cache reference, which we never negotiated.
        send_to(to, &[131, 82, 0]),
        // Tuples nested 3000 deep.
        send_to(to, &deep),
        // A control message that is not a tuple, and an unknown operation.
        frame(&[&[131, 97, 2]]),
        frame(&[&[131, 104, 1, 97, 99]]),
    ]
}

// --------------------------------------------- the node side of a handshake

fn read_exact_vec(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b)?;
    Ok(b)
}

fn read_msg(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = read_exact_vec(s, 2)?;
    read_exact_vec(s, usize::from(u16::from_be_bytes([len[0], len[1]])))
}

fn msg(body: &[u8]) -> Vec<u8> {
    let mut m = (body.len() as u16).to_be_bytes().to_vec();
    m.extend(body);
    m
}

/// Who connected, from its `send_name`.
struct Caller {
    name: String,
    creation: u32,
}

impl Caller {
    fn pid(&self) -> Pid {
        Pid::new(self.name.as_str(), 1, 0, self.creation)
    }
}

fn recv_name(s: &mut TcpStream) -> Caller {
    let m = read_msg(s).expect("etop's name");
    assert_eq!(m[0], b'N', "etop sends the OTP 23 name message");
    let creation = u32::from_be_bytes([m[9], m[10], m[11], m[12]]);
    let name = String::from_utf8(m[15..].to_vec()).expect("a UTF-8 name");
    Caller { name, creation }
}

fn challenge_msg(our_name: &str, challenge: u32) -> Vec<u8> {
    let mut c = vec![b'N'];
    c.extend(etop::dist::handshake::our_flags().to_be_bytes());
    c.extend(challenge.to_be_bytes());
    c.extend(77u32.to_be_bytes());
    c.extend((our_name.len() as u16).to_be_bytes());
    c.extend(our_name.as_bytes());
    msg(&c)
}

/// The node side of a good handshake: checks etop's digest, answers with
/// the right one.
fn accept_handshake(s: &mut TcpStream, our_name: &str, cookie: &str) -> Caller {
    let caller = recv_name(s);
    s.write_all(&msg(b"sok")).expect("status");
    let ours = 0x0BAD_CAFE;
    s.write_all(&challenge_msg(our_name, ours))
        .expect("challenge");
    let reply = read_msg(s).expect("etop's challenge reply");
    assert_eq!(reply[0], b'r');
    assert_eq!(
        &reply[5..],
        &etop::dist::handshake::digest(cookie, ours),
        "etop proves the cookie"
    );
    let theirs = u32::from_be_bytes([reply[1], reply[2], reply[3], reply[4]]);
    let mut ack = vec![b'a'];
    ack.extend(etop::dist::handshake::digest(cookie, theirs));
    s.write_all(&msg(&ack)).expect("ack");
    caller
}

/// A TCP server that runs `script` on each connection, in a thread of its
/// own, for at most `conns` connections and at most a minute.
fn serve(conns: usize, script: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a fake peer");
    let port = l.local_addr().expect("its port").port();
    l.set_nonblocking(true).expect("nonblocking accept");
    let script = Arc::new(script);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < conns && Instant::now() < end {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking stream");
                    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    served += 1;
                    let script = script.clone();
                    std::thread::spawn(move || script(s));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    port
}

/// Reads and discards until etop closes (or 30 s pass).
fn drain(mut s: TcpStream) {
    let mut b = [0u8; 4096];
    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
}

fn fake_target() -> String {
    format!(
        "fake_{}@{}",
        &crate::util::random_hex()[..8],
        crate::util::short_host()
    )
}

fn run_against_fake(port: u16, cookie: &str, extra: &[&str]) -> (crate::util::Output, u64) {
    let port = port.to_string();
    let mut args = vec!["--once", "--port", &port];
    args.extend(extra);
    let target = fake_target();
    args.push(&target);
    etop(args)
        .cookie_env(cookie)
        .own_memory()
        .spawn()
        .wait_measured(QUICK)
}

// ------------------------------------------------------------- handshakes

#[test]
fn a_peer_that_closes_after_its_status_is_not_a_cookie_rejection() {
    let port = serve(4, |mut s| {
        recv_name(&mut s);
        let _ = s.write_all(&msg(b"sok"));
    });
    let (out, rss) = run_against_fake(port, "C", &[]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains(
            "closed the connection after accepting our name, before sending its challenge"
        ),
        "{out}"
    );
    assert!(!line.contains("cookie"), "{out}");
    assert_small(rss, &out);
}

#[test]
fn a_peer_that_closes_before_we_answer_its_challenge_is_not_a_cookie_rejection() {
    let port = serve(4, |mut s| {
        let caller = recv_name(&mut s);
        let _ = s.write_all(&msg(b"sok"));
        // The challenge and the end of the stream in one segment, so etop
        // sees both at once.
        let c = challenge_msg("fake@nowhere", 1);
        // SAFETY: send(2) on a socket we own, from a live buffer of that
        // length.
        let sent = unsafe {
            libc::send(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                c.as_ptr().cast(),
                c.len(),
                libc::MSG_MORE,
            )
        };
        assert_eq!(sent, c.len() as isize, "{}", caller.name);
        let _ = s.shutdown(Shutdown::Write);
        drain(s);
    });
    let (out, rss) = run_against_fake(port, "C", &[]);
    ends_in_one_line(
        &out,
        rss,
        3,
        "closed the connection after sending its challenge, before etop answered it",
    );
}

#[test]
fn garbage_in_the_handshake_is_one_clear_line() {
    let port = serve(2, |mut s| {
        recv_name(&mut s);
        let _ = s.write_all(&msg(b"\x1b]0;pwned\x07\x1b[2J<html>"));
        drain(s);
    });
    let (out, rss) = run_against_fake(port, "C", &[]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("where its status belongs"), "{out}");
    assert!(!out.stderr.contains('\x1b'), "raw escape on stderr\n{out}");
    assert_small(rss, &out);

    // A peer that is not a node at all (a web server) announces a message
    // it never finishes.
    let port = serve(2, |mut s| {
        recv_name(&mut s);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let (out, rss) = run_against_fake(port, "C", &[]);
    ends_in_one_line(&out, rss, 3, "handshake message announced as");
}

#[test]
fn a_peer_that_accepts_our_digest_but_cannot_prove_its_own_is_refused() {
    let port = serve(2, |mut s| {
        recv_name(&mut s);
        let _ = s.write_all(&msg(b"sok"));
        let _ = s.write_all(&challenge_msg("fake@nowhere", 1));
        let _ = read_msg(&mut s);
        let _ = s.write_all(&msg(&[b'a'; 17]));
        drain(s);
    });
    let (out, rss) = run_against_fake(port, "C", &[]);
    ends_in_one_line(&out, rss, 3, "its answer to our challenge is wrong");
}

// --------------------------------------------------- frames from a fake node

#[test]
fn an_impossible_frame_length_ends_the_connection_with_one_line() {
    let cookie = "FAKECOOKIE";
    let port = serve(2, move |mut s| {
        accept_handshake(&mut s, "fake@nowhere", cookie);
        let _ = s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 112, 131]);
        drain(s);
    });
    let (out, rss) = run_against_fake(port, cookie, &[]);
    assert_eq!(out.code, Some(5), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains("the node sent a 4294967295-byte message; etop accepts at most 16 MB"),
        "{out}"
    );
    assert_small(rss, &out);
}

#[test]
fn crafted_messages_are_dropped_and_a_silent_node_times_out_in_setup() {
    let cookie = "FAKECOOKIE";
    let port = serve(2, move |mut s| {
        let caller = accept_handshake(&mut s, "fake@nowhere", cookie);
        for f in crafted_messages(&caller.pid()) {
            let _ = s.write_all(&f);
        }
        // Ticks, and never an answer.
        for _ in 0..20 {
            if s.write_all(&[0, 0, 0, 0]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        drain(s);
    });
    let started = Instant::now();
    let (out, rss) = run_against_fake(port, cookie, &["--connect-timeout", "2"]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains("did not answer etop's setup (net_kernel:get_net_ticktime) within 2 s"),
        "{out}"
    );
    // The setup as a whole is bounded by --connect-timeout.
    assert!(started.elapsed() < Duration::from_secs(8), "{out}");
    assert_small(rss, &out);
}

// -------------------------------------------------- a real node, hostile

/// etop's pid as the node knows it: the remote pid its agent is linked to.
fn etop_pid_expr(etop_node: &str) -> String {
    format!(
        "[E] = lists:usort([P || P0 <- erlang:processes(), \
                                 {{links, Ls}} <- [erlang:process_info(P0, links)], \
                                 P <- Ls, erlang:is_pid(P), erlang:node(P) =:= '{etop_node}'])"
    )
}

#[test]
fn a_real_node_sending_etop_deep_and_stray_messages_changes_nothing() {
    let node = Node::start(quiet());
    let dir = tempfile::tempdir().expect("temp dir");
    let stats = dir.path().join("stats.jsonl");
    let name = format!("etop_hostile_{}", &crate::util::random_hex()[..8]);
    let mut run = etop([
        "-b",
        "--format",
        "json",
        "-i",
        "0.2",
        "-n",
        "25",
        "--name",
        &name,
        "--stats-file",
        stats.to_str().expect("UTF-8 temp path"),
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .own_memory()
    .spawn();
    run.wait_for_line(QUICK, |l| l.starts_with('{'));
    let etop_node = format!("{name}@{}", crate::util::short_host());
    let sent = node.eval(&format!(
        // Nothing deep may stay bound: the harness reads the bindings back
        // through the same limits.
        "{}, \
         E ! lists:foldl(fun(_, A) -> [A] end, [], lists:seq(1, 2000)), \
         E ! {{hello, stray}}, \
         E ! erlang:list_to_binary(lists:duplicate(100000, $x)), \
         sent",
        etop_pid_expr(&etop_node)
    ));
    assert_eq!(sent, "'sent'");
    let (out, rss) = run.wait_measured(crate::util::ETOP_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout_lines().len(), 25, "every frame came\n{out}");
    assert!(out.stderr.is_empty(), "{out}");
    let last = stats_lines(&stats).pop().expect("stats lines");
    assert!(dropped(&last, "too_big") >= 1, "the deep list: {last}");
    assert!(dropped(&last, "stray") >= 2, "the stray messages: {last}");
    assert_small(rss, &out);
}

// ---------------------------------------- a proxy slipping frames into a node

/// Forwards between etop and a real node; into the node's stream it slips
/// `inject` once the session is running (at the node's `at_frame`th frame),
/// on the first connection only.
fn proxy(node_port: u16, at_frame: usize, inject: fn(&Caller) -> Vec<Vec<u8>>) -> u16 {
    let first = Arc::new(Mutex::new(true));
    serve(8, move |etop_side| {
        let Ok(node_side) = TcpStream::connect(("127.0.0.1", node_port)) else {
            return;
        };
        let caller = Arc::new(Mutex::new(None::<Caller>));
        // etop -> node: its name message (to learn its pid), then bytes.
        {
            let (mut from, mut to) = (
                etop_side.try_clone().expect("clone"),
                node_side.try_clone().expect("clone"),
            );
            let caller = caller.clone();
            std::thread::spawn(move || {
                let Ok(m) = read_msg(&mut from) else { return };
                if m.len() > 15 {
                    *caller.lock().unwrap_or_else(|p| p.into_inner()) = Some(Caller {
                        name: String::from_utf8_lossy(&m[15..]).into_owned(),
                        creation: u32::from_be_bytes([m[9], m[10], m[11], m[12]]),
                    });
                }
                let _ = to.write_all(&msg(&m));
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
        }
        // node -> etop: handshake messages up to the ack, then frames.
        let (mut from, mut to) = (node_side, etop_side);
        let inject_here = std::mem::take(&mut *first.lock().unwrap_or_else(|p| p.into_inner()));
        loop {
            let Ok(m) = read_msg(&mut from) else { return };
            if to.write_all(&msg(&m)).is_err() {
                return;
            }
            if m.first() == Some(&b'a') {
                break;
            }
        }
        let mut frames = 0;
        while let Ok(len) = read_exact_vec(&mut from, 4) {
            let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let Ok(body) = read_exact_vec(&mut from, n) else {
                break;
            };
            if to
                .write_all(&len)
                .and_then(|()| to.write_all(&body))
                .is_err()
            {
                break;
            }
            frames += 1;
            if inject_here && frames == at_frame {
                let who = caller.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(who) = who {
                    for f in inject(&who) {
                        let _ = to.write_all(&f);
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    })
}

fn node_port(node: &Node) -> u16 {
    etop::node::epmd::names("localhost", Duration::from_secs(2))
        .expect("EPMD")
        .into_iter()
        .find(|(n, _)| *n == node.name)
        .map(|(_, p)| p)
        .expect("the node in EPMD")
}

#[test]
fn crafted_frames_in_a_live_session_are_dropped_and_counted() {
    let node = Node::start(quiet());
    let port = proxy(node_port(&node), 10, |who| crafted_messages(&who.pid()));
    let dir = tempfile::tempdir().expect("temp dir");
    let stats = dir.path().join("stats.jsonl");
    let (out, rss) = etop([
        "-b",
        "--format",
        "json",
        "-i",
        "0.2",
        "-n",
        "25",
        "--port",
        &port.to_string(),
        "--stats-file",
        stats.to_str().expect("UTF-8 temp path"),
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .own_memory()
    .spawn()
    .wait_measured(crate::util::ETOP_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout_lines().len(), 25, "{out}");
    assert!(out.stderr.is_empty(), "{out}");
    let last = stats_lines(&stats).pop().expect("stats lines");
    assert!(dropped(&last, "malformed") >= 3, "{last}");
    assert!(dropped(&last, "too_big") >= 1, "{last}");
    assert_small(rss, &out);
}

#[test]
fn an_impossible_length_in_a_live_session_ends_that_connection_and_etop_attaches_again() {
    let node = Node::start(quiet());
    let port = proxy(node_port(&node), 10, |_| {
        vec![vec![0xFF, 0xFF, 0xFF, 0xFF, 112]]
    });
    let (out, rss) = etop([
        "-b",
        "--format",
        "json",
        "-i",
        "0.2",
        "-n",
        "20",
        "--port",
        &port.to_string(),
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .own_memory()
    .spawn()
    .wait_measured(crate::util::ETOP_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout_lines().len(), 20, "{out}");
    // The connection that read the impossible length was closed; etop
    // attached again (a second first frame, without rates) and went on.
    let first_frames = out
        .stdout_lines()
        .iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON frame");
            v["header"]["window_secs"].is_null()
        })
        .count();
    assert_eq!(first_frames, 2, "one reconnect\n{out}");
    assert!(out.stderr.is_empty(), "{out}");
    assert_small(rss, &out);
}

// ------------------------------------------------------------ fake EPMDs

fn fake_epmd(answer: fn(u8, &mut TcpStream)) -> u16 {
    serve(4, move |mut s| {
        let Ok(req) = read_msg(&mut s) else { return };
        answer(req.first().copied().unwrap_or(0), &mut s);
    })
}

fn run_with_epmd(epmd_port: u16, extra: &[&str]) -> (crate::util::Output, u64) {
    let mut args = vec!["--once"];
    args.extend(extra);
    let target = fake_target();
    args.push(&target);
    etop(args)
        .cookie_env("C")
        .env("ERL_EPMD_PORT", &epmd_port.to_string())
        .own_memory()
        .spawn()
        .wait_measured(QUICK)
}

#[test]
fn an_epmd_that_streams_names_forever_is_cut_off() {
    let port = fake_epmd(|req, s| match req {
        // PORT_PLEASE2: unknown, so etop asks for the names.
        122 => {
            let _ = s.write_all(&[119, 1]);
        }
        _ => {
            let _ = s.write_all(&[0, 0, 0x11, 0x11]);
            let line = b"name flood_0123456789 at port 4370\n".repeat(100);
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end && s.write_all(&line).is_ok() {}
        }
    });
    let (out, rss) = run_with_epmd(port, &[]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains(&format!("EPMD on {}:{port}", crate::util::short_host())),
        "{out}"
    );
    assert!(line.contains("goes on past 256 KB"), "{out}");
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
    assert_small(rss, &out);
}

#[test]
fn an_epmd_that_sends_garbage_is_one_clear_line() {
    let port = fake_epmd(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let (out, rss) = run_with_epmd(port, &[]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("sent a reply etop cannot use"), "{out}");
    assert!(line.contains("not 119"), "{out}");
    assert_small(rss, &out);
}

#[test]
fn an_epmd_that_never_answers_times_out() {
    let port = fake_epmd(|_, _| std::thread::sleep(Duration::from_secs(10)));
    let (out, rss) = run_with_epmd(port, &["--connect-timeout", "1"]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains("cannot reach EPMD") && line.contains("timed out"),
        "{out}"
    );
    assert!(out.elapsed < Duration::from_secs(5), "{out}");
    assert_small(rss, &out);
}
