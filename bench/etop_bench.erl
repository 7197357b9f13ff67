%% The Erlang side of `bench/run`. Runs on a hidden node next to the target
%% (`erl -hidden ... -run etop_bench main Cmd Args...`) and prints one JSON
%% object per line on standard output; `bench/run` parses them.
%%
%%   anchor Target Count IntervalMs Sort
%%       What OTP's etop does each refresh: spawn_link observer_backend:
%%       etop_collect/1 on the target, wait for {Pid, #etop_info{}}, sort the
%%       whole list here as etop:update/1 does (accumulate off: an ETS table
%%       of the previous reductions), keep the top 10, then wait the interval
%%       (etop_txt:loop/2: `after Intv`), so its cadence is interval +
%%       collection + sort.
%%   floor Target Count IntervalMs Item
%%       The cheapest compiled scan of one process_info item over all
%%       processes on the target (scan/1 below, loaded on the target from the
%%       same directory), nothing sorted, nothing sent back but a number.
%%   sigcheck Target
%%       Which process_info items make the inspected process answer itself.
%%   watch Target Secs
%%       For `make soak`: every second, the target's erlang:memory(total),
%%       process and atom counts, and whether scheduler_wall_time is on.
%%   profile Target Item
%%       The steps of etop's agent (src/remote.rs, AGENT_SRC), evaluated on
%%       the target by erl_eval as the agent is, each one timed.
%%
%% Every line carries unix-time microseconds (os:system_time/1, the same
%% clock as Python's time.time()) so that bench/run can cut its CPU samples
%% of the target at the same instants, and the bytes counted on the
%% distribution socket to the target (inet:getstat/2 of its port).
-module(etop_bench).
-export([main/1, scan/1, sigcheck/0]).

main([Cmd, Target | Args]) ->
    Node = list_to_atom(Target),
    case net_kernel:connect_node(Node) of
        true -> ok;
        _ -> fail("cannot connect to ~s", [Target])
    end,
    try run(Cmd, Node, Args) of
        _ -> halt(0)
    catch C:R:St ->
        fail("~p:~p ~p", [C, R, St])
    end.

fail(Fmt, Args) ->
    io:format(standard_error, "etop_bench: " ++ Fmt ++ "~n", Args),
    halt(1).

run("anchor", Node, [Count, Intv, Sort]) ->
    Tab = ets:new(accum_tab, [set, public, {keypos, 2}]),
    anchor(Node, list_to_integer(Count), list_to_integer(Intv),
           list_to_atom(Sort), Tab, 1);
run("floor", Node, [Count, Intv, Item]) ->
    floor(Node, list_to_integer(Count), list_to_integer(Intv),
          list_to_atom(Item), 1);
run("profile", Node, [Item]) ->
    profile(Node, list_to_atom(Item));
run("watch", Node, [Secs]) ->
    watch(Node, os:system_time(millisecond) + 1000 * list_to_integer(Secs));
run("sigcheck", Node, []) ->
    json(rpc:call(Node, ?MODULE, sigcheck, [])).

now_us() -> os:system_time(microsecond).

%% Bytes received and sent on the distribution connection to Node.
traffic(Node) ->
    case lists:keyfind(Node, 1, erlang:system_info(dist_ctrl)) of
        {Node, Port} when is_port(Port) ->
            {ok, [{recv_oct, R}, {send_oct, S}]} =
                inet:getstat(Port, [recv_oct, send_oct]),
            {R, S};
        _ -> {-1, -1}
    end.

value(V) when is_atom(V) -> io_lib:format("\"~s\"", [V]);
value(V) -> io_lib:format("~w", [V]).

json(Pairs) ->
    Body = lists:join(",", [io_lib:format("\"~s\":~s", [K, value(V)]) || {K, V} <- Pairs]),
    io:format("{~s}~n", [Body]).

%% --- make soak ------------------------------------------------------------

watch(Node, Until) ->
    case os:system_time(millisecond) >= Until of
        true -> ok;
        false ->
            [Mem, Procs, Atoms] =
                [rpc:call(Node, erlang, F, A, 5000)
                 || {F, A} <- [{memory, [total]}, {system_info, [process_count]},
                               {system_info, [atom_count]}]],
            Swt = rpc:call(Node, erlang, statistics, [scheduler_wall_time], 5000),
            json([{t, now_us()}, {mem, Mem}, {procs, Procs}, {atoms, Atoms},
                  {swt_on, is_list(Swt)}]),
            receive after 1000 -> ok end,
            watch(Node, Until)
    end.

%% --- the anchor -----------------------------------------------------------

anchor(_Node, Count, _Intv, _Sort, _Tab, I) when I > Count -> ok;
anchor(Node, Count, Intv, Sort, Tab, I) ->
    {R0, S0} = traffic(Node),
    T0 = now_us(),
    Pid = spawn_link(Node, observer_backend, etop_collect, [self()]),
    Info = receive {Pid, I0} -> I0 end,
    T1 = now_us(),
    {R1, S1} = traffic(Node),
    %% #etop_info{procinfo = ProcInfo} is the last field.
    ProcInfo = element(tuple_size(Info), Info),
    _Top = etop_sort(Sort, Tab, ProcInfo, 10),
    T2 = now_us(),
    json([{i, I}, {t0, T0}, {t1, T1}, {t2, T2}, {rx, R1 - R0}, {tx, S1 - S0},
          {procs, length(ProcInfo)}]),
    receive after Intv -> ok end,
    anchor(Node, Count, Intv, Sort, Tab, I + 1).

%% etop:update/1 and etop:sort/2 (OTP 25) with accumulate off:
%% #etop_proc_info{pid, mem, reds, name, runtime, cf, mq}.
etop_sort(Sort, Tab, ProcInfo0, Lines) ->
    ProcInfo = [setelement(6, P, '-') || P <- ProcInfo0],
    Tag = case Sort of
              memory -> 3;
              reductions -> 4;
              msg_q -> 8
          end,
    PI1 = lists:map(
            fun(P) ->
                    Pid = element(2, P),
                    New = case ets:lookup(Tab, Pid) of
                              [Old] -> setelement(4, P, element(4, P) - element(4, Old));
                              [] -> P
                          end,
                    ets:insert(Tab, P),
                    New
            end, ProcInfo),
    lists:sublist(lists:reverse(lists:keysort(Tag, PI1)), Lines).

%% --- the floor ------------------------------------------------------------

floor(_Node, Count, _Intv, _Item, I) when I > Count -> ok;
floor(Node, Count, Intv, Item, I) ->
    {R0, S0} = traffic(Node),
    T0 = now_us(),
    {ok, Us, N} = rpc:call(Node, ?MODULE, scan, [Item]),
    T1 = now_us(),
    {R1, S1} = traffic(Node),
    json([{i, I}, {t0, T0}, {t1, T1}, {t2, T1}, {rx, R1 - R0}, {tx, S1 - S0},
          {procs, N}, {scan_us, Us}]),
    receive after Intv -> ok end,
    floor(Node, Count, Intv, Item, I + 1).

%% Runs on the target.
scan(Item) ->
    T0 = erlang:monotonic_time(microsecond),
    Ps = erlang:processes(),
    N = scan(Ps, Item, 0),
    {ok, erlang:monotonic_time(microsecond) - T0, N}.

scan([P | Ps], Item, N) ->
    _ = erlang:process_info(P, Item),
    scan(Ps, Item, N + 1);
scan([], _Item, N) -> N.

%% Runs on the target: which process_info items make the inspected process
%% run to answer (a signal it must handle, so a trip through a run queue):
%% its reductions go up by one per call for those.
sigcheck() ->
    P = spawn(fun() -> receive stop -> ok end end),
    Reds = fun() -> {reductions, R} = erlang:process_info(P, reductions), R end,
    _ = Reds(),
    Out = [begin
               R0 = Reds(),
               _ = [erlang:process_info(P, I) || _ <- lists:seq(1, 100)],
               {I, Reds() - R0}
           end || I <- [message_queue_len, reductions, memory, current_function,
                        registered_name, initial_call]],
    P ! stop,
    Out.

%% --- where the agent's time goes -------------------------------------------

%% The body of the agent's Sample fun and Scan/Top funs (AGENT_SRC), one
%% step per line, with a clock read between steps. Evaluated on the target
%% by erl_eval in a process of its own, as the agent is; run twice: with a
%% default heap, as the agent runs, and with a heap big enough to need no
%% garbage collection, which shows what the heap growing costs.
-define(STEPS, "
  Clock = fun() -> erlang:monotonic_time(microsecond) end,
  Dup = fun lists:duplicate/2,
  N = 10,
  T0 = Clock(),
  Ps = lists:delete(erlang:self(), erlang:processes()),
  T1 = Clock(),
  Len = length(Ps),
  Raw = lists:zipwith(fun erlang:process_info/2, Ps, Dup(Len, Item)),
  T2 = Clock(),
  Fix = lists:zipwith3(fun maps:get/3, Raw, Dup(Len, #{undefined => {Item, -1}}), Raw),
  T3 = Clock(),
  Vs0 = element(2, lists:unzip(Fix)),
  T4 = Clock(),
  {Vs, Next} = case Delta of
    true ->
      Old = lists:zipwith3(fun maps:get/3, Ps, Dup(Len, Prev), Dup(Len, 0)),
      {lists:zipwith(fun erlang:'-'/2, Vs0, Old), maps:from_list(lists:zip(Ps, Vs0))};
    false -> {Vs0, #{}}
  end,
  T5 = Clock(),
  D = maps:from_list(lists:zip(Vs, Vs)),
  T6 = Clock(),
  TopVals = lists:sublist(lists:reverse(lists:sort(maps:keys(D))), N),
  Kth = lists:last(TopVals),
  T7 = Clock(),
  Pairs = lists:zip(Vs, Ps),
  Pick = fun(Drop) ->
    lists:filter(fun erlang:is_tuple/1,
                 lists:zipwith3(fun maps:get/3, Vs, Dup(Len, Drop), Pairs))
  end,
  Above = lists:sublist(lists:reverse(lists:sort(
            Pick(maps:without(lists:delete(Kth, TopVals), D)))), N),
  T8 = Clock(),
  Need = N - length(Above),
  Ties = case Need > 0 of
    true -> lists:sublist(Pick(maps:remove(Kth, D)), Need);
    false -> []
  end,
  T9 = Clock(),
  erlang:garbage_collect(),
  T10 = Clock(),
  _ = {Next, Ties},
  {Len, maps:size(D), [{processes, T1 - T0}, {process_info_scan, T2 - T1},
   {fix_dead, T3 - T2}, {unzip, T4 - T3}, {reductions_delta, T5 - T4},
   {distinct_map, T6 - T5}, {top_values, T7 - T6}, {pick_above, T8 - T7},
   {pick_ties, T9 - T8}, {gc_after_reply, T10 - T9}, {total, T10 - T0}]}.
").

profile(Node, Item) ->
    {ok, Toks, _} = erl_scan:string(?STEPS),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    Delta = Item =:= reductions,
    %% In delta mode the previous frame's map of pid => reductions is an
    %% input; build it on the target the same way, outside the timing.
    Steps = fun(Heap) ->
        Self = self(),
        Runner = rpc:call(Node, erl_eval, exprs,
            [parse("erlang:spawn_opt(fun() ->
                      Prev = case Delta of
                        true -> Ps0 = erlang:processes(),
                                maps:from_list(lists:zip(Ps0,
                                  [case erlang:process_info(P, reductions) of
                                     {_, R} -> R; _ -> 0 end || P <- Ps0]));
                        false -> #{}
                      end,
                      erlang:garbage_collect(),
                      {value, V, _} = erl_eval:exprs(Exprs,
                        [{'Item', Item}, {'Delta', Delta}, {'Prev', Prev}]),
                      Self ! {profile, V}
                    end, [{min_heap_size, Heap}]).", []),
             lists:sort([{'Exprs', Exprs}, {'Item', Item}, {'Delta', Delta},
                         {'Self', Self}, {'Heap', Heap}])]),
        {value, _, _} = Runner,
        receive {profile, V} -> V after 120000 -> timeout end
    end,
    Report = fun(Label, {Len, Distinct, Ts}) ->
        json([{heap, Label}, {item, Item}, {procs, Len}, {distinct, Distinct}
              | [{K, V} || {K, V} <- Ts]]);
                (_, Other) -> fail("profile: ~p", [Other])
    end,
    Report(default, Steps(233)),
    %% 60 words a process covers every list the steps build at once.
    Len = rpc:call(Node, erlang, system_info, [process_count]),
    Report(presized, Steps(60 * Len)).

parse(Src, _) ->
    {ok, Toks, _} = erl_scan:string(Src),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    Exprs.
