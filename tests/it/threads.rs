//! `etop threads`: the VM's OS threads, without a cookie.

use crate::util::*;
use std::collections::HashMap;
use std::time::Instant;

/// Clock ticks per second, the unit of CPU times in /proc.
fn clk_tck() -> f64 {
    // SAFETY: sysconf(3) only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(t > 0, "sysconf(_SC_CLK_TCK) = {t}");
    t as f64
}

/// The thread of `pid` whose name (comm) is `name`.
fn thread_named(pid: u32, name: &str) -> u32 {
    let task = format!("/proc/{pid}/task");
    std::fs::read_dir(&task)
        .unwrap_or_else(|e| panic!("{task}: {e}"))
        .filter_map(Result::ok)
        .find(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .and_then(|t| t.file_name().to_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no thread named {name} in {task}"))
}

/// User plus system CPU time of one thread, in clock ticks.
fn thread_ticks(pid: u32, tid: u32) -> u64 {
    let path = format!("/proc/{pid}/task/{tid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> u64 {
        rest.get(n - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no field {n} in {path}: {stat}"))
    };
    field(14) + field(15)
}

#[test]
fn threads_show_the_busy_scheduler_without_a_cookie() {
    let nodes = Node::start_all(vec![
        // One scheduler running a busy loop, on a node whose cookie etop
        // cannot find anywhere: the threads view needs none.
        NodeOpts {
            busy: 1,
            cookie_hidden: true,
            erl_args: vec!["+S".into(), "1".into()],
            ..quiet()
        },
        // Not distributed at all.
        NodeOpts {
            naming: Naming::None,
            ..quiet()
        },
    ]);
    let (busy, plain) = (&nodes[0], &nodes[1]);
    let fake = FakeProc::new(&[busy.os_pid()]);
    let proc_root = fake.arg();

    // The busy scheduler's own CPU time, read here around etop's window: how
    // much CPU etop may report for it whatever else loads the host.
    let sched_tid = thread_named(busy.os_pid(), "1_scheduler");
    let ticks_before = thread_ticks(busy.os_pid(), sched_tid);
    let bracket = Instant::now();
    // Both at once: text by name, JSON by OS pid.
    let text = etop(["threads", "--once", "--proc-root", &proc_root, &busy.name]).spawn();
    let pid = busy.os_pid().to_string();
    let json = etop([
        "threads",
        "--once",
        "--format",
        "json",
        "--proc-root",
        &proc_root,
        &pid,
    ])
    .spawn();
    let json = json.wait(crate::util::ETOP_TIMEOUT).success();
    let bracket = bracket.elapsed().as_secs_f64();
    let used = (thread_ticks(busy.os_pid(), sched_tid) - ticks_before) as f64 / clk_tck();
    let text = text.wait(crate::util::ETOP_TIMEOUT).success();

    let label = format!("{} (beam pid {})", busy.full, busy.os_pid());
    assert!(text.stdout.starts_with(&label), "{text}");
    let rows = parse_aligned(&text, "TID");
    assert!(rows.len() > 1, "{text}");
    assert_eq!(rows[0]["Thread"], "1_scheduler", "{text}");
    assert_eq!(rows[0]["TID"], sched_tid.to_string(), "{text}");
    let pct = |r: &HashMap<String, String>, col: &str| -> f64 {
        r[col]
            .parse()
            .unwrap_or_else(|_| panic!("{col} '{}' is not a number\n{text}", r[col]))
    };
    let cpu = pct(&rows[0], "CPU%");
    assert!(
        cpu > pct(&rows[1], "CPU%"),
        "the busy scheduler is not ahead\n{text}"
    );
    assert!(
        (cpu - pct(&rows[0], "User%") - pct(&rows[0], "Sys%")).abs() < 0.15,
        "CPU% is not User% + Sys%\n{text}"
    );

    let frame = the_json(&json);
    assert_eq!(frame["label"], label.as_str(), "{json}");
    let row = &frame["rows"][0];
    assert_eq!(row["name"], "1_scheduler", "{json}");
    assert_eq!(row["tid"].as_u64(), Some(u64::from(sched_tid)), "{json}");
    let cpu = num(&row["cpu_pct"], "rows[0].cpu_pct", &json);
    let window = num(&frame["window_secs"], "window_secs", &json);
    assert!((0.9..bracket).contains(&window), "{json}");
    // What etop says the thread used in its window is at most what it used
    // around it, and at least that less the time outside the window; a tick
    // or two of rounding either way. On an idle host this pins CPU% near
    // 100; on a loaded one the busy thread gets less, and etop must say so.
    let reported = cpu / 100.0 * window;
    let slack = 3.0 / clk_tck();
    assert!(
        reported <= used + slack,
        "etop reports {reported:.3} s of CPU in its {window:.3} s window; \
         the thread used {used:.3} s in the {bracket:.3} s around it\n{json}"
    );
    assert!(
        reported >= used - (bracket - window) - slack,
        "etop reports {reported:.3} s of CPU in its {window:.3} s window; \
         the thread used {used:.3} s in the {bracket:.3} s around it\n{json}"
    );
    assert!(
        cpu <= 100.5,
        "one thread, more than one core: {cpu}%\n{json}"
    );

    // The node that is not distributed: by --pid, and as the only VM.
    let fake = FakeProc::new(&[plain.os_pid()]);
    let proc_root = fake.arg();
    let pid = plain.os_pid().to_string();
    for args in [
        vec!["threads", "--once", "-i", QUICK, "-l", "100", "--pid", &pid],
        vec!["threads", "--once", "-i", QUICK, "-l", "100"],
    ] {
        let out = etop(args.iter().chain(&["--proc-root", proc_root.as_str()]))
            .run()
            .success();
        let head = out.stdout_lines().first().copied().unwrap_or("");
        assert!(head.contains(&format!("beam pid {pid}")), "{out}");
        let names: Vec<String> = parse_aligned(&out, "TID")
            .into_iter()
            .map(|r| r["Thread"].clone())
            .collect();
        assert!(
            names.iter().any(|n| n == "1_scheduler"),
            "no scheduler thread in {names:?}\n{out}"
        );
    }
    // The process view needs a distributed node, and says what works instead.
    let out = etop(["--once", "--proc-root", &proc_root, &pid]).run();
    assert_eq!(out.code, Some(2), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("not a distributed node"), "{out}");
    assert!(line.contains(&format!("etop threads --pid {pid}")), "{out}");
}
