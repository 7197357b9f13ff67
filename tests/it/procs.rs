//! The process table: each sort puts the right process first, in text, CSV
//! and JSON; windows, totals, schedulers, the OS line, Elixir names.

use crate::util::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn u64_field(v: &Value, what: &str, out: &crate::util::Output) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is {v}, not a number\n{out}"))
}

#[test]
fn msgq_sort_puts_the_flooded_worker_first() {
    // 100k idle processes make the scan realistic; the flood outpaces the
    // worker (2000/s against ~500/s), so its mailbox is the biggest by far.
    let node = Node::start(NodeOpts {
        idle: 100_000,
        flood_per_sec: 2000,
        ..Default::default()
    });

    let out = etop(["--once", "--sort", "msgq", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let rows = parse_table(&out);
    assert_eq!(rows.len(), 10, "default is 10 rows\n{out}");
    assert_eq!(rows[0]["Name or Initial Func"], "metrics_worker", "{out}");
    let queues: Vec<u64> = rows
        .iter()
        .map(|r| {
            r["MsgQ"]
                .parse()
                .unwrap_or_else(|_| panic!("MsgQ '{}' is not a number\n{out}", r["MsgQ"]))
        })
        .collect();
    assert!(queues[0] > 0, "the worker's mailbox is empty\n{out}");
    assert!(
        queues.windows(2).all(|w| w[0] >= w[1]),
        "rows are not sorted by MsgQ: {queues:?}\n{out}"
    );
    for r in &rows {
        assert!(is_local_pid(&r["Pid"]), "bad pid '{}'\n{out}", r["Pid"]);
    }

    let out = etop(["--once", "--sort", "msgq", "--format", "csv", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let records = parse_csv(&out.stdout);
    assert_eq!(
        records[0].join(","),
        "time,node,pid,name,registered_name,initial_call,reds,reds_kind,reds_pct,memory_bytes,heap_bytes,bin_bytes,msgq,\
         current_function",
        "first line is not the CSV header\n{out}"
    );
    let col = |name: &str| {
        records[0]
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no '{name}' column\n{out}"))
    };
    let (reg, msgq, pid) = (col("registered_name"), col("msgq"), col("pid"));
    assert_eq!(records.len(), 11, "header and 10 rows\n{out}");
    for r in &records[1..] {
        assert_eq!(r.len(), records[0].len(), "ragged row {r:?}\n{out}");
        assert!(is_local_pid(&r[pid]), "bad pid '{}'\n{out}", r[pid]);
    }
    assert_eq!(records[1][reg], "metrics_worker", "{out}");
    let q: u64 = records[1][msgq].parse().expect("msgq is a number");
    assert!(q > 0, "the worker's mailbox is empty\n{out}");

    let out = etop(["--once", "--sort", "msgq", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let frames = json_lines(&out);
    assert_eq!(frames.len(), 1, "--once prints one JSON line\n{out}");
    let f = &frames[0];
    assert_eq!(f["rows"][0]["registered_name"], "metrics_worker", "{out}");
    assert!(
        u64_field(&f["rows"][0]["msgq"], "rows[0].msgq", &out) > 0,
        "{out}"
    );
    assert!(
        is_local_pid(f["rows"][0]["pid"].as_str().unwrap_or("")),
        "{out}"
    );
    assert_eq!(f["header"]["sort"], "msgq", "{out}");
    assert!(
        u64_field(&f["header"]["procs"], "header.procs", &out) >= 100_000,
        "{out}"
    );
    // --once samples twice, one second apart (start to start). etop measures
    // the window between the two replies, so it moves by the difference of
    // the two scans' durations: about ±0.1 s on an idle host, up to +0.9 s
    // (seen 1.89 s) when the 2-core host is saturated. The bounds still tell
    // the 1 s window from the 5 s default interval or a missing baseline.
    let w = f["header"]["window_secs"].as_f64().unwrap_or(-1.0);
    assert!(
        (0.5..=2.5).contains(&w),
        "window_secs {w} is not ~1 s\n{out}"
    );
}

#[test]
fn reductions_sort_puts_the_busy_loop_first() {
    let node = Node::start(NodeOpts {
        busy: 1,
        ..Default::default()
    });
    // The busy process is a fun, so it has no name: find it by its stack.
    let busy = node.eval_term(
        "[P || P <- erlang:processes(), \
               case erlang:process_info(P, current_stacktrace) of \
                 {current_stacktrace, S} -> \
                   lists:any(fun({etop_demo, busy, _, _}) -> true; (_) -> false end, S); \
                 _ -> false \
               end]",
    );
    let busy: Vec<String> = etop::dist::term::list_elems(&busy)
        .unwrap_or_else(|| panic!("not a list: {busy}"))
        .iter()
        .map(local_pid)
        .collect();
    assert_eq!(busy.len(), 1, "the node runs one busy loop: {busy:?}");

    let out = etop(["--once", "-s", "reds", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let frames = json_lines(&out);
    assert_eq!(frames.len(), 1, "{out}");
    let f = &frames[0];
    let first = &f["rows"][0];
    assert_eq!(
        first["pid"],
        busy[0].as_str(),
        "first row is not the busy loop\n{out}"
    );
    assert_eq!(first["initial_call"], "erlang:apply/2", "{out}");
    assert!(
        u64_field(&first["reds"], "rows[0].reds", &out) > 1000,
        "{out}"
    );
    let reds: Vec<u64> = f["rows"]
        .as_array()
        .expect("rows array")
        .iter()
        .map(|r| r["reds"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        reds.windows(2).all(|w| w[0] >= w[1]),
        "rows are not sorted by reductions: {reds:?}\n{out}"
    );
    let cpu = f["header"]["cpu_pct"]
        .as_f64()
        .unwrap_or_else(|| panic!("no header.cpu_pct\n{out}"));
    assert!(cpu > 0.0 && cpu <= 100.0, "cpu_pct {cpu}\n{out}");
}

#[test]
fn a_reductions_stream_says_which_rows_hold_totals_and_which_windows() {
    let node = Node::start(NodeOpts { busy: 1, ..quiet() });
    let out = etop([
        "-n", "3", "-i", "0.3", "-l", "5", "--format", "csv", &node.full,
    ])
    .cookie_env(&node.cookie)
    .run()
    .success();
    let records = parse_csv(&out.stdout);
    let col = |name: &str| {
        records[0]
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no '{name}' column\n{out}"))
    };
    let (time, reds, kind) = (col("time"), col("reds"), col("reds_kind"));
    let rows = &records[1..];
    assert_eq!(rows.len(), 15, "three frames of five rows\n{out}");
    // The first frame of a reductions stream holds totals, and says so; the
    // others the reductions of their window. Every row has its number.
    for (i, r) in rows.iter().enumerate() {
        let want = if i < 5 { "total" } else { "window" };
        assert_eq!(r[kind], want, "row {i}\n{out}");
        r[reds]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("row {i}: '{}' is not a count\n{out}", r[reds]));
    }
    assert!(rows[..5].iter().all(|r| r[time] == rows[0][time]), "{out}");
}

#[test]
fn iterations_and_interval() {
    let node = Node::start(NodeOpts::default());
    let out = etop(["-n", "3", "-i", "0.3", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let frames = json_lines(&out);
    assert_eq!(frames.len(), 3, "-n 3 prints three frames\n{out}");
    // Frames start one interval apart; each window is measured between two
    // replies, so a late reply lengthens one window and shortens the next
    // (seen 0.42 + 0.18 s on a saturated host). Each window must be of the
    // order of the interval, and their mean close to it.
    let windows: Vec<f64> = frames[1..]
        .iter()
        .map(|f| f["header"]["window_secs"].as_f64().unwrap_or(-1.0))
        .collect();
    for w in &windows {
        assert!(
            (0.15..=0.9).contains(w),
            "window_secs {w} for -i 0.3\n{out}"
        );
    }
    let mean = windows.iter().sum::<f64>() / windows.len() as f64;
    assert!(
        (0.2..=0.6).contains(&mean),
        "mean window {mean:.3} s for -i 0.3 ({windows:?})\n{out}"
    );
}

#[test]
fn text_output_fits_columns() {
    let node = Node::start(NodeOpts::default());
    // Without COLUMNS, a pipe gets full-width lines: the long initial calls of
    // the VM's own processes make some wider than 60, so the check below is
    // not vacuous.
    let wide = etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        wide.stdout_lines().iter().any(|l| l.chars().count() > 60),
        "no line is wider than 60 without COLUMNS\n{wide}"
    );

    let out = etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .env("COLUMNS", "60")
        .run()
        .success();
    for l in out.stdout_lines() {
        assert!(
            l.chars().count() <= 60,
            "line of {} characters: '{l}'\n{out}",
            l.chars().count()
        );
    }
    let rows = parse_table(&out);
    assert!(!rows.is_empty(), "{out}");
    let lines = out.stdout_lines();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Pid "))
        .expect("table header");
    // Header lines too wide for 60 columns are cut between words (` …`),
    // never in the middle of a value; the memory line is one of them.
    let header = &lines[..start];
    assert!(
        header
            .iter()
            .any(|l| l.starts_with("Load:") && l.ends_with(" …")),
        "{out}"
    );
    for l in header.iter().filter(|l| l.contains('…')) {
        assert!(l.ends_with(" …"), "cut inside a word: '{l}'\n{out}");
    }
    for l in &lines[start + 1..] {
        let end = l.find('>').map(|i| i + 1).unwrap_or(0);
        assert!(
            is_local_pid(&l[..end]) && l[end..].starts_with("  "),
            "the Pid column is not followed by two spaces: '{l}'\n{out}"
        );
    }
}

#[test]
fn schedulers_line_shows_each_scheduler() {
    // Two of each kind, so that order and numbering can be seen.
    let node = Node::start(NodeOpts {
        busy: 1,
        erl_args: ["+S", "2:2", "+SDcpu", "2:2"].map(String::from).to_vec(),
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
    // Dirty schedulers are numbered as their threads are (`1_dirty_cpu_sch`),
    // not after the normal ones.
    assert!(
        line.starts_with("Sched: 1 ") && line.contains("  2 ") && line.contains("| dirty cpu: 1 "),
        "'{line}'\n{out}"
    );
    assert!(
        !line.contains(" 3 ") && !line.contains(" 4 "),
        "'{line}'\n{out}"
    );
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
    // In a fixed order, normal first, each numbered within its kind and
    // named as `etop threads` names its thread.
    let order: Vec<(String, u64)> = scheds
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or("?").to_string(),
                s["id"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("normal", 1),
        ("normal", 2),
        ("dirty_cpu", 1),
        ("dirty_cpu", 2),
    ]
    .iter()
    .map(|(k, i)| (k.to_string(), *i))
    .collect();
    assert_eq!(order, want, "{j}");
    let threads = the_json(
        &etop([
            "threads", "--once", "-i", "0.2", "-l", "1000", "--format", "json", &node.name,
        ])
        .run()
        .success(),
    );
    let names: Vec<&str> = threads["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no thread rows: {threads}"))
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for s in scheds {
        let t = s["thread"]
            .as_str()
            .unwrap_or_else(|| panic!("no thread name: {j}"));
        assert!(
            names.contains(&t),
            "{t} is not a thread of the node: {names:?}"
        );
    }
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

// Elixir itself cannot be tested here without an Elixir install; what can be
// is that `--names elixir` writes an Erlang node's modules the way Elixir
// does (`:mod.fun/arity`), and that `auto` does not on an Erlang node.
#[test]
fn names_elixir_writes_erlang_modules_with_a_colon() {
    let node = Node::start(quiet());
    let run = |extra: &[&str]| {
        let mut args = vec!["--once", "-i", QUICK, "-s", "memory", "-l", "200"];
        args.extend(extra);
        args.extend(["--format", "json", &node.full]);
        etop(&args).cookie_env(&node.cookie).run().success()
    };
    let auto_out = run(&[]);
    let elixir_out = run(&["--names", "elixir"]);
    let worker = |out: &crate::util::Output| -> Value {
        let frame = the_json(out);
        frame["rows"]
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["registered_name"] == "metrics_worker")
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no metrics_worker row\n{out}"))
    };
    let w = worker(&auto_out);
    assert_eq!(
        w["current_function"], "etop_demo:metrics_worker/1",
        "{auto_out}"
    );
    let w = worker(&elixir_out);
    assert_eq!(w["name"], "metrics_worker", "{elixir_out}");
    assert_eq!(
        w["current_function"], ":etop_demo.metrics_worker/1",
        "{elixir_out}"
    );

    // Every function on an Erlang node is an Erlang module's: `:m.f/a`.
    let elixir_style = |s: &str| {
        s.strip_prefix(':')
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(m, fa)| Some((m, fa.rsplit_once('/')?)))
            .is_some_and(|(m, (_, a))| {
                !m.is_empty() && !m.contains(':') && a.parse::<u32>().is_ok()
            })
    };
    let frame = the_json(&elixir_out);
    let rows = frame["rows"].as_array().expect("rows");
    assert!(rows.len() > 20, "{elixir_out}");
    for r in rows {
        let cf = r["current_function"].as_str().unwrap_or("");
        assert!(elixir_style(cf), "current function '{cf}'\n{elixir_out}");
        if let Some(ic) = r["initial_call"].as_str() {
            assert!(elixir_style(ic), "initial call '{ic}'\n{elixir_out}");
        }
    }
}
