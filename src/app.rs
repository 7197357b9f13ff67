//! Parses the command line, picks the view, and maps errors to one line on
//! stderr and an exit code.

use crate::agent::cluster::{Ask, Cluster, Membership, Plan};
use crate::agent::collector::{Collector, View};
use crate::agent::sample::{Reply, Sample};
use crate::agent::{SampleRequest, SortKey};
use crate::cli::{
    Cli, ClusterArgs, Command, ConnArgs, FrameArgs, OutputArgs, Session, TopArgs, WatchArgs,
};
use crate::dist::ConnectOpts;
use crate::dist::term::Term;
use crate::error::{Error, Result, exit};
use crate::host::HostWatch;
use crate::node::discover::ssl_dist::{self, TlsFlags};
use crate::node::{self, CookieSources, Reach};
use crate::text::say;
use crate::ui::session::{self, Display};
use crate::ui::{frame, term};
use crate::views::cluster::procs::ClusterProcShaper;
use crate::views::cluster::reply::ClusterReplyShaper;
use crate::views::cluster::{ClusterFeed, Watched, open_files_for_cluster};
use crate::views::ets::Ets;
use crate::views::msacc::{MsaccFeed, MsaccShaper};
use crate::views::ports::Ports;
use crate::views::procs::{ProcFeed, ProcShaper};
use crate::views::reply::{ReplyShaper, ReplyView, RequestFeed};
use crate::views::threads::{ThreadFeed, ThreadShaper, ThreadSort};
use crate::views::watch::cond::Condition;
use crate::views::watch::{ClusterWatcher, WatchFeed, WatchFormat, WatchSample, Watcher};
use crate::views::{Format, Keys, ets, nodes, ports};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        Some(Command::Completions { shell }) => {
            use std::io::Write;
            std::io::stdout().write_all(&shell.script())?;
            Ok(())
        }
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
    request: impl Fn(i64) -> Term + Send + Sync + 'static,
) -> Result<()> {
    if s.is_cluster() {
        return cluster_reply_view(s, (view, shape, what), request);
    }
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
    let (opts, os_pid) = connect_opts(conn, out, node)?;
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

/// Which node, with which cookie and under which name of ours; and the
/// node's OS pid when it runs on this host.
fn connect_opts(
    conn: &ConnArgs,
    out: &OutputArgs,
    node: Option<&str>,
) -> Result<(ConnectOpts, Option<u32>)> {
    if conn.cookie.is_some() {
        say(
            "warning: --cookie is visible to other users in the process list; \
             prefer --cookie-file or ERLANG_COOKIE",
        );
    }
    let flags = tls_flags(conn);
    // Files the operator named are checked before anything is asked of the
    // network, as a cookie file is: a typo is a usage error, not a lookup.
    if let Some(files) = ssl_dist::choose(flags, None, node.unwrap_or(""))? {
        crate::dist::tls::Tls::load(&files)?;
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
    let tls = ssl_dist::choose(flags, target.local.as_ref(), &target.name.to_string())?;
    if out.verbose
        && let Some(t) = &tls
    {
        say(format!("speaking TLS with the files from {}", t.source));
    }
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
        tls,
    };
    Ok((opts, os_pid))
}

/// The `--tls-*` flags, for every node a session attaches to.
fn tls_flags(conn: &ConnArgs) -> TlsFlags<'_> {
    TlsFlags {
        cert: conn.tls.tls_cert.as_deref(),
        key: conn.tls.tls_key.as_deref(),
        ca: conn.tls.tls_ca.as_deref(),
    }
}

fn procs(top: &TopArgs) -> Result<()> {
    let s = &top.session;
    if s.is_cluster() {
        return cluster_procs(top);
    }
    let (mut collector, os_pid) = attach(&s.conn, &s.out, s.node.as_deref())?;
    let shown = display(&s.frames, &s.out);
    collector.say_reconnects(s.out.verbose && !shown.tty);
    let key: SortKey = top.procs.sort.into();
    let sorts = crate::views::procs::sorts();
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
        gone_is_error: false,
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
        gone_is_error: true,
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
    let interval = Duration::from_secs_f64(args.interval);
    let timeout = (interval * 3).max(Duration::from_secs(15));
    let plan = crate::views::watch::Plan::new(&conds, args.lines as usize);
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
    let res = if args.nodes.any() {
        let nodes = Nodes {
            node: args.node.as_deref(),
            others: &args.nodes,
            conn: &args.conn,
            out: &out,
            interval,
            timeout,
        };
        let (cplan, watched) = cluster_plan(&nodes)?;
        let (cluster, open_files) = start_cluster::<WatchSample>(&nodes, cplan)?;
        let ask: Ask<WatchSample> =
            Arc::new(move |c: &mut Collector| crate::views::watch::take(c, &plan, timeout));
        // Batch rules: a frame no node answered is an error (exit 5 after
        // the retries), and nodes that fail or come back are said on stderr.
        let feed = ClusterFeed::new(cluster, ask, interval, true, true, open_files);
        let mut shaper = ClusterWatcher::new(&mut watcher, watched);
        session::run(feed, &mut shaper, shown)
    } else {
        let (collector, _) = attach(&args.conn, &out, args.node.as_deref())?;
        let feed = WatchFeed {
            collector,
            plan,
            timeout,
        };
        session::run(feed, &mut watcher, shown)
    };
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

/// The nodes a session watches, and how: from a view's flags or `etop
/// watch`'s.
struct Nodes<'a> {
    node: Option<&'a str>,
    others: &'a ClusterArgs,
    conn: &'a ConnArgs,
    out: &'a OutputArgs,
    interval: Duration,
    /// How long a frame may take before it counts as failed.
    timeout: Duration,
}

impl Session {
    fn targets(&self) -> Nodes<'_> {
        Nodes {
            node: self.node.as_deref(),
            others: &self.nodes,
            conn: &self.conn,
            out: &self.out,
            interval: Duration::from_secs_f64(self.frames.interval_secs()),
            timeout: frame_timeout(&self.frames),
        }
    }
}

/// What a cluster session attaches to: the entry node, resolved as a single
/// node is (EPMD first, then its cookie, which is used for every node); the
/// other nodes named, each in its own name mode; or the entry node's
/// connected nodes, in its mode. Another node is reached as the entry node
/// reaches it (its EPMD port, its TLS files) unless it runs on this host,
/// where its own EPMD port and TLS options are used; `--tls-*` flags apply
/// to every node.
fn cluster_plan(s: &Nodes) -> Result<(Plan, Watched)> {
    // The other NODEs are checked before the network is asked anything.
    let others = if s.others.more_nodes.is_empty() {
        Vec::new()
    } else {
        node::resolve_all(&s.others.more_nodes, &s.conn.host.proc_root)?
    };
    let (entry, _) = connect_opts(s.conn, s.out, s.node)?;
    let flags = tls_flags(s.conn);
    let named = others
        .into_iter()
        .map(|r| {
            let (epmd_port, tls) = match &r.local {
                Some(local) => (
                    r.epmd_port(),
                    ssl_dist::choose(flags, Some(local), &r.target.to_string())?,
                ),
                None => (entry.epmd_port, entry.tls.clone()),
            };
            Ok(ConnectOpts {
                target: r.target,
                mode: r.mode,
                port: None,
                epmd_port,
                tls,
                ..entry.clone()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let membership = if s.others.cluster || s.others.cluster_hidden {
        Membership::Connected {
            hidden: s.others.cluster_hidden,
        }
    } else {
        Membership::Named
    };
    let interval = s.interval;
    let watched = Watched {
        entry: entry.target.to_string(),
        whole_cluster: membership != Membership::Named,
    };
    let plan = Plan {
        entry,
        named,
        membership,
        heap_limit_bytes: s.conn.agent_max_heap.unwrap_or(0),
        timeout: s.timeout,
        forget_after: (interval * 12).max(Duration::from_secs(60)),
    };
    Ok((plan, watched))
}

/// Attaches to every node of a cluster session and says so with -v.
fn start_cluster<T: Send + 'static>(s: &Nodes, plan: Plan) -> Result<(Cluster<T>, Option<u64>)> {
    let open_files = open_files_for_cluster();
    let cluster = Cluster::start(plan)?;
    if s.out.verbose {
        say(format!(
            "watching {} nodes from {}",
            cluster.len(),
            cluster.entry()
        ));
    }
    Ok((cluster, open_files))
}

/// On a terminal, the strip leaves the table at least a few rows.
fn strip_room(d: &Display) -> Option<Box<dyn Fn() -> usize>> {
    d.tty.then(|| {
        Box::new(|| term::Screen::size().1.saturating_sub(12).max(3)) as Box<dyn Fn() -> usize>
    })
}

/// The process table of several nodes, merged.
fn cluster_procs(top: &TopArgs) -> Result<()> {
    let s = &top.session;
    let (plan, watched) = cluster_plan(&s.targets())?;
    let (cluster, open_files) = start_cluster::<Sample>(&s.targets(), plan)?;
    let key: SortKey = top.procs.sort.into();
    let lines = s.frames.lines.unwrap_or(10) as usize;
    let delta = key == SortKey::Reductions && !top.procs.accumulate;
    let timeout = frame_timeout(&s.frames);
    let req = SampleRequest {
        filter: top
            .procs
            .filter
            .as_ref()
            .map(|f| crate::views::procs::select::on_node(&f.expr)),
        ..SampleRequest::new(key, lines, delta)
    };
    let ask: Ask<Sample> = Arc::new(move |c: &mut Collector| c.sample(&req, timeout));
    let d = display(&s.frames, &s.out);
    let feed = ClusterFeed::new(cluster, ask, d.interval, !d.tty, !d.tty, open_files);
    let mut shaper = ClusterProcShaper::new(
        key,
        top.procs.accumulate,
        top.procs.names,
        lines,
        s.frames.once && !top.procs.accumulate,
        watched,
    );
    shaper.room = strip_room(&d);
    session::run(feed, shaper, d)
}

/// Ports or ETS tables of several nodes, merged.
fn cluster_reply_view<V: ReplyView>(
    s: &Session,
    (view, shape, what): (View, V, &'static str),
    request: impl Fn(i64) -> Term + Send + Sync + 'static,
) -> Result<()> {
    let (plan, watched) = cluster_plan(&s.targets())?;
    let (cluster, open_files) = start_cluster::<Reply>(&s.targets(), plan)?;
    let timeout = frame_timeout(&s.frames);
    let ask: Ask<Reply> = Arc::new(move |c: &mut Collector| {
        let (info, epoch) = c.frame(view, &request, timeout, what)?;
        Ok(Reply {
            info,
            epoch,
            taken_at: Instant::now(),
        })
    });
    let d = display(&s.frames, &s.out);
    let feed = ClusterFeed::new(cluster, ask, d.interval, !d.tty, !d.tty, open_files);
    let mut shaper = ClusterReplyShaper::new(
        shape,
        s.frames.lines.unwrap_or(10) as usize,
        s.frames.once,
        watched,
    );
    shaper.room = strip_room(&d);
    session::run(feed, shaper, d)
}
