//! `etop msacc`: where the threads spend their time, and the flag always put
//! back: at the end, on Ctrl-C, when etop is killed, when the link drops.

use crate::util::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn msacc_reports_the_busy_schedulers_and_puts_the_flag_back() {
    let node = Node::start(NodeOpts { busy: 1, ..quiet() });
    assert!(!msacc_on(&node), "microstate accounting is on before etop");
    // What this VM build accounts, per thread.
    let vm_states = node.eval(
        "lists:usort(lists:flatmap(fun(#{counters := C}) -> maps:keys(C) end, \
         erlang:statistics(microstate_accounting)))",
    );
    let vm_states: BTreeSet<String> = vm_states
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().trim_matches('\'').to_string())
        .collect();
    assert!(vm_states.contains("emulator"), "{vm_states:?}");
    let vm_threads = node.eval_i64("length(erlang:statistics(microstate_accounting))");
    let schedulers = node.eval_i64("erlang:system_info(schedulers)");

    let out = etop(["msacc", "--duration", "2", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        !msacc_on(&node),
        "the flag is still on after etop msacc\n{out}"
    );
    let r = the_json(&out);
    assert_eq!(r["node"], node.full.as_str(), "{out}");
    let secs = num(&r["duration_secs"], "duration_secs", &out);
    assert!((1.9..5.0).contains(&secs), "{out}");
    assert_eq!(r["flag_restored_to"], false, "{out}");
    let states: BTreeSet<String> = r["states"]
        .as_array()
        .expect("states")
        .iter()
        .map(|s| s.as_str().expect("a state name").to_string())
        .collect();
    assert_eq!(states, vm_states, "states the VM does not account\n{out}");
    let types = r["types"].as_object().expect("types");
    let mut threads = 0;
    for (kind, t) in types {
        threads += t["threads"].as_i64().expect("threads");
        let pct = t["pct"].as_object().expect("pct");
        let mut sum = 0.0;
        for (state, p) in pct {
            assert!(states.contains(state), "{kind}: {state}\n{out}");
            let p = num(p, state, &out);
            assert!((0.0..=100.0).contains(&p), "{kind}.{state} = {p}\n{out}");
            sum += p;
        }
        assert!((sum - 100.0).abs() < 0.5, "{kind} adds up to {sum}\n{out}");
    }
    assert_eq!(threads, vm_threads, "{out}");
    assert_eq!(types["scheduler"]["threads"].as_i64(), Some(schedulers));
    // The busy loop keeps one scheduler of two in the emulator.
    let emulator = num(
        &types["scheduler"]["pct"]["emulator"],
        "scheduler emulator",
        &out,
    );
    assert!(emulator > 10.0, "schedulers in emulator {emulator}%\n{out}");

    let out = etop(["msacc", "--duration", "1", "--format", "csv", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        !msacc_on(&node),
        "the flag is still on after etop msacc\n{out}"
    );
    let records = parse_csv(&out.stdout);
    let mut head = vec!["type".to_string(), "id".to_string()];
    head.extend(vm_states.iter().cloned());
    assert_eq!(records[0], head, "{out}");
    assert_eq!(
        records.len() as i64 - 1,
        vm_threads,
        "one row per thread\n{out}"
    );
    for r in &records[1..] {
        assert_eq!(r.len(), head.len(), "{r:?}\n{out}");
        r[1].parse::<u32>()
            .unwrap_or_else(|_| panic!("id '{}'\n{out}", r[1]));
        let sum: f64 = r[2..]
            .iter()
            .map(|v| {
                let p: f64 = v.parse().unwrap_or_else(|_| panic!("'{v}'\n{out}"));
                assert!((0.0..=100.0).contains(&p), "{r:?}\n{out}");
                p
            })
            .sum();
        assert!((sum - 100.0).abs() < 0.5, "{r:?} adds up to {sum}\n{out}");
    }
}

/// Whether a process on the node traps exits and is linked to a process of
/// another node: etop's msacc guard (the agent is linked too, but does not
/// trap exits; the harness's own connection links nothing).
fn guard_in_place(node: &Node) -> bool {
    node.eval(
        "lists:any(fun(P) -> \
           case erlang:process_info(P, [trap_exit, links]) of \
             [{trap_exit, true}, {links, Ls}] -> \
               lists:any(fun(L) -> is_pid(L) andalso node(L) =/= node() end, Ls); \
             _ -> false \
           end \
         end, erlang:processes())",
    ) == "'true'"
}

#[test]
fn msacc_puts_the_flag_back_when_interrupted_or_killed() {
    let node = Node::start(quiet());
    assert!(!msacc_on(&node), "microstate accounting is on before etop");
    let start = || {
        let run = etop(["msacc", "--duration", "30", &node.full])
            .cookie_env(&node.cookie)
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !msacc_on(&node) {
            if Instant::now() > deadline {
                let out = { run }.stop();
                panic!("etop msacc did not turn the flag on\n{out}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        run
    };

    // Ctrl-C: the window ends early, the report is printed, the flag is back
    // before etop exits.
    let run = start();
    run.signal(libc::SIGINT);
    let asked = Instant::now();
    let out = run.wait(crate::util::ETOP_TIMEOUT);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "etop took {:.1} s to stop after SIGINT\n{out}",
        asked.elapsed().as_secs_f64()
    );
    assert_eq!(out.code, Some(0), "{out}");
    let over: f64 = out
        .stdout
        .split_once("microstate accounting over ")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no report\n{out}"));
    assert!(over < 29.0, "the window was not cut short\n{out}");
    assert!(!msacc_on(&node), "the flag is on after Ctrl-C\n{out}");

    // SIGKILL: etop cannot clean up; the guard process on the node must.
    // Killed once the guard is in place; the moment just before is
    // msacc_flag_is_guarded_from_the_moment_it_is_turned_on's to test.
    let mut run = start();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !guard_in_place(&node) {
        if Instant::now() > deadline {
            panic!("no guard process on the node\n{}", run.stop());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run.stop();
    assert_eq!(out.code, None, "etop was not killed\n{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while msacc_on(&node) {
        if Instant::now() > deadline {
            // What is left on the node of etop's session, for the message.
            let hidden = node.eval("erlang:nodes(hidden)");
            let evals = node.eval(
                "[{P, erlang:process_info(P, [current_function, links, trap_exit])} \
                 || P <- erlang:processes(), \
                    {current_function, {erl_eval, _, _}} <- [erlang:process_info(P, current_function)]]",
            );
            panic!(
                "microstate accounting is still on 5 s after etop was killed; \
                 connected hidden nodes: {hidden}; erl_eval processes: {evals}\n{out}\n{}",
                node.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// If the connection drops, a guard process on the node puts the
// microstate_accounting flag back, from the moment the flag is on: the guard
// turns it on itself, after linking to etop's connection, so no moment
// exists where the flag is on and nobody would restore it.
//
// Here a tracer on the node drops etop's connection the moment the flag is
// asked for. Where the agent then is when it dies is up to the schedulers,
// so this is tried up to 12 times, and every try must find the flag off
// again.
#[test]
fn msacc_flag_is_guarded_from_the_moment_it_is_turned_on() {
    let node = Node::start(NodeOpts {
        erl_args: vec!["+S".into(), "2".into()],
        ..quiet()
    });
    for attempt in 1..=12 {
        assert!(!msacc_on(&node), "microstate accounting is on before etop");
        node.eval(&format!(
            "persistent_term:erase(etop_test_dropped), \
             Tracer = erlang:spawn(fun() -> \
               receive {{trace, P, call, {{erlang, system_flag, [microstate_accounting, true]}}}} -> \
                 erlang:trace(all, false, [call]), \
                 erlang:trace_pattern({{erlang, system_flag, 2}}, false, [global]), \
                 erlang:suspend_process(P), \
                 Etops = [N || N <- erlang:nodes(hidden), \
                               not lists:prefix(\"{}\", erlang:atom_to_list(N))], \
                 _ = [erlang:disconnect_node(N) || N <- Etops], \
                 timer:sleep(100), \
                 catch erlang:resume_process(P), \
                 persistent_term:put(etop_test_dropped, Etops) \
               after 20000 -> persistent_term:put(etop_test_dropped, timeout) \
               end \
             end), \
             erlang:trace_pattern({{erlang, system_flag, 2}}, \
                                  [{{[microstate_accounting, true], [], []}}], [global]), \
             erlang:trace(new_processes, true, [call, {{tracer, Tracer}}])",
            crate::util::EVAL_NAME_PREFIX
        ));
        let mut run = etop(["msacc", "--duration", "30", &node.full])
            .cookie_env(&node.cookie)
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(20);
        let dropped = loop {
            let d = node.eval("persistent_term:get(etop_test_dropped, waiting)");
            if d != "'waiting'" {
                break d;
            }
            if Instant::now() > deadline {
                panic!("etop never turned microstate accounting on\n{}", run.stop());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // etop may have had its answer just before: it is of no more use.
        let out = run.stop();
        assert!(
            dropped.contains("etop_"),
            "the tracer found no etop connection to drop: {dropped}\n{out}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while msacc_on(&node) {
            assert!(
                Instant::now() < deadline,
                "try {attempt}: microstate accounting is still on 5 s after etop's \
                 connection dropped (a guard in place: {})\n{out}",
                guard_in_place(&node)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// A connection lost during the window ends the measurement with exit 5 and
// one line: a new connection would know nothing of the window (the node's
// guard puts the flag back).
#[test]
fn msacc_reports_a_connection_lost_during_the_window() {
    let node = Node::start(quiet());
    let run = etop(["msacc", "--duration", "3", &node.full])
        .cookie_env(&node.cookie)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !guard_in_place(&node) {
        if Instant::now() > deadline {
            panic!("no guard process on the node\n{}", { run }.stop());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dropped = node.eval(&format!(
        "Etops = [N || N <- erlang:nodes(hidden), \
                       not lists:prefix(\"{}\", erlang:atom_to_list(N))], \
         _ = [erlang:disconnect_node(N) || N <- Etops], Etops",
        crate::util::EVAL_NAME_PREFIX
    ));
    assert!(dropped.contains("etop_"), "no etop connection: {dropped}");
    let out = run.wait(crate::util::ETOP_TIMEOUT);
    wait_until(
        Duration::from_secs(5),
        "the guard put the flag back",
        || !msacc_on(&node),
    );
    assert_eq!(out.code, Some(5), "a lost connection is exit 5\n{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("lost the connection"), "{out}");
}
