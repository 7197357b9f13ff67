//! What the operating system sees: of the VM, its memory, CPU time and
//! threads (procfs, Linux only, read under a proc root so that a container's
//! `/host/proc` or a test's fake tree can stand in for `/proc`); of the host,
//! CPU count and use, load, memory and uptime (sysinfo, any OS); and the
//! names of users and of this host.

#[cfg(target_os = "linux")]
mod linux;
mod system;
mod users;

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod fake;

pub use system::{HostStat, HostWatch};
pub use users::{hostname, hostname_in, login_name, short_hostname, users};

use std::collections::HashMap;
use std::io;
use std::path::Path;

/// The VM process as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub rss_bytes: u64,
    pub threads: u32,
}

/// One thread of the VM, with its cumulative counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStat {
    pub tid: u32,
    /// The thread's name, e.g. "1_scheduler", "1_dirty_cpu_sch", "1_aux".
    pub name: String,
    pub state: char,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub voluntary_ctxt: u64,
    pub nonvoluntary_ctxt: u64,
    pub last_cpu: u32,
}

/// One thread over one interval: rates rather than counters.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRow {
    pub tid: u32,
    pub name: String,
    pub state: char,
    /// Percent of one CPU spent in user mode; `None` when there is no usable previous sample.
    pub user_pct: Option<f64>,
    pub sys_pct: Option<f64>,
    pub vol_cs_delta: Option<u64>,
    pub invol_cs_delta: Option<u64>,
    pub last_cpu: u32,
}

/// RSS and thread count of process `pid`.
pub fn proc_stat(proc_root: &Path, pid: u32) -> io::Result<ProcStat> {
    #[cfg(target_os = "linux")]
    {
        linux::proc_stat(proc_root, pid)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = proc_root;
        system::proc_stat(pid)
    }
}

/// Every thread of process `pid`, sorted by tid. Threads that exit while
/// being read are left out; an error means the process itself is gone or
/// cannot be read.
pub fn threads(proc_root: &Path, pid: u32) -> io::Result<Vec<ThreadStat>> {
    #[cfg(target_os = "linux")]
    {
        linux::threads(proc_root, pid)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (proc_root, pid);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "per-thread figures need Linux /proc",
        ))
    }
}

/// Clock ticks per second, the unit of every `*_ticks` field.
pub fn ticks_per_second() -> u64 {
    #[cfg(target_os = "linux")]
    {
        procfs::ticks_per_second()
    }
    #[cfg(not(target_os = "linux"))]
    {
        100
    }
}

/// Raises this process's soft limit of open files to `want`, or as far as
/// the hard limit allows (it is never lowered); the soft limit after, or
/// `None` where it cannot be read.
pub fn raise_open_files(want: u64) -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let now = getrlimit(Resource::Nofile);
        let Some(soft) = now.current else {
            // Unlimited already.
            return Some(u64::MAX);
        };
        let target = now.maximum.map_or(want, |hard| want.min(hard));
        if target > soft
            && setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(target),
                    maximum: now.maximum,
                },
            )
            .is_ok()
        {
            return Some(target);
        }
        Some(soft)
    }
    #[cfg(not(unix))]
    {
        let _ = want;
        None
    }
}

/// Turns two samples of thread counters into per-interval rates.
///
/// CPU% = delta ticks / (elapsed_secs * ticks_per_second) * 100, so 100 means
/// one full CPU. Rates are `None` on the first sample, for a thread not seen
/// before, and when the thread looks like a different one under a reused
/// tid (a counter went backwards or the name changed).
pub fn thread_rows(
    cur: &[ThreadStat],
    prev: Option<(&[ThreadStat], f64)>,
    ticks_per_sec: u64,
) -> Vec<ThreadRow> {
    let (before, elapsed): (HashMap<u32, &ThreadStat>, f64) = match prev {
        Some((p, el)) => (p.iter().map(|t| (t.tid, t)).collect(), el),
        None => (HashMap::new(), 0.0),
    };
    let window_ticks = elapsed * ticks_per_sec as f64;
    let usable_window = window_ticks.is_finite() && window_ticks > 0.0;
    cur.iter()
        .map(|t| {
            let same = before.get(&t.tid).filter(|p| {
                p.name == t.name
                    && t.utime_ticks >= p.utime_ticks
                    && t.stime_ticks >= p.stime_ticks
                    && t.voluntary_ctxt >= p.voluntary_ctxt
                    && t.nonvoluntary_ctxt >= p.nonvoluntary_ctxt
            });
            let pct = |now: u64, then: u64| {
                usable_window.then(|| (now - then) as f64 / window_ticks * 100.0)
            };
            ThreadRow {
                tid: t.tid,
                name: t.name.clone(),
                state: t.state,
                user_pct: same.and_then(|p| pct(t.utime_ticks, p.utime_ticks)),
                sys_pct: same.and_then(|p| pct(t.stime_ticks, p.stime_ticks)),
                vol_cs_delta: same.map(|p| t.voluntary_ctxt - p.voluntary_ctxt),
                invol_cs_delta: same.map(|p| t.nonvoluntary_ctxt - p.nonvoluntary_ctxt),
                last_cpu: t.last_cpu,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(tid: u32, name: &str, ut: u64, st: u64, vol: u64, invol: u64) -> ThreadStat {
        ThreadStat {
            tid,
            name: name.to_string(),
            state: 'S',
            utime_ticks: ut,
            stime_ticks: st,
            voluntary_ctxt: vol,
            nonvoluntary_ctxt: invol,
            last_cpu: 0,
        }
    }

    #[test]
    fn the_open_file_limit_is_raised_never_lowered() {
        let before = raise_open_files(0).expect("a limit");
        assert!(raise_open_files(before + 1).expect("a limit") >= before);
        assert!(raise_open_files(1).expect("a limit") > 1);
    }

    #[test]
    fn rows_on_first_sample_have_no_rates() {
        let cur = vec![ts(1, "1_scheduler", 100, 10, 5, 1)];
        let rows = thread_rows(&cur, None, 100);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].user_pct, None);
        assert_eq!(rows[0].sys_pct, None);
        assert_eq!(rows[0].vol_cs_delta, None);
        assert_eq!(rows[0].invol_cs_delta, None);
        assert_eq!(rows[0].name, "1_scheduler");
    }

    #[test]
    fn rows_rates_new_thread_and_reused_tid() {
        let prev = vec![
            ts(1, "1_scheduler", 100, 10, 5, 1),
            ts(2, "2_scheduler", 500, 50, 50, 5),
            ts(3, "1_aux", 10, 10, 10, 10),
        ];
        let cur = vec![
            // 2 s at 100 ticks/s is 200 ticks: 100 user ticks is 50%.
            ts(1, "1_scheduler", 200, 30, 9, 3),
            // Counter went backwards: a new thread under an old tid.
            ts(2, "2_scheduler", 20, 60, 55, 6),
            // Same tid, other name.
            ts(3, "async_1", 20, 20, 20, 20),
            // Not seen before.
            ts(4, "1_dirty_cpu_sch", 1, 1, 1, 1),
        ];
        let rows = thread_rows(&cur, Some((&prev, 2.0)), 100);
        assert_eq!(rows[0].user_pct, Some(50.0));
        assert_eq!(rows[0].sys_pct, Some(10.0));
        assert_eq!(rows[0].vol_cs_delta, Some(4));
        assert_eq!(rows[0].invol_cs_delta, Some(2));
        for r in &rows[1..] {
            assert_eq!(r.user_pct, None, "{}", r.name);
            assert_eq!(r.sys_pct, None, "{}", r.name);
            assert_eq!(r.vol_cs_delta, None, "{}", r.name);
            assert_eq!(r.invol_cs_delta, None, "{}", r.name);
        }
        let ctx_back = vec![ts(1, "1_scheduler", 200, 30, 1, 3)];
        assert_eq!(
            thread_rows(&ctx_back, Some((&prev, 2.0)), 100)[0].user_pct,
            None
        );
    }

    #[test]
    fn rows_with_zero_elapsed_keep_deltas_but_no_percent() {
        let prev = vec![ts(1, "1_scheduler", 100, 10, 5, 1)];
        let cur = vec![ts(1, "1_scheduler", 100, 10, 6, 1)];
        let rows = thread_rows(&cur, Some((&prev, 0.0)), 100);
        assert_eq!(rows[0].user_pct, None);
        assert_eq!(rows[0].vol_cs_delta, Some(1));
    }
}
