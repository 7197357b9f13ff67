//! The process table of several nodes: each node's top N, computed on the
//! node as for one node, merged here by the sort key into the top N
//! overall, under a strip with each node's load and a cluster total.

use super::{
    NodeRestarts, Strip, Watched, connection_json, node_json, short_names, silent_nodes, state_text,
};
use crate::agent::SortKey;
use crate::agent::cluster::{NodeReport, Round};
use crate::agent::sample::{Sample, node_started, window};
use crate::text::human_bytes;
use crate::views::column::{Cell, Grid};
use crate::views::procs::frame::{COLUMNS, sort_word};
use crate::views::procs::model::{Model, NameStyle, Row};
use crate::views::restart::{Incarnation, Reconnect};
use crate::views::{Frame, Shaper};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// What one node's answer shows in the strip.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    cpu_pct: Option<f64>,
    /// Normal schedulers: the weight of the node's CPU in the total.
    schedulers: u32,
    procs: u64,
    runq: u64,
    memory_total: u64,
    /// The longest mailbox among the rows the node sent: the node's longest
    /// when sorted by message queue, a lower bound otherwise.
    max_msgq: u64,
    max_msgq_exact: bool,
    window_secs: Option<f64>,
    cost_ms: f64,
    clock: Option<String>,
}

pub struct ClusterProcShaper {
    pub key: SortKey,
    pub accumulate: bool,
    pub names: NameStyle,
    /// Rows of the merged table.
    pub lines: usize,
    /// One-shot runs sample twice and show only the second.
    pub baseline_first: bool,
    pub watched: Watched,
    /// Lines the strip may take (on a terminal: what leaves the table its
    /// room); `None`: every node's line.
    pub room: Option<Box<dyn Fn() -> usize>>,
    prev: HashMap<String, Sample>,
    restarts: NodeRestarts,
    rounds: u64,
}

impl ClusterProcShaper {
    pub fn new(
        key: SortKey,
        accumulate: bool,
        names: NameStyle,
        lines: usize,
        baseline_first: bool,
        watched: Watched,
    ) -> ClusterProcShaper {
        ClusterProcShaper {
            key,
            accumulate,
            names,
            lines,
            baseline_first,
            watched,
            room: None,
            prev: HashMap::new(),
            restarts: NodeRestarts::default(),
            rounds: 0,
        }
    }

    /// The node's model from this answer and its previous one, as the
    /// single-node view builds it.
    fn model(&mut self, name: &str, s: Sample) -> (Model, Sample) {
        let mut prev = self.prev.remove(name);
        // A reductions frame computed without the previous frame's state
        // holds totals: it starts a new window.
        if s.key == SortKey::Reductions && !self.accumulate && !s.delta {
            prev = None;
        }
        let win = prev.as_ref().map(|p| {
            (
                p,
                window((s.taken_at, s.node_mono_us), (p.taken_at, p.node_mono_us)),
            )
        });
        let m = Model::new(&s, win, None, self.accumulate, self.names);
        (m, s)
    }

    fn figures(&self, m: &Model, s: &Sample) -> Figures {
        let exact = self.key == SortKey::Msgq;
        Figures {
            cpu_pct: m.header.cpu_pct,
            schedulers: s.schedulers,
            procs: s.procs,
            runq: s.runq,
            memory_total: s.memory.total,
            max_msgq: s.rows.iter().map(|r| r.msgq).max().unwrap_or(0),
            max_msgq_exact: exact,
            window_secs: m.header.window_secs,
            cost_ms: s.cost_us as f64 / 1000.0,
            clock: m.header.clock.clone(),
        }
    }
}

fn msgq_text(v: u64, exact: bool) -> String {
    if exact {
        v.to_string()
    } else {
        format!("≥{v}")
    }
}

fn strip_values(f: Option<&Figures>) -> Vec<String> {
    match f {
        Some(f) => vec![
            f.cpu_pct.map(|c| format!("{c:.0}%")).unwrap_or("-".into()),
            f.procs.to_string(),
            f.runq.to_string(),
            human_bytes(f.memory_total),
            msgq_text(f.max_msgq, f.max_msgq_exact),
        ],
        None => vec!["-".into(); 5],
    }
}

fn figures_json(f: Option<&Figures>) -> Map<String, Value> {
    let v = json!({
        "cpu_pct": f.and_then(|f| f.cpu_pct),
        "procs": f.map(|f| f.procs),
        "runq": f.map(|f| f.runq),
        "memory_total_bytes": f.map(|f| f.memory_total),
        "max_msgq": f.map(|f| f.max_msgq),
        "max_msgq_exact": f.map(|f| f.max_msgq_exact),
        "window_secs": f.and_then(|f| f.window_secs),
        "cost_ms": f.map(|f| f.cost_ms),
        "clock": f.and_then(|f| f.clock.clone()),
    });
    match v {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// The cluster's figures: CPU weighted by each node's schedulers, counts
/// and memory added, the longest mailbox.
fn total(all: &[&Figures]) -> Figures {
    let (busy, weight) = all
        .iter()
        .filter_map(|f| f.cpu_pct.map(|c| (c, f64::from(f.schedulers.max(1)))))
        .fold((0.0, 0.0), |(b, w), (c, n)| (b + c * n, w + n));
    Figures {
        cpu_pct: (weight > 0.0).then(|| busy / weight),
        schedulers: all.iter().map(|f| f.schedulers).sum(),
        procs: all.iter().map(|f| f.procs).sum(),
        runq: all.iter().map(|f| f.runq).sum(),
        memory_total: all.iter().map(|f| f.memory_total).sum(),
        max_msgq: all.iter().map(|f| f.max_msgq).max().unwrap_or(0),
        max_msgq_exact: all.iter().all(|f| f.max_msgq_exact),
        window_secs: None,
        cost_ms: all.iter().map(|f| f.cost_ms).fold(0.0, f64::max),
        clock: None,
    }
}

impl Shaper for ClusterProcShaper {
    type Sample = Round<Sample>;
    fn shape(&mut self, round: Round<Sample>) -> Option<Frame> {
        self.rounds += 1;
        let present: HashSet<String> = round.nodes.iter().map(|n| n.name.clone()).collect();
        self.prev.retain(|n, _| present.contains(n));
        self.restarts.retain(&present);
        let mut reports: Vec<NodeReport<Sample>> = round.nodes;
        let mut figures: Vec<Option<Figures>> = Vec::with_capacity(reports.len());
        // Per node: the connection its answer came on, and what changed.
        let mut conns: Vec<(Option<u64>, Reconnect)> = Vec::with_capacity(reports.len());
        // (rank, node index, row); stable sort keeps each node's order and
        // the nodes' name order among equals.
        let mut ranked: Vec<(i64, usize, Row)> = Vec::new();
        for (i, node) in reports.iter_mut().enumerate() {
            if let Some(e) = node.earlier.take() {
                self.prev.insert(node.name.clone(), e);
            }
            let Some(s) = node.answer.take() else {
                figures.push(None);
                conns.push((None, Reconnect::default()));
                continue;
            };
            let reconnect = self.restarts.observe(
                &node.name,
                Incarnation {
                    epoch: s.epoch,
                    started: node_started(s.clock, s.node_mono_us, s.node_start_us),
                    os_pid: None,
                },
            );
            conns.push((Some(s.epoch), reconnect));
            let (m, s) = self.model(&node.name, s);
            figures.push(Some(self.figures(&m, &s)));
            ranked.extend(
                s.rows
                    .iter()
                    .zip(m.rows)
                    .map(|(raw, row)| (raw.rank_value, i, row)),
            );
            self.prev.insert(node.name.clone(), s);
        }
        if self.rounds == 1 && self.baseline_first {
            return None;
        }
        ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
        ranked.truncate(self.lines);

        let names: Vec<String> = reports.iter().map(|n| n.name.clone()).collect();
        let shorts = short_names(&names);
        let (rows, at): (Vec<Row>, Vec<usize>) = ranked.into_iter().map(|(_, i, r)| (r, i)).unzip();
        let grid = Grid::new(&COLUMNS, &rows).with_node(at.iter().map(|&i| Cell::Node {
            full: names[i].clone(),
            short: shorts[i].clone(),
        }));

        let answered: Vec<&Figures> = figures.iter().flatten().collect();
        let sum = total(&answered);
        let n_answered = answered.len();
        // The entry node's clock and window, else the first node's that has them.
        let entry_at = names.iter().position(|n| *n == self.watched.entry);
        let pick = |get: &dyn Fn(&Figures) -> bool| {
            entry_at
                .and_then(|i| figures[i].as_ref())
                .filter(|f| get(f))
                .or_else(|| figures.iter().flatten().find(|f| get(f)))
        };
        let clock = pick(&|f| f.clock.is_some()).and_then(|f| f.clock.clone());
        let window_secs = pick(&|f| f.window_secs.is_some()).and_then(|f| f.window_secs);
        let reds = match (self.accumulate, window_secs) {
            (true, _) => "reductions: totals".to_string(),
            (false, Some(w)) => format!("reductions over {w:.1} s"),
            (false, None) if self.key == SortKey::Reductions => {
                "reductions: totals (first frame)".to_string()
            }
            (false, None) => "reductions: from the next frame".to_string(),
        };
        let mut header = vec![format!(
            "{}  {}  sorted by {}, {}",
            self.watched.title(names.len()),
            clock.as_deref().unwrap_or(""),
            sort_word(self.key),
            reds
        )];
        let strip = Strip {
            titles: vec!["CPU", "Procs", "RunQ", "Memory", "MaxMsgQ"],
            lines: reports
                .iter()
                .zip(&figures)
                .zip(&shorts)
                .zip(&conns)
                .map(|(((n, f), short), (_, r))| {
                    (short.clone(), strip_values(f.as_ref()), state_text(n, r))
                })
                .collect(),
            total: (
                strip_values((n_answered > 0).then_some(&sum)),
                format!("{n_answered} of {} answered", names.len()),
            ),
            silent: silent_nodes(&reports, &shorts),
        };
        let room = self.room.as_ref().map_or(usize::MAX, |f| f());
        header.extend(strip.text(room));

        let nodes: Vec<Value> = reports
            .iter()
            .zip(&figures)
            .zip(&conns)
            .map(|((n, f), (epoch, r))| {
                let mut v = figures_json(f.as_ref());
                v.extend(connection_json(*epoch, r));
                node_json(n, v)
            })
            .collect();
        let mut head = Map::new();
        head.insert("entry".into(), self.watched.entry.clone().into());
        head.insert("whole_cluster".into(), self.watched.whole_cluster.into());
        head.insert("node_count".into(), names.len().into());
        head.insert("answered".into(), n_answered.into());
        head.insert("sort".into(), json!(self.key));
        head.insert("accumulate".into(), self.accumulate.into());
        let mut totals = figures_json((n_answered > 0).then_some(&sum));
        totals.insert("clock".into(), clock.clone().into());
        totals.insert("window_secs".into(), window_secs.into());
        head.extend(totals);
        let json = json!({
            "header": head,
            "nodes": nodes,
            "rows": grid.json_rows(),
        });
        let costliest = figures
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
            .max_by(|a, b| a.1.cost_ms.total_cmp(&b.1.cost_ms))
            .map(|(i, f)| {
                format!(
                    "the costliest node, {}, took {:.1} ms; ",
                    shorts[i], f.cost_ms
                )
            })
            .unwrap_or_default();
        Some(Frame {
            header,
            grids: vec![grid],
            csv_prefix: vec![("time", clock.unwrap_or_default())],
            json,
            note: format!("{costliest}{n_answered} of {} nodes answered", names.len()),
            id_column: None,
            footer: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::cluster::NodeState;
    use crate::agent::sample::{Memory, Mfa, ProcId, ProcRow};
    use std::time::{Duration, Instant};

    fn row(id: u32, msgq: u64) -> ProcRow {
        ProcRow {
            pid: ProcId { id, serial: 0 },
            rank_value: msgq as i64,
            registered_name: Some(format!("p{id}")),
            initial_call: None,
            current_function: Some(Mfa {
                module: "m".into(),
                function: "f".into(),
                arity: 0,
            }),
            memory_bytes: 1000,
            reductions: 10,
            msgq,
            heap_bytes: None,
            bin_bytes: None,
            reds_delta: None,
        }
    }

    fn sample(node: &str, rows: Vec<ProcRow>) -> Sample {
        Sample {
            taken_at: Instant::now(),
            node_mono_us: None,
            node: node.into(),
            clock: None,
            procs: 100,
            runq: 1,
            memory: Memory {
                total: 1 << 20,
                ..Default::default()
            },
            sched: vec![],
            schedulers: 2,
            cost_us: 1000,
            heap_bytes: 0,
            heap_limit_bytes: 0,
            key: SortKey::Msgq,
            delta: false,
            rows,
            limits: None,
            uptime_ms: None,
            reds_total: None,
            epoch: 1,
            node_start_us: None,
            elixir: false,
        }
    }

    fn report(name: &str, answer: Option<Sample>) -> NodeReport<Sample> {
        NodeReport {
            name: name.into(),
            state: if answer.is_some() {
                NodeState::Answered
            } else {
                NodeState::Failed("lost the connection".into())
            },
            answer,
            earlier: None,
            listed: true,
            silent: Duration::from_secs(7),
        }
    }

    fn shaper() -> ClusterProcShaper {
        ClusterProcShaper::new(
            SortKey::Msgq,
            false,
            NameStyle::Erlang,
            3,
            false,
            Watched {
                entry: "a@h".into(),
                whole_cluster: true,
            },
        )
    }

    #[test]
    fn rows_of_all_nodes_merge_by_the_sort_key() {
        let round = Round {
            nodes: vec![
                report("a@h", Some(sample("a@h", vec![row(1, 50), row(2, 5)]))),
                report(
                    "b@h",
                    Some(sample("b@h", vec![row(1, 900), row(3, 50), row(4, 1)])),
                ),
                report("c@h", None),
            ],
            joined: vec![],
            forgotten: vec![],
            unwatched: 0,
        };
        let f = shaper().shape(round).expect("a frame");
        let g = &f.grids[0];
        let nodes: Vec<String> = g.rows.iter().map(|r| r[0].to_text()).collect();
        let msgq = g
            .columns
            .iter()
            .position(|c| c.key == "msgq")
            .expect("a MsgQ column");
        let queues: Vec<String> = g.rows.iter().map(|r| r[msgq].to_text()).collect();
        assert_eq!(nodes, ["b", "a", "b"]);
        assert_eq!(queues, ["900", "50", "50"]);
        assert_eq!(f.json["rows"][0]["node"], "b@h");
        assert_eq!(f.json["rows"][0]["pid"], "<0.1.0>");
        assert_eq!(f.json["nodes"][2]["state"], "failed");
        assert_eq!(f.json["nodes"][2]["procs"], Value::Null);
        assert_eq!(f.json["nodes"][1]["max_msgq"], 900);
        assert_eq!(f.json["header"]["procs"], 200);
        assert_eq!(f.json["header"]["answered"], 2);
        assert_eq!(f.csv_prefix.len(), 1, "the node is a column of its own");
        assert!(
            f.header[0].starts_with("cluster of 3 nodes via a@h"),
            "{:?}",
            f.header
        );
        let strip = &f.header[1..];
        assert_eq!(strip.len(), 5, "{strip:?}");
        assert!(strip[3].starts_with("c ") && strip[3].contains("no answer for 7 s: lost"));
        assert!(strip[4].starts_with("all") && strip[4].ends_with("2 of 3 answered"));
        assert!(strip[4].contains("900"), "{strip:?}");
    }

    #[test]
    fn a_node_that_restarted_says_so_on_its_strip_line() {
        use crate::agent::sample::Clock;
        // A's answer on connection `epoch`, from a VM up `up_secs` at noon.
        let answer = |epoch: u64, up_secs: i64| {
            let mut smp = sample("a@h", vec![row(1, 5)]);
            smp.epoch = epoch;
            smp.clock = Some(Clock {
                date: (2026, 1, 2),
                time: (12, 0, 0),
            });
            smp.node_mono_us = Some(up_secs * 1_000_000 + 7);
            smp.node_start_us = Some(7);
            smp
        };
        let round = |a: Sample| Round {
            nodes: vec![
                report("a@h", Some(a)),
                report("b@h", Some(sample("b@h", vec![row(2, 1)]))),
            ],
            joined: vec![],
            forgotten: vec![],
            unwatched: 0,
        };
        let mut s = shaper();
        let f = s.shape(round(answer(1, 3600))).expect("a frame");
        assert_eq!(f.json["nodes"][0]["epoch"], 1);
        assert_eq!(f.json["nodes"][0]["reconnected"], false);
        assert!(f.header[2].ends_with("  ok"), "{:?}", f.header);
        let f = s.shape(round(answer(2, 30))).expect("a frame");
        assert_eq!(f.json["nodes"][0]["epoch"], 2);
        assert_eq!(f.json["nodes"][0]["reconnected"], true);
        assert_eq!(f.json["nodes"][1]["reconnected"], false);
        assert!(
            f.header[2].ends_with("ok; node restarted at 11:59:30; reconnected"),
            "{:?}",
            f.header
        );
        assert!(f.header[3].ends_with("  ok"), "{:?}", f.header);
        // Said for a few frames, then the line is plain again.
        for _ in 1..crate::views::restart::NOTICE_FRAMES {
            let f = s.shape(round(answer(2, 31))).expect("a frame");
            assert_eq!(f.json["nodes"][0]["reconnected"], false);
            assert!(f.header[2].contains("node restarted"), "{:?}", f.header);
        }
        let f = s.shape(round(answer(2, 32))).expect("a frame");
        assert!(f.header[2].ends_with("  ok"), "{:?}", f.header);
    }

    #[test]
    fn a_one_shot_run_shows_only_its_second_round() {
        let mut s = shaper();
        s.baseline_first = true;
        let round = || Round {
            nodes: vec![report("a@h", Some(sample("a@h", vec![row(1, 5)])))],
            joined: vec![],
            forgotten: vec![],
            unwatched: 0,
        };
        assert!(s.shape(round()).is_none());
        assert!(s.shape(round()).is_some());
    }

    #[test]
    fn the_mailbox_figure_is_a_lower_bound_unless_sorted_by_it() {
        let mut s = shaper();
        s.key = SortKey::Memory;
        let mut smp = sample("a@h", vec![row(1, 5)]);
        smp.key = SortKey::Memory;
        let round = Round {
            nodes: vec![report("a@h", Some(smp))],
            joined: vec![],
            forgotten: vec![],
            unwatched: 0,
        };
        let f = s.shape(round).expect("a frame");
        assert!(f.header[2].contains("≥5"), "{:?}", f.header);
        assert_eq!(f.json["nodes"][0]["max_msgq_exact"], false);
    }
}
