//! `etop ets`: every ETS table with its size, memory and growth per interval.
//! Size and memory of all tables are read on the node with compiled stdlib;
//! names, owners and types only for the rows shown.

use crate::collect::{Reply, ReplyClock, reply_header, reply_rows};
use crate::eterm::{self, Term, atom, int, tuple};
use crate::render::{self, human_bytes};
use crate::session::{Renderable, Shaper};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EtsSort {
    /// Memory the table uses, in bytes.
    Memory,
    /// Objects in the table.
    Size,
    /// Change of memory since the previous frame.
    Growth,
}

impl EtsSort {
    fn atom(self) -> &'static str {
        match self {
            EtsSort::Memory => "memory",
            EtsSort::Size => "size",
            EtsSort::Growth => "growth",
        }
    }
}

pub fn request(sort: EtsSort, lines: usize, base: i64) -> Term {
    tuple(vec![
        atom("ets"),
        atom(sort.atom()),
        int(lines as i64),
        int(base),
    ])
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EtsRow {
    /// The table's name; unnamed tables share names, so `id` tells them apart.
    pub name: String,
    /// `#Ref<...>` for an unnamed table, the name for a named one.
    pub id: String,
    pub owner: String,
    pub kind: String,
    pub protection: String,
    pub size: u64,
    pub memory_bytes: u64,
    /// Change since the previous frame; `None` when the table is new to us.
    pub size_growth: Option<i64>,
    pub memory_growth_bytes: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EtsFrame {
    pub node: String,
    pub clock: Option<String>,
    pub tables: u64,
    pub total_bytes: u64,
    pub sort: EtsSort,
    pub window_secs: Option<f64>,
    pub cost_ms: f64,
    /// The agent's frame worker: its largest heap for this frame, and its
    /// ceiling, in bytes.
    pub agent_heap_bytes: u64,
    pub agent_heap_limit_bytes: u64,
    pub rows: Vec<EtsRow>,
}

/// `{Tid, MemBytes, Size, GrowthMem, GrowthSize, Name, Named, Owner, OwnerName, Type, Protection}`
fn decode_row(t: &Term) -> Option<EtsRow> {
    let [
        tid,
        mem,
        size,
        gm,
        gs,
        name,
        _named,
        owner,
        owner_name,
        kind,
        prot,
    ] = eterm::as_tuple(t)?
    else {
        return None;
    };
    let owner = match (eterm::as_atom(owner_name), owner) {
        (Some(n), _) => n.to_string(),
        (None, Term::Pid(p)) => format!("<0.{}.{}>", p.id, p.serial),
        _ => String::new(),
    };
    Some(EtsRow {
        name: eterm::as_atom(name).unwrap_or("").to_string(),
        id: eterm::id_text(tid),
        owner,
        kind: eterm::as_atom(kind).unwrap_or("").to_string(),
        protection: eterm::as_atom(prot).unwrap_or("").to_string(),
        size: eterm::as_i64(size)?.max(0) as u64,
        memory_bytes: eterm::as_i64(mem)?.max(0) as u64,
        size_growth: eterm::as_i64(gs),
        memory_growth_bytes: eterm::as_i64(gm),
    })
}

pub struct EtsShaper {
    pub sort: EtsSort,
    pub baseline_first: bool,
    clock: ReplyClock,
}

impl EtsShaper {
    pub fn new(sort: EtsSort, once: bool) -> EtsShaper {
        EtsShaper {
            sort,
            baseline_first: once,
            clock: ReplyClock::default(),
        }
    }
}

impl Shaper for EtsShaper {
    type Sample = Reply;
    fn shape(&mut self, r: Reply) -> Option<Box<dyn Renderable>> {
        let window = self.clock.window(&r);
        if window.is_none() && self.baseline_first {
            return None;
        }
        let h = reply_header(&r.info);
        let rows = reply_rows(&r.info, decode_row);
        Some(Box::new(EtsFrame {
            node: h.node,
            clock: h.clock.map(|c| c.to_string()),
            tables: h.count,
            total_bytes: eterm::map_get(&r.info, "total_bytes")
                .and_then(eterm::as_i64)
                .unwrap_or(0)
                .max(0) as u64,
            sort: self.sort,
            window_secs: window,
            cost_ms: h.cost_ms,
            agent_heap_bytes: h.heap_bytes,
            agent_heap_limit_bytes: h.heap_limit_bytes,
            rows,
        }))
    }
}

fn signed_bytes(v: Option<i64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 0 => format!("-{}", human_bytes(v.unsigned_abs())),
        Some(v) => format!("+{}", human_bytes(v as u64)),
    }
}

fn signed(v: Option<i64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v > 0 => format!("+{v}"),
        Some(v) => v.to_string(),
    }
}

impl Renderable for EtsFrame {
    fn text(&self, width: usize, max_rows: usize) -> String {
        let window = match self.window_secs {
            Some(w) => format!("growth over {w:.1} s"),
            None => "growth from the next frame".to_string(),
        };
        let head = format!(
            "{}  {}  {} tables, {} in all  {}",
            self.node,
            self.clock.as_deref().unwrap_or(""),
            self.tables,
            human_bytes(self.total_bytes),
            window
        );
        let text_w = width.saturating_sub(60) / 3;
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .take(max_rows)
            .map(|r| {
                vec![
                    render::truncate(&r.name, text_w.max(10)),
                    render::truncate(if r.id == r.name { "" } else { &r.id }, text_w.max(10)),
                    render::truncate(&r.owner, text_w.max(10)),
                    r.kind.clone(),
                    r.protection.clone(),
                    r.size.to_string(),
                    human_bytes(r.memory_bytes),
                    signed(r.size_growth),
                    signed_bytes(r.memory_growth_bytes),
                ]
            })
            .collect();
        let table = render::simple_table(
            &[
                "Table", "Id", "Owner", "Type", "Access", "Size", "Memory", "+Size", "+Memory",
            ],
            &rows,
            &[5, 6, 7, 8],
        );
        format!("{}\n\n{}", render::truncate(&head, width), table)
    }
    fn csv_header(&self) -> String {
        "time,node,table,id,owner,type,protection,size,memory_bytes,size_growth,memory_growth_bytes"
            .into()
    }
    fn csv(&self) -> String {
        self.rows
            .iter()
            .map(|r| {
                render::csv_line(&[
                    self.clock.clone().unwrap_or_default(),
                    self.node.clone(),
                    r.name.clone(),
                    r.id.clone(),
                    r.owner.clone(),
                    r.kind.clone(),
                    r.protection.clone(),
                    r.size.to_string(),
                    r.memory_bytes.to_string(),
                    r.size_growth.map(|v| v.to_string()).unwrap_or_default(),
                    r.memory_growth_bytes
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                ])
            })
            .collect()
    }
    fn json(&self) -> String {
        crate::escape::json(self)
    }
    fn note(&self) -> String {
        render::cost_note(
            self.cost_ms,
            self.agent_heap_bytes,
            self.agent_heap_limit_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_signed_and_unknown_is_a_dash() {
        assert_eq!(signed_bytes(Some(2048)), "+2.0K");
        assert_eq!(signed_bytes(Some(-2048)), "-2.0K");
        assert_eq!(signed_bytes(None), "-");
        assert_eq!(signed(Some(0)), "0");
    }

    #[test]
    fn decodes_a_named_table() {
        let row = tuple(vec![
            atom("demo_cache"),
            int(8000),
            int(50),
            int(800),
            int(5),
            atom("demo_cache"),
            atom("true"),
            erl_dist::term::Pid::new("n@h", 90, 0, 1).into(),
            crate::eterm::list(vec![]),
            atom("set"),
            atom("public"),
        ]);
        let r = decode_row(&row).unwrap();
        assert_eq!(r.name, "demo_cache");
        assert_eq!(r.id, "demo_cache");
        assert_eq!(r.owner, "<0.90.0>");
        assert_eq!(r.memory_growth_bytes, Some(800));
    }
}
