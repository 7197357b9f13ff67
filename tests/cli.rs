//! etop against real Erlang nodes: the demo scenario (demo/etop_demo.erl) runs
//! on a fresh node per test, and the real binary attaches to it with a
//! hermetic environment. See tests/util/mod.rs for the harness.

mod util;

use util::{etop, free_port};

/// The one line etop prints on stderr for a fatal error.
fn single_error_line(out: &util::Output) -> &str {
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "expected exactly one line on stderr\n{out}");
    assert!(out.stdout.is_empty(), "expected nothing on stdout\n{out}");
    lines[0]
}

#[test]
fn help_and_version() {
    let out = etop(["--help"]).run().success();
    assert!(out.stdout.contains("Examples:"), "{out}");
    assert!(out.stdout.contains("--sort"), "{out}");
    assert!(out.stdout.contains("Exit codes:"), "{out}");
    let out = etop(["--version"]).run().success();
    assert_eq!(
        out.stdout.trim(),
        format!("etop {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
}

#[test]
fn malformed_arguments_are_usage_errors() {
    for bad in ["a@b@c", "bad name@h"] {
        let out = etop(["--once", bad]).cookie_env("anything").run();
        assert_eq!(out.code, Some(2), "{out}");
        let line = single_error_line(&out);
        assert!(line.contains("is not a node name"), "{out}");
    }
    for (args, mentions) in [
        (vec!["-s", "cpu", "n@h"], "cpu"),
        (vec!["-i", "0", "n@h"], "out of range"),
        (vec!["--format", "xml", "n@h"], "xml"),
    ] {
        let out = etop(&args).cookie_env("anything").run();
        assert_eq!(out.code, Some(2), "{out}");
        assert!(out.stderr.contains(mentions), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
    let out = etop(["--once"]).cookie_env("anything").run();
    assert_eq!(out.code, Some(2), "no NODE given\n{out}");
    assert!(single_error_line(&out).contains("which node"), "{out}");
}

#[test]
fn epmd_not_reachable() {
    let port = free_port();
    let target = format!("nosuch@{}", util::short_host());
    let out = etop(["--once", &target])
        .cookie_env("anything")
        .env("ERL_EPMD_PORT", &port.to_string())
        .run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = single_error_line(&out);
    assert!(line.contains("cannot reach EPMD"), "{out}");
    assert!(
        line.contains(&port.to_string()),
        "the port is not named\n{out}"
    );
}

#[test]
fn closed_distribution_port_is_unreachable() {
    let port = free_port();
    let target = format!("nosuch@{}", util::short_host());
    let out = etop(["--once", "--port", &port.to_string(), &target])
        .cookie_env("anything")
        .run();
    assert_eq!(out.code, Some(3), "{out}");
    let line = single_error_line(&out);
    assert!(line.contains("cannot connect"), "{out}");
    assert!(line.contains(&format!(":{port}")), "{out}");
    assert!(line.to_lowercase().contains("refused"), "{out}");
}
