//! The main view, the process table: a feed that samples the node (and, for
//! a node on this host, what the OS sees of it) and a shaper that turns
//! consecutive samples into a model and a frame.

pub mod frame;
pub mod model;

use crate::agent::SortKey;
use crate::agent::collector::Collector;
use crate::agent::sample::{Sample, node_started, window};
use crate::error::Result;
use crate::host::{self, HostWatch};
use crate::views::restart::{Incarnation, Restarts};
use crate::views::{Feed, Frame, Shaper};
use model::{Model, NameStyle, OsSample};
use std::path::PathBuf;
use std::time::Duration;

/// One sample of the process view: the node's, and the OS's for a node on
/// this host.
pub struct ProcSample {
    pub node: Sample,
    pub os: Option<OsSample>,
    /// The node's OS process, for a node on this host, as known now.
    pub os_pid: Option<u32>,
}

pub struct ProcFeed {
    pub collector: Collector,
    pub key: SortKey,
    pub lines: usize,
    pub delta: bool,
    pub timeout: Duration,
    /// The node's OS process, when it runs on this host.
    pub os_pid: Option<u32>,
    pub proc_root: PathBuf,
    pub host: HostWatch,
    /// The epoch of the last sample (0 before the first): a new one means
    /// a new connection, maybe to a restarted node under another OS pid.
    pub epoch: u64,
}

impl ProcFeed {
    /// The node's OS process once more, by its name: after a reconnection,
    /// or when the one known is gone.
    fn find_os_pid(&mut self, node: &Sample) {
        if let Some(pid) = crate::node::local_os_pid(&node.node, &self.proc_root) {
            self.os_pid = Some(pid);
        }
    }
}

impl Feed for ProcFeed {
    type Sample = ProcSample;
    fn sample(&mut self) -> Result<ProcSample> {
        let node = self
            .collector
            .sample(self.key, self.lines, self.delta, self.timeout)?;
        let local = self.os_pid.is_some();
        if local && self.epoch != 0 && node.epoch != self.epoch {
            self.find_os_pid(&node);
        }
        self.epoch = node.epoch;
        // The OS view is a bonus: if the process cannot be read, the frame
        // goes on without it, and the next frames look for it by name.
        let mut process = self
            .os_pid
            .and_then(|pid| host::proc_stat(&self.proc_root, pid).ok());
        if local && process.is_none() {
            self.find_os_pid(&node);
            process = self
                .os_pid
                .and_then(|pid| host::proc_stat(&self.proc_root, pid).ok());
        }
        let os = match (self.os_pid, process) {
            (Some(pid), Some(process)) => {
                self.host
                    .sample()
                    .ok()
                    .map(|host| OsSample { pid, process, host })
            }
            _ => None,
        };
        Ok(ProcSample {
            node,
            os,
            os_pid: self.os_pid,
        })
    }
    fn close(&mut self) {
        self.collector.close();
    }
    fn stats(&self, r: &Result<ProcSample>) -> Option<serde_json::Value> {
        let s = r.as_ref().ok().map(|s| &s.node);
        let mut line = self.collector.stats(
            s.map(|s| s.cost_us as i64),
            s.map(|s| s.heap_bytes as i64),
            r.is_ok(),
        );
        line["rows"] = s.map(|s| s.rows.len()).into();
        Some(line)
    }
}

pub struct ProcShaper {
    pub accumulate: bool,
    pub show_schedulers: bool,
    pub names: NameStyle,
    /// One-shot runs sample twice and show only the second.
    pub baseline_first: bool,
    prev: Option<Sample>,
    restarts: Restarts,
}

impl ProcShaper {
    pub fn new(accumulate: bool, names: NameStyle, baseline_first: bool) -> ProcShaper {
        ProcShaper {
            accumulate,
            show_schedulers: false,
            names,
            baseline_first,
            prev: None,
            restarts: Restarts::default(),
        }
    }
}

impl Shaper for ProcShaper {
    type Sample = ProcSample;
    fn shape(&mut self, s: ProcSample) -> Option<Frame> {
        let ProcSample {
            node: s,
            os,
            os_pid,
        } = s;
        let reconnect = self.restarts.observe(Incarnation {
            epoch: s.epoch,
            started: node_started(s.clock, s.node_mono_us, s.node_start_us),
            os_pid,
        });
        let mut prev = self.prev.take();
        // A reductions frame the agent computed without the previous frame's
        // state holds totals: it starts a new window, like a first frame.
        if s.key == SortKey::Reductions && !self.accumulate && !s.delta {
            prev = None;
        }
        let win = prev.as_ref().map(|p| {
            (
                p,
                window((s.taken_at, s.node_mono_us), (p.taken_at, p.node_mono_us)),
            )
        });
        let mut model = Model::new(&s, win, os.as_ref(), self.accumulate, self.names);
        model.header.show_schedulers = self.show_schedulers;
        model.header.reconnected = reconnect.first;
        model.header.notice = reconnect.notice;
        let first = prev.is_none();
        self.prev = Some(s);
        if first && self.baseline_first {
            return None;
        }
        Some(frame::frame(&model))
    }
}
