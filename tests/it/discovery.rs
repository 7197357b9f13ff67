//! The BEAMs on this host: found by their argv or, named at run time, by
//! their EPMD port; several must be told apart.

use crate::util::*;
use std::time::Duration;

#[test]
fn a_node_named_at_runtime_is_found_by_its_epmd_port() {
    // No name and no cookie in argv: distribution starts from inside Erlang
    // (net_kernel:start/1) and the cookie is the node's $HOME/.erlang.cookie,
    // written with a trailing newline.
    let node = Node::start(NodeOpts {
        naming: Naming::Runtime,
        cookie_in_home: true,
        ..quiet()
    });
    let argv = std::fs::read(format!("/proc/{}/cmdline", node.os_pid())).expect("cmdline");
    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
    for flag in [" -sname ", " -name ", " -setcookie "] {
        assert!(!argv.contains(flag), "{flag} in the node's argv: {argv}");
    }
    let fake = FakeProc::new(&[node.os_pid()]);
    let source = format!("$HOME/.erlang.cookie of user {}", crate::util::our_user());

    let out = etop(["nodes", "--proc-root", &fake.arg()]).run().success();
    assert!(
        out.stdout.contains(&node.full),
        "the node's name is not listed\n{out}"
    );
    assert!(out.stdout.contains(&source), "{out}");
    let (listed, out) = nodes_json(&fake);
    let line = &listed[&u64::from(node.os_pid())];
    assert_eq!(line["node"], node.full.as_str(), "{out}");
    let epmd_port = etop::node::epmd::names("localhost", Duration::from_secs(2))
        .expect("EPMD answers")
        .into_iter()
        .find(|(n, _)| *n == node.name)
        .map(|(_, p)| u64::from(p));
    assert_eq!(line["dist_port"].as_u64(), epmd_port, "{out}");

    attaches_with_targets_cookie(&fake, None, &node, &source);
}

#[test]
fn several_local_nodes_must_be_named_by_name_or_pid() {
    let nodes = Node::start_all(vec![quiet(), quiet()]);
    let (a, b) = (&nodes[0], &nodes[1]);
    let fake = FakeProc::new(&[a.os_pid(), b.os_pid()]);

    let out = etop(["--once", "--proc-root", &fake.arg()]).run();
    assert_eq!(out.code, Some(2), "{out}");
    let line = crate::util::single_error_line(&out);
    for n in [a, b] {
        assert!(line.contains(&n.full), "{} is not listed\n{out}", n.full);
        assert!(line.contains(&n.os_pid().to_string()), "{out}");
    }

    let (listed, out) = nodes_json(&fake);
    assert_eq!(listed.len(), 2, "{out}");
    for n in [a, b] {
        let l = &listed[&u64::from(n.os_pid())];
        assert_eq!(l["node"], n.full.as_str(), "{out}");
        assert_eq!(l["cookie"], "argv", "{out}");
    }

    // A bare name for one, the OS pid for the other; no cookie given.
    attaches_with_targets_cookie(&fake, Some(&a.name), a, "argv");
    attaches_with_targets_cookie(&fake, Some(&b.os_pid().to_string()), b, "argv");
}
