//! Usage errors said in the operator's words: an empty NODE, and a --name
//! that erl would not accept as the first part of a node name. Each exits 2
//! at once, before anything is looked up or connected.

mod util;

use std::time::Duration;
use util::etop;

const AT_ONCE: Duration = Duration::from_secs(20);

#[test]
fn an_empty_node_says_so() {
    for args in [
        vec!["--once", ""],
        vec!["--once", "  "],
        vec!["ports", "--once", ""],
        vec!["ets", "--once", ""],
        vec!["msacc", ""],
        vec!["threads", "--once", ""],
    ] {
        let out = etop(&args).cookie_env("anything").spawn().wait(AT_ONCE);
        assert_eq!(out.code, Some(2), "{out}");
        let line = util::single_error_line(&out);
        assert!(
            line.starts_with("etop: NODE is empty; give name@host"),
            "{out}"
        );
    }
}

#[test]
fn our_name_is_validated() {
    for (name, why) in [
        (
            "ops@db1",
            "give only the part before '@': etop adds this host's name",
        ),
        ("../../tmp/x", "'.' cannot appear in a node name"),
        (
            "a/b",
            "'/' cannot appear in a node name; use letters, digits, '_' and '-'",
        ),
        ("", "the name is empty"),
    ] {
        let out = etop(["--once", "--name", name, "n@localhost"])
            .cookie_env("anything")
            .spawn()
            .wait(AT_ONCE);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        let first = out.stderr_lines().first().copied().unwrap_or_default();
        assert!(
            first.starts_with("error: invalid value") && first.contains("'--name <NAME>'"),
            "{out}"
        );
        assert!(first.contains(why), "{out}");
    }
}
