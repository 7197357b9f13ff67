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
%%   probe Target
%%       What the latency probe (probe_start/0, on the target) recorded
%%       since the last call: how late its timers fired, and the longest
%%       schedule and garbage collection the VM reported, by whose process.
%%
%% And, run on the target itself (bench/run starts them with the node):
%%   probe_start()
%%       A process asking to wake every 1 ms and recording how late it wakes,
%%       free to move between schedulers like any process of the node's
%%       service; one more per normal scheduler, bound to it, for the
%%       longest stall of any scheduler (a process that holds a scheduler
%%       delays every timer of that scheduler); and a system monitor for
%%       schedules and collections over 10 ms.
%%   churn(PerSec, LifeMs)
%%       The churn load: PerSec short-lived processes started a second (in
%%       batches every 10 ms), each doing a little work and living LifeMs.
%%
%% Every line carries unix-time microseconds (os:system_time/1, the same
%% clock as Python's time.time()) so that bench/run can cut its CPU samples
%% of the target at the same instants, and the bytes counted on the
%% distribution socket to the target (inet:getstat/2 of its port).
-module(etop_bench).
-export([main/1, scan/1, sigcheck/0, probe_start/0, probe_take/0, churn/2]).

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
run("probe", Node, []) ->
    case rpc:call(Node, ?MODULE, probe_take, [], 30000) of
        {ok, Pairs} -> json([{t, now_us()} | Pairs]);
        Other -> fail("probe: ~p", [Other])
    end;
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
                        registered_name, initial_call, total_heap_size, binary]],
    P ! stop,
    Out.

%% --- the latency probe (runs on the target) --------------------------------

-define(BUCKET_US, 50).
-define(BUCKETS, 4000).

probe_start() ->
    Owner = spawn(fun probe_owner/0),
    register(etop_bench_probe, Owner),
    ok.

probe_owner() ->
    Free = spawn(fun() -> probe_loop(erlang:monotonic_time(microsecond)) end),
    Bound = [spawn_probe(I) || I <- lists:seq(1, erlang:system_info(schedulers))],
    erlang:system_monitor(self(), [{long_schedule, 10}, {long_gc, 10}]),
    probe_owner({Free, Bound}, #{}).

%% Bound to scheduler I where the VM allows it (an undocumented spawn option;
%% without it the probe still measures, on whatever scheduler it lands).
%% Normal priority, like the processes of the service the node runs.
spawn_probe(I) ->
    F = fun() -> probe_loop(erlang:monotonic_time(microsecond)) end,
    try spawn_opt(F, [{scheduler, I}])
    catch error:_ -> spawn(F)
    end.

%% Lateness in buckets of 50 us kept in the process dictionary (no heap that
%% grows), and the largest one exactly.
probe_loop(T0) ->
    receive
        {take, From} ->
            From ! {taken, self(), [{B, N} || {{lat, B}, N} <- get()], get(max)},
            erase(),
            probe_loop(erlang:monotonic_time(microsecond))
    after 1 ->
        T1 = erlang:monotonic_time(microsecond),
        Late = T1 - T0 - 1000,
        B = {lat, min(?BUCKETS, max(0, Late) div ?BUCKET_US)},
        put(B, case get(B) of undefined -> 1; N -> N + 1 end),
        case get(max) of
            M when is_integer(M), M >= Late -> ok;
            _ -> put(max, Late)
        end,
        probe_loop(T1)
    end.

probe_owner(Probes, Worst) ->
    receive
        {monitor, Pid, What, Info} ->
            Ms = case lists:keyfind(timeout, 1, Info) of {timeout, T} -> T; false -> 0 end,
            Key = {What, whose(Pid)},
            probe_owner(Probes, Worst#{Key => max(Ms, maps:get(Key, Worst, 0))});
        {take, From} ->
            {Free, Bound} = Probes,
            [P ! {take, self()} || P <- [Free | Bound]],
            Taken = [receive {taken, P, Bs, Max} -> {P, Bs, Max} end || P <- [Free | Bound]],
            {Free, Bs0, Max0} = lists:keyfind(Free, 1, Taken),
            Counts = maps:from_list(Bs0),
            Total = lists:sum(maps:values(Counts)),
            Pct = fun(Q) -> percentile(lists:sort(maps:to_list(Counts)), Q * Total) end,
            Stall = lists:max([0 | [M || {_, _, M} <- Taken, is_integer(M)]]),
            Stalls = [{atom_to_list(What) ++ "_" ++ atom_to_list(Who), Ms}
                      || {{What, Who}, Ms} <- maps:to_list(Worst)],
            From ! {probe, [{n, Total}, {p50_us, Pct(0.5)}, {p99_us, Pct(0.99)},
                            {max_us, if is_integer(Max0) -> Max0; true -> 0 end},
                            {stall_us, Stall} | Stalls]},
            probe_owner(Probes, #{})
    end.

%% The upper edge of the bucket holding the Rank-th sample.
percentile([], _) -> 0;
percentile([{B, N} | Rest], Rank) ->
    case N >= Rank orelse Rest =:= [] of
        true -> (B + 1) * ?BUCKET_US;
        false -> percentile(Rest, Rank - N)
    end.

%% Whose process a monitor event is about, by what the tools put in the
%% process dictionary or the function the process started in.
whose(Pid) when is_pid(Pid) ->
    case erlang:process_info(Pid, [dictionary, initial_call]) of
        [{dictionary, D}, {initial_call, Init}] ->
            case {proplists:get_value('$initial_call', D), Init} of
                {{etop, _, _}, _} -> etop;
                {_, {observer_backend, etop_collect, _}} -> collector;
                {_, {?MODULE, _, _}} -> bench;
                _ -> other
            end;
        undefined -> gone
    end;
whose(_) -> port.

probe_take() ->
    case whereis(etop_bench_probe) of
        undefined -> {error, no_probe};
        P ->
            P ! {take, self()},
            receive {probe, Pairs} -> {ok, Pairs} after 10000 -> {error, timeout} end
    end.

%% --- the churn load (runs on the target) -------------------------------------

churn(PerSec, LifeMs) ->
    spawn(fun() -> churn_loop(max(1, PerSec div 100), LifeMs) end),
    ok.

churn_loop(Batch, LifeMs) ->
    T0 = erlang:monotonic_time(millisecond),
    _ = [spawn(fun() -> request(LifeMs) end) || _ <- lists:seq(1, Batch)],
    Wait = 10 - (erlang:monotonic_time(millisecond) - T0),
    receive after max(0, Wait) -> ok end,
    churn_loop(Batch, LifeMs).

%% A request: a little work, then waiting out its life.
request(LifeMs) ->
    _ = lists:sum(lists:seq(1, 100 + erlang:unique_integer([positive]) rem 200)),
    receive after LifeMs -> ok end.
