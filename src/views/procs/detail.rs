//! One process in detail: the detail page of the top (Enter on a row) and
//! `etop proc PID`. Its numbers, where it is, what it is tied to; never its
//! mailbox, state or dictionary.

use super::model::NameStyle;
use crate::agent::detail::{FirstOf, Peer, ProcDetail, StackFrame};
use crate::agent::sample::Mfa;
use crate::text::human_bytes;
use crate::views::Frame;
use crate::views::column::{Cell, Column, Grid, Show};
use serde_json::{Value, json};

/// How many links, monitors and stack frames a detail shows.
pub const FIRST_N: usize = 20;

static STACK: [Column<StackFrame>; 3] = [
    Column::flex("Function", "function", |f| {
        Cell::text(f.function.to_string())
    }),
    Column::flex("File", "file", |f| Cell::OptText(f.file.clone())),
    Column::num("Line", "line", |f| {
        Cell::Count(f.line.map(|l| l.max(0) as u64))
    }),
];

static PEERS: [Column<Peer>; 2] = [
    Column::text("Id", "id", |p| Cell::text(&p.id)),
    Column::flex("Name", "name", |p| Cell::OptText(p.name.clone())),
];

/// The numbers of a detail, one row: what CSV gets.
struct Numbers {
    d: ProcDetail,
    reds_per_sec: Option<f64>,
}

static NUMBERS: [Column<Numbers>; 10] = [
    Column::text("Pid", "pid", |n| Cell::text(n.d.pid.to_string())),
    Column::text("Name", "registered_name", |n| {
        Cell::OptText(n.d.registered_name.clone())
    }),
    Column::text("Status", "status", |n| Cell::text(&n.d.status)),
    Column::num("MsgQ", "message_queue_len", |n| {
        Cell::Count(Some(n.d.message_queue_len))
    }),
    Column::num("Memory", "memory_bytes", |n| {
        Cell::Bytes(Some(n.d.memory_bytes))
    }),
    Column::num("Heap", "total_heap_bytes", |n| {
        Cell::Bytes(Some(n.d.total_heap_bytes))
    }),
    Column::num("Reds", "reductions", |n| Cell::Count(Some(n.d.reductions))),
    Column::num("Reds/s", "reds_per_sec", |n| Cell::Pct(n.reds_per_sec)),
    Column::num("Links", "links_count", |n| {
        Cell::Count(Some(n.d.links.count))
    }),
    Column::num("Binary", "binary_bytes", |n| {
        Cell::Bytes(Some(n.d.binary_bytes))
    }),
];

fn mfa(m: &Option<Mfa>, style: bool) -> String {
    match m {
        Some(m) if style => format!(
            "{}.{}/{}",
            super::model::elixir_module(&m.module),
            m.function,
            m.arity
        ),
        Some(m) => m.to_string(),
        None => "-".into(),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn peers_json(p: &FirstOf) -> Value {
    Value::Array(
        p.first
            .iter()
            .map(|p| json!({"id": p.id, "name": p.name}))
            .collect(),
    )
}

/// The frame for `d`; `prev` is the previous detail of the same process,
/// for the reductions rate.
pub fn frame(d: &ProcDetail, prev: Option<&ProcDetail>, node: &str, names: NameStyle) -> Frame {
    let elixir = matches!(names, NameStyle::Elixir);
    let reds_per_sec = prev.filter(|p| p.pid == d.pid).and_then(|p| {
        let secs = d
            .taken_at
            .saturating_duration_since(p.taken_at)
            .as_secs_f64();
        let reds = d.reductions.checked_sub(p.reductions)?;
        (secs > 0.0).then(|| reds as f64 / secs)
    });
    let name = d.registered_name.as_deref().unwrap_or("");
    let header = vec![
        format!("{}  {name}  on {node}", d.pid),
        format!(
            "Initial call  {}    Current  {}",
            mfa(&d.initial_call, elixir),
            mfa(&d.current_function, elixir)
        ),
        format!(
            "Status        {}    Priority {}    Trap exit {}",
            d.status, d.priority, d.trap_exit
        ),
        format!("Mailbox       {} messages", d.message_queue_len),
        format!(
            "Memory        {}    Heap {}    Total heap {}    Stack {}",
            human_bytes(d.memory_bytes),
            human_bytes(d.heap_bytes),
            human_bytes(d.total_heap_bytes),
            human_bytes(d.stack_bytes)
        ),
        format!(
            "Reductions    {}    {}",
            d.reductions,
            reds_per_sec
                .map(|r| format!("{r:.0}/s"))
                .unwrap_or_else(|| "rate from the next frame".into())
        ),
        format!(
            "GC            minor {}    fullsweep_after {}",
            opt(d.minor_gcs),
            opt(d.fullsweep_after)
        ),
        format!(
            "Binary        {} in {} binaries",
            human_bytes(d.binary_bytes),
            d.binary_count
        ),
        format!(
            "Group leader  {}    Parent {}    Ancestors {}",
            d.group_leader.as_deref().unwrap_or("-"),
            d.parent.as_deref().unwrap_or("-"),
            d.ancestors
                .as_ref()
                .map(|a| a.join(" "))
                .unwrap_or_else(|| "-".into())
        ),
    ];
    let text_only = |g: Grid| Grid {
        columns: g
            .columns
            .into_iter()
            .map(|mut c| {
                c.show = Show::TEXT;
                c
            })
            .collect(),
        ..g
    };
    let section = |title: &str, p: &FirstOf| {
        let shown = if p.count as usize > p.first.len() {
            format!("{title} ({}, the first {} shown)", p.count, p.first.len())
        } else {
            format!("{title} ({})", p.count)
        };
        text_only(Grid::new(&PEERS, &p.first)).titled(shown)
    };
    let mut numbers_grid = Grid::new(
        &NUMBERS,
        &[Numbers {
            d: d.clone(),
            reds_per_sec,
        }],
    );
    for c in &mut numbers_grid.columns {
        c.show = Show {
            text: false,
            csv: true,
            json: false,
            only_when_set: false,
        };
    }
    let json = json!({
        "node": node,
        "pid": d.pid.to_string(),
        "registered_name": d.registered_name,
        "initial_call": d.initial_call.as_ref().map(|m| m.to_string()),
        "current_function": d.current_function.as_ref().map(|m| m.to_string()),
        "current_stacktrace": d.stack.iter().map(|f| json!({
            "function": f.function.to_string(), "file": f.file, "line": f.line,
        })).collect::<Vec<_>>(),
        "status": d.status,
        "message_queue_len": d.message_queue_len,
        "memory_bytes": d.memory_bytes,
        "heap_bytes": d.heap_bytes,
        "total_heap_bytes": d.total_heap_bytes,
        "stack_bytes": d.stack_bytes,
        "reductions": d.reductions,
        "reds_per_sec": reds_per_sec,
        "minor_gcs": d.minor_gcs,
        "fullsweep_after": d.fullsweep_after,
        "links": peers_json(&d.links),
        "links_count": d.links.count,
        "monitors": peers_json(&d.monitors),
        "monitors_count": d.monitors.count,
        "monitored_by": peers_json(&d.monitored_by),
        "monitored_by_count": d.monitored_by.count,
        "trap_exit": d.trap_exit,
        "priority": d.priority,
        "group_leader": d.group_leader,
        "parent": d.parent,
        "ancestors": d.ancestors,
        "binary_bytes": d.binary_bytes,
        "binary_count": d.binary_count,
    });
    Frame {
        header,
        grids: vec![
            text_only(Grid::new(&STACK, &d.stack))
                .titled(format!("Stack ({} frames)", d.stack.len())),
            section("Links", &d.links),
            section("Monitors", &d.monitors),
            section("Monitored by", &d.monitored_by),
            numbers_grid,
        ],
        csv_prefix: Vec::new(),
        json,
        note: "Esc: back to the table".into(),
        id_column: None,
        footer: Vec::new(),
    }
}

/// The page of a process that has exited while it was shown.
pub fn gone(pid: &str, node: &str) -> Frame {
    Frame {
        header: vec![
            format!("{pid}  on {node}"),
            "no such process: it has exited".to_string(),
        ],
        grids: Vec::new(),
        csv_prefix: Vec::new(),
        json: json!({"node": node, "pid": pid, "exited": true}),
        note: "Esc: back to the table".into(),
        id_column: None,
        footer: Vec::new(),
    }
}
