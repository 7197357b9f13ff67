//! The views of several nodes at once (`--cluster`, several NODEs): a feed
//! that asks every node each frame, and shapers that merge each node's top
//! N into one table with a `Node` column, under a strip with one line per
//! node and a cluster total.

pub mod procs;
pub mod reply;

use super::Feed;
use crate::agent::cluster::{Ask, Cluster, MAX_WATCHED, NodeReport, NodeState, Round};
use crate::error::{Error, Result};
use crate::text::say;
use crate::views::restart::{Incarnation, Reconnect, Restarts};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

/// Asks every node of the cluster each frame.
pub struct ClusterFeed<T> {
    pub cluster: Cluster<T>,
    pub ask: Ask<T>,
    /// How long a frame waits for slow nodes: the interval.
    pub wait: Duration,
    /// A frame no node answered is an error (batch runs, which end after a
    /// few in a row); on a terminal it is shown, every node marked.
    pub fail_when_silent: bool,
    /// Say on stderr when a node fails, answers again, joins or is dropped
    /// (batch runs: CSV and JSON Lines have no strip).
    pub say_changes: bool,
    /// The open-file limit, when known.
    open_files: Option<u64>,
    failing: HashSet<String>,
    told_open_files: bool,
    told_unwatched: bool,
}

impl<T: Send + 'static> ClusterFeed<T> {
    pub fn new(
        cluster: Cluster<T>,
        ask: Ask<T>,
        wait: Duration,
        fail_when_silent: bool,
        say_changes: bool,
        open_files: Option<u64>,
    ) -> ClusterFeed<T> {
        let mut f = ClusterFeed {
            cluster,
            ask,
            wait,
            fail_when_silent,
            say_changes,
            open_files,
            failing: HashSet::new(),
            told_open_files: false,
            told_unwatched: false,
        };
        f.check_room();
        f
    }

    /// One connection per node: say once when the open-file limit (raised
    /// as far as it goes when the session started, see `open_files_for`) is
    /// short of what the nodes need.
    fn check_room(&mut self) {
        let need = self.cluster.len() as u64 + FDS_BESIDES_NODES;
        if let Some(limit) = self.open_files
            && need > limit
            && !self.told_open_files
        {
            self.told_open_files = true;
            say(format!(
                "warning: watching {} nodes needs about {need} open files and the limit is \
                 {limit}; some nodes will not attach (raise it: ulimit -n {need})",
                self.cluster.len()
            ));
        }
    }

    fn tell(&mut self, round: &Round<T>) {
        if round.unwatched > 0 && !self.told_unwatched {
            self.told_unwatched = true;
            say(format!(
                "the cluster lists {} more nodes than the {MAX_WATCHED} etop watches at most; \
                 they are left out",
                round.unwatched
            ));
        }
        for n in &round.joined {
            say(format!("{n} joined the cluster; attaching"));
        }
        for n in &round.forgotten {
            say(format!("{n} left the cluster and is no longer watched"));
        }
        for node in &round.nodes {
            if let NodeState::Failed(e) = &node.state {
                if self.failing.insert(node.name.clone()) {
                    say(format!("{} does not answer: {e}; retrying", node.name));
                }
            } else if node.state.answered() && self.failing.remove(&node.name) {
                say(format!("{} answers again", node.name));
            }
        }
    }
}

/// Open files etop needs besides one connection per node: standard streams,
/// EPMD queries while attaching, the terminal, the event loop.
const FDS_BESIDES_NODES: u64 = 64;

/// Raises the open-file limit for the most nodes a session watches, as far
/// as the hard limit allows, before any node is attached; the limit after.
pub fn open_files_for_cluster() -> Option<u64> {
    crate::host::raise_open_files(MAX_WATCHED as u64 + FDS_BESIDES_NODES)
}

impl<T: Send + 'static> Feed for ClusterFeed<T> {
    type Sample = Round<T>;
    fn sample(&mut self) -> Result<Round<T>> {
        let round = self.cluster.frame(&self.ask, self.wait);
        self.check_room();
        if self.say_changes {
            self.tell(&round);
        }
        if self.fail_when_silent && !round.nodes.iter().any(|n| n.state.answered()) {
            let first = round.nodes.iter().find_map(|n| match &n.state {
                NodeState::Failed(e) => Some(format!("; {}: {e}", n.name)),
                _ => None,
            });
            return Err(Error::ConnectionLost {
                node: format!("every node ({})", round.nodes.len()),
                reason: format!(
                    "none answered within {:.1} s{}",
                    self.wait.as_secs_f64(),
                    first.unwrap_or_default()
                ),
            });
        }
        Ok(round)
    }
    fn close(&mut self) {
        self.cluster.close();
    }
    fn stats(&self, r: &Result<Round<T>>) -> Option<Value> {
        let (nodes, answered) = match r {
            Ok(r) => (
                r.nodes.len(),
                r.nodes.iter().filter(|n| n.state.answered()).count(),
            ),
            Err(_) => (self.cluster.len(), 0),
        };
        Some(serde_json::json!({"nodes": nodes, "answered": answered, "ok": r.is_ok()}))
    }
}

/// The names a terminal shows for `full` node names: the part before '@'
/// when every node has the same host; else with the host, less the domain
/// all hosts share (`a@db1`, `b@db2` for `…@db1.example.com`,
/// `…@db2.example.com`). Addresses are kept whole.
pub fn short_names(full: &[String]) -> Vec<String> {
    let split: Vec<(&str, &str)> = full
        .iter()
        .map(|n| n.split_once('@').unwrap_or((n.as_str(), "")))
        .collect();
    let Some((_, first_host)) = split.first() else {
        return Vec::new();
    };
    if split.iter().all(|(_, h)| h == first_host) {
        return split.iter().map(|(n, _)| n.to_string()).collect();
    }
    if split.iter().any(|(_, h)| h.parse::<IpAddr>().is_ok()) {
        return full.to_vec();
    }
    // How many trailing labels every host shares, leaving each one at least.
    let labels: Vec<Vec<&str>> = split
        .iter()
        .map(|(_, h)| h.split('.').rev().collect())
        .collect();
    let most = labels.iter().map(|l| l.len() - 1).min().unwrap_or(0);
    let shared = (0..most)
        .take_while(|&i| labels.iter().all(|l| l[i] == labels[0][i]))
        .count();
    split
        .iter()
        .zip(&labels)
        .map(|((name, _), l)| {
            let host: Vec<&str> = l[shared..].iter().rev().copied().collect();
            format!("{name}@{}", host.join("."))
        })
        .collect()
}

/// What a session watches, for the first line of its frames.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The entry node (the first one named, without `--cluster`).
    pub entry: String,
    /// The entry node's whole cluster (`--cluster`), not a list of nodes.
    pub whole_cluster: bool,
}

impl Watched {
    pub fn title(&self, nodes: usize) -> String {
        let n = match nodes {
            1 => "1 node".to_string(),
            n => format!("{n} nodes"),
        };
        if self.whole_cluster {
            format!("cluster of {n} via {}", self.entry)
        } else {
            n
        }
    }
}

/// Each node's reconnections, followed as a single node's view follows
/// them: a node that restarted or whose connection was regained says so on
/// its strip line for a few frames.
#[derive(Debug, Default)]
pub struct NodeRestarts(HashMap<String, Restarts>);

impl NodeRestarts {
    /// Takes in the incarnation behind a node's answer shown this frame.
    pub fn observe(&mut self, node: &str, now: Incarnation) -> Reconnect {
        self.0.entry(node.to_string()).or_default().observe(now)
    }

    /// Forgets the nodes no longer watched.
    pub fn retain(&mut self, present: &HashSet<String>) {
        self.0.retain(|n, _| present.contains(n));
    }
}

/// What a node's entry in `nodes` says of its connection: which one the
/// answer came on (`null` without an answer), and whether it is the first
/// after a reconnection.
pub fn connection_json(epoch: Option<u64>, r: &Reconnect) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("epoch".into(), epoch.into());
    o.insert("reconnected".into(), r.first.into());
    o
}

/// A node's state as the strip says it, and after a reconnection, what
/// became of the node.
pub fn state_text<T>(n: &NodeReport<T>, r: &Reconnect) -> String {
    let mut s = state_only(n);
    if let Some(notice) = &r.notice {
        s.push_str("; ");
        s.push_str(notice);
    }
    s
}

fn state_only<T>(n: &NodeReport<T>) -> String {
    let secs = n.silent.as_secs_f64();
    let mut s = match &n.state {
        NodeState::Answered => "ok".to_string(),
        NodeState::Late => "late (answer to the previous frame)".to_string(),
        NodeState::Slow => format!("no answer for {secs:.0} s (waiting)"),
        NodeState::Attaching => "attaching".to_string(),
        NodeState::Failed(e) => format!("no answer for {secs:.0} s: {e}; retrying"),
    };
    if !n.listed {
        s.push_str(" (left the cluster)");
    }
    s
}

/// A node's state as JSON names it.
pub fn state_word(s: &NodeState) -> &'static str {
    match s {
        NodeState::Answered => "ok",
        NodeState::Late => "late",
        NodeState::Slow => "slow",
        NodeState::Attaching => "attaching",
        NodeState::Failed(_) => "failed",
    }
}

/// A node's entry in the frame's `nodes` array: name, state, and the
/// view's own `values`.
pub fn node_json<T>(n: &NodeReport<T>, values: Map<String, Value>) -> Value {
    let mut o = Map::new();
    o.insert("node".into(), n.name.clone().into());
    o.insert("answered".into(), n.state.answered().into());
    o.insert("state".into(), state_word(&n.state).into());
    o.insert(
        "error".into(),
        match &n.state {
            NodeState::Failed(e) => e.clone().into(),
            _ => Value::Null,
        },
    );
    o.insert("listed".into(), n.listed.into());
    o.insert(
        "silent_secs".into(),
        if n.state.answered() {
            0.0.into()
        } else {
            n.silent.as_secs_f64().into()
        },
    );
    o.extend(values);
    Value::Object(o)
}

/// The nodes without an answer this frame, by their short names, and why:
/// what a folded strip still names.
pub fn silent_nodes<T>(
    reports: &[NodeReport<T>],
    shorts: &[String],
) -> Vec<(String, &'static str)> {
    reports
        .iter()
        .zip(shorts)
        .filter(|(n, _)| !n.state.answered())
        .map(|(n, s)| (s.clone(), state_word(&n.state)))
        .collect()
}

/// The strip above a merged table: a title line, one line per node and a
/// total line, in aligned columns; or, when there are more nodes than
/// `room` lines, the title, the total and one line naming the nodes that
/// did not answer.
pub struct Strip {
    /// The value columns' titles (after `Node`, before `State`).
    pub titles: Vec<&'static str>,
    /// Per node: short name, values, state.
    pub lines: Vec<(String, Vec<String>, String)>,
    /// The totals, and what the state column says of the whole.
    pub total: (Vec<String>, String),
    /// The nodes without an answer this frame: short name and state word.
    pub silent: Vec<(String, &'static str)>,
}

impl Strip {
    pub fn text(&self, room: usize) -> Vec<String> {
        let fits = self.lines.len() + 2 <= room;
        let mut rows: Vec<(String, Vec<String>, String)> = vec![(
            "Node".into(),
            self.titles.iter().map(|t| t.to_string()).collect(),
            "State".into(),
        )];
        if fits {
            rows.extend(self.lines.iter().cloned());
        }
        rows.push(("all".into(), self.total.0.clone(), self.total.1.clone()));
        // Names and errors come from nodes: escaped before they are measured.
        let safe = |s: &str| crate::text::terminal_safe(s).into_owned();
        let rows: Vec<(String, Vec<String>, String)> = rows
            .iter()
            .map(|(n, v, st)| (safe(n), v.iter().map(|x| safe(x)).collect(), safe(st)))
            .collect();
        let name_w = rows
            .iter()
            .map(|r| crate::text::width(&r.0))
            .max()
            .unwrap_or(0);
        let widths: Vec<usize> = (0..self.titles.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r.1.get(i).map(|v| crate::text::width(v)).unwrap_or(0))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out: Vec<String> = rows
            .iter()
            .map(|(name, values, state)| {
                let mut l = format!("{name:<name_w$}");
                for (v, w) in values.iter().zip(&widths) {
                    l.push_str(&format!("  {v:>w$}"));
                }
                l.push_str("  ");
                l.push_str(state);
                l
            })
            .collect();
        if !fits && !self.silent.is_empty() {
            let named: Vec<String> = self
                .silent
                .iter()
                .map(|(n, s)| format!("{} ({s})", crate::text::terminal_safe(n)))
                .collect();
            out.push(format!("Not answering: {}", named.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn short_names_drop_what_all_nodes_share() {
        assert_eq!(
            short_names(&names(&["a@db1", "b@db1", "rabbit@db1"])),
            names(&["a", "b", "rabbit"])
        );
        assert_eq!(
            short_names(&names(&["a@db1.example.com", "a@db2.example.com"])),
            names(&["a@db1", "a@db2"])
        );
        assert_eq!(
            short_names(&names(&["a@db1.eu.example.com", "b@db2.us.example.com"])),
            names(&["a@db1.eu", "b@db2.us"])
        );
        // Nothing shared, or addresses: kept whole.
        assert_eq!(
            short_names(&names(&["a@db1", "b@db2"])),
            names(&["a@db1", "b@db2"])
        );
        assert_eq!(
            short_names(&names(&["a@10.0.1.5", "b@10.0.2.5"])),
            names(&["a@10.0.1.5", "b@10.0.2.5"])
        );
        assert_eq!(
            short_names(&names(&["a@127.0.0.1", "b@127.0.0.1"])),
            names(&["a", "b"])
        );
        assert!(short_names(&[]).is_empty());
    }

    fn strip(n: usize, silent: usize) -> Strip {
        Strip {
            titles: vec!["Procs", "Memory"],
            lines: (0..n)
                .map(|i| {
                    (
                        format!("node{i}"),
                        vec![format!("{}", i * 100), "1.0M".into()],
                        if i < silent {
                            "no answer".into()
                        } else {
                            "ok".into()
                        },
                    )
                })
                .collect(),
            total: (
                vec!["9999".into(), "9.0M".into()],
                format!("{} of {n} answered", n - silent),
            ),
            silent: (0..silent)
                .map(|i| (format!("node{i}"), "failed"))
                .collect(),
        }
    }

    #[test]
    fn the_strip_aligns_its_columns() {
        let t = strip(3, 1).text(100);
        assert_eq!(
            t,
            vec![
                "Node   Procs  Memory  State",
                "node0      0    1.0M  no answer",
                "node1    100    1.0M  ok",
                "node2    200    1.0M  ok",
                "all     9999    9.0M  2 of 3 answered",
            ]
        );
    }

    #[test]
    fn names_from_nodes_are_escaped_before_they_are_aligned() {
        let mut s = strip(2, 1);
        s.lines[0].0 = "x\x1b[2J".into();
        s.silent[0].0 = "x\x1b[2J".into();
        let t = s.text(100);
        assert!(t.iter().all(|l| !l.contains('\x1b')), "{t:?}");
        assert!(t[1].starts_with("x\\e[2J  "), "{t:?}");
        assert_eq!(
            t[0].find("Procs"),
            t[2].find("    100").map(|i| i + 2),
            "{t:?}"
        );
        let folded = s.text(1);
        assert_eq!(
            folded.last().map(String::as_str),
            Some("Not answering: x\\e[2J (failed)")
        );
    }

    #[test]
    fn a_strip_with_more_nodes_than_room_folds_and_names_the_silent() {
        let t = strip(30, 2).text(10);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t[1].starts_with("all ") && t[1].ends_with("28 of 30 answered"));
        assert_eq!(t[2], "Not answering: node0 (failed), node1 (failed)");
        assert_eq!(strip(30, 0).text(10).len(), 2);
        assert_eq!(strip(8, 0).text(10).len(), 10);
    }
}
