//! `etop threads`: the VM's OS threads (schedulers, dirty schedulers, async
//! pool, aux...) with CPU per interval, from /proc. Needs no cookie and works
//! on a node that is not distributed at all.

use crate::error::{Error, Result};
use crate::osview::{self, ThreadRow, ThreadStat};
use crate::render;
use crate::session::{Feed, Renderable, Shaper};
use std::path::PathBuf;
use std::time::Instant;

/// Sort keys of the threads view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadSort {
    /// User plus system CPU in the interval.
    Cpu,
    /// Voluntary context switches in the interval.
    Vcs,
    /// Involuntary context switches in the interval.
    Ivcs,
    /// Thread name.
    Name,
    /// Thread id.
    Tid,
}

pub struct ThreadFeed {
    pub proc_root: PathBuf,
    pub os_pid: u32,
}

pub struct ThreadSample {
    at: Instant,
    threads: Vec<ThreadStat>,
}

impl Feed for ThreadFeed {
    type Sample = ThreadSample;
    fn sample(&mut self) -> Result<ThreadSample> {
        let threads =
            osview::threads(&self.proc_root, self.os_pid).map_err(|e| Error::ConnectionLost {
                node: format!("OS process {}", self.os_pid),
                reason: format!("cannot read its threads: {e}"),
            })?;
        Ok(ThreadSample {
            at: Instant::now(),
            threads,
        })
    }
}

pub struct ThreadShaper {
    pub label: String,
    pub sort: ThreadSort,
    pub lines: usize,
    /// One-shot runs show a real window: the first sample is a baseline.
    pub baseline_first: bool,
    prev: Option<ThreadSample>,
}

impl ThreadShaper {
    pub fn new(label: String, sort: ThreadSort, lines: usize, once: bool) -> ThreadShaper {
        ThreadShaper {
            label,
            sort,
            lines,
            baseline_first: once,
            prev: None,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadFrame {
    pub label: String,
    pub threads: usize,
    pub window_secs: Option<f64>,
    pub sort: ThreadSort,
    pub rows: Vec<ThreadRowView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadRowView {
    pub tid: u32,
    pub name: String,
    pub state: String,
    pub cpu_pct: Option<f64>,
    pub user_pct: Option<f64>,
    pub sys_pct: Option<f64>,
    pub vcs: Option<u64>,
    pub ivcs: Option<u64>,
    pub last_cpu: u32,
}

fn cpu(r: &ThreadRow) -> Option<f64> {
    Some(r.user_pct? + r.sys_pct?)
}

/// Sorts rows in place; unknown values go last.
pub fn sort_rows(rows: &mut [ThreadRow], key: ThreadSort) {
    let desc_f = |a: Option<f64>, b: Option<f64>| {
        b.unwrap_or(-1.0)
            .partial_cmp(&a.unwrap_or(-1.0))
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    match key {
        ThreadSort::Cpu => rows.sort_by(|a, b| desc_f(cpu(a), cpu(b)).then(a.tid.cmp(&b.tid))),
        ThreadSort::Vcs => rows.sort_by_key(|r| std::cmp::Reverse(r.vol_cs_delta)),
        ThreadSort::Ivcs => rows.sort_by_key(|r| std::cmp::Reverse(r.invol_cs_delta)),
        ThreadSort::Name => rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.tid.cmp(&b.tid))),
        ThreadSort::Tid => rows.sort_by_key(|r| r.tid),
    }
}

impl Shaper for ThreadShaper {
    type Sample = ThreadSample;
    fn shape(&mut self, s: ThreadSample) -> Option<Box<dyn Renderable>> {
        let prev = self.prev.take();
        let window = prev
            .as_ref()
            .map(|p| s.at.saturating_duration_since(p.at).as_secs_f64());
        let mut rows = osview::thread_rows(
            &s.threads,
            prev.as_ref()
                .map(|p| (p.threads.as_slice(), window.unwrap_or(0.0))),
            osview::clk_tck(),
        );
        let first = prev.is_none();
        self.prev = Some(s);
        if first && self.baseline_first {
            return None;
        }
        sort_rows(&mut rows, self.sort);
        let total = rows.len();
        rows.truncate(self.lines);
        Some(Box::new(ThreadFrame {
            label: self.label.clone(),
            threads: total,
            window_secs: window,
            sort: self.sort,
            rows: rows
                .iter()
                .map(|r| ThreadRowView {
                    tid: r.tid,
                    name: r.name.clone(),
                    state: r.state.to_string(),
                    cpu_pct: cpu(r),
                    user_pct: r.user_pct,
                    sys_pct: r.sys_pct,
                    vcs: r.vol_cs_delta,
                    ivcs: r.invol_cs_delta,
                    last_cpu: r.last_cpu,
                })
                .collect(),
        }))
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

fn num(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

impl Renderable for ThreadFrame {
    fn text(&self, width: usize, max_rows: usize) -> String {
        let window = match self.window_secs {
            Some(w) => format!("CPU over {w:.1} s"),
            None => "CPU from the next frame".to_string(),
        };
        let head = format!("{}  {} threads  {}", self.label, self.threads, window);
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .take(max_rows)
            .map(|r| {
                vec![
                    r.tid.to_string(),
                    r.name.clone(),
                    r.state.clone(),
                    pct(r.cpu_pct),
                    pct(r.user_pct),
                    pct(r.sys_pct),
                    num(r.vcs),
                    num(r.ivcs),
                    r.last_cpu.to_string(),
                ]
            })
            .collect();
        let table = render::simple_table(
            &[
                "TID", "Thread", "S", "CPU%", "User%", "Sys%", "VolCS", "InvolCS", "Core",
            ],
            &rows,
            &[0, 3, 4, 5, 6, 7, 8],
        );
        format!("{}\n\n{}", render::truncate(&head, width), table)
    }
    fn csv_header(&self) -> String {
        "tid,thread,state,cpu_pct,user_pct,sys_pct,vol_cs,invol_cs,last_cpu".into()
    }
    fn csv(&self) -> String {
        self.rows
            .iter()
            .map(|r| {
                render::csv_line(&[
                    r.tid.to_string(),
                    r.name.clone(),
                    r.state.clone(),
                    r.cpu_pct.map(|v| format!("{v:.2}")).unwrap_or_default(),
                    r.user_pct.map(|v| format!("{v:.2}")).unwrap_or_default(),
                    r.sys_pct.map(|v| format!("{v:.2}")).unwrap_or_default(),
                    r.vcs.map(|v| v.to_string()).unwrap_or_default(),
                    r.ivcs.map(|v| v.to_string()).unwrap_or_default(),
                    r.last_cpu.to_string(),
                ])
            })
            .collect()
    }
    fn json(&self) -> String {
        crate::escape::json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tid: u32, name: &str, user: Option<f64>, vcs: Option<u64>) -> ThreadRow {
        ThreadRow {
            tid,
            name: name.into(),
            state: 'S',
            user_pct: user,
            sys_pct: user.map(|_| 1.0),
            vol_cs_delta: vcs,
            invol_cs_delta: None,
            last_cpu: 0,
        }
    }

    #[test]
    fn cpu_sort_puts_busy_first_and_unknown_last() {
        let mut rows = vec![
            row(1, "aux", None, None),
            row(2, "1_scheduler", Some(90.0), Some(3)),
            row(3, "2_scheduler", Some(10.0), Some(9)),
        ];
        sort_rows(&mut rows, ThreadSort::Cpu);
        assert_eq!(
            rows.iter().map(|r| r.tid).collect::<Vec<_>>(),
            vec![2, 3, 1]
        );
        sort_rows(&mut rows, ThreadSort::Vcs);
        assert_eq!(rows[0].tid, 3);
        sort_rows(&mut rows, ThreadSort::Name);
        assert_eq!(rows[0].name, "1_scheduler");
    }
}
