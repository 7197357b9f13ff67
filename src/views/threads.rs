//! `etop threads`: the VM's OS threads (schedulers, dirty schedulers, async
//! pool, aux...) with CPU per interval, from /proc. Needs no cookie and works
//! on a node that is not distributed at all.

use super::column::{Cell, Column, Grid};
use super::{Feed, Frame, Shaper};
use crate::error::{Error, Result};
use crate::host::{self, ThreadRow, ThreadStat};
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
            host::threads(&self.proc_root, self.os_pid).map_err(|e| Error::ConnectionLost {
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

/// The columns of the threads view.
pub const COLUMNS: [Column<ThreadRow>; 9] = [
    Column::num("TID", "tid", |r| Cell::Count(Some(u64::from(r.tid)))),
    Column::flex("Thread", "name", |r| Cell::text(&r.name)),
    Column::text("S", "state", |r| Cell::text(r.state.to_string())),
    Column::num("CPU%", "cpu_pct", |r| Cell::Pct(cpu(r))),
    Column::num("User%", "user_pct", |r| Cell::Pct(r.user_pct)),
    Column::num("Sys%", "sys_pct", |r| Cell::Pct(r.sys_pct)),
    Column::num("VolCS", "vcs", |r| Cell::Count(r.vol_cs_delta)),
    Column::num("InvolCS", "ivcs", |r| Cell::Count(r.invol_cs_delta)),
    Column::num("Core", "last_cpu", |r| {
        Cell::Count(Some(u64::from(r.last_cpu)))
    }),
];

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
    fn shape(&mut self, s: ThreadSample) -> Option<Frame> {
        let prev = self.prev.take();
        let window = prev
            .as_ref()
            .map(|p| s.at.saturating_duration_since(p.at).as_secs_f64());
        let mut rows = host::thread_rows(
            &s.threads,
            prev.as_ref()
                .map(|p| (p.threads.as_slice(), window.unwrap_or(0.0))),
            host::ticks_per_second(),
        );
        let first = prev.is_none();
        self.prev = Some(s);
        if first && self.baseline_first {
            return None;
        }
        sort_rows(&mut rows, self.sort);
        let total = rows.len();
        rows.truncate(self.lines);
        Some(frame(&self.label, total, window, self.sort, &rows))
    }
}

/// The frame: `rows` (sorted and cut) of `total` threads over `window`.
pub fn frame(
    label: &str,
    total: usize,
    window: Option<f64>,
    sort: ThreadSort,
    rows: &[ThreadRow],
) -> Frame {
    let grid = Grid::new(&COLUMNS, rows);
    let win = match window {
        Some(w) => format!("CPU over {w:.1} s"),
        None => "CPU from the next frame".to_string(),
    };
    let json = serde_json::json!({
        "label": label,
        "threads": total,
        "window_secs": window,
        "sort": sort,
        "rows": grid.json_rows(),
    });
    Frame {
        header: vec![format!("{label}  {total} threads  {win}")],
        grids: vec![grid],
        csv_prefix: Vec::new(),
        json,
        note: String::new(),
        id_column: None,
        footer: Vec::new(),
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
