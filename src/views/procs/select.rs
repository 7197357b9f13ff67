//! Which processes the table shows: the filter as the agent evaluates it on
//! the node (so that a filtered top N is the true top N of the processes that
//! match), and the same filter judged again on the rows etop receives, for
//! the one thing the node cannot always know: reductions in the window.

use super::model::Row;
use crate::agent::{CmpOp, NodeFilter, NodeItem};
use crate::views::filter::{Expr, Op, Subject, Value};

/// `value op x` for whole numbers `value`, with `x` made whole so that the
/// answer does not change: `> 2.5` is `> 2`, `>= 2.5` is `>= 3`.
fn whole(o: Op, x: f64) -> Result<(CmpOp, u64), bool> {
    let x = x.max(0.0);
    if x.fract() == 0.0 {
        return Ok((o, x as u64));
    }
    match o {
        Op::Gt | Op::Le => Ok((o, x.floor() as u64)),
        Op::Ge | Op::Lt => Ok((o, x.ceil() as u64)),
        // A whole number is never equal to 2.5, and always different.
        Op::Eq => Err(false),
        Op::Ne => Err(true),
    }
}

/// What is always (`true`) or never (`false`) so, as a filter.
fn constant(b: bool) -> NodeFilter {
    if b {
        NodeFilter::All(Vec::new())
    } else {
        NodeFilter::Any(Vec::new())
    }
}

/// The filter as the agent takes it.
pub fn on_node(e: &Expr) -> NodeFilter {
    node_filter(e, false)
}

/// The part of `e` the node can judge, for an expression that also speaks of
/// things the node does not compare per process (`node.mem`, `mq.grows`):
/// those let every process through, and etop judges them itself.
pub fn on_node_lenient(e: &Expr) -> NodeFilter {
    node_filter(e, true)
}

fn node_filter(e: &Expr, lenient: bool) -> NodeFilter {
    let on_node = |e: &Expr| node_filter(e, lenient);
    match e {
        Expr::All(v) => NodeFilter::All(v.iter().map(on_node).collect()),
        Expr::Any(v) => NodeFilter::Any(v.iter().map(on_node).collect()),
        Expr::Word(w) => NodeFilter::Word(w.to_lowercase()),
        Expr::Cmp {
            field,
            op: o,
            value,
        } => {
            let x = match value {
                Value::Num(x) | Value::Pct(x) => *x,
                // No process field is compared with a name.
                Value::Name(_) => return constant(lenient),
            };
            if field == "reds_pct" {
                let (c, milli) = match whole(*o, x * 1000.0) {
                    Ok(w) => w,
                    Err(b) => return constant(b),
                };
                return NodeFilter::RedsPct { op: c, milli };
            }
            let (c, value) = match whole(*o, x) {
                Ok(w) => w,
                Err(b) => return constant(b),
            };
            let item = match field.as_str() {
                "mq" | "msgq" => NodeItem::Msgq,
                "mem" | "memory" => NodeItem::Memory,
                "heap" => NodeItem::Heap,
                "bin" | "binary" => NodeItem::Binary,
                "reds" => return NodeFilter::Reds { op: c, value },
                // The process table's parser knows no other field.
                _ => return constant(lenient),
            };
            NodeFilter::Cmp { item, op: c, value }
        }
    }
}

/// Does the filter compare reductions in the window?
pub fn needs_reds(e: &Expr) -> bool {
    match e {
        Expr::All(v) | Expr::Any(v) => v.iter().any(needs_reds),
        Expr::Cmp { field, .. } => field == "reds" || field == "reds_pct",
        Expr::Word(_) => false,
    }
}

/// A row as the filter sees it. A number the row does not have (reductions
/// before a row was seen twice, heap in a table sorted by something else)
/// is a condition that cannot be judged here: the node judged it.
struct RowSubject<'a>(&'a Row);

impl Subject for RowSubject<'_> {
    fn number(&self, field: &str) -> Option<f64> {
        let r = self.0;
        match field {
            "mq" | "msgq" => Some(r.msgq as f64),
            "mem" | "memory" => Some(r.memory_bytes as f64),
            "heap" => r.heap_bytes.map(|v| v as f64),
            "bin" | "binary" => r.bin_bytes.map(|v| v as f64),
            "reds" => r.reds.map(|v| v as f64),
            "reds_pct" => r.reds_pct,
            _ => None,
        }
    }
    fn texts(&self) -> Vec<&str> {
        let r = self.0;
        let mut t = vec![r.name.as_str(), r.current_function.as_str()];
        t.extend(r.registered_name.as_deref());
        t.extend(r.initial_call.as_deref());
        t
    }
    fn limit(&self, _field: &str) -> Option<f64> {
        // `reds_pct>5%` is a share already.
        Some(100.0)
    }
}

/// Judges the rows of a frame whose reductions the node could not compare
/// (it ranked by something else): conditions on reductions are judged with
/// the rows' own numbers; a row whose reductions are not known yet stays.
pub fn keep(e: &Expr, r: &Row) -> bool {
    match e {
        Expr::All(v) => v.iter().all(|x| keep(x, r)),
        Expr::Any(v) => v.iter().any(|x| keep(x, r)),
        Expr::Cmp { field, .. } if (field == "reds" || field == "reds_pct") => {
            let known = match field.as_str() {
                "reds" => r.reds.is_some(),
                _ => r.reds_pct.is_some(),
            };
            !known || e.holds(&RowSubject(r))
        }
        // The node judged the rest, with fresher numbers than the row's.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::filter::{ProcFields, parse};

    fn f(text: &str) -> Expr {
        parse(text, &ProcFields).unwrap().unwrap()
    }

    #[test]
    fn conditions_become_whole_numbers_the_node_compares() {
        assert_eq!(
            on_node(&f("mq>100 mem>=1.5K")),
            NodeFilter::All(vec![
                NodeFilter::Cmp {
                    item: NodeItem::Msgq,
                    op: CmpOp::Gt,
                    value: 100
                },
                NodeFilter::Cmp {
                    item: NodeItem::Memory,
                    op: CmpOp::Ge,
                    value: 1536
                },
            ])
        );
        assert_eq!(
            on_node(&f("mq>2.5")),
            NodeFilter::Cmp {
                item: NodeItem::Msgq,
                op: CmpOp::Gt,
                value: 2
            }
        );
        assert_eq!(
            on_node(&f("mq>=2.5")),
            NodeFilter::Cmp {
                item: NodeItem::Msgq,
                op: CmpOp::Ge,
                value: 3
            }
        );
        assert_eq!(on_node(&f("mq=2.5")), NodeFilter::Any(vec![]));
        assert_eq!(
            on_node(&f("Worker or reds_pct>12.5")),
            NodeFilter::Any(vec![
                NodeFilter::Word("worker".into()),
                NodeFilter::RedsPct {
                    op: CmpOp::Gt,
                    milli: 12_500
                },
            ])
        );
    }

    fn row(reds: Option<u64>) -> Row {
        Row {
            pid: "<0.1.0>".into(),
            name: "w".into(),
            registered_name: None,
            initial_call: None,
            reds,
            reds_pct: None,
            reds_kind: None,
            memory_bytes: 0,
            heap_bytes: None,
            bin_bytes: None,
            msgq: 0,
            current_function: String::new(),
            warn: false,
        }
    }

    #[test]
    fn rows_are_judged_on_reductions_only_when_they_are_known() {
        let e = f("mq>5 reds>1000");
        assert!(needs_reds(&e));
        assert!(!needs_reds(&f("mq>5 worker")));
        assert!(keep(&e, &row(Some(2000))));
        assert!(!keep(&e, &row(Some(10))));
        assert!(keep(&e, &row(None)), "unknown: the row stays");
        // mq is the node's to judge: the row's (older) number is not used.
        assert!(keep(&f("mq>5"), &row(Some(10))));
        let either = f("worker or reds>1000");
        assert!(keep(&either, &row(Some(10))), "the word side is the node's");
    }
}
