//! Fake proc trees for tests: `stat` and `status` files complete enough for
//! procfs to parse, with the fields etop reads set and the rest plausible.

use std::fs;
use std::path::Path;

/// One process (or thread) directory.
#[derive(Debug, Clone)]
pub struct ProcFixture {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub ticks: (u64, u64),
    pub threads: u32,
    pub rss_pages: u64,
    pub processor: u32,
    pub uid: u32,
    pub ctxt: (u64, u64),
}

impl ProcFixture {
    pub fn new(pid: u32, comm: &str) -> ProcFixture {
        ProcFixture {
            pid,
            comm: comm.to_string(),
            state: 'S',
            ticks: (0, 0),
            threads: 1,
            rss_pages: 10,
            processor: 0,
            uid: 0,
            ctxt: (0, 0),
        }
    }

    pub fn ticks(mut self, user: u64, sys: u64) -> Self {
        self.ticks = (user, sys);
        self
    }

    pub fn threads(mut self, n: u32) -> Self {
        self.threads = n;
        self
    }

    pub fn rss_pages(mut self, n: u64) -> Self {
        self.rss_pages = n;
        self
    }

    pub fn state(mut self, s: char) -> Self {
        self.state = s;
        self
    }

    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = uid;
        self
    }

    /// A `stat` line as the kernel writes it (52 fields).
    pub fn stat_line(&self) -> String {
        let mut f = vec!["0".to_string(); 52];
        // Index i holds field i + 1.
        f[0] = self.pid.to_string();
        f[1] = format!("({})", self.comm);
        f[2] = self.state.to_string();
        f[13] = self.ticks.0.to_string();
        f[14] = self.ticks.1.to_string();
        f[19] = self.threads.to_string();
        f[23] = self.rss_pages.to_string();
        f[38] = self.processor.to_string();
        f.join(" ") + "\n"
    }

    /// A `status` file with every field procfs requires.
    pub fn status_text(&self) -> String {
        let name: String = self.comm.chars().filter(|c| *c != '\n').collect();
        format!(
            "Name:\t{name}\nUmask:\t0022\nState:\t{} (sleeping)\nTgid:\t{pid}\nNgid:\t0\n\
             Pid:\t{pid}\nPPid:\t1\nTracerPid:\t0\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{u}\t{u}\t{u}\t{u}\n\
             FDSize:\t64\nGroups:\t\nThreads:\t{}\nSigQ:\t0/63459\nSigPnd:\t0000000000000000\n\
             ShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n\
             SigCgt:\t0000000000000000\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
             CapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n\
             NoNewPrivs:\t0\nSeccomp:\t0\nvoluntary_ctxt_switches:\t{}\n\
             nonvoluntary_ctxt_switches:\t{}\n",
            self.state,
            self.threads,
            self.ctxt.0,
            self.ctxt.1,
            pid = self.pid,
            u = self.uid,
        )
    }

    /// Writes `<root>/<pid>/stat` and `status`; returns the directory.
    pub fn write(&self, root: &Path) -> std::path::PathBuf {
        let dir = root.join(self.pid.to_string());
        self.write_in(&dir);
        dir
    }

    fn write_in(&self, dir: &Path) {
        fs::create_dir_all(dir).expect("fake proc dir");
        fs::write(dir.join("stat"), self.stat_line()).expect("fake stat");
        fs::write(dir.join("status"), self.status_text()).expect("fake status");
    }
}

/// Adds thread `tid` to process `pid`: `task/<tid>/stat`, `status`, `comm`.
pub fn thread(
    root: &Path,
    pid: u32,
    tid: u32,
    name: &str,
    ticks: (u64, u64),
    ctxt: (u64, u64),
    processor: u32,
) {
    let t = ProcFixture {
        ticks,
        ctxt,
        processor,
        ..ProcFixture::new(tid, name)
    };
    let dir = root
        .join(pid.to_string())
        .join("task")
        .join(tid.to_string());
    t.write_in(&dir);
    fs::write(dir.join("comm"), format!("{name}\n")).expect("fake comm");
}
