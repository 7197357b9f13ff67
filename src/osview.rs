//! What the operating system sees of the VM (Linux only): its memory and CPU
//! time, each of its threads (schedulers, dirty schedulers, async and aux
//! threads) and the host's load.
//!
//! Everything is read from a proc root passed in by the caller (normally
//! `/proc`) so tests can point it at a fake tree.

use std::collections::HashMap;
use std::io;
use std::path::Path;

/// What `/proc/<pid>/stat` says about the whole VM process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub rss_bytes: u64,
    pub threads: u32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
}

/// Load and CPU counters of the host, from `/proc/loadavg` and the `cpu` lines of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostStat {
    pub load_avg: [f64; 3],
    pub cpus: u32,
    /// Ticks spent in user, nice, system, irq, softirq and steal, summed over all CPUs.
    pub cpu_busy_ticks: u64,
    /// `cpu_busy_ticks` plus idle and iowait.
    pub cpu_total_ticks: u64,
}

/// One thread of the VM, with its cumulative counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStat {
    pub tid: u32,
    /// The thread's comm, e.g. "1_scheduler", "1_dirty_cpu_sch", "1_aux".
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

/// The parts of a `stat` line (process or thread) that this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatLine {
    pub comm: String,
    pub state: char,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u32,
    pub rss_pages: u64,
    pub processor: u32,
}

/// Parses a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` line.
///
/// The comm field may itself contain spaces and parentheses, so it runs from
/// the first `(` to the last `)`; the numbered fields are counted after that.
pub fn parse_stat_line(line: &str) -> Option<StatLine> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = line[open + 1..close].to_string();
    // Field 3 (state) is the first one after the comm; field N is at N - 3.
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|s| s.parse::<u64>().ok());
    let state = field(3)?.chars().next()?;
    Some(StatLine {
        comm,
        state,
        utime_ticks: num(14)?,
        stime_ticks: num(15)?,
        num_threads: u32::try_from(num(20)?).ok()?,
        // Negative or absent in odd kernels; treat as unknown rather than fail the line.
        rss_pages: field(24).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
        processor: field(39).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0),
    })
}

/// Parses `/proc/loadavg` and `/proc/stat` contents.
pub fn parse_host_stat(loadavg: &str, stat: &str) -> Option<HostStat> {
    let mut load_avg = [0.0; 3];
    let mut words = loadavg.split_whitespace();
    for slot in &mut load_avg {
        *slot = words.next()?.parse().ok()?;
    }
    let mut cpus = 0u32;
    let mut totals = None;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(label) = fields.next() else { continue };
        if label == "cpu" {
            let v: Vec<u64> = fields.map_while(|f| f.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal; guest time is
            // already counted in user and nice, so it is left out.
            let at = |i: usize| v.get(i).copied().unwrap_or(0);
            if v.len() < 4 {
                return None;
            }
            let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
            let idle = at(3) + at(4);
            totals = Some((busy, busy + idle));
        } else if label
            .strip_prefix("cpu")
            .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            cpus += 1;
        }
    }
    let (cpu_busy_ticks, cpu_total_ticks) = totals?;
    Some(HostStat {
        load_avg,
        cpus: cpus.max(1),
        cpu_busy_ticks,
        cpu_total_ticks,
    })
}

/// Reads the `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` lines of a `status` file.
pub fn parse_ctxt_switches(status: &str) -> (u64, u64) {
    let mut vol = 0;
    let mut invol = 0;
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().parse().unwrap_or(0);
        match key {
            "voluntary_ctxt_switches" => vol = value,
            "nonvoluntary_ctxt_switches" => invol = value,
            _ => {}
        }
    }
    (vol, invol)
}

#[cfg(target_os = "linux")]
fn bad_data(what: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected contents in {}", what.display()),
    )
}

/// A /proc file as text. Thread and process names in `stat` and `comm` are
/// whatever bytes the process set (its owner can write any thread's `comm`):
/// bytes that are not UTF-8 show as U+FFFD rather than failing the read.
#[cfg(target_os = "linux")]
pub(crate) fn read_text(path: &Path) -> io::Result<String> {
    let raw = std::fs::read(path)?;
    Ok(String::from_utf8(raw)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// RSS, thread count and CPU time of process `pid`.
#[cfg(target_os = "linux")]
pub fn proc_stat(proc_root: &Path, pid: u32) -> io::Result<ProcStat> {
    let path = proc_root.join(pid.to_string()).join("stat");
    let text = read_text(&path)?;
    let s = parse_stat_line(&text).ok_or_else(|| bad_data(&path))?;
    Ok(ProcStat {
        rss_bytes: s.rss_pages.saturating_mul(page_size()),
        threads: s.num_threads,
        utime_ticks: s.utime_ticks,
        stime_ticks: s.stime_ticks,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn proc_stat(_proc_root: &Path, _pid: u32) -> io::Result<ProcStat> {
    Err(unsupported())
}

/// Load averages and CPU counters of the host.
#[cfg(target_os = "linux")]
pub fn host_stat(proc_root: &Path) -> io::Result<HostStat> {
    let loadavg = std::fs::read_to_string(proc_root.join("loadavg"))?;
    let stat_path = proc_root.join("stat");
    let stat = std::fs::read_to_string(&stat_path)?;
    parse_host_stat(&loadavg, &stat).ok_or_else(|| bad_data(&stat_path))
}

#[cfg(not(target_os = "linux"))]
pub fn host_stat(_proc_root: &Path) -> io::Result<HostStat> {
    Err(unsupported())
}

/// Every thread of process `pid`, sorted by tid. Threads that exit while
/// being read are left out; an error means the process itself is gone or
/// cannot be read.
#[cfg(target_os = "linux")]
pub fn threads(proc_root: &Path, pid: u32) -> io::Result<Vec<ThreadStat>> {
    let task_dir = proc_root.join(pid.to_string()).join("task");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&task_dir)? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        match thread(&entry.path(), tid) {
            Ok(t) => out.push(t),
            Err(e) if thread_vanished(&e) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by_key(|t| t.tid);
    Ok(out)
}

#[cfg(not(target_os = "linux"))]
pub fn threads(_proc_root: &Path, _pid: u32) -> io::Result<Vec<ThreadStat>> {
    Err(unsupported())
}

#[cfg(target_os = "linux")]
fn thread(dir: &Path, tid: u32) -> io::Result<ThreadStat> {
    let stat_path = dir.join("stat");
    let stat = read_text(&stat_path)?;
    let s = parse_stat_line(&stat).ok_or_else(|| bad_data(&stat_path))?;
    let (voluntary_ctxt, nonvoluntary_ctxt) = match std::fs::read_to_string(dir.join("status")) {
        Ok(status) => parse_ctxt_switches(&status),
        Err(e) if thread_vanished(&e) => return Err(e),
        Err(_) => (0, 0),
    };
    // The comm file and the stat field hold the same name; prefer the file,
    // which needs no unbracketing, and fall back to stat if it is missing.
    let name = read_text(&dir.join("comm"))
        .ok()
        .map(|c| c.trim_end_matches('\n').to_string())
        .unwrap_or(s.comm);
    Ok(ThreadStat {
        tid,
        name,
        state: s.state,
        utime_ticks: s.utime_ticks,
        stime_ticks: s.stime_ticks,
        voluntary_ctxt,
        nonvoluntary_ctxt,
        last_cpu: s.processor,
    })
}

/// A thread that exits between listing and reading shows up as ENOENT or ESRCH.
#[cfg(target_os = "linux")]
fn thread_vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

#[cfg(not(target_os = "linux"))]
fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "the OS view needs Linux /proc")
}

/// Turns two samples of thread counters into per-interval rates.
///
/// CPU% = delta ticks / (elapsed_secs * clk_tck) * 100, so 100 means one full
/// CPU. Rates are `None` on the first sample, for a thread not seen before,
/// and when the thread looks like a different one under a reused tid (a
/// counter went backwards or the name changed).
pub fn thread_rows(
    cur: &[ThreadStat],
    prev: Option<(&[ThreadStat], f64)>,
    clk_tck: u64,
) -> Vec<ThreadRow> {
    let (before, elapsed): (HashMap<u32, &ThreadStat>, f64) = match prev {
        Some((p, el)) => (p.iter().map(|t| (t.tid, t)).collect(), el),
        None => (HashMap::new(), 0.0),
    };
    let ticks_per_sec_window = elapsed * clk_tck as f64;
    let usable_window = ticks_per_sec_window.is_finite() && ticks_per_sec_window > 0.0;
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
                usable_window.then(|| (now - then) as f64 / ticks_per_sec_window * 100.0)
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

/// Clock ticks per second, the unit of every `*_ticks` field.
pub fn clk_tck() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a configuration value.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 {
            return v as u64;
        }
    }
    // The value Linux has used on every mainstream architecture.
    100
}

/// Bytes per memory page, the unit of RSS in `stat`.
pub fn page_size() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a configuration value.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 {
            return v as u64;
        }
    }
    4096
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A stat line as the kernel writes it, with the fields this module reads
    /// set and the others zero.
    fn stat_line(pid: u32, s: &StatLine) -> String {
        let mut f = vec!["0".to_string(); 52];
        // Index i holds field i + 1.
        f[0] = pid.to_string();
        f[1] = format!("({})", s.comm);
        f[2] = s.state.to_string();
        f[13] = s.utime_ticks.to_string();
        f[14] = s.stime_ticks.to_string();
        f[19] = s.num_threads.to_string();
        f[23] = s.rss_pages.to_string();
        f[38] = s.processor.to_string();
        f.join(" ") + "\n"
    }

    fn sl(
        comm: &str,
        state: char,
        ticks: (u64, u64),
        num_threads: u32,
        rss_pages: u64,
        processor: u32,
    ) -> StatLine {
        StatLine {
            comm: comm.to_string(),
            state,
            utime_ticks: ticks.0,
            stime_ticks: ticks.1,
            num_threads,
            rss_pages,
            processor,
        }
    }

    fn add_thread(root: &Path, pid: u32, t: &ThreadStat) {
        let dir = root
            .join(pid.to_string())
            .join("task")
            .join(t.tid.to_string());
        fs::create_dir_all(&dir).unwrap();
        let s = sl(
            &t.name,
            t.state,
            (t.utime_ticks, t.stime_ticks),
            1,
            10,
            t.last_cpu,
        );
        fs::write(dir.join("stat"), stat_line(t.tid, &s)).unwrap();
        let status = format!(
            "Name:\tx\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nvoluntary_ctxt_switches:\t{}\nnonvoluntary_ctxt_switches:\t{}\n",
            t.voluntary_ctxt, t.nonvoluntary_ctxt
        );
        fs::write(dir.join("status"), status).unwrap();
        fs::write(dir.join("comm"), format!("{}\n", t.name)).unwrap();
    }

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
    fn stat_line_with_spaces_and_parens_in_comm() {
        let line = stat_line(42, &sl("a) (b c) d", 'R', (7, 3), 5, 100, 2));
        let s = parse_stat_line(&line).unwrap();
        assert_eq!(s.comm, "a) (b c) d");
        assert_eq!(s.state, 'R');
        assert_eq!((s.utime_ticks, s.stime_ticks), (7, 3));
        assert_eq!(s.num_threads, 5);
        assert_eq!(s.rss_pages, 100);
        assert_eq!(s.processor, 2);
        assert!(parse_stat_line("garbage").is_none());
        assert!(parse_stat_line("1 (x) S 1 2").is_none());
    }

    #[test]
    fn proc_stat_from_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("77");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("stat"),
            stat_line(77, &sl("beam.smp", 'S', (1200, 300), 42, 2500, 1)),
        )
        .unwrap();
        let p = proc_stat(tmp.path(), 77).unwrap();
        assert_eq!(p.rss_bytes, 2500 * page_size());
        assert_eq!(p.threads, 42);
        assert_eq!((p.utime_ticks, p.stime_ticks), (1200, 300));
        assert_eq!(
            proc_stat(tmp.path(), 78).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        fs::write(dir.join("stat"), "77 (beam.smp S 1\n").unwrap();
        assert_eq!(
            proc_stat(tmp.path(), 77).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn host_stat_from_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("loadavg"), "0.52 1.25 2.00 3/456 7890\n").unwrap();
        fs::write(
            tmp.path().join("stat"),
            "cpu  100 10 50 1000 20 5 5 3 40 0\n\
             cpu0 50 5 25 500 10 2 3 1 20 0\n\
             cpu1 50 5 25 500 10 3 2 2 20 0\n\
             intr 12345 0 0\nctxt 999\nbtime 1700000000\nprocesses 42\n",
        )
        .unwrap();
        let h = host_stat(tmp.path()).unwrap();
        assert_eq!(h.load_avg, [0.52, 1.25, 2.00]);
        assert_eq!(h.cpus, 2);
        assert_eq!(h.cpu_busy_ticks, 100 + 10 + 50 + 5 + 5 + 3);
        assert_eq!(h.cpu_total_ticks, h.cpu_busy_ticks + 1000 + 20);
    }

    #[test]
    fn threads_from_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        add_thread(root, 10, &ts(12, "2_scheduler", 40, 4, 9, 1));
        add_thread(root, 10, &ts(10, "beam.smp", 5, 1, 3, 0));
        add_thread(
            root,
            10,
            &ThreadStat {
                last_cpu: 3,
                ..ts(11, "x) (y z", 1, 2, 3, 4)
            },
        );
        // A task directory without files: the thread exited while we listed.
        fs::create_dir_all(root.join("10/task/13")).unwrap();
        let t = threads(root, 10).unwrap();
        let tids: Vec<u32> = t.iter().map(|t| t.tid).collect();
        assert_eq!(tids, vec![10, 11, 12]);
        assert_eq!(t[1].name, "x) (y z");
        assert_eq!((t[1].utime_ticks, t[1].stime_ticks), (1, 2));
        assert_eq!((t[1].voluntary_ctxt, t[1].nonvoluntary_ctxt), (3, 4));
        assert_eq!(t[1].last_cpu, 3);
        assert_eq!(t[2].name, "2_scheduler");
        assert_eq!(t[2].state, 'S');
        assert!(threads(root, 99).is_err());
    }

    #[test]
    fn thread_name_falls_back_to_stat_comm() {
        let tmp = tempfile::tempdir().unwrap();
        add_thread(tmp.path(), 5, &ts(6, "1_aux", 0, 0, 0, 0));
        fs::remove_file(tmp.path().join("5/task/6/comm")).unwrap();
        assert_eq!(threads(tmp.path(), 5).unwrap()[0].name, "1_aux");
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

    #[test]
    fn live_current_process() {
        let proc_root = PathBuf::from("/proc");
        let me = std::process::id();
        let p = proc_stat(&proc_root, me).unwrap();
        assert!(p.rss_bytes > 0);
        assert!(p.threads >= 1);
        let t = threads(&proc_root, me).unwrap();
        assert!(t.iter().any(|t| t.tid == me));
        let h = host_stat(&proc_root).unwrap();
        assert!(h.cpus >= 1);
        assert!(h.cpu_total_ticks >= h.cpu_busy_ticks);
        assert!(clk_tck() > 0);
        assert!(page_size() >= 4096);
    }
}
