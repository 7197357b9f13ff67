//! The agent's top-N selection, run by `erl_eval` on a real VM exactly as the
//! agent runs it, against a plain full sort on random inputs: ties, fewer
//! distinct values than N, all values equal, tuple values as process_info
//! returns them.

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

/// `bench/run --smoke`: the benchmark at 10k processes, one refresh per cell,
/// so the script cannot rot between full runs. It fails when any cell could
/// not be measured; the numbers themselves are not judged here (the machine
/// is shared and the test suite runs in parallel).
#[test]
fn benchmark_smoke_run_measures_every_cell() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("bench/run"))
        .args(["--smoke", "--etop", env!("CARGO_BIN_EXE_etop")])
        .current_dir(root)
        .output()
        .expect("python3 runs bench/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/run --smoke failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    for tool in ["etop", "anchor", "floor"] {
        assert!(
            stdout.contains(tool),
            "the smoke table has no '{tool}' rows:\n{stdout}"
        );
    }
}
