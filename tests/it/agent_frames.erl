%% The whole agent (src/agent/agent.erl), evaluated by erl_eval on a local VM
%% exactly as etop evaluates it on a node, driven with etop's requests, and
%% checked against a full sort of what process_info says before and after
%% each frame. tests/it/agent.rs compiles and runs it:
%%
%%   agent_frames:main([AgentSourcePath, HeapLimitBytes, Seed])
%%
%% prints "ok Frames Checked" or one line per disagreement, then halts.
%%
%% The node holds puppets: processes that do as many reductions as they
%% are told, keep the messages they are sent, and die when told. A round
%% changes some of them (quiet: only work; churn: some die and new ones
%% start; die-off: most die), reads their values, then asks the agent for
%% a frame: the agent must have read the same values, so every puppet's
%% rank and number can be checked. Reductions are deltas since the previous
%% frame of the same sort (a puppet new since then shows its total), or
%% totals after a frame of another sort or a request naming a frame the
%% agent no longer holds.
-module(agent_frames).
-export([main/1]).

main([Path, HeapLimit, Seed]) ->
    rand:seed(exsss, {list_to_integer(Seed), 17, 29}),
    {ok, Bin} = file:read_file(Path),
    {ok, Toks, _} = erl_scan:string(binary_to_list(Bin)),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    {value, Agent, _} =
        erl_eval:exprs(Exprs, [{'HeapLimit', list_to_integer(HeapLimit)}, {'Owner', self()}]),
    Puppets = spawn_puppets(20000),
    St0 = #{agent => Agent, puppets => Puppets, base => 0, known => none,
            frames => 0, checked => 0, errors => []},
    Plan = plan(),
    St = lists:foldl(fun round/2, St0, Plan),
    call(Agent, stop),
    case maps:get(errors, St) of
        [] -> io:format("ok ~p ~p~n", [maps:get(frames, St), maps:get(checked, St)]);
        Errors -> [io:format("~s~n", [E]) || E <- lists:reverse(Errors)]
    end,
    halt().

%% Rounds: {Change, Sort, Base}; Base `keep` names the last frame, `stale`
%% names one the agent no longer holds.
plan() ->
    Reds = [{quiet, reductions, keep}, {quiet, reductions, keep}, {churn, reductions, keep},
            {churn, reductions, keep}, {quiet, reductions, keep}, {quiet, reductions, keep},
            {churn, reductions, keep}, {none, reductions, keep}, {none, reductions, keep},
            {quiet, reductions, stale}, {quiet, reductions, keep}, {churn, reductions, keep},
            {dieoff, reductions, keep}, {churn, reductions, keep}, {churn, reductions, keep},
            {quiet, reductions, keep}, {quiet, reductions, keep},
            {clustered, reductions, keep}, {clustered, reductions, keep}, {quiet, reductions, keep},
            {clustered, reductions, keep}],
    Others = [{mail, message_queue_len, keep}, {churn, message_queue_len, keep},
              {quiet, memory, keep}, {churn, memory, keep},
              {quiet, reductions, keep}, {churn, reductions, keep}, {quiet, reductions, keep}],
    [{quiet, reductions, keep}] ++ Reds ++ Others ++ Reds.

%% --- puppets ---------------------------------------------------------------

spawn_puppets(N) -> [spawn(fun puppet/0) || _ <- lists:seq(1, N)].

puppet() ->
    receive
        {burn, N, From} -> burn(N), From ! {burnt, self()}, puppet();
        stop -> ok
    end.

burn(0) -> ok;
burn(N) -> burn(N - 1).

some(L, Share) -> [P || P <- L, rand:uniform() < Share].

work(Ps) ->
    [P ! {burn, rand:uniform(20000), self()} || P <- Ps],
    [receive {burnt, P} -> ok end || P <- Ps],
    settle(Ps).

%% A puppet's last reductions of a burn are counted when it is back in its
%% receive: wait for that, so that the values are still while a frame runs.
settle(Ps) ->
    case [P || P <- Ps, erlang:process_info(P, status) =/= {status, waiting}] of
        [] -> ok;
        Busy -> timer:sleep(1), settle(Busy)
    end.

kill(Ps) ->
    Refs = [{P, erlang:monitor(process, P)} || P <- Ps],
    [P ! stop || P <- Ps],
    [receive {'DOWN', R, process, P, _} -> ok end || {P, R} <- Refs],
    ok.

change(none, Ps) -> Ps;
change(quiet, Ps) -> work(some(Ps, 0.05)), Ps;
change(mail, Ps) ->
    [[P ! junk || _ <- lists:seq(1, rand:uniform(300))] || P <- some(Ps, 0.01)],
    Ps;
change(churn, Ps) ->
    Dead = some(Ps, 0.1),
    kill(Dead),
    New = spawn_puppets(length(Dead) + rand:uniform(500)),
    work(some(New, 0.8) ++ some(Ps -- Dead, 0.02)),
    (Ps -- Dead) ++ New;
change(clustered, Ps) ->
    % As request processes come and go on a service: a stretch of
    % neighbours dies, and new processes take the freed slots together, so
    % most of the list is where it was.
    N = length(Ps) div 50,
    Start = rand:uniform(length(Ps) - N),
    Dead = lists:sublist(Ps, Start, N),
    kill(Dead),
    New = spawn_puppets(N + rand:uniform(100)),
    work(some(New, 0.5) ++ some(Ps -- Dead, 0.05)),
    (Ps -- Dead) ++ New;
change(dieoff, Ps) ->
    Dead = some(Ps, 0.75),
    kill(Dead),
    Ps -- Dead.

%% --- one round --------------------------------------------------------------

round({Change, Sort, BaseKind}, St) ->
    #{agent := Agent, puppets := Ps0, base := LastBase} = St,
    Ps = change(Change, Ps0),
    Base = case BaseKind of keep -> LastBase; stale -> LastBase + 1000000 end,
    S0 = snapshot(Sort, Ps),
    Reply = call(Agent, {sample, Sort, 10, true, Base}),
    St1 = St#{puppets := Ps, frames := maps:get(frames, St) + 1},
    case Reply of
        {ok, #{rows := Rows, frame := Frame, delta := Delta}} ->
            check(Sort, BaseKind, Rows, Delta, S0, [Agent | worker(Agent)], St1#{base := Frame});
        Other ->
            % The agent starts over from totals after a failed frame.
            err(St1#{known := none}, "round ~p ~p: reply ~P", [Change, Sort, Other, 20])
    end.

%% The agent's worker is the process it monitors.
worker(Agent) ->
    {monitors, Ms} = erlang:process_info(Agent, monitors),
    [P || {process, P} <- Ms].

%% The puppets' values just before the frame. They do nothing while the
%% agent scans (this process waits for its reply), so these are the values
%% the agent reads; reading a row's details after the scan makes that
%% process run once, which the next snapshot sees and so does the agent's
%% next frame.
snapshot(Sort, Ps) ->
    maps:from_list([{P, V} || P <- Ps, {_, V} <- [erlang:process_info(P, Sort)]]).

call(Agent, Req) ->
    Ref = make_ref(),
    Agent ! {Ref, self(), Req},
    receive {Ref, R} -> R after 60000 -> timeout end.

%% Known: the puppets' reductions as the agent read them in the previous
%% frame, or none when that frame was not a reductions frame.
check(Sort, BaseKind, Rows, Delta, S0, Theirs, St) ->
    Known = maps:get(known, St),
    WantDelta = Sort =:= reductions andalso BaseKind =:= keep andalso Known =/= none,
    Expected =
        case WantDelta of
            false -> S0;
            true ->
                maps:map(fun(P, V) ->
                                 case maps:find(P, Known) of
                                     {ok, Old} -> V - Old;
                                     error -> V    % new since: its total
                                 end
                         end, S0)
        end,
    St1 = case Delta =:= WantDelta of
              true -> St;
              false -> err(St, "~p frame after a ~p base: delta ~p, expected ~p",
                           [Sort, BaseKind, Delta, WantDelta])
          end,
    Got = [{erlang:element(1, R), erlang:element(2, R)} || R <- Rows],
    St2 = lists:foldl(
            fun({P, V}, Acc) ->
                    case {lists:member(P, Theirs), erlang:is_process_alive(P), maps:find(P, Expected)} of
                        {true, _, _} -> err(Acc, "~p: the agent ranked its own ~p", [Sort, P]);
                        {_, false, _} -> err(Acc, "~p: ranked ~p, which is dead", [Sort, P]);
                        {_, _, {ok, V}} -> Acc;
                        {_, _, {ok, W}} -> err(Acc, "~p: ~p shown as ~p, expected ~p", [Sort, P, V, W]);
                        {_, _, error} -> Acc    % not a puppet
                    end
            end, St1, Got),
    % No puppet may rank above the smallest value shown without being shown.
    Shown = sets:from_list([P || {P, _} <- Got]),
    St3 = case length(Got) of
              10 ->
                  Min = lists:min([V || {_, V} <- Got]),
                  Missed = [{P, V} || {P, V} <- maps:to_list(Expected), V > Min,
                                      not sets:is_element(P, Shown)],
                  case Missed of
                      [] -> St2;
                      _ -> err(St2, "~p: missed ~p (smallest shown ~p)",
                               [Sort, lists:sublist(Missed, 3), Min])
                  end;
              N -> err(St2, "~p: ~p rows", [Sort, N])
          end,
    Checked = length([P || {P, _} <- Got, maps:is_key(P, Expected)]),
    St3#{known := case Sort of reductions -> S0; _ -> none end,
         checked := maps:get(checked, St3) + Checked}.

err(St, Fmt, Args) ->
    St#{errors := [lists:flatten(io_lib:format(Fmt, Args)) | maps:get(errors, St)]}.
