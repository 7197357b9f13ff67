//! The loop every view shares: a feed samples on cadence in its own thread,
//! the main thread turns samples into frames and shows them: repainted on a
//! terminal, or printed one after another (text, CSV, JSON Lines) otherwise.
//! Keys, resizes, signals and samples arrive on one channel, handled by one
//! `match`.

use super::frame;
use super::term::{self, Event, Screen};
use crate::error::{Error, Result};
use crate::text::{say, truncate};
use crate::views::{Feed, Format, Frame, Shaper};
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
}

fn feed_thread<F: Feed>(
    mut feed: F,
    interval: Duration,
    stats: Option<std::path::PathBuf>,
    tx: mpsc::Sender<Event<Result<F::Sample>>>,
    stop: mpsc::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    loop {
        let start = Instant::now();
        let r = feed.sample();
        if let Some(path) = &stats {
            write_stats(path, start, feed.stats(&r));
        }
        if tx.send(Event::Data(r)).is_err() {
            break;
        }
        // Frames start one interval apart; a slow frame delays the next one
        // but never queues another behind it.
        let wait = (start + interval).saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            _ => {
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
    let (stop_tx, stop_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let (interval, stats) = (display.interval, display.stats_file.clone());
    std::thread::Builder::new()
        .name("etop-collector".into())
        .spawn(move || feed_thread(feed, interval, stats, tx, stop_rx, done_tx))?;
    let mut screen = if display.tty {
        Some(Screen::enter()?)
    } else {
        None
    };
    let mut out = Output {
        display,
        shown: 0,
        csv_header_done: false,
        started: Instant::now(),
    };
    let res = out.event_loop(&rx, screen.as_mut(), &mut shaper, &stop_tx);
    drop(screen);
    drop(stop_tx);
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
        mut screen: Option<&mut Screen>,
        shaper: &mut S,
        stop: &mpsc::Sender<()>,
    ) -> Result<()> {
        let mut last: Option<Frame> = None;
        // Told to stop: a feed that finishes early sends one last sample.
        let mut stopping: Option<Instant> = None;
        let mut failures = 0u32;
        // Batch runs: when the failures began, and what was last said of them.
        let mut failing_since: Option<Instant> = None;
        let mut said: Option<std::mem::Discriminant<Error>> = None;
        let retry_window = batch_retry_window(self.display.interval);
        let mut status = String::new();
        // A node that stops answering is said to be so on the screen well
        // before the request times out: after two intervals, or 3 s.
        let stale_after = (self.display.interval * 2).max(Duration::from_secs(3));
        let mut last_data = Instant::now();
        loop {
            let ev = match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(ev) => ev,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(20)) {
                        return Ok(());
                    }
                    if self.shown == 0 {
                        self.count_down();
                    }
                    let quiet = last_data.elapsed();
                    if let (Some(s), Some(f)) = (screen.as_deref_mut(), &last)
                        && quiet >= stale_after
                        && failures == 0
                    {
                        status = stale_status(quiet);
                        s.paint(&self.screen_text(f, &status))?;
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
                    let _ = stop.send(());
                    stopping = Some(Instant::now());
                }
                Event::Quit => return Ok(()),
                Event::Resize => {
                    if let (Some(s), Some(f)) = (screen.as_deref_mut(), &last) {
                        s.invalidate();
                        s.paint(&self.screen_text(f, &status))?;
                    }
                }
                Event::Data(Ok(sample)) => {
                    failures = 0;
                    failing_since = None;
                    said = None;
                    status.clear();
                    let Some(frame) = shaper.shape(sample) else {
                        continue;
                    };
                    self.end_count_down();
                    match screen.as_deref_mut() {
                        Some(s) => s.paint(&self.screen_text(&frame, &status))?,
                        None => self.write_batch(&frame)?,
                    }
                    last = Some(frame);
                    self.shown += 1;
                    if stopping.is_some() || self.display.frames.is_some_and(|n| self.shown >= n) {
                        return Ok(());
                    }
                }
                Event::Data(Err(e)) => {
                    self.end_count_down();
                    if !e.is_transient() || stopping.is_some() {
                        return Err(e);
                    }
                    failures += 1;
                    if let Some(s) = screen.as_deref_mut() {
                        status = format!(
                            "{e}; retrying every {:.0} s (attempt {failures})",
                            self.display.interval.as_secs_f64().max(1.0)
                        );
                        let text = match &last {
                            Some(f) => self.screen_text(f, &status),
                            None => status.clone(),
                        };
                        s.paint(&text)?;
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

    /// The repainted screen: the frame cut to the terminal, and a status line.
    fn screen_text(&self, f: &Frame, status: &str) -> String {
        let (width, height) = Screen::size();
        // Header lines, a blank, the column titles and the status line.
        let rows = height.saturating_sub(f.header.len() + 4).max(1);
        let mut text = frame::text(f, width, rows);
        let line = if status.is_empty() {
            format!(
                "q quits · every {:.1} s{}{}",
                self.display.interval.as_secs_f64(),
                if f.note.is_empty() { "" } else { " · " },
                f.note
            )
        } else {
            format!("!! {status}")
        };
        text.push('\n');
        text.push_str(&truncate(&line, width));
        text
    }

    fn write_batch(&mut self, f: &Frame) -> Result<()> {
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
