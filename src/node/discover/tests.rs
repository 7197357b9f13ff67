use super::*;

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// argv as erl builds it: emulator flags, `--`, erl's own flags, `--`, the user's.
/// A beam.smp argv as erl starts it, with `user` arguments at the end.
pub(super) fn erl_argv(user: &[&str]) -> Vec<String> {
    let mut a = words(&[
        "/usr/lib/erlang/erts-14.2/bin/beam.smp",
        "-P",
        "1000000",
        "--",
        "-root",
        "/usr/lib/erlang",
        "-bindir",
        "/usr/lib/erlang/erts-14.2/bin",
        "-progname",
        "erl",
        "--",
        "-home",
        "/home/rabbit",
        "--",
    ]);
    a.extend(words(user));
    a
}

#[test]
fn split_nul_keeps_odd_words() {
    let raw = b"beam.smp\0--\0-eval\0io:format(\"a 'b' c\")\0\0-sname\0with space\0\0";
    assert_eq!(
        split_nul(raw),
        words(&[
            "beam.smp",
            "--",
            "-eval",
            "io:format(\"a 'b' c\")",
            "",
            "-sname",
            "with space",
            ""
        ])
    );
    assert!(split_nul(b"").is_empty());
    assert_eq!(split_nul(b"no-terminator"), words(&["no-terminator"]));
}

#[test]
fn environ_first_entry_wins_and_junk_is_skipped() {
    let e = parse_environ(b"HOME=/home/a\0JUNK\0X=a=b\0HOME=/other\0EMPTY=\0");
    assert_eq!(e.get("HOME").map(String::as_str), Some("/home/a"));
    assert_eq!(e.get("X").map(String::as_str), Some("a=b"));
    assert_eq!(e.get("EMPTY").map(String::as_str), Some(""));
    assert!(!e.contains_key("JUNK"));
}

#[test]
fn flag_strings_split_like_erl() {
    assert_eq!(
        split_flag_string("  -setcookie 'a b' -x \"c \\\"d\\\"\" e\\ f ''  "),
        words(&["-setcookie", "a b", "-x", "c \"d\"", "e f", ""])
    );
    assert!(split_flag_string("   ").is_empty());
}

#[test]
fn init_words_group_values_under_flags() {
    let a = ErlArgs::from_argv(
        &erl_argv(&[
            "plain", "-sname", "n1", "-eval", "x(). -y", "-noshell", "--", "-config", "a", "b",
            "-extra", "-name", "late",
        ]),
        None,
    );
    assert_eq!(a.first("root"), Some("/usr/lib/erlang"));
    assert_eq!(a.first("home"), Some("/home/rabbit"));
    assert_eq!(a.first("sname"), Some("n1"));
    assert_eq!(a.first("eval"), Some("x(). -y"));
    assert_eq!(a.all("noshell").collect::<Vec<_>>(), vec![&[] as &[String]]);
    assert_eq!(a.all("config").next(), Some(&words(&["a", "b"])[..]));
    // After -extra everything is a plain argument.
    assert_eq!(a.first("name"), None);
    // Emulator flags before the first "--" are not init flags.
    assert_eq!(a.first("P"), None);
}

#[test]
fn own_cookie_follows_the_auth_server_rules() {
    let parse = |user: &[&str]| ErlArgs::from_argv(&erl_argv(user), None);
    assert_eq!(parse(&["-setcookie", "c1"]).own_cookie(), Some("c1"));
    assert_eq!(
        parse(&["-setcookie", "c1", "-setcookie", "other@host", "c2"]).own_cookie(),
        Some("c1")
    );
    // Twice, even with the same value: erl ignores both and reads the file.
    assert_eq!(
        parse(&["-setcookie", "c1", "-setcookie", "c1"]).own_cookie(),
        None
    );
    assert_eq!(
        parse(&["-setcookie", "c1", "-setcookie"]).own_cookie(),
        None
    );
    assert_eq!(parse(&["-setcookie", "-noshell"]).own_cookie(), None);
    assert_eq!(parse(&[]).own_cookie(), None);
}

#[test]
fn env_flags_spliced_by_erl_are_not_counted_twice() {
    // erl already put ERL_FLAGS into the argv.
    let argv = erl_argv(&["-sname", "n1", "--", "-setcookie", "from env"]);
    let e = env(&[("ERL_FLAGS", "-setcookie 'from env'")]);
    let a = ErlArgs::from_argv(&argv, Some(&e));
    assert_eq!(a.own_cookie(), Some("from env"));
    assert_eq!(a.all("setcookie").count(), 1);

    // A beam started without erl: the flags exist only in the environment.
    let bare = words(&["/opt/erts/bin/beam.smp", "--", "-root", "/opt"]);
    let e = env(&[
        ("ERL_AFLAGS", "-sname first"),
        ("ERL_FLAGS", "-sname second -proto_dist inet_tls"),
        ("ERL_ZFLAGS", "-setcookie z"),
    ]);
    let a = ErlArgs::from_argv(&bare, Some(&e));
    assert_eq!(a.node_name(), Some((NameKind::Short, "first")));
    assert_eq!(a.first("proto_dist"), Some("inet_tls"));
    assert_eq!(a.own_cookie(), Some("z"));
    assert_eq!(a.first("root"), Some("/opt"));
}

#[test]
fn node_names() {
    let parse = |user: &[&str]| ErlArgs::from_argv(&erl_argv(user), None);
    assert_eq!(
        parse(&["-name", "a", "-sname", "b"]).node_name(),
        Some((NameKind::Short, "b"))
    );
    assert_eq!(
        parse(&["-name", "a@h.example"]).node_name(),
        Some((NameKind::Long, "a@h.example"))
    );
    assert_eq!(parse(&["-sname", "undefined"]).node_name(), None);
    assert_eq!(parse(&["-noshell"]).node_name(), None);

    assert_eq!(
        full_node_name(NameKind::Short, "a", "web1.example.com", None),
        "a@web1"
    );
    assert_eq!(
        full_node_name(NameKind::Short, "a@other", "web1", None),
        "a@other"
    );
    assert_eq!(
        full_node_name(NameKind::Long, "a", "web1", Some("web1.example.com")),
        "a@web1.example.com"
    );
    assert_eq!(full_node_name(NameKind::Long, "a", "web1", None), "a@web1");
}

#[test]
fn release_roots_from_paths() {
    let r = |p: &str| release_root_from_path(p);
    assert_eq!(
        r("/opt/app/releases/1.2.0/start"),
        Some(PathBuf::from("/opt/app"))
    );
    assert_eq!(
        r("/srv/releases/app/releases/0.1.0/sys.config"),
        Some(PathBuf::from("/srv/releases/app"))
    );
    assert_eq!(r("/releases/1/vm.args"), Some(PathBuf::from("/")));
    assert_eq!(r("/usr/lib/erlang"), None);
    assert_eq!(r("/opt/app/releases/COOKIE"), None);
    assert_eq!(r("/opt/app/releases//x"), None);
}

#[test]
fn argv_redaction() {
    let argv = words(&[
        "beam",
        "--",
        "-setcookie",
        "s3cret",
        "-setcookie",
        "n@h",
        "other",
        "-sname",
        "a",
    ]);
    assert_eq!(
        redact_argv(&argv),
        words(&[
            "beam",
            "--",
            "-setcookie",
            HIDDEN,
            "-setcookie",
            HIDDEN,
            HIDDEN,
            "-sname",
            "a"
        ])
    );
}

#[test]
fn cookie_source_display() {
    assert_eq!(CookieSource::Argv.to_string(), "argv");
    assert_eq!(CookieSource::ReleaseCookieEnv.to_string(), "RELEASE_COOKIE");
    assert_eq!(
        CookieSource::ReleaseCookieFile("/x/releases/COOKIE".into()).to_string(),
        "releases/COOKIE"
    );
    let home = CookieSource::HomeCookieFile {
        path: "/var/lib/rabbitmq/.erlang.cookie".into(),
        user: "rabbit".into(),
    };
    assert_eq!(home.to_string(), "$HOME/.erlang.cookie of user rabbit");
    let conf = CookieSource::ConfigCookieFile {
        path: "/h/.config/erlang/.erlang.cookie".into(),
        user: "u".into(),
    };
    assert_eq!(
        conf.to_string(),
        "$XDG_CONFIG_HOME/erlang/.erlang.cookie of user u"
    );
}

fn epmd(names: &[(&str, u16)]) -> EpmdNames {
    EpmdNames::single(
        4369,
        names.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
    )
}

fn local(pid: u32, name: Option<&str>, ports: Vec<u16>) -> LocalNode {
    LocalNode {
        os_pid: pid,
        user: "root".into(),
        name: name.map(str::to_string),
        name_kind: name.map(|_| NameKind::Short),
        name_from: name.map(|_| NameFrom::Argv),
        listen_ports: ports,
        environ_readable: true,
        ..LocalNode::default()
    }
}

/// A node of user `uid` whose sockets etop cannot read; `user_ports`: what
/// its user listens on (`None`: not even that).
fn hidden(pid: u32, uid: u32, user_ports: Option<Vec<u16>>) -> LocalNode {
    LocalNode {
        uid,
        user: format!("u{uid}"),
        user_listen_ports: user_ports,
        unreadable: vec![
            Unreadable::Sockets,
            Unreadable::Environment,
            Unreadable::Files,
        ],
        environ_readable: false,
        ..local(pid, None, Vec::new())
    }
}

#[test]
fn epmd_names_nodes_started_from_inside() {
    let mut nodes = vec![
        local(1, None, vec![80, 40001]),
        local(2, Some("named@h"), vec![40002]),
        local(3, None, vec![9999]),
    ];
    match_epmd(&mut nodes, &epmd(&[("late", 40001), ("other", 40002)]), "h");
    assert_eq!(nodes[0].name.as_deref(), Some("late@h"));
    assert_eq!(nodes[0].name_kind, Some(NameKind::Short));
    assert_eq!(nodes[0].name_from, Some(NameFrom::EpmdSocket));
    assert_eq!(nodes[1].name.as_deref(), Some("named@h"));
    assert_eq!(nodes[2].name, None);
    match_epmd(&mut nodes[2..], &epmd(&[("l", 9999)]), "h.example.com");
    assert_eq!(nodes[2].name.as_deref(), Some("l@h.example.com"));
    assert_eq!(nodes[2].name_kind, Some(NameKind::Long));
    assert!(!nodes[0].tls());
    nodes[0].proto_dist = Some("inet6_tls".into());
    assert!(nodes[0].tls());
}

#[test]
fn a_node_whose_sockets_are_hidden_is_named_by_its_users_listening_port() {
    // RabbitMQ seen by another user: no name in argv, sockets unreadable;
    // its user (999) listens on 5672 (AMQP) and 25672 (distribution).
    let mut nodes = vec![
        local(1, Some("mine@h"), vec![40000]),
        hidden(473, 999, Some(vec![5672, 15672, 25672])),
    ];
    let names = epmd(&[("mine", 40000), ("rabbit", 25672), ("other", 41000)]);
    match_epmd(&mut nodes, &names, "h");
    assert_eq!(nodes[1].name.as_deref(), Some("rabbit@h"));
    assert_eq!(nodes[1].name_from, Some(NameFrom::EpmdUserPort));
    assert_eq!(crate::node::dist_port(&nodes[1], &names), Some(25672));

    // Two hidden nodes of one user: which is which cannot be told.
    let mut nodes = vec![
        hidden(10, 999, Some(vec![25672, 25673])),
        hidden(11, 999, Some(vec![25672, 25673])),
    ];
    match_epmd(&mut nodes, &epmd(&[("a", 25672), ("b", 25673)]), "h");
    assert!(nodes.iter().all(|n| n.name.is_none()), "{nodes:?}");

    // The port belongs to another user: not this node's.
    let mut nodes = vec![hidden(12, 999, Some(vec![5672]))];
    match_epmd(&mut nodes, &epmd(&[("x", 41000)]), "h");
    assert_eq!(nodes[0].name, None);
}

#[test]
fn with_nothing_readable_the_only_name_left_goes_to_the_only_node_left() {
    let mut nodes = vec![local(1, Some("mine@h"), vec![40000]), hidden(2, 999, None)];
    let names = epmd(&[("mine", 40000), ("svc", 41000)]);
    match_epmd(&mut nodes, &names, "h");
    assert_eq!(nodes[1].name.as_deref(), Some("svc@h"));
    assert_eq!(nodes[1].name_from, Some(NameFrom::EpmdLeft));
    // Two names left: no guess.
    let mut nodes = vec![hidden(2, 999, None)];
    match_epmd(&mut nodes, &epmd(&[("a", 1), ("b", 2)]), "h");
    assert_eq!(nodes[0].name, None);
    // Another node unnamed too: no guess.
    let mut nodes = vec![hidden(2, 999, None), local(3, None, vec![])];
    match_epmd(&mut nodes, &epmd(&[("a", 1)]), "h");
    assert_eq!(nodes[0].name, None);
}

#[test]
fn each_node_is_matched_against_its_own_epmd() {
    let mut own = local(1, None, vec![45000]);
    own.epmd_port = Some(4400);
    let mut nodes = vec![own, local(2, None, vec![45001])];
    let mut names = epmd(&[("plain", 45001), ("wrong", 45000)]);
    names
        .by_port
        .insert(4400, vec![("private".to_string(), 45000)]);
    match_epmd(&mut nodes, &names, "h");
    assert_eq!(nodes[0].name.as_deref(), Some("private@h"));
    assert_eq!(nodes[1].name.as_deref(), Some("plain@h"));
    assert_eq!(crate::node::dist_port(&nodes[0], &names), Some(45000));
}

#[test]
fn a_releases_temporary_shells_are_known_by_name() {
    for yes in [
        "rpc-1a2b-shop@vm",
        "rem-ffff-shop",
        "rpc-12345-shop@h.example.com",
    ] {
        assert!(is_release_shell_name(yes), "{yes}");
    }
    for no in [
        "shop@vm",
        "rpc-shop@vm",
        "rpc--shop",
        "rem-zz-shop",
        "rpc-1a2b-",
        "myrpc-1a-x",
    ] {
        assert!(!is_release_shell_name(no), "{no}");
    }
}

#[test]
fn otp_major_from_the_erts_version() {
    use super::describe::otp_major_of_erts;
    assert_eq!(otp_major_of_erts("13.1.5"), Some(25));
    assert_eq!(otp_major_of_erts("14.2.5.1"), Some(26));
    assert_eq!(otp_major_of_erts("11.0"), Some(23));
    assert_eq!(otp_major_of_erts("10.7.2"), Some(22));
    assert_eq!(otp_major_of_erts("10.2"), Some(21));
    assert_eq!(otp_major_of_erts("7.0"), None);
    assert_eq!(otp_major_of_erts("x"), None);
}
