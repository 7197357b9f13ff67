//! Reaching a node: EPMD, names short and long, ports, several sessions at
//! once, and each way of failing with its own line and exit code.

use crate::util::*;
use std::time::Duration;

#[test]
fn epmd_not_reachable() {
    let port = free_port();
    let target = format!("nosuch@{}", crate::util::short_host());
    let out = etop(["--once", &target])
        .cookie_env("anything")
        .env("ERL_EPMD_PORT", &port.to_string())
        .run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("cannot reach EPMD"), "{out}");
    assert!(
        line.contains(&port.to_string()),
        "the port is not named\n{out}"
    );
}

#[test]
fn closed_distribution_port_is_unreachable() {
    let port = free_port();
    let target = format!("nosuch@{}", crate::util::short_host());
    let out = etop(["--once", "--port", &port.to_string(), &target])
        .cookie_env("anything")
        .run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("cannot connect"), "{out}");
    assert!(line.contains(&format!(":{port}")), "{out}");
    assert!(line.to_lowercase().contains("refused"), "{out}");
}

#[test]
fn attaches_to_a_long_name_node() {
    let node = Node::start(NodeOpts {
        long: true,
        ..Default::default()
    });
    assert!(node.full.ends_with("@127.0.0.1"));
    let out = etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        out.stdout.starts_with(&format!("{}  ", node.full)),
        "the header does not name the node\n{out}"
    );
    assert!(!parse_table(&out).is_empty(), "{out}");
}

#[test]
fn a_bare_name_means_a_node_on_this_host() {
    let node = Node::start(NodeOpts::default());
    let out = etop(["--once", "-i", QUICK, &node.name])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        out.stdout.starts_with(&format!("{}  ", node.full)),
        "the header does not name {}\n{out}",
        node.full
    );
    assert!(!parse_table(&out).is_empty(), "{out}");
}

#[test]
fn unknown_node_lists_what_epmd_knows() {
    let node = Node::start(NodeOpts::default());
    let missing = format!(
        "nosuch_{}@{}",
        &crate::util::random_hex()[..8],
        crate::util::short_host()
    );
    let out = etop(["--once", &missing]).cookie_env(&node.cookie).run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    let bare = missing.split('@').next().unwrap_or_default();
    assert!(line.contains(bare), "{out}");
    assert!(
        line.contains(&node.name),
        "the running node {} is not listed\n{out}",
        node.name
    );
    assert!(out.elapsed < Duration::from_secs(5), "too slow\n{out}");
}

#[test]
fn wrong_cookie_is_rejected_quickly_without_leaking_it() {
    // Only the operator's sources count for this node (see
    // cookie_sources_of_our_own).
    let node = Node::start(NodeOpts {
        cookie_hidden: true,
        ..Default::default()
    });
    let wrong = format!("WRONG{}", crate::util::random_hex());

    let out = etop(["--once", &node.full]).cookie_env(&wrong).run();
    assert_eq!(out.code, Some(4), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(line.contains("rejected our cookie"), "{out}");
    assert!(
        line.contains("ERLANG_COOKIE"),
        "the source is not named\n{out}"
    );
    assert!(!out.stderr.contains(&wrong), "the cookie leaked\n{out}");
    assert!(!out.stderr.contains(&node.cookie), "{out}");
    assert!(out.elapsed < Duration::from_secs(5), "too slow\n{out}");

    let out = etop(["--once", &node.full])
        .home_cookie(&format!("{wrong}\n"))
        .run();
    assert_eq!(out.code, Some(4), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains("~/.erlang.cookie"),
        "the source is not named\n{out}"
    );
    assert!(!out.stderr.contains(&wrong), "the cookie leaked\n{out}");
}

#[test]
fn a_node_that_dies_ends_the_session_with_exit_5() {
    // The node halts itself 4 s after the scenario starts.
    let node = Node::start(NodeOpts {
        seconds: 4,
        ..Default::default()
    });
    let out = etop(["--batch", "-i", "0.5", &node.full])
        .cookie_env(&node.cookie)
        .spawn()
        .wait(Duration::from_secs(30));
    assert!(
        out.stdout_lines().iter().any(|l| l.starts_with("Pid ")),
        "no frame was printed before the node died\n{out}"
    );
    assert!(
        out.stderr.contains("lost the connection") || out.stderr.contains("retrying"),
        "stderr does not say what happened\n{out}"
    );
    assert!(
        out.stderr
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("etop: "),
        "{out}"
    );
    // Exit codes: 3 = could not reach the node, 5 = was attached and lost it.
    assert_eq!(
        out.code,
        Some(5),
        "a session whose node went away must exit 5 (connection lost)\n{out}"
    );
    // It kept trying for max(3 intervals, 10 s), long enough for a node to
    // restart, and not much longer.
    assert!(
        out.elapsed >= Duration::from_secs(10),
        "gave up early\n{out}"
    );
    assert!(out.elapsed < Duration::from_secs(25), "too slow\n{out}");
    // Each reason once, not a line per attempt.
    assert!(out.stderr_lines().len() <= 4, "{out}");
}

#[test]
fn port_connects_directly_without_epmd() {
    let node = Node::start(NodeOpts::default());
    let names = etop::node::epmd::names("localhost", Duration::from_secs(3)).expect("EPMD");
    let port = names
        .iter()
        .find(|(n, _)| *n == node.name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("{} not in EPMD: {names:?}", node.name));
    // EPMD "moved" to a closed port: only --port can reach the node now.
    let dead = crate::util::free_port().to_string();
    let out = etop([
        "--once",
        "-i",
        QUICK,
        "--port",
        &port.to_string(),
        &node.full,
    ])
    .cookie_env(&node.cookie)
    .env("ERL_EPMD_PORT", &dead)
    .run()
    .success();
    assert!(out.stdout.contains("Pid"), "{out}");
    let without = etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .env("ERL_EPMD_PORT", &dead)
        .run();
    assert_eq!(without.code, Some(3), "{without}");
}

// etop's own node name is numbered when another etop holds it, so sessions
// never clash, also when their handshakes overlap (two operators, a script
// running two views at once). Both offer etop_<user>, and the target settles
// two pending handshakes under one name by comparing its own name with it:
// when its name sorts after ours it answers the second "nok", and etop takes
// the next name; when it sorts before, it drops the first handshake, which
// etop retries under the next name rather than call it a wrong cookie.
//
// Holding the target's net_kernel for a moment, as on a node whose
// net_kernel is busy, makes the handshakes overlap every time.
#[test]
fn simultaneous_sessions_get_distinct_names() {
    let node = Node::start(quiet());
    // Our own name sorting before the node's and after it: the node settles
    // a clash between two pending handshakes by comparing the names.
    let mut failed = Vec::new();
    for ours in ["a_etop", "zz_etop"] {
        node.eval(
            "erlang:register(etop_test_holder, erlang:spawn(fun() -> \
               erlang:suspend_process(erlang:whereis(net_kernel)), \
               receive release -> ok after 10000 -> ok end \
             end))",
        );
        wait_until(Duration::from_secs(5), "net_kernel suspended", || {
            node.eval("erlang:process_info(erlang:whereis(net_kernel), status)")
                == "{'status','suspended'}"
        });
        let runs: Vec<crate::util::Running> = (0..2)
            .map(|_| {
                etop(["--once", "-i", QUICK, "--name", ours, &node.full])
                    .cookie_env(&node.cookie)
                    .spawn()
            })
            .collect();
        // Both have connected and sent their name by now.
        std::thread::sleep(Duration::from_secs(1));
        node.eval("etop_test_holder ! release");
        wait_until(Duration::from_secs(5), "net_kernel running", || {
            node.eval("erlang:whereis(etop_test_holder)") == "'undefined'"
        });
        for run in runs {
            let out = run.wait(crate::util::ETOP_TIMEOUT);
            if out.code != Some(0) || parse_table(&out).is_empty() {
                failed.push(out.to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 4 sessions started alongside another failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// With no cookie anywhere (an empty HOME, no ERLANG_COOKIE: a fresh root
/// shell), every way of naming a node that is not there says so, with what
/// EPMD knows; never "no cookie".
#[test]
fn a_wrong_or_stopped_node_says_so_whatever_the_cookie() {
    let running = Node::start(quiet());
    let stopped = Node::start(quiet());
    let (stopped_name, stopped_full) = (stopped.name.clone(), stopped.full.clone());
    drop(stopped);
    wait_until(
        Duration::from_secs(10),
        "the stopped node leaves EPMD",
        || {
            etop::node::epmd::names("localhost", Duration::from_secs(1))
                .is_ok_and(|n| !n.iter().any(|(k, _)| *k == stopped_name))
        },
    );
    let host = crate::util::short_host();
    let nosuch = format!("nosuch_{}", &crate::util::random_hex()[..8]);
    for (given, on) in [
        (nosuch.clone(), host.as_str()),
        (format!("{nosuch}@localhost"), "localhost"),
        (format!("{nosuch}@{host}"), host.as_str()),
        (stopped_name.clone(), host.as_str()),
        (stopped_full.clone(), host.as_str()),
    ] {
        let out = etop(["--once", &given]).run();
        assert_eq!(out.code, Some(3), "{out}");
        let line = crate::util::single_error_line(&out);
        let bare = given.split('@').next().unwrap_or_default();
        assert!(
            line.starts_with(&format!(
                "etop: no node named '{bare}' on {on}; EPMD there knows"
            )),
            "{out}"
        );
        assert!(line.contains(&running.name), "{out}");
        assert!(!line.contains("cookie"), "{out}");
    }
    // A host that does not resolve is said as such, not as a cookie problem.
    let out = etop(["--once", &format!("{nosuch}@nosuch-host.invalid")]).run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.starts_with("etop: cannot resolve host 'nosuch-host.invalid'"),
        "{out}"
    );
    // A node that is there, with no cookie anywhere: the line says where
    // its cookie is and how to pass it, and never to make one up.
    let empty = FakeProc::new(&[]);
    let out = etop(["--once", "--proc-root", &empty.arg(), &running.full]).run();
    assert_eq!(out.code, Some(2), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.starts_with(&format!(
            "etop: no cookie for {}: pass it with",
            running.full
        )),
        "{out}"
    );
    assert!(line.contains("releases/COOKIE"), "{out}");
    assert!(!line.contains("create"), "{out}");
}
