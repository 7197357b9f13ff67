//! The interactive top on a pseudo-terminal, read back through a terminal
//! emulator: each key changes what the screen says; `--once` leaves its
//! frame on the normal screen; the filter keeps only matching rows; Enter
//! opens the selected process; a growing mailbox raises its warning.

use crate::util::pty::Terminal;
use crate::util::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// etop on a 140×40 terminal, its table on screen.
fn top(node: &Node, args: &[&str]) -> Terminal {
    let mut t = Terminal::start(node, args, 140, 40);
    t.wait_shown(WAIT, "the table", |s| s.contains("Current Function"));
    t
}

/// Types `keys`, then waits for the screen to say `what`.
fn press(t: &mut Terminal, keys: &[u8], what: &str) {
    t.type_keys(keys);
    t.wait_shown(WAIT, what, |s| s.contains(what));
}

/// The table's rows on screen: lines that start with a pid, after the mark
/// column.
fn table_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|l| l.trim_start_matches(['!', ' ']).starts_with("<0."))
        .map(str::to_string)
        .collect()
}

/// The pid in the selected (reverse-video) row.
fn selected_pid(t: &Terminal) -> Option<String> {
    let s = t.screen();
    let (rows, cols) = s.size();
    let (rows, cols): (u16, u16) = (rows.into(), cols.into());
    (0..rows).find_map(|r| {
        let line: String = (0..cols)
            .filter_map(|c| s.cell(r, c))
            .map(|c| c.contents())
            .collect();
        let inverse = (0..cols)
            .filter_map(|c| s.cell(r, c))
            .any(|c| c.inverse() && !c.contents().trim().is_empty());
        let pid = line.split_whitespace().find(|w| w.starts_with("<0."))?;
        inverse.then(|| pid.to_string())
    })
}

#[test]
fn sort_keys_pause_interval_accumulate_and_help() {
    let node = Node::start(NodeOpts {
        busy: 1,
        ..NodeOpts::default()
    });
    let mut t = top(&node, &["-i", "0.5"]);
    let shown = t.shown();
    assert!(shown.contains("sorted by reductions"), "{shown}");
    // Every line of the terminal is used: far more than the old 10 rows.
    assert!(table_rows(&shown).len() > 20, "rows:\n{shown}");
    assert!(shown.contains("every 0.5 s"), "{shown}");

    press(&mut t, b"M", "sorted by memory");
    press(&mut t, b"Q", "sorted by message queue");
    press(&mut t, b"T", "sorted by total heap");
    press(&mut t, b"B", "sorted by binary memory");
    press(&mut t, b"R", "sorted by reductions");
    // htop's < and >: the column to the right of Reds is Memory.
    press(&mut t, b">", "sorted by memory");
    press(&mut t, b"<", "sorted by reductions");

    press(&mut t, b" ", "PAUSED");
    t.type_keys(b" ");
    t.wait_shown(WAIT, "the pause lifted", |s| !s.contains("PAUSED"));

    press(&mut t, b"+", "every 1.0 s");
    press(&mut t, b"-", "every 0.5 s");

    press(&mut t, b"a", "reductions: totals");
    t.type_keys(b"a");
    t.wait_shown(WAIT, "reductions over a window", |s| {
        s.contains("reductions over")
    });

    press(&mut t, b"?", "pause");
    let help = t.shown();
    assert!(help.contains("filter"), "{help}");
    // Esc closes the help and does not quit.
    t.type_keys(b"\x1b");
    t.wait_shown(WAIT, "the table again", |s| {
        s.contains("Current Function") && !s.contains("any key closes")
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        t.shown().contains("Current Function"),
        "Esc must not quit:\n{}",
        t.shown()
    );
    t.type_keys(b"q");
    assert_eq!(t.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn the_selection_moves_and_follows_its_pid_across_sorts() {
    let node = Node::start(NodeOpts::default());
    // Every process in every frame (more than the screen holds), so the
    // selected one is always in the next frame whatever the sort.
    let mut t = top(&node, &["-i", "0.5", "-l", "1000"]);
    // Paused, the rows hold still while the selection moves.
    press(&mut t, b" ", "PAUSED");
    std::thread::sleep(Duration::from_millis(600));
    let rows = table_rows(&t.shown());
    let at = |i: usize| {
        rows[i]
            .split_whitespace()
            .find(|w| w.starts_with("<0."))
            .unwrap()
            .to_string()
    };
    let settle = |t: &Terminal, want: &str| {
        for _ in 0..50 {
            if selected_pid(t).as_deref() == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "selection is {:?}, not {want}:\n{}",
            selected_pid(t),
            t.shown()
        );
    };
    settle(&t, &at(0));
    t.type_keys(b"\x1b[B\x1b[B");
    settle(&t, &at(2));
    t.type_keys(b"\x1b[A");
    settle(&t, &at(1));
    // Home and End: the first and the last row of the frame; End scrolls.
    t.type_keys(b"\x1b[F");
    for _ in 0..50 {
        if selected_pid(&t).is_some_and(|p| !rows.iter().any(|r| r.contains(&p))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = selected_pid(&t).expect("a selection");
    assert!(
        !rows.iter().any(|r| r.contains(&last)),
        "End must reach a row below the first screen: {last}"
    );
    t.type_keys(b"\x1b[H");
    settle(&t, &at(0));
    // A page down leaves the first screen's rows; a page up comes back.
    t.type_keys(b"\x1b[6~");
    for _ in 0..50 {
        if selected_pid(&t).is_some_and(|p| p != at(0)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let paged = selected_pid(&t).expect("a selection");
    assert!(
        rows.iter()
            .position(|r| r.contains(&paged))
            .is_none_or(|i| i > 10),
        "a page moves far: {paged}"
    );
    t.type_keys(b"\x1b[5~");
    settle(&t, &at(0));
    t.type_keys(b"\x1b[B\x1b[B");
    settle(&t, &at(2));
    // Resumed and sorted anew, the selection stays on its pid.
    let third = at(2);
    t.type_keys(b" ");
    press(&mut t, b"M", "sorted by memory");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        selected_pid(&t).as_deref(),
        Some(third.as_str()),
        "{}",
        t.shown()
    );
    t.type_keys(b"q");
    assert_eq!(t.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn the_filter_keeps_only_matching_rows_and_esc_clears_it() {
    let node = Node::start(NodeOpts {
        flood_per_sec: 50,
        ..NodeOpts::default()
    });
    let mut t = top(&node, &["-i", "0.5"]);
    press(&mut t, b"/", "filter:");
    // A parse error keeps the prompt open and says where it is.
    t.type_keys(b"mq>>\r");
    t.wait_shown(WAIT, "the parse error", |s| s.contains("at character 4"));
    t.type_keys(b"\x7f\x7f\x7f\x7f");
    t.type_keys(b"metrics_worker\r");
    t.wait_shown(WAIT, "only the metrics worker", |s| {
        let rows = table_rows(s);
        !rows.is_empty() && rows.iter().all(|r| r.contains("metrics_worker"))
    });
    assert!(
        t.shown().contains("filter: metrics_worker"),
        "{}",
        t.shown()
    );
    // Esc clears the filter, and etop keeps running.
    t.type_keys(b"\x1b");
    t.wait_shown(WAIT, "every process again", |s| table_rows(s).len() > 5);
    t.type_keys(b"q");
    assert_eq!(t.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn enter_opens_the_selected_process_and_esc_goes_back() {
    let node = Node::start(NodeOpts {
        flood_per_sec: 2000,
        ..NodeOpts::default()
    });
    let worker = local_pid(&node.eval_term("erlang:whereis(metrics_worker)"));
    let mut t = top(&node, &["-i", "0.5", "--sort", "msgq"]);
    // The flooded worker leads the message-queue sort and its mailbox grows
    // frame after frame: its row is marked and a warning names it.
    t.wait_shown(WAIT, "the mailbox warning", |s| {
        s.contains("metrics_worker: mailbox") && s.contains("over 3 frames")
    });
    let rows = table_rows(&t.shown());
    assert!(
        rows[0].starts_with('!') && rows[0].contains(&worker),
        "{rows:?}"
    );
    assert_eq!(selected_pid(&t).as_deref(), Some(worker.as_str()));
    t.type_keys(b"\r");
    t.wait_shown(WAIT, "the detail", |s| s.contains("Monitored by"));
    let detail = t.shown();
    for word in [
        "Stack",
        "Links",
        "Monitors",
        "metrics_worker",
        &worker,
        "Mailbox",
    ] {
        assert!(detail.contains(word), "{word} missing:\n{detail}");
    }
    t.type_keys(b"\x1b");
    t.wait_shown(WAIT, "the table again", |s| s.contains("Current Function"));
    t.type_keys(b"q");
    assert_eq!(t.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn once_leaves_its_frame_on_the_normal_screen() {
    let node = Node::start(NodeOpts::default());
    let mut t = Terminal::start(&node, &["--once"], 140, 40);
    assert_eq!(t.wait_exit(WAIT), 0, "{}", t.text());
    let raw = t.text();
    assert!(
        !raw.contains("\x1b[?1049h"),
        "--once must not use the alternate screen"
    );
    let shown = t.shown();
    assert!(shown.contains("Current Function"), "{shown}");
    assert!(shown.contains("sorted by reductions"), "{shown}");
    // --once fills the Reds column it promises.
    let rows = table_rows(&shown);
    assert!(!rows.is_empty());
    let dashes = rows
        .iter()
        .filter(|r| r.split_whitespace().any(|w| w == "-"))
        .count();
    assert_eq!(dashes, 0, "cells left unknown:\n{shown}");
}

#[test]
fn etop_proc_prints_one_process_in_text_and_json() {
    let node = Node::start(NodeOpts {
        flood_per_sec: 200,
        ..NodeOpts::default()
    });
    let worker = local_pid(&node.eval_term("erlang:whereis(metrics_worker)"));
    // Something that watches the worker, so that its page has a monitor.
    node.eval(
        "W = erlang:whereis(metrics_worker), \
         erlang:spawn(fun() -> erlang:monitor(process, W), receive stop -> ok end end), ok.",
    );
    let out = etop(["proc", &worker, &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    for word in [
        "metrics_worker",
        "Stack",
        "Links",
        "Monitors",
        "Monitored by (1)",
        "Mailbox",
    ] {
        assert!(out.stdout.contains(word), "{word} missing\n{out}");
    }
    let out = etop(["proc", &worker, &node.full, "--format", "json"])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "one snapshot\n{out}");
    let d = &lines[0];
    assert_eq!(d["pid"], worker.as_str());
    assert_eq!(d["registered_name"], "metrics_worker");
    assert_eq!(d["monitored_by_count"], 1, "{d}");
    assert!(
        d["monitored_by"].as_array().is_some_and(|a| a.len() == 1),
        "{d}"
    );
    assert!(d["links"].is_array() && d["monitors"].is_array(), "{d}");
    assert!(
        d["current_stacktrace"]
            .as_array()
            .is_some_and(|s| !s.is_empty() && s[0]["function"].is_string()),
        "{d}"
    );
    assert!(d["message_queue_len"].as_u64().is_some(), "{d}");
    // Never mailbox contents, state or dictionary values.
    for key in ["messages", "dictionary", "state"] {
        assert!(d.get(key).is_none(), "{key} must never be read: {d}");
    }
}

#[test]
fn a_process_that_does_not_exist_is_one_line() {
    let node = Node::start(NodeOpts::default());
    let out = etop(["proc", "<0.31999.0>", &node.full])
        .cookie_env(&node.cookie)
        .run();
    assert_eq!(out.code, Some(6), "{out}");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("no such process"), "{out}");
}

/// The node bounds a detail request in time: a process that does not answer
/// within the bound is an error that says so, not a frozen screen.
#[test]
fn a_detail_request_is_bounded_in_time_on_the_node() {
    use etop::agent::collector::Collector;
    use etop::error::Error;
    let node = Node::start(NodeOpts::default());
    let name = format!("etop_t_detail_{}", &random_hex()[..8]);
    let mut c = Collector::connect(node.connect_opts_for(&name), 0)
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", node.log()));
    let pid = local_pid(&node.eval_term("erlang:whereis(init)"));
    let t = Duration::from_secs(15);
    let d = c
        .detail(&pid, 5, Duration::from_secs(2), t)
        .expect("init answers");
    assert_eq!(d.registered_name.as_deref(), Some("init"));
    // No time at all: the answer cannot come in time.
    match c.detail(&pid, 5, Duration::ZERO, t) {
        Err(e @ Error::SlowProcess { .. }) => {
            assert!(e.to_string().contains("did not answer within 0 ms"), "{e}")
        }
        other => panic!("expected a slow-process error, got {other:?}"),
    }
}
