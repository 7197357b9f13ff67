//! The filter language, one parser for the `/` prompt, `--filter` and
//! `etop watch --fail-if`: conditions on a process's numbers (`mq>100
//! mem>10M reds>1000`), words that must appear in its name, initial call or
//! current function, joined by `and` (or nothing) and `or`, with
//! parentheses. Fields are dotted names; which ones a context knows is the
//! caller's to say, so a bad field is an error at its position, before any
//! node is asked.
//!
//! Numbers take a unit: `K`, `M`, `G`, `T` are powers of 1024 for fields
//! counted in bytes and of 1000 for the others; `%` marks a share of a
//! limit (`node.procs>80%`).

use std::fmt;

/// A comparison: the agent's, so that a filter goes to the node as typed.
pub use crate::agent::CmpOp as Op;

/// The right side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, units applied.
    Num(f64),
    /// A share of the field's limit, in percent.
    Pct(f64),
    /// A name the context resolves (`runq>schedulers`).
    Name(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every part holds.
    All(Vec<Expr>),
    /// Some part holds.
    Any(Vec<Expr>),
    /// `field op value`.
    Cmp { field: String, op: Op, value: Value },
    /// A word that must appear in the name, the initial call or the current
    /// function (case-insensitive).
    Word(String),
}

/// What a context knows of its fields. The defaults take any value for a
/// known field, as the process table's filter does; a context that must
/// never hold a condition that cannot come true (`etop watch`) says more.
pub trait Fields {
    /// Is `field` known here; is it counted in bytes?
    fn kind(&self, field: &str) -> Option<FieldKind>;
    /// The fields known, for the error line.
    fn known(&self) -> Vec<&'static str>;
    /// Why a field known elsewhere is refused here, for the error line.
    fn refused(&self, _field: &str) -> Option<String> {
        None
    }
    /// Does `field` have a limit, so that `field>80%` means something?
    fn has_limit(&self, _field: &str) -> bool {
        true
    }
    /// The names `field` may be compared with (`runq>schedulers`); `None`
    /// takes any name.
    fn names(&self, _field: &str) -> Option<&'static [&'static str]> {
        None
    }
    /// What `field` is about (`"a process"`, `"an ETS table"`): fields about
    /// different things cannot meet in one expression, since no one thing
    /// has both. `None` (the node's fields) goes with anything.
    fn about(&self, _field: &str) -> Option<&'static str> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Units are powers of 1024.
    Bytes,
    /// Units are powers of 1000.
    Count,
}

/// A filter that does not parse: what, and at which character (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub what: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.column, self.what)
    }
}

impl std::error::Error for ParseError {}

/// The fields of the process table.
pub struct ProcFields;

impl Fields for ProcFields {
    fn kind(&self, field: &str) -> Option<FieldKind> {
        match field {
            "mem" | "memory" | "heap" | "bin" | "binary" => Some(FieldKind::Bytes),
            "mq" | "msgq" | "reds" | "reds_pct" => Some(FieldKind::Count),
            _ => None,
        }
    }
    fn known(&self) -> Vec<&'static str> {
        vec!["mq", "mem", "reds", "reds_pct", "heap", "bin"]
    }
}

/// Parses `text` for a context whose fields are `fields`. An empty filter
/// is `None`.
pub fn parse(text: &str, fields: &dyn Fields) -> Result<Option<Expr>, ParseError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        tokens,
        at: 0,
        fields,
        end: text.chars().count() + 1,
        about: None,
    };
    let e = p.any()?;
    if let Some(t) = p.tokens.get(p.at) {
        return Err(ParseError {
            column: t.column,
            what: format!("unexpected '{}'", t.text),
        });
    }
    Ok(Some(e))
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    text: String,
    column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word,
    Op(Op),
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (kind, len) = match c {
            '(' => (Tok::Open, 1),
            ')' => (Tok::Close, 1),
            '>' | '<' | '=' | '!' => {
                let two = chars.get(i + 1) == Some(&'=');
                let op = match (c, two) {
                    ('>', true) => Op::Ge,
                    ('>', false) => Op::Gt,
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    ('=', _) => Op::Eq,
                    ('!', true) => Op::Ne,
                    _ => {
                        return Err(ParseError {
                            column,
                            what: "'!' must be followed by '='".into(),
                        });
                    }
                };
                let len = if two && c != '=' { 2 } else { 1 };
                // `==` is `=`.
                let len = if c == '=' && two { 2 } else { len };
                (Tok::Op(op), len)
            }
            _ => {
                let mut j = i;
                while j < chars.len() && !chars[j].is_whitespace() && !"()<>=!".contains(chars[j]) {
                    j += 1;
                }
                (Tok::Word, j - i)
            }
        };
        out.push(Token {
            kind,
            text: chars[i..i + len].iter().collect(),
            column,
        });
        i += len;
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    fields: &'a dyn Fields,
    end: usize,
    /// The first field that said what the expression is about, and that.
    about: Option<(String, &'static str)>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn is_word(&self, w: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == Tok::Word && t.text.eq_ignore_ascii_case(w))
    }

    fn any(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.all()?];
        while self.is_word("or") {
            self.at += 1;
            parts.push(self.all()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Any(parts)
        })
    }

    fn all(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.term()?];
        loop {
            if self.is_word("and") {
                self.at += 1;
                parts.push(self.term()?);
                continue;
            }
            match self.peek() {
                Some(t) if t.kind == Tok::Close => break,
                Some(_) if self.is_word("or") => break,
                Some(_) => parts.push(self.term()?),
                None => break,
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::All(parts)
        })
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let Some(t) = self.peek().cloned() else {
            return Err(ParseError {
                column: self.end,
                what: "a condition is missing at the end".into(),
            });
        };
        self.at += 1;
        match t.kind {
            Tok::Open => {
                let e = self.any()?;
                match self.peek() {
                    Some(c) if c.kind == Tok::Close => {
                        self.at += 1;
                        Ok(e)
                    }
                    _ => Err(ParseError {
                        column: t.column,
                        what: "this '(' is not closed".into(),
                    }),
                }
            }
            Tok::Close => Err(ParseError {
                column: t.column,
                what: "')' without '('".into(),
            }),
            Tok::Op(_) => Err(ParseError {
                column: t.column,
                what: format!(
                    "'{}' needs a field before it, as in mq{}100",
                    t.text, t.text
                ),
            }),
            Tok::Word => match self.peek() {
                Some(Token {
                    kind: Tok::Op(op), ..
                }) => {
                    let op = *op;
                    self.at += 1;
                    self.comparison(&t, op)
                }
                _ => Ok(Expr::Word(t.text.to_lowercase())),
            },
        }
    }

    fn comparison(&mut self, field: &Token, op: Op) -> Result<Expr, ParseError> {
        let name = field.text.to_lowercase();
        let Some(kind) = self.fields.kind(&name) else {
            return Err(ParseError {
                column: field.column,
                what: self.fields.refused(&name).unwrap_or_else(|| {
                    format!(
                        "unknown field '{}' (known: {})",
                        field.text,
                        self.fields.known().join(", ")
                    )
                }),
            });
        };
        if let Some(about) = self.fields.about(&name) {
            match &self.about {
                Some((first, was)) if *was != about => {
                    return Err(ParseError {
                        column: field.column,
                        what: format!(
                            "'{}' is about {about} and '{first}' about {was}: \
                             give them as two conditions",
                            field.text
                        ),
                    });
                }
                Some(_) => {}
                None => self.about = Some((field.text.clone(), about)),
            }
        }
        let Some(v) = self.peek().cloned().filter(|t| t.kind == Tok::Word) else {
            return Err(ParseError {
                column: self.peek().map(|t| t.column).unwrap_or(self.end),
                what: format!("'{}{}' needs a value", field.text, op.text()),
            });
        };
        self.at += 1;
        let value = value(&v, kind)?;
        match &value {
            Value::Pct(_) if !self.fields.has_limit(&name) => {
                return Err(ParseError {
                    column: v.column,
                    what: format!(
                        "'{}' has no limit to take a share of; give an amount",
                        field.text
                    ),
                });
            }
            Value::Name(n) => {
                if let Some(names) = self.fields.names(&name)
                    && !names.contains(&n.as_str())
                {
                    return Err(ParseError {
                        column: v.column,
                        what: if names.is_empty() {
                            format!("'{}' is not a number", v.text)
                        } else {
                            format!(
                                "'{}' is not a number or a name '{}' knows ({})",
                                v.text,
                                field.text,
                                names.join(", ")
                            )
                        },
                    });
                }
            }
            _ => {}
        }
        Ok(Expr::Cmp {
            field: name,
            op,
            value,
        })
    }
}

fn value(t: &Token, kind: FieldKind) -> Result<Value, ParseError> {
    let s = t.text.as_str();
    if let Some(p) = s.strip_suffix('%') {
        return p
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Value::Pct)
            .ok_or_else(|| ParseError {
                column: t.column,
                what: format!("'{s}' is not a percentage"),
            });
    }
    if s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Ok(Value::Name(s.to_lowercase()));
    }
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let base: f64 = match kind {
        FieldKind::Bytes => 1024.0,
        FieldKind::Count => 1000.0,
    };
    let power = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" => 0,
        "K" => 1,
        "M" => 2,
        "G" => 3,
        "T" => 4,
        _ => {
            return Err(ParseError {
                column: t.column + split,
                what: format!("'{unit}' is not a unit (K, M, G, T)"),
            });
        }
    };
    let n: f64 = num
        .replace('_', "")
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| ParseError {
            column: t.column,
            what: format!("'{s}' is not a number"),
        })?;
    Ok(Value::Num(n * base.powi(power)))
}

/// What a filter is evaluated against for one process.
pub trait Subject {
    /// A number of the subject; `None` when unknown (the condition fails).
    fn number(&self, field: &str) -> Option<f64>;
    /// The texts a word may appear in.
    fn texts(&self) -> Vec<&str>;
    /// `field`'s limit, for a percentage.
    fn limit(&self, _field: &str) -> Option<f64> {
        None
    }
    /// A named value (`schedulers`).
    fn name(&self, _name: &str) -> Option<f64> {
        None
    }
}

impl Expr {
    /// Does the filter hold for `s`?
    pub fn holds(&self, s: &dyn Subject) -> bool {
        match self {
            Expr::All(parts) => parts.iter().all(|e| e.holds(s)),
            Expr::Any(parts) => parts.iter().any(|e| e.holds(s)),
            Expr::Word(w) => s.texts().iter().any(|t| t.to_lowercase().contains(w)),
            Expr::Cmp { field, op, value } => {
                let Some(a) = s.number(field) else {
                    return false;
                };
                let b = match value {
                    Value::Num(n) => Some(*n),
                    Value::Pct(p) => s.limit(field).map(|l| l * p / 100.0),
                    Value::Name(n) => s.name(n),
                };
                b.is_some_and(|b| op.holds(a, b))
            }
        }
    }

    /// Every comparison in the filter, for callers that need to know which
    /// fields to read.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Expr::All(p) | Expr::Any(p) => p.iter().flat_map(Expr::fields).collect(),
            Expr::Cmp { field, .. } => vec![field.as_str()],
            Expr::Word(_) => Vec::new(),
        }
    }

    /// Every comparison, in the order written.
    pub fn comparisons(&self) -> Vec<(&str, Op, &Value)> {
        match self {
            Expr::All(p) | Expr::Any(p) => p.iter().flat_map(Expr::comparisons).collect(),
            Expr::Cmp { field, op, value } => vec![(field.as_str(), *op, value)],
            Expr::Word(_) => Vec::new(),
        }
    }

    /// Does `s` fit the filter's words, taking every comparison as true?
    /// Which subjects a filter is about, whatever their numbers.
    pub fn words_fit(&self, s: &dyn Subject) -> bool {
        match self {
            Expr::All(parts) => parts.iter().all(|e| e.words_fit(s)),
            Expr::Any(parts) => parts.iter().any(|e| e.words_fit(s)),
            Expr::Word(_) => self.holds(s),
            Expr::Cmp { .. } => true,
        }
    }

    /// Does the filter use words (names, functions)?
    pub fn has_words(&self) -> bool {
        match self {
            Expr::All(p) | Expr::Any(p) => p.iter().any(Expr::has_words),
            Expr::Word(_) => true,
            Expr::Cmp { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s, &ProcFields).unwrap().unwrap()
    }

    fn err(s: &str) -> ParseError {
        parse(s, &ProcFields).unwrap_err()
    }

    struct P {
        mq: f64,
        mem: f64,
        name: &'static str,
    }

    impl Subject for P {
        fn number(&self, field: &str) -> Option<f64> {
            match field {
                "mq" => Some(self.mq),
                "mem" => Some(self.mem),
                _ => None,
            }
        }
        fn texts(&self) -> Vec<&str> {
            vec![self.name]
        }
    }

    #[test]
    fn conditions_words_and_or() {
        assert_eq!(
            p("mq>100"),
            Expr::Cmp {
                field: "mq".into(),
                op: Op::Gt,
                value: Value::Num(100.0)
            }
        );
        assert_eq!(
            p("mem>=10M"),
            Expr::Cmp {
                field: "mem".into(),
                op: Op::Ge,
                value: Value::Num(10.0 * 1024.0 * 1024.0)
            }
        );
        assert!(matches!(p("mq>1k reds>1000"), Expr::All(v) if v.len() == 2));
        assert!(matches!(p("worker or mq>5"), Expr::Any(v) if v.len() == 2));
        assert!(matches!(p("(mq>1 or mem>1) and worker"), Expr::All(v) if v.len() == 2));
        assert_eq!(parse("  ", &ProcFields), Ok(None));
        let worker = P {
            mq: 2000.0,
            mem: 1.0,
            name: "metrics_worker",
        };
        assert!(p("mq>1k").holds(&worker));
        assert!(p("WORKER mq>=2000").holds(&worker));
        assert!(!p("mq>1k and mem>1K").holds(&worker));
        assert!(p("mq>1M or metrics").holds(&worker));
        assert!(!p("reds>1").holds(&worker), "unknown values never hold");
    }

    #[test]
    fn errors_say_where() {
        let e = err("mq>100 foo>3");
        assert_eq!(e.column, 8);
        assert!(e.what.contains("unknown field 'foo'"), "{e}");
        assert!(e.what.contains("mq, mem"), "{e}");
        assert_eq!(err("mq>").what, "'mq>' needs a value");
        assert_eq!(err("mq>10X").column, 6);
        assert_eq!(err("(mq>1").column, 1);
        assert_eq!(err("mq>1)").column, 5);
        assert_eq!(err(">5").column, 1);
        assert!(err("mq>abc%").what.contains("percentage"));
        assert_eq!(err("mq>1 and").what, "a condition is missing at the end");
    }

    /// A context that says more than the process table's: a field with a
    /// limit, one compared with a name, fields about two different things.
    struct Strict;

    impl Fields for Strict {
        fn kind(&self, field: &str) -> Option<FieldKind> {
            match field {
                "mq" | "node.procs" | "runq" | "ets.mem.grows" => Some(FieldKind::Count),
                "node.mem" => Some(FieldKind::Bytes),
                _ => None,
            }
        }
        fn known(&self) -> Vec<&'static str> {
            vec!["mq", "node.procs", "node.mem", "runq", "ets.mem.grows"]
        }
        fn refused(&self, field: &str) -> Option<String> {
            (field == "heap").then(|| "'heap' is not sampled here".to_string())
        }
        fn has_limit(&self, field: &str) -> bool {
            field == "node.procs"
        }
        fn names(&self, field: &str) -> Option<&'static [&'static str]> {
            Some(if field == "runq" {
                &["schedulers"]
            } else {
                &[]
            })
        }
        fn about(&self, field: &str) -> Option<&'static str> {
            match field {
                "mq" => Some("a process"),
                "ets.mem.grows" => Some("an ETS table"),
                _ => None,
            }
        }
    }

    fn strict(s: &str) -> Result<Expr, ParseError> {
        parse(s, &Strict).map(|e| e.expect("not empty"))
    }

    #[test]
    fn dotted_fields_shares_and_names() {
        assert_eq!(
            strict("node.procs>80%").unwrap(),
            Expr::Cmp {
                field: "node.procs".into(),
                op: Op::Gt,
                value: Value::Pct(80.0)
            }
        );
        assert_eq!(
            strict("node.mem>4G").unwrap(),
            Expr::Cmp {
                field: "node.mem".into(),
                op: Op::Gt,
                value: Value::Num(4.0 * 1024.0 * 1024.0 * 1024.0)
            }
        );
        assert_eq!(
            strict("runq>schedulers").unwrap(),
            Expr::Cmp {
                field: "runq".into(),
                op: Op::Gt,
                value: Value::Name("schedulers".into())
            }
        );
        assert!(strict("ets.mem.grows>=5 and node.mem>1G").is_ok());
        assert!(strict("(mq>5 or node.procs>1) and worker").is_ok());
    }

    #[test]
    fn a_strict_context_refuses_what_could_never_hold() {
        let e = strict("mq>1 and node.mem>80%").unwrap_err();
        assert_eq!(e.column, 19, "{e}");
        assert!(e.what.contains("no limit"), "{e}");
        let e = strict("runq>cpus").unwrap_err();
        assert_eq!(e.column, 6, "{e}");
        assert!(e.what.contains("schedulers"), "{e}");
        let e = strict("mq>lots").unwrap_err();
        assert_eq!(e.what, "'lots' is not a number");
        let e = strict("heap>1M").unwrap_err();
        assert_eq!(
            (e.column, e.what.as_str()),
            (1, "'heap' is not sampled here")
        );
        let e = strict("mq>5 or ets.mem.grows>=3").unwrap_err();
        assert_eq!(e.column, 9, "{e}");
        assert!(
            e.what
                .contains("about an ETS table and 'mq' about a process"),
            "{e}"
        );
        // The process table's filter keeps taking what it took.
        assert!(parse("mq>80%", &ProcFields).is_ok());
        assert!(parse("mq>schedulers", &ProcFields).is_ok());
    }

    #[test]
    fn comparisons_and_words_apart() {
        let e = p("(mq>1 or mem<2) and worker");
        let c = e.comparisons();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].0, c[0].1), ("mq", Op::Gt));
        assert_eq!((c[1].0, c[1].1), ("mem", Op::Lt));
        let worker = P {
            mq: 0.0,
            mem: 9.0,
            name: "metrics_worker",
        };
        let other = P {
            mq: 0.0,
            mem: 9.0,
            name: "init",
        };
        assert!(!e.holds(&worker));
        assert!(e.words_fit(&worker), "numbers aside, the words select it");
        assert!(!e.words_fit(&other));
        assert!(p("mq>1").words_fit(&other), "no words select everything");
    }
}
