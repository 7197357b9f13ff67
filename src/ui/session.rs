//! The loop every view shares: a feed samples on cadence in its own thread,
//! the main thread turns samples into frames and shows them: on a terminal
//! the interactive screen (`top`), or frames printed one after another
//! (text, CSV, JSON Lines). Keys, resizes, signals and samples arrive on one
//! channel, handled by one `match`; what a key changes on the node side goes
//! back to the feed thread on a channel of its own.

use super::frame;
use super::term::{self, Event, Screen};
use super::top::{Act, Top};
use crate::error::{Error, Result};
use crate::text::say;
use crate::views::{Control, Feed, Format, Frame, Keys, Shaper};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a batch run keeps retrying a node it lost before giving up:
/// three intervals, and never less than this, long enough for a node that
/// restarts (a release's `restart`, a supervisor's restart of the VM) to
/// come back.
pub const BATCH_RETRY_MIN: Duration = Duration::from_secs(10);

/// How long a batch run retries after its first failed frame.
pub fn batch_retry_window(interval: Duration) -> Duration {
    (interval * 3).max(BATCH_RETRY_MIN)
}

/// How the session shows frames and when it stops.
#[derive(Debug, Clone)]
pub struct Display {
    pub tty: bool,
    pub format: Format,
    pub interval: Duration,
    /// Stop after this many shown frames.
    pub frames: Option<u64>,
    pub stats_file: Option<std::path::PathBuf>,
    /// Until the first frame, count down this long on stderr (a terminal
    /// only) with this label: a measurement window (msacc).
    pub countdown: Option<(String, Duration)>,
    /// What the interactive screen offers for this view.
    pub keys: Keys,
    /// Stop this long after the start, at a moment the node is answering
    /// (`etop watch --for`).
    pub until: Option<Duration>,
    /// Frames are lines of a log (`etop watch`): written as they are, with
    /// no blank line between frames, and nothing for an empty one.
    pub log: bool,
}

/// What the main thread tells the feed thread.
enum Ctl {
    Control(Control),
    Interval(Duration),
    Pause(bool),
    Stop,
}

fn feed_thread<F: Feed>(
    mut feed: F,
    mut interval: Duration,
    stats: Option<std::path::PathBuf>,
    tx: mpsc::Sender<Event<Result<F::Sample>>>,
    ctl: mpsc::Receiver<Ctl>,
    done: mpsc::Sender<()>,
) {
    let mut paused = false;
    let mut next = Instant::now();
    loop {
        if !paused && Instant::now() >= next {
            let start = Instant::now();
            let r = feed.sample();
            if let Some(path) = &stats {
                write_stats(path, start, feed.stats(&r));
            }
            if tx.send(Event::Data(r)).is_err() {
                break;
            }
            // Frames start one interval apart; a slow frame delays the next
            // one but never queues another behind it.
            next = start + interval;
        }
        let wait = if paused {
            Duration::from_secs(3600)
        } else {
            next.saturating_duration_since(Instant::now())
        };
        match ctl.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // What the operator changed shows at once.
            Ok(Ctl::Control(c)) => {
                feed.control(&c);
                next = Instant::now();
            }
            Ok(Ctl::Interval(d)) => {
                next = next - interval + d;
                interval = d;
            }
            Ok(Ctl::Pause(p)) => {
                paused = p;
                next = Instant::now();
            }
            Ok(Ctl::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if feed.finish_early() {
                    let r = feed.sample();
                    let _ = tx.send(Event::Data(r));
                }
                break;
            }
        }
    }
    feed.close();
    let _ = done.send(());
}

fn write_stats(path: &std::path::Path, start: Instant, extra: Option<serde_json::Value>) {
    use std::io::Write;
    let mut line = serde_json::json!({
        "unix_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        "request_ms": start.elapsed().as_secs_f64() * 1000.0,
    });
    if let (Some(obj), Some(serde_json::Value::Object(more))) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The status line while the node has not answered for `quiet`.
fn stale_status(quiet: Duration) -> String {
    format!(
        "STALE: the node has not answered for {:.0} s; the frame above is old (still waiting)",
        quiet.as_secs_f64()
    )
}

/// Runs a view until it is done, quit, or fails for good.
pub fn run<F, S>(feed: F, mut shaper: S, display: Display) -> Result<()>
where
    F: Feed,
    S: Shaper<Sample = F::Sample>,
{
    let (tx, rx) = term::start_events::<Result<F::Sample>>(display.tty);
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let (interval, stats) = (display.interval, display.stats_file.clone());
    std::thread::Builder::new()
        .name("etop-collector".into())
        .spawn(move || feed_thread(feed, interval, stats, tx, ctl_rx, done_tx))?;
    let mut screen = if display.tty {
        Some(Screen::enter()?)
    } else {
        None
    };
    let mut top = match screen {
        Some(_) => Some(Top::new(display.keys.clone(), display.interval)?),
        None => None,
    };
    let mut out = Output {
        display,
        shown: 0,
        csv_header_done: false,
        started: Instant::now(),
    };
    let res = out.event_loop(&rx, top.as_mut(), &mut shaper, &ctl_tx);
    drop(top);
    drop(screen.take());
    let _ = ctl_tx.send(Ctl::Stop);
    drop(ctl_tx);
    // Give the feed a moment to undo its state on the target cleanly.
    let _ = done_rx.recv_timeout(Duration::from_secs(3));
    res
}

struct Output {
    display: Display,
    shown: u64,
    csv_header_done: bool,
    started: Instant,
}

impl Output {
    fn event_loop<T, S: Shaper<Sample = T>>(
        &mut self,
        rx: &mpsc::Receiver<Event<Result<T>>>,
        mut top: Option<&mut Top>,
        shaper: &mut S,
        ctl: &mpsc::Sender<Ctl>,
    ) -> Result<()> {
        // Told to stop: a feed that finishes early sends one last sample.
        let mut stopping: Option<Instant> = None;
        let mut failures = 0u32;
        // Batch runs: when the failures began, and what was last said of them.
        let mut failing_since: Option<Instant> = None;
        let mut said: Option<std::mem::Discriminant<Error>> = None;
        let retry_window = batch_retry_window(self.display.interval);
        // A node that stops answering is said to be so on the screen well
        // before the request times out: after two intervals, or 3 s.
        let mut interval = self.display.interval;
        let mut last_data = Instant::now();
        if let Some(t) = top.as_deref_mut() {
            t.draw()?;
        }
        loop {
            let ev = match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(ev) => ev,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(20)) {
                        return Ok(());
                    }
                    if self.time_is_up() && failures == 0 {
                        return Ok(());
                    }
                    if self.shown == 0 {
                        self.count_down();
                    }
                    let quiet = last_data.elapsed();
                    let stale_after = (interval * 2).max(Duration::from_secs(3));
                    if let Some(t) = top.as_deref_mut()
                        && t.has_frame()
                        && quiet >= stale_after
                        && failures == 0
                    {
                        t.set_status(stale_status(quiet));
                        t.draw()?;
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            };
            if matches!(ev, Event::Data(_)) {
                last_data = Instant::now();
            }
            match ev {
                Event::Quit if stopping.is_none() && self.display.countdown.is_some() => {
                    // Stop the feed, then show what it sends last.
                    let _ = ctl.send(Ctl::Stop);
                    stopping = Some(Instant::now());
                }
                Event::Quit => return Ok(()),
                Event::Key(k) => {
                    let Some(t) = top.as_deref_mut() else {
                        continue;
                    };
                    for act in t.on_key(k) {
                        match act {
                            Act::Quit => return Ok(()),
                            Act::Feed(c) => {
                                shaper.control(&c);
                                let _ = ctl.send(Ctl::Control(c));
                            }
                            Act::Interval(d) => {
                                interval = d;
                                let _ = ctl.send(Ctl::Interval(d));
                            }
                            Act::Pause(p) => {
                                let _ = ctl.send(Ctl::Pause(p));
                            }
                        }
                    }
                    t.draw()?;
                }
                Event::Resize => {
                    if let Some(t) = top.as_deref_mut() {
                        t.invalidate()?;
                        if let Some(Act::Feed(c)) = t.rows_wanted() {
                            let _ = ctl.send(Ctl::Control(c));
                        }
                        t.draw()?;
                    }
                }
                Event::Data(Ok(sample)) => {
                    failures = 0;
                    failing_since = None;
                    said = None;
                    let Some(frame) = shaper.shape(sample) else {
                        continue;
                    };
                    self.end_count_down();
                    match top.as_deref_mut() {
                        Some(t) => {
                            t.show(frame);
                            // The header's height is known now: ask for the
                            // rows that fit under it.
                            if let Some(Act::Feed(c)) = t.rows_wanted() {
                                let _ = ctl.send(Ctl::Control(c));
                            }
                            t.draw()?;
                        }
                        None => self.write_batch(&frame)?,
                    }
                    self.shown += 1;
                    if stopping.is_some()
                        || self.display.frames.is_some_and(|n| self.shown >= n)
                        || shaper.done()
                        || self.time_is_up()
                    {
                        return Ok(());
                    }
                }
                Event::Data(Err(e)) => {
                    self.end_count_down();
                    if !e.is_transient() || stopping.is_some() {
                        return Err(e);
                    }
                    failures += 1;
                    if let Some(t) = top.as_deref_mut() {
                        t.set_status(format!(
                            "{e}; retrying every {:.0} s (attempt {failures})",
                            interval.as_secs_f64().max(1.0)
                        ));
                        t.draw()?;
                    } else {
                        let since = *failing_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= retry_window {
                            // Once frames were shown, whatever the reconnects
                            // met (the name gone from EPMD, refused...), the
                            // story is that the connection was lost.
                            return Err(match e {
                                Error::ConnectionLost { .. } => e,
                                other if self.shown > 0 => Error::Gone {
                                    tries: failures,
                                    last: Box::new(other),
                                },
                                other => other,
                            });
                        }
                        // Each kind of failure once, not every attempt.
                        let kind = std::mem::discriminant(&e);
                        if said != Some(kind) {
                            say(format!(
                                "{e}; retrying for up to {:.0} s",
                                retry_window.saturating_sub(since.elapsed()).as_secs_f64()
                            ));
                            said = Some(kind);
                        }
                    }
                }
            }
        }
    }

    /// Has the run lasted as long as it was asked to? A node that is not
    /// answering at that moment is waited for (within the retries): a run
    /// never ends well on a frame it did not get.
    fn time_is_up(&self) -> bool {
        self.display
            .until
            .is_some_and(|d| self.started.elapsed() >= d)
    }

    /// The countdown line on stderr, while a measurement window runs.
    fn count_down(&self) {
        if let Some((label, window)) = &self.display.countdown
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
        {
            let left = window.saturating_sub(self.started.elapsed()).as_secs_f64();
            eprint!(
                "\retop: {}: {left:>4.0} s left ",
                crate::text::terminal_safe(label)
            );
        }
    }

    fn end_count_down(&self) {
        if self.display.countdown.is_some()
            && self.shown == 0
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
        {
            eprint!("\r\x1b[K");
        }
    }

    fn write_batch(&mut self, f: &Frame) -> Result<()> {
        if self.display.log {
            let text = match self.display.format {
                Format::Json => frame::json(f),
                Format::Text | Format::Csv => f.header.iter().map(|l| format!("{l}\n")).collect(),
            };
            return term::write_batch(&text).map_err(Error::Io);
        }
        let text = match self.display.format {
            Format::Text => {
                let width = std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1000);
                let sep = if self.shown > 0 { "\n" } else { "" };
                format!("{sep}{}\n", frame::text(f, width, usize::MAX))
            }
            Format::Csv => {
                let s = frame::csv(f, !self.csv_header_done);
                self.csv_header_done = true;
                s
            }
            Format::Json => frame::json(f),
        };
        term::write_batch(&text).map_err(Error::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_run_retries_for_three_intervals_and_at_least_ten_seconds() {
        let w = |secs: f64| batch_retry_window(Duration::from_secs_f64(secs));
        assert_eq!(w(0.5), Duration::from_secs(10));
        assert_eq!(w(3.0), Duration::from_secs(10));
        assert_eq!(w(5.0), Duration::from_secs(15));
        assert_eq!(w(60.0), Duration::from_secs(180));
    }
}
