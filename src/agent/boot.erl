%% How etop starts its agent on a node: this small expression is what etop
%% sends through erl_scan and erl_parse; evaluated with the bindings
%% `Source` (the agent's source, agent.erl) and `Bindings` (the agent's own:
%% Owner, HeapLimit), it scans, parses and evaluates the agent on the node
%% itself, so the agent's tokens and syntax tree never cross the wire. Its
%% value is the agent's pid.
%%
%% It calls only what etop calls through rex (agent::ALLOWED_RPC; a test
%% checks), and binds nothing outside the fun, so the reply holds only the
%% pid and the two bindings etop sent.
(fun() ->
  {ok, Tokens, _} = erl_scan:string(Source),
  {ok, Exprs} = erl_parse:parse_exprs(Tokens),
  {value, Agent, _} = erl_eval:exprs(Exprs, Bindings),
  Agent
end)().
