//! The process table as a frame: the header lines, the columns (defined
//! once for text, CSV and JSON) and the JSON object.

use super::model::{Header, Model, Row};
use crate::agent::SortKey;
use crate::text::human_bytes;
use crate::views::Frame;
use crate::views::column::{Cell, Column, Grid, Show};

/// The columns of the process table.
pub const COLUMNS: [Column<Row>; 10] = [
    // The row's warning mark; scripts read the frame's `warnings` instead.
    Column::text("!", "warn", |r: &Row| {
        Cell::text(if r.warn { "!" } else { "" })
    })
    .only(Show::TEXT),
    Column::text("Pid", "pid", |r| Cell::text(&r.pid)),
    Column::flex("Name or Initial Func", "name", |r| Cell::text(&r.name)),
    Column::text("Registered name", "registered_name", |r: &Row| {
        Cell::OptText(r.registered_name.clone())
    })
    .only(Show::DATA),
    Column::text("Initial call", "initial_call", |r: &Row| {
        Cell::OptText(r.initial_call.clone())
    })
    .only(Show::DATA),
    Column::num("Reds", "reds", |r| Cell::Count(r.reds)),
    Column::num("Reds%", "reds_pct", |r| Cell::Pct(r.reds_pct)),
    Column::num("Memory", "memory_bytes", |r| {
        Cell::Bytes(Some(r.memory_bytes))
    }),
    Column::num("MsgQ", "msgq", |r| Cell::Count(Some(r.msgq))),
    Column::flex("Current Function", "current_function", |r| {
        Cell::text(&r.current_function)
    }),
];

/// The frame for one model.
pub fn frame(m: &Model) -> Frame {
    let grid = Grid::new(&COLUMNS, &m.rows);
    let json = serde_json::json!({
        "header": m.header,
        "rows": grid.json_rows(),
        "warnings": m.warnings,
    });
    Frame {
        header: header_lines(&m.header),
        footer: m
            .warnings
            .iter()
            .map(|w| format!("! {}", w.line()))
            .collect(),
        grids: vec![grid],
        csv_prefix: vec![
            ("time", m.header.clock.clone().unwrap_or_default()),
            ("node", m.header.node.clone()),
        ],
        json,
        note: crate::views::cost_note(
            m.header.cost_ms,
            m.header.agent_heap_bytes,
            m.header.agent_heap_limit_bytes,
        ),
        id_column: Some("pid"),
    }
}

fn sort_word(k: SortKey) -> &'static str {
    match k {
        SortKey::Reductions => "reductions",
        SortKey::Memory => "memory",
        SortKey::Msgq => "message queue",
    }
}

/// The header's first line says what the numbers mean: which window the
/// reductions cover, or that they are totals.
fn window_text(h: &Header) -> String {
    let reds = match (h.accumulate, h.window_secs) {
        (true, _) => "reductions: totals".to_string(),
        (false, Some(w)) => format!("reductions over {w:.1} s"),
        (false, None) if h.sort == SortKey::Reductions => {
            "reductions: totals (first frame)".to_string()
        }
        (false, None) => "reductions: from the next frame".to_string(),
    };
    format!("sorted by {}, {}", sort_word(h.sort), reds)
}

pub fn header_lines(h: &Header) -> Vec<String> {
    let cpu = h.cpu_pct.map(|c| format!("{c:.0}%")).unwrap_or_default();
    let m = &h.memory;
    let mut lines = vec![
        format!(
            "{}  {}  {}",
            h.node,
            h.clock.as_deref().unwrap_or(""),
            window_text(h)
        ),
        format!(
            "Load:  cpu   {:>8}    Memory:  total     {:>7}    binary {:>7}",
            cpu,
            human_bytes(m.total),
            human_bytes(m.binary)
        ),
        format!(
            "       procs {:>8}             processes {:>7}    code   {:>7}",
            h.procs,
            human_bytes(m.processes),
            human_bytes(m.code)
        ),
        format!(
            "       runq  {:>8}             atom      {:>7}    ets    {:>7}",
            h.runq,
            human_bytes(m.atom),
            human_bytes(m.ets)
        ),
    ];
    if h.limits.is_some() || h.uptime_secs.is_some() {
        lines.push(counts_line(h));
    }
    if h.show_schedulers {
        lines.push(scheduler_line(h));
    }
    if let Some(os) = &h.os {
        // RSS next to the VM's own total: the gap is allocator and OS overhead.
        let host = os
            .host_cpu_pct
            .map(|c| format!("{c:.0}%"))
            .unwrap_or_else(|| "-".into());
        lines.push(format!(
            "OS:    rss   {:>8} (VM total {}, overhead {})  threads {}  host cpu {} of {}  load {:.2} {:.2} {:.2}",
            human_bytes(os.rss_bytes),
            human_bytes(m.total),
            human_bytes(os.rss_bytes.saturating_sub(m.total)),
            os.os_threads,
            host,
            os.cpus,
            os.load_avg[0],
            os.load_avg[1],
            os.load_avg[2]
        ));
    }
    lines
}

/// `Schedulers: 1 98%  2 97%  | dirty cpu: 3 0%  4 0%`, blank on a first frame.
fn scheduler_line(h: &Header) -> String {
    let part = |kind: &str| {
        h.schedulers
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| {
                format!(
                    "{} {}",
                    s.id,
                    s.pct.map(|p| format!("{p:.0}%")).unwrap_or("-".into())
                )
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let dirty = part("dirty_cpu");
    let mut line = format!("Sched: {}", part("normal"));
    if !dirty.is_empty() {
        line.push_str(&format!("  | dirty cpu: {dirty}"));
    }
    line
}

/// `Counts: procs 100,047/1,048,576  ports 12/65,536  …  up 3d 04:05`.
fn counts_line(h: &Header) -> String {
    use super::warn::group;
    let mut parts = Vec::new();
    if let Some(l) = &h.limits {
        for (name, (count, limit)) in [
            ("procs", l.procs),
            ("ports", l.ports),
            ("atoms", l.atoms),
            ("ets", l.ets),
        ] {
            parts.push(format!("{name} {}/{}", group(count), group(limit)));
        }
    }
    if let Some(up) = h.uptime_secs {
        parts.push(format!("up {}", uptime(up)));
    }
    format!("Counts: {}", parts.join("  "))
}

/// `3d 04:05`, `04:05:06` under a day.
pub fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_reads_like_top() {
        assert_eq!(super::uptime(59), "00:00:59");
        assert_eq!(
            super::uptime(3 * 86_400 + 4 * 3600 + 5 * 60 + 6),
            "3d 04:05"
        );
    }
}
