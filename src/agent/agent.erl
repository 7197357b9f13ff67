%% etop's agent: the one expression etop evaluates on the target with
%% erl_eval (no module is ever loaded). It spawns one process, linked to
%% etop's connection, that answers etop's requests.
%%
%% Bindings given by etop:
%%   Owner      etop's pid on its hidden node.
%%   HeapLimit  the heap ceiling in bytes for every process started here;
%%              0 means the default (see Ceiling below).
%%
%% What it promises the node:
%% - Every process started here (the agent, one worker per frame, the msacc
%%   guard) has a hard heap ceiling: max_heap_size with kill => true and
%%   error_logger => false. A frame that needs more is killed by the VM, the
%%   node is untouched, and etop says so.
%% - The heavy work of a frame runs in a short-lived worker whose heap is
%%   sized from what the work needs (words per process scanned), never from
%%   the previous frame, so nothing grows from frame to frame.
%% - For every process only the item the sort needs; details only for the
%%   rows shown; never mailboxes, state or dictionaries.
%% - Nothing is written but two system flags, both tied to the connection:
%%   scheduler_wall_time (held by the agent; the VM drops it when the agent
%%   exits) and, during etop msacc, microstate_accounting (a guard restores
%%   it if the connection drops).
%% - State a frame is computed from (the last reductions, port counters, ETS
%%   sizes) is tagged with the frame number of the reply that carried it. A
%%   request names the frame etop last received; when that is not the one
%%   kept here (etop gave up waiting for a reply), the answer carries totals
%%   and says so (delta => false), never deltas over a window etop did not see.
%%
%% Every remote call below must be on agent::AGENT_CALLS (a test checks).
% proc_lib starts it, and the '$initial_call' it keeps in the dictionary is
% replaced by ours, so that OTP's etop, observer_cli and another etop show
% every process started here as etop:agent/0, etop:frame_worker/0 or
% etop:msacc_guard/0.
proc_lib:spawn_opt(fun() ->
  Me = erlang:self(),
  erlang:link(Owner),
  erlang:put('$initial_call', {etop, agent, 0}),
  case erlang:function_exported(proc_lib, set_label, 1) of
    true -> proc_lib:set_label(etop_agent);
    false -> ok
  end,
  erlang:system_flag(scheduler_wall_time, true),
  % Everything a frame computes, as one fun that takes all it needs as
  % arguments. A fun's environment is copied to the process that runs it,
  % and the copy does not keep sharing: a worker given a closure over the
  % agent's other closures would start with megabytes of duplicated code.
  % This one carries only its own code.
  Work = fun(Req, Prev, Me) ->
    WS = erlang:system_info(wordsize),
    % When the VM started, on the clock of mono_us: etop tells a restarted
    % node from a dropped connection by it.
    StartUs = erlang:convert_time_unit(erlang:system_info(start_time), native, microsecond),
    Dup = fun lists:duplicate/2,
    HeapNow = fun() ->
      {total_heap_size, H} = erlang:process_info(erlang:self(), total_heap_size),
      H
    end,
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
    Delta = fun(Ps, Vs, _Len, {Ps, Old}) -> lists:zipwith(fun erlang:'-'/2, Vs, Old);
               (Ps, Vs, Len, {OldPs, Old}) ->
                 M = maps:from_list(lists:zip(OldPs, Old)),
                 lists:zipwith(fun erlang:'-'/2, Vs,
                               lists:zipwith3(fun maps:get/3, Ps, Dup(Len, M), Dup(Len, 0)))
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
            {proc_lib, init_p, _} ->
              try proc_lib:translate_initial_call(P) catch _:_ -> Init0 end;
            _ -> Init0
          end,
          [{P, V, Reg, Init, Cur, Mem, Reds, Q}];
        _ -> []
      end
    end,
    % One frame of the process table, in the frame worker. Prev is
    % {Ps, Reductions} of the frame etop holds, or none.
    Sample = fun(Item, N, WantDelta, Prev) ->
      T0 = erlang:monotonic_time(microsecond),
      % The agent and its frame worker leave themselves out: their cost is
      % reported apart (cost_us, heap_bytes).
      Ps = erlang:processes() -- [erlang:self(), Me],
      Len = length(Ps),
      Raw = Scan(Item, Ps, Len),
      H1 = HeapNow(),
      {Vs, Next, IsDelta} = case {WantDelta, Prev} of
        {true, none} -> Now = Ints(Raw, Len), {Now, {Ps, Now}, false};
        {true, _} -> Now = Ints(Raw, Len), {Delta(Ps, Now, Len, Prev), {Ps, Now}, true};
        {false, _} -> {Raw, none, false}
      end,
      H2 = HeapNow(),
      Rows = lists:flatmap(Detail, Top(Vs, Ps, Len, N)),
      H3 = HeapNow(),
      T1 = erlang:monotonic_time(microsecond),
      {#{node => erlang:node(), time => erlang:localtime(), mono_us => T0, start_us => StartUs, procs => Len,
         runq => erlang:statistics(run_queue), memory => erlang:memory(),
         swt => erlang:statistics(scheduler_wall_time), cost_us => T1 - T0,
         elixir => erlang:module_loaded('Elixir.Kernel'),
         schedulers => erlang:system_info(schedulers),
         limits => {Len, erlang:system_info(process_limit),
                    erlang:system_info(port_count), erlang:system_info(port_limit),
                    erlang:system_info(atom_count), erlang:system_info(atom_limit),
                    erlang:system_info(ets_count), erlang:system_info(ets_limit)},
         uptime_ms => erlang:element(1, erlang:statistics(wall_clock)),
         reds_total => erlang:element(1, erlang:statistics(reductions)),
         delta => IsDelta,
         heap_bytes => erlang:max(H1, erlang:max(H2, H3)) * WS,
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
    % Addresses go to etop as they are ({Ip, Port}); etop writes them.
    Addr = fun({ok, {Ip, Port}}) when is_tuple(Ip), is_integer(Port) -> {Ip, Port};
              ({ok, #{addr := Ip, port := Port}}) when is_tuple(Ip), is_integer(Port) -> {Ip, Port};
              (_) -> []
           end,
    OwnerName = fun(Pid) when is_pid(Pid) ->
                      case erlang:process_info(Pid, registered_name) of
                        {registered_name, R} when is_atom(R) -> R;
                        _ -> []
                      end;
                   (_) -> []
                end,
    % A port's owner as the process table names it: its registered name,
    % else its initial call (proc_lib's real one for gen_servers and the like).
    OwnerCall = fun(Pid) when is_pid(Pid) ->
                      case erlang:process_info(Pid, initial_call) of
                        {initial_call, {proc_lib, init_p, _}} ->
                          try proc_lib:translate_initial_call(Pid) catch _:_ -> undefined end;
                        {initial_call, Init} -> Init;
                        _ -> undefined
                      end;
                   (_) -> undefined
                end,
    OwnerOf = fun(Pid) ->
              case OwnerName(Pid) of
                [] -> {Pid, [], OwnerCall(Pid)};
                Reg -> {Pid, Reg, undefined}
              end
            end,
    PortInfo = fun(P, K) -> case erlang:port_info(P, K) of {K, V} -> V; _ -> undefined end end,
    PortRank = fun(Key, Id, {Rc, Ro, Sc, So}) ->
      case Key of
        recv_cnt -> Rc; recv_oct -> Ro; send_cnt -> Sc; send_oct -> So;
        bytes -> Ro + So;
        queue -> case Id of {port, P} -> PortInfo(P, queue_size); _ -> 0 end
      end
    end,
    PortDetail = fun({port, P}) ->
        {PortInfo(P, name), OwnerOf(PortInfo(P, connected)), PortInfo(P, queue_size),
         Addr(catch inet:sockname(P)), Addr(catch inet:peername(P))};
      ({socket, S}) ->
        Info = case catch socket:info(S) of #{} = I -> I; _ -> #{} end,
        Kind = {socket, maps:get(type, Info, undefined), maps:get(protocol, Info, undefined)},
        {Kind, OwnerOf(maps:get(owner, Info, undefined)), 0,
         Addr(catch socket:sockname(S)), Addr(catch socket:peername(S))}
    end,
    % Prev: the counters of the frame etop holds, or none.
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
      Old = case Prev of none -> #{}; _ -> Prev end,
      Ranked = [{PortRank(Key, Id, D), Id, D}
                || {Id, C} <- Counted,
                   D <- [case maps:find(Id, Old) of {ok, O} -> Minus(C, O); error -> C end]],
      Rows = [{Id, V, D, PortDetail(Id)}
              || {V, Id, D} <- lists:sublist(lists:reverse(lists:sort(Ranked)), N)],
      H = HeapNow(),
      T1 = erlang:monotonic_time(microsecond),
      {#{node => erlang:node(), time => erlang:localtime(), mono_us => T0, start_us => StartUs, count => length(Counted),
         cost_us => T1 - T0, delta => Prev =/= none, heap_bytes => H * WS, rows => Rows}, Next}
    end,
    EtsSample = fun(Key, N, Prev) ->
      T0 = erlang:monotonic_time(microsecond),
      Ts = ets:all(),
      L = length(Ts),
      Ms = lists:zipwith(fun ets:info/2, Ts, Dup(L, memory)),
      Ss = lists:zipwith(fun ets:info/2, Ts, Dup(L, size)),
      Live = [{T, M * WS, S} || {T, M, S} <- lists:zip3(Ts, Ms, Ss), is_integer(M), is_integer(S)],
      Next = maps:from_list([{T, {M, S}} || {T, M, S} <- Live]),
      Old = case Prev of none -> #{}; _ -> Prev end,
      Ranked = [{case Key of memory -> M; size -> S; growth -> GM end, T, M, S, GM, GS}
                || {T, M, S} <- Live,
                   {GM, GS} <- [case maps:find(T, Old) of {ok, {PM, PS}} -> {M - PM, S - PS}; error -> {undefined, undefined} end]],
      Sorted = case Key of
        growth -> lists:reverse(lists:sort([R || R <- Ranked, element(1, R) =/= undefined])) ++
                  [R || R <- Ranked, element(1, R) =:= undefined];
        _ -> lists:reverse(lists:sort(Ranked))
      end,
      Info = fun(T, K) -> case catch ets:info(T, K) of undefined -> undefined; {'EXIT', _} -> undefined; V -> V end end,
      Rows = [{T, M, S, GM, GS, Info(T, name), Info(T, named_table), Info(T, owner), OwnerName(Info(T, owner)),
               Info(T, type), Info(T, protection)}
              || {_, T, M, S, GM, GS} <- lists:sublist(Sorted, N)],
      H = HeapNow(),
      T1 = erlang:monotonic_time(microsecond),
      {#{node => erlang:node(), time => erlang:localtime(), mono_us => T0, start_us => StartUs, count => L, cost_us => T1 - T0,
         delta => Prev =/= none, heap_bytes => H * WS,
         total_bytes => lists:sum([M || {_, M, _} <- Live]), rows => Rows}, Next}
    end,
    case Req of
      {sample, Item, N, WantDelta, _} -> Sample(Item, N, WantDelta, Prev);
      {ports, Key, N, _} -> PortSample(Key, N, Prev);
      {ets, Key, N, _} -> EtsSample(Key, N, Prev)
    end
  end,
  % One process in detail, for the detail view and etop proc: its numbers,
  % where it is (the stack), what it is tied to (links, monitors, the first
  % N of each with their names) and how much binary it holds. Never its
  % mailbox, state or dictionary: they can be huge and hold secrets. Like
  % Work, one fun that carries only its own code.
  DetailWork = fun(PidText, N) ->
    P = try erlang:list_to_pid(PidText) catch _:_ -> undefined end,
    Items = [registered_name, initial_call, current_function, current_stacktrace, status,
             message_queue_len, memory, heap_size, total_heap_size, stack_size, reductions,
             garbage_collection, trap_exit, priority, group_leader, links, monitors,
             monitored_by, binary],
    Info = case is_pid(P) of
      true -> erlang:process_info(P, Items);
      false -> undefined
    end,
    case Info of
      L when is_list(L) ->
        M = maps:from_list(L),
        NameOf = fun(X) when is_pid(X) ->
                       case erlang:process_info(X, registered_name) of
                         {registered_name, R} when is_atom(R) -> R;
                         _ -> []
                       end;
                    (X) when is_port(X) ->
                       case erlang:port_info(X, name) of {name, Nm} -> Nm; _ -> [] end;
                    (_) -> []
                 end,
        First = fun(List) -> [{X, NameOf(X)} || X <- lists:sublist(List, N)] end,
        Monitored = [case Mon of {_, X} -> X; X -> X end || Mon <- maps:get(monitors, M)],
        Bins = maps:get(binary, M),
        Init = case maps:get(initial_call, M) of
          {proc_lib, init_p, _} = I0 ->
            try proc_lib:translate_initial_call(P) catch _:_ -> I0 end;
          I0 -> I0
        end,
        % Newer nodes name a process's parent and ancestors without its
        % whole dictionary; older ones do not, and these stay undefined.
        Parent = case catch erlang:process_info(P, parent) of {parent, Pa} -> Pa; _ -> undefined end,
        Ancestors = case catch erlang:process_info(P, {dictionary, '$ancestors'}) of
          {{dictionary, '$ancestors'}, A} when is_list(A) -> lists:sublist(A, N);
          _ -> undefined
        end,
        Gc = maps:get(garbage_collection, M),
        {ok, M#{pid => P, initial_call := Init,
                current_stacktrace := lists:sublist(maps:get(current_stacktrace, M), 2 * N),
                links := First(maps:get(links, M)), links_count => length(maps:get(links, M)),
                monitors := First(Monitored), monitors_count => length(Monitored),
                monitored_by := First(maps:get(monitored_by, M)),
                monitored_by_count => length(maps:get(monitored_by, M)),
                binary := lists:sum([Sz || {_, Sz, _} <- Bins]), binary_count => length(Bins),
                garbage_collection := maps:from_list([KV || {K, _} = KV <- Gc,
                                                            lists:member(K, [minor_gcs, fullsweep_after,
                                                                             min_heap_size, max_heap_size])]),
                parent => Parent, ancestors => Ancestors,
                word_bytes => erlang:system_info(wordsize)}};
      _ -> {error, no_such_process}
    end
  end,
  WS = erlang:system_info(wordsize),
  % A frame over Items processes (or ports, or tables) needs about Words
  % words each (measured: 45 to 65 for the process sorts, with nothing
  % collected before the worker exits). Its worker starts
  % with that heap, so it never stops to collect. The ceiling, unless etop
  % gives one: twice that plus 8 MB, within half of the memory the node
  % already uses, and never below 4 MB.
  Need = fun(Items, Words) -> 65536 + Words * Items end,
  Ceiling = fun(Need0) ->
    case HeapLimit of
      0 ->
        Share = erlang:memory(total) div (2 * WS),
        erlang:max(524288, erlang:min(2 * Need0 + 1048576, Share));
      Bytes -> erlang:max(Bytes div WS, 65536)
    end
  end,
  HeapOpts = fun(Limit) -> #{size => Limit, kill => true, error_logger => false} end,
  MsaccStart = fun(St) ->
    Agent = erlang:self(),
    Guard = proc_lib:spawn_opt(fun() ->
      erlang:put('$initial_call', {etop, msacc_guard, 0}),
      erlang:process_flag(trap_exit, true),
      erlang:link(Owner),
      Old = erlang:system_flag(microstate_accounting, true),
      erlang:system_flag(microstate_accounting, reset),
      Agent ! {msacc_guard, erlang:self(), Old},
      receive
        {'EXIT', _, _} -> erlang:system_flag(microstate_accounting, Old);
        done -> erlang:unlink(Owner)
      end
    end, [{max_heap_size, HeapOpts(65536)}]),
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
  % A frame's work runs in a short-lived worker: its heap starts at the size
  % the work needs (Presize words), it cannot grow past Limit words (the VM
  % kills it instead, silently), and its exit gives the memory back at once.
  InWorker = fun(Req, Prev, Presize, Limit) ->
    Agent = erlang:self(),
    W = proc_lib:spawn_opt(fun() ->
        erlang:put('$initial_call', {etop, frame_worker, 0}),
        % An error is an answer, not a crash report in the node's log.
        R = try {frame_done, Work(Req, Prev, Agent)} catch C:E -> {frame_failed, {C, E}} end,
        Agent ! {erlang:element(1, R), erlang:self(), erlang:element(2, R)}
      end, [{min_heap_size, erlang:min(Presize, Limit div 2)},
            {max_heap_size, HeapOpts(Limit)}]),
    MRef = erlang:monitor(process, W),
    receive
      {frame_failed, W, Why} -> erlang:demonitor(MRef, [flush]), {error, Why};
      {frame_done, W, R} -> erlang:demonitor(MRef, [flush]), {ok, R};
      {'DOWN', MRef, process, W, killed} -> {error, {heap_limit, Limit * WS}};
      {'DOWN', MRef, process, W, Reason} -> {error, {frame_worker, Reason}}
    end
  end,
  % A view's frame: the kept state is used only when it belongs to the
  % frame etop names (Base); the reply carries the number of this frame.
  Frame = fun(View, Req, Base, Items, Words, St) ->
    Presize = Need(Items, Words),
    Limit = Ceiling(Presize),
    erlang:process_flag(max_heap_size, HeapOpts(Limit)),
    Prev = case maps:get(View, St, none) of
      {Base, Kept} -> Kept;
      _ -> none
    end,
    % The old state is dropped before the worker runs: the agent never holds
    % two frames' worth at once. A process sample that keeps no state (not a
    % reductions delta) leaves it alone: etop watch asks for several sorts
    % each frame, and the reductions window must outlive the others.
    St1 = case Req of
      {sample, _, _, false, _} -> St;
      _ -> maps:remove(View, St)
    end,
    case InWorker(Req, Prev, Presize, Limit) of
      {ok, {Info, Next}} ->
        Seq = erlang:unique_integer([positive]),
        St2 = case Next of none -> St1; _ -> St1#{View => {Seq, Next}} end,
        {{ok, Info#{frame => Seq, heap_limit_bytes => Limit * WS}}, St2};
      {error, E} -> {{error, E}, St1}
    end
  end,
  % A detail answer waits at most Ms: asking a process with a huge mailbox
  % for its memory has been seen to take over a second, and a frame must
  % say so rather than freeze.
  Detail = fun(PidText, N, Ms) ->
    Agent = erlang:self(),
    Limit = Ceiling(Need(1, 0)),
    W = proc_lib:spawn_opt(fun() ->
        erlang:put('$initial_call', {etop, frame_worker, 0}),
        R = try {detail_done, DetailWork(PidText, N)} catch C:E -> {frame_failed, {C, E}} end,
        Agent ! {erlang:element(1, R), erlang:self(), erlang:element(2, R)}
      end, [{max_heap_size, HeapOpts(Limit)}]),
    MRef = erlang:monitor(process, W),
    receive
      {detail_done, W, R} -> erlang:demonitor(MRef, [flush]), R;
      {frame_failed, W, Why} -> erlang:demonitor(MRef, [flush]), {error, Why};
      {'DOWN', MRef, process, W, killed} -> {error, {heap_limit, Limit * WS}};
      {'DOWN', MRef, process, W, Reason} -> {error, {frame_worker, Reason}}
    after Ms ->
      erlang:exit(W, kill),
      erlang:demonitor(MRef, [flush]),
      {error, {detail_timeout, Ms}}
    end
  end,
  Handle = fun({sample, Item, _, WantDelta, Base} = Req, St) ->
                 % Reductions deltas under churn build a map of the last
                 % frame; memory values are mostly distinct, so the top-N
                 % selection keeps more of them.
                 Words = case {Item, WantDelta} of
                   {reductions, true} -> 56;
                   {memory, _} -> 72;
                   _ -> 48
                 end,
                 Frame(procs, Req, Base, erlang:system_info(process_count), Words, St);
              ({ports, _, _, Base} = Req, St) ->
                 Frame(ports, Req, Base, erlang:system_info(port_count), 64, St);
              ({ets, _, _, Base} = Req, St) ->
                 Frame(ets, Req, Base, erlang:system_info(ets_count), 64, St);
              ({detail, PidText, N, Ms}, St) -> {Detail(PidText, N, Ms), St};
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
        Loop(St2);
      _ -> Loop(St)
    end
  end,
  Loop(#{})
end, [{max_heap_size, #{size => 524288, kill => true, error_logger => false}}]).
