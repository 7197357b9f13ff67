//! The main view, the process table: a feed that samples the node (and, for
//! a node on this host, what the OS sees of it) and a shaper that turns
//! consecutive samples into a model and a frame. The same feed shows one
//! process in detail when asked to.

pub mod detail;
pub mod frame;
pub mod model;
pub mod select;
pub mod warn;
pub mod warning;

use crate::agent::collector::Collector;
use crate::agent::detail::ProcDetail;
use crate::agent::sample::{Sample, node_started, window};
use crate::agent::{SampleRequest, SortKey};
use crate::error::Result;
use crate::host::{self, HostWatch};
use crate::views::filter::Expr;
use crate::views::restart::{Incarnation, Restarts};
use crate::views::{Control, Feed, Frame, Shaper, SortChoice};
use model::{Model, NameStyle, OsSample};
use std::path::PathBuf;
use std::time::Duration;

/// The sorts of the process table, in the order of their columns.
pub fn sorts() -> Vec<SortChoice> {
    vec![
        SortChoice {
            letter: Some('R'),
            name: "reductions",
            key: SortKey::Reductions,
        },
        SortChoice {
            letter: Some('M'),
            name: "memory",
            key: SortKey::Memory,
        },
        SortChoice {
            letter: Some('T'),
            name: "total heap",
            key: SortKey::Heap,
        },
        SortChoice {
            letter: Some('B'),
            name: "binary memory",
            key: SortKey::Binary,
        },
        SortChoice {
            letter: Some('Q'),
            name: "message queue",
            key: SortKey::Msgq,
        },
    ]
}

/// One sample of the process view: the table (the node's sample, and the
/// OS's for a node on this host), or one process in detail.
// One value per interval, moved once to the main thread: its size costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum ProcSample {
    Table {
        node: Box<Sample>,
        os: Option<OsSample>,
        /// The node's OS process, for a node on this host, as known now.
        os_pid: Option<u32>,
    },
    Detail {
        detail: Box<ProcDetail>,
        node: String,
    },
    /// The process shown in detail is gone.
    Gone { pid: String, node: String },
}

pub struct ProcFeed {
    pub collector: Collector,
    pub key: SortKey,
    pub lines: usize,
    /// Totals instead of reductions in the window.
    pub accumulate: bool,
    pub timeout: Duration,
    /// The process shown in detail, if any.
    pub detail: Option<String>,
    /// A process asked about that does not exist is an error (`etop
    /// proc`), not a page saying so (the interactive top, where the
    /// selected process may have just exited).
    pub gone_is_error: bool,
    pub filter: Option<Expr>,
    /// A one-shot run ranked by something else than reductions: its first
    /// sample is a reductions frame, so that the agent keeps a baseline of
    /// every process and the shown frame has reductions for all its rows.
    pub once: bool,
    /// The node's OS process, when it runs on this host.
    pub os_pid: Option<u32>,
    pub proc_root: PathBuf,
    pub host: HostWatch,
    /// The epoch of the last sample (0 before the first): a new one means
    /// a new connection, maybe to a restarted node under another OS pid.
    pub epoch: u64,
}

impl ProcFeed {
    /// Reductions ranked by their change in the window.
    fn delta(&self) -> bool {
        self.key == SortKey::Reductions && !self.accumulate
    }

    /// The node's OS process once more, by its name: after a reconnection,
    /// or when the one known is gone.
    fn find_os_pid(&mut self, node: &Sample) {
        if let Some(pid) = crate::node::local_os_pid(&node.node, &self.proc_root) {
            self.os_pid = Some(pid);
        }
    }

    /// What the OS says of the node. A bonus: if the process cannot be
    /// read, the frame goes on without it, and the next frames look for it
    /// by name.
    fn os_sample(&mut self, node: &Sample) -> Option<OsSample> {
        let local = self.os_pid.is_some();
        if local && self.epoch != 0 && node.epoch != self.epoch {
            self.find_os_pid(node);
        }
        self.epoch = node.epoch;
        let mut process = self
            .os_pid
            .and_then(|pid| host::proc_stat(&self.proc_root, pid).ok());
        if local && process.is_none() {
            self.find_os_pid(node);
            process = self
                .os_pid
                .and_then(|pid| host::proc_stat(&self.proc_root, pid).ok());
        }
        match (self.os_pid, process) {
            (Some(pid), Some(process)) => {
                self.host
                    .sample()
                    .ok()
                    .map(|host| OsSample { pid, process, host })
            }
            _ => None,
        }
    }
}

/// How long a process may take to answer a detail request on the node.
const DETAIL_BOUND: Duration = Duration::from_secs(2);

impl Feed for ProcFeed {
    type Sample = ProcSample;
    fn control(&mut self, c: &Control) {
        match c {
            Control::Sort(k) => self.key = *k,
            Control::Accumulate(a) => self.accumulate = *a,
            Control::Rows(n) => self.lines = (*n).clamp(1, 10_000),
            Control::Detail(pid) => self.detail = pid.clone(),
            Control::Filter(f) => self.filter = f.clone(),
        }
    }
    fn sample(&mut self) -> Result<ProcSample> {
        if let Some(pid) = &self.detail {
            return match self
                .collector
                .detail(pid, detail::FIRST_N, DETAIL_BOUND, self.timeout)
            {
                Ok(detail) => Ok(ProcSample::Detail {
                    detail: Box::new(detail),
                    node: self.collector.peer(),
                }),
                Err(crate::error::Error::NoProcess { node }) if !self.gone_is_error => {
                    Ok(ProcSample::Gone {
                        pid: pid.clone(),
                        node,
                    })
                }
                Err(e) => Err(e),
            };
        }
        let baseline = self.once && self.key != SortKey::Reductions && !self.accumulate;
        let first = baseline && self.epoch == 0;
        let req = SampleRequest {
            key: if first { SortKey::Reductions } else { self.key },
            lines: self.lines,
            delta: first || self.delta(),
            filter: self.filter.as_ref().map(select::on_node),
            reds_base: baseline && !first,
        };
        let node = self.collector.sample(&req, self.timeout)?;
        let os = self.os_sample(&node);
        Ok(ProcSample::Table {
            node: Box::new(node),
            os,
            os_pid: self.os_pid,
        })
    }
    fn close(&mut self) {
        self.collector.close();
    }
    fn stats(&self, r: &Result<ProcSample>) -> Option<serde_json::Value> {
        let s = match r {
            Ok(ProcSample::Table { node, .. }) => Some(&**node),
            _ => None,
        };
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
    prev_detail: Option<ProcDetail>,
    restarts: Restarts,
    watch: warn::Watch,
    /// The filter, judged again on rows whose reductions the node could not
    /// compare.
    pub filter: Option<Expr>,
}

impl ProcShaper {
    pub fn new(accumulate: bool, names: NameStyle, baseline_first: bool) -> ProcShaper {
        ProcShaper {
            accumulate,
            show_schedulers: false,
            names,
            baseline_first,
            prev: None,
            prev_detail: None,
            restarts: Restarts::default(),
            watch: warn::Watch::default(),
            filter: None,
        }
    }
}

impl Shaper for ProcShaper {
    type Sample = ProcSample;
    fn control(&mut self, c: &Control) {
        match c {
            Control::Accumulate(a) => self.accumulate = *a,
            Control::Detail(None) => self.prev_detail = None,
            // Growth seen before the filter changed is not growth of the
            // processes the filter now shows.
            Control::Filter(f) => {
                self.watch.reset();
                self.filter = f.clone();
            }
            _ => {}
        }
    }
    fn shape(&mut self, s: ProcSample) -> Option<Frame> {
        let (s, os, os_pid) = match s {
            ProcSample::Table { node, os, os_pid } => (*node, os, os_pid),
            ProcSample::Detail { detail, node } => {
                let f = detail::frame(&detail, self.prev_detail.as_ref(), &node, self.names);
                self.prev_detail = Some(*detail);
                return Some(f);
            }
            ProcSample::Gone { pid, node } => return Some(detail::gone(&pid, &node)),
        };
        let reconnect = self.restarts.observe(Incarnation {
            epoch: s.epoch,
            started: node_started(s.clock, s.node_mono_us, s.node_start_us),
            os_pid,
        });
        if self.prev.as_ref().is_some_and(|p| p.epoch != s.epoch) {
            self.watch.reset();
        }
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
        if let Some(f) = &self.filter
            && select::needs_reds(f)
            && !(s.key == SortKey::Reductions && s.delta)
        {
            model.rows.retain(|r| select::keep(f, r));
        }
        model.header.show_schedulers = self.show_schedulers;
        model.header.reconnected = reconnect.first;
        model.header.notice = reconnect.notice;
        model.warnings = self
            .watch
            .observe(&model.rows, s.runq, s.schedulers, s.limits.as_ref());
        for r in &mut model.rows {
            r.warn = model
                .warnings
                .iter()
                .any(|w| w.pid.as_deref() == Some(r.pid.as_str()));
        }
        let first = prev.is_none();
        self.prev = Some(s);
        if first && self.baseline_first {
            return None;
        }
        Some(frame::frame(&model))
    }
}
