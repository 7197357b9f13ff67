//! What the agent answers, decoded into plain Rust values: the process
//! sample and its rows, and the header every reply carries.

use super::SortKey;
use crate::dist::term::{self, Term};
use std::time::Instant;

/// A process id as the target's own shell prints it: `<0.ID.SERIAL>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcId {
    pub id: u32,
    pub serial: u32,
}

impl std::fmt::Display for ProcId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<0.{}.{}>", self.id, self.serial)
    }
}

/// `Module:Function/Arity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mfa {
    pub module: String,
    pub function: String,
    pub arity: i64,
}

impl std::fmt::Display for Mfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.module, self.function, self.arity)
    }
}

fn to_mfa(t: &Term) -> Option<Mfa> {
    term::mfa(t).map(|(module, function, arity)| Mfa {
        module,
        function,
        arity,
    })
}

/// One process as the agent reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcRow {
    pub pid: ProcId,
    /// The value the rows were ranked by (a delta for reductions in delta mode).
    pub rank_value: i64,
    pub registered_name: Option<String>,
    pub initial_call: Option<Mfa>,
    pub current_function: Option<Mfa>,
    pub memory_bytes: u64,
    pub reductions: u64,
    pub msgq: u64,
    /// Total heap (young and old generations and the stack), in bytes.
    pub heap_bytes: Option<u64>,
    /// Off-heap binaries the process refers to, in bytes; read only when
    /// the table is sorted by them (it lists every binary the process holds).
    pub bin_bytes: Option<u64>,
    /// Reductions since the agent's kept baseline, when the agent had one for
    /// this process but ranked by something else (`--once`).
    pub reds_delta: Option<u64>,
}

/// Counts the VM caps, each as (count, limit): a node at its process or
/// atom limit stops working, so the header shows how close it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Limits {
    pub procs: (u64, u64),
    pub ports: (u64, u64),
    pub atoms: (u64, u64),
    pub ets: (u64, u64),
}

impl Limits {
    /// Each count with the name an operator calls it by.
    pub fn counts(&self) -> [(&'static str, u64, u64); 4] {
        [
            ("processes", self.procs.0, self.procs.1),
            ("ports", self.ports.0, self.ports.1),
            ("atoms", self.atoms.0, self.atoms.1),
            ("ets tables", self.ets.0, self.ets.1),
        ]
    }
}

fn decode_limits(t: &Term) -> Option<Limits> {
    let v: Vec<u64> = term::as_tuple(t)?
        .iter()
        .map(|x| term::as_i64(x).map(|n| n.max(0) as u64))
        .collect::<Option<_>>()?;
    let [a, b, c, d, e, f, g, h] = v[..] else {
        return None;
    };
    Some(Limits {
        procs: (a, b),
        ports: (c, d),
        atoms: (e, f),
        ets: (g, h),
    })
}

/// `erlang:memory/0`, the parts the header shows.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Memory {
    pub total: u64,
    pub processes: u64,
    pub atom: u64,
    pub binary: u64,
    pub code: u64,
    pub ets: u64,
}

/// Busy and total time of one scheduler, from `statistics(scheduler_wall_time)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedTime {
    pub id: u32,
    pub active: u64,
    pub total: u64,
}

/// The target's wall clock, as `erlang:localtime/0` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub date: (i64, i64, i64),
    pub time: (i64, i64, i64),
}

impl Clock {
    /// Seconds since 1970-01-01 00:00:00 on the node's local clock: a number
    /// to subtract from, not a UTC time.
    pub fn local_secs(&self) -> i64 {
        let (y, m, d) = self.date;
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let (h, mi, s) = self.time;
        days * 86_400 + h * 3600 + mi * 60 + s
    }
}

/// When the node started, in [`Clock::local_secs`]: its clock at a sample
/// less its uptime then (`mono_us` less `start_us`, both on the node's
/// monotonic clock).
pub fn node_started(
    clock: Option<Clock>,
    mono_us: Option<i64>,
    start_us: Option<i64>,
) -> Option<i64> {
    let up_us = mono_us?.checked_sub(start_us?)?;
    (up_us >= 0).then(|| clock.map(|c| c.local_secs() - up_us / 1_000_000))?
}

/// `HH:MM:SS` of a [`Clock::local_secs`] value.
pub fn time_of_day(local_secs: i64) -> String {
    let t = local_secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// Everything one frame needs, as received.
#[derive(Debug, Clone)]
pub struct Sample {
    pub taken_at: Instant,
    /// The node's monotonic clock when it started this sample, in µs: the
    /// exact window between two samples, whatever the network delay.
    pub node_mono_us: Option<i64>,
    pub node: String,
    pub clock: Option<Clock>,
    pub procs: u64,
    pub runq: u64,
    pub memory: Memory,
    pub sched: Vec<SchedTime>,
    /// Normal schedulers: ids 1..=schedulers in `sched`; the ids above are
    /// dirty CPU schedulers.
    pub schedulers: u32,
    /// Target wall time spent computing this sample, in microseconds.
    pub cost_us: u64,
    /// The frame worker's largest heap while computing this sample, and the
    /// ceiling it ran under, in bytes.
    pub heap_bytes: u64,
    pub heap_limit_bytes: u64,
    pub key: SortKey,
    /// True when `rank_value` of reductions rows is a delta over the window
    /// since the previous sample etop received; false for totals (a first
    /// frame, or the agent no longer held the previous frame's state).
    pub delta: bool,
    pub rows: Vec<ProcRow>,
    /// Counts against their limits.
    pub limits: Option<Limits>,
    /// Time since the node started, in milliseconds.
    pub uptime_ms: Option<u64>,
    /// All reductions the node has run (`statistics(reductions)`): the
    /// denominator of each process's share.
    pub reds_total: Option<u64>,
    /// Which connection produced it; samples of different connections (a
    /// restarted node) are never compared.
    pub epoch: u64,
    /// When the VM started, on the clock of `node_mono_us`.
    pub node_start_us: Option<i64>,
    /// The node runs Elixir (`'Elixir.Kernel'` is loaded).
    pub elixir: bool,
}

fn decode_row(t: &Term) -> Option<ProcRow> {
    let e = term::as_tuple(t)?;
    // Replies recorded before heap, binary and the kept baseline were added
    // have the first eight.
    let (head, rest) = e.split_at_checked(8)?;
    let [pid, v, reg, init, cur, mem, reds, q] = head else {
        return None;
    };
    let Term::Pid(pid) = pid else { return None };
    let registered_name = term::as_atom(reg).map(str::to_string);
    let opt = |i: usize| rest.get(i).and_then(term::as_i64).map(|v| v.max(0) as u64);
    Some(ProcRow {
        pid: ProcId {
            id: pid.id,
            serial: pid.serial,
        },
        rank_value: term::as_i64(v)?,
        registered_name,
        initial_call: to_mfa(init),
        current_function: to_mfa(cur),
        memory_bytes: term::as_i64(mem)?.max(0) as u64,
        reductions: term::as_i64(reds)?.max(0) as u64,
        msgq: term::as_i64(q)?.max(0) as u64,
        heap_bytes: opt(0),
        bin_bytes: opt(1),
        reds_delta: opt(2),
    })
}

fn decode_clock(t: &Term) -> Option<Clock> {
    let [d, tm] = term::as_tuple(t)? else {
        return None;
    };
    let three = |x: &Term| -> Option<(i64, i64, i64)> {
        let [a, b, c] = term::as_tuple(x)? else {
            return None;
        };
        Some((term::as_i64(a)?, term::as_i64(b)?, term::as_i64(c)?))
    };
    Some(Clock {
        date: three(d)?,
        time: three(tm)?,
    })
}

/// Decodes the agent's reply map.
pub fn decode_sample(info: &Term, key: SortKey, epoch: u64) -> Option<Sample> {
    let get = |k: &str| term::map_get(info, k);
    let num = |k: &str| get(k).and_then(term::as_i64).unwrap_or(0).max(0) as u64;
    let mut memory = Memory::default();
    for (k, v) in term::proplist_i64(get("memory")?) {
        let v = v.max(0) as u64;
        match k.as_str() {
            "total" => memory.total = v,
            "processes" => memory.processes = v,
            "atom" => memory.atom = v,
            "binary" => memory.binary = v,
            "code" => memory.code = v,
            "ets" => memory.ets = v,
            _ => {}
        }
    }
    let sched = get("swt")
        .and_then(term::list_elems)
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| {
            let [id, a, t] = term::as_tuple(s)? else {
                return None;
            };
            Some(SchedTime {
                id: term::as_i64(id)? as u32,
                active: term::as_i64(a)?.max(0) as u64,
                total: term::as_i64(t)?.max(0) as u64,
            })
        })
        .collect();
    let rows = get("rows")
        .and_then(term::list_elems)
        .unwrap_or(&[])
        .iter()
        .filter_map(decode_row)
        .collect();
    Some(Sample {
        taken_at: Instant::now(),
        node_mono_us: get("mono_us").and_then(term::as_i64),
        node: get("node")
            .and_then(term::as_atom)
            .unwrap_or_default()
            .to_string(),
        clock: get("time").and_then(decode_clock),
        procs: num("procs"),
        runq: num("runq"),
        memory,
        sched,
        schedulers: num("schedulers") as u32,
        cost_us: num("cost_us"),
        heap_bytes: num("heap_bytes"),
        heap_limit_bytes: num("heap_limit_bytes"),
        key,
        delta: get("delta").is_some_and(|t| term::is_atom(t, "true")),
        rows,
        limits: get("limits").and_then(decode_limits),
        uptime_ms: get("uptime_ms")
            .and_then(term::as_i64)
            .map(|v| v.max(0) as u64),
        reds_total: get("reds_total")
            .and_then(term::as_i64)
            .map(|v| v.max(0) as u64),
        epoch,
        node_start_us: get("start_us").and_then(term::as_i64),
        elixir: get("elixir").is_some_and(|t| term::is_atom(t, "true")),
    })
}

/// One raw agent reply (ports, ETS), with which connection it came from
/// and when.
pub struct Reply {
    pub info: Term,
    pub epoch: u64,
    pub taken_at: Instant,
}

impl Reply {
    /// The node's monotonic clock at the start of this sample, in µs.
    pub fn node_mono_us(&self) -> Option<i64> {
        term::map_get(&self.info, "mono_us").and_then(term::as_i64)
    }

    /// True when the counters are deltas since the previous reply; false for
    /// totals (a first frame, or the agent no longer held the previous
    /// frame's state).
    pub fn is_delta(&self) -> bool {
        term::map_get(&self.info, "delta").is_some_and(|t| term::is_atom(t, "true"))
    }
}

/// The window between two samples: by the node's clock when both carry it,
/// else by ours.
pub fn window(cur: (Instant, Option<i64>), prev: (Instant, Option<i64>)) -> std::time::Duration {
    match (cur.1, prev.1) {
        (Some(c), Some(p)) if c >= p => std::time::Duration::from_micros((c - p) as u64),
        _ => cur.0.saturating_duration_since(prev.0),
    }
}

/// The `rows` of an agent reply, decoded; malformed rows are skipped.
pub fn reply_rows<T>(info: &Term, decode: impl Fn(&Term) -> Option<T>) -> Vec<T> {
    term::map_get(info, "rows")
        .and_then(term::list_elems)
        .unwrap_or(&[])
        .iter()
        .filter_map(decode)
        .collect()
}

/// The header fields every agent reply carries.
#[derive(Debug, Clone, Default)]
pub struct ReplyHeader {
    pub node: String,
    pub clock: Option<Clock>,
    pub count: u64,
    pub cost_ms: f64,
    pub heap_bytes: u64,
    pub heap_limit_bytes: u64,
    /// The node's monotonic clock at the sample, and when the VM started on
    /// it, in µs.
    pub mono_us: Option<i64>,
    pub start_us: Option<i64>,
}

pub fn reply_header(info: &Term) -> ReplyHeader {
    let num = |k: &str| {
        term::map_get(info, k)
            .and_then(term::as_i64)
            .unwrap_or(0)
            .max(0) as u64
    };
    ReplyHeader {
        node: term::map_get(info, "node")
            .and_then(term::as_atom)
            .unwrap_or_default()
            .to_string(),
        clock: term::map_get(info, "time").and_then(decode_clock),
        count: num("count"),
        cost_ms: num("cost_us") as f64 / 1000.0,
        heap_bytes: num("heap_bytes"),
        heap_limit_bytes: num("heap_limit_bytes"),
        mono_us: term::map_get(info, "mono_us").and_then(term::as_i64),
        start_us: term::map_get(info, "start_us").and_then(term::as_i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::term::{atom, int, list, tuple};

    #[test]
    fn a_node_start_is_its_clock_less_its_uptime() {
        let c = Clock {
            date: (2026, 3, 1),
            time: (0, 0, 5),
        };
        assert_eq!(c.local_secs() % 86_400, 5);
        // 1970-01-01 is day 0; 2000-03-01 is day 11017.
        let epoch = Clock {
            date: (1970, 1, 1),
            time: (0, 0, 0),
        };
        assert_eq!(epoch.local_secs(), 0);
        let y2k = Clock {
            date: (2000, 3, 1),
            time: (1, 2, 3),
        };
        assert_eq!(y2k.local_secs(), 11_017 * 86_400 + 3723);
        // Up 10 s at 00:00:05: started 23:59:55 the day before.
        let started = node_started(Some(c), Some(20_000_000), Some(10_000_000)).unwrap();
        assert_eq!(time_of_day(started), "23:59:55");
        assert_eq!(started, c.local_secs() - 10);
        assert_eq!(node_started(Some(c), Some(1), Some(5)), None);
        assert_eq!(node_started(None, Some(5), Some(1)), None);
        assert_eq!(node_started(Some(c), None, Some(1)), None);
    }

    #[test]
    fn pids_print_as_the_target_shell_prints_them() {
        assert_eq!(ProcId { id: 123, serial: 0 }.to_string(), "<0.123.0>");
    }

    #[test]
    fn decodes_a_row_and_skips_malformed_ones() {
        let pid: Term = erl_dist::term::Pid::new("n@h", 85, 2, 1).into();
        let good = tuple(vec![
            pid,
            int(777),
            atom("hoard"),
            tuple(vec![atom("erlang"), atom("apply"), int(2)]),
            atom("undefined"),
            int(1000),
            int(50),
            int(777),
        ]);
        let r = decode_row(&good).unwrap();
        assert_eq!(r.pid.to_string(), "<0.85.2>");
        assert_eq!(r.registered_name.as_deref(), Some("hoard"));
        assert_eq!(r.initial_call.unwrap().to_string(), "erlang:apply/2");
        assert!(r.current_function.is_none());
        assert!(decode_row(&tuple(vec![int(1)])).is_none());
        // An unregistered process reports `[]` as its name.
        let anon = tuple(vec![
            erl_dist::term::Pid::new("n@h", 9, 0, 1).into(),
            int(0),
            list(vec![]),
            atom("undefined"),
            atom("undefined"),
            int(1),
            int(1),
            int(0),
        ]);
        assert!(decode_row(&anon).unwrap().registered_name.is_none());
    }
}
