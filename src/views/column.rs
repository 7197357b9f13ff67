//! A column of a table, defined once: its title on a terminal, its key in
//! CSV and JSON, its alignment, whether it gives up width when the terminal
//! is narrow, where it shows, and how a row gives its value. The three
//! formats are written from the same definition, so they cannot drift.

use crate::text::human_bytes;
use serde_json::Value;
use std::borrow::Cow;

/// One value, typed: the type decides how it is written in each format.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Text that may be absent: empty in CSV, `null` in JSON.
    OptText(Option<String>),
    /// A count, written whole everywhere.
    Count(Option<u64>),
    /// Bytes: `44.6M` on a terminal, exact in CSV and JSON.
    Bytes(Option<u64>),
    /// A change since the previous frame: `+12`, `-3`.
    Delta(Option<i64>),
    /// A change in bytes: `+1.5K`, `-300`.
    DeltaBytes(Option<i64>),
    /// A percentage: one decimal on a terminal, exact in CSV and JSON.
    Pct(Option<f64>),
    /// A node's name: short on a terminal (`b`, or `b@db2` when hosts
    /// differ), in full in CSV and JSON.
    Node {
        full: String,
        short: String,
    },
    /// Yes or no: `yes` or nothing on a terminal, `true`/`false` in CSV and
    /// JSON.
    Flag(bool),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// As shown on a terminal; `-` when unknown. Text is shown as it came:
    /// the table escapes it.
    pub fn to_text(&self) -> String {
        let signed = |v: i64, abs: String| {
            if v < 0 {
                format!("-{abs}")
            } else {
                format!("+{abs}")
            }
        };
        match self {
            Cell::Text(s) | Cell::OptText(Some(s)) => s.clone(),
            Cell::Node { short, .. } => short.clone(),
            Cell::Count(Some(v)) => v.to_string(),
            Cell::Bytes(Some(v)) => human_bytes(*v),
            Cell::Delta(Some(v)) => signed(*v, v.unsigned_abs().to_string()),
            Cell::DeltaBytes(Some(v)) => signed(*v, human_bytes(v.unsigned_abs())),
            Cell::Pct(Some(v)) => format!("{v:.1}"),
            Cell::Flag(true) => "yes".to_string(),
            Cell::Flag(false) => String::new(),
            Cell::Count(None)
            | Cell::Bytes(None)
            | Cell::Delta(None)
            | Cell::DeltaBytes(None)
            | Cell::Pct(None)
            | Cell::OptText(None) => "-".to_string(),
        }
    }

    /// As written in CSV: exact numbers; empty when unknown.
    pub fn to_csv(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Node { full: s, .. } => s.clone(),
            Cell::OptText(s) => s.clone().unwrap_or_default(),
            Cell::Count(v) | Cell::Bytes(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Cell::Delta(v) | Cell::DeltaBytes(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Cell::Pct(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Cell::Flag(b) => b.to_string(),
        }
    }

    /// As written in JSON: exact; `null` when unknown.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Text(s) | Cell::Node { full: s, .. } => Value::from(s.as_str()),
            Cell::OptText(s) => s.as_deref().map(Value::from).unwrap_or(Value::Null),
            Cell::Count(v) | Cell::Bytes(v) => v.map(Value::from).unwrap_or(Value::Null),
            Cell::Delta(v) | Cell::DeltaBytes(v) => v.map(Value::from).unwrap_or(Value::Null),
            Cell::Pct(v) => v.map(Value::from).unwrap_or(Value::Null),
            Cell::Flag(b) => Value::Bool(*b),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Where a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Show {
    pub text: bool,
    pub csv: bool,
    pub json: bool,
    /// Printed text leaves the column out when no row has a value in it (a
    /// mark column); the full screen keeps it, so that nothing shifts.
    pub only_when_set: bool,
}

impl Show {
    pub const ALL: Show = Show {
        text: true,
        csv: true,
        json: true,
        only_when_set: false,
    };
    /// Detail for scripts that the terminal leaves out for room.
    pub const DATA: Show = Show {
        text: false,
        csv: true,
        json: true,
        only_when_set: false,
    };
    pub const TEXT: Show = Show {
        text: true,
        csv: false,
        json: false,
        only_when_set: false,
    };
    /// Everywhere; left out of text when no row has a value (scripts get
    /// the key, empty or null).
    pub const SOMETIMES: Show = Show {
        text: true,
        csv: true,
        json: true,
        only_when_set: true,
    };
    /// A mark on some rows, for people only.
    pub const MARK: Show = Show {
        text: true,
        csv: false,
        json: false,
        only_when_set: true,
    };
}

/// The part of a column that does not depend on the row type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Title on a terminal.
    pub title: Cow<'static, str>,
    /// Header in CSV, key in JSON.
    pub key: Cow<'static, str>,
    pub align: Align,
    /// Gives up width when the terminal is narrow (names, functions,
    /// addresses); the others keep their natural width.
    pub flex: bool,
    pub show: Show,
}

impl Spec {
    /// A column known only at run time (msacc's states): a number, or text.
    pub fn dynamic(title: String, key: String, align: Align, show: Show) -> Spec {
        Spec {
            title: Cow::Owned(title),
            key: Cow::Owned(key),
            align,
            flex: false,
            show,
        }
    }
}

/// The column naming each row's node, first in the views that merge the
/// rows of several nodes (`Cell::Node`).
pub const NODE: Spec = Spec {
    title: Cow::Borrowed("Node"),
    key: Cow::Borrowed("node"),
    align: Align::Left,
    flex: false,
    show: Show::ALL,
};

/// A column of a table of `R`.
pub struct Column<R> {
    pub spec: Spec,
    pub value: fn(&R) -> Cell,
}

impl<R> Column<R> {
    /// Text, left-aligned, keeping its width.
    pub const fn text(title: &'static str, key: &'static str, value: fn(&R) -> Cell) -> Self {
        Column::new(title, key, Align::Left, false, value)
    }

    /// Text that gives up width first when the terminal is narrow.
    pub const fn flex(title: &'static str, key: &'static str, value: fn(&R) -> Cell) -> Self {
        Column::new(title, key, Align::Left, true, value)
    }

    /// A number, right-aligned.
    pub const fn num(title: &'static str, key: &'static str, value: fn(&R) -> Cell) -> Self {
        Column::new(title, key, Align::Right, false, value)
    }

    const fn new(
        title: &'static str,
        key: &'static str,
        align: Align,
        flex: bool,
        value: fn(&R) -> Cell,
    ) -> Self {
        Column {
            spec: Spec {
                title: Cow::Borrowed(title),
                key: Cow::Borrowed(key),
                align,
                flex,
                show: Show::ALL,
            },
            value,
        }
    }

    /// The same column, shown only in the given formats.
    pub const fn only(mut self, show: Show) -> Self {
        self.spec.show = show;
        self
    }
}

/// A table with its row type erased: what the renderers take.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    /// A line above the table on a terminal (`Links (3)`).
    pub caption: Option<String>,
    pub columns: Vec<Spec>,
    pub rows: Vec<Vec<Cell>>,
}

impl Grid {
    pub fn new<R>(columns: &[Column<R>], rows: &[R]) -> Grid {
        Grid {
            caption: None,
            columns: columns.iter().map(|c| c.spec.clone()).collect(),
            rows: rows
                .iter()
                .map(|r| columns.iter().map(|c| (c.value)(r)).collect())
                .collect(),
        }
    }

    /// The rows as JSON objects, keyed by the columns shown in JSON.
    pub fn json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                let obj: serde_json::Map<String, Value> = self
                    .columns
                    .iter()
                    .zip(r)
                    .filter(|(c, _)| c.show.json)
                    .map(|(c, v)| (c.key.to_string(), v.to_json()))
                    .collect();
                Value::Object(obj)
            })
            .collect()
    }

    /// The same grid with a caption.
    pub fn titled(mut self, caption: impl Into<String>) -> Grid {
        self.caption = Some(caption.into());
        self
    }

    /// The grid with the `NODE` column first: `nodes` gives each row's node,
    /// in row order.
    pub fn with_node(mut self, nodes: impl IntoIterator<Item = Cell>) -> Grid {
        self.columns.insert(0, NODE);
        for (row, node) in self.rows.iter_mut().zip(nodes) {
            row.insert(0, node);
        }
        self
    }

    pub fn has_csv(&self) -> bool {
        self.columns.iter().any(|c| c.show.csv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R {
        name: &'static str,
        bytes: Option<u64>,
    }

    const COLS: [Column<R>; 2] = [
        Column::flex("Name", "name", |r| Cell::text(r.name)),
        Column::num("Memory", "memory_bytes", |r| Cell::Bytes(r.bytes)),
    ];

    #[test]
    fn one_definition_writes_three_formats() {
        let g = Grid::new(
            &COLS,
            &[
                R {
                    name: "a",
                    bytes: Some(1536),
                },
                R {
                    name: "b",
                    bytes: None,
                },
            ],
        );
        assert_eq!(g.rows[0][1].to_text(), "1.5K");
        assert_eq!(g.rows[0][1].to_csv(), "1536");
        assert_eq!(g.rows[1][1].to_text(), "-");
        assert_eq!(g.rows[1][1].to_csv(), "");
        let j = g.json_rows();
        assert_eq!(j[0]["memory_bytes"], 1536);
        assert!(j[1]["memory_bytes"].is_null());
        assert_eq!(j[1]["name"], "b");
    }

    #[test]
    fn the_node_column_is_short_on_a_terminal_and_full_for_scripts() {
        let g = Grid::new(
            &COLS,
            &[R {
                name: "a",
                bytes: Some(1),
            }],
        )
        .with_node([Cell::Node {
            full: "b@db2.example.com".into(),
            short: "b@db2".into(),
        }]);
        assert_eq!(g.columns[0].key, "node");
        assert_eq!(g.columns[0].title, "Node");
        assert_eq!(g.rows[0][0].to_text(), "b@db2");
        assert_eq!(g.rows[0][0].to_csv(), "b@db2.example.com");
        assert_eq!(g.json_rows()[0]["node"], "b@db2.example.com");
        assert_eq!(g.json_rows()[0]["name"], "a");
    }

    #[test]
    fn changes_carry_their_sign() {
        assert_eq!(Cell::Delta(Some(0)).to_text(), "+0");
        assert_eq!(Cell::Delta(Some(-3)).to_text(), "-3");
        assert_eq!(Cell::DeltaBytes(Some(2048)).to_text(), "+2.0K");
        assert_eq!(Cell::DeltaBytes(Some(-300)).to_text(), "-300");
        assert_eq!(Cell::Delta(Some(-3)).to_csv(), "-3");
    }
}
