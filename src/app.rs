//! Parses the command line, picks the view, and maps errors to one line on
//! stderr and an exit code.

use crate::agent::SortKey;
use crate::agent::collector::{Collector, View};
use crate::cli::{Cli, Command, ConnArgs, FrameArgs, OutputArgs, Session, TopArgs, WatchArgs};
use crate::dist::ConnectOpts;
use crate::dist::term::Term;
use crate::error::{Error, Result, exit};
use crate::host::HostWatch;
use crate::node::{self, CookieSources, Reach};
use crate::text::say;
use crate::ui::session::{self, Display};
use crate::ui::{frame, term};
use crate::views::ets::Ets;
use crate::views::msacc::{MsaccFeed, MsaccShaper};
use crate::views::ports::Ports;
use crate::views::procs::{ProcFeed, ProcShaper};
use crate::views::reply::{ReplyShaper, ReplyView, RequestFeed};
use crate::views::threads::{ThreadFeed, ThreadShaper, ThreadSort};
use crate::views::watch::cond::Condition;
use crate::views::watch::{Plan, WatchFeed, WatchFormat, Watcher};
use crate::views::{Format, Keys, SortChoice, ets, nodes, ports};
use std::path::Path;
use std::time::Duration;

pub fn main() -> i32 {
    let cli = match Cli::parse_args(std::env::args_os()) {
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
        // What held is on the output already.
        Err(Error::ConditionHeld) => exit::CONDITION,
        Err(e) => {
            say(&e);
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    // Every command may read a cookie: ours, or local nodes' while scanning.
    if let Err(e) = crate::node::cookie::protect_secrets() {
        say(format!(
            "warning: cannot keep the cookie out of core dumps (prctl: {e})"
        ));
    }
    match cli.command {
        None => procs(&cli.top),
        Some(Command::Nodes { format, host }) => {
            term::write_batch(&frame::once(&nodes::frame(&host.proc_root), format))?;
            Ok(())
        }
        Some(Command::Threads {
            node,
            pid,
            sort,
            frames,
            out,
            host,
        }) => threads(node.as_deref(), pid, sort, &frames, &out, &host.proc_root),
        Some(Command::Ports { sort, session }) => {
            let n = session.frames.rows();
            let request = move |base| ports::request(sort, n, base);
            reply_view(&session, (View::Ports, Ports { sort }, "ports"), request)
        }
        Some(Command::Ets { sort, session }) => {
            let n = session.frames.rows();
            let request = move |base| ets::request(sort, n, base);
            reply_view(&session, (View::Ets, Ets { sort }, "ets"), request)
        }
        Some(Command::Proc { pid, session }) => proc_detail(&pid, &session),
        Some(Command::Watch(args)) => watch(&args),
        Some(Command::Msacc {
            node,
            duration,
            threads,
            out,
            conn,
        }) => {
            let (collector, _) = attach(&conn, &out, node.as_deref())?;
            let window = Duration::from_secs_f64(duration);
            let label = format!("measuring microstate accounting on {}", collector.peer());
            // One frame, one window after the start; Ctrl-C, SIGTERM or
            // SIGHUP end the window early and still report (collecting puts
            // the flag back as it was).
            let shown = Display {
                tty: false,
                format: out.format,
                interval: window,
                frames: Some(1),
                stats_file: None,
                countdown: Some((label, window)),
                keys: Keys::default(),
                until: None,
                log: false,
            };
            session::run(MsaccFeed::new(collector), MsaccShaper { threads }, shown)
        }
    }
}

/// A view whose frame is one agent reply (ports, ETS).
fn reply_view<V: ReplyView>(
    s: &Session,
    (view, shape, what): (View, V, &'static str),
    request: impl Fn(i64) -> Term + Send + 'static,
) -> Result<()> {
    let (frames, out) = (&s.frames, &s.out);
    let (mut collector, _) = attach(&s.conn, out, s.node.as_deref())?;
    let shown = display(frames, out);
    collector.say_reconnects(out.verbose && !shown.tty);
    let feed = RequestFeed {
        collector,
        view,
        request: Box::new(request),
        timeout: frame_timeout(frames),
        what,
    };
    session::run(feed, ReplyShaper::new(shape, frames.once), shown)
}

/// A slow frame is waited for well past the interval before it counts as
/// failed; the next one starts only after it.
fn frame_timeout(frames: &FrameArgs) -> Duration {
    (Duration::from_secs_f64(frames.interval_secs()) * 3).max(Duration::from_secs(15))
}

/// Is the interactive screen on: a terminal, text, no --batch, and no
/// frame count (`--once` and `-n` print their frames on the normal screen,
/// so the last one stays visible).
fn interactive(frames: &FrameArgs, out: &OutputArgs) -> bool {
    term::stdout_is_tty()
        && !frames.batch
        && out.format == Format::Text
        && !frames.once
        && frames.iterations.is_none()
}

fn display(frames: &FrameArgs, out: &OutputArgs) -> Display {
    Display {
        tty: interactive(frames, out),
        format: out.format,
        interval: Duration::from_secs_f64(frames.interval_secs()),
        frames: if frames.once {
            Some(1)
        } else {
            frames.iterations
        },
        stats_file: out.stats_file.clone(),
        countdown: None,
        keys: Keys::default(),
        until: None,
        log: false,
    }
}

/// Resolves the node and the cookie, and connects.
fn attach(
    conn: &ConnArgs,
    out: &OutputArgs,
    node: Option<&str>,
) -> Result<(Collector, Option<u32>)> {
    if conn.cookie.is_some() {
        say(
            "warning: --cookie is visible to other users in the process list; \
             prefer --cookie-file or ERLANG_COOKIE",
        );
    }
    let target = node::target(
        node,
        &conn.host.proc_root,
        &CookieSources {
            file: conn.cookie_file.as_deref(),
            flag: conn.cookie.as_deref(),
        },
        &Reach {
            port: conn.port,
            timeout: Duration::from_secs_f64(conn.connect_timeout),
        },
    )?;
    if out.verbose {
        say(format!(
            "attaching to {} with the cookie from {}",
            target.name, target.origin
        ));
    }
    let os_pid = target.local.as_ref().map(|n| n.os_pid);
    let opts = ConnectOpts {
        mode: target.mode,
        target: target.name,
        port: conn.port,
        epmd_port: target.epmd_port,
        cookie: target.cookie,
        cookie_origin: target.origin,
        our_name: conn
            .name
            .clone()
            .unwrap_or_else(ConnectOpts::default_our_name),
        timeout: Duration::from_secs_f64(conn.connect_timeout),
    };
    let collector = Collector::connect(opts, conn.agent_max_heap.unwrap_or(0))?;
    if out.verbose {
        say(format!(
            "attached to {} as hidden node {}",
            collector.peer(),
            collector.ours()
        ));
    }
    Ok((collector, os_pid))
}

/// The sorts of the process table, in the order of their columns.
fn proc_sorts() -> Vec<SortChoice> {
    vec![
        SortChoice {
            letter: Some('R'),
            name: "reductions",
            key: SortKey::Reductions,
        },
        SortChoice {
            letter: Some('M'),
            name: "memory",
            key: SortKey::Memory,
        },
        SortChoice {
            letter: Some('T'),
            name: "total heap",
            key: SortKey::Heap,
        },
        SortChoice {
            letter: Some('B'),
            name: "binary memory",
            key: SortKey::Binary,
        },
        SortChoice {
            letter: Some('Q'),
            name: "message queue",
            key: SortKey::Msgq,
        },
    ]
}

fn procs(top: &TopArgs) -> Result<()> {
    let s = &top.session;
    let (mut collector, os_pid) = attach(&s.conn, &s.out, s.node.as_deref())?;
    let shown = display(&s.frames, &s.out);
    collector.say_reconnects(s.out.verbose && !shown.tty);
    let key: SortKey = top.procs.sort.into();
    let sorts = proc_sorts();
    let keys = Keys {
        sort: sorts.iter().position(|c| c.key == key).unwrap_or(0),
        sorts,
        accumulate: Some(top.procs.accumulate),
        filter: true,
        detail: true,
        fit_rows: s.frames.lines.is_none(),
    };
    let lines = match (s.frames.lines, interactive(&s.frames, &s.out)) {
        (Some(n), _) => n as usize,
        // The screen asks for what fits once it has drawn a frame.
        (None, true) => term::Screen::size().1.saturating_sub(10).max(10),
        (None, false) => 10,
    };
    let feed = ProcFeed {
        collector,
        key,
        lines,
        accumulate: top.procs.accumulate,
        timeout: frame_timeout(&s.frames),
        detail: None,
        filter: top.procs.filter.as_ref().map(|f| f.expr.clone()),
        once: s.frames.once,
        os_pid,
        proc_root: s.conn.host.proc_root.clone(),
        host: HostWatch::new(),
        epoch: 0,
    };
    // A one-shot run shows real per-interval numbers: its first sample only
    // sets the baseline.
    let mut shaper = ProcShaper::new(
        top.procs.accumulate,
        top.procs.names,
        s.frames.once && !top.procs.accumulate,
    );
    shaper.show_schedulers = top.procs.schedulers;
    shaper.filter = top.procs.filter.as_ref().map(|f| f.expr.clone());
    let mut shown = shown;
    shown.keys = keys;
    session::run(feed, shaper, shown)
}

/// `etop proc PID`: one process in detail, once unless -n or -i ask for more.
fn proc_detail(pid: &str, s: &Session) -> Result<()> {
    let (mut collector, os_pid) = attach(&s.conn, &s.out, s.node.as_deref())?;
    let mut shown = display(&s.frames, &s.out);
    collector.say_reconnects(s.out.verbose && !shown.tty);
    let feed = ProcFeed {
        collector,
        key: SortKey::Reductions,
        lines: 1,
        accumulate: false,
        timeout: frame_timeout(&s.frames),
        detail: Some(pid.to_string()),
        filter: None,
        once: false,
        os_pid,
        proc_root: s.conn.host.proc_root.clone(),
        host: HostWatch::new(),
        epoch: 0,
    };
    let shaper = ProcShaper::new(false, crate::views::procs::model::NameStyle::Auto, false);
    if s.frames.interval.is_none() && s.frames.iterations.is_none() {
        shown.frames = Some(1);
        shown.tty = false;
    }
    session::run(feed, shaper, shown)
}

/// `etop watch`: the conditions are parsed before anything is asked of a
/// node, so a typo costs nothing.
fn watch(args: &WatchArgs) -> Result<()> {
    let conds = args
        .fail_if
        .iter()
        .map(|text| {
            Condition::parse(text).map_err(|e| Error::Usage(format!("--fail-if '{text}' {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let format = match args.format {
        WatchFormat::Text => Format::Text,
        WatchFormat::Json => Format::Json,
    };
    let out = OutputArgs {
        format,
        verbose: args.verbose,
        stats_file: None,
    };
    let (collector, _) = attach(&args.conn, &out, args.node.as_deref())?;
    let interval = Duration::from_secs_f64(args.interval);
    let feed = WatchFeed {
        collector,
        plan: Plan::new(&conds, args.lines as usize),
        timeout: (interval * 3).max(Duration::from_secs(15)),
    };
    let mut watcher = Watcher::new(conds, args.keep_going);
    let shown = Display {
        tty: false,
        format,
        interval,
        frames: None,
        stats_file: None,
        countdown: None,
        keys: Keys::default(),
        until: args.duration.map(Duration::from_secs_f64),
        log: true,
    };
    let res = session::run(feed, &mut watcher, shown);
    let json = format == Format::Json;
    if json {
        // Standard output may be a file for the CI's artefacts: the log
        // still says what held.
        for line in &watcher.alarms {
            say(line);
        }
        if args.keep_going && res.is_ok() && watcher.held() {
            for line in watcher.summary(None).0.lines() {
                say(line.trim_start());
            }
        }
    }
    let stopped_at_once = watcher.held() && !args.keep_going;
    match &res {
        Err(Error::Io(_)) => {}
        Err(e) if json => {
            let (_, j) = watcher.summary(Some(&e.to_string()));
            term::write_batch(&(crate::text::json(&j) + "\n"))?;
        }
        Err(_) => {}
        // One line says what held; a summary follows only a full run.
        Ok(()) if stopped_at_once && !json => {}
        Ok(()) => {
            let (text, j) = watcher.summary(None);
            let s = if json {
                crate::text::json(&j) + "\n"
            } else {
                text + "\n"
            };
            term::write_batch(&s)?;
        }
    }
    res?;
    if watcher.held() {
        return Err(Error::ConditionHeld);
    }
    Ok(())
}

fn threads(
    node: Option<&str>,
    pid: Option<u32>,
    sort: ThreadSort,
    frames: &FrameArgs,
    out: &OutputArgs,
    proc_root: &Path,
) -> Result<()> {
    let (os_pid, label) = match pid {
        Some(p) => (p, format!("beam pid {p}")),
        None => {
            let l = node::local_vm(node, proc_root)?;
            (
                l.os_pid,
                format!(
                    "{} (beam pid {})",
                    l.name.as_deref().unwrap_or("not distributed"),
                    l.os_pid
                ),
            )
        }
    };
    let feed = ThreadFeed {
        proc_root: proc_root.to_path_buf(),
        os_pid,
    };
    let shaper = ThreadShaper::new(label, sort, frames.rows(), frames.once);
    session::run(feed, shaper, display(frames, out))
}
