//! The main view, the process table: a feed that samples the node (and, for
//! a node on this host, what the OS sees of it) and a shaper that turns
//! consecutive samples into a `Model`.

use crate::collect::{Collector, OsSample, Sample};
use crate::error::Result;
use crate::model::{Model, NameStyle};
use crate::osview;
use crate::remote::SortKey;
use crate::render;
use crate::session::{Feed, Renderable, Shaper};
use std::path::PathBuf;
use std::time::Duration;

pub struct ProcFeed {
    pub collector: Collector,
    pub key: SortKey,
    pub lines: usize,
    pub delta: bool,
    pub timeout: Duration,
    /// The node's OS process, when it runs on this host.
    pub os_pid: Option<u32>,
    pub proc_root: PathBuf,
}

impl Feed for ProcFeed {
    type Sample = Sample;
    fn sample(&mut self) -> Result<Sample> {
        let mut s = self
            .collector
            .sample(self.key, self.lines, self.delta, self.timeout)?;
        if let Some(pid) = self.os_pid {
            // The OS view is a bonus: if the process cannot be read (it may
            // have restarted under another pid), the frame goes on without it.
            s.os = match (
                osview::proc_stat(&self.proc_root, pid),
                osview::host_stat(&self.proc_root),
            ) {
                (Ok(process), Ok(host)) => Some(OsSample { process, host }),
                _ => None,
            };
        }
        Ok(s)
    }
    fn close(&mut self) {
        self.collector.close();
    }
    fn stats(&self, r: &Result<Sample>) -> Option<serde_json::Value> {
        let (rx, tx) = self.collector.traffic();
        Some(serde_json::json!({
            "node_cost_us": r.as_ref().map(|s| s.cost_us).ok(),
            "heap_bytes": r.as_ref().map(|s| s.heap_bytes).ok(),
            "rows": r.as_ref().map(|s| s.rows.len()).ok(),
            "rx_bytes": rx,
            "tx_bytes": tx,
            "dropped": self.collector.dropped(),
            "ok": r.is_ok(),
        }))
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
    type Sample = Sample;
    fn shape(&mut self, s: Sample) -> Option<Box<dyn Renderable>> {
        let mut prev = self.prev.take();
        // A reductions frame the agent computed without the previous frame's
        // state holds totals: it starts a new window, like a first frame.
        if s.key == SortKey::Reductions && !self.accumulate && !s.delta {
            prev = None;
        }
        let window = prev.as_ref().map(|p| {
            (
                p,
                crate::collect::window((s.taken_at, s.node_mono_us), (p.taken_at, p.node_mono_us)),
            )
        });
        let mut model = Model::new(&s, window, self.accumulate, self.names);
        model.header.show_schedulers = self.show_schedulers;
        let first = prev.is_none();
        self.prev = Some(s);
        if first && self.baseline_first {
            return None;
        }
        Some(Box::new(model))
    }
}

impl Renderable for Model {
    fn text(&self, width: usize, max_rows: usize) -> String {
        render::text(self, width, max_rows)
    }
    fn csv_header(&self) -> String {
        render::CSV_HEADER.to_string()
    }
    fn csv(&self) -> String {
        render::csv(self)
    }
    fn json(&self) -> String {
        render::json(self)
    }
    fn note(&self) -> String {
        render::cost_note(
            self.header.cost_ms,
            self.header.agent_heap_bytes,
            self.header.agent_heap_limit_bytes,
        )
    }
}
