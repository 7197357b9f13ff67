//! Everything etop runs on a target node, in one place: the `rex` calls it
//! makes and the source of the agent it evaluates there.
//!
//! Rules: only functions exported by erts, kernel and stdlib on every OTP 23+
//! node; no module is ever loaded (`socket` is asked only when the node has
//! loaded it itself); nothing is written but two system flags:
//! `scheduler_wall_time`, which the agent holds and which the VM drops when
//! the agent exits (it is linked to our connection, so it exits when we go),
//! and, during `etop msacc`, `microstate_accounting`, whose previous value a
//! guard process restores if the connection drops before we do.

pub mod cluster;
pub mod collector;
pub mod detail;
pub mod sample;

use crate::dist::term::{self, Pid, Term, atom, charlist, int, list, tuple};
use crate::dist::{Connection, etf};
use crate::error::{Error, Result};
use std::time::Duration;

/// The only functions called through `rex` (`{call, M, F, A, user}`).
pub const ALLOWED_RPC: &[(&str, &str, usize)] = &[
    ("net_kernel", "get_net_ticktime", 0),
    ("erl_scan", "string", 1),
    ("erl_parse", "parse_exprs", 1),
    ("erl_eval", "exprs", 2),
    // The nodes a node is connected to, for `--cluster`.
    ("erlang", "nodes", 1),
];

/// Every remote function the agent source below calls. A unit test reads the
/// source and fails if it calls anything not listed here.
pub const AGENT_CALLS: &[&str] = &[
    "proc_lib:spawn_opt/2",
    "erlang:monitor/2",
    "erlang:list_to_pid/1",
    "erlang:exit/2",
    "erlang:link/1",
    "erlang:unlink/1",
    "erlang:put/2",
    "erlang:get/1",
    "erlang:function_exported/3",
    "proc_lib:set_label/1",
    "erlang:system_flag/2",
    "erlang:process_flag/2",
    "erlang:processes/0",
    "erlang:process_info/2",
    "erlang:is_tuple/1",
    "erlang:is_integer/1",
    "erlang:is_process_alive/1",
    "erlang:list_to_tuple/1",
    "erlang:tuple_to_list/1",
    "erlang:tuple_size/1",
    "erlang:garbage_collect/0",
    "erlang:monotonic_time/1",
    "erlang:convert_time_unit/3",
    "erlang:unique_integer/1",
    "erlang:localtime/0",
    "erlang:statistics/1",
    "erlang:memory/0",
    "erlang:memory/1",
    "erlang:node/0",
    "erlang:self/0",
    "erlang:module_loaded/1",
    "erlang:system_info/1",
    "erlang:'-'/2",
    "erlang:element/2",
    "erlang:max/2",
    "erlang:min/2",
    "erlang:demonitor/2",
    "erlang:error/1",
    "erlang:throw/1",
    "erlang:ports/0",
    "erlang:port_info/2",
    "lists:duplicate/2",
    "lists:unzip3/1",
    "maps:merge/2",
    "lists:usort/1",
    "erlang:integer_to_list/1",
    "lists:map/2",
    "lists:foldl/3",
    "proplists:get_all_values/2",
    "string:str/2",
    "string:to_lower/1",
    "erlang:atom_to_list/1",
    "erlang:tuple_to_list/1",
    "erlang:'++'/2",
    "erlang:'and'/2",
    "erlang:'or'/2",
    "erlang:'>'/2",
    "erlang:'>='/2",
    "erlang:'<'/2",
    "erlang:'=<'/2",
    "erlang:'=='/2",
    "erlang:'/='/2",
    "lists:zipwith/3",
    "lists:zipwith3/4",
    "lists:zip/2",
    "lists:zip3/3",
    "lists:sort/1",
    "lists:reverse/1",
    "lists:sublist/2",
    "lists:last/1",
    "lists:max/1",
    "lists:split/2",
    "lists:nthtail/2",
    "lists:prefix/2",
    "lists:append/1",
    "lists:seq/2",
    "lists:any/2",
    "lists:member/2",
    "lists:filter/2",
    "lists:keyfind/3",
    "lists:sum/1",
    "maps:from_list/1",
    "maps:remove/2",
    "maps:get/3",
    "maps:find/2",
    "proc_lib:translate_initial_call/1",
    "inet:getstat/2",
    "inet:sockname/1",
    "inet:peername/1",
    "ets:all/0",
    "ets:info/2",
    // Called only when the node has loaded `socket` itself.
    "socket:info/1",
    "socket:which_sockets/0",
    "socket:sockname/1",
    "socket:peername/1",
];

/// The agent: one process per connection, evaluated by `erl_eval` from this
/// source (`agent.erl`, which says what it promises the node). The hot paths
/// are compiled stdlib driven by external funs
/// (`lists:zipwith(fun erlang:process_info/2, ...)`), so interpretation costs
/// a few dozen calls per chunk of processes, not one per process.
pub const AGENT_SRC: &str = include_str!("agent.erl");

/// What etop evaluates to start the agent: it has the node scan, parse and
/// evaluate `AGENT_SRC` itself (`src/agent/boot.erl`).
pub const BOOT_SRC: &str = include_str!("boot.erl");

/// What the main table sorts by, as the agent names the process_info item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Reductions,
    Memory,
    Msgq,
    /// Total heap size (observer_cli's `t`).
    Heap,
    /// Off-heap binaries referred to (observer_cli's `b`).
    Binary,
}

impl SortKey {
    pub fn item(self) -> &'static str {
        match self {
            SortKey::Reductions => "reductions",
            SortKey::Memory => "memory",
            SortKey::Msgq => "message_queue_len",
            SortKey::Heap => "total_heap_size",
            SortKey::Binary => "binary",
        }
    }
}

/// A comparison the agent makes on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    /// `a op b`, for etop's own judgement of what it receives.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }

    /// As typed in a filter.
    pub fn text(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        }
    }

    fn atom(self) -> &'static str {
        match self {
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
        }
    }
}

/// A `process_info` item a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeItem {
    Msgq,
    Memory,
    Heap,
    Binary,
}

/// Which processes the agent ranks: evaluated on the node for every process,
/// before the top N are chosen, so that a filtered top N is the true top N of
/// the processes that match.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeFilter {
    All(Vec<NodeFilter>),
    Any(Vec<NodeFilter>),
    /// An item against a whole number (bytes for memory, heap and binary).
    Cmp {
        item: NodeItem,
        op: CmpOp,
        value: u64,
    },
    /// Reductions in the window. The node knows them only in a frame ranked
    /// by their change; in any other frame it lets every process through and
    /// etop judges the rows it gets.
    Reds {
        op: CmpOp,
        value: u64,
    },
    /// Reductions in the window as a share of all the node ran in it, in
    /// thousandths of a percent; known as `Reds` is.
    RedsPct {
        op: CmpOp,
        milli: u64,
    },
    /// Lower case text that must appear in the registered name, the initial
    /// call or the current function (`m:f/a`), compared in lower case.
    Word(String),
}

impl NodeFilter {
    fn term(&self) -> Term {
        match self {
            NodeFilter::All(v) => tuple(vec![
                atom("all"),
                list(v.iter().map(|f| f.term()).collect()),
            ]),
            NodeFilter::Any(v) => tuple(vec![
                atom("any"),
                list(v.iter().map(|f| f.term()).collect()),
            ]),
            NodeFilter::Cmp { item, op, value } => {
                let item = match item {
                    NodeItem::Msgq => SortKey::Msgq.item(),
                    NodeItem::Memory => SortKey::Memory.item(),
                    NodeItem::Heap => SortKey::Heap.item(),
                    NodeItem::Binary => SortKey::Binary.item(),
                };
                tuple(vec![
                    atom("cmp"),
                    atom(item),
                    atom(op.atom()),
                    int(i64::try_from(*value).unwrap_or(i64::MAX)),
                ])
            }
            NodeFilter::Reds { op, value } => tuple(vec![
                atom("reds"),
                atom(op.atom()),
                int(i64::try_from(*value).unwrap_or(i64::MAX)),
            ]),
            NodeFilter::RedsPct { op, milli } => tuple(vec![
                atom("reds_pct"),
                atom(op.atom()),
                int(i64::try_from(*milli).unwrap_or(i64::MAX)),
            ]),
            NodeFilter::Word(w) => tuple(vec![atom("word"), charlist(w)]),
        }
    }
}

/// What one frame of the process table asks of the node.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRequest {
    /// The header values and the top `lines` rows by `key`.
    pub key: SortKey,
    pub lines: usize,
    /// Rank reductions by their change since the frame etop holds.
    pub delta: bool,
    /// Only the processes that match.
    pub filter: Option<NodeFilter>,
    /// Give each row its reductions since the baseline the agent keeps from
    /// an earlier reductions frame, whatever the sort (`--once`).
    pub reds_base: bool,
}

impl SampleRequest {
    pub fn new(key: SortKey, lines: usize, delta: bool) -> SampleRequest {
        SampleRequest {
            key,
            lines,
            delta,
            filter: None,
            reds_base: false,
        }
    }

    /// The request term; `base` is the `frame` number of the last reply etop
    /// received (0 for none). The agent answers with totals
    /// (`delta => false`) when it no longer holds that frame's state.
    pub fn term(&self, base: i64) -> Term {
        tuple(vec![
            atom("sample"),
            atom(self.key.item()),
            int(self.lines as i64),
            atom(if self.delta { "true" } else { "false" }),
            int(base),
            tuple(vec![
                self.filter
                    .as_ref()
                    .map(NodeFilter::term)
                    .unwrap_or_else(|| atom("none")),
                atom(if self.reds_base { "true" } else { "false" }),
            ]),
        ])
    }
}

/// The request for one process in detail: `pid` as the node's shell prints
/// it (`<0.123.0>`), the first `n` links, monitors and stack frames, and at
/// most `ms` milliseconds of the node's time.
pub fn detail_request(pid: &str, n: usize, ms: u64) -> Term {
    tuple(vec![
        atom("detail"),
        charlist(pid),
        int(n as i64),
        int(i64::try_from(ms).unwrap_or(i64::MAX)),
    ])
}

/// The most node names taken from one `erlang:nodes/1` reply: more than any
/// cluster etop can watch at once.
pub const MAX_CLUSTER_NODES: usize = 5000;

/// The nodes `conn`'s node is connected to (`erlang:nodes/1`): the visible
/// ones, or the hidden ones when `hidden`. Anything in the reply that is not
/// a node name is skipped; at most `MAX_CLUSTER_NODES` names are kept.
pub fn connected_nodes(
    conn: &mut Connection,
    hidden: bool,
    timeout: Duration,
) -> Result<Vec<String>> {
    let kind = atom(if hidden { "hidden" } else { "visible" });
    debug_assert!(ALLOWED_RPC.contains(&("erlang", "nodes", 1)));
    let reply = conn.rpc("erlang", "nodes", vec![list(vec![kind])], timeout)?;
    let names = term::list_elems(&reply).ok_or_else(|| Error::Remote {
        node: conn.peer.clone(),
        what: "erlang:nodes/1".into(),
        detail: etf::brief(&reply, 300),
    })?;
    Ok(names
        .iter()
        .filter_map(term::as_atom)
        .filter(|n| n.contains('@'))
        .take(MAX_CLUSTER_NODES)
        .map(str::to_string)
        .collect())
}

/// Our process on the target.
pub struct Agent {
    pub pid: Pid,
}

fn expect_ok_tuple(t: &Term, what: &str, node: &str) -> Result<Vec<Term>> {
    match term::as_tuple(t) {
        Some([tag, rest @ ..]) if term::is_atom(tag, "ok") || term::is_atom(tag, "value") => {
            Ok(rest.to_vec())
        }
        _ => Err(Error::Remote {
            node: node.to_string(),
            what: what.to_string(),
            detail: etf::brief(t, 300),
        }),
    }
}

/// A setup call through `rex`, only ever one of `ALLOWED_RPC`.
fn setup_rpc(conn: &mut Connection, m: &str, f: &str, args: Vec<Term>) -> Result<Term> {
    debug_assert!(
        ALLOWED_RPC.contains(&(m, f, args.len())),
        "{m}:{f}/{} is not in ALLOWED_RPC",
        args.len()
    );
    conn.setup_rpc(m, f, args)
}

impl Agent {
    /// Parses the agent source on the target (erl_scan, erl_parse) and
    /// evaluates it there, which spawns the agent linked to our pid.
    /// `heap_limit_bytes` is the ceiling of every process the agent starts
    /// (0: the agent's default, scaled with the node).
    pub fn start(conn: &mut Connection, heap_limit_bytes: u64) -> Result<Agent> {
        let node = conn.peer.clone();
        // These calls share the setup's time budget (--connect-timeout).
        // Tick at a quarter of the node's net_ticktime, as its own peers do;
        // 60 s (OTP's default) when it says something else, such as a change
        // of ticktime in progress. A node that does not answer at all ends
        // the setup here.
        let ticktime = match setup_rpc(conn, "net_kernel", "get_net_ticktime", vec![]) {
            Ok(t) => term::as_i64(&t).unwrap_or(60),
            Err(e @ (Error::Timeout { .. } | Error::ConnectionLost { .. })) => return Err(e),
            Err(_) => 60,
        };
        conn.set_tick_interval(Duration::from_secs_f64((ticktime.max(4) as f64) / 4.0));
        // The small bootstrap crosses the wire as tokens and a syntax tree;
        // it has the node scan, parse and evaluate the agent's source.
        let scanned = setup_rpc(conn, "erl_scan", "string", vec![charlist(BOOT_SRC)])?;
        let tokens = expect_ok_tuple(&scanned, "erl_scan:string/1", &node)?;
        let tokens = tokens.into_iter().next().unwrap_or_else(|| list(vec![]));
        let parsed = setup_rpc(conn, "erl_parse", "parse_exprs", vec![tokens])?;
        let exprs = expect_ok_tuple(&parsed, "erl_parse:parse_exprs/1", &node)?;
        let exprs = exprs.into_iter().next().unwrap_or_else(|| list(vec![]));
        // Bindings as orddicts: every OTP release's erl_eval accepts them.
        let agent_bindings = list(vec![
            tuple(vec![
                atom("HeapLimit"),
                int(i64::try_from(heap_limit_bytes).unwrap_or(i64::MAX)),
            ]),
            tuple(vec![atom("Owner"), conn.self_pid().clone().into()]),
        ]);
        let bindings = list(vec![
            tuple(vec![atom("Bindings"), agent_bindings]),
            tuple(vec![atom("Source"), charlist(AGENT_SRC)]),
        ]);
        let value = setup_rpc(conn, "erl_eval", "exprs", vec![exprs, bindings])?;
        let v = expect_ok_tuple(&value, "erl_eval:exprs/2", &node)?;
        match v.first() {
            Some(Term::Pid(pid)) => Ok(Agent { pid: pid.clone() }),
            _ => Err(Error::Remote {
                node,
                what: "the agent".into(),
                detail: etf::brief(&value, 300),
            }),
        }
    }

    /// Sends a request (see `sample_request`, `ports::request`...):
    /// `{ok, Info}` gives `Info`.
    pub fn call(
        &self,
        conn: &mut Connection,
        req: Term,
        timeout: Duration,
        what: &str,
    ) -> Result<Term> {
        let reply = conn.request(&self.pid, req, timeout, what)?;
        match term::as_tuple(&reply) {
            Some([tag, info]) if term::is_atom(tag, "ok") => Ok(info.clone()),
            Some([tag, reason]) if term::is_atom(tag, "error") => match term::as_tuple(reason) {
                Some([kind, bytes]) if term::is_atom(kind, "heap_limit") => Err(Error::HeapLimit {
                    node: conn.peer.clone(),
                    what: what.to_string(),
                    limit_bytes: term::as_i64(bytes).unwrap_or(0).max(0) as u64,
                }),
                Some([kind, ms]) if term::is_atom(kind, "detail_timeout") => {
                    Err(Error::SlowProcess {
                        node: conn.peer.clone(),
                        ms: term::as_i64(ms).unwrap_or(0).max(0) as u64,
                    })
                }
                _ if term::is_atom(reason, "no_such_process") => Err(Error::NoProcess {
                    node: conn.peer.clone(),
                }),
                _ => Err(Error::Remote {
                    node: conn.peer.clone(),
                    what: what.to_string(),
                    detail: etf::brief(reason, 300),
                }),
            },
            _ => Err(Error::Remote {
                node: conn.peer.clone(),
                what: what.to_string(),
                detail: etf::brief(&reply, 300),
            }),
        }
    }

    /// Asks the agent to unlink and exit; the flag it held goes with it.
    pub fn stop(&self, conn: &mut Connection) {
        let _ = conn.request(&self.pid, atom("stop"), Duration::from_secs(2), "stop");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `module:function(` in the agent source, with its arity where the
    /// source spells a fun (`fun m:f/a`), must be on the allowlist.
    #[test]
    fn agent_calls_only_allowlisted_functions() {
        let src = &without_comments(AGENT_SRC);
        let bytes = src.as_bytes();
        let mut found = Vec::new();
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'\'';
        for (i, _) in src.match_indices(':') {
            // module part
            let mut s = i;
            while s > 0 && is_ident(bytes[s - 1]) {
                s -= 1;
            }
            let mut e = i + 1;
            if bytes.get(e) == Some(&b'\'') {
                // A quoted name (`erlang:'=<'`): up to its closing quote.
                e += 1;
                while e < bytes.len() && bytes[e] != b'\'' {
                    e += 1;
                }
                e = (e + 1).min(bytes.len());
            } else {
                while e < bytes.len() && (is_ident(bytes[e]) || bytes[e] == b'-') {
                    e += 1;
                }
            }
            let module = &src[s..i];
            let func = &src[i + 1..e];
            if module.is_empty()
                || func.is_empty()
                || !module
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase())
            {
                continue;
            }
            // `catch _:_`, `C:R` and friends start with a capital or `_`.
            found.push(format!("{module}:{func}"));
        }
        assert!(found.len() > 20, "parser found too little: {found:?}");
        for listed in AGENT_CALLS {
            let name = listed.rsplit_once('/').map(|(n, _)| n).unwrap_or(listed);
            assert!(
                found.iter().any(|f| f == name),
                "{listed} is in AGENT_CALLS but the agent no longer calls it"
            );
        }
        for call in found {
            assert!(
                AGENT_CALLS
                    .iter()
                    .any(|a| a.starts_with(&format!("{call}/"))),
                "{call} is called by the agent but not in AGENT_CALLS"
            );
            let module = call.split(':').next().unwrap_or_default();
            assert!(
                [
                    "erlang",
                    "lists",
                    "maps",
                    "proplists",
                    "string",
                    "proc_lib",
                    "inet",
                    "ets",
                    "socket"
                ]
                .contains(&module),
                "{call}: only erts/stdlib modules may be called"
            );
        }
    }

    /// The source with `%` comments removed (the agent has no `%` inside
    /// strings or atoms), so prose about `module:function` is not a call.
    fn without_comments(src: &str) -> String {
        src.lines()
            .map(|l| l.split('%').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The bootstrap calls, on the node, only what etop calls through rex.
    #[test]
    fn the_bootstrap_calls_only_the_rex_allowlist() {
        let src = without_comments(BOOT_SRC);
        let mut calls = Vec::new();
        for word in src.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if let Some((m, f)) = word.split_once(':')
                && !m.is_empty()
                && m.starts_with(|c: char| c.is_ascii_lowercase())
            {
                calls.push((m.to_string(), f.to_string()));
            }
        }
        assert_eq!(calls.len(), 3, "{calls:?}");
        for (m, f) in calls {
            assert!(
                ALLOWED_RPC.iter().any(|(am, af, _)| *am == m && *af == f),
                "{m}:{f} is not on ALLOWED_RPC"
            );
        }
    }

    #[test]
    fn rpc_allowlist_is_kernel_and_stdlib_only() {
        for (m, _, _) in ALLOWED_RPC {
            assert!(["net_kernel", "erl_scan", "erl_parse", "erl_eval", "erlang"].contains(m));
        }
    }
}
