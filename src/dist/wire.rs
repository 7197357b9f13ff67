//! The wire under a connection: the TCP or TLS stream counting its bytes, the
//! reader thread that decodes frames within bounds and passes on only what
//! is awaited, and the ticker.

use super::frame::{self, DistMessage, FrameError, Incoming};
use super::term::{Pid, Term};
use erl_dist::message::{Message, Sender};
use smol::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll};
use std::time::Duration;

/// The reader decodes within `etf::MAX_DEPTH`; this stack leaves a wide
/// margin over what that depth needs even in a debug build.
const READER_STACK_BYTES: usize = 4 << 20;

/// Bytes that crossed the connection, both ways.
#[derive(Debug, Default)]
pub struct Traffic {
    pub received: AtomicU64,
    pub sent: AtomicU64,
}

/// What the connection runs over: plain TCP, or TLS over TCP
/// (`-proto_dist inet_tls`).
#[derive(Clone)]
pub(super) enum Transport {
    Tcp(smol::net::TcpStream),
    Tls(super::tls::TlsStream),
}

impl Transport {
    /// Closes both directions; for TLS after a close_notify.
    pub(super) fn shutdown(&self) {
        match self {
            Transport::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Transport::Tls(s) => s.shutdown(),
        }
    }
}

/// The stream, counting bytes (for TLS, the bytes inside it). `Clone`
/// because the sender and the reader thread share it.
#[derive(Clone)]
pub(super) struct Wire {
    pub(super) inner: Transport,
    pub(super) traffic: Arc<Traffic>,
}

impl Wire {
    /// True when the node has closed its side and nothing is left to read;
    /// never waits.
    pub(super) fn peer_closed(&mut self) -> bool {
        match &self.inner {
            Transport::Tcp(s) => {
                let mut b = [0u8; 1];
                let peeked = smol::block_on(smol::future::poll_once(s.peek(&mut b)));
                matches!(peeked, Some(Ok(0)))
            }
            Transport::Tls(s) => s.peer_closed(),
        }
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match &mut $self.inner {
            Transport::Tcp($s) => $e,
            Transport::Tls($s) => $e,
        }
    };
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let r = each!(self, s => Pin::new(s).poll_read(cx, buf));
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = each!(self, s => Pin::new(s).poll_write(cx, buf));
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_close(cx))
    }
}

/// Messages a connection dropped instead of handing them on, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// Well-formed messages nobody waited for: late replies, messages from
    /// other processes, registered-name sends.
    pub stray: u64,
    /// Frames that do not decode.
    pub malformed: u64,
    /// Frames nested too deep or too big once decoded.
    pub too_big: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.stray + self.malformed + self.too_big
    }
}

#[derive(Debug, Default)]
pub(super) struct DropCounters {
    pub(super) stray: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) too_big: AtomicU64,
}

/// What the reader thread and the main thread share.
#[derive(Default)]
pub(super) struct Shared {
    /// The reference of the request in flight; only its reply is passed on.
    pub(super) awaiting: Mutex<Option<Term>>,
    pub(super) closed: AtomicBool,
    pub(super) close_reason: Mutex<Option<String>>,
    pub(super) dropped: DropCounters,
}

impl Shared {
    pub(super) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn close_reason(&self) -> String {
        self.close_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "connection closed".to_string())
    }

    pub(super) fn is_awaited(&self, r: &Term) -> bool {
        self.awaiting
            .lock()
            .is_ok_and(|a| a.as_ref().is_some_and(|a| a == r))
    }

    pub(super) fn set_awaiting(&self, r: Option<Term>) {
        if let Ok(mut a) = self.awaiting.lock() {
            *a = r;
        }
    }
}

pub(super) enum Inbound {
    Reply { reference: Term, reply: Term },
    Exit(Pid),
}

/// Reads frames until the connection ends. Replies nobody waits for and
/// frames that do not decode are counted and dropped here; a frame that
/// breaks the framing ends the connection with its reason.
pub(super) fn spawn_reader(
    mut wire: Wire,
    out: mpsc::SyncSender<Inbound>,
    shared: Arc<Shared>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("etop-dist-reader".into())
        .stack_size(READER_STACK_BYTES)
        .spawn(move || {
            let drops = &shared.dropped;
            let reason = loop {
                let frame = match smol::block_on(frame::read_frame(&mut wire)) {
                    Ok(Incoming::Tick) => continue,
                    Ok(Incoming::Frame(f)) => f,
                    Err(e) => break e.to_string(),
                };
                let inbound = match frame::decode_frame(&frame) {
                    Ok(DistMessage::Send {
                        message: Term::Tuple(mut t),
                        ..
                    }) if t.elements.len() == 2 && shared.is_awaited(&t.elements[0]) => {
                        let reply = t.elements.pop();
                        let reference = t.elements.pop();
                        match (reference, reply) {
                            (Some(reference), Some(reply)) => Inbound::Reply { reference, reply },
                            _ => continue,
                        }
                    }
                    Ok(DistMessage::Send { .. } | DistMessage::RegSend { .. }) => {
                        Shared::count(&drops.stray);
                        continue;
                    }
                    Ok(DistMessage::Exit { from, .. }) => Inbound::Exit(from),
                    Ok(DistMessage::Signal { .. }) => continue,
                    Err(e) if e.is_fatal() => break e.to_string(),
                    Err(FrameError::TooBig(_)) => {
                        Shared::count(&drops.too_big);
                        continue;
                    }
                    Err(_) => {
                        Shared::count(&drops.malformed);
                        continue;
                    }
                };
                match out.try_send(inbound) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(_)) => Shared::count(&drops.stray),
                    // The connection was dropped: nobody listens any more.
                    Err(mpsc::TrySendError::Disconnected(_)) => break String::new(),
                }
            };
            if let Ok(mut r) = shared.close_reason.lock() {
                *r = Some(reason);
            }
            shared.closed.store(true, Ordering::Relaxed);
            // Dropping `out` wakes a main thread waiting for a reply.
        })
        .map(|_| ())
}

pub(super) fn spawn_ticker(sender: Arc<Mutex<Sender<Wire>>>, every: Duration) -> mpsc::Sender<()> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("etop-dist-ticker".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(every) {
                let Ok(mut s) = sender.lock() else { break };
                if smol::block_on(s.send(Message::Tick)).is_err() {
                    break;
                }
            }
        })
        .ok();
    stop_tx
}
