//! `etop ets`: the table that grows comes first, with its growth.

use crate::util::*;
use std::time::Duration;

#[test]
fn ets_puts_the_growing_cache_first() {
    let node = Node::start(NodeOpts {
        ets_rows_per_sec: 2000,
        ..quiet()
    });
    // Bigger than any table of the VM's own (the code server's is ~120K).
    wait_until(Duration::from_secs(10), "demo_cache has 2000 rows", || {
        node.eval_i64("case ets:info(demo_cache, size) of undefined -> 0; N -> N end") >= 2000
    });
    let text = etop(["ets", "--once", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let json = etop([
        "ets", "--once", "-s", "growth", "--format", "json", &node.full,
    ])
    .cookie_env(&node.cookie)
    .run()
    .success();

    let rows = parse_aligned(&text, "Table ");
    let first = rows.first().unwrap_or_else(|| panic!("no rows\n{text}"));
    assert_eq!(first["Table"], "demo_cache", "{text}");
    assert_eq!(first["Id"], "", "a named table shows no id\n{text}");
    assert!(crate::util::is_local_pid(&first["Owner"]), "{text}");
    assert_eq!(
        (first["Type"].as_str(), first["Access"].as_str()),
        ("set", "public")
    );
    assert!(
        first["Size"].parse::<u64>().expect("Size") >= 2000,
        "{text}"
    );
    assert!(first["+Size"].starts_with('+'), "it grows\n{text}");
    let mem: Vec<f64> = rows.iter().map(|r| human_bytes(&r["Memory"])).collect();
    assert!(
        mem.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by memory: {mem:?}\n{text}"
    );

    let frame = the_json(&json);
    assert_eq!(frame["sort"], "growth", "{json}");
    let r0 = &frame["rows"][0];
    assert_eq!(r0["name"], "demo_cache", "{json}");
    assert!(
        num(&r0["memory_growth_bytes"], "memory_growth_bytes", &json) > 0.0,
        "{json}"
    );
    assert!(
        num(&r0["size_growth"], "size_growth", &json) > 0.0,
        "{json}"
    );
}
