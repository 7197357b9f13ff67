//! `etop msacc`: microstate accounting over a window. A guard process on the
//! node, linked to our connection and trapping its exit, turns the flag on
//! (remembering its previous value) and resets the counters; it restores the
//! previous value if our connection drops before we collect; collecting
//! restores it too. A connection lost during the window is reported as lost,
//! never silently replaced by a new one that knows nothing of the window.

use super::column::{Align, Cell, Grid, Show, Spec};
use super::{Feed, Frame, Shaper};
use crate::agent::collector::Collector;
use crate::dist::term::{self, Term, atom};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One thread's time per state, in the VM's perf-counter units.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadTimes {
    pub kind: String,
    pub id: i64,
    pub counters: BTreeMap<String, u64>,
}

impl ThreadTimes {
    fn total(&self) -> u64 {
        self.counters.values().sum()
    }
}

/// Decodes `erlang:statistics(microstate_accounting)`: a list of
/// `#{type => T, id => I, counters => #{State => N}}`. Only the states this
/// VM build accounts are present; others are left out, never shown as zero.
pub fn decode(threads: &Term) -> Vec<ThreadTimes> {
    term::list_elems(threads)
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| {
            let kind = term::map_get(t, "type").and_then(term::as_atom)?;
            let id = term::map_get(t, "id").and_then(term::as_i64)?;
            let counters = match term::map_get(t, "counters")? {
                Term::Map(m) => m
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            term::as_atom(k)?.to_string(),
                            term::as_i64(v)?.max(0) as u64,
                        ))
                    })
                    .collect(),
                _ => return None,
            };
            Some(ThreadTimes {
                kind: kind.to_string(),
                id,
                counters,
            })
        })
        .collect()
}

/// Percentages of real time per state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Shares {
    pub threads: usize,
    pub pct: BTreeMap<String, f64>,
}

fn shares<'a>(threads: impl Iterator<Item = &'a ThreadTimes>) -> Shares {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    let mut n = 0;
    for t in threads {
        n += 1;
        total += t.total();
        for (k, v) in &t.counters {
            *sums.entry(k.clone()).or_default() += v;
        }
    }
    let pct = sums
        .into_iter()
        .map(|(k, v)| {
            let p = if total == 0 {
                0.0
            } else {
                v as f64 / total as f64 * 100.0
            };
            (k, p)
        })
        .collect();
    Shares { threads: n, pct }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadShare {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: i64,
    pub pct: BTreeMap<String, f64>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub node: String,
    pub duration_secs: f64,
    /// The states this VM accounts, in the order columns are printed.
    pub states: Vec<String>,
    /// Per thread type (scheduler, dirty_cpu_scheduler, aux, poll...).
    pub types: BTreeMap<String, Shares>,
    /// All threads together, per state.
    pub all: Shares,
    pub threads: Vec<ThreadShare>,
    /// The flag's value before we turned it on, and after we are done.
    pub flag_restored_to: bool,
}

pub fn report(node: String, duration: Duration, threads: &[ThreadTimes], restored: bool) -> Report {
    let states: BTreeSet<String> = threads
        .iter()
        .flat_map(|t| t.counters.keys().cloned())
        .collect();
    let kinds: BTreeSet<&str> = threads.iter().map(|t| t.kind.as_str()).collect();
    let types = kinds
        .into_iter()
        .map(|k| {
            (
                k.to_string(),
                shares(threads.iter().filter(|t| t.kind == k)),
            )
        })
        .collect();
    let mut per_thread: Vec<ThreadShare> = threads
        .iter()
        .map(|t| ThreadShare {
            kind: t.kind.clone(),
            id: t.id,
            pct: shares(std::iter::once(t)).pct,
        })
        .collect();
    per_thread.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.id.cmp(&b.id)));
    Report {
        node,
        duration_secs: duration.as_secs_f64(),
        states: states.into_iter().collect(),
        types,
        all: shares(threads.iter()),
        threads: per_thread,
        flag_restored_to: restored,
    }
}

/// A table built at run time: the states are whatever this VM accounts.
fn grid(fixed: &[(&'static str, &'static str, Align)], states: &[String], show: Show) -> Grid {
    let mut columns: Vec<Spec> = fixed
        .iter()
        .map(|(title, key, align)| Spec::dynamic(title.to_string(), key.to_string(), *align, show))
        .collect();
    columns.extend(
        states
            .iter()
            .map(|s| Spec::dynamic(s.clone(), s.clone(), Align::Right, show)),
    );
    Grid {
        caption: None,
        columns,
        rows: Vec::new(),
    }
}

fn pct_text(v: Option<f64>) -> Cell {
    Cell::text(v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into()))
}

fn pct_cells(states: &[String], pct: &BTreeMap<String, f64>) -> impl Iterator<Item = Cell> {
    states
        .iter()
        .map(move |s| pct_text(Some(pct.get(s).copied().unwrap_or(0.0))))
}

/// The frame: per thread type, per state, and one row per thread (on a
/// terminal only with `threads`; in CSV always, one column per state, ready
/// for a spreadsheet). JSON is the whole report.
pub fn frame(r: &Report, threads: bool) -> Frame {
    let mut by_type = grid(
        &[
            ("Thread type", "type", Align::Left),
            ("Threads", "threads", Align::Right),
        ],
        &r.states,
        Show::TEXT,
    );
    by_type.rows = r
        .types
        .iter()
        .map(|(k, s)| {
            [Cell::text(k), Cell::Count(Some(s.threads as u64))]
                .into_iter()
                .chain(pct_cells(&r.states, &s.pct))
                .collect()
        })
        .collect();
    // Per state: all threads, and the normal schedulers alone, which is
    // where Erlang code runs.
    let mut by_state = grid(
        &[
            ("State", "state", Align::Left),
            ("All threads", "all", Align::Right),
            ("Schedulers", "schedulers", Align::Right),
        ],
        &[],
        Show::TEXT,
    );
    let sched = r.types.get("scheduler");
    by_state.rows = r
        .states
        .iter()
        .map(|s| {
            vec![
                Cell::text(s),
                pct_text(Some(r.all.pct.get(s).copied().unwrap_or(0.0))),
                pct_text(sched.and_then(|x| x.pct.get(s)).copied()),
            ]
        })
        .collect();
    let mut per_thread = grid(
        &[
            ("Thread type", "type", Align::Left),
            ("Id", "id", Align::Right),
        ],
        &r.states,
        Show {
            text: threads,
            csv: true,
            json: false,
            only_when_set: false,
        },
    );
    per_thread.rows = r
        .threads
        .iter()
        .map(|t| {
            let text = threads;
            [Cell::text(&t.kind), Cell::Count(u64::try_from(t.id).ok())]
                .into_iter()
                .chain(r.states.iter().map(move |s| {
                    let v = t.pct.get(s).copied().unwrap_or(0.0);
                    // The terminal gets a rounded share, CSV the exact one.
                    if text {
                        pct_text(Some(v))
                    } else {
                        Cell::Pct(Some(v))
                    }
                }))
                .collect()
        })
        .collect();
    Frame {
        header: vec![format!(
            "{}  microstate accounting over {:.1} s (percent of real time)",
            r.node, r.duration_secs
        )],
        grids: vec![by_type, by_state, per_thread],
        csv_prefix: Vec::new(),
        json: serde_json::to_value(r).unwrap_or_default(),
        note: String::new(),
        id_column: None,
        footer: Vec::new(),
    }
}

/// The measurement as a feed: the first sample turns accounting on, the
/// second (one window later, or early when etop is told to stop) collects
/// it, which puts the flag back as it was.
pub struct MsaccFeed {
    pub collector: Collector,
    started: Option<Instant>,
    collected: bool,
}

impl MsaccFeed {
    pub fn new(collector: Collector) -> MsaccFeed {
        MsaccFeed {
            collector,
            started: None,
            collected: false,
        }
    }
}

/// What a sample of `MsaccFeed` is: the start, or the report.
pub enum Msacc {
    Started,
    Done(Report),
}

const MSACC_TIMEOUT: Duration = Duration::from_secs(15);

impl Feed for MsaccFeed {
    type Sample = Msacc;
    fn sample(&mut self) -> Result<Msacc> {
        let node = self.collector.peer();
        let Some(start) = self.started else {
            self.collector
                .request(atom("msacc_start"), MSACC_TIMEOUT, "msacc start")?;
            self.started = Some(Instant::now());
            return Ok(Msacc::Started);
        };
        // A new connection would know nothing of the window: a lost one is
        // the end of the measurement (the node's guard put the flag back).
        if self.collector.is_closed() || self.collected {
            return Err(Error::WindowLost { node });
        }
        let (info, _) = self
            .collector
            .request(atom("msacc_collect"), MSACC_TIMEOUT, "msacc collect")
            .map_err(|e| match e {
                Error::ConnectionLost { .. } => Error::WindowLost { node: node.clone() },
                other => other,
            })?;
        self.collected = true;
        let threads = term::map_get(&info, "threads")
            .map(decode)
            .unwrap_or_default();
        let restored =
            term::map_get(&info, "restored_to").is_some_and(|t| term::is_atom(t, "true"));
        Ok(Msacc::Done(report(
            node,
            start.elapsed(),
            &threads,
            restored,
        )))
    }
    /// Ctrl-C, SIGTERM and SIGHUP end the window early: collect what there
    /// is (which restores the flag) rather than leave it to the guard.
    fn finish_early(&self) -> bool {
        self.started.is_some() && !self.collected
    }
    fn close(&mut self) {
        self.collector.close();
    }
}

pub struct MsaccShaper {
    /// Also one row per thread on a terminal.
    pub threads: bool,
}

impl Shaper for MsaccShaper {
    type Sample = Msacc;
    fn shape(&mut self, s: Msacc) -> Option<Frame> {
        match s {
            Msacc::Started => None,
            Msacc::Done(r) => Some(frame(&r, self.threads)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: &str, id: i64, c: &[(&str, u64)]) -> ThreadTimes {
        ThreadTimes {
            kind: kind.into(),
            id,
            counters: c.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn shares_are_percent_of_each_threads_real_time() {
        let threads = vec![
            t("scheduler", 1, &[("emulator", 75), ("sleep", 25)]),
            t("scheduler", 2, &[("emulator", 25), ("sleep", 75)]),
            t("aux", 1, &[("aux", 10), ("sleep", 90)]),
        ];
        let r = report("n@h".into(), Duration::from_secs(2), &threads, false);
        assert_eq!(r.states, vec!["aux", "emulator", "sleep"]);
        assert_eq!(r.types["scheduler"].pct["emulator"], 50.0);
        assert_eq!(r.types["scheduler"].threads, 2);
        // States a thread type does not account are absent, not zero.
        assert!(!r.types["aux"].pct.contains_key("emulator"));
        let f = frame(&r, false);
        let csv: Vec<&Grid> = f.grids.iter().filter(|g| g.has_csv()).collect();
        assert_eq!(csv.len(), 1, "one CSV table: a row per thread");
        let keys: Vec<&str> = csv[0].columns.iter().map(|c| c.key.as_ref()).collect();
        assert_eq!(keys, ["type", "id", "aux", "emulator", "sleep"]);
        assert_eq!(csv[0].rows[0][4], Cell::Pct(Some(90.0)));
        assert!(
            !csv[0].columns[0].show.text,
            "per thread on a terminal only with --threads"
        );
        assert_eq!(f.grids[0].rows[1][3].to_text(), "50.0%");
        assert_eq!(f.json["types"]["scheduler"]["pct"]["emulator"], 50.0);
    }
}
