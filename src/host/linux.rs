//! The VM process and its threads, read with procfs under a proc root.

use super::{ProcStat, ThreadStat};
use procfs::process::Process;
use std::io;
use std::path::Path;

/// procfs errors as I/O errors, keeping "not found" and "permission denied"
/// apart from "the file says something unexpected".
pub(crate) fn io_error(e: procfs::ProcError) -> io::Error {
    match e {
        procfs::ProcError::NotFound(p) => io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is gone",
                p.map(|p| p.display().to_string()).unwrap_or_default()
            ),
        ),
        procfs::ProcError::PermissionDenied(p) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "permission denied reading {}",
                p.map(|p| p.display().to_string()).unwrap_or_default()
            ),
        ),
        procfs::ProcError::Io(e, _) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// The process `pid` under `proc_root`.
pub(crate) fn process(proc_root: &Path, pid: u32) -> io::Result<Process> {
    Process::new_with_root(proc_root.join(pid.to_string())).map_err(io_error)
}

pub(super) fn proc_stat(proc_root: &Path, pid: u32) -> io::Result<ProcStat> {
    let stat = process(proc_root, pid)?.stat().map_err(io_error)?;
    Ok(ProcStat {
        rss_bytes: stat.rss.saturating_mul(procfs::page_size()),
        threads: u32::try_from(stat.num_threads).unwrap_or(0),
    })
}

pub(super) fn threads(proc_root: &Path, pid: u32) -> io::Result<Vec<ThreadStat>> {
    let mut out = Vec::new();
    for task in process(proc_root, pid)?.tasks().map_err(io_error)? {
        // A thread that exits while we list is left out.
        let Ok(task) = task else { continue };
        let Ok(stat) = task.stat() else { continue };
        // The switch counts are a bonus: a thread whose status cannot be
        // parsed still shows its CPU.
        let (voluntary_ctxt, nonvoluntary_ctxt) = task
            .status()
            .map(|s| {
                (
                    s.voluntary_ctxt_switches.unwrap_or(0),
                    s.nonvoluntary_ctxt_switches.unwrap_or(0),
                )
            })
            .unwrap_or((0, 0));
        out.push(ThreadStat {
            tid: u32::try_from(task.tid).unwrap_or(0),
            name: stat.comm,
            state: stat.state,
            utime_ticks: stat.utime,
            stime_ticks: stat.stime,
            voluntary_ctxt,
            nonvoluntary_ctxt,
            last_cpu: stat
                .processor
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
        });
    }
    out.sort_by_key(|t| t.tid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fake::{self, ProcFixture};
    use super::*;

    #[test]
    fn proc_stat_from_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        ProcFixture::new(77, "beam.smp")
            .ticks(1200, 300)
            .threads(42)
            .rss_pages(2500)
            .write(tmp.path());
        let p = proc_stat(tmp.path(), 77).unwrap();
        assert_eq!(p.rss_bytes, 2500 * procfs::page_size());
        assert_eq!(p.threads, 42);
        assert_eq!(
            proc_stat(tmp.path(), 78).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::write(tmp.path().join("77/stat"), "77 (beam.smp S 1\n").unwrap();
        assert!(proc_stat(tmp.path(), 77).is_err());
    }

    #[test]
    fn threads_from_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        ProcFixture::new(10, "beam.smp").write(root);
        fake::thread(root, 10, 12, "2_scheduler", (40, 4), (9, 1), 0);
        fake::thread(root, 10, 10, "beam.smp", (5, 1), (3, 0), 0);
        fake::thread(root, 10, 11, "x) (y z", (1, 2), (3, 4), 3);
        // A task directory without files: the thread exited while we listed.
        std::fs::create_dir_all(root.join("10/task/13")).unwrap();
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
    fn a_thread_without_status_still_shows_its_cpu() {
        let tmp = tempfile::tempdir().unwrap();
        ProcFixture::new(5, "beam.smp").write(tmp.path());
        fake::thread(tmp.path(), 5, 6, "1_aux", (7, 1), (2, 2), 0);
        std::fs::remove_file(tmp.path().join("5/task/6/status")).unwrap();
        let t = threads(tmp.path(), 5).unwrap();
        assert_eq!((t[0].name.as_str(), t[0].utime_ticks), ("1_aux", 7));
        assert_eq!(t[0].voluntary_ctxt, 0);
    }

    #[test]
    fn live_current_process() {
        let proc_root = Path::new("/proc");
        let me = std::process::id();
        let p = proc_stat(proc_root, me).unwrap();
        assert!(p.rss_bytes > 0);
        assert!(p.threads >= 1);
        let t = threads(proc_root, me).unwrap();
        assert!(t.iter().any(|t| t.tid == me));
        assert!(crate::host::ticks_per_second() > 0);
    }
}
