//! The main view, the process table: a feed that samples the node (and, for
//! a node on this host, what the OS sees of it) and a shaper that turns
//! consecutive samples into a model and a frame.

pub mod frame;
pub mod model;

use crate::agent::SortKey;
use crate::agent::collector::Collector;
use crate::agent::sample::{Sample, window};
use crate::error::Result;
use crate::host::{self, HostWatch};
use crate::views::{Feed, Frame, Shaper};
use model::{Model, NameStyle, OsSample};
use std::path::PathBuf;
use std::time::Duration;

/// One sample of the process view: the node's, and the OS's for a node on
/// this host.
pub struct ProcSample {
    pub node: Sample,
    pub os: Option<OsSample>,
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
}

impl Feed for ProcFeed {
    type Sample = ProcSample;
    fn sample(&mut self) -> Result<ProcSample> {
        let node = self
            .collector
            .sample(self.key, self.lines, self.delta, self.timeout)?;
        // The OS view is a bonus: if the process cannot be read (it may have
        // restarted under another pid), the frame goes on without it.
        let os = self.os_pid.and_then(|pid| {
            Some(OsSample {
                process: host::proc_stat(&self.proc_root, pid).ok()?,
                host: self.host.sample().ok()?,
            })
        });
        Ok(ProcSample { node, os })
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
}

impl ProcShaper {
    pub fn new(accumulate: bool, names: NameStyle, baseline_first: bool) -> ProcShaper {
        ProcShaper {
            accumulate,
            show_schedulers: false,
            names,
            baseline_first,
            prev: None,
        }
    }
}

impl Shaper for ProcShaper {
    type Sample = ProcSample;
    fn shape(&mut self, s: ProcSample) -> Option<Frame> {
        let ProcSample { node: s, os } = s;
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
        let first = prev.is_none();
        self.prev = Some(s);
        if first && self.baseline_first {
            return None;
        }
        Some(frame::frame(&model))
    }
}
