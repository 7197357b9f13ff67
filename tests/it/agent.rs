//! The agent's Erlang source on a local VM: it scans and parses (a syntax
//! error fails here with its line, not on a production node); its top-K
//! selection, run by `erl_eval` exactly as the agent runs it, agrees with a
//! plain full sort on random inputs fed chunk by chunk; and the whole agent,
//! evaluated with test bindings and driven with etop's own requests on a VM
//! whose processes the test controls, ranks what a full sort ranks, with
//! exact values, on a quiet node and under churn
//! (`tests/it/agent_frames.erl`).

use std::path::Path;
use std::process::Command;

/// Runs `erl -noshell -eval Src` on a local VM and returns its stdout.
fn eval_on_local_erl(src: &str) -> (String, String) {
    let out = Command::new(crate::util::erl())
        .args(["-noshell", "-eval", src])
        .output()
        .expect("run erl");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The text between two marker comments of the agent source.
fn region(begin: &str, end: &str) -> String {
    let src = etop::agent::AGENT_SRC;
    let a = src
        .find(begin)
        .unwrap_or_else(|| panic!("the agent has no '{begin}' marker"));
    let a = a + src[a..].find('\n').expect("a line after the marker");
    let b = src[a..]
        .find(end)
        .map(|b| a + b)
        .unwrap_or_else(|| panic!("the agent has no '{end}' marker"));
    src[a..b].to_string()
}

#[test]
fn top_k_by_chunks_matches_a_full_sort() {
    let keep = region("% etop:top-begin", "% etop:top-end");
    let keep = keep.trim().trim_end_matches(',');
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keep.erl.txt");
    std::fs::write(&path, format!("{keep}, Keep.")).expect("write the Keep source");
    let check = format!(
        r#"
        {{ok, Bin}} = file:read_file("{path}"),
        {{ok, Toks, _}} = erl_scan:string(binary_to_list(Bin)),
        {{ok, Exprs}} = erl_parse:parse_exprs(Toks),
        {{value, Keep, _}} = erl_eval:exprs(Exprs, [{{'Dup', fun lists:duplicate/2}}]),
        rand:seed(exsss, {{7, 8, 9}}),
        Chunks = fun Chunks([], _, _) -> [];
                     Chunks(Vs, Ps, C) when length(Vs) =< C -> [{{Vs, Ps}}];
                     Chunks(Vs, Ps, C) ->
                       {{V1, V2}} = lists:split(C, Vs), {{P1, P2}} = lists:split(C, Ps),
                       [{{V1, P1}} | Chunks(V2, P2, C)]
                 end,
        Cases = [{{L, K, R, T, C}} || L <- [0, 1, 5, 50, 3000], K <- [1, 3, 12, 60],
                                     R <- [1, 2, 7, 1000000], T <- [int, tuple],
                                     C <- [1, 7, 256, 5000]],
        Bad = [Case || {{L, K, R, T, C}} = Case <- Cases,
               Vs0 <- [[rand:uniform(R) - 1 || _ <- lists:seq(1, L)]],
               Vs <- [case T of
                        int -> Vs0;
                        % process_info's tuples, and undefined for the dead
                        tuple -> [case V rem 5 of 4 -> undefined; _ -> {{memory, V}} end || V <- Vs0]
                      end],
               Ps <- [lists:seq(1, L)],
               {{Got, _, _}} <- [lists:foldl(fun({{V1, P1}}, Acc) -> Keep(V1, P1, length(V1), K, Acc) end,
                                            {{[], 0, undefined}}, Chunks(Vs, Ps, C))],
               not ([V || {{V, _}} <- Got] =:= lists:sublist(lists:reverse(lists:sort(Vs)), K)
                    andalso lists:all(fun({{V, P}}) -> lists:nth(P, Vs) =:= V end, Got)
                    andalso length(lists:usort([P || {{_, P}} <- Got])) =:= length(Got))],
        io:format("~p ~p~n", [length(Cases), Bad]),
        halt().
        "#,
        path = path.display()
    );
    let (stdout, stderr) = eval_on_local_erl(&check);
    assert!(
        stdout == "640 []",
        "the top-K selection disagrees with a full sort on these \
         (length, K, value range, kind, chunk) cases:\n{stdout}\n{stderr}"
    );
}

/// The whole agent on a local VM with 20,000 puppet processes, 50 frames:
/// reductions deltas on a quiet node (the process list unchanged), under
/// churn (processes die and start between frames: at random, a stretch of
/// neighbours, or most of them at once), after a frame etop gave up on, and after frames of the other sorts;
/// the msgq and memory sorts. Every value shown of a process that did not
/// move while the frame was computed must be exact, no such process may rank
/// above the smallest value shown without being shown, and nothing dead or
/// of the agent's own may be shown. An 8 MB ceiling makes the agent walk the
/// process list in several chunks.
#[test]
fn frames_match_a_full_sort_quiet_and_under_churn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let driver = dir.path().join("agent_frames.erl");
    std::fs::write(&driver, include_str!("agent_frames.erl")).expect("write the driver");
    let agent = dir.path().join("agent.erl.txt");
    std::fs::write(&agent, etop::agent::AGENT_SRC).expect("write the agent source");
    let run = format!(
        r#"
        {{ok, agent_frames, Beam}} = compile:file("{driver}", [binary, report]),
        {{module, agent_frames}} = code:load_binary(agent_frames, "{driver}", Beam),
        agent_frames:main(["{agent}", "0", "42"]).
        "#,
        driver = path_str(&driver),
        agent = path_str(&agent),
    );
    let (stdout, stderr) = eval_on_local_erl(&run);
    let ok = stdout
        .strip_prefix("ok ")
        .and_then(|rest| {
            let mut n = rest.split(' ').map(|x| x.parse::<u64>().ok());
            Some((n.next()??, n.next()??))
        })
        .filter(|&(frames, checked)| frames == 50 && checked > 50 * 5);
    assert!(
        ok.is_some(),
        "the agent's frames disagree with a full sort:\n{stdout}\n{stderr}"
    );
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Scans and parses Erlang expressions on a local VM as the node does
/// (erl_scan:string/1, erl_parse:parse_exprs/1): `ok`, or the first error
/// with its line.
fn parse_on_local_erl(src: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("src.erl.txt");
    std::fs::write(&path, src).expect("write the source");
    let check = format!(
        r#"
        {{ok, Bin}} = file:read_file("{path}"),
        R = case erl_scan:string(binary_to_list(Bin)) of
          {{ok, Toks, _}} ->
            case erl_parse:parse_exprs(Toks) of
              {{ok, _}} -> "ok";
              {{error, {{Line, M, E}}}} -> io_lib:format("line ~p: ~s", [Line, M:format_error(E)])
            end;
          {{error, {{Line, M, E}}, _}} -> io_lib:format("line ~p: ~s", [Line, M:format_error(E)])
        end,
        io:format("~s~n", [R]),
        halt().
        "#,
        path = path.display()
    );
    eval_on_local_erl(&check).0
}

#[test]
fn the_agent_source_scans_and_parses() {
    assert_eq!(
        parse_on_local_erl(etop::agent::AGENT_SRC),
        "ok",
        "src/agent/agent.erl does not parse"
    );
    // The check itself can fail, and says where.
    let broken = etop::agent::AGENT_SRC.replacen("Loop(#{})", "Loop(#{)", 1);
    let said = parse_on_local_erl(&broken);
    assert!(said.starts_with("line "), "{said}");
}
