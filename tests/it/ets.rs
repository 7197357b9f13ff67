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

#[test]
fn growth_of_a_table_that_did_not_change_is_signed_like_any_other() {
    let node = Node::start(quiet());
    node.eval(
        "erlang:spawn(fun() -> T = ets:new(etop_t_still, [named_table, public]), \
           ets:insert(T, [{K, K} || K <- lists:seq(1, 500)]), \
           erlang:register(etop_t_still_owner, erlang:self()), \
           receive stop -> ok end end)",
    );
    wait_until(Duration::from_secs(5), "etop_t_still filled", || {
        node.eval_i64("case ets:info(etop_t_still, size) of undefined -> 0; N -> N end") == 500
    });
    let text = etop(["ets", "--once", "-s", "growth", "-l", "1000", &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    let rows = parse_aligned(&text, "Table ");
    let still = rows
        .iter()
        .find(|r| r["Table"] == "etop_t_still")
        .unwrap_or_else(|| panic!("no row for etop_t_still\n{text}"));
    // The same sign rule in both growth columns: `+0`, never `0` beside `+0`.
    assert_eq!(
        (still["+Size"].as_str(), still["+Memory"].as_str()),
        ("+0", "+0"),
        "{text}"
    );
    assert_eq!(still["Owner"], "etop_t_still_owner", "{text}");
}
