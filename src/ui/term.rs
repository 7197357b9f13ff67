//! The terminal: repaint in place on a TTY (alternate screen, hidden cursor,
//! raw mode for keys), plain flushed frames otherwise; one event channel for
//! keys, resizes and signals; one teardown for every exit path.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::text::{terminal_safe, terminal_safe_lines};
use crossterm::{cursor, event, execute, queue, terminal};

/// What the main loop reacts to.
#[derive(Debug)]
pub enum Event<T> {
    /// Work from the collector thread.
    Data(T),
    Key(Key),
    Resize,
    Quit,
}

/// A key the operator pressed, as the screen reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
}

fn key(code: event::KeyCode) -> Option<Key> {
    use event::KeyCode as K;
    Some(match code {
        K::Char(c) => Key::Char(c),
        K::Enter => Key::Enter,
        K::Esc => Key::Esc,
        K::Backspace => Key::Backspace,
        K::Up => Key::Up,
        K::Down => Key::Down,
        K::Left => Key::Left,
        K::Right => Key::Right,
        K::PageUp => Key::PageUp,
        K::PageDown => Key::PageDown,
        K::Home => Key::Home,
        K::End => Key::End,
        _ => return None,
    })
}

static SCREEN_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as we found it. Safe to call any number of times,
/// from any exit path: normal exit, error return, the panic hook, signals.
pub fn restore() {
    if SCREEN_ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = terminal::disable_raw_mode();
        let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = out.flush();
    }
}

/// The full-screen view; dropping it restores the terminal.
pub struct Screen {
    needs_clear: bool,
}

impl Screen {
    pub fn enter() -> io::Result<Screen> {
        // Restore before the panic message is printed, or it is lost on the
        // alternate screen.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            default_hook(info);
        }));
        let mut out = io::stdout();
        SCREEN_ACTIVE.store(true, Ordering::SeqCst);
        terminal::enable_raw_mode()?;
        execute!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(Screen { needs_clear: true })
    }

    pub fn size() -> (usize, usize) {
        terminal::size()
            .map(|(w, h)| (w as usize, h as usize))
            .unwrap_or((80, 24))
    }

    /// Marks the screen for a full clear before the next paint (after a resize).
    pub fn invalidate(&mut self) {
        self.needs_clear = true;
    }

    /// Repaints: cursor home, rewrite each line, clear the rest.
    pub fn paint(&mut self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.needs_clear {
            queue!(out, terminal::Clear(terminal::ClearType::All))?;
            self.needs_clear = false;
        }
        queue!(out, cursor::MoveTo(0, 0))?;
        let (_, height) = Screen::size();
        for (i, line) in text.lines().take(height).enumerate() {
            if i > 0 {
                out.write_all(b"\r\n")?;
            }
            // The renderers escaped what they were given; this is the last
            // line of defence for anything that reached the frame otherwise.
            out.write_all(terminal_safe(line).as_bytes())?;
            queue!(out, terminal::Clear(terminal::ClearType::UntilNewLine))?;
        }
        queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown))?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Starts the threads that feed the event channel: terminal keys and resizes
/// (only on a TTY) and SIGTERM/SIGHUP/SIGINT (always, so that a batch run
/// stopped by a signal ends cleanly too).
pub fn start_events<T: Send + 'static>(
    tty: bool,
) -> (mpsc::Sender<Event<T>>, mpsc::Receiver<Event<T>>) {
    let (tx, rx) = mpsc::channel();
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]) {
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("etop-signals".into())
                .spawn(move || {
                    if signals.forever().next().is_some() {
                        let _ = tx.send(Event::Quit);
                    }
                })
                .ok();
        }
    }
    if tty {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("etop-keys".into())
            .spawn(move || {
                loop {
                    match event::poll(Duration::from_millis(250)) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(_) => break,
                    }
                    let ev = match event::read() {
                        Ok(e) => e,
                        Err(_) => break,
                    };
                    let out = match ev {
                        event::Event::Key(k) if k.kind == event::KeyEventKind::Press => {
                            let ctrl = k.modifiers.contains(event::KeyModifiers::CONTROL);
                            match k.code {
                                event::KeyCode::Char('c') if ctrl => Some(Event::Quit),
                                code => key(code).map(Event::Key),
                            }
                        }
                        event::Event::Resize(_, _) => Some(Event::Resize),
                        _ => None,
                    };
                    if let Some(e) = out
                        && tx.send(e).is_err()
                    {
                        break;
                    }
                }
            })
            .ok();
    }
    (tx, rx)
}

/// Writes a batch frame and flushes it, so each frame reaches a pipe at once.
/// A closed pipe (`| head`) is reported as `BrokenPipe` for a quiet exit 0.
/// Nothing but the newlines between lines leaves as a control character.
pub fn write_batch(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(terminal_safe_lines(text).as_bytes())?;
    out.flush()
}

/// Is standard output a terminal?
pub fn stdout_is_tty() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal()
}
