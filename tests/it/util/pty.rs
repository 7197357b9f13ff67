//! etop on a pseudo-terminal: what it paints, keys typed at it, and the
//! terminal's modes before and after.

use super::Node;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running etop whose stdin, stdout and stderr are a pseudo-terminal.
pub struct Terminal {
    size: (u16, u16),
    child: Child,
    master: OwnedFd,
    slave: OwnedFd,
    screen: Arc<Mutex<Vec<u8>>>,
    _home: tempfile::TempDir,
}

impl Terminal {
    /// Starts `etop ARGS NODE` on a `cols`×`rows` terminal with the node's
    /// cookie.
    pub fn start(node: &Node, args: &[&str], cols: u16, rows: u16) -> Terminal {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the given ints; name and
        // termios may be null, the winsize pointer is valid for the call.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are owned by nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let stdio = || Stdio::from(slave.try_clone().expect("dup the pty slave"));
        let home = tempfile::tempdir().expect("temp HOME");
        let child = Command::new(env!("CARGO_BIN_EXE_etop"))
            .args(args)
            .arg(&node.full)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("TERM", "xterm")
            .env("ERLANG_COOKIE", &node.cookie)
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .spawn()
            .expect("spawn etop");
        let screen = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut reader = std::fs::File::from(master.try_clone().expect("dup master"));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed: the child is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        Terminal {
            size: (rows, cols),
            child,
            master,
            slave,
            screen,
            _home: home,
        }
    }

    /// Everything etop has written so far, escapes included.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().map(|s| s.clone()).unwrap_or_default())
            .into_owned()
    }

    /// The screen as a terminal shows it now: everything etop wrote,
    /// played through a terminal emulator of the same size.
    pub fn screen(&self) -> vt100::Screen {
        let nz = |n: u16| std::num::NonZeroU16::new(n.max(1)).expect("not zero");
        let mut p = vt100::Parser::new(nz(self.size.0), nz(self.size.1), 0);
        p.process(&self.screen.lock().map(|s| s.clone()).unwrap_or_default());
        p.screen().clone()
    }

    /// The screen's text, line by line.
    pub fn shown(&self) -> String {
        self.screen().contents()
    }

    /// Waits until the screen's text satisfies `pred`; fails the test with
    /// the screen otherwise.
    pub fn wait_shown(&mut self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred(&self.shown()) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{what} did not show within {timeout:?}:\n{}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until what etop wrote satisfies `pred`; fails the test with the
    /// screen otherwise.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred(&self.text()) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{what} did not show within {timeout:?}:\n{:?}", self.text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types at etop's keyboard.
    pub fn type_keys(&self, keys: &[u8]) {
        std::fs::File::from(self.master.try_clone().expect("dup master"))
            .write_all(keys)
            .expect("type at the terminal");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for etop to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for etop") {
                // Let the reader catch the last bytes.
                std::thread::sleep(Duration::from_millis(200));
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("etop did not exit within {timeout:?}:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Is the terminal in canonical mode with echo, as a shell leaves it?
    pub fn canonical_with_echo(&self) -> bool {
        // SAFETY: termios is plain data; tcgetattr fills it for a valid tty fd.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
