//! Ports and ETS tables of several nodes: each node's top N, merged by the
//! view's sort key, under a strip with each node's count and a total.

use super::{
    NodeRestarts, Strip, Watched, connection_json, node_json, short_names, silent_nodes, state_text,
};
use crate::agent::cluster::{NodeReport, Round};
use crate::agent::sample::{Clock, Reply, ReplyHeader, node_started, reply_header, reply_rows};
use crate::dist::term::{Map as TermMap, Term, atom, int, list};
use crate::views::column::{Cell, Grid};
use crate::views::reply::{ReplyClock, ReplyView};
use crate::views::restart::{Incarnation, Reconnect};
use crate::views::{Frame, Shaper};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// One node's answer, as the strip shows it.
struct Figures {
    values: Vec<(&'static str, &'static str, Cell)>,
    count: u64,
    window: Option<f64>,
    clock: Option<Clock>,
    cost_ms: f64,
    heap_bytes: u64,
    heap_limit_bytes: u64,
    /// The connection the answer came on, and what changed.
    epoch: u64,
    reconnect: Reconnect,
}

pub struct ClusterReplyShaper<V: ReplyView> {
    pub view: V,
    pub lines: usize,
    /// One-shot runs show a real window: the first round is a baseline.
    pub baseline_first: bool,
    pub watched: Watched,
    /// Lines the strip may take; `None`: every node's line.
    pub room: Option<Box<dyn Fn() -> usize>>,
    clocks: HashMap<String, ReplyClock>,
    restarts: NodeRestarts,
    rounds: u64,
}

impl<V: ReplyView> ClusterReplyShaper<V> {
    pub fn new(view: V, lines: usize, once: bool, watched: Watched) -> ClusterReplyShaper<V> {
        ClusterReplyShaper {
            view,
            lines,
            baseline_first: once,
            watched,
            room: None,
            clocks: HashMap::new(),
            restarts: NodeRestarts::default(),
            rounds: 0,
        }
    }
}

/// The strip's values as text; `-` for a node without an answer.
fn strip_values(titles: usize, f: Option<&[(&str, &str, Cell)]>) -> Vec<String> {
    match f {
        Some(v) => v.iter().map(|(_, _, c)| c.to_text()).collect(),
        None => vec!["-".into(); titles],
    }
}

/// Counts and bytes added up over the nodes that answered.
fn totals(
    first: &[(&'static str, &'static str, Cell)],
    all: &[&Figures],
) -> Vec<(&'static str, &'static str, Cell)> {
    first
        .iter()
        .enumerate()
        .map(|(i, (title, key, cell))| {
            let sum: u64 = all
                .iter()
                .filter_map(|f| match f.values.get(i).map(|v| &v.2) {
                    Some(Cell::Count(Some(v)) | Cell::Bytes(Some(v))) => Some(*v),
                    _ => None,
                })
                .sum();
            let cell = match cell {
                Cell::Bytes(_) => Cell::Bytes(Some(sum)),
                _ => Cell::Count(Some(sum)),
            };
            (*title, *key, cell)
        })
        .collect()
}

impl<V: ReplyView> Shaper for ClusterReplyShaper<V> {
    type Sample = Round<Reply>;
    fn shape(&mut self, round: Round<Reply>) -> Option<Frame> {
        self.rounds += 1;
        let present: HashSet<String> = round.nodes.iter().map(|n| n.name.clone()).collect();
        self.clocks.retain(|n, _| present.contains(n));
        self.restarts.retain(&present);
        let mut reports: Vec<NodeReport<Reply>> = round.nodes;
        let mut figures: Vec<Option<Figures>> = Vec::with_capacity(reports.len());
        let mut ranked: Vec<(Option<i64>, usize, V::Row)> = Vec::new();
        for (i, node) in reports.iter_mut().enumerate() {
            let clock = self.clocks.entry(node.name.clone()).or_default();
            if let Some(e) = node.earlier.take() {
                clock.window(&e);
            }
            let Some(r) = node.answer.take() else {
                figures.push(None);
                continue;
            };
            let window = clock.window(&r);
            let h = reply_header(&r.info);
            let reconnect = self.restarts.observe(
                &node.name,
                Incarnation {
                    epoch: r.epoch,
                    started: node_started(h.clock, h.mono_us, h.start_us),
                    os_pid: None,
                },
            );
            ranked.extend(
                reply_rows(&r.info, V::decode_row)
                    .into_iter()
                    .map(|row| (self.view.rank(&row), i, row)),
            );
            figures.push(Some(Figures {
                values: self.view.strip(&h, &r.info),
                count: h.count,
                window,
                clock: h.clock,
                cost_ms: h.cost_ms,
                heap_bytes: h.heap_bytes,
                heap_limit_bytes: h.heap_limit_bytes,
                epoch: r.epoch,
                reconnect,
            }));
        }
        if self.rounds == 1 && self.baseline_first {
            return None;
        }
        ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
        ranked.truncate(self.lines);

        let names: Vec<String> = reports.iter().map(|n| n.name.clone()).collect();
        let shorts = short_names(&names);
        let (rows, at): (Vec<V::Row>, Vec<usize>) =
            ranked.into_iter().map(|(_, i, r)| (r, i)).unzip();
        let grid =
            Grid::new(self.view.columns(), &rows).with_node(at.iter().map(|&i| Cell::Node {
                full: names[i].clone(),
                short: shorts[i].clone(),
            }));

        let answered: Vec<&Figures> = figures.iter().flatten().collect();
        // What a node's strip line holds: the view's columns, as any answer
        // gives them (the same for all).
        let probe = self.view.strip(&ReplyHeader::default(), &list(vec![]));
        let sums = totals(&probe, &answered);
        let entry_at = names.iter().position(|n| *n == self.watched.entry);
        let pick = |get: &dyn Fn(&Figures) -> bool| {
            entry_at
                .and_then(|i| figures[i].as_ref())
                .filter(|f| get(f))
                .or_else(|| figures.iter().flatten().find(|f| get(f)))
        };
        let clock = pick(&|f| f.clock.is_some()).and_then(|f| f.clock);
        let window = pick(&|f| f.window.is_some()).and_then(|f| f.window);

        // The first line is the view's own, written over the cluster's
        // totals (the count, and the view's summed strip values).
        let whole = ReplyHeader {
            node: self.watched.title(names.len()),
            clock,
            count: answered.iter().map(|f| f.count).sum(),
            cost_ms: answered.iter().map(|f| f.cost_ms).fold(0.0, f64::max),
            heap_bytes: answered.iter().map(|f| f.heap_bytes).max().unwrap_or(0),
            heap_limit_bytes: answered
                .iter()
                .map(|f| f.heap_limit_bytes)
                .max()
                .unwrap_or(0),
            // Restarts are told per node, on the strip.
            mono_us: None,
            start_us: None,
        };
        let summed = Term::Map(TermMap {
            map: sums
                .iter()
                .filter_map(|(_, key, c)| match c {
                    Cell::Count(Some(v)) | Cell::Bytes(Some(v)) => {
                        Some((atom(key), int(i64::try_from(*v).unwrap_or(i64::MAX))))
                    }
                    _ => None,
                })
                .collect(),
        });
        let (line, own) = self.view.head(&whole, window, &summed);
        let mut header = vec![line];
        let n_answered = answered.len();
        let no_reconnect = Reconnect::default();
        let strip = Strip {
            titles: probe.iter().map(|(t, _, _)| *t).collect(),
            lines: reports
                .iter()
                .zip(&figures)
                .zip(&shorts)
                .map(|((n, f), short)| {
                    (
                        short.clone(),
                        strip_values(probe.len(), f.as_ref().map(|f| f.values.as_slice())),
                        state_text(n, f.as_ref().map_or(&no_reconnect, |f| &f.reconnect)),
                    )
                })
                .collect(),
            total: (
                strip_values(probe.len(), (n_answered > 0).then_some(sums.as_slice())),
                format!("{n_answered} of {} answered", names.len()),
            ),
            silent: silent_nodes(&reports, &shorts),
        };
        let room = self.room.as_ref().map_or(usize::MAX, |f| f());
        header.extend(strip.text(room));

        let nodes: Vec<Value> = reports
            .iter()
            .zip(&figures)
            .map(|(n, f)| {
                let mut v = Map::new();
                for (_, key, cell) in f.as_ref().map(|f| f.values.as_slice()).unwrap_or(&[]) {
                    v.insert(key.to_string(), cell.to_json());
                }
                for (_, key, _) in &probe {
                    v.entry(key.to_string()).or_insert(Value::Null);
                }
                v.insert(
                    "window_secs".into(),
                    f.as_ref().and_then(|f| f.window).into(),
                );
                v.insert("cost_ms".into(), f.as_ref().map(|f| f.cost_ms).into());
                v.insert(
                    "clock".into(),
                    f.as_ref()
                        .and_then(|f| f.clock)
                        .map(|c| c.to_string())
                        .into(),
                );
                v.extend(connection_json(
                    f.as_ref().map(|f| f.epoch),
                    f.as_ref().map_or(&no_reconnect, |f| &f.reconnect),
                ));
                node_json(n, v)
            })
            .collect();
        let mut json = Map::new();
        json.insert("entry".into(), self.watched.entry.clone().into());
        json.insert("whole_cluster".into(), self.watched.whole_cluster.into());
        json.insert("node_count".into(), names.len().into());
        json.insert("answered".into(), n_answered.into());
        let clock = clock.map(|c| c.to_string());
        json.insert("clock".into(), clock.clone().into());
        json.extend(own);
        for (_, key, cell) in &sums {
            json.insert(key.to_string(), cell.to_json());
        }
        json.insert("window_secs".into(), window.into());
        json.insert("nodes".into(), nodes.into());
        json.insert("rows".into(), grid.json_rows().into());
        Some(Frame {
            header,
            grids: vec![grid],
            csv_prefix: vec![("time", clock.unwrap_or_default())],
            json: json!(json),
            note: format!("{n_answered} of {} nodes answered", names.len()),
            id_column: None,
            footer: Vec::new(),
        })
    }
}
