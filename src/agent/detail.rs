//! One process in detail, as the agent answers a detail request, decoded.

use super::sample::{Mfa, ProcId};
use crate::dist::term::{self, Term};
use std::time::Instant;

/// A stack frame: the function and where in its source.
#[derive(Debug, Clone, PartialEq)]
pub struct StackFrame {
    pub function: Mfa,
    pub file: Option<String>,
    pub line: Option<i64>,
}

/// A process, port or other id a process is tied to, with its registered
/// name when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub id: String,
    pub name: Option<String>,
}

/// The first few of a list, and how long the whole list is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirstOf {
    pub first: Vec<Peer>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcDetail {
    pub pid: ProcId,
    pub taken_at: Instant,
    pub registered_name: Option<String>,
    pub initial_call: Option<Mfa>,
    pub current_function: Option<Mfa>,
    pub stack: Vec<StackFrame>,
    pub status: String,
    pub message_queue_len: u64,
    pub memory_bytes: u64,
    pub heap_bytes: u64,
    pub total_heap_bytes: u64,
    pub stack_bytes: u64,
    pub reductions: u64,
    pub minor_gcs: Option<u64>,
    pub fullsweep_after: Option<u64>,
    pub links: FirstOf,
    pub monitors: FirstOf,
    pub monitored_by: FirstOf,
    pub trap_exit: bool,
    pub priority: String,
    pub group_leader: Option<String>,
    pub parent: Option<String>,
    /// `None` where the node cannot tell without reading the whole
    /// dictionary (before OTP 26).
    pub ancestors: Option<Vec<String>>,
    pub binary_bytes: u64,
    pub binary_count: u64,
}

fn mfa(t: &Term) -> Option<Mfa> {
    term::mfa(t).map(|(module, function, arity)| Mfa {
        module,
        function,
        arity,
    })
}

/// A pid, port or name as the node's shell prints it.
fn id(t: &Term) -> String {
    match t {
        Term::Pid(p) => ProcId {
            id: p.id,
            serial: p.serial,
        }
        .to_string(),
        // {RegName, Node} of a monitor by name.
        Term::Tuple(tp) if tp.elements.len() == 2 => tp
            .elements
            .first()
            .and_then(term::as_atom)
            .unwrap_or("?")
            .to_string(),
        other => term::id_text(other),
    }
}

fn peers(info: &Term, key: &str) -> FirstOf {
    let first = term::map_get(info, key)
        .and_then(term::list_elems)
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| {
            let [who, name] = term::as_tuple(p)? else {
                return None;
            };
            Some(Peer {
                id: id(who),
                name: term::as_text(name).filter(|n| !n.is_empty()),
            })
        })
        .collect();
    FirstOf {
        first,
        count: num(info, &format!("{key}_count")),
    }
}

fn num(info: &Term, key: &str) -> u64 {
    term::map_get(info, key)
        .and_then(term::as_i64)
        .unwrap_or(0)
        .max(0) as u64
}

fn frame(t: &Term) -> Option<StackFrame> {
    let [m, f, a, loc] = term::as_tuple(t)? else {
        return None;
    };
    // The arity is a number, or the arguments themselves for the top frame.
    let arity = term::as_i64(a)
        .or_else(|| term::as_list(a).map(|l| l.len() as i64))
        .unwrap_or(0);
    let get = |k: &str| {
        term::list_elems(loc)?.iter().find_map(|kv| {
            let [key, v] = term::as_tuple(kv)? else {
                return None;
            };
            term::is_atom(key, k).then_some(v)
        })
    };
    Some(StackFrame {
        function: Mfa {
            module: term::as_atom(m)?.to_string(),
            function: term::as_atom(f)?.to_string(),
            arity,
        },
        file: get("file").and_then(term::as_text),
        line: get("line").and_then(term::as_i64),
    })
}

/// Decodes the agent's detail map.
pub fn decode_detail(info: &Term) -> Option<ProcDetail> {
    let get = |k: &str| term::map_get(info, k);
    let Term::Pid(p) = get("pid")? else {
        return None;
    };
    let word = num(info, "word_bytes").max(1);
    let gc = get("garbage_collection");
    let gc_num = |k: &str| gc.and_then(|g| term::map_get(g, k)).and_then(term::as_i64);
    let atom = |k: &str| get(k).and_then(term::as_atom).map(str::to_string);
    let ancestors = get("ancestors")
        .and_then(term::list_elems)
        .map(|l| l.iter().map(id).collect());
    Some(ProcDetail {
        pid: ProcId {
            id: p.id,
            serial: p.serial,
        },
        taken_at: Instant::now(),
        registered_name: atom("registered_name"),
        initial_call: get("initial_call").and_then(mfa),
        current_function: get("current_function").and_then(mfa),
        stack: get("current_stacktrace")
            .and_then(term::list_elems)
            .unwrap_or(&[])
            .iter()
            .filter_map(frame)
            .collect(),
        status: atom("status").unwrap_or_default(),
        message_queue_len: num(info, "message_queue_len"),
        memory_bytes: num(info, "memory"),
        heap_bytes: num(info, "heap_size") * word,
        total_heap_bytes: num(info, "total_heap_size") * word,
        stack_bytes: num(info, "stack_size") * word,
        reductions: num(info, "reductions"),
        minor_gcs: gc_num("minor_gcs").map(|v| v.max(0) as u64),
        fullsweep_after: gc_num("fullsweep_after").map(|v| v.max(0) as u64),
        links: peers(info, "links"),
        monitors: peers(info, "monitors"),
        monitored_by: peers(info, "monitored_by"),
        trap_exit: get("trap_exit").is_some_and(|t| term::is_atom(t, "true")),
        priority: atom("priority").unwrap_or_default(),
        group_leader: get("group_leader").map(id),
        parent: get("parent")
            .filter(|t| !term::is_atom(t, "undefined"))
            .map(id),
        ancestors,
        binary_bytes: num(info, "binary"),
        binary_count: num(info, "binary_count"),
    })
}
