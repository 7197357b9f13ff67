//! The process table as a frame: the header lines, the columns (defined
//! once for text, CSV and JSON) and the JSON object.

use super::model::{Header, Model, Row};
use crate::agent::SortKey;
use crate::text::human_bytes;
use crate::views::Frame;
use crate::views::column::{Cell, Column, Grid, Show};

/// The columns of the process table.
pub const COLUMNS: [Column<Row>; 13] = [
    // The row's warning mark; scripts read the frame's `warnings` instead.
    Column::text("!", "warn", |r: &Row| {
        Cell::text(if r.warn { "!" } else { "" })
    })
    .only(Show::MARK),
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
    Column::text("Reds kind", "reds_kind", |r: &Row| {
        Cell::OptText(r.reds_kind.map(str::to_string))
    })
    .only(Show::DATA),
    Column::num("Reds%", "reds_pct", |r| Cell::Pct(r.reds_pct)),
    Column::num("Memory", "memory_bytes", |r| {
        Cell::Bytes(Some(r.memory_bytes))
    }),
    // Read for the rows shown when the table is sorted by them.
    Column::num("Heap", "heap_bytes", |r: &Row| Cell::Bytes(r.heap_bytes)).only(Show::SOMETIMES),
    Column::num("Bin", "bin_bytes", |r: &Row| Cell::Bytes(r.bin_bytes)).only(Show::SOMETIMES),
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

/// How the header names a sort key.
pub fn sort_word(k: SortKey) -> &'static str {
    match k {
        SortKey::Reductions => "reductions",
        SortKey::Memory => "memory",
        SortKey::Msgq => "message queue",
        SortKey::Heap => "total heap",
        SortKey::Binary => "binary memory",
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
    let mut lines = vec![format!(
        "{}  {}  {}",
        h.node,
        h.clock.as_deref().unwrap_or(""),
        window_text(h)
    )];
    // Right under the node's name, where it is seen first.
    lines.extend(h.notice.clone());
    lines.extend([
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
    ]);
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
            overhead(os.rss_bytes, m.total),
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

/// RSS minus the VM's own total. It is negative when the VM counts memory
/// it reserved but the OS has not made resident yet: shown as such, since
/// a `0` there would claim RSS and VM total agree.
fn overhead(rss_bytes: u64, vm_total_bytes: u64) -> String {
    if rss_bytes >= vm_total_bytes {
        human_bytes(rss_bytes - vm_total_bytes)
    } else {
        format!("-{}", human_bytes(vm_total_bytes - rss_bytes))
    }
}

/// `Sched: 1 98%  2 97%  | dirty cpu: 1 0%  2 0%` (numbered as `etop
/// threads` names them), blank on a first frame.
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
    use super::warning::group;
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
    use super::*;

    #[test]
    fn a_negative_overhead_is_shown_negative() {
        assert_eq!(overhead(3 << 30, 2 << 30), "1.0G");
        assert_eq!(overhead(1 << 20, 1 << 20), "0");
        // RSS 2.7G against a VM total of 3.7G.
        assert_eq!(overhead(2_899_102_924, 3_972_844_748), "-1.0G");
    }

    #[test]
    fn the_os_line_says_when_rss_is_below_the_vm_total() {
        use crate::agent::sample::Memory;
        use crate::views::procs::model::OsHeader;
        let h = Header {
            node: "n@h".into(),
            clock: None,
            cpu_pct: None,
            procs: 1,
            runq: 0,
            limits: None,
            uptime_secs: None,
            memory: Memory {
                total: 3_972_844_748,
                ..Memory::default()
            },
            sort: SortKey::Memory,
            accumulate: false,
            window_secs: None,
            cost_ms: 0.0,
            agent_heap_bytes: 0,
            agent_heap_limit_bytes: 0,
            os: Some(OsHeader {
                os_pid: 4242,
                rss_bytes: 2_899_102_924,
                os_threads: 20,
                host_cpu_pct: None,
                load_avg: [0.0; 3],
                cpus: 2,
            }),
            schedulers: Vec::new(),
            show_schedulers: false,
            epoch: 2,
            reconnected: true,
            notice: Some("node restarted at 14:23:10 (new OS pid 4242); reconnected".into()),
        };
        let lines = header_lines(&h);
        let os = lines
            .iter()
            .find(|l| l.starts_with("OS:"))
            .expect("an OS line");
        assert!(
            os.contains("rss       2.7G (VM total 3.7G, overhead -1.0G)"),
            "{os}"
        );
        assert_eq!(
            lines[1],
            "node restarted at 14:23:10 (new OS pid 4242); reconnected"
        );
    }

    #[test]
    fn uptime_reads_like_top() {
        assert_eq!(uptime(59), "00:00:59");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 5 * 60 + 6), "3d 04:05");
    }
}
