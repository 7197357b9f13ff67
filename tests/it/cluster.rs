//! Several nodes in one view: `--cluster NODE` and several NODEs, against
//! real clusters of local nodes connected to each other (short and long
//! names). The merged order, the `node` of each row in every format, the
//! strip, nodes stopping and coming back, hidden nodes.

use crate::util::pty::Terminal;
use crate::util::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Nodes sharing one cookie, each connected to all the others.
fn cluster(mut opts: Vec<NodeOpts>) -> Vec<Node> {
    let cookie = format!("C{}", random_hex().to_uppercase());
    for o in &mut opts {
        o.cookie = Some(cookie.clone());
    }
    let nodes = Node::start_all(opts);
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            connect(a, b);
        }
    }
    nodes
}

/// Connects `a` to `b` (both ways, as Erlang does) and waits until `a`
/// lists it.
fn connect(a: &Node, b: &Node) {
    let r = a.eval(&format!("net_kernel:connect_node('{}')", b.full));
    assert_eq!(r, "'true'", "{} cannot connect to {}", a.full, b.full);
    wait_until(AT_ONCE, "the nodes see each other", || {
        a.eval(&format!("lists:member('{}', erlang:nodes())", b.full)) == "'true'"
    });
}

fn quiet_node() -> NodeOpts {
    NodeOpts {
        idle: 20,
        ..Default::default()
    }
}

/// The merged table of a text frame: rows keyed by column title. Cells
/// hold no spaces (names, pids, atoms, numbers).
fn merged_table(out: &Output) -> Vec<HashMap<String, String>> {
    table_under(out, "merged table", |l| {
        l.starts_with("Node ") && l.contains("  Pid  ")
    })
}

/// The strip's lines: from its title line to its total line.
fn strip(out: &Output) -> Vec<String> {
    let lines = out.stdout_lines();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Node ") && l.ends_with("State"))
        .unwrap_or_else(|| panic!("no strip\n{out}"));
    let end = lines[start..]
        .iter()
        .position(|l| l.starts_with("all "))
        .unwrap_or_else(|| panic!("no total line\n{out}"));
    lines[start..=start + end]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

fn node_names(frame: &Value) -> Vec<String> {
    frame["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["node"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn node_of<'a>(frame: &'a Value, node: &str) -> &'a Value {
    frame["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node"] == node))
        .unwrap_or(&Value::Null)
}

fn state_of<'a>(frame: &'a Value, node: &str) -> &'a str {
    node_of(frame, node)["state"].as_str().unwrap_or("absent")
}

/// The test: on a 4-node cluster, the process with the growing
/// mailbox (on a node other than the entry) comes first with its node
/// named, in text, CSV and JSON.
#[test]
fn the_growing_mailbox_comes_first_with_its_node_in_every_format() {
    let mut opts = vec![quiet_node(); 4];
    opts[2].flood_per_sec = 2000;
    let nodes = cluster(opts);
    let (entry, flooded) = (&nodes[0], &nodes[2]);
    let all: HashSet<String> = nodes.iter().map(|n| n.full.clone()).collect();

    let run = |format: &str| {
        etop([
            "--cluster",
            &entry.full,
            "--once",
            "--sort",
            "msgq",
            "--format",
            format,
        ])
        .cookie_env(&entry.cookie)
        .run()
        .success()
    };

    let out = run("text");
    let rows = merged_table(&out);
    assert_eq!(rows.len(), 10, "{out}");
    // Every node has the same host: the Node column shows the name alone.
    assert_eq!(rows[0]["Node"], flooded.name, "{out}");
    assert_eq!(rows[0]["Name or Initial Func"], "metrics_worker", "{out}");
    let queues: Vec<u64> = rows
        .iter()
        .map(|r| r["MsgQ"].parse().unwrap_or(0))
        .collect();
    assert!(queues[0] > 0, "{out}");
    assert!(queues.windows(2).all(|w| w[0] >= w[1]), "{queues:?}\n{out}");
    let shown: HashSet<&str> = rows.iter().map(|r| r["Node"].as_str()).collect();
    for n in &shown {
        assert!(
            nodes.iter().any(|x| x.name == *n),
            "unknown node '{n}'\n{out}"
        );
    }
    assert!(
        out.stdout
            .starts_with(&format!("cluster of 4 nodes via {}", entry.full)),
        "{out}"
    );
    let s = strip(&out);
    assert_eq!(s.len(), 6, "title, 4 nodes, total\n{out}");
    for n in &nodes {
        assert!(
            s.iter()
                .any(|l| l.starts_with(&format!("{} ", n.name)) && l.ends_with("  ok")),
            "no 'ok' strip line for {}\n{out}",
            n.name
        );
    }
    let flooded_line = s
        .iter()
        .find(|l| l.starts_with(&flooded.name))
        .expect("the flooded node's line");
    let max_q: u64 = flooded_line
        .split_whitespace()
        .nth(5)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("MaxMsgQ of '{flooded_line}'\n{out}"));
    assert!(max_q > 0, "{out}");
    assert!(s[5].ends_with("4 of 4 answered"), "{out}");

    let out = run("csv");
    let records = parse_csv(&out.stdout);
    assert_eq!(
        records[0].join(","),
        "time,node,pid,name,registered_name,initial_call,reds,reds_kind,reds_pct,memory_bytes,heap_bytes,bin_bytes,msgq,current_function",
        "{out}"
    );
    assert_eq!(records.len(), 11, "{out}");
    assert_eq!(records[1][1], flooded.full, "{out}");
    assert_eq!(records[1][4], "metrics_worker", "{out}");
    for r in &records[1..] {
        assert!(all.contains(&r[1]), "row of an unknown node {r:?}\n{out}");
    }

    let out = run("json");
    let f = the_json(&out);
    assert_eq!(f["rows"][0]["node"], flooded.full.as_str(), "{out}");
    assert_eq!(f["rows"][0]["registered_name"], "metrics_worker", "{out}");
    assert!(num(&f["rows"][0]["msgq"], "msgq", &out) > 0.0, "{out}");
    for r in f["rows"].as_array().expect("rows") {
        assert!(
            all.contains(r["node"].as_str().unwrap_or("")),
            "row without a known node: {r}\n{out}"
        );
    }
    let listed: HashSet<String> = node_names(&f).into_iter().collect();
    assert_eq!(listed, all, "{out}");
    for n in f["nodes"].as_array().expect("nodes") {
        assert_eq!(n["answered"], true, "{n}\n{out}");
        assert_eq!((&n["epoch"], &n["reconnected"]), (&1.into(), &false.into()));
        assert!(num(&n["procs"], "procs", &out) > 20.0, "{n}\n{out}");
        assert!(
            num(&n["memory_total_bytes"], "memory", &out) > 1e6,
            "{n}\n{out}"
        );
    }
    assert_eq!(f["header"]["node_count"], 4, "{out}");
    assert_eq!(f["header"]["answered"], 4, "{out}");
    assert_eq!(f["header"]["whole_cluster"], true, "{out}");
    assert_eq!(f["header"]["sort"], "msgq", "{out}");
}

/// Long names, and a list mixing a short-name node with a long-name one:
/// our name follows each target's mode.
#[test]
fn long_names_and_a_list_of_both_kinds() {
    let long = NodeOpts {
        long: true,
        ..quiet_node()
    };
    let nodes = cluster(vec![long.clone(), long.clone(), long]);
    let out = etop([
        "--cluster",
        &nodes[0].full,
        "--once",
        "--sort",
        "memory",
        "--format",
        "json",
    ])
    .cookie_env(&nodes[0].cookie)
    .run()
    .success();
    let f = the_json(&out);
    assert_eq!(node_names(&f).len(), 3, "{out}");
    assert_eq!(f["header"]["answered"], 3, "{out}");
    for r in f["rows"].as_array().expect("rows") {
        let n = r["node"].as_str().unwrap_or("");
        assert!(n.ends_with("@127.0.0.1"), "{r}\n{out}");
    }
    let mem: Vec<f64> = f["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| num(&r["memory_bytes"], "memory_bytes", &out))
        .collect();
    assert!(mem.windows(2).all(|w| w[0] >= w[1]), "{mem:?}\n{out}");

    let short = Node::start(NodeOpts {
        cookie: Some(nodes[0].cookie.clone()),
        ..quiet_node()
    });
    let out = etop([
        &short.full,
        &nodes[1].full,
        "--once",
        "-l",
        "40",
        "--format",
        "json",
    ])
    .cookie_env(&short.cookie)
    .run()
    .success();
    let f = the_json(&out);
    assert_eq!(f["header"]["answered"], 2, "{out}");
    assert_eq!(f["header"]["whole_cluster"], false, "{out}");
    let seen: HashSet<&str> = f["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["node"].as_str())
        .collect();
    assert_eq!(
        seen,
        HashSet::from([short.full.as_str(), nodes[1].full.as_str()]),
        "{out}"
    );
    // Different hosts: the Node column keeps them.
    let out = etop([&short.full, &nodes[1].full, "--once", "-l", "40"])
        .cookie_env(&short.cookie)
        .run()
        .success();
    let rows = merged_table(&out);
    assert!(rows.iter().any(|r| r["Node"] == short.full), "{out}");
    assert!(rows.iter().any(|r| r["Node"] == nodes[1].full), "{out}");
}

/// A node stopped mid-session is marked while the others keep updating;
/// started again under its name, it is attached again; a new node is
/// attached when it joins. Losing the entry node does not end the session.
#[test]
fn a_stopped_node_is_marked_and_comes_back() {
    let mut nodes = cluster(vec![quiet_node(); 3]);
    let cookie = nodes[0].cookie.clone();
    let (entry, gone, other) = (
        nodes[0].full.clone(),
        nodes[1].full.clone(),
        nodes[2].full.clone(),
    );
    let gone_name = nodes[1].name.clone();
    let mut etop = etop([
        "--cluster",
        &entry,
        "-i",
        "0.5",
        "--format",
        "json",
        "-l",
        "3",
    ])
    .cookie_env(&cookie)
    .spawn();
    let frame = |l: &str| -> Value { serde_json::from_str(l).unwrap_or(Value::Null) };
    let t = Duration::from_secs(30);
    etop.wait_for_line(t, |l| frame(l)["header"]["answered"] == 3);

    drop(nodes.remove(1));
    let marked = etop.wait_for_line(t, |l| {
        let f = frame(l);
        state_of(&f, &gone) == "failed" && f["header"]["answered"] == 2
    });
    let f = frame(&marked);
    assert!(
        f["nodes"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["node"] == gone.as_str()))
            .is_some_and(|n| n["answered"] == false && n["error"].is_string()),
        "{marked}"
    );
    // The others go on: their clocks move, frame after frame.
    let clock = |f: &Value| f["header"]["clock"].as_str().unwrap_or("").to_string();
    let first = clock(&f);
    etop.wait_for_line(t, |l| {
        let f = frame(l);
        state_of(&f, &other) == "ok" && state_of(&f, &entry) == "ok" && clock(&f) != first
    });

    let back = Node::start(NodeOpts {
        name: Some(gone_name),
        cookie: Some(cookie.clone()),
        ..quiet_node()
    });
    connect(&back, &nodes[0]);
    // Its first answer on the new connection says it is one.
    let again = etop.wait_for_line(t, |l| node_of(&frame(l), &gone)["reconnected"] == true);
    assert_eq!(node_of(&frame(&again), &gone)["epoch"], 2, "{again}");
    etop.wait_for_line(t, |l| {
        let f = frame(l);
        state_of(&f, &gone) == "ok" && f["header"]["answered"] == 3
    });

    // A node new to the cluster is attached at the next frame.
    let joined = Node::start(NodeOpts {
        cookie: Some(cookie.clone()),
        ..quiet_node()
    });
    connect(&joined, &nodes[0]);
    etop.wait_for_line(t, |l| state_of(&frame(l), &joined.full) == "ok");

    // The entry node goes: the session goes on with the rest.
    drop(nodes.remove(0));
    etop.wait_for_line(t, |l| {
        let f = frame(l);
        state_of(&f, &entry) == "failed"
            && state_of(&f, &gone) == "ok"
            && state_of(&f, &other) == "ok"
            && state_of(&f, &joined.full) == "ok"
    });
    assert!(etop.is_running(), "etop ended with its entry node");
    let out = etop.stop();
    assert!(
        out.stderr.contains(&format!("{gone} does not answer: ")),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!("{gone} answers again")),
        "{out}"
    );
}

/// A batch run ends with exit code 5 once no node has answered for the
/// retry window of a single node's run (three intervals, at least 10 s).
#[test]
fn a_batch_run_ends_when_no_node_answers() {
    let mut nodes = cluster(vec![quiet_node(); 2]);
    let mut etop = etop([
        &nodes[0].full,
        &nodes[1].full,
        "-i",
        "0.3",
        "--format",
        "csv",
    ])
    .cookie_env(&nodes[0].cookie)
    .spawn();
    etop.wait_for_line(Duration::from_secs(30), |l| l.contains(&nodes[1].full));
    nodes.clear();
    let out = etop.wait(ETOP_TIMEOUT);
    assert_eq!(out.code, Some(5), "{out}");
    let last = out.stderr_lines().last().copied().unwrap_or_default();
    assert!(
        last.starts_with("etop: lost the connection to every node (2): none answered"),
        "{out}"
    );
    // Retried as a single node's run is, and said once.
    assert_eq!(
        out.stderr.matches("none answered within").count(),
        2,
        "the failure is said once, then given up on\n{out}"
    );
    assert!(out.stderr.contains("; retrying for up to "), "{out}");
}

/// The entry node is resolved as a single node is: EPMD is asked before any
/// cookie is looked for, so a wrong name says so whatever the cookie; a
/// node that is there but whose cookie cannot be found says where it is.
/// The other NODEs are checked before anything is attached.
#[test]
fn the_entry_node_is_resolved_as_a_single_node_is() {
    let running = Node::start(quiet_node());
    let host = short_host();
    let nosuch = format!("nosuch_{}@{host}", &random_hex()[..8]);
    for args in [
        vec!["--cluster", &nosuch],
        vec![&nosuch, &running.full],
        vec!["ports", &nosuch, &running.full],
    ] {
        let mut all = args.clone();
        all.push("--once");
        let out = etop(all).run();
        assert_eq!(out.code, Some(3), "{out}");
        let line = single_error_line(&out);
        assert!(line.starts_with("etop: no node named 'nosuch_"), "{out}");
        assert!(line.contains(&running.name), "{out}");
        assert!(!line.contains("cookie"), "{out}");
    }
    // There, with no cookie anywhere: the cookie line of a single node.
    let empty = FakeProc::new(&[]);
    let out = etop([
        "--once",
        "--proc-root",
        &empty.arg(),
        "--cluster",
        &running.full,
    ])
    .run();
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        single_error_line(&out).starts_with(&format!("etop: no cookie for {}", running.full)),
        "{out}"
    );
    // A malformed second NODE is a usage error, whatever the first.
    let out = etop(["--once", &running.full, "a@b@c"]).run();
    assert_eq!(out.code, Some(2), "{out}");
    single_error_line(&out);
}

/// Ports and ETS tables merge the same way: the busiest socket and the
/// fastest-growing table come first, each with its node.
#[test]
fn ports_and_ets_tables_of_the_cluster() {
    let nodes = cluster(vec![
        quiet_node(),
        NodeOpts {
            udp_per_sec: 1000,
            ..quiet_node()
        },
        NodeOpts {
            ets_rows_per_sec: 500,
            ..quiet_node()
        },
    ]);
    let all: HashSet<&str> = nodes.iter().map(|n| n.full.as_str()).collect();
    wait_until(AT_ONCE, "metrics_exporter registered", || {
        nodes[1].eval("erlang:whereis(metrics_exporter)") != "'undefined'"
    });
    let out = etop([
        "ports",
        "--cluster",
        &nodes[0].full,
        "--sort",
        "send_oct",
        "--once",
        "--format",
        "json",
    ])
    .cookie_env(&nodes[0].cookie)
    .run()
    .success();
    let f = the_json(&out);
    assert_eq!(node_names(&f).len(), 3, "{out}");
    assert_eq!(f["rows"][0]["node"], nodes[1].full.as_str(), "{out}");
    assert_eq!(f["rows"][0]["owner"], "metrics_exporter", "{out}");
    for r in f["rows"].as_array().expect("rows") {
        assert!(all.contains(r["node"].as_str().unwrap_or("")), "{r}\n{out}");
    }
    let per_node: f64 = f["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| num(&n["ports"], "ports", &out))
        .sum();
    assert_eq!(num(&f["ports"], "ports", &out), per_node, "{out}");

    let out = etop([
        "ets",
        "-s",
        "growth",
        &nodes[0].full,
        &nodes[1].full,
        &nodes[2].full,
        "--once",
        "--format",
        "csv",
    ])
    .cookie_env(&nodes[0].cookie)
    .run()
    .success();
    let records = parse_csv(&out.stdout);
    assert!(
        records[0].join(",").starts_with("time,node,name,id,owner,"),
        "{out}"
    );
    assert_eq!(records[1][1], nodes[2].full, "{out}");
    assert_eq!(records[1][2], "demo_cache", "{out}");

    let out = etop(["ets", "--cluster", &nodes[0].full, "--once"])
        .cookie_env(&nodes[0].cookie)
        .run()
        .success();
    let s = strip(&out);
    assert_eq!(s.len(), 5, "{out}");
    assert_eq!(
        s[0].split_whitespace().collect::<Vec<_>>(),
        ["Node", "Tables", "Memory", "State"],
        "{out}"
    );
    assert!(s[4].ends_with("3 of 3 answered"), "{out}");
}

/// Hidden nodes are watched only with --cluster-hidden, and never another
/// etop session (nor the harness's own hidden connections).
#[test]
fn hidden_nodes_only_when_asked_and_never_etop_sessions() {
    let nodes = cluster(vec![quiet_node(); 2]);
    let hidden = Node::start(NodeOpts {
        name: Some(format!("hid_{}", &random_hex()[..10])),
        cookie: Some(nodes[0].cookie.clone()),
        erl_args: vec!["-hidden".into()],
        ..quiet_node()
    });
    assert_eq!(
        hidden.eval(&format!("net_kernel:connect_node('{}')", nodes[0].full)),
        "'true'"
    );
    // Another etop session stays attached to the entry node meanwhile.
    let mut other = etop([&nodes[0].full, "-i", "0.5", "--format", "json"])
        .cookie_env(&nodes[0].cookie)
        .spawn();
    other.wait_for_line(Duration::from_secs(30), |l| l.starts_with('{'));
    let names = |flag: &str| {
        let out = etop([flag, &nodes[0].full, "--once", "--format", "json"])
            .cookie_env(&nodes[0].cookie)
            .run()
            .success();
        let mut n = node_names(&the_json(&out));
        n.sort();
        (n, out)
    };
    let (visible, out) = names("--cluster");
    let mut want: Vec<String> = nodes.iter().map(|n| n.full.clone()).collect();
    want.sort();
    assert_eq!(visible, want, "{out}");
    let (with_hidden, out) = names("--cluster-hidden");
    want.push(hidden.full.clone());
    want.sort();
    assert_eq!(with_hidden, want, "{out}");
    assert!(
        !with_hidden.iter().any(|n| n.starts_with("etop_t_eval_")),
        "{out}"
    );
    other.stop();
}

/// On a terminal: the strip above the merged table, repainted; q quits.
#[test]
fn the_strip_on_a_terminal() {
    let nodes = cluster(vec![quiet_node(); 3]);
    let mut t = Terminal::start(&nodes[0], &["--cluster", "-i", "0.5"], 120, 40);
    t.wait_shown(Duration::from_secs(30), "the strip and the table", |s| {
        s.contains("cluster of 3 nodes via")
            && s.contains("3 of 3 answered")
            && s.contains("Current Function")
    });
    t.type_keys(b"q");
    assert_eq!(t.wait_exit(Duration::from_secs(10)), 0, "{}", t.text());
}

/// `etop watch --cluster`: a condition holds when it holds on any node,
/// and the line names that node (here not the entry); a run where nothing
/// held passes with a summary that names the cluster.
#[test]
fn watch_fails_on_any_node_of_the_cluster_and_names_it() {
    let mut opts = vec![quiet_node(); 3];
    opts[1].flood_per_sec = 3000;
    let nodes = cluster(opts);
    let (entry, flooded) = (&nodes[0], &nodes[1]);
    let queued = "erlang:element(2, erlang:process_info(erlang:whereis(metrics_worker), message_queue_len)).";
    wait_until(Duration::from_secs(30), "600 messages queued", || {
        flooded.eval_i64(queued) > 600
    });
    let out = etop([
        "watch",
        "--cluster",
        &entry.full,
        "-i",
        "0.5",
        "--fail-if",
        "mq>500",
    ])
    .cookie_env(&entry.cookie)
    .run();
    assert_eq!(out.code, Some(7), "{out}");
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 1, "one line says what held\n{out}");
    assert!(
        lines[0].starts_with(&format!("FAIL 'mq>500' on {}, frame ", flooded.full)),
        "{out}"
    );
    assert!(lines[0].contains(" metrics_worker in "), "{out}");

    let out = etop([
        "watch",
        "--cluster",
        &entry.full,
        "-i",
        "0.5",
        "--for",
        "3",
        "--fail-if",
        "mq>100000000",
        "--format",
        "json",
    ])
    .cookie_env(&entry.cookie)
    .run();
    assert_eq!(out.code, Some(0), "{out}");
    let events = json_lines(&out);
    let summary = events.last().expect("a summary");
    assert_eq!(summary["result"], "pass", "{out}");
    assert_eq!(
        summary["node"],
        format!("cluster of 3 nodes via {}", entry.full).as_str(),
        "{out}"
    );
    let seen: HashSet<&str> = summary["nodes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let all: HashSet<&str> = nodes.iter().map(|n| n.full.as_str()).collect();
    assert_eq!(seen, all, "{out}");
    let worst = &summary["conditions"][0]["worst"][0]["seen"];
    assert_eq!(worst["node"], flooded.full.as_str(), "{out}");
    assert_eq!(worst["name"], "metrics_worker", "{out}");
}
