//! `etop msacc`: microstate accounting over a window. A guard process on the
//! node, linked to our connection and trapping its exit, turns the flag on
//! (remembering its previous value) and resets the counters; it restores the
//! previous value if our connection drops before we collect; collecting
//! restores it too. A connection lost during the window is reported as lost,
//! never silently replaced by a new one that knows nothing of the window.

use crate::collect::Collector;
use crate::error::Result;
use crate::escape::terminal_safe;
use crate::eterm::{self, Term, atom};
use crate::render::{self, Format};
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
    eterm::list_elems(threads)
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| {
            let kind = eterm::map_get(t, "type").and_then(eterm::as_atom)?;
            let id = eterm::map_get(t, "id").and_then(eterm::as_i64)?;
            let counters = match eterm::map_get(t, "counters")? {
                Term::Map(m) => m
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            eterm::as_atom(k)?.to_string(),
                            eterm::as_i64(v)?.max(0) as u64,
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

fn pct_cells(states: &[String], pct: &BTreeMap<String, f64>) -> Vec<String> {
    states
        .iter()
        .map(|s| format!("{:.1}%", pct.get(s).copied().unwrap_or(0.0)))
        .collect()
}

/// The two tables (per thread type, per state), and with `threads` one row
/// per thread.
pub fn text(r: &Report, threads: bool) -> String {
    let mut out = format!(
        "{}  microstate accounting over {:.1} s (percent of real time)\n\n",
        terminal_safe(&r.node),
        r.duration_secs
    );
    let mut titles: Vec<&str> = vec!["Thread type", "Threads"];
    titles.extend(r.states.iter().map(String::as_str));
    let right: Vec<usize> = (1..titles.len()).collect();
    let rows: Vec<Vec<String>> = r
        .types
        .iter()
        .map(|(k, s)| {
            let mut row = vec![k.clone(), s.threads.to_string()];
            row.extend(pct_cells(&r.states, &s.pct));
            row
        })
        .collect();
    out.push_str(&render::simple_table(&titles, &rows, &right));
    out.push_str("\n\n");
    // Per state: all threads, and the normal schedulers alone, which is
    // where Erlang code runs.
    let sched = r.types.get("scheduler");
    let rows: Vec<Vec<String>> = r
        .states
        .iter()
        .map(|s| {
            vec![
                s.clone(),
                format!("{:.1}%", r.all.pct.get(s).copied().unwrap_or(0.0)),
                sched
                    .and_then(|x| x.pct.get(s))
                    .map(|v| format!("{v:.1}%"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.push_str(&render::simple_table(
        &["State", "All threads", "Schedulers"],
        &rows,
        &[1, 2],
    ));
    if threads {
        out.push_str("\n\n");
        let mut titles: Vec<&str> = vec!["Thread type", "Id"];
        titles.extend(r.states.iter().map(String::as_str));
        let right: Vec<usize> = (1..titles.len()).collect();
        let rows: Vec<Vec<String>> = r
            .threads
            .iter()
            .map(|t| {
                let mut row = vec![t.kind.clone(), t.id.to_string()];
                row.extend(pct_cells(&r.states, &t.pct));
                row
            })
            .collect();
        out.push_str(&render::simple_table(&titles, &rows, &right));
    }
    out.push('\n');
    out
}

/// One row per thread, one column per state: ready for a spreadsheet.
pub fn csv(r: &Report) -> String {
    let mut head = vec!["type".to_string(), "id".to_string()];
    head.extend(r.states.iter().cloned());
    let mut out = render::csv_line(&head);
    for t in &r.threads {
        let mut row = vec![t.kind.clone(), t.id.to_string()];
        row.extend(
            r.states
                .iter()
                .map(|s| format!("{:.3}", t.pct.get(s).copied().unwrap_or(0.0))),
        );
        out.push_str(&render::csv_line(&row));
    }
    out
}

/// Runs the measurement: on, wait (with a countdown on a terminal), collect.
/// `stop` is polled while waiting so Ctrl-C collects early (which restores
/// the flag) instead of leaving it to the guard.
pub fn run(
    collector: &mut Collector,
    duration: Duration,
    progress: bool,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Report> {
    let timeout = Duration::from_secs(15);
    collector.request(atom("msacc_start"), timeout, "msacc start")?;
    let start = Instant::now();
    let node = collector.peer();
    while start.elapsed() < duration
        && !stop.load(std::sync::atomic::Ordering::Relaxed)
        && !collector.is_closed()
    {
        if progress {
            let left = duration.saturating_sub(start.elapsed()).as_secs_f64();
            eprint!(
                "\retop: measuring microstate accounting on {}: {left:>4.0} s left ",
                terminal_safe(&node)
            );
        }
        std::thread::sleep(
            Duration::from_millis(100).min(duration.saturating_sub(start.elapsed())),
        );
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let elapsed = start.elapsed();
    if collector.is_closed() {
        return Err(crate::error::Error::ConnectionLost {
            node,
            reason: "during the measurement".into(),
        });
    }
    let (info, _) = collector.request(atom("msacc_collect"), timeout, "msacc collect")?;
    let threads = eterm::map_get(&info, "threads")
        .map(decode)
        .unwrap_or_default();
    let restored = eterm::map_get(&info, "restored_to").is_some_and(|t| eterm::is_atom(t, "true"));
    Ok(report(node, elapsed, &threads, restored))
}

pub fn show(r: &Report, format: Format, threads: bool) -> String {
    match format {
        Format::Text => text(r, threads),
        Format::Csv => csv(r),
        Format::Json => crate::escape::json(r) + "\n",
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
        let csv = csv(&r);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("type,id,aux,emulator,sleep"));
        assert_eq!(lines.next(), Some("aux,1,10.000,0.000,90.000"));
        let text = text(&r, true);
        assert!(text.contains("Thread type"));
        assert!(text.contains("50.0%"));
    }
}
