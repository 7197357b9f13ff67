//! `etop watch`, the load-test gate, against real nodes: a growing mailbox
//! fails the run (exit 7) within two frames and is named; growth fires on a
//! mailbox that grows and not on a large flat one; an idle node passes with
//! a summary when --for elapses or on SIGTERM; a lost node is exit 5; a
//! condition that does not parse is exit 2 before anything is reached.

use crate::util::*;
use etop::agent::collector::Collector;
use etop::agent::{SampleRequest, SortKey};
use serde_json::Value;
use std::time::Duration;

/// A node whose `metrics_worker` mailbox grows by about a thousand
/// messages every half second.
fn flooded() -> Node {
    Node::start(NodeOpts {
        flood_per_sec: 3000,
        ..quiet()
    })
}

fn watch(node: &Node, args: &[&str]) -> Output {
    let mut all = vec!["watch"];
    all.extend(args);
    all.push(&node.full);
    etop(&all).cookie_env(&node.cookie).run()
}

/// The frame a line names: `..., frame 3 at ...`.
fn frame_of(line: &str) -> u64 {
    let after = line
        .split(", frame ")
        .nth(1)
        .unwrap_or_else(|| panic!("no frame in '{line}'"));
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame number in '{line}'"))
}

#[test]
fn a_growing_mailbox_fails_the_run_within_two_frames_and_is_named() {
    let node = flooded();
    // The mailbox is past the threshold before etop starts, however slowly
    // a loaded machine runs the node: the first frames must see it.
    let queued = "erlang:element(2, erlang:process_info(erlang:whereis(metrics_worker), message_queue_len)).";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while node.eval_i64(queued) <= 600 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flood never queued 600 messages"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = watch(&node, &["-i", "0.5", "--fail-if", "mq>500"]);
    assert_eq!(out.code, Some(7), "{out}");
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 1, "one line says what held\n{out}");
    let line = lines[0];
    assert!(
        line.starts_with(&format!("FAIL 'mq>500' on {}, frame ", node.full)),
        "{out}"
    );
    assert!(line.contains(" metrics_worker in "), "{out}");
    let pid = line
        .split_whitespace()
        .find(|w| w.starts_with("<0."))
        .unwrap_or_else(|| panic!("no pid\n{out}"));
    assert!(is_local_pid(pid), "{out}");
    let mq: u64 = line
        .rsplit("mq ")
        .next()
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no mailbox length\n{out}"));
    assert!(mq > 500, "{out}");
    assert!(frame_of(line) <= 2, "{out}");
    assert!(out.stderr.is_empty(), "{out}");

    let out = watch(
        &node,
        &["-i", "0.5", "--fail-if", "mq>500", "--format", "json"],
    );
    assert_eq!(out.code, Some(7), "{out}");
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "the event, then the summary\n{out}");
    let ev = &events[0];
    assert_eq!(ev["event"], "became_true", "{out}");
    assert_eq!(ev["condition"], "mq>500", "{out}");
    assert_eq!(ev["node"], node.full.as_str(), "{out}");
    assert_eq!(ev["name"], "metrics_worker", "{out}");
    assert!(
        is_local_pid(ev["pid"].as_str().unwrap_or_default()),
        "{out}"
    );
    assert!(ev["current_function"].is_string(), "{out}");
    assert!(num(&ev["values"]["mq"], "mq", &out) > 500.0, "{out}");
    assert!(num(&ev["frame"], "frame", &out) <= 2.0, "{out}");
    assert!(num(&ev["unix_ms"], "unix_ms", &out) > 1.6e12, "{out}");
    let summary = &events[1];
    assert_eq!(summary["event"], "summary", "{out}");
    assert_eq!(summary["result"], "fail", "{out}");
    assert_eq!(summary["conditions"][0]["held_frames"], 1, "{out}");
    // With standard output a file, the CI log still says what held.
    let err = single_error_line_any(&out);
    assert!(err.starts_with("etop: FAIL 'mq>500'"), "{out}");
}

#[test]
fn keep_going_runs_its_length_and_fails_at_the_end() {
    let node = flooded();
    let out = watch(
        &node,
        &[
            "-i",
            "0.5",
            "--for",
            "3",
            "--keep-going",
            "--format",
            "json",
            "--fail-if",
            "mq>500",
            "--fail-if",
            "node.procs>99%",
        ],
    );
    assert_eq!(out.code, Some(7), "{out}");
    assert!(out.elapsed >= Duration::from_secs(3), "{out}");
    let events = json_lines(&out);
    assert_eq!(events[0]["event"], "became_true", "{out}");
    assert_eq!(events[0]["name"], "metrics_worker", "{out}");
    let summary = events.last().unwrap_or_else(|| panic!("no summary\n{out}"));
    assert_eq!(summary["result"], "fail", "{out}");
    assert!(
        num(
            &summary["conditions"][0]["held_frames"],
            "held_frames",
            &out
        ) >= 3.0,
        "{out}"
    );
    assert_eq!(summary["conditions"][1]["held_frames"], 0, "{out}");
    assert!(
        out.stderr
            .starts_with(&format!("etop: FAIL {}: 1 of 2 conditions held", node.full)),
        "{out}"
    );
}

/// The one line on stderr, whatever is on stdout.
fn single_error_line_any(out: &Output) -> &str {
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "expected one line on stderr\n{out}");
    lines[0]
}

#[test]
fn growth_fires_on_a_growing_mailbox_and_not_on_a_large_flat_one() {
    let nodes = Node::start_all(vec![
        NodeOpts {
            flood_per_sec: 3000,
            ..quiet()
        },
        quiet(),
    ]);
    let (growing, flat) = (&nodes[0], &nodes[1]);

    let out = watch(growing, &["-i", "0.5", "--fail-if", "mq.grows>=3"]);
    assert_eq!(out.code, Some(7), "{out}");
    let line = out.stdout_lines()[0].to_string();
    assert!(line.contains(" metrics_worker in "), "{out}");
    assert!(line.contains(": mq.grows "), "{out}");
    assert!(
        frame_of(&line) >= 4,
        "three frames of growth need four\n{out}"
    );

    // 20,000 messages that nobody reads: large, and flat.
    flat.eval(
        "P = spawn(fun() -> receive never_sent -> ok end end), \
         register(flat_box, P), \
         [P ! {filler, I} || I <- lists:seq(1, 20000)], ok",
    );
    let out = watch(
        flat,
        &[
            "-i",
            "0.5",
            "--for",
            "4",
            "--fail-if",
            "mq.grows>=3",
            "--fail-if",
            "mq>100000",
        ],
    );
    assert_eq!(out.code, Some(0), "{out}");
    let lines = out.stdout_lines();
    assert!(
        lines[0].starts_with(&format!("PASS {}: no condition held in ", flat.full)),
        "{out}"
    );
    assert!(
        lines[1].starts_with("  'mq.grows>=3': worst mq.grows 0"),
        "the flat mailbox never grew\n{out}"
    );
    assert!(
        lines[2].starts_with("  'mq>100000': worst mq 20,000 at frame ")
            && lines[2].contains(" flat_box in "),
        "the worst mailbox, and where\n{out}"
    );
}

#[test]
fn an_idle_node_passes_with_a_summary_after_for_or_a_signal() {
    let node = Node::start(quiet());
    let out = watch(
        &node,
        &[
            "-i",
            "1",
            "--for",
            "5",
            "--fail-if",
            "mq>1000",
            "--fail-if",
            "node.procs>80%",
            "--fail-if",
            "runq>schedulers and node.mem>1G",
        ],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.is_empty(), "{out}");
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 4, "a verdict and a line per condition\n{out}");
    let head = lines[0];
    assert!(
        head.starts_with(&format!("PASS {}: no condition held in ", node.full)),
        "{out}"
    );
    let frames: u64 = head
        .split("held in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count\n{out}"));
    assert!(
        (4..=7).contains(&frames),
        "about one a second for 5 s\n{out}"
    );
    assert!(lines[1].starts_with("  'mq>1000': worst mq "), "{out}");
    assert!(
        lines[2].starts_with("  'node.procs>80%': worst node.procs ") && lines[2].contains(" of "),
        "{out}"
    );
    assert!(lines[3].contains("worst runq "), "{out}");
    assert!(
        out.elapsed >= Duration::from_secs(5),
        "--for 5 ran its length\n{out}"
    );

    // SIGTERM ends a run without --for: a summary, exit 0.
    let mut run = etop([
        "watch",
        "-i",
        "0.2",
        "--format",
        "json",
        "--fail-if",
        "mq>1000",
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .spawn();
    std::thread::sleep(Duration::from_secs(3));
    assert!(run.is_running(), "watch ended on its own");
    run.signal(libc::SIGTERM);
    let out = run.wait(AT_ONCE);
    assert_eq!(out.code, Some(0), "{out}");
    let events = json_lines(&out);
    let summary = events.last().unwrap_or_else(|| panic!("no summary\n{out}"));
    assert_eq!(events.len(), 1, "nothing held, so only the summary\n{out}");
    assert_eq!(summary["event"], "summary", "{out}");
    assert_eq!(summary["result"], "pass", "{out}");
    assert!(num(&summary["frames"], "frames", &out) >= 1.0, "{out}");
    let worst = &summary["conditions"][0]["worst"][0];
    assert_eq!(worst["field"], "mq", "{out}");
    assert!(worst["seen"]["pid"].is_string(), "{out}");
}

#[test]
fn a_condition_that_does_not_parse_is_exit_2_before_connecting() {
    // Nothing answers at this name: reaching for it would be exit 3.
    let nowhere = "etop_t_nowhere@nohost.invalid";
    for (cond, says) in [
        (
            "mq>>5",
            "--fail-if 'mq>>5' at character 4: 'mq>' needs a value",
        ),
        (
            "mq>5 or ets.mem.grows>=3",
            "at character 9: 'ets.mem.grows' is about an ETS table and 'mq' about a process",
        ),
        ("heap>1M", "at character 1: 'heap' is not in the sample"),
        ("node.mem>80%", "at character 10: 'node.mem' has no limit"),
        ("(mq>5", "at character 1: this '(' is not closed"),
    ] {
        let out = etop(["watch", "--fail-if", "mq>1", "--fail-if", cond, nowhere])
            .cookie_env("anything")
            .run();
        assert_eq!(out.code, Some(2), "{out}");
        let line = single_error_line(&out);
        assert!(line.starts_with("etop: "), "{out}");
        assert!(line.contains(says), "{out}");
    }
    let out = etop(["watch", "--format", "csv", "--fail-if", "mq>1", nowhere])
        .cookie_env("anything")
        .run();
    assert_eq!(out.code, Some(2), "{out}");
    let out = etop(["watch", nowhere]).cookie_env("anything").run();
    assert_eq!(out.code, Some(2), "--fail-if is required\n{out}");
}

#[test]
fn a_lost_node_is_exit_5_with_the_summary_last() {
    let node = Node::start(quiet());
    let run = etop([
        "watch",
        "-i",
        "0.3",
        "--format",
        "json",
        "--fail-if",
        "mq>100000",
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .spawn();
    std::thread::sleep(Duration::from_secs(2));
    drop(node);
    let out = run.wait(Duration::from_secs(90));
    assert_eq!(out.code, Some(5), "{out}");
    let events = json_lines(&out);
    let summary = events.last().unwrap_or_else(|| panic!("no summary\n{out}"));
    assert_eq!(summary["result"], "error", "{out}");
    assert!(
        summary["error"]
            .as_str()
            .is_some_and(|e| e.contains("lost")),
        "{out}"
    );
    assert!(out.stderr.contains("lost"), "{out}");
}

#[test]
fn a_growing_ets_table_is_named() {
    let node = Node::start(NodeOpts {
        ets_rows_per_sec: 2000,
        ..quiet()
    });
    let out = watch(&node, &["-i", "0.5", "--fail-if", "ets.mem.grows>=3"]);
    assert_eq!(out.code, Some(7), "{out}");
    let line = out.stdout_lines()[0].to_string();
    assert!(line.contains(": table demo_cache (owner <0."), "{out}");
    assert!(line.contains(": ets.mem.grows 3 ("), "{out}");
}

#[test]
fn the_reductions_window_outlives_the_other_sorts_of_a_frame() {
    let node = Node::start(NodeOpts { busy: 1, ..quiet() });
    let name = format!("etop_t_watch_{}", &random_hex()[..8]);
    let mut c = Collector::connect(node.connect_opts_for(&name), 0)
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", node.log()));
    let t = Duration::from_secs(15);
    let first = c
        .sample(&SampleRequest::new(SortKey::Reductions, 5, true), t)
        .expect("a sample");
    assert!(!first.delta, "a first sample holds totals");
    for key in [SortKey::Msgq, SortKey::Memory] {
        let s = c.snapshot(key, 5, t).expect("a snapshot");
        assert!(!s.delta && !s.rows.is_empty());
    }
    let next = c
        .sample(&SampleRequest::new(SortKey::Reductions, 5, true), t)
        .expect("a sample");
    assert!(
        next.delta,
        "the snapshots between two reductions samples must not cost the window"
    );
    c.close();

    // And etop watch uses it: a busy loop's share of the node's reductions,
    // with a mailbox and a memory sort in the same frames.
    let out = watch(
        &node,
        &[
            "-i",
            "0.5",
            "--fail-if",
            "mq>1000000",
            "--fail-if",
            "mem>100G",
            "--fail-if",
            "reds_pct>30",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, Some(7), "{out}");
    let ev: &Value = &json_lines(&out)[0];
    assert_eq!(ev["condition"], "reds_pct>30", "{out}");
    assert!(
        num(&ev["values"]["reds_pct"], "reds_pct", &out) > 30.0,
        "{out}"
    );
    assert!(num(&ev["frame"], "frame", &out) >= 2.0, "{out}");
}

/// A word in a condition is matched on the node, before the top rows are
/// chosen: a process far down the table is found.
#[test]
fn a_named_process_is_found_however_far_down_it_is() {
    let node = Node::start(quiet());
    // Thirty mailboxes of 1,000 messages, then the one the condition names,
    // with 50: by mailbox length alone it is not in the top 5.
    node.eval(
        "Fill = fun(P, N) -> [P ! x || _ <- lists:seq(1, N)], ok end, \
         Sleeper = fun() -> receive never -> ok end end, \
         [Fill(erlang:spawn(Sleeper), 1000) || _ <- lists:seq(1, 30)], \
         Needle = erlang:spawn(Sleeper), erlang:register(needle_proc, Needle), \
         Fill(Needle, 50).",
    );
    let out = watch(
        &node,
        &[
            "-i",
            "0.5",
            "-l",
            "5",
            "--for",
            "5s",
            "--fail-if",
            "mq>10 needle",
        ],
    );
    assert_eq!(out.code, Some(7), "{out}");
    assert!(out.stdout.contains("needle_proc"), "{out}");
}
