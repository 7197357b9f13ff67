use super::*;
use crate::agent::sample::{Limits, Memory, Mfa, ProcId, ProcRow};

fn proc_row(id: u32, name: &str, msgq: u64, mem: u64, reds: u64) -> ProcRow {
    ProcRow {
        pid: ProcId { id, serial: 0 },
        rank_value: 0,
        registered_name: Some(name.into()),
        initial_call: None,
        current_function: Some(Mfa {
            module: "timer".into(),
            function: "sleep".into(),
            arity: 1,
        }),
        memory_bytes: mem,
        reductions: reds,
        msgq,
        heap_bytes: None,
        bin_bytes: None,
        reds_delta: None,
    }
}

/// A sample ranked by `key`, its rows ranked by that key's value.
fn sample(key: SortKey, epoch: u64, mut rows: Vec<ProcRow>) -> Sample {
    for r in &mut rows {
        r.rank_value = match key {
            SortKey::Msgq => r.msgq as i64,
            SortKey::Memory => r.memory_bytes as i64,
            SortKey::Reductions => r.reductions as i64,
            SortKey::Heap | SortKey::Binary => 0,
        };
    }
    Sample {
        taken_at: Instant::now(),
        node_mono_us: None,
        node: "demo@h".into(),
        clock: None,
        procs: 100,
        runq: 0,
        memory: Memory {
            total: 1 << 30,
            ..Memory::default()
        },
        sched: Vec::new(),
        schedulers: 2,
        cost_us: 100,
        heap_bytes: 0,
        heap_limit_bytes: 0,
        key,
        delta: false,
        rows,
        limits: Some(Limits {
            procs: (100, 1000),
            ports: (1, 100),
            atoms: (10, 100),
            ets: (1, 10),
        }),
        uptime_ms: None,
        reds_total: None,
        node_start_us: None,
        epoch,
        elixir: false,
    }
}

fn conds(texts: &[&str]) -> Vec<Condition> {
    texts
        .iter()
        .map(|t| Condition::parse(t).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect()
}

/// One frame of mailboxes: a growing worker and a flat one.
fn frame(w: &mut Watcher, worker_q: u64, flat_q: u64) -> Frame {
    w.shape(WatchSample {
        filtered: Vec::new(),
        procs: vec![sample(
            SortKey::Msgq,
            1,
            vec![
                proc_row(1, "flat_box", flat_q, 1000, 5),
                proc_row(2, "metrics_worker", worker_q, 2000, 5),
            ],
        )],
        tables: None,
    })
    .expect("a frame")
}

#[test]
fn the_plan_asks_each_sort_once_and_reductions_last() {
    let p = Plan::new(&conds(&["reds>1000", "mq>5", "mq.grows>=3 or mem>1G"]), 20);
    assert_eq!(
        p.asks,
        [
            (SortKey::Msgq, 20),
            (SortKey::Memory, 20),
            (SortKey::Reductions, 20)
        ]
    );
    assert_eq!(p.tables, None);
    let p = Plan::new(&conds(&["node.procs>80%", "ets.mem.grows>=5"]), 7);
    assert_eq!(p.asks, [(SortKey::Msgq, 0)], "the node's numbers only");
    assert_eq!(p.tables, Some(7));
}

#[test]
fn growth_fires_on_a_growing_mailbox_and_not_on_a_flat_one() {
    let mut w = Watcher::new(conds(&["mq.grows>=3"]), false);
    for q in [100, 200, 300] {
        let f = frame(&mut w, q, 50_000);
        assert!(f.header.is_empty(), "{:?}", f.header);
        assert!(!w.done());
    }
    let f = frame(&mut w, 400, 50_000);
    assert!(w.done(), "three frames of growth");
    assert_eq!(
        f.header,
        [
            "FAIL 'mq.grows>=3' on demo@h, frame 4: <0.2.0> metrics_worker in timer:sleep/1: \
          mq.grows 3 (mq 100 → 400)"
        ]
    );
    let ev = &f.json[0];
    assert_eq!(ev["event"], "became_true");
    assert_eq!(ev["pid"], "<0.2.0>");
    assert_eq!(ev["name"], "metrics_worker");
    assert_eq!(ev["current_function"], "timer:sleep/1");
    assert_eq!(ev["frame"], 4);
    assert_eq!(ev["values"]["mq.grows"], 3);
    assert_eq!(ev["values"]["mq"], 400);
    assert_eq!(w.alarms.len(), 1);
    assert!(w.held());
}

#[test]
fn a_big_flat_mailbox_passes_with_its_worst_in_the_summary() {
    let mut w = Watcher::new(conds(&["mq.grows>=3", "mq>100000"]), false);
    for _ in 0..6 {
        let f = frame(&mut w, 10, 50_000);
        assert!(f.header.is_empty());
    }
    assert!(!w.done() && !w.held());
    let (text, j) = w.summary(None);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("PASS demo@h: no condition held in 6 frames over"),
        "{text}"
    );
    assert_eq!(
        lines[1],
        "  'mq.grows>=3': worst mq.grows 0 (mq 50,000) at frame 1: \
         <0.1.0> flat_box in timer:sleep/1"
    );
    assert_eq!(
        lines[2],
        "  'mq>100000': worst mq 50,000 at frame 1: <0.1.0> flat_box in timer:sleep/1"
    );
    assert_eq!(j["event"], "summary");
    assert_eq!(j["result"], "pass");
    assert_eq!(j["frames"], 6);
    let worst = &j["conditions"][1]["worst"][0];
    assert_eq!(worst["field"], "mq");
    assert_eq!(worst["seen"]["value"], 50_000);
    assert_eq!(worst["seen"]["name"], "flat_box");
}

#[test]
fn keep_going_reports_a_condition_that_stops_holding() {
    let mut w = Watcher::new(conds(&["mq>500"]), true);
    assert!(frame(&mut w, 10, 0).header.is_empty());
    let f = frame(&mut w, 900, 0);
    assert_eq!(f.json[0]["event"], "became_true");
    assert!(!w.done(), "--keep-going goes on");
    assert!(w.alarms.is_empty(), "the summary says what held");
    assert!(frame(&mut w, 950, 0).header.is_empty(), "still holding");
    let f = frame(&mut w, 20, 0);
    assert_eq!(
        f.header,
        ["CLEARED 'mq>500' on demo@h, frame 4: <0.2.0> metrics_worker in timer:sleep/1: mq 20"]
    );
    assert_eq!(f.json[0]["event"], "became_false");
    assert_eq!(f.json[0]["values"]["mq"], 20);
    let (text, j) = w.summary(None);
    assert!(
        text.starts_with("FAIL demo@h: 1 of 1 conditions held in 4 frames"),
        "{text}"
    );
    assert!(
        text.contains("'mq>500': held in 2 frames; worst mq 950 at frame 3"),
        "{text}"
    );
    assert_eq!(j["result"], "fail");
    assert_eq!(j["conditions"][0]["held_frames"], 2);
}

#[test]
fn a_new_connection_starts_growth_over() {
    let mut w = Watcher::new(conds(&["mq.grows>=2"]), false);
    let mut at = |epoch: u64, q: u64| {
        w.shape(WatchSample {
            filtered: Vec::new(),
            procs: vec![sample(
                SortKey::Msgq,
                epoch,
                vec![proc_row(2, "metrics_worker", q, 1, 1)],
            )],
            tables: None,
        })
        .expect("a frame")
    };
    at(1, 1);
    at(1, 2);
    // The node restarted: the same pid is another process.
    assert!(at(2, 3).header.is_empty());
    assert!(at(2, 4).header.is_empty());
    assert_eq!(at(2, 5).json[0]["event"], "became_true");
}

#[test]
fn rows_of_several_sorts_keep_the_value_they_were_ranked_by() {
    let mut w = Watcher::new(conds(&["mq>500", "mem>1M"]), true);
    let mut by_q = proc_row(2, "metrics_worker", 900, 10, 1);
    let by_mem = proc_row(2, "metrics_worker", 0, 2 << 20, 1);
    // The memory sample read the mailbox a moment later, when it had been
    // handled: the mailbox sort's value stands.
    by_q.memory_bytes = 10;
    let f = w
        .shape(WatchSample {
            filtered: Vec::new(),
            procs: vec![
                sample(SortKey::Msgq, 1, vec![by_q]),
                sample(SortKey::Memory, 1, vec![by_mem]),
            ],
            tables: None,
        })
        .expect("a frame");
    let held: Vec<&str> = f
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["condition"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["mq>500", "mem>1M"]);
}

#[test]
fn node_conditions_name_the_node_and_its_numbers() {
    let mut w = Watcher::new(conds(&["node.procs>5%"]), false);
    let f = frame(&mut w, 0, 0);
    assert_eq!(
        f.header,
        ["FAIL 'node.procs>5%' on demo@h, frame 1: node.procs 10% (100 of 1,000)"]
    );
    let ev = &f.json[0];
    assert_eq!(ev["pid"], Json::Null);
    assert_eq!(ev["values"]["node.procs"], 100);
    assert_eq!(ev["values"]["node.procs.limit"], 1000);
}

#[test]
fn a_run_that_ended_in_an_error_says_so_in_its_summary() {
    let mut w = Watcher::new(conds(&["mq>500"]), false);
    frame(&mut w, 1, 1);
    let (_, j) = w.summary(Some("lost the node"));
    assert_eq!(j["result"], "error");
    assert_eq!(j["error"], "lost the node");
    assert_eq!(j["frames"], 1);
}

/// One node's answer in a cluster frame: its mailboxes.
fn node_answer(
    node: &str,
    qs: &[(u32, &str, u64)],
) -> crate::agent::cluster::NodeReport<WatchSample> {
    let mut s = sample(
        SortKey::Msgq,
        1,
        qs.iter()
            .map(|&(id, name, q)| proc_row(id, name, q, 1000, 5))
            .collect(),
    );
    s.node = node.into();
    crate::agent::cluster::NodeReport {
        name: node.into(),
        state: crate::agent::cluster::NodeState::Answered,
        answer: Some(WatchSample {
            procs: vec![s],
            filtered: Vec::new(),
            tables: None,
        }),
        earlier: None,
        listed: true,
        silent: Duration::ZERO,
    }
}

fn round(nodes: Vec<crate::agent::cluster::NodeReport<WatchSample>>) -> Round<WatchSample> {
    Round {
        nodes,
        joined: Vec::new(),
        forgotten: Vec::new(),
        unwatched: 0,
    }
}

#[test]
fn a_cluster_condition_holds_on_any_node_and_growth_is_per_node() {
    let mut w = Watcher::new(conds(&["mq.grows>=3"]), false);
    let watched = Watched {
        entry: "a@h".into(),
        whole_cluster: true,
    };
    let mut cw = ClusterWatcher::new(&mut w, watched);
    // The same pid on both nodes: on a@h its mailbox falls while on b@h it
    // grows. Mixed up, neither would grow three frames in a row.
    for (qa, qb) in [(900, 100), (800, 200), (700, 300)] {
        let f = cw
            .shape(round(vec![
                node_answer("a@h", &[(7, "pool", qa)]),
                node_answer("b@h", &[(7, "metrics_worker", qb)]),
            ]))
            .expect("a frame");
        assert!(f.header.is_empty(), "{:?}", f.header);
    }
    // A node that did not answer this frame does not stop the others.
    let mut silent = node_answer("a@h", &[]);
    silent.answer = None;
    silent.state = crate::agent::cluster::NodeState::Slow;
    let f = cw
        .shape(round(vec![
            silent,
            node_answer("b@h", &[(7, "metrics_worker", 400)]),
        ]))
        .expect("a frame");
    assert!(cw.done());
    assert_eq!(
        f.header,
        [
            "FAIL 'mq.grows>=3' on b@h, frame 4: <0.7.0> metrics_worker in timer:sleep/1: \
          mq.grows 3 (mq 100 → 400)"
        ]
    );
    assert_eq!(f.json[0]["node"], "b@h");
    let (text, j) = w.summary(None);
    assert!(
        text.starts_with("FAIL cluster of 2 nodes via a@h: 1 of 1 conditions held"),
        "{text}"
    );
    assert!(text.contains("at frame 4 on b@h"), "{text}");
    assert_eq!(j["nodes"], serde_json::json!(["a@h", "b@h"]));
}
