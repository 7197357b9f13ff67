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
        "time,node,port,name,owner,local,remote,recv_cnt,recv_oct,send_cnt,send_oct,\
         queue_bytes,memory_bytes",
        "{csv}"
    );
    assert!(records.len() > 1, "{csv}");
    for r in &records[1..] {
        assert_eq!(r.len(), 13, "{r:?}\n{csv}");
        assert_eq!(r[1], node.full, "{csv}");
        for n in &r[7..] {
            n.parse::<u64>()
                .unwrap_or_else(|_| panic!("'{n}' is not a count\n{csv}"));
        }
    }
    assert_eq!(
        (records[1][3].as_str(), records[1][4].as_str()),
        ("udp_inet", "metrics_exporter"),
        "{csv}"
    );
    assert!(records[1][10].parse::<u64>().unwrap_or(0) > 0, "{csv}");
}
