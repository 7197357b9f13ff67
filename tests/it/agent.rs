//! The agent's Erlang source, on a local VM: it scans and parses (a syntax
//! error fails here with its line, not on a production node), and its top-N
//! selection, run by `erl_eval` exactly as the agent runs it, agrees with a
//! plain full sort on random inputs: ties, fewer distinct values than N, all
//! values equal, tuple values as process_info returns them.

use std::process::Command;

fn top_source() -> String {
    let src = etop::agent::AGENT_SRC;
    let start = src.find("  Top = fun").expect("the agent defines Top");
    let end = src[start..]
        .find("  Items = [")
        .map(|e| start + e)
        .expect("Items follows Top");
    let top = src[start..end].trim().trim_end_matches(',');
    format!("{top}, Top.")
}

#[test]
fn top_n_matches_a_full_sort() {
    if Command::new("erl").arg("-version").output().is_err() {
        panic!(
            "erl not found: install Erlang with `apt-get install -y erlang-nox` (make test does it)"
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let src_path = dir.path().join("top.erl.txt");
    std::fs::write(&src_path, top_source()).expect("write the Top source");
    let check = format!(
        r#"
        {{ok, Bin}} = file:read_file("{path}"),
        {{ok, Toks, _}} = erl_scan:string(binary_to_list(Bin)),
        {{ok, Exprs}} = erl_parse:parse_exprs(Toks),
        {{value, Top, _}} = erl_eval:exprs(Exprs, [{{'Dup', fun lists:duplicate/2}}]),
        rand:seed(exsss, {{7, 8, 9}}),
        Cases = [{{L, N, K, T}} || L <- [0, 1, 5, 50, 3000], N <- [0, 1, 3, 10, 60],
                                 K <- [1, 2, 7, 1000000], T <- [int, tuple]],
        Bad = [C || {{L, N, K, T}} = C <- Cases,
               Vs0 <- [[rand:uniform(K) - 1 || _ <- lists:seq(1, L)]],
               Vs <- [case T of int -> Vs0; tuple -> [{{memory, V}} || V <- Vs0] end],
               Got <- [Top(Vs, lists:seq(1, L), L, N)],
               not ([V || {{V, _}} <- Got] =:= lists:sublist(lists:reverse(lists:sort(Vs)), N)
                    andalso lists:all(fun({{V, P}}) -> lists:nth(P, Vs) =:= V end, Got)
                    andalso length(lists:usort([P || {{_, P}} <- Got])) =:= length(Got))],
        io:format("~p ~p~n", [length(Cases), Bad]),
        halt().
        "#,
        path = src_path.display()
    );
    let out = Command::new("erl")
        .args(["-noshell", "-eval", &check])
        .output()
        .expect("run erl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim() == "200 []",
        "Top disagrees with a full sort on these (length, N, value range, kind) cases:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let out = Command::new(crate::util::erl())
        .args(["-noshell", "-eval", &check])
        .output()
        .expect("run erl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
