//! Parses the command line, picks the view, and maps errors to one line on
//! stderr and an exit code.

use crate::cli::{Cli, Command};
use crate::collect::Collector;
use crate::dist::ConnectOpts;
use crate::error::{Error, Result, exit};
use crate::nodes;
use crate::procs::{ProcFeed, ProcShaper};
use crate::remote::SortKey;
use crate::render::Format;
use crate::session::{self, Display};
use crate::term;
use crate::threads::{ThreadFeed, ThreadShaper, ThreadSort};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let res = run(cli);
    term::restore();
    match res {
        Ok(()) => exit::OK,
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("etop: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Some(Command::Nodes) => {
            term::write_batch(&nodes::show(cli.view.format))?;
            Ok(())
        }
        Some(Command::Threads { node, pid, sort }) => threads(&cli, node.as_deref(), *pid, *sort),
        None => procs(&cli),
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn display(cli: &Cli, frames: Option<u64>) -> Display {
    let tty = term::stdout_is_tty() && !cli.view.batch && cli.view.format == Format::Text;
    Display {
        tty,
        format: cli.view.format,
        interval: Duration::from_secs_f64(cli.interval_secs()),
        frames: if cli.view.once { Some(1) } else { frames },
        stats_file: cli.view.stats_file.clone(),
    }
}

/// Resolves the node and the cookie, and connects.
fn attach(cli: &Cli) -> Result<(Collector, Option<u32>)> {
    let resolved = nodes::resolve(cli.node.as_deref())?;
    if cli.conn.cookie.is_some() {
        eprintln!(
            "etop: warning: --cookie is visible to other users in the process list; \
             prefer --cookie-file or ERLANG_COOKIE"
        );
    }
    let env_cookie = std::env::var("ERLANG_COOKIE").ok();
    let (cookie, origin) = nodes::cookie(
        cli.conn.cookie_file.as_deref(),
        cli.conn.cookie.as_deref(),
        env_cookie.as_deref(),
        home_dir().as_deref(),
        resolved.local.as_ref(),
    )?;
    if cli.view.verbose {
        eprintln!(
            "etop: attaching to {} with the cookie from {origin}",
            resolved.target
        );
    }
    let opts = ConnectOpts {
        mode: resolved.mode,
        target: resolved.target,
        port: cli.conn.port,
        cookie,
        cookie_origin: origin,
        our_name: cli
            .conn
            .name
            .clone()
            .unwrap_or_else(ConnectOpts::default_our_name),
        timeout: Duration::from_secs_f64(cli.conn.connect_timeout),
    };
    let collector = Collector::connect(opts)?;
    if cli.view.verbose {
        eprintln!(
            "etop: attached to {} as hidden node {}",
            collector.peer(),
            collector.ours()
        );
    }
    Ok((collector, resolved.local.map(|n| n.os_pid)))
}

fn procs(cli: &Cli) -> Result<()> {
    let (collector, os_pid) = attach(cli)?;
    let key: SortKey = cli.procs.sort.into();
    let interval = Duration::from_secs_f64(cli.interval_secs());
    let feed = ProcFeed {
        collector,
        key,
        lines: cli.view.lines as usize,
        delta: key == SortKey::Reductions && !cli.procs.accumulate,
        // A slow frame is waited for well past the interval before it counts
        // as failed; the next one starts only after it.
        timeout: (interval * 3).max(Duration::from_secs(15)),
        os_pid,
        proc_root: PathBuf::from("/proc"),
    };
    // A one-shot run shows real per-interval numbers: its first sample only
    // sets the baseline.
    let mut shaper = ProcShaper::new(
        cli.procs.accumulate,
        cli.procs.names,
        cli.view.once && !cli.procs.accumulate,
    );
    shaper.show_schedulers = cli.procs.schedulers;
    session::run(feed, shaper, display(cli, cli.view.iterations))
}

fn threads(cli: &Cli, node: Option<&str>, pid: Option<u32>, sort: ThreadSort) -> Result<()> {
    let (os_pid, label) = match pid {
        Some(p) => (p, format!("beam pid {p}")),
        None => {
            let all = nodes::local_nodes();
            let found = match node {
                Some(n) if n.chars().all(|c| c.is_ascii_digit()) => {
                    all.iter().find(|l| l.os_pid.to_string() == n)
                }
                Some(n) => all.iter().find(|l| {
                    l.name.as_deref() == Some(n)
                        || l.name.as_deref().and_then(|x| x.split('@').next()) == Some(n)
                }),
                None if all.len() == 1 => all.first(),
                None => None,
            };
            match found {
                Some(l) => (
                    l.os_pid,
                    format!(
                        "{} (beam pid {})",
                        l.name.as_deref().unwrap_or("not distributed"),
                        l.os_pid
                    ),
                ),
                None => {
                    let known: Vec<String> = all
                        .iter()
                        .map(|l| {
                            format!(
                                "{} (pid {})",
                                l.name.as_deref().unwrap_or("not distributed"),
                                l.os_pid
                            )
                        })
                        .collect();
                    return Err(Error::Usage(format!(
                        "which VM? {}; name a local node or pass --pid",
                        if known.is_empty() {
                            "no Erlang VM runs on this host".to_string()
                        } else {
                            format!("local VMs: {}", known.join(", "))
                        }
                    )));
                }
            }
        }
    };
    let feed = ThreadFeed {
        proc_root: Path::new("/proc").to_path_buf(),
        os_pid,
    };
    let shaper = ThreadShaper::new(label, sort, cli.view.lines as usize, cli.view.once);
    session::run(feed, shaper, display(cli, cli.view.iterations))
}
