//! A node that restarts while etop watches it: etop reconnects, says so in
//! the frame, follows the new OS process, and marks what its numbers are.

use crate::util::*;
use serde_json::Value;
use std::time::Duration;

fn frame(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn a_restarted_node_is_announced_and_its_os_line_comes_back() {
    let first = Node::start(NodeOpts { busy: 1, ..quiet() });
    let old_pid = first.os_pid();
    let (full, cookie) = (first.full.clone(), first.cookie.clone());
    // Batch runs, one frame a second: JSON for the marks, text for the
    // words. The node is on this host: both show what the OS sees of it.
    let mut json = etop(["-b", "--format", "json", "-i", "1", &full])
        .cookie_env(&cookie)
        .spawn();
    let mut text = etop(["-b", "-v", "-i", "1", &full])
        .cookie_env(&cookie)
        .spawn();
    let before = frame(&json.wait_for_line(AT_ONCE, |_| true));
    assert_eq!(before["header"]["epoch"], 1, "{before}");
    assert_eq!(before["header"]["reconnected"], false, "{before}");
    assert_eq!(before["header"]["os"]["os_pid"], old_pid, "{before}");
    // The first frame of a reductions sort holds totals, and says so.
    assert!(
        before["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["reds_kind"] == "total")),
        "{before}"
    );
    let next = frame(&json.wait_for_line(AT_ONCE, |_| true));
    assert!(
        next["rows"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["reds_kind"] == "window")),
        "{next}"
    );
    text.wait_for_line(AT_ONCE, |l| l.starts_with("OS:"));

    let name = first.name.clone();
    drop(first);
    // EPMD forgets a name when its node's connection to it closes: the new
    // node can take it only then.
    wait_until(Duration::from_secs(10), "the old node leaves EPMD", || {
        etop::node::epmd::names("localhost", Duration::from_secs(1))
            .is_ok_and(|n| !n.iter().any(|(k, _)| *k == name))
    });
    // The same node again: same name, same cookie, a new VM.
    let second = Node::start(NodeOpts {
        name: Some(name),
        cookie: Some(cookie.clone()),
        busy: 1,
        ..quiet()
    });
    let new_pid = second.os_pid();
    assert_ne!(new_pid, old_pid);

    let back = frame(&json.wait_for_line(Duration::from_secs(30), |l| {
        frame(l)["header"]["reconnected"] == true
    }));
    assert_eq!(back["header"]["epoch"], 2, "{back}");
    assert_eq!(
        back["header"]["os"]["os_pid"], new_pid,
        "the OS line follows the new pid: {back}"
    );
    // The first frame of the new connection holds totals again; the rest
    // windows.
    assert!(
        back["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["reds_kind"] == "total")),
        "{back}"
    );
    let after = frame(&json.wait_for_line(AT_ONCE, |_| true));
    assert_eq!(
        (
            after["header"]["epoch"].as_u64(),
            after["header"]["reconnected"].as_bool()
        ),
        (Some(2), Some(false)),
        "{after}"
    );
    assert_eq!(after["header"]["os"]["os_pid"], new_pid, "{after}");
    assert!(
        after["rows"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["reds_kind"] == "window")),
        "{after}"
    );

    // In text, the frame says it, right under the node's name, and the OS
    // line is back.
    let said = format!("(new OS pid {new_pid}); reconnected");
    let notice = text.wait_for_line(Duration::from_secs(30), |l| l.contains(&said));
    assert!(notice.starts_with("node restarted at "), "{notice}");
    let hms = notice
        .trim_start_matches("node restarted at ")
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        hms.len() == 8 && hms.chars().filter(|c| *c == ':').count() == 2,
        "'{notice}'"
    );
    text.wait_for_line(AT_ONCE, |l| l.starts_with("OS:"));
    // Shown for three frames, then gone: wait for four more frames.
    for _ in 0..4 {
        text.wait_for_line(AT_ONCE, |l| l.starts_with(&format!("{full}  ")));
    }
    let json_out = json.stop();
    let text_out = text.stop();
    assert!(
        !json_out.stderr.contains("reconnected to"),
        "without -v, stderr stays quiet\n{json_out}"
    );
    assert!(
        text_out
            .stderr
            .contains(&format!("etop: reconnected to {full} as hidden node")),
        "-v says it on stderr\n{text_out}"
    );
    let notices = text_out
        .stdout_lines()
        .iter()
        .filter(|l| l.contains(&said))
        .count();
    assert_eq!(notices, 3, "{text_out}");
    drop(second);
}
