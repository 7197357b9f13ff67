%% A node that looks like a service under load, for `make demo`, the tests
%% and the benchmark. Everything it starts is bounded in count and time.
%%
%%   etop_demo:start(#{idle => 5000, busy => 2, flood_per_sec => 1000,
%%                     flood_cap => 200000, ets_rows_per_sec => 0,
%%                     udp_per_sec => 0, seconds => 3600})
%%
%% - `idle` processes waiting in receive;
%% - `busy` processes in a CPU loop;
%% - 'Demo.Metrics.Worker'-style registered worker `metrics_worker` that
%%   receives `flood_per_sec` messages a second and handles them slower than
%%   that, so its mailbox grows (until `flood_cap`, then it drains);
%% - an ETS table `demo_cache` growing by `ets_rows_per_sec` rows a second;
%% - a registered `metrics_exporter` sending `udp_per_sec` 1 KB datagrams a
%%   second from one UDP socket to another, both on 127.0.0.1;
%% - the node halts itself after `seconds`.
-module(etop_demo).
-export([start/1, start_from_args/0]).

start_from_args() ->
    Args = init:get_plain_arguments(),
    Opts = maps:from_list([parse_arg(A) || A <- Args]),
    start(Opts).

parse_arg(A) ->
    [K, V] = string:split(A, "="),
    {list_to_atom(K), list_to_integer(V)}.

start(Opts0) ->
    Opts = maps:merge(#{idle => 5000, busy => 2, flood_per_sec => 1000,
                        flood_cap => 200000, ets_rows_per_sec => 0,
                        udp_per_sec => 0, seconds => 3600}, Opts0),
    #{idle := Idle, busy := Busy, flood_per_sec := Rate, flood_cap := Cap,
      ets_rows_per_sec := EtsRate, udp_per_sec := UdpRate, seconds := Secs} = Opts,
    _ = [spawn(fun idle/0) || _ <- lists:seq(1, Idle)],
    _ = [spawn(fun busy/0) || _ <- lists:seq(1, Busy)],
    Worker = spawn(fun() -> metrics_worker(Cap) end),
    register(metrics_worker, Worker),
    case Rate > 0 of
        true -> spawn(fun() -> flood(Worker, Rate) end);
        false -> ok
    end,
    case EtsRate > 0 of
        true -> spawn(fun() -> cache(EtsRate) end);
        false -> ok
    end,
    case UdpRate > 0 of
        true -> spawn(fun() -> register(metrics_exporter, self()), udp(UdpRate) end);
        false -> ok
    end,
    spawn(fun() -> timer:sleep(Secs * 1000), erlang:halt() end),
    ok.

idle() ->
    receive stop -> ok end.

busy() ->
    _ = lists:sum(lists:seq(1, 1000)),
    busy().

%% Handles one message every 2 ms: slower than the flood, so the queue grows.
metrics_worker(Cap) ->
    case erlang:process_info(self(), message_queue_len) of
        {message_queue_len, N} when N > Cap ->
            drain();
        _ ->
            ok
    end,
    receive
        {metric, _Name, _Value} -> timer:sleep(2)
    end,
    metrics_worker(Cap).

drain() ->
    receive _ -> drain() after 0 -> ok end.

%% Sends `Rate` messages a second in batches of 10 ms.
flood(Worker, Rate) ->
    PerTick = max(1, Rate div 100),
    _ = [Worker ! {metric, requests, I} || I <- lists:seq(1, PerTick)],
    timer:sleep(10),
    flood(Worker, Rate).

%% Like a metrics exporter pushing to a local collector: every datagram to
%% 127.0.0.1, in batches every 10 ms.
udp(Rate) ->
    {ok, Sink} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    {ok, SinkPort} = inet:port(Sink),
    {ok, Out} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}]),
    udp(Out, SinkPort, max(1, Rate div 100), binary:copy(<<"m">>, 1024)).

udp(Out, Port, PerTick, Payload) ->
    _ = [gen_udp:send(Out, {127, 0, 0, 1}, Port, Payload) || _ <- lists:seq(1, PerTick)],
    timer:sleep(10),
    udp(Out, Port, PerTick, Payload).

cache(Rate) ->
    T = ets:new(demo_cache, [named_table, public, set]),
    cache(T, Rate, 0).

cache(T, Rate, N) ->
    PerTick = max(1, Rate div 10),
    ets:insert(T, [{N + I, binary:copy(<<"x">>, 100)} || I <- lists:seq(1, PerTick)]),
    timer:sleep(100),
    cache(T, Rate, N + PerTick).
