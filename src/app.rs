//! Parses the command line, runs the session, and maps errors to one line on
//! stderr and an exit code.
//!
//! The session: a collector thread samples on cadence and sends each result
//! to the one event channel; the main thread owns the screen and reacts to
//! samples, keys, resizes and signals with a single `match`.

use crate::cli::Cli;
use crate::collect::{Collector, Sample};
use crate::dist::ConnectOpts;
use crate::error::{Error, Result, exit};
use crate::model::Model;
use crate::remote::SortKey;
use crate::render::{self, Format};
use crate::target::{self, NodeName};
use crate::term::{self, Event, Screen};
use clap::Parser;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How many consecutive failed frames a batch run tolerates before giving up.
const BATCH_RETRIES: u32 = 3;

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

fn home_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
}

fn connect_opts(cli: &Cli) -> Result<ConnectOpts> {
    let given = cli.node.as_deref().ok_or_else(|| {
        Error::Usage("which node? give NODE as name@host, or name for a node on this host".into())
    })?;
    let target = NodeName::parse(given, &target::short_hostname())?;
    if cli.conn.cookie.is_some() {
        eprintln!(
            "etop: warning: --cookie is visible to other users in the process list; \
             prefer --cookie-file or ERLANG_COOKIE"
        );
    }
    let env_cookie = std::env::var("ERLANG_COOKIE").ok();
    let (cookie, origin) = target::own_cookie(
        cli.conn.cookie_file.as_deref(),
        cli.conn.cookie.as_deref(),
        env_cookie.as_deref(),
        home_dir().as_deref(),
    )?
    .ok_or(Error::NoCookie)?;
    if cli.view.verbose {
        eprintln!("etop: cookie from {origin}");
    }
    Ok(ConnectOpts {
        mode: target.mode(),
        target,
        port: cli.conn.port,
        cookie,
        cookie_origin: origin,
        our_name: cli
            .conn
            .name
            .clone()
            .unwrap_or_else(ConnectOpts::default_our_name),
        timeout: Duration::from_secs_f64(cli.conn.connect_timeout),
    })
}

fn run(cli: Cli) -> Result<()> {
    let opts = connect_opts(&cli)?;
    let collector = Collector::connect(opts)?;
    if cli.view.verbose {
        eprintln!("etop: attached to {}", collector.peer());
    }
    let tty = term::stdout_is_tty() && !cli.view.batch && cli.view.format == Format::Text;
    Session::new(&cli, tty).run(collector)
}

/// What the collector thread is asked to do each frame.
#[derive(Clone)]
struct Plan {
    stats: Option<std::path::PathBuf>,
    key: SortKey,
    lines: usize,
    delta: bool,
    interval: Duration,
}

/// Samples on cadence: each frame starts one interval after the previous one
/// started; a frame slower than the interval delays the next one, never
/// stacks another behind it.
fn collector_thread(
    mut c: Collector,
    plan: Plan,
    tx: mpsc::Sender<Event<Result<Sample>>>,
    stop: mpsc::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    let timeout = (plan.interval * 3).max(Duration::from_secs(15));
    loop {
        let start = Instant::now();
        let r = c.sample(plan.key, plan.lines, plan.delta, timeout);
        if let Some(path) = &plan.stats {
            write_stats(path, start, &r, c.traffic());
        }
        if tx.send(Event::Data(r)).is_err() {
            break;
        }
        let wait = (start + plan.interval).saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            _ => break,
        }
    }
    // Stop the agent politely; closing the connection would stop it too.
    c.close();
    let _ = done.send(());
}

/// One JSON line per sample for benchmarks; failures to write are ignored.
fn write_stats(path: &std::path::Path, start: Instant, r: &Result<Sample>, traffic: (u64, u64)) {
    use std::io::Write;
    let line = serde_json::json!({
        "unix_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        "request_ms": start.elapsed().as_secs_f64() * 1000.0,
        "node_cost_us": r.as_ref().map(|s| s.cost_us).ok(),
        "rows": r.as_ref().map(|s| s.rows.len()).ok(),
        "rx_bytes": traffic.0,
        "tx_bytes": traffic.1,
        "ok": r.is_ok(),
    });
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

struct Session {
    tty: bool,
    format: Format,
    accumulate: bool,
    once: bool,
    iterations: Option<u64>,
    plan: Plan,
    shown: u64,
    csv_header_done: bool,
}

impl Session {
    fn new(cli: &Cli, tty: bool) -> Session {
        let key: SortKey = cli.view.sort.into();
        Session {
            tty,
            format: cli.view.format,
            accumulate: cli.view.accumulate,
            once: cli.view.once,
            iterations: cli.view.iterations,
            plan: Plan {
                stats: cli.view.stats_file.clone(),
                key,
                lines: cli.view.lines as usize,
                delta: key == SortKey::Reductions && !cli.view.accumulate,
                interval: Duration::from_secs_f64(cli.interval_secs()),
            },
            shown: 0,
            csv_header_done: false,
        }
    }

    fn run(mut self, collector: Collector) -> Result<()> {
        let (tx, rx) = term::start_events::<Result<Sample>>(self.tty);
        let (stop_tx, stop_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let plan = self.plan.clone();
        std::thread::Builder::new()
            .name("etop-collector".into())
            .spawn(move || collector_thread(collector, plan, tx, stop_rx, done_tx))?;
        let mut screen = if self.tty {
            Some(Screen::enter()?)
        } else {
            None
        };
        let res = self.event_loop(&rx, screen.as_mut());
        drop(screen);
        drop(stop_tx);
        // Give the collector a moment to stop the agent cleanly.
        let _ = done_rx.recv_timeout(Duration::from_secs(3));
        res
    }

    fn event_loop(
        &mut self,
        rx: &mpsc::Receiver<Event<Result<Sample>>>,
        mut screen: Option<&mut Screen>,
    ) -> Result<()> {
        // A one-shot run shows real per-interval numbers: the first sample
        // only sets the baseline.
        let baseline_frames = if self.once && !self.accumulate { 1 } else { 0 };
        let mut received = 0u64;
        let mut prev: Option<Sample> = None;
        let mut last: Option<Model> = None;
        let mut failures = 0u32;
        let mut status = String::new();
        loop {
            let Ok(ev) = rx.recv() else { return Ok(()) };
            match ev {
                Event::Quit => return Ok(()),
                Event::Resize => {
                    if let (Some(s), Some(m)) = (screen.as_deref_mut(), &last) {
                        s.invalidate();
                        s.paint(&self.screen_text(m, &status))?;
                    }
                }
                Event::Data(Ok(sample)) => {
                    failures = 0;
                    status.clear();
                    received += 1;
                    let window = prev
                        .as_ref()
                        .map(|p| (p, sample.taken_at.saturating_duration_since(p.taken_at)));
                    let model = Model::new(&sample, window, self.accumulate);
                    prev = Some(sample);
                    if received <= baseline_frames {
                        continue;
                    }
                    match screen.as_deref_mut() {
                        Some(s) => s.paint(&self.screen_text(&model, &status))?,
                        None => self.write_batch(&model)?,
                    }
                    last = Some(model);
                    self.shown += 1;
                    if self.once || self.iterations.is_some_and(|n| self.shown >= n) {
                        return Ok(());
                    }
                }
                Event::Data(Err(e)) => {
                    if !e.is_transient() {
                        return Err(e);
                    }
                    failures += 1;
                    if let Some(s) = screen.as_deref_mut() {
                        status = format!(
                            "{e}; retrying every {:.0} s (attempt {failures})",
                            self.plan.interval.as_secs_f64().max(1.0)
                        );
                        let text = match &last {
                            Some(m) => self.screen_text(m, &status),
                            None => status.clone(),
                        };
                        s.paint(&text)?;
                    } else {
                        if failures >= BATCH_RETRIES {
                            return Err(e);
                        }
                        eprintln!("etop: {e}; retrying ({failures}/{})", BATCH_RETRIES - 1);
                    }
                }
            }
        }
    }

    /// The repainted screen: header, as many rows as fit, a status line.
    fn screen_text(&self, m: &Model, status: &str) -> String {
        let (width, height) = Screen::size();
        // 4 header lines, a blank, the column titles, the status line.
        let fit = height.saturating_sub(7).max(1);
        let mut shown = m.clone();
        shown.rows.truncate(fit);
        let mut text = render::text(&shown, width);
        let line = if status.is_empty() {
            format!(
                "q quits · every {:.1} s · this sample cost the node {:.1} ms",
                self.plan.interval.as_secs_f64(),
                m.header.cost_ms
            )
        } else {
            format!("!! {status}")
        };
        text.push('\n');
        text.push_str(&render::truncate(&line, width));
        text
    }

    fn write_batch(&mut self, m: &Model) -> Result<()> {
        let text = match self.format {
            Format::Text => {
                let width = std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1000);
                let sep = if self.shown > 0 { "\n" } else { "" };
                format!("{sep}{}\n", render::text(m, width))
            }
            Format::Csv => {
                let mut s = String::new();
                if !self.csv_header_done {
                    s.push_str(render::CSV_HEADER);
                    s.push('\n');
                    self.csv_header_done = true;
                }
                s.push_str(&render::csv(m));
                s
            }
            Format::Json => format!("{}\n", render::json(m)),
        };
        term::write_batch(&text)?;
        Ok(())
    }
}
