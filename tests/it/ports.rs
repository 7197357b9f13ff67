//! `etop ports`: the port that carries the traffic comes first.

use crate::util::*;
use std::time::Duration;

#[test]
fn ports_put_the_flooded_udp_socket_first() {
    let node = Node::start(NodeOpts {
        udp_per_sec: 2000,
        ..quiet()
    });
    wait_until(
        Duration::from_secs(10),
        "metrics_exporter registered",
        || node.eval("erlang:whereis(metrics_exporter)") != "'undefined'",
    );
    // One after another: sessions started at the same moment can clash
    // (see simultaneous_sessions_get_distinct_names).
    let run = |format: &str| {
        etop([
            "ports", "--once", "--sort", "send_oct", "--format", format, &node.full,
        ])
        .cookie_env(&node.cookie)
        .run()
        .success()
    };
    let (text, json, csv) = (run("text"), run("json"), run("csv"));

    let head = text.stdout_lines().first().copied().unwrap_or("");
    assert!(head.starts_with(&format!("{}  ", node.full)), "{text}");
    assert!(head.contains("sorted by send_oct"), "{text}");
    assert!(head.contains("traffic over"), "{text}");
    let rows = parse_aligned(&text, "Port ");
    let first = rows.first().unwrap_or_else(|| panic!("no rows\n{text}"));
    assert_eq!(first["Name"], "udp_inet", "{text}");
    assert_eq!(first["Owner"], "metrics_exporter", "{text}");
    assert!(first["Local"].starts_with("127.0.0.1:"), "{text}");
    assert_eq!(first["Remote"], "", "an unconnected UDP socket\n{text}");
    assert!(human_bytes(&first["SendOct"]) > 0.0, "{text}");
    assert!(
        first["SendCnt"].parse::<u64>().expect("SendCnt") > 0,
        "{text}"
    );
    let sent: Vec<f64> = rows.iter().map(|r| human_bytes(&r["SendOct"])).collect();
    assert!(
        sent.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by SendOct: {sent:?}\n{text}"
    );

    let frame = the_json(&json);
    assert_eq!(frame["sort"], "send_oct", "{json}");
    let r0 = &frame["rows"][0];
    assert_eq!(r0["name"], "udp_inet", "{json}");
    assert_eq!(r0["owner"], "metrics_exporter", "{json}");
    let (cnt, oct) = (
        num(&r0["send_cnt"], "send_cnt", &json),
        num(&r0["send_oct"], "send_oct", &json),
    );
    assert!(cnt > 0.0 && oct > 0.0, "{json}");
    // 1 KB datagrams.
    assert_eq!(oct, cnt * 1024.0, "{json}");

    let records = parse_csv(&csv.stdout);
    assert_eq!(
        records[0].join(","),
        "time,node,port,name,owner,owner_pid,local,remote,recv_cnt,recv_oct,send_cnt,\
         send_oct,queue_bytes",
        "{csv}"
    );
    assert!(records.len() > 1, "{csv}");
    for r in &records[1..] {
        assert_eq!(r.len(), 13, "{r:?}\n{csv}");
        assert_eq!(r[1], node.full, "{csv}");
        for n in &r[8..] {
            n.parse::<u64>()
                .unwrap_or_else(|_| panic!("'{n}' is not a count\n{csv}"));
        }
    }
    assert_eq!(
        (records[1][3].as_str(), records[1][4].as_str()),
        ("udp_inet", "metrics_exporter"),
        "{csv}"
    );
    assert!(records[1][11].parse::<u64>().unwrap_or(0) > 0, "{csv}");
}

#[test]
fn ports_name_their_owners_and_write_addresses_one_way() {
    let node = Node::start(NodeOpts {
        udp_per_sec: 50,
        ..quiet()
    });
    wait_until(
        Duration::from_secs(10),
        "metrics_exporter registered",
        || node.eval("erlang:whereis(metrics_exporter)") != "'undefined'",
    );
    // An IPv6 any-address listener held by an unregistered gen_server-like
    // process (proc_lib), and one held by a plain spawned process.
    let port6 = node.eval_i64(
        "Self = self(), \
         proc_lib:spawn(fun() -> {ok, L} = gen_tcp:listen(0, [inet6, {ip, any}]), \
           {ok, P} = inet:port(L), Self ! {port6, P}, receive stop -> ok end end), \
         receive {port6, P} -> P after 5000 -> 0 end",
    );
    assert!(port6 > 0, "{}", node.log());
    let exporter = local_pid(&node.eval_term("erlang:whereis(metrics_exporter)"));
    // A spawned program: its name is its command line, its quotes included.
    let cmd = r#"cat - 'a b' "c""#;
    node.eval(&format!(
        "erlang:spawn(fun() -> _ = open_port({{spawn, {cmd:?}}}, []), receive stop -> ok end end)"
    ));
    let out = etop([
        "ports", "--once", "-l", "1000", "--format", "json", &node.full,
    ])
    .cookie_env(&node.cookie)
    .run()
    .success();
    let frame = the_json(&out);
    let rows = frame["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows\n{out}"));
    assert!(
        rows.iter().all(|r| r.get("memory_bytes").is_none()),
        "{out}"
    );

    let v6 = rows
        .iter()
        .find(|r| r["local"] == format!("[::]:{port6}").as_str())
        .unwrap_or_else(|| panic!("no row for [::]:{port6}\n{out}"));
    // Named by its initial call, as the process table would name it, with
    // its pid beside it.
    let owner = v6["owner"].as_str().unwrap_or_default();
    assert!(owner.contains(':') && owner.contains('/'), "{v6}\n{out}");
    assert!(
        is_local_pid(v6["owner_pid"].as_str().unwrap_or_default()),
        "{v6}"
    );

    let udp = rows
        .iter()
        .find(|r| r["owner"] == "metrics_exporter")
        .unwrap_or_else(|| panic!("no port of metrics_exporter\n{out}"));
    assert_eq!(udp["owner_pid"], exporter.as_str(), "{out}");
    assert!(
        udp["local"]
            .as_str()
            .is_some_and(|l| l.starts_with("127.0.0.1:")),
        "{out}"
    );

    // Every address is written the same way: IPv4 as a.b.c.d:port, IPv6 in
    // brackets; never ':::port'.
    for r in rows {
        for k in ["local", "remote"] {
            let a = r[k].as_str().unwrap_or_default();
            assert!(!a.starts_with(":::"), "{a}\n{out}");
            if !a.is_empty() {
                a.parse::<std::net::SocketAddr>()
                    .unwrap_or_else(|_| panic!("'{a}' is not an address\n{out}"));
            }
        }
    }

    // One rule for names: as the node reports them, in every format; etop
    // adds no quotes of its own.
    assert!(
        rows.iter().any(|r| r["name"] == cmd),
        "no port named {cmd}\n{out}"
    );
    let csv = etop([
        "ports", "--once", "-l", "1000", "--format", "csv", &node.full,
    ])
    .cookie_env(&node.cookie)
    .run()
    .success();
    assert!(
        parse_csv(&csv.stdout).iter().any(|r| r[3] == cmd),
        "no CSV row named {cmd}\n{csv}"
    );

    let text = etop(["ports", "--once", "-l", "1000", &node.full])
        .env("COLUMNS", "300")
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert!(
        text.stdout_lines()
            .iter()
            .any(|l| l.contains(&format!("  {cmd}  "))),
        "no row shows {cmd} as it is\n{text}"
    );
    let rows = parse_aligned(&text, "Port ");
    assert!(
        rows.iter().any(|r| r["Local"] == format!("[::]:{port6}")
            && is_local_pid(&r["Owner Pid"])
            && r["Owner"].contains('/')),
        "{text}"
    );
    assert!(!text.stdout.contains("Memory"), "{text}");
}
