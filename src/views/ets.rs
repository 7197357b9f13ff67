//! `etop ets`: every ETS table with its size, memory and growth per interval.
//! Size and memory of all tables are read on the node with compiled stdlib;
//! names, owners and types only for the rows shown.

use super::column::{Cell, Column};
use super::reply::ReplyView;
use crate::agent::sample::ReplyHeader;
use crate::dist::term::{self, Term, atom, int, tuple};
use crate::text::human_bytes;
use serde_json::{Map, Value};

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

#[derive(Debug, Clone, PartialEq)]
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
    ] = term::as_tuple(t)?
    else {
        return None;
    };
    let owner = match (term::as_atom(owner_name), owner) {
        (Some(n), _) => n.to_string(),
        (None, Term::Pid(p)) => format!("<0.{}.{}>", p.id, p.serial),
        _ => String::new(),
    };
    Some(EtsRow {
        name: term::as_atom(name).unwrap_or("").to_string(),
        id: term::id_text(tid),
        owner,
        kind: term::as_atom(kind).unwrap_or("").to_string(),
        protection: term::as_atom(prot).unwrap_or("").to_string(),
        size: term::as_i64(size)?.max(0) as u64,
        memory_bytes: term::as_i64(mem)?.max(0) as u64,
        size_growth: term::as_i64(gs),
        memory_growth_bytes: term::as_i64(gm),
    })
}

/// The ETS view: its columns and header.
pub struct Ets {
    pub sort: EtsSort,
}

/// The columns of the ETS view.
pub static COLUMNS: [Column<EtsRow>; 9] = [
    Column::flex("Table", "name", |r| Cell::text(&r.name)),
    // A named table's id is its name: shown once.
    Column::flex("Id", "id", |r| {
        Cell::text(if r.id == r.name { "" } else { r.id.as_str() })
    }),
    Column::flex("Owner", "owner", |r| Cell::text(&r.owner)),
    Column::text("Type", "type", |r| Cell::text(&r.kind)),
    Column::text("Access", "protection", |r| Cell::text(&r.protection)),
    Column::num("Size", "size", |r| Cell::Count(Some(r.size))),
    Column::num("Memory", "memory_bytes", |r| {
        Cell::Bytes(Some(r.memory_bytes))
    }),
    Column::num("+Size", "size_growth", |r| Cell::Delta(r.size_growth)),
    Column::num("+Memory", "memory_growth_bytes", |r| {
        Cell::DeltaBytes(r.memory_growth_bytes)
    }),
];

impl ReplyView for Ets {
    type Row = EtsRow;
    fn columns(&self) -> &'static [Column<EtsRow>] {
        &COLUMNS
    }
    fn decode_row(t: &Term) -> Option<EtsRow> {
        decode_row(t)
    }
    fn head(
        &self,
        h: &ReplyHeader,
        window: Option<f64>,
        info: &Term,
    ) -> (String, Map<String, Value>) {
        let total_bytes = total_bytes(info);
        let win = match window {
            Some(w) => format!("growth over {w:.1} s"),
            None => "growth from the next frame".to_string(),
        };
        let line = format!(
            "{}  {}  {} tables, {} in all  {}",
            h.node,
            h.clock.map(|c| c.to_string()).unwrap_or_default(),
            h.count,
            human_bytes(total_bytes),
            win
        );
        let mut own = Map::new();
        own.insert("tables".into(), h.count.into());
        own.insert("total_bytes".into(), total_bytes.into());
        own.insert("sort".into(), self.sort.atom().into());
        (line, own)
    }
    fn rank(&self, r: &EtsRow) -> Option<i64> {
        match self.sort {
            EtsSort::Memory => i64::try_from(r.memory_bytes).ok(),
            EtsSort::Size => i64::try_from(r.size).ok(),
            EtsSort::Growth => r.memory_growth_bytes,
        }
    }
    fn strip(&self, h: &ReplyHeader, info: &Term) -> Vec<(&'static str, &'static str, Cell)> {
        vec![
            ("Tables", "tables", Cell::Count(Some(h.count))),
            (
                "Memory",
                "total_bytes",
                Cell::Bytes(Some(total_bytes(info))),
            ),
        ]
    }
}

/// The memory of all the node's tables, in bytes.
fn total_bytes(info: &Term) -> u64 {
    term::map_get(info, "total_bytes")
        .and_then(term::as_i64)
        .unwrap_or(0)
        .max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_signed_in_both_columns() {
        let r = EtsRow {
            name: "t".into(),
            id: "t".into(),
            owner: String::new(),
            kind: "set".into(),
            protection: "public".into(),
            size: 10,
            memory_bytes: 4096,
            size_growth: Some(0),
            memory_growth_bytes: Some(-2048),
        };
        let cells: Vec<String> = COLUMNS.iter().map(|c| (c.value)(&r).to_text()).collect();
        assert_eq!(&cells[7..], ["+0", "-2.0K"]);
        assert_eq!(cells[1], "", "a named table's id is not repeated");
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
            crate::dist::term::list(vec![]),
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
