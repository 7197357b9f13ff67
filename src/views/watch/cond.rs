//! `etop watch`'s conditions: the filter language with the node's own terms
//! and growth, what each condition is about (a process, an ETS table, the
//! node), and how it is judged against one frame.
//!
//! A condition never holds on a value etop does not have: so the fields it
//! cannot read (a process's heap and binaries are not in the sample), a
//! share of a field without a limit, and a name it cannot resolve are
//! refused before any node is asked.

use crate::agent::SortKey;
use crate::agent::sample::Limits;
use crate::text::human_bytes;
use crate::views::ets::EtsRow;
use crate::views::filter::{self, Expr, FieldKind, Fields, Op, ParseError, Subject, Value};
use crate::views::procs::model::Row;
use crate::views::procs::warning::group;
use serde_json::{Map, Value as Json};

const PROCESS: &str = "a process";
const TABLE: &str = "an ETS table";

/// The fields `--fail-if` knows.
pub struct WatchFields;

/// The name a field is known by, whatever the spelling it was given in.
pub fn canonical(field: &str) -> &str {
    match field {
        "msgq" => "mq",
        "memory" => "mem",
        "node.runq" => "runq",
        other => other,
    }
}

impl Fields for WatchFields {
    fn kind(&self, field: &str) -> Option<FieldKind> {
        match canonical(field) {
            "mem" | "node.mem" => Some(FieldKind::Bytes),
            "mq" | "reds" | "reds_pct" | "mq.grows" | "mem.grows" | "ets.mem.grows"
            | "node.procs" | "node.ports" | "node.atoms" | "node.ets" | "runq" => {
                Some(FieldKind::Count)
            }
            _ => None,
        }
    }
    fn known(&self) -> Vec<&'static str> {
        vec![
            "mq",
            "mem",
            "reds",
            "reds_pct",
            "mq.grows",
            "mem.grows",
            "ets.mem.grows",
            "node.mem",
            "node.procs",
            "node.ports",
            "node.atoms",
            "node.ets",
            "runq",
        ]
    }
    fn refused(&self, field: &str) -> Option<String> {
        matches!(field, "heap" | "bin" | "binary").then(|| {
            format!(
                "'{field}' is not in the sample etop watch takes; mem is all of a \
                 process's memory (heap, stack, mailbox)"
            )
        })
    }
    fn has_limit(&self, field: &str) -> bool {
        matches!(
            canonical(field),
            "node.procs" | "node.ports" | "node.atoms" | "node.ets" | "reds_pct"
        )
    }
    fn names(&self, field: &str) -> Option<&'static [&'static str]> {
        Some(match canonical(field) {
            "runq" => &["schedulers"],
            _ => &[],
        })
    }
    fn about(&self, field: &str) -> Option<&'static str> {
        match canonical(field) {
            "mq" | "mem" | "reds" | "reds_pct" | "mq.grows" | "mem.grows" => Some(PROCESS),
            "ets.mem.grows" => Some(TABLE),
            _ => None,
        }
    }
}

/// What a condition is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum About {
    /// Each process in the sample; it holds if it holds for one.
    Process,
    /// Each ETS table in the sample.
    Table,
    /// The node's own numbers.
    Node,
}

/// One `--fail-if`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As typed.
    pub text: String,
    pub expr: Expr,
    pub about: About,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        let expr = filter::parse(text, &WatchFields)?.ok_or_else(|| ParseError {
            column: 1,
            what: "the condition is empty".into(),
        })?;
        let abouts: Vec<&str> = expr
            .comparisons()
            .iter()
            .filter_map(|(f, _, _)| WatchFields.about(f))
            .collect();
        let about = if abouts.contains(&TABLE) {
            About::Table
        } else if abouts.contains(&PROCESS) || expr.has_words() {
            About::Process
        } else {
            About::Node
        };
        Ok(Condition {
            text: text.trim().to_string(),
            expr,
            about,
        })
    }

    /// The sorts whose top rows hold the worst process for each field the
    /// condition reads.
    pub fn keys(&self) -> Vec<SortKey> {
        let mut keys = Vec::new();
        for (field, _, _) in self.expr.comparisons() {
            let key = match canonical(field) {
                "mq" | "mq.grows" => SortKey::Msgq,
                "mem" | "mem.grows" => SortKey::Memory,
                "reds" | "reds_pct" => SortKey::Reductions,
                _ => continue,
            };
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        // Only words: the processes the main view shows first.
        if keys.is_empty() && self.about == About::Process {
            keys.push(SortKey::Reductions);
        }
        keys
    }

    /// The subjects the condition is judged on in `f`.
    pub fn subjects<'a>(&self, f: &'a Snapshot) -> Vec<On<'a>> {
        let node = &f.node;
        match self.about {
            About::Node => vec![On {
                node,
                who: Who::Node,
            }],
            About::Process => f
                .procs
                .iter()
                .map(|p| On {
                    node,
                    who: Who::Proc(p),
                })
                .collect(),
            About::Table => f
                .tables
                .iter()
                .map(|t| On {
                    node,
                    who: Who::Table(t),
                })
                .collect(),
        }
    }

    /// The subject that makes the condition hold in `f`: when several do,
    /// the worst by the first field the condition names.
    pub fn culprit<'a>(&self, f: &'a Snapshot) -> Option<On<'a>> {
        let first = self.expr.comparisons().first().copied();
        let score = |s: &On| -> f64 {
            first
                .and_then(|(field, op, value)| Some(direction(op) * s.measure(field, value)?))
                .unwrap_or(f64::NEG_INFINITY)
        };
        let mut best: Option<(f64, On)> = None;
        for s in self.subjects(f) {
            if !self.expr.holds(&s) {
                continue;
            }
            let v = score(&s);
            if best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, s));
            }
        }
        best.map(|(_, s)| s)
    }
}

/// +1 when larger is worse (`mq>500`), -1 when smaller is.
pub fn direction(op: Op) -> f64 {
    match op {
        Op::Lt | Op::Le => -1.0,
        Op::Gt | Op::Ge | Op::Eq | Op::Ne => 1.0,
    }
}

/// What the node says of itself in a frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    pub node: String,
    /// The node's local time when it took the sample.
    pub clock: Option<String>,
    pub procs: u64,
    pub runq: u64,
    pub schedulers: u32,
    pub memory_bytes: u64,
    pub limits: Option<Limits>,
}

/// A process in a frame, and how its mailbox and memory grew.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcFacts {
    pub row: Row,
    /// Frames in a row its mailbox grew, and from what.
    pub mq_grows: (u32, u64),
    /// Frames in a row its memory grew, and from what.
    pub mem_grows: (u32, u64),
}

/// An ETS table in a frame, and how its memory grew.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFacts {
    pub row: EtsRow,
    /// Frames in a row its memory grew, and from what.
    pub mem_grows: (u32, u64),
}

/// Everything conditions are judged on in one frame of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub node: NodeFacts,
    pub procs: Vec<ProcFacts>,
    pub tables: Vec<TableFacts>,
}

/// Whom a subject is.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    Node,
    Proc(&'a ProcFacts),
    Table(&'a TableFacts),
}

/// One subject of a frame: a process, a table or the node, with the node's
/// numbers at hand for the node terms.
#[derive(Debug, Clone, Copy)]
pub struct On<'a> {
    pub node: &'a NodeFacts,
    pub who: Who<'a>,
}

impl On<'_> {
    /// What `field` compares in this subject: its value, or its share of
    /// the limit when the condition gives a share.
    pub fn measure(&self, field: &str, value: &Value) -> Option<f64> {
        let v = self.number(field)?;
        match value {
            Value::Pct(_) => {
                let limit = self.limit(field).filter(|l| *l > 0.0)?;
                Some(v / limit * 100.0)
            }
            _ => Some(v),
        }
    }

    /// `field` of this subject for a person: `mq 2,178`, `node.procs 90%
    /// (900 of 1,000)`, `mq.grows 5 (mq 1,020 → 4,310)`.
    pub fn show(&self, field: &str, value: &Value) -> Option<String> {
        let f = canonical(field);
        let v = self.number(f)?;
        let amount = |v: f64| -> String {
            match WatchFields.kind(f) {
                Some(FieldKind::Bytes) => human_bytes(v as u64),
                _ if f == "reds_pct" => format!("{v:.1}%"),
                _ => group(v as u64),
            }
        };
        let grown = |(streak, from): (u32, u64), now: u64, bytes: bool, what: &str| {
            let show = |x: u64| if bytes { human_bytes(x) } else { group(x) };
            if streak == 0 {
                format!("{f} 0 ({what}{})", show(now))
            } else {
                format!("{f} {streak} ({what}{} → {})", show(from), show(now))
            }
        };
        Some(match (f, &self.who) {
            ("mq.grows", Who::Proc(p)) => grown(p.mq_grows, p.row.msgq, false, "mq "),
            ("mem.grows", Who::Proc(p)) => grown(p.mem_grows, p.row.memory_bytes, true, "mem "),
            ("ets.mem.grows", Who::Table(t)) => grown(t.mem_grows, t.row.memory_bytes, true, ""),
            _ => match value {
                Value::Pct(_) if f != "reds_pct" => {
                    let limit = self.limit(f).unwrap_or(0.0);
                    let share = if limit > 0.0 { v / limit * 100.0 } else { 0.0 };
                    // A small share keeps a decimal: 0% of a limit reads as
                    // nothing at all.
                    let share = if share < 10.0 {
                        format!("{share:.1}")
                    } else {
                        format!("{share:.0}")
                    };
                    format!("{f} {share}% ({} of {})", amount(v), amount(limit))
                }
                Value::Name(n) => format!(
                    "{f} {} ({n} {})",
                    amount(v),
                    self.name(n).map(&amount).unwrap_or_default()
                ),
                _ => format!("{f} {}", amount(v)),
            },
        })
    }

    /// `field` of this subject for a program: the value, and what the
    /// comparison needed beside it (the limit, the name's value, where a
    /// growth started).
    pub fn json(&self, field: &str, value: &Value, out: &mut Map<String, Json>) {
        let f = canonical(field);
        let Some(v) = self.number(f) else {
            out.insert(f.to_string(), Json::Null);
            return;
        };
        out.insert(f.to_string(), number(v));
        match (f, &self.who) {
            ("mq.grows", Who::Proc(p)) => {
                out.insert("mq.from".into(), p.mq_grows.1.into());
                out.insert("mq".into(), p.row.msgq.into());
            }
            ("mem.grows", Who::Proc(p)) => {
                out.insert("mem.from".into(), p.mem_grows.1.into());
                out.insert("mem".into(), p.row.memory_bytes.into());
            }
            ("ets.mem.grows", Who::Table(t)) => {
                out.insert("ets.mem.from".into(), t.mem_grows.1.into());
                out.insert("ets.mem".into(), t.row.memory_bytes.into());
            }
            _ => {}
        }
        match value {
            Value::Pct(_) => {
                if let Some(l) = self.limit(f) {
                    out.insert(format!("{f}.limit"), number(l));
                }
            }
            Value::Name(n) => {
                if let Some(x) = self.name(n) {
                    out.insert(n.clone(), number(x));
                }
            }
            Value::Num(_) => {}
        }
    }

    /// Who this is, for a line or an event.
    pub fn id(&self) -> Culprit {
        match self.who {
            Who::Node => Culprit::default(),
            Who::Proc(p) => Culprit {
                pid: Some(p.row.pid.clone()),
                name: Some(p.row.name.clone()),
                current_function: Some(p.row.current_function.clone()),
                ..Culprit::default()
            },
            Who::Table(t) => Culprit {
                table: Some(t.row.id.clone()),
                name: Some(t.row.name.clone()),
                owner: Some(t.row.owner.clone()),
                ..Culprit::default()
            },
        }
    }
}

/// A JSON number: integral values as integers.
pub fn number(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Json::from(v as i64)
    } else {
        Json::from(v)
    }
}

/// Who made a condition hold, as events and summaries name it. Every field
/// is always there (null when it does not apply), so consumers read one
/// shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Culprit {
    pub pid: Option<String>,
    /// A process's registered name or initial call; a table's name.
    pub name: Option<String>,
    pub current_function: Option<String>,
    /// A table's id: its name when named, else `#Ref<...>`.
    pub table: Option<String>,
    /// A table's owner.
    pub owner: Option<String>,
}

impl Culprit {
    /// Is `s` this one?
    pub fn is(&self, s: &On) -> bool {
        match s.who {
            Who::Node => self.pid.is_none() && self.table.is_none(),
            Who::Proc(p) => self.pid.as_deref() == Some(p.row.pid.as_str()),
            Who::Table(t) => self.table.as_deref() == Some(t.row.id.as_str()),
        }
    }

    /// `<0.91.0> metrics_worker in timer:sleep/1`, `table demo_cache
    /// (owner <0.90.0>)`, or nothing for the node.
    pub fn line(&self) -> Option<String> {
        if let Some(pid) = &self.pid {
            let mut s = pid.clone();
            if let Some(n) = self.name.as_deref().filter(|n| !n.is_empty()) {
                s.push(' ');
                s.push_str(n);
            }
            if let Some(f) = self.current_function.as_deref().filter(|f| !f.is_empty()) {
                s.push_str(" in ");
                s.push_str(f);
            }
            return Some(s);
        }
        let table = self.table.as_ref()?;
        let mut s = format!("table {table}");
        if let Some(o) = self.owner.as_deref().filter(|o| !o.is_empty()) {
            s.push_str(&format!(" (owner {o})"));
        }
        Some(s)
    }
}

impl Subject for On<'_> {
    fn number(&self, field: &str) -> Option<f64> {
        let n = self.node;
        let limits = n.limits.as_ref();
        let v = match canonical(field) {
            "node.mem" => n.memory_bytes,
            "node.procs" => limits.map_or(n.procs, |l| l.procs.0),
            "node.ports" => limits?.ports.0,
            "node.atoms" => limits?.atoms.0,
            "node.ets" => limits?.ets.0,
            "runq" => n.runq,
            f => {
                return match (&self.who, f) {
                    (Who::Proc(p), "mq") => Some(p.row.msgq as f64),
                    (Who::Proc(p), "mem") => Some(p.row.memory_bytes as f64),
                    (Who::Proc(p), "reds") => p.row.reds.map(|r| r as f64),
                    (Who::Proc(p), "reds_pct") => p.row.reds_pct,
                    (Who::Proc(p), "mq.grows") => Some(p.mq_grows.0 as f64),
                    (Who::Proc(p), "mem.grows") => Some(p.mem_grows.0 as f64),
                    (Who::Table(t), "ets.mem.grows") => Some(t.mem_grows.0 as f64),
                    _ => None,
                };
            }
        };
        Some(v as f64)
    }

    fn texts(&self) -> Vec<&str> {
        match &self.who {
            Who::Node => vec![self.node.node.as_str()],
            Who::Proc(p) => {
                let mut t = vec![p.row.name.as_str(), p.row.current_function.as_str()];
                t.extend(p.row.initial_call.as_deref());
                t
            }
            Who::Table(t) => vec![t.row.name.as_str(), t.row.id.as_str(), t.row.owner.as_str()],
        }
    }

    fn limit(&self, field: &str) -> Option<f64> {
        let l = self.node.limits.as_ref()?;
        let v = match canonical(field) {
            "node.procs" => l.procs.1,
            "node.ports" => l.ports.1,
            "node.atoms" => l.atoms.1,
            "node.ets" => l.ets.1,
            "reds_pct" => 100,
            _ => return None,
        };
        Some(v as f64)
    }

    fn name(&self, name: &str) -> Option<f64> {
        (name == "schedulers" && self.node.schedulers > 0).then_some(self.node.schedulers as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn proc_row(pid: &str, name: &str, msgq: u64, mem: u64) -> Row {
        Row {
            pid: pid.into(),
            name: name.into(),
            registered_name: Some(name.into()),
            initial_call: None,
            reds: Some(10),
            reds_pct: Some(12.5),
            reds_kind: Some("window"),
            memory_bytes: mem,
            heap_bytes: None,
            bin_bytes: None,
            msgq,
            current_function: "timer:sleep/1".into(),
            warn: false,
        }
    }

    fn node() -> NodeFacts {
        NodeFacts {
            node: "demo@h".into(),
            clock: None,
            procs: 900,
            runq: 3,
            schedulers: 2,
            memory_bytes: 5 << 30,
            limits: Some(Limits {
                procs: (900, 1000),
                ports: (10, 1000),
                atoms: (100, 1000),
                ets: (20, 100),
            }),
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            node: node(),
            procs: vec![
                ProcFacts {
                    row: proc_row("<0.1.0>", "flat_box", 5000, 1 << 20),
                    mq_grows: (0, 5000),
                    mem_grows: (0, 1 << 20),
                },
                ProcFacts {
                    row: proc_row("<0.2.0>", "metrics_worker", 800, 2 << 20),
                    mq_grows: (4, 100),
                    mem_grows: (1, 1 << 20),
                },
            ],
            tables: Vec::new(),
        }
    }

    fn c(s: &str) -> Condition {
        Condition::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn what_a_condition_is_about_and_which_sorts_it_needs() {
        assert_eq!(c("mq>500").about, About::Process);
        assert_eq!(c("mq>500").keys(), [SortKey::Msgq]);
        assert_eq!(
            c("mem.grows>=3 or reds_pct>50").keys(),
            [SortKey::Memory, SortKey::Reductions]
        );
        assert_eq!(c("node.procs>80%").about, About::Node);
        assert!(c("node.procs>80%").keys().is_empty());
        assert_eq!(c("runq>schedulers").about, About::Node);
        assert_eq!(c("ets.mem.grows>=5").about, About::Table);
        assert!(c("ets.mem.grows>=5").keys().is_empty());
        assert_eq!(c("worker").about, About::Process);
        assert_eq!(c("worker").keys(), [SortKey::Reductions]);
        assert_eq!(c("msgq>1 and node.mem>1G").keys(), [SortKey::Msgq]);
    }

    #[test]
    fn what_watch_refuses_before_connecting() {
        for (text, column, says) in [
            ("heap>1M", 1, "not in the sample"),
            ("node.mem>80%", 10, "no limit"),
            ("mq>80%", 4, "no limit"),
            ("runq>cores", 6, "schedulers"),
            ("mq.grows>=3 or ets.mem.grows>=3", 16, "two conditions"),
            ("mq>>5", 4, "needs a value"),
            ("   ", 1, "empty"),
        ] {
            let e = Condition::parse(text).unwrap_err();
            assert_eq!(e.column, column, "{text}: {e}");
            assert!(e.what.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_process_condition_names_the_worst_process_that_holds() {
        let f = snapshot();
        let culprit = c("mq>500").culprit(&f).unwrap();
        assert_eq!(culprit.id().pid.as_deref(), Some("<0.1.0>"));
        assert_eq!(
            culprit.id().line().unwrap(),
            "<0.1.0> flat_box in timer:sleep/1"
        );
        assert_eq!(culprit.show("mq", &Value::Num(500.0)).unwrap(), "mq 5,000");
        // Words pick the process; the number judges it.
        let w = c("mq>500 and worker").culprit(&f).unwrap();
        assert_eq!(w.id().name.as_deref(), Some("metrics_worker"));
        assert!(c("mq>5000").culprit(&f).is_none());
        // Growth: only the one that grew in four frames in a row.
        let g = c("mq.grows>=3").culprit(&f).unwrap();
        assert_eq!(g.id().pid.as_deref(), Some("<0.2.0>"));
        assert_eq!(
            g.show("mq.grows", &Value::Num(3.0)).unwrap(),
            "mq.grows 4 (mq 100 → 800)"
        );
        let mut j = Map::new();
        g.json("mq.grows", &Value::Num(3.0), &mut j);
        assert_eq!(
            Json::Object(j),
            serde_json::json!({"mq.grows": 4, "mq.from": 100, "mq": 800})
        );
        assert!(c("mq.grows>=5").culprit(&f).is_none());
        // The smaller the worse, for `<`.
        let low = c("mem<3M").culprit(&f).unwrap();
        assert_eq!(low.id().pid.as_deref(), Some("<0.1.0>"));
    }

    #[test]
    fn node_terms_shares_and_names() {
        let f = snapshot();
        let on = c("node.procs>80%").culprit(&f).unwrap();
        assert_eq!(on.id(), Culprit::default());
        assert_eq!(on.id().line(), None);
        assert_eq!(
            on.show("node.procs", &Value::Pct(80.0)).unwrap(),
            "node.procs 90% (900 of 1,000)"
        );
        assert_eq!(on.measure("node.procs", &Value::Pct(80.0)), Some(90.0));
        assert!(c("node.procs>95%").culprit(&f).is_none());
        assert!(c("node.atoms>=10%").culprit(&f).is_some());
        assert!(c("node.ets>20%").culprit(&f).is_none());
        assert!(c("node.mem>4G").culprit(&f).is_some());
        assert!(c("node.mem>6G").culprit(&f).is_none());
        let r = c("runq>schedulers").culprit(&f).unwrap();
        assert_eq!(
            r.show("runq", &Value::Name("schedulers".into())).unwrap(),
            "runq 3 (schedulers 2)"
        );
        assert!(c("runq>=4").culprit(&f).is_none());
        // A process condition with a node term: both must hold.
        assert!(c("mq>500 and node.mem>4G").culprit(&f).is_some());
        assert!(c("mq>500 and node.mem>6G").culprit(&f).is_none());
        assert!(c("reds_pct>10%").culprit(&f).is_some());
    }

    #[test]
    fn a_table_condition_reads_tables() {
        let mut f = snapshot();
        f.tables.push(TableFacts {
            row: EtsRow {
                name: "demo_cache".into(),
                id: "demo_cache".into(),
                owner: "<0.90.0>".into(),
                kind: "set".into(),
                protection: "public".into(),
                size: 10,
                memory_bytes: 4096,
                size_growth: Some(1),
                memory_growth_bytes: Some(100),
            },
            mem_grows: (5, 1024),
        });
        let t = c("ets.mem.grows>=5").culprit(&f).unwrap();
        assert_eq!(t.id().line().unwrap(), "table demo_cache (owner <0.90.0>)");
        assert_eq!(
            t.show("ets.mem.grows", &Value::Num(5.0)).unwrap(),
            "ets.mem.grows 5 (1.0K → 4.0K)"
        );
        assert!(c("ets.mem.grows>=5 and cache").culprit(&f).is_some());
        assert!(c("ets.mem.grows>=5 and sessions").culprit(&f).is_none());
        assert!(c("ets.mem.grows>=6").culprit(&f).is_none());
    }
}
