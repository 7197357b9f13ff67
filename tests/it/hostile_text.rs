//! Names chosen by whoever runs a node, or any local process, with control
//! characters and escape sequences in them: on a real node (registered
//! processes, an ETS table, a port) and in /proc (node names for `etop
//! nodes`, a thread name for `etop threads`). Text and CSV show them escaped,
//! nothing raw reaches stdout or stderr, and JSON keeps the exact value.

use crate::util::pty::Terminal;
use crate::util::*;
use std::path::Path;
use std::time::Duration;

/// What a terminal would act on, other than the newlines between lines.
fn raw_control(c: char) -> bool {
    c != '\n' && etop::text::is_unsafe(c)
}

fn assert_nothing_raw(out: &crate::util::Output) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(i) = text.find(raw_control) {
            panic!(
                "a raw control character reached {what} at byte {i}: {:?}\n{out}",
                &text[i.saturating_sub(20)..(i + 20).min(text.len())]
            );
        }
    }
}

/// Registered names as the node has them, and how etop must show them.
const TITLE: &str = "\x1b]0;pwned\x07";

const TITLE_SHOWN: &str = "\\e]0;pwned\\a";

const CLEAR: &str = "\x1b[2J";

const CLEAR_SHOWN: &str = "\\e[2J";

const SPLIT: &str = "a\nb";

const SPLIT_SHOWN: &str = "a\\nb";

/// A one-byte CSI (C1) and a right-to-left override.
const C1_BIDI: &str = "\u{9b}31m\u{202e}evil";

const C1_BIDI_SHOWN: &str = "\\u{9b}31m\\u{202e}evil";

const TABLE: &str = "tab\x1b[31m\nred";

const TABLE_SHOWN: &str = "tab\\e[31m\\nred";

const PORT_ARG: &str = "\x1b]0;port\x07";

const PORT_SHOWN: &str = "\\e]0;port\\a";

/// A node holding processes registered under hostile names (each holding a
/// list, so that they top the memory sort), one of which owns a named ETS
/// table and a port whose name holds an escape sequence.
fn hostile_node() -> Node {
    let node = Node::start(NodeOpts {
        idle: 10,
        ..Default::default()
    });
    let ok = node.eval(
        r#"Hold = fun() -> L = lists:seq(1, 100000), receive stop -> length(L) end end,
           Names = [[27|"]0;pwned"] ++ [7], "\e[2J", "a\nb", [16#9b|"31m"] ++ [16#202e|"evil"]],
           [register(list_to_atom(N), spawn(Hold)) || N <- Names],
           Owner = whereis(list_to_atom("\e[2J")),
           T = ets:new(list_to_atom("tab\e[31m\nred"), [named_table, public]),
           ets:insert(T, {k, v}),
           ets:give_away(T, Owner, []),
           P = open_port({spawn, "cat - '" ++ [27|"]0;port"] ++ [7] ++ "'"}, []),
           erlang:port_connect(P, Owner),
           unlink(P),
           ok"#,
    );
    assert_eq!(ok, "'ok'", "{}", node.log());
    node
}

fn run(node: &Node, args: &[&str]) -> crate::util::Output {
    let mut all = args.to_vec();
    all.extend(["--once", "-i", "0.3", "-l", "10000", &node.full]);
    let out = etop(&all).cookie_env(&node.cookie).run().success();
    assert_nothing_raw(&out);
    out
}

#[test]
fn hostile_names_on_a_node_are_escaped_in_text_and_csv_and_exact_in_json() {
    let node = hostile_node();

    // The process table, sorted by memory so every process is a row.
    let text = run(&node, &["-s", "memory"]);
    for shown in [TITLE_SHOWN, CLEAR_SHOWN, SPLIT_SHOWN, C1_BIDI_SHOWN] {
        let line = text
            .stdout_lines()
            .into_iter()
            .find(|l| l.contains(shown))
            .unwrap_or_else(|| panic!("no row shows '{shown}'\n{text}"));
        // The whole row is on that line: pid first, current function last.
        assert!(line.starts_with("<0."), "'{line}'\n{text}");
        assert!(
            line.trim_end().ends_with(|c: char| c.is_ascii_digit()),
            "'{line}'"
        );
    }
    // Every row has all its cells: no name split a row in two.
    let rows = crate::util::parse_table(&text);
    assert!(
        rows.iter().all(|r| crate::util::is_local_pid(&r["Pid"])),
        "{text}"
    );

    let csv = run(&node, &["-s", "memory", "--format", "csv"]);
    let records = parse_csv(&csv.stdout);
    assert!(records.iter().all(|r| r.len() == records[0].len()), "{csv}");
    let names: Vec<&str> = records.iter().map(|r| r[4].as_str()).collect();
    for shown in [TITLE_SHOWN, CLEAR_SHOWN, SPLIT_SHOWN, C1_BIDI_SHOWN] {
        assert!(names.contains(&shown), "no CSV row named '{shown}'\n{csv}");
    }

    let json = run(&node, &["-s", "memory", "--format", "json"]);
    let frames = json_lines(&json);
    assert_eq!(frames.len(), 1, "{json}");
    let names: Vec<&str> = frames[0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows\n{json}"))
        .iter()
        .filter_map(|r| r["registered_name"].as_str())
        .collect();
    for exact in [TITLE, CLEAR, SPLIT, C1_BIDI] {
        assert!(names.contains(&exact), "JSON lost {exact:?}: {names:?}");
    }
}

#[test]
fn hostile_ets_and_port_names_are_escaped_in_text_and_csv_and_exact_in_json() {
    let node = hostile_node();

    let text = run(&node, &["ets"]);
    let line = text
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains(TABLE_SHOWN))
        .unwrap_or_else(|| panic!("no table shows '{TABLE_SHOWN}'\n{text}"));
    // Its owner's name is escaped on the same line.
    assert!(line.contains(CLEAR_SHOWN), "'{line}'\n{text}");
    let csv = run(&node, &["ets", "--format", "csv"]);
    let records = parse_csv(&csv.stdout);
    assert!(
        records
            .iter()
            .any(|r| r[2] == TABLE_SHOWN && r[4] == CLEAR_SHOWN),
        "{csv}"
    );
    let json = run(&node, &["ets", "--format", "json"]);
    let frame = &json_lines(&json)[0];
    assert!(
        frame["rows"].as_array().is_some_and(|rows| rows
            .iter()
            .any(|r| r["name"] == TABLE && r["owner"] == CLEAR)),
        "{json}"
    );

    let text = run(&node, &["ports"]);
    let line = text
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains(PORT_SHOWN))
        .unwrap_or_else(|| panic!("no port shows '{PORT_SHOWN}'\n{text}"));
    assert!(
        line.contains(CLEAR_SHOWN),
        "owner escaped: '{line}'\n{text}"
    );
    let csv = run(&node, &["ports", "--format", "csv"]);
    assert!(
        parse_csv(&csv.stdout)
            .iter()
            .any(|r| r[3].ends_with(&format!("'{PORT_SHOWN}'")) && r[4] == CLEAR_SHOWN),
        "{csv}"
    );
    let json = run(&node, &["ports", "--format", "json"]);
    let frame = &json_lines(&json)[0];
    assert!(
        frame["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("'{PORT_ARG}'")))
                && r["owner"] == CLEAR)),
        "{json}"
    );
}

/// A fake beam in a fake /proc: `-sname NAME` in its argv, owned by root.
fn fake_beam(root: &Path, pid: u32, sname: &[u8]) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(dir.join("fd")).expect("fake fd dir");
    std::fs::create_dir_all(dir.join("net")).expect("fake net dir");
    std::fs::create_dir_all(dir.join("root")).expect("fake root dir");
    let zeros = vec!["0"; 49].join(" ");
    let write = |name: &str, data: &[u8]| {
        std::fs::write(dir.join(name), data).unwrap_or_else(|e| panic!("fake {name}: {e}"))
    };
    write("stat", format!("{pid} (beam.smp) S {zeros}\n").as_bytes());
    write("status", b"Name:\tbeam.smp\nUid:\t0\t0\t0\t0\n");
    write("environ", b"HOME=/nonexistent\0");
    let mut cmdline = Vec::new();
    for a in [
        b"/usr/lib/erlang/erts-13.0/bin/beam.smp".as_slice(),
        b"--",
        b"-root",
        b"/usr/lib/erlang",
        b"--",
        b"-sname",
        sname,
        b"-setcookie",
        b"c",
    ] {
        cmdline.extend_from_slice(a);
        cmdline.push(0);
    }
    write("cmdline", &cmdline);
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    write("net/tcp", header.as_bytes());
    write("net/tcp6", header.as_bytes());
}

fn fake_proc_root(beams: &[(u32, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir for a fake /proc");
    let root = dir.path();
    std::fs::create_dir_all(root.join("sys/kernel")).expect("fake sys/kernel");
    std::fs::write(root.join("sys/kernel/hostname"), "fakehost\n").expect("fake hostname");
    for (pid, sname) in beams {
        fake_beam(root, *pid, sname);
    }
    dir
}

#[test]
fn etop_nodes_escapes_crafted_node_names() {
    let fake = fake_proc_root(&[
        (4_000_001, b"\x1b]0;pwned\x07"),
        (4_000_002, b"x\xff\x1b[2J\xc2\x9b"),
    ]);
    let root = fake.path().to_str().expect("UTF-8 temp path");
    let text = etop(["nodes", "--proc-root", root]).run().success();
    assert_nothing_raw(&text);
    let rows = crate::util::parse_aligned(&text, "Node");
    let names: Vec<&str> = rows.iter().map(|r| r["Node"].as_str()).collect();
    assert_eq!(
        names,
        ["\\e]0;pwned\\a@fakehost", "x\u{fffd}\\e[2J\\u{9b}@fakehost"],
        "{text}"
    );

    let csv = etop(["nodes", "--proc-root", root, "--format", "csv"])
        .run()
        .success();
    assert_nothing_raw(&csv);
    let records = parse_csv(&csv.stdout);
    assert_eq!(records.len(), 3, "{csv}");
    assert_eq!(records[1][0], "\\e]0;pwned\\a@fakehost", "{csv}");

    let json = etop(["nodes", "--proc-root", root, "--format", "json"])
        .run()
        .success();
    assert_nothing_raw(&json);
    let lines = json_lines(&json);
    assert_eq!(lines[0]["node"], "\x1b]0;pwned\x07@fakehost", "{json}");
    assert_eq!(
        lines[1]["node"], "x\u{fffd}\x1b[2J\u{9b}@fakehost",
        "{json}"
    );

    // An error line that names them is escaped too.
    let err = etop(["--once", "--proc-root", root]).cookie_env("c").run();
    assert_eq!(err.code, Some(2), "{err}");
    assert_nothing_raw(&err);
    let line = crate::util::single_error_line(&err);
    assert!(
        line.contains("\\e]0;pwned\\a@fakehost (pid 4000001)"),
        "{err}"
    );
}

#[test]
fn etop_threads_escapes_a_crafted_thread_name() {
    // A thread of this very process, named by its owner as any process can
    // name its threads.
    let (stop, wait) = std::sync::mpsc::channel::<()>();
    let named = std::thread::Builder::new()
        .name("\x1b]0;thr\x07".into())
        .spawn(move || {
            let _ = wait.recv_timeout(Duration::from_secs(120));
        })
        .expect("spawn a named thread");
    let pid = std::process::id().to_string();
    let text = etop([
        "threads", "--pid", &pid, "--once", "-i", "0.2", "-l", "10000",
    ])
    .run()
    .success();
    assert_nothing_raw(&text);
    assert!(
        text.stdout_lines()
            .iter()
            .any(|l| l.contains("\\e]0;thr\\a")),
        "{text}"
    );
    let json = etop([
        "threads", "--pid", &pid, "--once", "-i", "0.2", "-l", "10000", "--format", "json",
    ])
    .run()
    .success();
    assert_nothing_raw(&json);
    assert!(
        json_lines(&json)[0]["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["name"] == "\x1b]0;thr\x07")),
        "{json}"
    );
    drop(stop);
    let _ = named.join();
}

#[test]
fn hostile_names_show_escaped_on_a_terminal() {
    let node = hostile_node();
    let mut t = Terminal::start(&node, &["-i", "0.3", "-s", "memory"], 120, 30);
    t.wait_for(Duration::from_secs(20), "the escaped names", |s| {
        [TITLE_SHOWN, CLEAR_SHOWN, SPLIT_SHOWN, C1_BIDI_SHOWN]
            .iter()
            .all(|shown| s.contains(shown))
    });
    t.type_keys(b"q");
    t.wait_exit(Duration::from_secs(5));
    let screen = t.text();
    // etop's own escapes (alternate screen, cursor moves, clears) are
    // there; none of the names' are: no title change (OSC, BEL), no C1, no
    // bidi override.
    for raw in ["\x1b]", "\x07", "\u{9b}", "\u{202e}", "a\nb", "a\r\nb"] {
        assert!(
            !screen.contains(raw),
            "{raw:?} reached the terminal:\n{screen:?}"
        );
    }
}
