//! Turns a connection into `Sample`s: one agent request per frame, decoded
//! into plain Rust values. Owns the connection and its agent, and rebuilds
//! both after the node restarts.

use crate::dist::{ConnectOpts, Connection};
use crate::error::{Error, Result};
use crate::eterm::{self, Term};
use crate::remote::{Agent, SortKey};
use std::time::{Duration, Instant};

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
    eterm::mfa(t).map(|(module, function, arity)| Mfa {
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
}

/// `erlang:memory/0`, the parts the header shows.
#[derive(Debug, Clone, Default, PartialEq)]
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

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// What the OS says of a node on this host, read with the sample.
#[derive(Debug, Clone)]
pub struct OsSample {
    pub process: crate::osview::ProcStat,
    pub host: crate::osview::HostStat,
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
    /// Which connection produced it; samples of different connections (a
    /// restarted node) are never compared.
    pub epoch: u64,
    /// The node runs Elixir (`'Elixir.Kernel'` is loaded).
    pub elixir: bool,
    /// Filled in by the feed for a node on this host.
    pub os: Option<OsSample>,
}

fn decode_row(t: &Term) -> Option<ProcRow> {
    let e = eterm::as_tuple(t)?;
    let [pid, v, reg, init, cur, mem, reds, q] = e else {
        return None;
    };
    let Term::Pid(pid) = pid else { return None };
    let registered_name = eterm::as_atom(reg).map(str::to_string);
    Some(ProcRow {
        pid: ProcId {
            id: pid.id,
            serial: pid.serial,
        },
        rank_value: eterm::as_i64(v)?,
        registered_name,
        initial_call: to_mfa(init),
        current_function: to_mfa(cur),
        memory_bytes: eterm::as_i64(mem)?.max(0) as u64,
        reductions: eterm::as_i64(reds)?.max(0) as u64,
        msgq: eterm::as_i64(q)?.max(0) as u64,
    })
}

fn decode_clock(t: &Term) -> Option<Clock> {
    let [d, tm] = eterm::as_tuple(t)? else {
        return None;
    };
    let three = |x: &Term| -> Option<(i64, i64, i64)> {
        let [a, b, c] = eterm::as_tuple(x)? else {
            return None;
        };
        Some((eterm::as_i64(a)?, eterm::as_i64(b)?, eterm::as_i64(c)?))
    };
    Some(Clock {
        date: three(d)?,
        time: three(tm)?,
    })
}

/// Decodes the agent's reply map.
pub fn decode_sample(info: &Term, key: SortKey, epoch: u64) -> Option<Sample> {
    let get = |k: &str| eterm::map_get(info, k);
    let num = |k: &str| get(k).and_then(eterm::as_i64).unwrap_or(0).max(0) as u64;
    let mut memory = Memory::default();
    for (k, v) in eterm::proplist_i64(get("memory")?) {
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
        .and_then(eterm::list_elems)
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| {
            let [id, a, t] = eterm::as_tuple(s)? else {
                return None;
            };
            Some(SchedTime {
                id: eterm::as_i64(id)? as u32,
                active: eterm::as_i64(a)?.max(0) as u64,
                total: eterm::as_i64(t)?.max(0) as u64,
            })
        })
        .collect();
    let rows = get("rows")
        .and_then(eterm::list_elems)
        .unwrap_or(&[])
        .iter()
        .filter_map(decode_row)
        .collect();
    Some(Sample {
        taken_at: Instant::now(),
        node_mono_us: get("mono_us").and_then(eterm::as_i64),
        node: get("node")
            .and_then(eterm::as_atom)
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
        delta: get("delta").is_some_and(|t| eterm::is_atom(t, "true")),
        rows,
        epoch,
        elixir: get("elixir").is_some_and(|t| eterm::is_atom(t, "true")),
        os: None,
    })
}

/// The views whose frames the agent computes against state it keeps from
/// the previous frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Procs,
    Ports,
    Ets,
}

/// A connection plus its agent, and what is needed to rebuild them.
pub struct Collector {
    opts: ConnectOpts,
    heap_limit_bytes: u64,
    live: Option<(Connection, Agent)>,
    epoch: u64,
    /// Per view, the `frame` number of the last reply received on this
    /// connection: the state the next frame's deltas must be computed from.
    bases: std::collections::HashMap<View, i64>,
}

impl Collector {
    /// Connects and starts the agent; errors here are reported as they are
    /// (wrong cookie, unknown node...), since nothing has been shown yet.
    pub fn connect(opts: ConnectOpts, heap_limit_bytes: u64) -> Result<Collector> {
        let mut c = Collector {
            opts,
            heap_limit_bytes,
            live: None,
            epoch: 0,
            bases: Default::default(),
        };
        c.ensure()?;
        Ok(c)
    }

    fn ensure(&mut self) -> Result<&mut (Connection, Agent)> {
        if self.live.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.live = None;
        }
        if self.live.is_none() {
            let mut conn = Connection::connect(&self.opts)?;
            let agent = Agent::start(&mut conn, self.heap_limit_bytes)?;
            self.epoch += 1;
            self.bases.clear();
            self.live = Some((conn, agent));
        }
        self.live
            .as_mut()
            .ok_or_else(|| Error::Usage("internal: no connection".into()))
    }

    pub fn peer(&self) -> String {
        match &self.live {
            Some((c, _)) => c.peer.clone(),
            None => self.opts.target.to_string(),
        }
    }

    /// Our node name on the current connection.
    pub fn ours(&self) -> String {
        self.live
            .as_ref()
            .map(|(c, _)| c.ours.clone())
            .unwrap_or_default()
    }

    /// Bytes received and sent on the current connection.
    pub fn traffic(&self) -> (u64, u64) {
        self.live
            .as_ref()
            .map(|(c, _)| c.traffic())
            .unwrap_or((0, 0))
    }

    /// Messages the current connection dropped (see `dist::Dropped`).
    pub fn dropped(&self) -> crate::dist::Dropped {
        self.live
            .as_ref()
            .map(|(c, _)| c.dropped())
            .unwrap_or_default()
    }

    /// One sample. A lost connection is dropped so that the next call
    /// reconnects (a restarted node gets a fresh agent and a new epoch).
    pub fn sample(
        &mut self,
        key: SortKey,
        lines: usize,
        delta: bool,
        timeout: Duration,
    ) -> Result<Sample> {
        let (info, epoch) = self.frame(
            View::Procs,
            |base| crate::remote::sample_request(key, lines, delta, base),
            timeout,
            "a sample",
        )?;
        decode_sample(&info, key, epoch).ok_or_else(|| Error::Remote {
            node: self.peer(),
            what: "a sample".into(),
            detail: "unexpected reply shape".into(),
        })
    }

    /// One frame of `view`: the request names the frame whose state it is
    /// computed against, and only a reply that arrived moves that on, so a
    /// reply etop gave up waiting for never becomes the base of a window.
    pub fn frame(
        &mut self,
        view: View,
        make: impl FnOnce(i64) -> Term,
        timeout: Duration,
        what: &str,
    ) -> Result<(Term, u64)> {
        // Connect first: a reconnection clears the bases.
        self.ensure()?;
        let base = self.bases.get(&view).copied().unwrap_or(0);
        let (info, epoch) = self.request(make(base), timeout, what)?;
        if let Some(frame) = eterm::map_get(&info, "frame").and_then(eterm::as_i64) {
            self.bases.insert(view, frame);
        }
        Ok((info, epoch))
    }

    /// Sends any agent request (ports, ets, msacc); returns `Info` of
    /// `{ok, Info}` and the connection's epoch.
    pub fn request(&mut self, req: Term, timeout: Duration, what: &str) -> Result<(Term, u64)> {
        let (conn, agent) = self.ensure()?;
        match agent.call(conn, req, timeout, what) {
            Ok(info) => Ok((info, self.epoch)),
            Err(e) => {
                if matches!(e, Error::ConnectionLost { .. }) {
                    self.live = None;
                }
                Err(e)
            }
        }
    }

    /// True when there is no live connection (it closed or was dropped).
    pub fn is_closed(&self) -> bool {
        self.live.as_ref().is_none_or(|(c, _)| c.is_closed())
    }

    /// Stops the agent and closes the connection.
    pub fn close(&mut self) {
        if let Some((mut conn, agent)) = self.live.take() {
            agent.stop(&mut conn);
        }
    }
}

/// A feed for the views whose whole sample is one agent request (ports,
/// ETS): the reply, which connection it came from, and when.
pub struct RequestFeed {
    pub collector: Collector,
    pub view: View,
    /// Builds the request from the base frame number.
    pub request: Box<dyn Fn(i64) -> Term + Send>,
    pub timeout: Duration,
    pub what: &'static str,
}

/// One raw reply of a `RequestFeed`.
pub struct Reply {
    pub info: Term,
    pub epoch: u64,
    pub taken_at: Instant,
}

impl Reply {
    /// The node's monotonic clock at the start of this sample, in µs.
    pub fn node_mono_us(&self) -> Option<i64> {
        eterm::map_get(&self.info, "mono_us").and_then(eterm::as_i64)
    }

    /// True when the counters are deltas since the previous reply; false for
    /// totals (a first frame, or the agent no longer held the previous
    /// frame's state).
    pub fn is_delta(&self) -> bool {
        eterm::map_get(&self.info, "delta").is_some_and(|t| eterm::is_atom(t, "true"))
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

impl crate::session::Feed for RequestFeed {
    type Sample = Reply;
    fn sample(&mut self) -> Result<Reply> {
        let (info, epoch) =
            self.collector
                .frame(self.view, &self.request, self.timeout, self.what)?;
        Ok(Reply {
            info,
            epoch,
            taken_at: Instant::now(),
        })
    }
    fn close(&mut self) {
        self.collector.close();
    }
    fn stats(&self, r: &Result<Reply>) -> Option<serde_json::Value> {
        let (rx, tx) = self.collector.traffic();
        Some(serde_json::json!({
            "node_cost_us": r.as_ref().ok().and_then(|r| eterm::map_get(&r.info, "cost_us")).and_then(eterm::as_i64),
            "heap_bytes": r.as_ref().ok().and_then(|r| eterm::map_get(&r.info, "heap_bytes")).and_then(eterm::as_i64),
            "rx_bytes": rx,
            "tx_bytes": tx,
            "dropped": self.collector.dropped(),
            "ok": r.is_ok(),
        }))
    }
}

/// The window between consecutive replies of one connection: a reply from
/// a new connection (a restarted node) starts over, since the agent's
/// counters started over too.
#[derive(Debug, Default)]
pub struct ReplyClock {
    prev: Option<(u64, Instant, Option<i64>)>,
}

impl ReplyClock {
    /// Seconds since the previous reply; `None` when the reply holds totals
    /// (a first one, or one computed without the previous frame's state).
    pub fn window(&mut self, r: &Reply) -> Option<f64> {
        let now = (r.taken_at, r.node_mono_us());
        let w = self
            .prev
            .filter(|(epoch, _, _)| *epoch == r.epoch && r.is_delta())
            .map(|(_, at, mono)| window(now, (at, mono)).as_secs_f64());
        self.prev = Some((r.epoch, now.0, now.1));
        w
    }
}

/// The `rows` of an agent reply, decoded; malformed rows are skipped.
pub fn reply_rows<T>(info: &Term, decode: impl Fn(&Term) -> Option<T>) -> Vec<T> {
    eterm::map_get(info, "rows")
        .and_then(eterm::list_elems)
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
}

pub fn reply_header(info: &Term) -> ReplyHeader {
    let num = |k: &str| {
        eterm::map_get(info, k)
            .and_then(eterm::as_i64)
            .unwrap_or(0)
            .max(0) as u64
    };
    ReplyHeader {
        node: eterm::map_get(info, "node")
            .and_then(eterm::as_atom)
            .unwrap_or_default()
            .to_string(),
        clock: eterm::map_get(info, "time").and_then(decode_clock),
        count: num("count"),
        cost_ms: num("cost_us") as f64 / 1000.0,
        heap_bytes: num("heap_bytes"),
        heap_limit_bytes: num("heap_limit_bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eterm::{atom, int, list, tuple};

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
