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

use crate::dist::Connection;
use crate::error::{Error, Result};
use crate::eterm::{self, Pid, Term, atom, charlist, int, list, tuple};
use std::time::Duration;

/// The only functions called through `rex` (`{call, M, F, A, user}`).
pub const ALLOWED_RPC: &[(&str, &str, usize)] = &[
    ("net_kernel", "get_net_ticktime", 0),
    ("erl_scan", "string", 1),
    ("erl_parse", "parse_exprs", 1),
    ("erl_eval", "exprs", 2),
];

/// Every remote function the agent source below calls. A unit test reads the
/// source and fails if it calls anything not listed here.
pub const AGENT_CALLS: &[&str] = &[
    "erlang:spawn/1",
    "erlang:link/1",
    "erlang:unlink/1",
    "erlang:system_flag/2",
    "erlang:processes/0",
    "erlang:process_info/2",
    "erlang:is_tuple/1",
    "erlang:monotonic_time/1",
    "erlang:localtime/0",
    "erlang:statistics/1",
    "erlang:memory/0",
    "erlang:garbage_collect/0",
    "erlang:node/0",
    "erlang:self/0",
    "erlang:module_loaded/1",
    "erlang:system_info/1",
    "erlang:'-'/2",
    "lists:duplicate/2",
    "lists:zipwith/3",
    "lists:zipwith3/4",
    "lists:zip/2",
    "lists:sort/1",
    "lists:reverse/1",
    "lists:sublist/2",
    "lists:last/1",
    "lists:delete/2",
    "lists:member/2",
    "lists:nthtail/2",
    "lists:usort/1",
    "maps:merge/2",
    "erlang:element/2",
    "erlang:max/2",
    "erlang:min/2",
    "erlang:spawn_opt/2",
    "erlang:demonitor/2",
    "erlang:error/1",
    "lists:filter/2",
    "lists:flatmap/2",
    "maps:from_list/1",
    "maps:remove/2",
    "maps:get/3",
    "proc_lib:translate_initial_call/1",
    "erlang:ports/0",
    "erlang:port_info/2",
    "erlang:integer_to_list/1",
    "erlang:process_flag/2",
    "lists:keyfind/3",
    "lists:zip3/3",
    "lists:sum/1",
    "maps:find/2",
    "inet:getstat/2",
    "inet:ntoa/1",
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
/// source. The hot paths are compiled stdlib driven by external funs
/// (`lists:zipwith(fun erlang:process_info/2, ...)`), so interpretation costs
/// a few dozen calls per frame, not one per process.
///
/// Top N without sorting every process: the distinct values go into a map
/// (C code), the N largest distinct values are picked from its keys, and one
/// `maps:get/3` pass keeps just the processes holding them.
pub const AGENT_SRC: &str = r#"
erlang:spawn(fun() ->
  Me = erlang:self(),
  erlang:link(Owner),
  erlang:system_flag(scheduler_wall_time, true),
  Dup = fun lists:duplicate/2,
  % One process_info item for every process: {Item, V}, or undefined for a
  % process that died since erlang:processes/0 (undefined sorts below any
  % tuple, so the dead never rank).
  Scan = fun(Item, Ps, Len) ->
    lists:zipwith(fun erlang:process_info/2, Ps, Dup(Len, Item))
  end,
  Ints = fun(Raw, Len) ->
    case lists:member(undefined, Raw) of
      false -> lists:zipwith(fun erlang:element/2, Dup(Len, 2), Raw);
      true ->
        Fix = lists:zipwith3(fun maps:get/3, Raw, Dup(Len, #{undefined => {x, -1}}), Raw),
        lists:zipwith(fun erlang:element/2, Dup(Len, 2), Fix)
    end
  end,
  % Reductions in the window. When the process list is the one of the last
  % frame, position by position; otherwise through a map of the last frame.
  Delta = fun(Ps, Vs, Len, {Ps, Old}) -> lists:zipwith(fun erlang:'-'/2, Vs, Old);
             (Ps, Vs, Len, {OldPs, Old}) ->
               M = maps:from_list(lists:zip(OldPs, Old)),
               lists:zipwith(fun erlang:'-'/2, Vs,
                             lists:zipwith3(fun maps:get/3, Ps, Dup(Len, M), Dup(Len, 0)));
             (_Ps, Vs, _Len, none) -> Vs
          end,
  % The N largest values and the processes holding them, without sorting
  % every process: the distinct values (lists:usort, nearly linear when most
  % values are equal), then one maps:get/3 pass that keeps the pairs whose
  % value is not in the map of values to drop.
  Top = fun(_Vs, _Ps, 0, _N) -> [];
           (_Vs, _Ps, _Len, 0) -> [];
           (Vs, Ps, Len, N) ->
    Distinct = lists:usort(Vs),
    NDistinct = length(Distinct),
    TopVals = lists:reverse(lists:nthtail(erlang:max(0, NDistinct - N), Distinct)),
    Kth = lists:last(TopVals),
    Lower = lists:sublist(Distinct, erlang:max(0, NDistinct - N)),
    DropLower = maps:from_list(lists:zip(Lower, Dup(length(Lower), x))),
    Pairs = lists:zip(Vs, Ps),
    Pick = fun(Drop) ->
      lists:filter(fun erlang:is_tuple/1,
                   lists:zipwith3(fun maps:get/3, Vs, Dup(Len, Drop), Pairs))
    end,
    Above = lists:sublist(lists:reverse(lists:sort(Pick(DropLower#{Kth => x}))), N),
    Need = N - length(Above),
    Ties = case Need > 0 of
      true ->
        Only = maps:merge(DropLower, maps:from_list([{V, x} || V <- TopVals, V =/= Kth])),
        % Any Need holders of the Kth value will do: look in a prefix first,
        % since a common value (idle processes' 0) is found there at once.
        K = erlang:min(Len, 4096 + 4 * N),
        Early = lists:filter(fun erlang:is_tuple/1,
                  lists:zipwith3(fun maps:get/3, lists:sublist(Vs, K), Dup(K, Only),
                                 lists:sublist(Pairs, K))),
        case length(Early) >= Need of
          true -> lists:sublist(Early, Need);
          false -> lists:sublist(Pick(Only), Need)
        end;
      false -> []
    end,
    Above ++ Ties
  end,
  Items = [registered_name, initial_call, current_function, memory, reductions, message_queue_len],
  Detail = fun({V0, P}) ->
    V = case V0 of {_, X} -> X; _ -> V0 end,
    case erlang:process_info(P, Items) of
      [{_, Reg}, {_, Init0}, {_, Cur}, {_, Mem}, {_, Reds}, {_, Q}] ->
        Init = case Init0 of
          {proc_lib, init_p, 5} ->
            try proc_lib:translate_initial_call(P) catch _:_ -> Init0 end;
          _ -> Init0
        end,
        [{P, V, Reg, Init, Cur, Mem, Reds, Q}];
      _ -> []
    end
  end,
  Sample = fun(Item, N, WantDelta, Prev) ->
    T0 = erlang:monotonic_time(microsecond),
    % The agent and its frame worker leave themselves out: their cost is
    % reported apart (cost_us).
    Ps = erlang:processes() -- [erlang:self(), Me],
    Len = length(Ps),
    Raw = Scan(Item, Ps, Len),
    {Vs, Next} = case WantDelta of
      true ->
        Now = Ints(Raw, Len),
        {Delta(Ps, Now, Len, Prev), {Ps, Now}};
      false -> {Raw, none}
    end,
    Rows = lists:flatmap(Detail, Top(Vs, Ps, Len, N)),
    T1 = erlang:monotonic_time(microsecond),
    {#{node => erlang:node(), time => erlang:localtime(), mono_us => T0, procs => Len,
       runq => erlang:statistics(run_queue), memory => erlang:memory(),
       swt => erlang:statistics(scheduler_wall_time), cost_us => T1 - T0,
       elixir => erlang:module_loaded('Elixir.Kernel'),
       schedulers => erlang:system_info(schedulers),
       rows => Rows}, Next}
  end,
  PortCounters = fun(P) ->
    case catch inet:getstat(P, [recv_cnt, recv_oct, send_cnt, send_oct]) of
      {ok, L} when is_list(L) ->
        G = fun(K) -> case lists:keyfind(K, 1, L) of {_, V} -> V; false -> 0 end end,
        {G(recv_cnt), G(recv_oct), G(send_cnt), G(send_oct)};
      _ ->
        case {erlang:port_info(P, input), erlang:port_info(P, output)} of
          {{input, I}, {output, O}} -> {0, I, 0, O};
          _ -> undefined
        end
    end
  end,
  SocketCounters = fun(S) ->
    case catch socket:info(S) of
      #{counters := C} ->
        G = fun(K) -> maps:get(K, C, 0) end,
        {G(read_pkg), G(read_byte), G(write_pkg), G(write_byte)};
      _ -> undefined
    end
  end,
  Minus = fun({A, B, C, D}, {E, F, G, H}) when A >= E, B >= F, C >= G, D >= H ->
                {A - E, B - F, C - G, D - H};
             (Cur, _) -> Cur
          end,
  Addr = fun({ok, {Ip, Port}}) when is_tuple(Ip) -> inet:ntoa(Ip) ++ ":" ++ erlang:integer_to_list(Port);
            ({ok, #{addr := Ip, port := Port}}) when is_tuple(Ip) -> inet:ntoa(Ip) ++ ":" ++ erlang:integer_to_list(Port);
            (_) -> ""
         end,
  OwnerName = fun(Pid) when is_pid(Pid) ->
                    case erlang:process_info(Pid, registered_name) of
                      {registered_name, R} when is_atom(R) -> R;
                      _ -> []
                    end;
                 (_) -> []
              end,
  PortInfo = fun(P, K) -> case erlang:port_info(P, K) of {K, V} -> V; _ -> undefined end end,
  PortRank = fun(Key, Id, {Rc, Ro, Sc, So}) ->
    case Key of
      recv_cnt -> Rc; recv_oct -> Ro; send_cnt -> Sc; send_oct -> So;
      bytes -> Ro + So;
      queue -> case Id of {port, P} -> PortInfo(P, queue_size); _ -> 0 end;
      memory -> case Id of {port, P} -> PortInfo(P, memory); _ -> 0 end
    end
  end,
  PortDetail = fun({port, P}) ->
      PortOwner = PortInfo(P, connected),
      {PortInfo(P, name), PortOwner, OwnerName(PortOwner), PortInfo(P, queue_size), PortInfo(P, memory),
       Addr(catch inet:sockname(P)), Addr(catch inet:peername(P))};
    ({socket, S}) ->
      Info = case catch socket:info(S) of #{} = I -> I; _ -> #{} end,
      SockOwner = maps:get(owner, Info, undefined),
      Kind = {socket, maps:get(type, Info, undefined), maps:get(protocol, Info, undefined)},
      {Kind, SockOwner, OwnerName(SockOwner), 0, 0, Addr(catch socket:sockname(S)), Addr(catch socket:peername(S))}
  end,
  PortSample = fun(Key, N, Prev) ->
    T0 = erlang:monotonic_time(microsecond),
    Ports = [{port, P} || P <- erlang:ports()],
    Socks = case erlang:module_loaded(socket) of
      true -> [{socket, S} || S <- (catch socket:which_sockets()), is_tuple(S) orelse is_reference(S)];
      false -> []
    end,
    Counted = [{Id, C} || Id <- Ports ++ Socks,
                          C <- [case Id of {port, P} -> PortCounters(P); {socket, S} -> SocketCounters(S) end],
                          C =/= undefined],
    Next = maps:from_list(Counted),
    Ranked = [{PortRank(Key, Id, D), Id, D}
              || {Id, C} <- Counted,
                 D <- [case maps:find(Id, Prev) of {ok, Old} -> Minus(C, Old); error -> C end]],
    Rows = [{Id, V, D, PortDetail(Id)}
            || {V, Id, D} <- lists:sublist(lists:reverse(lists:sort(Ranked)), N)],
    T1 = erlang:monotonic_time(microsecond),
    {#{node => erlang:node(), time => erlang:localtime(), mono_us => T0, count => length(Counted),
       cost_us => T1 - T0, rows => Rows}, Next}
  end,
  EtsSample = fun(Key, N, Prev) ->
    T0 = erlang:monotonic_time(microsecond),
    WS = erlang:system_info(wordsize),
    Ts = ets:all(),
    L = length(Ts),
    Ms = lists:zipwith(fun ets:info/2, Ts, Dup(L, memory)),
    Ss = lists:zipwith(fun ets:info/2, Ts, Dup(L, size)),
    Live = [{T, M * WS, S} || {T, M, S} <- lists:zip3(Ts, Ms, Ss), is_integer(M), is_integer(S)],
    Next = maps:from_list([{T, {M, S}} || {T, M, S} <- Live]),
    Ranked = [{case Key of memory -> M; size -> S; growth -> GM end, T, M, S, GM, GS}
              || {T, M, S} <- Live,
                 {GM, GS} <- [case maps:find(T, Prev) of {ok, {PM, PS}} -> {M - PM, S - PS}; error -> {undefined, undefined} end]],
    Sorted = case Key of
      growth -> lists:reverse(lists:sort([R || R <- Ranked, element(1, R) =/= undefined])) ++
                [R || R <- Ranked, element(1, R) =:= undefined];
      _ -> lists:reverse(lists:sort(Ranked))
    end,
    Info = fun(T, K) -> case catch ets:info(T, K) of undefined -> undefined; {'EXIT', _} -> undefined; V -> V end end,
    Rows = [{T, M, S, GM, GS, Info(T, name), Info(T, named_table), Info(T, owner), OwnerName(Info(T, owner)),
             Info(T, type), Info(T, protection)}
            || {_, T, M, S, GM, GS} <- lists:sublist(Sorted, N)],
    T1 = erlang:monotonic_time(microsecond),
    {#{node => erlang:node(), time => erlang:localtime(), mono_us => T0, count => L, cost_us => T1 - T0,
       total_bytes => lists:sum([M || {_, M, _} <- Live]), rows => Rows}, Next}
  end,
  MsaccStart = fun(St) ->
    Agent = erlang:self(),
    Guard = erlang:spawn(fun() ->
      erlang:process_flag(trap_exit, true),
      erlang:link(Owner),
      Old = erlang:system_flag(microstate_accounting, true),
      erlang:system_flag(microstate_accounting, reset),
      Agent ! {msacc_guard, erlang:self(), Old},
      receive
        {'EXIT', _, _} -> erlang:system_flag(microstate_accounting, Old);
        done -> erlang:unlink(Owner)
      end
    end),
    % The guard switches the flag itself, after linking to our connection,
    % so no moment exists where the flag is on and nobody would restore it.
    Old = receive {msacc_guard, Guard, Prev} -> Prev
          after 5000 -> erlang:error(msacc_guard_did_not_start)
          end,
    {{ok, #{previous => Old}}, St#{msacc => {Old, Guard}}}
  end,
  MsaccCollect = fun(St) ->
    case maps:find(msacc, St) of
      {ok, {Old, Guard}} ->
        Stats = erlang:statistics(microstate_accounting),
        erlang:system_flag(microstate_accounting, Old),
        Guard ! done,
        {{ok, #{node => erlang:node(), restored_to => Old, threads => Stats}}, maps:remove(msacc, St)};
      error -> {{error, not_started}, St}
    end
  end,
  % A frame's work runs in a short-lived worker whose heap starts at the
  % size the last frame needed: growing a heap from small to hundreds of MB
  % costs a third of a frame at 1M processes, and the worker's exit gives
  % the memory back at once.
  InWorker = fun(Work, HeapWords) ->
    Agent = erlang:self(),
    {W, MRef} = erlang:spawn_opt(fun() ->
        R = Work(),
        {total_heap_size, H} = erlang:process_info(erlang:self(), total_heap_size),
        Agent ! {frame_done, erlang:self(), R, H}
      end, [monitor, {min_heap_size, HeapWords}]),
    receive
      {frame_done, W, R, H} -> erlang:demonitor(MRef, [flush]), {R, H};
      {'DOWN', MRef, process, W, Reason} -> erlang:error({frame_worker, Reason})
    end
  end,
  Handle = fun({sample, Item, N, Delta}, St) ->
                 Prev = maps:get(procs, St, none),
                 {{Info, Next}, H} = InWorker(fun() -> Sample(Item, N, Delta, Prev) end,
                                               maps:get(heap, St, 233)),
                 {{ok, Info}, St#{procs => Next, heap => H}};
              ({ports, Key, N}, St) ->
                 {Info, Next} = PortSample(Key, N, maps:get(ports, St, #{})),
                 {{ok, Info}, St#{ports => Next}};
              ({ets, Key, N}, St) ->
                 {Info, Next} = EtsSample(Key, N, maps:get(ets, St, #{})),
                 {{ok, Info}, St#{ets => Next}};
              (msacc_start, St) -> MsaccStart(St);
              (msacc_collect, St) -> MsaccCollect(St);
              (Other, St) -> {{error, {unknown_request, Other}}, St}
           end,
  Loop = fun Loop(St) ->
    receive
      {Ref, From, stop} ->
        {_, _} = MsaccCollect(St),
        erlang:unlink(Owner),
        From ! {Ref, ok};
      {Ref, From, Req} ->
        {Reply, St2} = try Handle(Req, St)
                       catch C:R -> {{error, {C, R}}, St} end,
        From ! {Ref, Reply},
        % The scan's garbage is big; give it back now rather than at the
        % next frame.
        erlang:garbage_collect(),
        Loop(St2);
      _ -> Loop(St)
    end
  end,
  Loop(#{})
end).
"#;

/// What the main table sorts by, as the agent names the process_info item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Reductions,
    Memory,
    Msgq,
}

impl SortKey {
    pub fn item(self) -> &'static str {
        match self {
            SortKey::Reductions => "reductions",
            SortKey::Memory => "memory",
            SortKey::Msgq => "message_queue_len",
        }
    }
}

/// The request for one frame of the process table: header values and the
/// top `n` rows by `key`; `delta` ranks reductions by their change since the
/// previous request.
pub fn sample_request(key: SortKey, n: usize, delta: bool) -> Term {
    tuple(vec![
        atom("sample"),
        atom(key.item()),
        int(n as i64),
        atom(if delta { "true" } else { "false" }),
    ])
}

/// Our process on the target.
pub struct Agent {
    pub pid: Pid,
}

fn expect_ok_tuple(t: &Term, what: &str, node: &str) -> Result<Vec<Term>> {
    match eterm::as_tuple(t) {
        Some([tag, rest @ ..]) if eterm::is_atom(tag, "ok") || eterm::is_atom(tag, "value") => {
            Ok(rest.to_vec())
        }
        _ => Err(Error::Remote {
            node: node.to_string(),
            what: what.to_string(),
            detail: t.to_string(),
        }),
    }
}

impl Agent {
    /// Parses the agent source on the target (erl_scan, erl_parse) and
    /// evaluates it there, which spawns the agent linked to our pid.
    pub fn start(conn: &mut Connection) -> Result<Agent> {
        let node = conn.peer.clone();
        // These calls share the setup's time budget (--connect-timeout).
        let scanned = conn.setup_rpc("erl_scan", "string", vec![charlist(AGENT_SRC)])?;
        let tokens = expect_ok_tuple(&scanned, "erl_scan:string/1", &node)?;
        let tokens = tokens.into_iter().next().unwrap_or_else(|| list(vec![]));
        let parsed = conn.setup_rpc("erl_parse", "parse_exprs", vec![tokens])?;
        let exprs = expect_ok_tuple(&parsed, "erl_parse:parse_exprs/1", &node)?;
        let exprs = exprs.into_iter().next().unwrap_or_else(|| list(vec![]));
        // Bindings as an orddict: every OTP release's erl_eval accepts it.
        let bindings = list(vec![tuple(vec![
            atom("Owner"),
            conn.self_pid().clone().into(),
        ])]);
        let value = conn.setup_rpc("erl_eval", "exprs", vec![exprs, bindings])?;
        let v = expect_ok_tuple(&value, "erl_eval:exprs/2", &node)?;
        match v.first() {
            Some(Term::Pid(pid)) => Ok(Agent { pid: pid.clone() }),
            _ => Err(Error::Remote {
                node,
                what: "the agent".into(),
                detail: value.to_string(),
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
        match eterm::as_tuple(&reply) {
            Some([tag, info]) if eterm::is_atom(tag, "ok") => Ok(info.clone()),
            _ => Err(Error::Remote {
                node: conn.peer.clone(),
                what: what.to_string(),
                detail: reply.to_string(),
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
        let src = AGENT_SRC;
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
            while e < bytes.len() && (is_ident(bytes[e]) || bytes[e] == b'-') {
                e += 1;
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
                    "erlang", "lists", "maps", "proc_lib", "inet", "ets", "socket"
                ]
                .contains(&module),
                "{call}: only erts/stdlib modules may be called"
            );
        }
    }

    #[test]
    fn rpc_allowlist_is_kernel_and_stdlib_only() {
        for (m, _, _) in ALLOWED_RPC {
            assert!(["net_kernel", "erl_scan", "erl_parse", "erl_eval"].contains(m));
        }
    }
}
