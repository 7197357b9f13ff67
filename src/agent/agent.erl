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
%% - Every process started here (the agent, the process table's worker, one
%%   worker per frame of the ports and ETS views, the msacc guard) has a hard
%%   heap ceiling: max_heap_size with kill => true and error_logger => false.
%%   The ceiling is sized from what a frame needs (words per process, port
%%   or table), never from the previous frame's heap, so nothing grows from
%%   frame to frame. A frame that needs more stops (or is killed by the VM),
%%   the node is untouched, and etop says so.
%% - No step the VM cannot interrupt grows with the node: the process table
%%   is walked in chunks of at most 32,768 processes, with compiled stdlib
%%   functions that yield; nothing per process is ever sent between
%%   processes or copied into a spawned fun (a copy cannot be interrupted);
%%   the worker's heap holds a chunk's work and its state, and a heap that
%%   large is collected on a dirty scheduler.
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
  % The process table is walked by one worker, started on the first process
  % frame and kept for the next ones. It keeps the last frame's reductions
  % itself, so nothing big is ever copied between processes: a copy (a
  % message, a spawned fun's environment) is one step the VM cannot
  % interrupt, and a 1M-process baseline takes tens of milliseconds to copy.
  % It walks the list in chunks of processes, so what a frame builds is a
  % small young heap that minor collections keep small; what it keeps (the
  % process list and one integer per process) lives in its old heap, and
  % the VM collects a heap that large on a dirty scheduler. Defined here,
  % before anything else, so that its environment is Owner, HeapLimit and
  % Me only (a fun's environment is copied to the process that runs it).
  ProcWork = fun() ->
    erlang:put('$initial_call', {etop, frame_worker, 0}),
    erlang:monitor(process, Me),
    Self = erlang:self(),
    WS = erlang:system_info(wordsize),
    % When the VM started, on the clock of mono_us: etop tells a restarted
    % node from a dropped connection by it.
    StartUs = erlang:convert_time_unit(erlang:system_info(start_time), native, microsecond),
    Dup = fun lists:duplicate/2,
    HeapNow = fun() ->
      {total_heap_size, H} = erlang:process_info(Self, total_heap_size),
      H
    end,
    % Integers out of {Item, V}; -1 for a process that died since
    % erlang:processes/0 (process_info gave undefined).
    Ints = fun(Raw, Two, Size) ->
      case lists:member(undefined, Raw) of
        false -> lists:zipwith(fun erlang:element/2, Two, Raw);
        true ->
          Fix = lists:zipwith3(fun maps:get/3, Raw, Dup(Size, #{undefined => {x, -1}}), Raw),
          lists:zipwith(fun erlang:element/2, Two, Fix)
      end
    end,
    % etop:top-begin: tests/it/agent.rs evaluates the text from here to
    % the end marker on its own.
    %
    % The K largest {Value, Pid} seen so far, largest first, kept as
    % {Top, Count, Smallest}. Once there are K, a chunk adds only the values
    % above the smallest, so a chunk of idle processes costs one
    % lists:max/1. The values are integers or, for the sorts without deltas,
    % process_info's {Item, V} as it came (undefined, for a process that
    % died, sorts below every tuple). Any K holders of a tied value would
    % do, but when the smallest is a positive delta, later chunks' holders
    % of it are taken too (the larger pid wins a tie): under churn the
    % first holders met are the oldest of many short-lived processes, which
    % may be gone by the time their details are read.
    Merge = fun(New, Top, K) ->
      T = lists:sublist(lists:reverse(lists:sort(New ++ Top)), K),
      {T, length(T), case T of [] -> undefined; _ -> erlang:element(1, lists:last(T)) end}
    end,
    Keep = fun Keep(Vs, Ps, Size, K, {Top, Count, Kth} = Acc) ->
      case Count < K of
        % The first K values of the frame are taken as they come; the rest
        % of their chunk is compared with the smallest of them.
        true when Size > K - Count ->
          {Vs1, Vs2} = lists:split(K - Count, Vs),
          {Ps1, Ps2} = lists:split(K - Count, Ps),
          Keep(Vs2, Ps2, Size - (K - Count), K, Merge(lists:zip(Vs1, Ps1), Top, K));
        true -> Merge(lists:zip(Vs, Ps), Top, K);
        false ->
          Floor = case erlang:is_integer(Kth) andalso Kth > 0 of
            true -> Kth - 1;
            false -> Kth
          end,
          % max(V, F) is F exactly for the values not above F.
          Above = fun(F) ->
            lists:filter(fun erlang:is_tuple/1,
                         lists:zipwith3(fun maps:get/3, lists:zipwith(fun erlang:max/2, Vs, Dup(Size, F)),
                                        Dup(Size, #{F => x}), lists:zip(Vs, Ps)))
          end,
          case lists:max(Vs) > Floor of
            false -> Acc;
            true ->
              % Not when a chunk is full of the tied value (many processes
              % doing the same small work): sorting them all costs more than
              % it is worth.
              case Above(Floor) of
                Many when Floor =/= Kth, length(Many) > 4 * K -> Merge(Above(Kth), Top, K);
                New -> Merge(New, Top, K)
              end
          end
      end
    end,
    % etop:top-end
    Items = [registered_name, initial_call, current_function, memory, reductions, message_queue_len],
    % The value a process was ranked by, out of its key: a delta, {Item, V}
    % as process_info gave it, or with reductions as the tie-break,
    % [{Item, V}, {reductions, R}] or [binary, V, reductions, R]. Heap is in
    % words on the node and in bytes for etop.
    RankOf = fun({total_heap_size, X}) -> X * WS;
                ([{total_heap_size, X} | _]) -> X * WS;
                ([{_, X} | _]) -> X;
                ([binary, X | _]) -> X;
                ({_, X}) -> X;
                (X) -> X
             end,
    Details = fun Details(_, 0, Rows) -> lists:reverse(Rows);
                  Details([], _, Rows) -> lists:reverse(Rows);
                  Details([{V0, P} | More], Left, Rows) ->
      V = RankOf(V0),
      case erlang:process_info(P, Items) of
        [{_, Reg}, {_, Init0}, {_, Cur}, {_, Mem}, {_, Reds}, {_, Q}] ->
          Init = case Init0 of
            {proc_lib, init_p, _} ->
              try proc_lib:translate_initial_call(P) catch _:_ -> Init0 end;
            _ -> Init0
          end,
          % Heap and binary memory come from the rank when sorted by them;
          % the reductions since the kept baseline are added by the caller.
          Details(More, Left - 1, [{P, V, Reg, Init, Cur, Mem, Reds, Q, undefined, undefined, undefined} | Rows]);
        _ -> Details(More, Left, Rows)
      end
    end,
    % The kept frame's values from a cursor: a list of tuples and how many
    % values of the first one are already passed.
    TakeVals = fun TakeVals(0, Ts, Off, Acc) -> {lists:append(lists:reverse(Acc)), Ts, Off};
                   TakeVals(_, [], Off, Acc) -> {lists:append(lists:reverse(Acc)), [], Off};
                   TakeVals(N, [T | Ts], Off, Acc) ->
                     Avail = erlang:tuple_size(T) - Off,
                     case N < Avail of
                       true ->
                         Part = lists:sublist(erlang:tuple_to_list(T), Off + 1, N),
                         {lists:append(lists:reverse([Part | Acc])), [T | Ts], Off + N};
                       false ->
                         TakeVals(N - Avail, Ts, 0, [lists:nthtail(Off, erlang:tuple_to_list(T)) | Acc])
                     end
               end,
    SkipVals = fun SkipVals(0, Ts, Off) -> {Ts, Off};
                   SkipVals(_, [], Off) -> {[], Off};
                   SkipVals(N, [T | Ts], Off) ->
                     Avail = erlang:tuple_size(T) - Off,
                     case N < Avail of
                       true -> {[T | Ts], Off + N};
                       false -> SkipVals(N - Avail, Ts, 0)
                     end
               end,
    % Reductions in the window for a segment of the process list that is not
    % where the kept list goes on (processes started or gone around it). That
    % is exact because a process keeps its place in erlang:processes/0 (its
    % slot in the process table) for its life: two lists have their common
    % processes in the same order. The segment's processes are looked up in
    % windows of the kept list (a map of Size + Slack entries, so no call on
    % the node works on more than that at once). A process still unmatched
    % is new, and counts from 0, once a kept process after the last one
    % matched is alive (it is in the new list after the segment, so every
    % kept process before it was seen), or the kept list ends. A window
    % whose rest is all dead is dropped and the next one searched: the dead
    % are never shown, and a kept process that died after this frame's list
    % was taken, found later as "new", is dead too. Returns the deltas and
    % how many kept processes the segment used up.
    Match = fun(Seg, Vs, Size, OPs0, Ts0, Off0, Slack, Room) ->
      Win = fun Win(Olds, OPs, Ts, Off, Base, Used) ->
        WinPs = lists:sublist(OPs, Size + Slack),
        W = length(WinPs),
        {WinVs, Ts1, Off1} = TakeVals(W, Ts, Off, []),
        Index = maps:from_list(lists:zip(WinPs, lists:seq(2, W + 1))),
        Idx = lists:zipwith3(fun maps:get/3, Seg, Dup(Size, Index), Dup(Size, 1)),
        % An atom sorts after every number: min/2 keeps what an earlier
        % window found.
        Found = lists:zipwith(fun erlang:element/2, Idx, Dup(Size, erlang:list_to_tuple([none | WinVs]))),
        Olds1 = lists:zipwith(fun erlang:min/2, Olds, Found),
        Last = lists:max(Idx) - 1,
        Used1 = case Last of 0 -> Used; _ -> Base + Last end,
        Done = (not lists:member(none, Olds1)) orelse W < Size + Slack orelse
               lists:any(fun erlang:is_process_alive/1, lists:nthtail(Last, WinPs)),
        case Done of
          true -> {Olds1, Used1};
          false ->
            Room(0),
            Win(Olds1, lists:nthtail(W, OPs), Ts1, Off1, Base + W, Base + W)
        end
      end,
      {Olds, Used} = Win(Dup(Size, none), OPs0, Ts0, Off0, 0, 0),
      Zeros = lists:zipwith3(fun maps:get/3, Olds, Dup(Size, #{none => 0}), Olds),
      {lists:zipwith(fun erlang:'-'/2, Vs, Zeros), Used}
    end,
    % etop:filter-begin
    %
    % A filter, evaluated for every process of a chunk with compiled stdlib
    % functions (one pass of the chunk per step, never interpreted code per
    % process): a list of booleans, one per process.
    %   {all, Fs} | {any, Fs}        every / some of Fs
    %   {cmp, Item, Op, V}            process_info's Item against V (bytes
    %                                 for memory, total_heap_size, binary)
    %   {reds, Op, V}                 reductions in the window
    %   {reds_pct, Op, Milli}         their share of the node's, in 1/1000 %
    %   {word, W}                     W (lower case) in the registered name,
    %                                 current function or initial call
    % Reductions in the window are known only in a frame ranked by their
    % change (Ctx deltas); elsewhere such a condition lets every process
    % through, and etop judges the rows it gets.
    % Items of a chunk; a process gone (undefined) or unregistered ([]) as
    % {Item, Default}.
    ItemsOf = fun(Item, Ps1, Size, Default) ->
      Raw = lists:zipwith(fun erlang:process_info/2, Ps1, Dup(Size, Item)),
      Gone = #{undefined => {Item, Default}, [] => {Item, Default}},
      lists:zipwith3(fun maps:get/3, Raw, Dup(Size, Gone), Raw)
    end,
    % {binary, Bytes}: the sizes of the off-heap binaries each process
    % refers to, summed (lists:unzip3/1 and lists:sum/1, compiled).
    BinSums = fun(Ps1, Size) ->
      Lists = lists:zipwith(fun erlang:element/2, Dup(Size, 2), ItemsOf(binary, Ps1, Size, [])),
      Sizes = lists:zipwith(fun erlang:element/2, Dup(Size, 2), lists:map(fun lists:unzip3/1, Lists)),
      lists:zip(Dup(Size, binary), lists:map(fun lists:sum/1, Sizes))
    end,
    OpFun = fun(gt) -> fun erlang:'>'/2; (ge) -> fun erlang:'>='/2; (lt) -> fun erlang:'<'/2;
               (le) -> fun erlang:'=<'/2; (eq) -> fun erlang:'=='/2; (_) -> fun erlang:'/='/2
            end,
    TextOf = fun({M, F, A}) when is_atom(M), is_atom(F), is_integer(A) ->
                   erlang:atom_to_list(M) ++ ":" ++ erlang:atom_to_list(F) ++ "/" ++ erlang:integer_to_list(A);
                (R) when is_atom(R) -> erlang:atom_to_list(R);
                (_) -> ""
             end,
    % Does W appear in each term's text? The text is made once per distinct
    % term (most processes share a current function and an initial call),
    % and looked up for every process.
    WordIn = fun(W, Terms, Size) ->
      U = lists:usort(Terms),
      Hits = [string:str(string:to_lower(TextOf(T)), W) > 0 || T <- U],
      lists:zipwith3(fun maps:get/3, Terms, Dup(Size, maps:from_list(lists:zip(U, Hits))), Dup(Size, false))
    end,
    Mask = fun Mask({all, Fs}, Ps1, Size, Ctx) ->
                   lists:foldl(fun(F, Acc) -> lists:zipwith(fun erlang:'and'/2, Mask(F, Ps1, Size, Ctx), Acc) end,
                               Dup(Size, true), Fs);
               Mask({any, Fs}, Ps1, Size, Ctx) ->
                   lists:foldl(fun(F, Acc) -> lists:zipwith(fun erlang:'or'/2, Mask(F, Ps1, Size, Ctx), Acc) end,
                               Dup(Size, false), Fs);
               Mask({cmp, binary, Op, V}, Ps1, Size, _) ->
                   lists:zipwith(OpFun(Op), BinSums(Ps1, Size), Dup(Size, {binary, V}));
               Mask({cmp, total_heap_size, Op, V}, Ps1, Size, _) ->
                   lists:zipwith(OpFun(Op), ItemsOf(total_heap_size, Ps1, Size, 0),
                                 Dup(Size, {total_heap_size, V / WS}));
               Mask({cmp, Item, Op, V}, Ps1, Size, _) ->
                   lists:zipwith(OpFun(Op), ItemsOf(Item, Ps1, Size, 0), Dup(Size, {Item, V}));
               Mask({reds, Op, V}, _, Size, #{deltas := Ds}) when is_list(Ds) ->
                   lists:zipwith(OpFun(Op), Ds, Dup(Size, V));
               Mask({reds_pct, Op, Milli}, _, Size, #{deltas := Ds, node_reds := T}) when is_list(Ds), is_integer(T) ->
                   lists:zipwith(OpFun(Op), Ds, Dup(Size, Milli * T / 100000));
               Mask({word, W}, Ps1, Size, _) ->
                   Second = fun(L) -> lists:zipwith(fun erlang:element/2, Dup(Size, 2), L) end,
                   lists:foldl(fun(I, Acc) ->
                                 lists:zipwith(fun erlang:'or'/2, WordIn(W, Second(ItemsOf(I, Ps1, Size, '')), Size), Acc)
                               end, Dup(Size, false), [registered_name, current_function, initial_call]);
               Mask(_, _, Size, _) -> Dup(Size, true)
           end,
    % etop:filter-end
    % A chunk whose processes are not where the kept list goes on, in
    % pieces of a sixteenth of a chunk (at most 2,048): a piece where it goes on is read by position,
    % only the others are matched, so the maps a frame builds are the size
    % of a piece and a window, never of a chunk (maps:from_list/1 does not
    % yield). Returns the deltas and the cursor in the kept list after the
    % chunk.
    Moved = fun Moved(_, _, 0, _, _, OPs, Ts, Off, Dss) -> {lists:append(lists:reverse(Dss)), OPs, Ts, Off};
                Moved(Ps, Vs, Left, Piece, Room, OPs, Ts, Off, Dss) ->
      Size = erlang:min(Piece, Left),
      {P1, PRest} = lists:split(Size, Ps),
      {V1, VRest} = lists:split(Size, Vs),
      {Ds, Used} = case lists:prefix(P1, OPs) of
        true ->
          {Olds, _, _} = TakeVals(Size, Ts, Off, []),
          {lists:zipwith(fun erlang:'-'/2, V1, Olds), Size};
        false -> Match(P1, V1, Size, OPs, Ts, Off, 256, Room)
      end,
      {Ts1, Off1} = SkipVals(Used, Ts, Off),
      Moved(PRest, VRest, Left - Size, Piece, Room, lists:nthtail(Used, OPs), Ts1, Off1, [Ds | Dss])
    end,
    % One frame. Kept is what the last reductions frame left, when the agent
    % says it belongs to the frame etop holds: #{ps, chunks, chunk}, that
    % frame's process list and its reductions, a tuple per chunk of `chunk`
    % processes (one word a value, read in order). When erlang:processes/0
    % gives the same list, reductions in the window are found by position,
    % and a chunk whose values did not change keeps the kept tuple, so a
    % quiet frame builds nothing that outlives it. When the list changed,
    % the walk goes on by position wherever the kept list goes on, and
    % matches the segments around processes started or gone (Match): under
    % churn new processes take the process table's free slots in turn, so
    % they gather in a few places of the list, and the rest is matched by
    % position.
    Sample = fun(Item, N, WantDelta, Kept, Limit, Soft, {Filter, RedsBase}) ->
      T0 = erlang:monotonic_time(microsecond),
      RedsNow = erlang:element(1, erlang:statistics(reductions)),
      % The agent and this worker are in the list; and, under churn, many
      % of the largest may be gone by the time their details are read (new
      % processes show their totals, and short-lived ones die): room for
      % both.
      K = N + 2 + erlang:max(4 * N, 128),
      % A frame that needs more than Soft words stops in a step of its own,
      % here or between chunks, rather than being killed by the VM
      % somewhere inside erl_eval (where OTP 25 can report the kill as
      % another exception, in the node's log). A heap is sized by its
      % history too (garbage not yet collected, a frame of a longer process
      % list), so past Soft a full collection comes first: what is live is
      % this worker's state, a few words a process.
      Room = fun(Extra) ->
        case HeapNow() + Extra > Soft of
          true ->
            erlang:garbage_collect(),
            case HeapNow() + Extra > Soft of
              true -> erlang:throw(heap_limit);
              false -> ok
            end;
          false -> ok
        end
      end,
      % The process list alone takes two words a process.
      Room(2 * erlang:system_info(process_count)),
      {Mode, Ps} = case {Item, WantDelta, Kept} of
        {reductions, true, #{ps := OldPs}} ->
          % When the list is the kept one, the kept term is walked: the new
          % copy is garbage at once.
          case erlang:processes() of
            OldPs -> {same, OldPs};
            Fresh -> {moved, Fresh}
          end;
        {reductions, true, none} -> {first, erlang:processes()};
        _ -> {raw, erlang:processes()}
      end,
      Len = length(Ps),
      % Processes per chunk: what a chunk builds (about 20 words a
      % process) is a small part of the ceiling, and the chunks of a frame
      % walked by position are those of the kept one.
      Chunk = case {Mode, Kept} of
        {same, #{chunk := C}} -> C;
        _ -> erlang:max(256, erlang:min(32768, Limit div 1024))
      end,
      % A sort without deltas ranks by the item with total reductions as
      % the tie-break, in one process_info call: when most mailboxes are
      % empty, the busy processes come first, not the oldest.
      Query = case Mode of raw -> [Item, reductions]; _ -> Item end,
      DupsOf = fun(Size) -> {Dup(Size, Query), Dup(Size, 2), Dup(Size, 0)} end,
      % The constant lists a full chunk's passes take, made once and kept
      % in this worker's dictionary (one entry) for the next frames.
      FullDups = case erlang:get(etop_dups) of
        {Query, Chunk, D} -> D;
        _ when Len >= Chunk ->
          D = DupsOf(Chunk),
          erlang:put(etop_dups, {Query, Chunk, D}),
          D;
        _ -> DupsOf(Len)
      end,
      % Reductions the node ran since the kept frame, for reds_pct.
      NodeReds = case Kept of
        #{reds_total := Before} when Mode =:= same; Mode =:= moved -> RedsNow - Before;
        _ -> none
      end,
      % A process the filter leaves out ranks below every other (-1), and
      % is dropped from the top.
      Filtered = fun(Vals, _, _, _) when Filter =:= none -> Vals;
                    (Vals, Ps1, Size, Ds) ->
                      M = Mask(Filter, Ps1, Size, #{deltas => Ds, node_reds => NodeReds}),
                      lists:zipwith3(fun maps:get/3, M, Dup(Size, #{false => -1}), Vals)
                 end,
      KeepF = fun(Vals, Ps1, Size, Ds, Acc) -> Keep(Filtered(Vals, Ps1, Size, Ds), Ps1, Size, K, Acc) end,
      % St: {Top, chunks (reversed), largest heap}, and for a changed list
      % the cursor in the kept one: {kept processes, kept tuples, offset}.
      Step = fun(Ps1, Size, Old, {Acc, Chunks, Heap, Cur}) ->
        {Item1, Two, Zero} = case Size of Chunk -> FullDups; _ -> DupsOf(Size) end,
        Raw = case Item of
          % [binary, Bytes, reductions, R]: compared as the pair.
          binary ->
            lists:zipwith(fun erlang:'++'/2,
                          lists:map(fun erlang:tuple_to_list/1, BinSums(Ps1, Size)),
                          lists:map(fun erlang:tuple_to_list/1, ItemsOf(reductions, Ps1, Size, 0)));
          _ -> lists:zipwith(fun erlang:process_info/2, Ps1, Item1)
        end,
        {Acc1, Chunks1, Cur1} = case Mode of
          raw -> {KeepF(Raw, Ps1, Size, none, Acc), Chunks, Cur};
          first ->
            Vs = Ints(Raw, Two, Size),
            {KeepF(Vs, Ps1, Size, none, Acc), [erlang:list_to_tuple(Vs) | Chunks], Cur};
          same ->
            Vs = Ints(Raw, Two, Size),
            case erlang:list_to_tuple(Vs) of
              Old -> {KeepF(Zero, Ps1, Size, Zero, Acc), [Old | Chunks], Cur};
              Tuple ->
                Ds = lists:zipwith(fun erlang:'-'/2, Vs, erlang:tuple_to_list(Old)),
                {KeepF(Ds, Ps1, Size, Ds, Acc), [Tuple | Chunks], Cur}
            end;
          moved ->
            Vs = Ints(Raw, Two, Size),
            {OPs, Ts, Off} = Cur,
            {Ds, After} = case lists:prefix(Ps1, OPs) of
              true ->
                {Olds, _, _} = TakeVals(Size, Ts, Off, []),
                {TsP, OffP} = SkipVals(Size, Ts, Off),
                {lists:zipwith(fun erlang:'-'/2, Vs, Olds), {lists:nthtail(Size, OPs), TsP, OffP}};
              false ->
                {DsM, OPsM, TsM, OffM} = Moved(Ps1, Vs, Size, erlang:max(256, Chunk div 16), Room, OPs, Ts, Off, []),
                {DsM, {OPsM, TsM, OffM}}
            end,
            {KeepF(Ds, Ps1, Size, Ds, Acc), [erlang:list_to_tuple(Vs) | Chunks], After}
        end,
        {Acc1, Chunks1, erlang:max(Heap, HeapNow()), Cur1}
      end,
      Walk = fun Walk(_, 0, _, St) -> St;
                 Walk(Rest, Left, Old, St) ->
                   Size = erlang:min(Chunk, Left),
                   {Ps1, Rest1} = case Left > Chunk of
                     true -> lists:split(Chunk, Rest);
                     false -> {Rest, []}
                   end,
                   {Old1, OldRest} = case Old of [O | Os] -> {O, Os}; _ -> {none, []} end,
                   St1 = Step(Ps1, Size, Old1, St),
                   Room(0),
                   Walk(Rest1, Left - Size, OldRest, St1)
             end,
      {Chunks0, Cur0} = case {Mode, Kept} of
        {same, #{chunks := KChunks}} -> {KChunks, none};
        {moved, #{ps := KPs, chunks := KChunks}} -> {[], {KPs, KChunks, 0}};
        _ -> {[], none}
      end,
      {{Top, _, _}, RevChunks, Heap, _} =
        Walk(Ps, Len, Chunks0, {{[], 0, undefined}, [], HeapNow(), Cur0}),
      Next = case Mode of
        raw -> none;
        _ -> #{ps => Ps, chunks => lists:reverse(RevChunks), chunk => Chunk, reds_total => RedsNow}
      end,
      Mine = [Self, Me],
      % The first N of them still alive (a detail read makes the process
      % answer, so no more are read than needed), and none the filter left
      % out.
      Rows0 = Details([R || {V, P} = R <- Top, V =/= -1, not lists:member(P, Mine)], N, []),
      % Each row's reductions since the kept frame, when etop asked for
      % them (a one-shot run ranked by something else): the rows' pids are
      % looked for in the kept list chunk by chunk, with a small map.
      Rows = case {RedsBase, Mode, Kept} of
        {true, raw, #{ps := BPs, chunks := BChunks}} when Rows0 =/= [] ->
          Wanted = maps:from_list([{P, true} || {P, _, _, _, _, _, _, _, _, _, _} <- Rows0]),
          BaseMap = fun BaseOf(_, [], BAcc) -> BAcc;
                        BaseOf(BPs1, [BT | BTs], BAcc) ->
                          BSz = erlang:min(erlang:tuple_size(BT), length(BPs1)),
                          {BCps, BRest} = lists:split(BSz, BPs1),
                          BHit = lists:zipwith3(fun maps:get/3, BCps, Dup(BSz, Wanted), Dup(BSz, false)),
                          BVals = lists:sublist(erlang:tuple_to_list(BT), BSz),
                          BFound = proplists:get_all_values(true, lists:zip(BHit, lists:zip(BCps, BVals))),
                          BaseOf(BRest, BTs, maps:merge(BAcc, maps:from_list(BFound)))
                    end(BPs, BChunks, #{}),
          [case maps:find(P, BaseMap) of
             {ok, B} when Reds >= B -> {P, V, Reg, Init, Cur, Mem, Reds, Q, H, Bn, Reds - B};
             _ -> Row
           end || {P, V, Reg, Init, Cur, Mem, Reds, Q, H, Bn, _} = Row <- Rows0];
        _ -> Rows0
      end,
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
         reds_total => RedsNow,
         delta => Mode =:= same orelse Mode =:= moved,
         heap_bytes => erlang:max(Heap, HeapNow()) * WS,
         % Processes whose reductions the worker keeps for the next frame.
         kept => case Next of none -> 0; _ -> Len end,
         rows => Rows}, Next}
    end,
    Loop = fun Loop(State) ->
      receive
        {proc_frame, Me, {sample, Item, N, WantDelta, Base, Opts}, UseState, Limit} ->
          Kept = case UseState of true -> State; false -> none end,
          % A collection needs room for the heap it builds beside the one it
          % empties: the VM kills a process whose heap plus that room passes
          % its ceiling. So a frame uses at most a quarter of the ceiling, and
          % a lower ceiling is set only once the heap is within it.
          Soft = Limit div 4,
          case HeapNow() > Soft of
            true -> erlang:garbage_collect();
            false -> ok
          end,
          case HeapNow() > Soft of
            true -> ok;
            false -> erlang:process_flag(max_heap_size, #{size => Limit, kill => true, error_logger => false})
          end,
          % An error is an answer, not a crash report in the node's log.
          case try {ok, Sample(Item, N, WantDelta, Kept, Limit, Soft, Opts)} catch C:E -> {error, {C, E}} end of
            {ok, {#{procs := Procs} = Info, Next}} ->
              Me ! {frame_done, Self, Info},
              % What is kept is a few words a process; a heap grown far past
              % that by the frame's garbage is given back now rather than
              % held until the next frame (a collection of a heap this
              % large runs on a dirty scheduler).
              case HeapNow() > 16 * Procs + 1048576 of
                true -> erlang:garbage_collect();
                false -> ok
              end,
              % A frame without deltas asked with no frame of etop's (a
              % snapshot: etop watch's other sorts) leaves the kept frame for
              % the next reductions frame.
              case {Next, Base} of
                {none, 0} -> Loop(State);
                _ -> Loop(Next)
              end;
            {error, Why} ->
              Me ! {frame_failed, Self, Why},
              erlang:garbage_collect(),
              Loop(none)
          end;
        {'DOWN', _, process, Me, _} -> ok;
        _ -> Loop(State)
      end
    end,
    Loop(none)
  end,
  % Everything a frame of the ports or ETS view computes, as one fun that
  % takes all it needs as arguments; it runs in a short-lived worker (these
  % views hold one entry per port or table, not per process). A fun's
  % environment is copied to the process that runs it, and the copy does not
  % keep sharing: a worker given a closure over the agent's other closures
  % would start with megabytes of duplicated code. This one carries only its
  % own code.
  Work = fun(Req, Prev, Me) ->
    WS = erlang:system_info(wordsize),
    StartUs = erlang:convert_time_unit(erlang:system_info(start_time), native, microsecond),
    Dup = fun lists:duplicate/2,
    HeapNow = fun() ->
      {total_heap_size, H} = erlang:process_info(erlang:self(), total_heap_size),
      H
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
  % A frame of the process table, computed by the process worker (started
  % here the first time, and again after it failed). The worker holds the
  % reductions of the frame it answered last, numbered Seq here; it uses
  % them only when etop names that frame (Base), and otherwise starts over
  % from totals.
  ProcFrame = fun({sample, Item, _, WantDelta, Base, _} = Req, St) ->
    % The worker's heap, garbage included, per process: measured 10 to 25
    % words at 1M processes, and up to 60 at 20k, where what a chunk
    % builds weighs more. A frame stops at half the ceiling. What the
    % worker keeps may be of more processes than there are now.
    Limit = Ceiling(Need(erlang:max(erlang:system_info(process_count),
                                    maps:get(procs_kept, St, 0)), 128)),
    erlang:process_flag(max_heap_size, HeapOpts(Limit)),
    {W, MRef, Seq} = case maps:find(procs, St) of
      {ok, Running} -> Running;
      error ->
        W0 = proc_lib:spawn_opt(ProcWork, [{max_heap_size, HeapOpts(Limit)}]),
        {W0, erlang:monitor(process, W0), none}
    end,
    W ! {proc_frame, Me, Req, Seq =:= Base, Limit},
    receive
      {frame_done, W, Info} when Base =:= 0, not (Item =:= reductions andalso WantDelta) ->
        % A snapshot: the worker kept the frame it held, under its number.
        {{ok, Info#{heap_limit_bytes => Limit * WS}}, St#{procs => {W, MRef, Seq}}};
      {frame_done, W, #{kept := Kept} = Info} ->
        Next = erlang:unique_integer([positive]),
        {{ok, Info#{frame => Next, heap_limit_bytes => Limit * WS}},
         St#{procs => {W, MRef, Next}, procs_kept => Kept}};
      {frame_failed, W, {throw, heap_limit}} -> {{error, {heap_limit, Limit * WS}}, St#{procs => {W, MRef, none}}};
      {frame_failed, W, Why} -> {{error, Why}, St#{procs => {W, MRef, none}}};
      {'DOWN', MRef, process, W, killed} -> {{error, {heap_limit, Limit * WS}}, maps:remove(procs, St)};
      {'DOWN', MRef, process, W, Reason} -> {{error, {frame_worker, Reason}}, maps:remove(procs, St)}
    end
  end,
  Handle = fun({sample, _, _, _, _, _} = Req, St) -> ProcFrame(Req, St);
              ({sample, Item, N, WantDelta, Base}, St) -> ProcFrame({sample, Item, N, WantDelta, Base, {none, false}}, St);
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
