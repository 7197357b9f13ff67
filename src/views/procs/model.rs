//! What a frame shows, derived from the current sample and, when there is
//! one, the previous sample of the same connection and the time between them.
//! No previous sample means no rates: the type says so (`Option`), and a
//! counter that went backwards yields "unknown", never an underflow.

use super::warning::Warning;
use crate::agent::SortKey;
use crate::agent::sample::{Clock, Limits, Memory, Mfa, ProcId, ProcRow, Sample, SchedTime};
use crate::host::{HostStat, ProcStat};
use std::collections::HashMap;
use std::time::Duration;

/// How module and process names are written: Erlang's `gen_server:loop/7`
/// or Elixir's `:gen_server.loop/7` and `Demo.Worker.handle_cast/2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NameStyle {
    /// Elixir style when the node runs Elixir, else Erlang style.
    Auto,
    Erlang,
    Elixir,
}

impl NameStyle {
    fn elixir(self, node_runs_elixir: bool) -> bool {
        match self {
            NameStyle::Auto => node_runs_elixir,
            NameStyle::Erlang => false,
            NameStyle::Elixir => true,
        }
    }
}

/// A module name as Elixir writes it: `Elixir.Foo.Bar` is `Foo.Bar`, an
/// Erlang module `lists` is `:lists`.
pub fn elixir_module(m: &str) -> String {
    match m.strip_prefix("Elixir.") {
        Some(rest) => rest.to_string(),
        None => format!(":{m}"),
    }
}

fn show_mfa(m: &Mfa, elixir: bool) -> String {
    if elixir {
        format!("{}.{}/{}", elixir_module(&m.module), m.function, m.arity)
    } else {
        m.to_string()
    }
}

fn show_registered(name: &str, elixir: bool) -> String {
    match (elixir, name.strip_prefix("Elixir.")) {
        (true, Some(rest)) => rest.to_string(),
        _ => name.to_string(),
    }
}

/// What the OS sees of a node on this host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OsHeader {
    /// The node's OS process (a new one after the node restarted).
    pub os_pid: u32,
    pub rss_bytes: u64,
    pub os_threads: u32,
    /// Host CPU busy over the window, 0–100 (all CPUs).
    pub host_cpu_pct: Option<f64>,
    pub load_avg: [f64; 3],
    pub cpus: u32,
}

/// One row of the process table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub pid: String,
    /// Registered name, else the initial call.
    pub name: String,
    pub registered_name: Option<String>,
    pub initial_call: Option<String>,
    /// Reductions in the window (or the total with `--accumulate`); `None`
    /// when the previous value is not known.
    pub reds: Option<u64>,
    /// `reds` as a share of all reductions the node ran in the same window
    /// (or since it started, with `--accumulate`): CPU share, 0–100.
    pub reds_pct: Option<f64>,
    /// What `reds` is: "window" (reductions in the window) or "total" (since
    /// the process started: `--accumulate`, and the first frame of a
    /// reductions sort, of a session or of a new connection).
    pub reds_kind: Option<&'static str>,
    pub memory_bytes: u64,
    /// Total heap, when the table is sorted by it.
    pub heap_bytes: Option<u64>,
    /// Off-heap binaries, when the table is sorted by them.
    pub bin_bytes: Option<u64>,
    pub msgq: u64,
    pub current_function: String,
    /// A warning names this process.
    pub warn: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Header {
    pub node: String,
    pub clock: Option<String>,
    /// Scheduler utilisation over the window, 0–100; `None` on a first frame.
    pub cpu_pct: Option<f64>,
    pub procs: u64,
    pub runq: u64,
    /// Processes, ports, atoms and ETS tables against their limits.
    pub limits: Option<Limits>,
    pub uptime_secs: Option<u64>,
    pub memory: Memory,
    pub sort: SortKey,
    pub accumulate: bool,
    /// Length of the window deltas cover, in seconds.
    pub window_secs: Option<f64>,
    /// Target time spent on this frame's sample, in milliseconds.
    pub cost_ms: f64,
    /// The agent's frame worker: its largest heap for this sample, and the
    /// ceiling it ran under, in bytes.
    pub agent_heap_bytes: u64,
    pub agent_heap_limit_bytes: u64,
    /// Present when the node runs on this host.
    pub os: Option<OsHeader>,
    /// Utilisation of each scheduler over the window (empty on a first frame).
    pub schedulers: Vec<SchedUse>,
    /// Show `schedulers` in the text header (`--schedulers`).
    #[serde(skip)]
    pub show_schedulers: bool,
    /// Which connection this frame came on: 1, then one more after each
    /// reconnection.
    pub epoch: u64,
    /// The first frame after a reconnection.
    pub reconnected: bool,
    /// What the header says on the first frames after a reconnection.
    #[serde(skip)]
    pub notice: Option<String>,
}

/// One scheduler's utilisation over the window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SchedUse {
    /// Its number among the schedulers of its kind, from 1: the number in
    /// its OS thread's name, as `etop threads` shows it.
    pub id: u32,
    /// "normal" or "dirty_cpu".
    pub kind: &'static str,
    /// Its OS thread's name: `1_scheduler`, `1_dirty_cpu_sch`.
    pub thread: String,
    pub pct: Option<f64>,
}

/// Every scheduler in a fixed order, normal ones first, each numbered
/// within its kind. The VM lists them in no particular order, and numbers
/// dirty CPU schedulers after the normal ones (3, 4 on a node with two
/// normal schedulers) where their threads are named `1_dirty_cpu_sch`...
fn per_scheduler(cur: &Sample, prev: &Sample) -> Vec<SchedUse> {
    let mut sched = cur.sched.clone();
    sched.sort_by_key(|s| s.id);
    sched
        .iter()
        .map(|s| {
            let normal = cur.schedulers == 0 || s.id <= cur.schedulers;
            let (id, kind, thread) = if normal {
                (s.id, "normal", format!("{}_scheduler", s.id))
            } else {
                let n = s.id - cur.schedulers;
                (n, "dirty_cpu", format!("{n}_dirty_cpu_sch"))
            };
            SchedUse {
                id,
                kind,
                thread,
                pct: cpu_utilisation(std::slice::from_ref(s), &prev.sched, |_| true),
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Model {
    pub header: Header,
    pub rows: Vec<Row>,
    pub warnings: Vec<Warning>,
}

/// Scheduler utilisation between two samples: the sum of active time over
/// the sum of total time of the schedulers in `ids`.
pub fn cpu_utilisation(
    cur: &[SchedTime],
    prev: &[SchedTime],
    ids: impl Fn(u32) -> bool,
) -> Option<f64> {
    let before: HashMap<u32, &SchedTime> = prev.iter().map(|s| (s.id, s)).collect();
    let (mut active, mut total) = (0u64, 0u64);
    for s in cur.iter().filter(|s| ids(s.id)) {
        let p = before.get(&s.id)?;
        active += s.active.checked_sub(p.active)?;
        total += s.total.checked_sub(p.total)?;
    }
    if total == 0 {
        return None;
    }
    Some((active as f64 / total as f64 * 100.0).clamp(0.0, 100.0))
}

fn name_of(r: &ProcRow, elixir: bool) -> String {
    match (&r.registered_name, &r.initial_call) {
        (Some(n), _) => show_registered(n, elixir),
        (None, Some(m)) => show_mfa(m, elixir),
        (None, None) => String::new(),
    }
}

/// What the OS says of a node on this host, read with the sample.
#[derive(Debug, Clone)]
pub struct OsSample {
    pub pid: u32,
    pub process: ProcStat,
    pub host: HostStat,
}

fn os_header(os: &OsSample) -> OsHeader {
    OsHeader {
        os_pid: os.pid,
        rss_bytes: os.process.rss_bytes,
        os_threads: os.process.threads,
        host_cpu_pct: os.host.cpu_pct,
        load_avg: os.host.load_avg,
        cpus: os.host.cpus,
    }
}

impl Model {
    /// `os`: what the OS says of the node, for a node on this host.
    pub fn new(
        cur: &Sample,
        prev: Option<(&Sample, Duration)>,
        os: Option<&OsSample>,
        accumulate: bool,
        names: NameStyle,
    ) -> Model {
        let elixir = names.elixir(cur.elixir);
        let prev = prev.filter(|(p, _)| p.epoch == cur.epoch);
        let prev_reds: HashMap<ProcId, u64> = prev
            .map(|(p, _)| p.rows.iter().map(|r| (r.pid, r.reductions)).collect())
            .unwrap_or_default();
        let ranked_by_delta = cur.key == SortKey::Reductions && cur.delta;
        // All reductions run on the node in the same window as `reds`.
        let node_reds = if accumulate {
            cur.reds_total
        } else {
            prev.and_then(|(p, _)| cur.reds_total?.checked_sub(p.reds_total?))
        };
        // A reductions frame the agent could not compute against a previous
        // one (the first of a session or of a connection) is ranked by totals,
        // and shows them as such.
        let totals = accumulate || (cur.key == SortKey::Reductions && !cur.delta);
        // Ties go to total reductions, then memory: busy processes before
        // idle ones. The node breaks ties on reductions where it ranks by
        // process_info; this settles the rest.
        let mut ranked: Vec<&ProcRow> = cur.rows.iter().collect();
        ranked.sort_by(|a, b| {
            (b.rank_value, b.reductions, b.memory_bytes).cmp(&(
                a.rank_value,
                a.reductions,
                a.memory_bytes,
            ))
        });
        let rows = ranked
            .into_iter()
            .map(|r| {
                let (reds, reds_kind) = if totals {
                    (Some(r.reductions), Some("total"))
                } else if ranked_by_delta {
                    // The agent computed it against its full previous scan;
                    // a process new since then shows what it did since it
                    // started, within the window.
                    (u64::try_from(r.rank_value).ok(), Some("window"))
                } else {
                    let reds = prev_reds
                        .get(&r.pid)
                        .and_then(|old| r.reductions.checked_sub(*old))
                        // The agent's own baseline, when it kept one.
                        .or(r.reds_delta);
                    (reds, reds.map(|_| "window"))
                };
                // A row shows the value it was ranked by: the agent reads the
                // other columns a moment later, and a mailbox can empty in
                // between.
                let rank = u64::try_from(r.rank_value).unwrap_or(0);
                Row {
                    pid: r.pid.to_string(),
                    name: name_of(r, elixir),
                    registered_name: r
                        .registered_name
                        .as_deref()
                        .map(|n| show_registered(n, elixir)),
                    initial_call: r.initial_call.as_ref().map(|m| show_mfa(m, elixir)),
                    reds,
                    reds_pct: match (reds, node_reds) {
                        (Some(r), Some(n)) if n > 0 => {
                            Some((r as f64 / n as f64 * 100.0).clamp(0.0, 100.0))
                        }
                        _ => None,
                    },
                    memory_bytes: if cur.key == SortKey::Memory {
                        rank
                    } else {
                        r.memory_bytes
                    },
                    heap_bytes: if cur.key == SortKey::Heap {
                        Some(rank)
                    } else {
                        r.heap_bytes
                    },
                    bin_bytes: if cur.key == SortKey::Binary {
                        Some(rank)
                    } else {
                        r.bin_bytes
                    },
                    msgq: if cur.key == SortKey::Msgq {
                        rank
                    } else {
                        r.msgq
                    },
                    warn: false,
                    reds_kind,
                    current_function: r
                        .current_function
                        .as_ref()
                        .map(|m| show_mfa(m, elixir))
                        .unwrap_or_default(),
                }
            })
            .collect();
        let header = Header {
            node: cur.node.clone(),
            clock: cur.clock.as_ref().map(Clock::to_string),
            // Normal schedulers only: idle dirty schedulers would halve the
            // figure on a node whose every scheduler is busy.
            cpu_pct: prev.and_then(|(p, _)| {
                cpu_utilisation(&cur.sched, &p.sched, |id| {
                    cur.schedulers == 0 || id <= cur.schedulers
                })
            }),
            schedulers: prev.map(|(p, _)| per_scheduler(cur, p)).unwrap_or_default(),
            show_schedulers: false,
            procs: cur.procs,
            runq: cur.runq,
            limits: cur.limits,
            uptime_secs: cur.uptime_ms.map(|ms| ms / 1000),
            memory: cur.memory.clone(),
            sort: cur.key,
            accumulate,
            window_secs: if accumulate {
                None
            } else {
                prev.map(|(_, d)| d.as_secs_f64())
            },
            cost_ms: cur.cost_us as f64 / 1000.0,
            agent_heap_bytes: cur.heap_bytes,
            agent_heap_limit_bytes: cur.heap_limit_bytes,
            os: os.map(os_header),
            epoch: cur.epoch,
            reconnected: false,
            notice: None,
        };
        Model {
            header,
            rows,
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn row(id: u32, rank: i64, reds: u64) -> ProcRow {
        ProcRow {
            pid: ProcId { id, serial: 0 },
            rank_value: rank,
            registered_name: None,
            initial_call: Some(Mfa {
                module: "m".into(),
                function: "f".into(),
                arity: 0,
            }),
            current_function: None,
            memory_bytes: 100,
            reductions: reds,
            msgq: 0,
            heap_bytes: None,
            bin_bytes: None,
            reds_delta: None,
        }
    }

    fn sample(key: SortKey, delta: bool, rows: Vec<ProcRow>, sched: Vec<SchedTime>) -> Sample {
        Sample {
            taken_at: Instant::now(),
            node_mono_us: None,
            node: "n@h".into(),
            clock: None,
            procs: 10,
            runq: 0,
            memory: Memory::default(),
            sched,
            schedulers: 0,
            cost_us: 1500,
            heap_bytes: 0,
            heap_limit_bytes: 0,
            key,
            delta,
            rows,
            limits: None,
            uptime_ms: None,
            reds_total: None,
            epoch: 1,
            node_start_us: None,
            elixir: false,
        }
    }

    fn mem(rows: Vec<ProcRow>, sched: Vec<SchedTime>) -> Sample {
        sample(SortKey::Memory, false, rows, sched)
    }

    /// The frame for `b` with `a` one second before it.
    fn after(a: &Sample, b: &Sample) -> Model {
        Model::new(
            b,
            Some((a, Duration::from_secs(1))),
            None,
            false,
            NameStyle::Auto,
        )
    }

    fn st(id: u32, active: u64, total: u64) -> SchedTime {
        SchedTime { id, active, total }
    }

    #[test]
    fn first_frame_has_no_cpu_and_no_window() {
        let s = mem(vec![row(1, 100, 50)], vec![st(1, 5, 10)]);
        let m = Model::new(&s, None, None, false, NameStyle::Auto);
        assert_eq!(m.header.cpu_pct, None);
        assert_eq!(m.header.window_secs, None);
        // No previous value known for this row: unknown, not its total.
        assert_eq!(m.rows[0].reds, None);
        assert_eq!(m.rows[0].name, "m:f/0");
    }

    #[test]
    fn deltas_for_rows_seen_before_and_unknown_for_new_ones() {
        let a = mem(vec![row(1, 0, 50)], vec![st(1, 0, 0)]);
        let b = mem(vec![row(1, 0, 80), row(2, 0, 30)], vec![st(1, 50, 100)]);
        let m = Model::new(
            &b,
            Some((&a, Duration::from_secs(2))),
            None,
            false,
            NameStyle::Auto,
        );
        assert_eq!(m.rows[0].reds, Some(30));
        assert_eq!(m.rows[1].reds, None);
        assert_eq!(m.header.cpu_pct, Some(50.0));
        assert_eq!(m.header.window_secs, Some(2.0));
    }

    #[test]
    fn counter_going_backwards_is_unknown_not_underflow() {
        let a = mem(vec![row(1, 0, 500)], vec![st(1, 90, 100)]);
        let b = mem(vec![row(1, 0, 10)], vec![st(1, 10, 200)]);
        let m = after(&a, &b);
        assert_eq!(m.rows[0].reds, None);
        assert_eq!(m.header.cpu_pct, None);
    }

    #[test]
    fn reductions_sort_uses_the_targets_delta_and_accumulate_the_total() {
        let b = sample(SortKey::Reductions, true, vec![row(1, 700, 9000)], vec![]);
        let m = Model::new(&b, None, None, false, NameStyle::Auto);
        assert_eq!(
            (m.rows[0].reds, m.rows[0].reds_kind),
            (Some(700), Some("window"))
        );
        let c = sample(SortKey::Reductions, false, vec![row(1, 9000, 9000)], vec![]);
        let m = Model::new(&c, None, None, true, NameStyle::Auto);
        assert_eq!(
            (m.rows[0].reds, m.rows[0].reds_kind),
            (Some(9000), Some("total"))
        );
        assert_eq!(m.header.window_secs, None);
    }

    #[test]
    fn every_row_says_whether_its_reductions_are_a_window_or_a_total() {
        // The first frame of a reductions sort (or of a new connection): the
        // agent ranked by totals, and the rows show them as totals.
        let first = sample(SortKey::Reductions, false, vec![row(1, 9000, 9000)], vec![]);
        let m = Model::new(&first, None, None, false, NameStyle::Auto);
        assert_eq!(
            (m.rows[0].reds, m.rows[0].reds_kind),
            (Some(9000), Some("total"))
        );
        // Other sorts: unknown until a row is seen twice, then a window.
        let a = mem(vec![row(1, 0, 50)], vec![]);
        let b = mem(vec![row(1, 0, 80), row(2, 0, 5)], vec![]);
        let m = Model::new(&a, None, None, false, NameStyle::Auto);
        assert_eq!((m.rows[0].reds, m.rows[0].reds_kind), (None, None));
        let m = after(&a, &b);
        assert_eq!(
            (m.rows[0].reds, m.rows[0].reds_kind),
            (Some(30), Some("window"))
        );
        assert_eq!((m.rows[1].reds, m.rows[1].reds_kind), (None, None));
    }

    #[test]
    fn samples_of_another_connection_are_not_compared() {
        let a = mem(vec![row(1, 0, 50)], vec![st(1, 0, 0)]);
        let mut b = mem(vec![row(1, 0, 80)], vec![st(1, 5, 10)]);
        b.epoch = 2;
        let m = after(&a, &b);
        assert_eq!(m.rows[0].reds, None);
        assert_eq!(m.header.cpu_pct, None);
    }

    #[test]
    fn elixir_names_when_the_node_runs_elixir() {
        let mut r = row(1, 0, 0);
        r.registered_name = Some("Elixir.Demo.Metrics.Worker".into());
        r.current_function = Some(Mfa {
            module: "Elixir.Demo.Metrics.Worker".into(),
            function: "handle_cast".into(),
            arity: 2,
        });
        let mut s = mem(vec![r], vec![]);
        s.elixir = true;
        let m = Model::new(&s, None, None, false, NameStyle::Auto);
        assert_eq!(m.rows[0].name, "Demo.Metrics.Worker");
        assert_eq!(
            m.rows[0].current_function,
            "Demo.Metrics.Worker.handle_cast/2"
        );
        assert_eq!(m.rows[0].initial_call.as_deref(), Some(":m.f/0"));
        assert_eq!(m.rows[0].pid, "<0.1.0>");
        let m = Model::new(&s, None, None, false, NameStyle::Erlang);
        assert_eq!(m.rows[0].name, "Elixir.Demo.Metrics.Worker");
        s.elixir = false;
        let m = Model::new(&s, None, None, false, NameStyle::Auto);
        assert_eq!(
            m.rows[0].current_function,
            "Elixir.Demo.Metrics.Worker:handle_cast/2"
        );
    }

    #[test]
    fn ties_go_to_total_reductions_then_memory() {
        let mut a = row(1, 0, 10);
        a.memory_bytes = 900;
        let b = row(2, 0, 500);
        let mut c = row(3, 0, 10);
        c.memory_bytes = 5000;
        let top = row(4, 7, 0);
        let s = sample(SortKey::Msgq, false, vec![a, b, c, top], vec![]);
        let m = Model::new(&s, None, None, false, NameStyle::Auto);
        let order: Vec<&str> = m.rows.iter().map(|r| r.pid.as_str()).collect();
        assert_eq!(order, ["<0.4.0>", "<0.2.0>", "<0.3.0>", "<0.1.0>"]);
    }

    #[test]
    fn a_row_shows_the_value_it_was_ranked_by() {
        let mut r = row(1, 191, 0);
        r.msgq = 0;
        let s = sample(SortKey::Msgq, false, vec![r], vec![]);
        let m = Model::new(&s, None, None, false, NameStyle::Auto);
        assert_eq!(m.rows[0].msgq, 191);
        assert_eq!(m.rows[0].memory_bytes, 100);
        let s = sample(SortKey::Memory, false, vec![row(1, 4096, 0)], vec![]);
        let m = Model::new(&s, None, None, false, NameStyle::Auto);
        assert_eq!(m.rows[0].memory_bytes, 4096);
    }

    #[test]
    fn reds_pct_is_the_share_of_the_nodes_reductions_in_the_window() {
        let mut a = sample(SortKey::Reductions, false, vec![row(1, 0, 0)], vec![]);
        a.reds_total = Some(1_000);
        let mut b = sample(SortKey::Reductions, true, vec![row(1, 250, 250)], vec![]);
        b.reds_total = Some(2_000);
        let m = after(&a, &b);
        assert_eq!(m.rows[0].reds, Some(250));
        assert_eq!(m.rows[0].reds_pct, Some(25.0));
        // No window yet: no share.
        let m = Model::new(&b, None, None, false, NameStyle::Auto);
        assert_eq!(m.rows[0].reds_pct, None);
        // Totals: the share of everything the node ran since it started.
        let m = Model::new(&b, None, None, true, NameStyle::Auto);
        assert_eq!(m.rows[0].reds_pct, Some(12.5));
    }

    #[test]
    fn schedulers_in_a_fixed_order_numbered_as_their_threads() {
        // Two normal schedulers, two dirty CPU ones, listed as the VM does:
        // in no particular order.
        let mut a = mem(
            vec![],
            vec![st(3, 0, 0), st(2, 0, 0), st(4, 0, 0), st(1, 0, 0)],
        );
        a.schedulers = 2;
        let mut b = mem(
            vec![],
            vec![
                st(2, 10, 100),
                st(4, 0, 100),
                st(1, 90, 100),
                st(3, 50, 100),
            ],
        );
        b.schedulers = 2;
        let m = after(&a, &b);
        let got: Vec<(u32, &str, &str, Option<f64>)> = m
            .header
            .schedulers
            .iter()
            .map(|s| (s.id, s.kind, s.thread.as_str(), s.pct))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "normal", "1_scheduler", Some(90.0)),
                (2, "normal", "2_scheduler", Some(10.0)),
                (1, "dirty_cpu", "1_dirty_cpu_sch", Some(50.0)),
                (2, "dirty_cpu", "2_dirty_cpu_sch", Some(0.0)),
            ]
        );
    }

    #[test]
    fn utilisation_counts_every_scheduler() {
        let prev = [st(1, 0, 0), st(2, 0, 0)];
        let cur = [st(1, 100, 100), st(2, 0, 100)];
        assert_eq!(cpu_utilisation(&cur, &prev, |_| true), Some(50.0));
        assert_eq!(cpu_utilisation(&cur, &prev, |id| id == 1), Some(100.0));
        assert_eq!(cpu_utilisation(&cur, &[st(1, 0, 0)], |_| true), None);
    }
}
