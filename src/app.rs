//! Parses the command line, picks the view, and maps errors to one line on
//! stderr and an exit code.

use crate::cli::{Cli, Command};
use crate::collect::{Collector, RequestFeed, View};
use crate::dist::ConnectOpts;
use crate::error::{Error, Result, exit};
use crate::eterm::Term;
use crate::ets::{self, EtsShaper};
use crate::nodes;
use crate::ports::{self, PortShaper};
use crate::procs::{ProcFeed, ProcShaper};
use crate::remote::SortKey;
use crate::render::Format;
use crate::session::{self, Display};
use crate::term;
use crate::threads::{ThreadFeed, ThreadShaper, ThreadSort};
use clap::Parser;
use std::path::PathBuf;
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
            term::say(&e);
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    // Every command may read a cookie: ours, or local nodes' while scanning.
    if let Err(e) = crate::target::protect_secrets() {
        term::say(format!(
            "warning: cannot keep the cookie out of core dumps (prctl: {e})"
        ));
    }
    match &cli.command {
        Some(Command::Nodes) => {
            term::write_batch(&nodes::show(cli.view.format, &cli.conn.proc_root))?;
            Ok(())
        }
        Some(Command::Threads { node, pid, sort }) => threads(&cli, node.as_deref(), *pid, *sort),
        Some(Command::Ports { node, sort }) => {
            let (collector, _) = attach(&cli, node.as_deref())?;
            let (sort, n) = (*sort, lines(&cli));
            let feed = request_feed(
                &cli,
                collector,
                View::Ports,
                Box::new(move |base| ports::request(sort, n, base)),
                "ports",
            );
            let shaper = PortShaper::new(sort, cli.view.once);
            session::run(feed, shaper, display(&cli, cli.view.iterations))
        }
        Some(Command::Ets { node, sort }) => {
            let (collector, _) = attach(&cli, node.as_deref())?;
            let (sort, n) = (*sort, lines(&cli));
            let feed = request_feed(
                &cli,
                collector,
                View::Ets,
                Box::new(move |base| ets::request(sort, n, base)),
                "ets",
            );
            let shaper = EtsShaper::new(sort, cli.view.once);
            session::run(feed, shaper, display(&cli, cli.view.iterations))
        }
        Some(Command::Msacc {
            node,
            duration,
            threads,
        }) => msacc(&cli, node.as_deref(), *duration, *threads),
        None => procs(&cli),
    }
}

fn lines(cli: &Cli) -> usize {
    cli.view.lines as usize
}

fn request_feed(
    cli: &Cli,
    collector: Collector,
    view: View,
    request: Box<dyn Fn(i64) -> Term + Send>,
    what: &'static str,
) -> RequestFeed {
    let interval = Duration::from_secs_f64(cli.interval_secs());
    RequestFeed {
        collector,
        view,
        request,
        timeout: (interval * 3).max(Duration::from_secs(15)),
        what,
    }
}

fn msacc(cli: &Cli, node: Option<&str>, duration: f64, per_thread: bool) -> Result<()> {
    let (mut collector, _) = attach(cli, node)?;
    // Ctrl-C, SIGTERM and SIGHUP end the window early; collecting then puts
    // the flag back as it was.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = crate::msacc::run(
        &mut collector,
        Duration::from_secs_f64(duration),
        progress,
        &stop,
    );
    collector.close();
    let report = report?;
    term::write_batch(&crate::msacc::show(&report, cli.view.format, per_thread))?;
    Ok(())
}

/// `ERLANG_COOKIE`, when set. A value that is not UTF-8 cannot be the
/// node's cookie as typed: an error, not a silent fall-through to the next
/// source.
fn env_cookie() -> Result<Option<String>> {
    match std::env::var("ERLANG_COOKIE") {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(
            "ERLANG_COOKIE is not valid UTF-8; set it to the node's cookie, \
             or pass --cookie-file PATH"
                .into(),
        )),
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
fn attach(cli: &Cli, node: Option<&str>) -> Result<(Collector, Option<u32>)> {
    let resolved = nodes::resolve(node, &cli.conn.proc_root)?;
    if cli.conn.cookie.is_some() {
        term::say(
            "warning: --cookie is visible to other users in the process list; \
             prefer --cookie-file or ERLANG_COOKIE",
        );
    }
    let env_cookie = if cli.conn.cookie_file.is_none() && cli.conn.cookie.is_none() {
        env_cookie()?
    } else {
        None
    };
    let (cookie, origin) = nodes::cookie(
        cli.conn.cookie_file.as_deref(),
        cli.conn.cookie.as_deref(),
        env_cookie.as_deref(),
        home_dir().as_deref(),
        resolved.local.as_ref(),
    )?;
    if cli.view.verbose {
        term::say(format!(
            "attaching to {} with the cookie from {origin}",
            resolved.target
        ));
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
    let collector = Collector::connect(opts, cli.conn.agent_max_heap.unwrap_or(0))?;
    if cli.view.verbose {
        term::say(format!(
            "attached to {} as hidden node {}",
            collector.peer(),
            collector.ours()
        ));
    }
    Ok((collector, resolved.local.map(|n| n.os_pid)))
}

fn procs(cli: &Cli) -> Result<()> {
    let (collector, os_pid) = attach(cli, cli.node.as_deref())?;
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
        proc_root: cli.conn.proc_root.clone(),
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
    nodes::check_given(node)?;
    let (os_pid, label) = match pid {
        Some(p) => (p, format!("beam pid {p}")),
        None => {
            let all = nodes::local_nodes(&cli.conn.proc_root);
            let found = match node {
                Some(n) => nodes::find_local(&all, n),
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
                None if all.is_empty() => {
                    return Err(Error::Usage(
                        "which VM? no Erlang VM runs on this host; pass --pid".into(),
                    ));
                }
                None => {
                    return Err(nodes::listing_error(
                        &all,
                        "which VM? name a local node or pass --pid",
                    ));
                }
            }
        }
    };
    let feed = ThreadFeed {
        proc_root: cli.conn.proc_root.clone(),
        os_pid,
    };
    let shaper = ThreadShaper::new(label, sort, cli.view.lines as usize, cli.view.once);
    session::run(feed, shaper, display(cli, cli.view.iterations))
}
