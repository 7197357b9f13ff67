//! The distribution connection: the handshake as a hidden node, ticks at the
//! target's pace, and a small request/reply layer with a timeout on every call.
//!
//! A reader thread owns the receiving half and forwards messages to a channel,
//! so a call that times out never leaves the stream half-read: its late reply
//! simply arrives later and is dropped because nobody waits for its reference.

pub mod epmd;
pub mod etf;
pub mod frame;
pub mod handshake;

use crate::error::{Error, Result};
use crate::eterm::{self, Atom, Pid, Reference, Term, atom, tuple};
use crate::target::{Cookie, CookieOrigin, NameMode, NodeName};
use erl_dist::handshake::{ClientSideHandshake, HandshakeError, HandshakeStatus};
use erl_dist::message::{Message, Receiver, RecvError, Sender, channel};
use erl_dist::node::{Creation, LocalNode};
use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How many numbered variants of our own name we try when a name is already
/// connected to the target (another etop session).
const NAME_ATTEMPTS: u32 = 9;

/// Bytes that crossed the connection, both ways.
#[derive(Debug, Default)]
pub struct Traffic {
    pub received: AtomicU64,
    pub sent: AtomicU64,
}

/// The TCP stream, counting bytes. `Clone` because erl_dist splits a stream
/// into a sender and a receiver sharing the socket.
#[derive(Clone)]
struct Wire {
    inner: smol::net::TcpStream,
    traffic: Arc<Traffic>,
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
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
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Everything needed to attach to one node.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    pub target: NodeName,
    /// Connect to this distribution port directly instead of asking EPMD.
    pub port: Option<u16>,
    pub cookie: Cookie,
    pub cookie_origin: CookieOrigin,
    /// Our node name's first part; `etop_<user>` unless `--name` is given.
    pub our_name: String,
    /// Present ourselves as a long-name (`-name`) node or a short-name one.
    pub mode: NameMode,
    /// Timeout for each step: EPMD, TCP connect, handshake.
    pub timeout: Duration,
}

impl ConnectOpts {
    pub fn default_our_name() -> String {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(login_name)
            .unwrap_or_else(|| "user".to_string());
        let clean: String = user
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        format!("etop_{}", if clean.is_empty() { "user" } else { &clean })
    }
}

/// The login name of our uid, from /etc/passwd, for when $USER is unset
/// (cron, systemd units, CI).
fn login_name() -> Option<String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
    })
}

enum Inbound {
    Msg(Box<Message>),
    Closed(String),
}

/// A live connection to one node.
pub struct Connection {
    /// The target's full node name, as it told us in the handshake.
    pub peer: String,
    /// Our own node name, as the target sees it.
    pub ours: String,
    self_pid: Pid,
    creation: u32,
    sender: Arc<Mutex<Sender<Wire>>>,
    inbox: mpsc::Receiver<Inbound>,
    next_ref: u32,
    traffic: Arc<Traffic>,
    socket: smol::net::TcpStream,
    stop_ticks: Option<mpsc::Sender<()>>,
    lost: Option<String>,
    dead_pids: Vec<Pid>,
    closed: Arc<AtomicBool>,
}

async fn timed<T>(
    d: Duration,
    fut: impl std::future::Future<Output = std::result::Result<T, Error>>,
    on_timeout: impl FnOnce() -> Error,
) -> std::result::Result<T, Error> {
    smol::future::or(fut, async {
        smol::Timer::after(d).await;
        Err(on_timeout())
    })
    .await
}

/// Our host part: a plain host for short-name targets; for long-name targets
/// a dotted host, falling back to the address we connect from.
fn our_host(mode: NameMode, local_ip: std::net::IpAddr) -> String {
    match mode {
        NameMode::Short => crate::target::short_hostname(),
        NameMode::Long => {
            let h = crate::target::local_hostname();
            if h.contains('.') {
                h
            } else {
                local_ip.to_string()
            }
        }
    }
}

/// One try at the handshake under one name.
enum Attempt {
    Done(Box<(Wire, erl_dist::node::PeerNode, LocalNode)>),
    NameTaken,
}

impl Connection {
    pub fn connect(opts: &ConnectOpts) -> Result<Connection> {
        let node = opts.target.to_string();
        let port = match opts.port {
            Some(p) => p,
            None => crate::target::epmd_port_of(&opts.target, opts.timeout)?,
        };
        let addr = crate::target::resolve(&opts.target.host, port)?;
        let traffic = Arc::new(Traffic::default());
        let creation = Creation::new(rand_creation());
        let mut first_name = None;
        for attempt in 0..NAME_ATTEMPTS {
            let base = if attempt == 0 {
                opts.our_name.clone()
            } else {
                format!("{}_{}", opts.our_name, attempt + 1)
            };
            let stream = smol::block_on(timed(
                opts.timeout,
                async {
                    smol::net::TcpStream::connect(addr)
                        .await
                        .map_err(|e| Error::Connect {
                            node: node.clone(),
                            addr: addr.to_string(),
                            err: e.to_string(),
                        })
                },
                || Error::Timeout {
                    node: node.clone(),
                    what: format!("a TCP connection to {addr}"),
                    secs: opts.timeout.as_secs_f64(),
                },
            ))?;
            // Without TCP_NODELAY every request/reply pair waits for the
            // delayed-ACK timer (~40 ms).
            stream.set_nodelay(true)?;
            let local_ip = stream.local_addr()?.ip();
            let name = format!("{base}@{}", our_host(opts.mode, local_ip));
            first_name.get_or_insert_with(|| name.clone());
            let wire = Wire {
                inner: stream.clone(),
                traffic: traffic.clone(),
            };
            let node_name: erl_dist::node::NodeName = name
                .parse()
                .map_err(|e| Error::Usage(format!("our node name '{name}': {e}")))?;
            let local = LocalNode::new(node_name, creation);
            let result = smol::block_on(timed(
                opts.timeout,
                handshake(wire, local, opts, attempt == 0),
                || Error::Timeout {
                    node: node.clone(),
                    what: "the distribution handshake".into(),
                    secs: opts.timeout.as_secs_f64(),
                },
            ))?;
            match result {
                Attempt::NameTaken => continue,
                Attempt::Done(done) => {
                    let (wire, peer, local) = *done;
                    return Self::start(wire, stream, peer, local, traffic);
                }
            }
        }
        Err(Error::NamesTaken {
            node,
            ours: first_name.unwrap_or_default(),
            last: format!("{}_{}", opts.our_name, NAME_ATTEMPTS),
        })
    }

    fn start(
        wire: Wire,
        socket: smol::net::TcpStream,
        peer: erl_dist::node::PeerNode,
        local: LocalNode,
        traffic: Arc<Traffic>,
    ) -> Result<Connection> {
        let (tx, rx) = channel(wire, local.flags & peer.flags);
        let (in_tx, inbox) = mpsc::channel();
        let closed = Arc::new(AtomicBool::new(false));
        spawn_reader(rx, in_tx, closed.clone());
        let ours = local.name.to_string();
        let self_pid = Pid::new(ours.clone(), 1, 0, local.creation.get());
        let mut conn = Connection {
            peer: peer.name.to_string(),
            ours,
            self_pid,
            creation: local.creation.get(),
            sender: Arc::new(Mutex::new(tx)),
            inbox,
            next_ref: 1,
            traffic,
            socket,
            stop_ticks: None,
            lost: None,
            dead_pids: Vec::new(),
            closed,
        };
        // Tick at a quarter of the target's net_ticktime, as its own peers do.
        let ticktime = conn
            .rpc(
                "net_kernel",
                "get_net_ticktime",
                vec![],
                Duration::from_secs(10),
            )
            .ok()
            .and_then(|t| eterm::as_i64(&t))
            .unwrap_or(60);
        let every = Duration::from_secs_f64((ticktime.max(4) as f64) / 4.0);
        conn.stop_ticks = Some(spawn_ticker(conn.sender.clone(), every));
        Ok(conn)
    }

    /// Our process identity on the target; replies and links point here.
    pub fn self_pid(&self) -> &Pid {
        &self.self_pid
    }

    pub fn traffic(&self) -> (u64, u64) {
        (
            self.traffic.received.load(Ordering::Relaxed),
            self.traffic.sent.load(Ordering::Relaxed),
        )
    }

    fn make_ref(&mut self) -> Reference {
        self.next_ref = self.next_ref.wrapping_add(1);
        Reference {
            node: Atom::from(self.ours.as_str()),
            id: vec![self.next_ref, 0, 0],
            creation: self.creation,
        }
    }

    fn lost_error(&self, reason: &str) -> Error {
        Error::ConnectionLost {
            node: self.peer.clone(),
            reason: reason.to_string(),
        }
    }

    fn send(&mut self, msg: Message) -> Result<()> {
        if let Some(r) = &self.lost {
            return Err(self.lost_error(r));
        }
        let sender = self.sender.clone();
        let res = {
            let mut guard = sender
                .lock()
                .map_err(|_| self.lost_error("sender poisoned"))?;
            smol::block_on(guard.send(msg))
        };
        res.map_err(|e| {
            self.lost = Some(e.to_string());
            self.lost_error(&e.to_string())
        })
    }

    /// Calls `M:F(A...)` on the target through its `rex` server, the way
    /// `rpc:call/4` does, with a timeout. `{badrpc, _}` becomes an error.
    pub fn rpc(&mut self, m: &str, f: &str, args: Vec<Term>, timeout: Duration) -> Result<Term> {
        debug_assert!(
            crate::remote::ALLOWED_RPC.contains(&(m, f, args.len())),
            "{m}:{f}/{} is not in remote::ALLOWED_RPC",
            args.len()
        );
        let r = self.make_ref();
        let call = tuple(vec![
            atom("$gen_call"),
            tuple(vec![self.self_pid.clone().into(), r.clone().into()]),
            tuple(vec![
                atom("call"),
                atom(m),
                atom(f),
                eterm::list(args),
                atom("user"),
            ]),
        ]);
        self.send(Message::reg_send(
            self.self_pid.clone(),
            Atom::from("rex"),
            call,
        ))?;
        let what = format!("{m}:{f}");
        let reply = self.await_reply(&r, timeout, &what)?;
        if let Some([tag, reason]) = eterm::as_tuple(&reply)
            && eterm::is_atom(tag, "badrpc")
        {
            return Err(Error::Remote {
                node: self.peer.clone(),
                what,
                detail: reason.to_string(),
            });
        }
        Ok(reply)
    }

    /// Sends `{Ref, Self, Request}` to a process of ours on the target and
    /// waits for its `{Ref, Reply}`.
    pub fn request(&mut self, to: &Pid, req: Term, timeout: Duration, what: &str) -> Result<Term> {
        if self.dead_pids.contains(to) {
            return Err(Error::ConnectionLost {
                node: self.peer.clone(),
                reason: format!("our helper process {} exited", to),
            });
        }
        let r = self.make_ref();
        let msg = tuple(vec![r.clone().into(), self.self_pid.clone().into(), req]);
        self.send(Message::send(to.clone(), msg))?;
        self.await_reply(&r, timeout, what)
    }

    fn await_reply(&mut self, r: &Reference, timeout: Duration, what: &str) -> Result<Term> {
        let deadline = Instant::now() + timeout;
        let want: Term = r.clone().into();
        loop {
            if let Some(reason) = &self.lost {
                return Err(self.lost_error(reason));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Inbound::Msg(msg)) => {
                    if let Some(reply) = self.take_reply(*msg, &want) {
                        return Ok(reply);
                    }
                }
                Ok(Inbound::Closed(reason)) => self.lost = Some(reason),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::Timeout {
                        node: self.peer.clone(),
                        what: what.to_string(),
                        secs: timeout.as_secs_f64(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.lost = Some("connection closed".into())
                }
            }
        }
    }

    /// Returns the reply if `msg` is `{Ref, Reply}` for `want`; remembers
    /// exits of our linked processes; drops everything else (late replies,
    /// link signals, stray messages) without fuss.
    fn take_reply(&mut self, msg: Message, want: &Term) -> Option<Term> {
        match msg {
            Message::Send(s) => reply_for(s.message, want),
            Message::SendSender(s) => reply_for(s.message, want),
            Message::Exit(e) => {
                self.dead_pids.push(e.from_pid);
                None
            }
            Message::PayloadExit(e) => {
                self.dead_pids.push(e.from_pid);
                None
            }
            _ => None,
        }
    }

    /// True once the reader has seen the socket close.
    pub fn is_closed(&self) -> bool {
        self.lost.is_some() || self.closed.load(Ordering::Relaxed)
    }
}

fn reply_for(message: Term, want: &Term) -> Option<Term> {
    if let Term::Tuple(mut t) = message
        && t.elements.len() == 2
        && &t.elements[0] == want
    {
        return t.elements.pop();
    }
    None
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closing the socket is what undoes our state on the target: the
        // agent is linked to our pid and exits with the connection.
        drop(self.stop_ticks.take());
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

async fn handshake(
    wire: Wire,
    local: LocalNode,
    opts: &ConnectOpts,
    retry_eof: bool,
) -> std::result::Result<Attempt, Error> {
    let node = opts.target.to_string();
    let ours = local.name.to_string();
    let mut hs = ClientSideHandshake::new(wire, local.clone(), opts.cookie.expose());
    let status = match hs
        .execute_send_name(erl_dist::LOWEST_DISTRIBUTION_PROTOCOL_VERSION)
        .await
    {
        Ok(s) => s,
        Err(e) => return Err(handshake_error(&node, &ours, opts, e, false)),
    };
    if matches!(status, HandshakeStatus::Nok) {
        return Ok(Attempt::NameTaken);
    }
    if matches!(status, HandshakeStatus::Alive) {
        // A node with our name is connected already (another etop): keep it,
        // try the next name.
        let _ = hs.execute_rest(false).await;
        return Ok(Attempt::NameTaken);
    }
    let (wire, peer) = match hs.execute_rest(true).await {
        Ok(x) => x,
        Err(HandshakeError::Io(ref io))
            if io.kind() == io::ErrorKind::UnexpectedEof && retry_eof =>
        {
            return Ok(Attempt::NameTaken);
        }
        Err(e) => return Err(handshake_error(&node, &ours, opts, e, true)),
    };
    Ok(Attempt::Done(Box::new((wire, peer, local))))
}

fn handshake_error(
    node: &str,
    ours: &str,
    opts: &ConnectOpts,
    e: HandshakeError,
    after_status: bool,
) -> Error {
    match e {
        HandshakeError::NotAllowed => Error::NotAllowed {
            node: node.to_string(),
            ours: ours.to_string(),
        },
        // The target closes the socket instead of sending its challenge ack
        // when our digest (our cookie) is wrong.
        HandshakeError::Io(ref io) if after_status && io.kind() == io::ErrorKind::UnexpectedEof => {
            Error::CookieRejected {
                node: node.to_string(),
                source_desc: opts.cookie_origin.to_string(),
            }
        }
        HandshakeError::CookieMismatch => Error::CookieRejected {
            node: node.to_string(),
            source_desc: opts.cookie_origin.to_string(),
        },
        HandshakeError::Io(ref io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            Error::Handshake {
                node: node.to_string(),
                err: format!(
                    "it closed the connection before accepting our name '{ours}' \
                     (a {} name); is it a {} node?",
                    mode_word(opts.mode),
                    mode_word(opts.mode)
                ),
            }
        }
        other => Error::Handshake {
            node: node.to_string(),
            err: other.to_string(),
        },
    }
}

fn mode_word(m: NameMode) -> &'static str {
    match m {
        NameMode::Short => "short (-sname)",
        NameMode::Long => "long (-name)",
    }
}

fn spawn_reader(mut rx: Receiver<Wire>, out: mpsc::Sender<Inbound>, closed: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("etop-dist-reader".into())
        .spawn(move || {
            loop {
                match smol::block_on(rx.recv()) {
                    Ok(Message::Tick) => {}
                    Ok(msg) => {
                        if out.send(Inbound::Msg(Box::new(msg))).is_err() {
                            break;
                        }
                    }
                    // A message we cannot decode was read whole: the stream
                    // is still in step, so skip it.
                    Err(RecvError::Decode(_)) | Err(RecvError::UnsupportedOp { .. }) => {}
                    Err(e) => {
                        closed.store(true, Ordering::Relaxed);
                        let reason = match e {
                            RecvError::Closed => "the node closed the connection".to_string(),
                            other => other.to_string(),
                        };
                        let _ = out.send(Inbound::Closed(reason));
                        break;
                    }
                }
            }
        })
        .ok();
}

fn spawn_ticker(sender: Arc<Mutex<Sender<Wire>>>, every: Duration) -> mpsc::Sender<()> {
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

/// A creation value for our pids and refs; any non-zero value is valid.
fn rand_creation() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mixed =
        (t ^ (std::process::id() as u64).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) as u32).max(1)
}
