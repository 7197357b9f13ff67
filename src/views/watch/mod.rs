//! `etop watch`, the load-test gate: samples a node as the main view does,
//! judges `--fail-if` conditions on every frame, and says when one starts
//! or stops holding (text lines, or JSON Lines events), with a summary at
//! the end: frames taken and, for each condition, the worst value seen and
//! where.

pub mod cond;

use crate::agent::cluster::Round;
use crate::agent::collector::{Collector, View};
use crate::agent::sample::{Reply, Sample, reply_rows, window};
use crate::agent::{NodeFilter, SampleRequest, SortKey};
use crate::error::Result;
use crate::views::cluster::Watched;
use crate::views::ets::{self, Ets, EtsSort};
use crate::views::filter::{Op, Value};
use crate::views::growth::Growth;
use crate::views::procs::model::{Model, NameStyle, Row};
use crate::views::reply::ReplyView;
use crate::views::{Feed, Frame, Shaper};
use cond::{Condition, Culprit, NodeFacts, On, ProcFacts, Snapshot, TableFacts, canonical};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `etop watch --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    /// A line when a condition starts or stops holding, and the summary.
    Text,
    /// The same as JSON Lines events; the summary is the last line.
    Json,
}

/// What to ask the node for each frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Process samples: a sort and how many rows. The reductions sample
    /// comes last, so that a frame that fails never moves its window on.
    pub asks: Vec<(SortKey, usize)>,
    /// The ETS tables that grew most, this many, when a condition is about
    /// tables.
    pub tables: Option<usize>,
    /// For a condition that names processes by a word: its sorts again,
    /// filtered on the node, so that the matching processes are found
    /// however far down the whole table they are. (A reductions condition
    /// is judged on the unfiltered reductions sample: a filtered one would
    /// take the window from it.)
    pub filtered: Vec<(SortKey, usize, NodeFilter)>,
}

impl Plan {
    pub fn new(conds: &[Condition], rows: usize) -> Plan {
        let mut keys: Vec<SortKey> = Vec::new();
        for k in conds.iter().flat_map(Condition::keys) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys.sort_by_key(|k| *k == SortKey::Reductions);
        let mut asks: Vec<(SortKey, usize)> = keys.into_iter().map(|k| (k, rows)).collect();
        // The node's own numbers come with every process sample: with no
        // condition about processes, one without rows.
        if asks.is_empty() {
            asks.push((SortKey::Msgq, 0));
        }
        let tables = conds
            .iter()
            .any(|c| c.about == cond::About::Table)
            .then_some(rows);
        let mut filtered = Vec::new();
        for c in conds
            .iter()
            .filter(|c| c.about == cond::About::Process && c.expr.has_words())
        {
            let filter = crate::views::procs::select::on_node_lenient(&c.expr);
            let keys = c.keys();
            for &key in &keys {
                // Reductions only for words alone (the busiest matching
                // processes, by their totals).
                if key == SortKey::Reductions && keys.len() > 1 {
                    continue;
                }
                filtered.push((key, rows, filter.clone()));
            }
        }
        Plan {
            asks,
            tables,
            filtered,
        }
    }
}

/// One frame of `etop watch`: a process sample per sort, and the tables.
pub struct WatchSample {
    pub procs: Vec<Sample>,
    /// Samples of [`Plan::filtered`], in its order.
    pub filtered: Vec<Sample>,
    pub tables: Option<Reply>,
}

pub struct WatchFeed {
    pub collector: Collector,
    pub plan: Plan,
    pub timeout: Duration,
}

impl Feed for WatchFeed {
    type Sample = WatchSample;
    fn sample(&mut self) -> Result<WatchSample> {
        take(&mut self.collector, &self.plan, self.timeout)
    }
    fn close(&mut self) {
        self.collector.close();
    }
}

/// One frame of `plan` from one node: a sample per sort, the filtered
/// ones, the tables. With `--cluster` every node's connection runs it.
pub fn take(collector: &mut Collector, plan: &Plan, timeout: Duration) -> Result<WatchSample> {
    Asker { collector, timeout }.take(plan)
}

/// A node's connection, asked for one frame.
struct Asker<'a> {
    collector: &'a mut Collector,
    timeout: Duration,
}

impl Asker<'_> {
    fn take(&mut self, plan: &Plan) -> Result<WatchSample> {
        let tables = match plan.tables {
            Some(n) => {
                let (info, epoch) = self.collector.frame(
                    View::Ets,
                    |base| ets::request(EtsSort::Growth, n, base),
                    self.timeout,
                    "ETS tables",
                )?;
                Some(Reply {
                    info,
                    epoch,
                    taken_at: Instant::now(),
                })
            }
            None => None,
        };
        let mut procs = Vec::with_capacity(plan.asks.len());
        for &(key, rows) in &plan.asks {
            procs.push(self.ask(key, rows)?);
        }
        let mut filtered = Vec::with_capacity(plan.filtered.len());
        for (key, rows, filter) in plan.filtered.clone() {
            let req = SampleRequest {
                filter: Some(filter),
                ..SampleRequest::new(key, rows, false)
            };
            // A snapshot: the reductions window stays with the main sample.
            filtered.push(self.collector.snapshot_of(&req, self.timeout)?);
        }
        Ok(WatchSample {
            procs,
            filtered,
            tables,
        })
    }

    /// The one place a process sample is asked for. When the agent takes a
    /// node-side filter, each condition's expression goes into this request
    /// (and a sample becomes one per condition and sort): then the top N
    /// are the true top N of the processes that match, not of all.
    fn ask(&mut self, key: SortKey, rows: usize) -> Result<Sample> {
        if key == SortKey::Reductions {
            // Reductions in the window since the last frame.
            self.collector
                .sample(&SampleRequest::new(key, rows, true), self.timeout)
        } else {
            // Leaves that window alone for the reductions sample.
            self.collector.snapshot(key, rows, self.timeout)
        }
    }
}

/// The worst a condition's field has been, and where.
#[derive(Debug, Clone, serde::Serialize)]
struct Seen {
    /// Larger is worse.
    #[serde(skip)]
    score: f64,
    /// The value compared: a share in percent when the condition gives one.
    value: Json,
    shown: String,
    frame: u64,
    clock: Option<String>,
    node: String,
    #[serde(flatten)]
    who: Culprit,
}

#[derive(Debug, Clone)]
struct Worst {
    field: String,
    op: Op,
    value: Value,
    seen: Option<Seen>,
}

/// One condition as it went so far.
#[derive(Debug, Clone)]
struct Tracked {
    cond: Condition,
    /// Where and who made it hold in the latest frame, while it holds.
    holding: Option<(String, Culprit)>,
    held_frames: u64,
    worst: Vec<Worst>,
}

impl Tracked {
    fn new(cond: Condition) -> Tracked {
        let mut worst: Vec<Worst> = Vec::new();
        for (field, op, value) in cond.expr.comparisons() {
            let field = canonical(field);
            if !worst.iter().any(|w| w.field == field) {
                worst.push(Worst {
                    field: field.to_string(),
                    op,
                    value: value.clone(),
                    seen: None,
                });
            }
        }
        Tracked {
            cond,
            holding: None,
            held_frames: 0,
            worst,
        }
    }

    /// Keeps the worst value of each field among the subjects the
    /// condition's words select.
    fn note_worst(&mut self, f: &Snapshot, frame: u64) {
        let subjects: Vec<On> = self
            .cond
            .subjects(f)
            .into_iter()
            .filter(|s| self.cond.expr.words_fit(s))
            .collect();
        for w in &mut self.worst {
            for s in &subjects {
                let Some(m) = s.measure(&w.field, &w.value) else {
                    continue;
                };
                let score = cond::direction(w.op) * m;
                if w.seen.as_ref().is_some_and(|seen| seen.score >= score) {
                    continue;
                }
                w.seen = Some(Seen {
                    score,
                    value: cond::number(m),
                    shown: s.show(&w.field, &w.value).unwrap_or_default(),
                    frame,
                    clock: f.node.clock.clone(),
                    node: f.node.node.clone(),
                    who: s.id(),
                });
            }
        }
    }

    /// The values of `s` for every field the condition reads: for a person
    /// and for a program.
    fn values(&self, s: &On) -> (String, Map<String, Json>) {
        let mut shown = Vec::new();
        let mut map = Map::new();
        for w in &self.worst {
            shown.extend(s.show(&w.field, &w.value));
            s.json(&w.field, &w.value, &mut map);
        }
        (shown.join(", "), map)
    }
}

/// What a node's earlier frames left: reductions windows and growth.
struct NodeWatch {
    /// The previous process sample of each sort, for reductions windows.
    prev: HashMap<SortKey, Sample>,
    mq: Growth,
    mem: Growth,
    ets_mem: Growth,
    epoch: Option<u64>,
}

impl Default for NodeWatch {
    fn default() -> NodeWatch {
        // A series keeps its latest value: a streak is counted as it comes.
        NodeWatch {
            prev: HashMap::new(),
            mq: Growth::new(1),
            mem: Growth::new(1),
            ets_mem: Growth::new(1),
            epoch: None,
        }
    }
}

/// Turns frames into events; keeps what the summary needs.
pub struct Watcher {
    conds: Vec<Tracked>,
    /// Go on after a condition held, to the end of `--for` or a signal.
    keep_going: bool,
    /// Per node (one, or each node of a cluster).
    nodes: HashMap<String, NodeWatch>,
    frames: u64,
    /// What the summary names: the node, or the cluster.
    node: String,
    started: Instant,
    done: bool,
    /// The lines of the conditions that ended the run, for standard error
    /// when standard output carries JSON (a run that goes on keeps none:
    /// its summary says what held).
    pub alarms: Vec<String>,
}

/// Milliseconds since the Unix epoch, by our clock.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Watcher {
    pub fn new(conds: Vec<Condition>, keep_going: bool) -> Watcher {
        Watcher {
            conds: conds.into_iter().map(Tracked::new).collect(),
            keep_going,
            nodes: HashMap::new(),
            frames: 0,
            node: String::new(),
            started: Instant::now(),
            done: false,
            alarms: Vec::new(),
        }
    }

    /// Frames judged so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Did any condition hold in any frame?
    pub fn held(&self) -> bool {
        self.conds.iter().any(|t| t.held_frames > 0)
    }

    /// What the node's samples say, with the growth of each process and
    /// table across frames. Processes are the union of every sort's rows;
    /// each row keeps the value it was ranked by.
    fn snapshot(&mut self, s: WatchSample) -> Option<Snapshot> {
        let first = s.procs.first()?;
        let st = self.nodes.entry(first.node.clone()).or_default();
        if st.epoch.is_some_and(|e| e != first.epoch) {
            // A new connection (a restarted node): nothing before compares.
            *st = NodeWatch::default();
        }
        st.epoch = Some(first.epoch);
        let node = NodeFacts {
            node: first.node.clone(),
            clock: first.clock.map(|c| c.to_string()),
            procs: first.procs,
            runq: first.runq,
            schedulers: first.schedulers,
            memory_bytes: first.memory.total,
            limits: first.limits,
        };
        let mut rows: Vec<Row> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for cur in &s.procs {
            let mut prev = st.prev.remove(&cur.key);
            // A reductions sample computed without the previous frame's
            // state holds totals: a new window starts.
            if cur.key == SortKey::Reductions && !cur.delta {
                prev = None;
            }
            let win = prev.as_ref().map(|p| {
                (
                    p,
                    window(
                        (cur.taken_at, cur.node_mono_us),
                        (p.taken_at, p.node_mono_us),
                    ),
                )
            });
            let model = Model::new(cur, win, None, false, NameStyle::Auto);
            for r in model.rows {
                match at.get(&r.pid) {
                    Some(&i) => {
                        let known = &mut rows[i];
                        match cur.key {
                            SortKey::Msgq => known.msgq = r.msgq,
                            SortKey::Memory => known.memory_bytes = r.memory_bytes,
                            SortKey::Reductions => {
                                known.reds = r.reds;
                                known.reds_pct = r.reds_pct;
                            }
                            SortKey::Heap => known.heap_bytes = r.heap_bytes,
                            SortKey::Binary => known.bin_bytes = r.bin_bytes,
                        }
                    }
                    None => {
                        at.insert(r.pid.clone(), rows.len());
                        rows.push(r);
                    }
                }
            }
            st.prev.insert(cur.key, cur.clone());
        }
        // Processes the filtered samples found further down: their numbers
        // as sampled, and no reductions (no window of their own).
        for cur in &s.filtered {
            let model = Model::new(cur, None, None, false, NameStyle::Auto);
            for mut r in model.rows {
                if at.contains_key(&r.pid) {
                    continue;
                }
                r.reds = None;
                r.reds_pct = None;
                at.insert(r.pid.clone(), rows.len());
                rows.push(r);
            }
        }
        st.mq.observe(rows.iter().map(|r| (r.pid.as_str(), r.msgq)));
        st.mem
            .observe(rows.iter().map(|r| (r.pid.as_str(), r.memory_bytes)));
        let grown = |g: &Growth, id: &str, now: u64| {
            g.get(id)
                .map_or((0, now), |series| (series.streak(), series.from()))
        };
        let procs = rows
            .into_iter()
            .map(|row| ProcFacts {
                mq_grows: grown(&st.mq, &row.pid, row.msgq),
                mem_grows: grown(&st.mem, &row.pid, row.memory_bytes),
                row,
            })
            .collect();
        let tables = match &s.tables {
            Some(r) => {
                let rows = reply_rows(&r.info, <Ets as ReplyView>::decode_row);
                st.ets_mem
                    .observe(rows.iter().map(|t| (t.id.as_str(), t.memory_bytes)));
                rows.into_iter()
                    .map(|row| TableFacts {
                        mem_grows: grown(&st.ets_mem, &row.id, row.memory_bytes),
                        row,
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Some(Snapshot {
            node,
            procs,
            tables,
        })
    }

    /// Judges every condition on a frame: one snapshot per node that
    /// answered (one, or each node of a cluster; a condition holds when it
    /// holds on any of them). The lines and events of the conditions that
    /// started or stopped holding.
    fn judge(&mut self, fs: &[Snapshot]) -> (Vec<String>, Vec<Json>) {
        let frame = self.frames;
        let (mut lines, mut events) = (Vec::new(), Vec::new());
        let at = |f: Option<&Snapshot>| match f.and_then(|f| f.node.clock.as_ref()) {
            Some(c) => format!("frame {frame} at {c}"),
            None => format!("frame {frame}"),
        };
        for t in &mut self.conds {
            for f in fs {
                t.note_worst(f, frame);
            }
            let culprit = fs.iter().find_map(|f| t.cond.culprit(f).map(|c| (f, c)));
            let was = t.holding.take();
            let (kind, word, node, snap, who, values) = match (&culprit, was) {
                (Some((f, c)), was) => {
                    t.held_frames += 1;
                    t.holding = Some((f.node.node.clone(), c.id()));
                    if was.is_some() {
                        continue;
                    }
                    let (shown, map) = t.values(c);
                    let node = f.node.node.clone();
                    (
                        "became_true",
                        "FAIL",
                        node,
                        Some(*f),
                        c.id(),
                        (shown, Some(map)),
                    )
                }
                (None, Some((node, who))) => {
                    // The values of what held, if it is still in the sample.
                    let f = fs.iter().find(|f| f.node.node == node);
                    let still = f.and_then(|f| t.cond.subjects(f).into_iter().find(|s| who.is(s)));
                    let values = match still {
                        Some(s) => {
                            let (shown, map) = t.values(&s);
                            (shown, Some(map))
                        }
                        None => (String::new(), None),
                    };
                    ("became_false", "CLEARED", node, f, who, values)
                }
                (None, None) => continue,
            };
            let at = at(snap);
            let clock = snap.and_then(|f| f.node.clock.clone());
            let (shown, map) = values;
            let mut line = format!("{word} '{}' on {node}, {at}", t.cond.text);
            for part in [who.line(), Some(shown).filter(|s| !s.is_empty())]
                .into_iter()
                .flatten()
            {
                line.push_str(": ");
                line.push_str(&part);
            }
            let mut ev = json!({
                "event": kind,
                "condition": t.cond.text,
                "node": node,
                "frame": frame,
                "clock": clock,
                "unix_ms": unix_ms(),
            });
            if let (Json::Object(o), Ok(Json::Object(w))) = (&mut ev, serde_json::to_value(&who)) {
                o.extend(w);
                o.insert("values".into(), map.map_or(Json::Null, Json::Object));
            }
            if kind == "became_true" && !self.keep_going {
                self.alarms.push(line.clone());
                self.done = true;
            }
            lines.push(line);
            events.push(ev);
        }
        (lines, events)
    }

    /// The summary: frames taken, and each condition's worst value and
    /// where. `error` is why the run ended early, if it did.
    pub fn summary(&self, error: Option<&str>) -> (String, Json) {
        let held = self.conds.iter().filter(|t| t.held_frames > 0).count();
        let result = match (error, held) {
            (Some(_), _) => "error",
            (None, 0) => "pass",
            (None, _) => "fail",
        };
        let secs = self.started.elapsed().as_secs_f64();
        let node = if self.node.is_empty() {
            "the node"
        } else {
            self.node.as_str()
        };
        let head = match (error, held) {
            (Some(e), _) => format!("ERROR {node}: {e}"),
            (None, 0) => "PASS".to_string(),
            (None, _) => "FAIL".to_string(),
        };
        let mut text = if error.is_some() {
            head
        } else if held == 0 {
            format!(
                "{head} {node}: no condition held in {} frames over {secs:.1} s",
                self.frames
            )
        } else {
            format!(
                "{head} {node}: {held} of {} conditions held in {} frames over {secs:.1} s",
                self.conds.len(),
                self.frames
            )
        };
        let mut conds = Vec::new();
        for t in &self.conds {
            let mut line = format!("  '{}': ", t.cond.text);
            if t.held_frames > 0 {
                line.push_str(&format!("held in {} frames; ", t.held_frames));
            }
            let worst: Vec<String> = t
                .worst
                .iter()
                .map(|w| match &w.seen {
                    Some(s) => {
                        let mut part = format!("worst {} at frame {}", s.shown, s.frame);
                        if self.nodes.len() > 1 {
                            part.push_str(&format!(" on {}", s.node));
                        }
                        if let Some(who) = s.who.line() {
                            part.push_str(&format!(": {who}"));
                        }
                        part
                    }
                    None => format!("{} never seen", w.field),
                })
                .collect();
            if worst.is_empty() {
                line.push_str(if t.held_frames > 0 {
                    "matched"
                } else {
                    "never matched"
                });
            } else {
                line.push_str(&worst.join("; "));
            }
            text.push('\n');
            text.push_str(&line);
            conds.push(json!({
                "condition": t.cond.text,
                "about": t.cond.about,
                "held_frames": t.held_frames,
                "worst": t.worst.iter().map(|w| json!({
                    "field": w.field,
                    "seen": w.seen,
                })).collect::<Vec<_>>(),
            }));
        }
        let mut seen: Vec<&String> = self.nodes.keys().collect();
        seen.sort();
        let j = json!({
            "event": "summary",
            "result": result,
            "node": (!self.node.is_empty()).then_some(&self.node),
            "nodes": seen,
            "frames": self.frames,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "unix_ms": unix_ms(),
            "error": error,
            "conditions": conds,
        });
        (text, j)
    }
}

impl Shaper for Watcher {
    type Sample = WatchSample;
    fn shape(&mut self, s: WatchSample) -> Option<Frame> {
        let snap = self.snapshot(s)?;
        self.frames += 1;
        self.node = snap.node.node.clone();
        let (lines, events) = self.judge(std::slice::from_ref(&snap));
        Some(Frame {
            header: lines,
            json: Json::Array(events),
            ..Frame::default()
        })
    }
    fn done(&self) -> bool {
        self.done
    }
}

/// `etop watch --cluster` (or several NODEs): each node's frame through
/// the same conditions, judged together; a condition holds when it holds
/// on any node, and every line and event names its node.
pub struct ClusterWatcher<'a> {
    watcher: &'a mut Watcher,
    watched: Watched,
}

impl<'a> ClusterWatcher<'a> {
    pub fn new(watcher: &'a mut Watcher, watched: Watched) -> ClusterWatcher<'a> {
        ClusterWatcher { watcher, watched }
    }
}

impl Shaper for ClusterWatcher<'_> {
    type Sample = Round<WatchSample>;
    fn shape(&mut self, round: Round<WatchSample>) -> Option<Frame> {
        let nodes = round.nodes.len();
        let mut snaps = Vec::new();
        for n in round.nodes {
            // A late answer overtaken by a newer one still moves the
            // node's windows and growth on, as a frame of its own would.
            if let Some(e) = n.earlier {
                let _ = self.watcher.snapshot(e);
            }
            if let Some(s) = n.answer.and_then(|a| self.watcher.snapshot(a)) {
                snaps.push(s);
            }
        }
        if snaps.is_empty() {
            return None;
        }
        self.watcher.frames += 1;
        self.watcher.node = self.watched.title(nodes);
        let (lines, events) = self.watcher.judge(&snaps);
        Some(Frame {
            header: lines,
            json: Json::Array(events),
            ..Frame::default()
        })
    }
    fn done(&self) -> bool {
        self.watcher.done
    }
}

#[cfg(test)]
mod tests;
