//! An ordinary user on a host whose nodes belong to other users (a
//! RabbitMQ, an ejabberd): /proc hides their sockets, environment and files,
//! and their cookies are the other users' 0400 files. etop still names the
//! nodes, says what it could not read, and which user may. The users are
//! made for the test and removed after it; that needs root, as in CI.

use crate::util::*;
use std::time::Duration;

/// What EPMD lists for a name.
fn epmd_port_of(name: &str) -> u64 {
    etop::node::epmd::names("localhost", Duration::from_secs(2))
        .expect("EPMD answers")
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| u64::from(p))
        .unwrap_or_else(|| panic!("{name} is not in EPMD"))
}

#[test]
fn an_ordinary_user_sees_another_users_nodes_and_is_told_who_can_read_their_cookies() {
    // The users first: they are removed last, after the nodes have stopped.
    let owner = TestUser::create('n');
    let operator = TestUser::create('o');
    let nodes = Node::start_all(vec![
        // Like RabbitMQ: named at boot, not in argv; its cookie in its
        // user's HOME, mode 0400.
        NodeOpts {
            naming: Naming::Runtime,
            cookie_in_home: true,
            run_as: Some(owner.ids),
            ..quiet()
        },
        // Like ejabberd: named in argv, its cookie in its HOME too.
        NodeOpts {
            cookie_in_home: true,
            run_as: Some(owner.ids),
            ..quiet()
        },
    ]);
    let (rabbit, ejabberd) = (&nodes[0], &nodes[1]);
    let fake = FakeProc::new(&[rabbit.os_pid(), ejabberd.os_pid()]);
    let as_operator = |args: &[&str]| etop(args).user(&operator);

    // `etop nodes`: both named, with their distribution ports; what could
    // not be read is said, with who may read it.
    let out = as_operator(&["nodes", "--format", "json", "--proc-root", &fake.arg()])
        .run()
        .success();
    let listed: std::collections::HashMap<u64, serde_json::Value> = json_lines(&out)
        .into_iter()
        .map(|v| (v["os_pid"].as_u64().unwrap_or(0), v))
        .collect();
    for (node, from) in [(rabbit, "epmd_user_port"), (ejabberd, "argv")] {
        let l = &listed[&u64::from(node.os_pid())];
        assert_eq!(
            l["node"],
            node.full.as_str(),
            "not '(not distributed)'\n{out}"
        );
        assert_eq!(l["name_from"], from, "{out}");
        assert_eq!(l["user"], owner.name.as_str(), "{out}");
        assert_eq!(
            l["dist_port"].as_u64(),
            Some(epmd_port_of(&node.name)),
            "{out}"
        );
        assert!(
            l["otp"].as_str().is_some(),
            "OTP is read as another user too\n{out}"
        );
        assert_eq!(l["unreadable"], "fd,environ,root", "{out}");
        let cookie = l["cookie"].as_str().unwrap_or_default();
        assert!(
            cookie.starts_with(&format!("$HOME/.erlang.cookie of user {}", owner.name))
                && cookie.contains(&format!("run as user {} or root", owner.name)),
            "{out}"
        );
        assert!(!cookie.contains("RELEASE_COOKIE"), "{out}");
    }
    let text = as_operator(&["nodes", "--proc-root", &fake.arg()])
        .run()
        .success();
    for node in [rabbit, ejabberd] {
        let note = text
            .stdout_lines()
            .into_iter()
            .find(|l| l.starts_with(&format!("pid {} (user {})", node.os_pid(), owner.name)))
            .unwrap_or_else(|| panic!("no note for pid {}\n{text}", node.os_pid()))
            .to_string();
        assert!(
            note.contains(&format!("etop runs as user {}", operator.name))
                && note.contains(&format!("/proc/{}/{{fd,environ,root}}", node.os_pid()))
                && note.contains(&format!("run as user {} or root", owner.name)),
            "{note}\n{text}"
        );
    }
    assert!(!text.stdout.contains("not distributed"), "{text}");

    // Attaching without a cookie: by OS pid, bare name or full name, the
    // line names the node's cookie file and who may read it; never "no
    // -sname/-name", never "create ~/.erlang.cookie".
    for given in [
        rabbit.os_pid().to_string(),
        rabbit.name.clone(),
        rabbit.full.clone(),
    ] {
        let out = as_operator(&["--once", "--proc-root", &fake.arg(), &given]).run();
        assert_eq!(out.code, Some(2), "{out}");
        let line = crate::util::single_error_line(&out);
        let home_cookie = rabbit.home().join(".erlang.cookie").display().to_string();
        assert_eq!(
            line,
            format!(
                "etop: cannot read the cookie of {} (OS pid {}, user {owner}): its \
                 $HOME/.erlang.cookie of user {owner} ({home_cookie}): permission denied: \
                 run as user {owner} or root; or pass the node's cookie with \
                 --cookie-file PATH or ERLANG_COOKIE",
                rabbit.full,
                rabbit.os_pid(),
                owner = owner.name,
            ),
            "{out}"
        );
    }

    // A wrong name says so, cookie or not.
    let nosuch = format!("nosuch_{}", &random_hex()[..8]);
    let out = as_operator(&["--once", "--proc-root", &fake.arg(), &nosuch]).run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.starts_with(&format!("etop: no node named '{nosuch}'")) && line.contains(&rabbit.name),
        "{out}"
    );

    // Given the cookie, the ordinary user attaches, by OS pid.
    let out = as_operator(&[
        "--once",
        "-i",
        QUICK,
        "--proc-root",
        &fake.arg(),
        &rabbit.os_pid().to_string(),
    ])
    .cookie_env(&rabbit.cookie)
    .run()
    .success();
    assert!(
        out.stdout.starts_with(&format!("{}  ", rabbit.full)),
        "{out}"
    );
    assert!(!parse_table(&out).is_empty(), "{out}");
    drop(nodes);
}
