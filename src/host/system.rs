//! Host-wide facts from sysinfo, on any OS: CPU count and use, load, memory,
//! uptime. Where procfs does not exist, the VM process's RSS too.

use std::io;

/// The host over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostStat {
    pub cpus: u32,
    /// CPU busy over the window since the previous sample, 0–100 (all
    /// CPUs); `None` on a first sample.
    pub cpu_pct: Option<f64>,
    pub load_avg: [f64; 3],
    pub mem_total_bytes: u64,
    pub uptime_secs: u64,
}

/// Samples the host; keeps what CPU use is computed against.
pub struct HostWatch {
    sys: Option<sysinfo::System>,
    primed: bool,
}

impl Default for HostWatch {
    fn default() -> Self {
        HostWatch::new()
    }
}

impl HostWatch {
    pub fn new() -> HostWatch {
        HostWatch {
            sys: sysinfo::System::new().ok(),
            primed: false,
        }
    }

    /// The host now; CPU use covers the time since the previous call.
    pub fn sample(&mut self) -> io::Result<HostStat> {
        let sys = self
            .sys
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no host figures here"))?;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let cpu_pct = self
            .primed
            .then(|| f64::from(sys.global_cpu_usage()).clamp(0.0, 100.0));
        self.primed = true;
        let load = sysinfo::System::load_average().ok();
        Ok(HostStat {
            cpus: u32::try_from(sys.cpus().len()).unwrap_or(1).max(1),
            cpu_pct,
            load_avg: load.map(|l| [l.one, l.five, l.fifteen]).unwrap_or([0.0; 3]),
            mem_total_bytes: sys.total_memory(),
            uptime_secs: sysinfo::System::uptime().unwrap_or(0),
        })
    }
}

/// RSS of process `pid` where procfs cannot tell (macOS, BSD).
#[cfg(not(target_os = "linux"))]
pub(super) fn proc_stat(pid: u32) -> io::Result<super::ProcStat> {
    use sysinfo::{Pid, ProcessesToUpdate, System};
    let mut sys = System::new().map_err(|e| io::Error::other(e.to_string()))?;
    let pid = Pid::from_u32(pid);
    sys.refresh_processes(ProcessesToUpdate::Some(&[pid]), true);
    let p = sys
        .process(pid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such process"))?;
    Ok(super::ProcStat {
        rss_bytes: p.memory(),
        threads: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_host_figures() {
        let mut w = HostWatch::new();
        let first = w.sample().unwrap();
        assert!(first.cpus >= 1);
        assert_eq!(first.cpu_pct, None, "no window on a first sample");
        assert!(first.mem_total_bytes > 0);
        assert!(first.load_avg.iter().all(|l| l.is_finite() && *l >= 0.0));
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let second = w.sample().unwrap();
        assert!(second.cpu_pct.is_some_and(|c| (0.0..=100.0).contains(&c)));
        assert!(second.uptime_secs >= first.uptime_secs);
    }
}
