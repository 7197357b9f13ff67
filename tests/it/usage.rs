//! What etop says before it connects: --help, --version, the man page,
//! and one clear line for each usage error.

use crate::util::*;

#[test]
fn help_and_version() {
    let out = etop(["--help"]).run().success();
    assert!(out.stdout.contains("Examples:"), "{out}");
    assert!(out.stdout.contains("--sort"), "{out}");
    assert!(out.stdout.contains("Exit codes:"), "{out}");
    let out = etop(["--version"]).run().success();
    // The commit this binary was built from, as git names it.
    let commit = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .expect("run git");
    assert!(commit.status.success(), "git rev-parse failed");
    let commit = String::from_utf8_lossy(&commit.stdout).trim().to_string();
    let target = env!("ETOP_TARGET");
    assert_eq!(
        out.stdout.trim(),
        format!(
            "etop {} (commit {commit}, {target})",
            env!("CARGO_PKG_VERSION")
        ),
        "{out}"
    );
}

#[test]
fn malformed_arguments_are_usage_errors() {
    for bad in ["a@b@c", "bad name@h"] {
        let out = etop(["--once", bad]).cookie_env("anything").run();
        assert_eq!(out.code, Some(2), "{out}");
        let line = crate::util::single_error_line(&out);
        assert!(line.contains("is not a node name"), "{out}");
    }
    for (args, mentions) in [
        (vec!["-s", "cpu", "n@h"], "cpu"),
        (vec!["-i", "0", "n@h"], "out of range"),
        // Not "a value is required": `-1` is the value, not `--once`.
        (vec!["--interval", "-1", "n@h"], "'-1' is out of range"),
        (vec!["-i", "-1", "n@h"], "'-1' is out of range"),
        (vec!["--format", "xml", "n@h"], "xml"),
    ] {
        let out = etop(&args).cookie_env("anything").run();
        assert_eq!(out.code, Some(2), "{out}");
        assert!(out.stderr.contains(mentions), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
}

/// The man page: clap's sections, then the help's closing blocks (examples,
/// keys, exit codes) as sections of their own, kept as laid out (no fill), so
/// the example columns survive.
/// A section of its own for one command: what it does, how it is called,
/// each of its options, its examples.
fn render_subcommand(sub: &clap::Command) -> clap_mangen::roff::Roff {
    use clap_mangen::roff::{Roff, bold, italic, roman};
    let name = sub.get_name();
    let mut r = Roff::new();
    r.control("SH", [format!("ETOP {}", name.to_uppercase()).as_str()]);
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        r.text([roman(about.to_string())]);
    }
    let positionals: Vec<String> = sub
        .get_positionals()
        .map(|a| format!("[{}]", a.get_id().as_str().to_uppercase()))
        .collect();
    r.control("PP", []).text([
        bold(format!("etop {name}")),
        roman(" [OPTIONS] "),
        italic(positionals.join(" ")),
    ]);
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
        let mut flag = Vec::new();
        if let Some(s) = arg.get_short() {
            flag.push(format!("-{s}"));
        }
        if let Some(l) = arg.get_long() {
            flag.push(format!("--{l}"));
        }
        let mut head = if flag.is_empty() {
            arg.get_id().as_str().to_uppercase()
        } else {
            flag.join(", ")
        };
        if let Some(v) = arg.get_value_names().and_then(|v| v.first())
            && !flag.is_empty()
            && arg.get_action().takes_values()
        {
            head.push_str(&format!(" <{v}>"));
        }
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let values: Vec<String> = if arg.get_action().takes_values() {
            arg.get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect()
        } else {
            Vec::new()
        };
        if !values.is_empty() {
            help.push_str(&format!(" [values: {}]", values.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && arg.get_action().takes_values() {
            help.push_str(&format!(" [default: {}]", defaults.join(", ")));
        }
        r.control("TP", []).text([bold(head)]).text([roman(help)]);
    }
    if let Some(after) = sub.get_after_help() {
        r.control("PP", []).control("nf", []);
        for line in after.to_string().lines() {
            r.text([roman(line)]);
        }
        r.control("fi", []);
    }
    r
}

fn render_man() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    use clap_mangen::roff::{Roff, roman};
    // The release alone: the commit in --version would date the page.
    let man = clap_mangen::Man::new(etop::cli::Cli::command().version(env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in etop::cli::Cli::command().get_subcommands() {
        render_subcommand(sub).to_writer(&mut out)?;
    }
    for block in etop::cli::EXAMPLES.split("\n\n") {
        let (title, body) = block.split_once('\n').unwrap_or((block, ""));
        let title = title.trim_end_matches(':').to_uppercase();
        let title = if title.starts_with("EXIT CODES") {
            "EXIT STATUS".to_string()
        } else {
            title
        };
        let mut r = Roff::new();
        r.control("SH", [title.as_str()]).control("nf", []);
        for line in body.lines() {
            r.text([roman(line)]);
        }
        r.control("fi", []);
        r.to_writer(&mut out)?;
    }
    let mut r = Roff::new();
    r.control("SH", ["OUTPUT"]);
    for block in etop::cli::MAN_OUTPUT.split("\n\n") {
        let (caption, body) = block.split_once('\n').unwrap_or((block, ""));
        r.control("PP", []).text([roman(caption)]).control("nf", []);
        for line in body.lines() {
            r.text([roman(line)]);
        }
        r.control("fi", []);
    }
    r.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

#[test]
fn man_page_is_up_to_date() {
    let generated = render_man().expect("render the man page");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/etop.1");
    if std::env::var_os("ETOP_UPDATE_MAN").is_some_and(|v| v == "1") {
        let dir = path.parent().expect("man/ directory");
        std::fs::create_dir_all(dir).expect("create man/");
        std::fs::write(&path, &generated).expect("write man/etop.1");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != generated {
        let generated = String::from_utf8_lossy(&generated);
        let committed = String::from_utf8_lossy(&committed);
        let first_diff = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "man/etop.1 is out of date with src/cli.rs: run `make man` and commit it.\n\
             first difference at line {}:\n  generated: {:?}\n  committed: {:?}",
            first_diff + 1,
            generated.lines().nth(first_diff).unwrap_or("<end>"),
            committed.lines().nth(first_diff).unwrap_or("<end>"),
        );
    }
}

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
        let line = crate::util::single_error_line(&out);
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
