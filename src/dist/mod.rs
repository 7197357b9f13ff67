//! The distribution connection: the handshake as a hidden node (over TCP,
//! or inside TLS for `-proto_dist inet_tls` nodes, see `tls`), ticks at the
//! target's pace, and a small request/reply layer with a timeout on every call.
//!
//! A reader thread owns the receiving half. It reads frames within fixed
//! bounds (`frame`, `etf`) and hands the main thread only what it waits for:
//! the reply to the one request in flight, and exits of linked processes.
//! Everything else (late replies, stray messages, frames it cannot decode)
//! is dropped there and counted, so nothing a peer sends can pile up.
//! A call that times out never leaves the stream half-read: its late reply
//! arrives later and is dropped because nobody waits for its reference.

pub mod etf;
pub mod frame;
pub mod handshake;
pub mod term;
pub mod tls;
mod wire;

pub use wire::{Dropped, Traffic};
use wire::{Inbound, Shared, Transport, Wire, spawn_reader, spawn_ticker};

use crate::error::{Error, Result};
use crate::node::discover::ssl_dist::TlsFiles;
use crate::node::{Cookie, CookieOrigin, NameMode, NodeName};
use erl_dist::DistributionFlags;
use erl_dist::message::{Message, Sender, channel};
use handshake::{HandshakeError, Outcome};

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use term::{Atom, Pid, Reference, Term, atom, tuple};

/// How many numbered variants of our own name we try when a name is already
/// connected to the target (another etop session).
/// How often we tick before the node's net_ticktime is known: a quarter of
/// OTP's default of 60 s.
const DEFAULT_TICK: Duration = Duration::from_secs(15);

const NAME_ATTEMPTS: u32 = 9;

/// Replies and exit notices waiting for the main thread. The reader passes
/// on only the reply to the request in flight, so this is never full unless
/// a peer forges our references or floods exit signals; then it drops.
const INBOX_CAPACITY: usize = 16;

/// How many exited helper processes we remember. etop links one.
const DEAD_PIDS_KEPT: usize = 16;

/// Everything needed to attach to one node.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    pub target: NodeName,
    /// Connect to this distribution port directly instead of asking EPMD.
    pub port: Option<u16>,
    /// The port of the EPMD to ask: the node's own `-epmd_port` for a node on
    /// this host that has one; `None` for `ERL_EPMD_PORT` or 4369.
    pub epmd_port: Option<u16>,
    pub cookie: Cookie,
    pub cookie_origin: CookieOrigin,
    /// Our node name's first part; `etop_<user>` unless `--name` is given.
    pub our_name: String,
    /// Present ourselves as a long-name (`-name`) node or a short-name one.
    pub mode: NameMode,
    /// Timeout for each step: EPMD, TCP connect, handshake; and for the whole
    /// setup after the handshake (`setup_rpc`).
    pub timeout: Duration,
    /// Speak TLS with these files (`-proto_dist inet_tls` nodes); plain TCP
    /// when `None`.
    pub tls: Option<TlsFiles>,
}

impl ConnectOpts {
    pub fn default_our_name() -> String {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(crate::host::login_name)
            .unwrap_or_else(|| "user".to_string());
        let clean: String = user
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        format!("etop_{}", if clean.is_empty() { "user" } else { &clean })
    }
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
    shared: Arc<Shared>,
    next_ref: u32,
    traffic: Arc<Traffic>,
    socket: Transport,
    stop_ticks: Option<mpsc::Sender<()>>,
    lost: Option<String>,
    dead_pids: Vec<Pid>,
    /// `--connect-timeout`, and when the setup after the handshake must be
    /// done by.
    connect_timeout: Duration,
    setup_deadline: Instant,
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
        NameMode::Short => crate::host::short_hostname(),
        NameMode::Long => {
            let h = crate::host::hostname();
            if h.contains('.') {
                h
            } else {
                local_ip.to_string()
            }
        }
    }
}

impl Connection {
    pub fn connect(opts: &ConnectOpts) -> Result<Connection> {
        let node = opts.target.to_string();
        // A file that cannot be used is the operator's to fix: say so before
        // anything goes on the network.
        let tls = opts.tls.as_ref().map(tls::Tls::load).transpose()?;
        let port = match opts.port {
            Some(p) => p,
            None => crate::node::epmd::port_of_at(&opts.target, opts.epmd_port, opts.timeout)?,
        };
        let addr = crate::node::epmd::resolve(&opts.target.host, port)?;
        let traffic = Arc::new(Traffic::default());
        let creation = rand_creation();
        let mut first_name = None;
        for attempt in 0..NAME_ATTEMPTS {
            let base = if attempt == 0 {
                opts.our_name.clone()
            } else {
                format!("{}_{}", opts.our_name, attempt + 1)
            };
            let socket = smol::block_on(timed(
                opts.timeout,
                async {
                    smol::Async::<std::net::TcpStream>::connect(addr)
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
            socket.get_ref().set_nodelay(true)?;
            let local_ip = socket.get_ref().local_addr()?.ip();
            let name = format!("{base}@{}", our_host(opts.mode, local_ip));
            first_name.get_or_insert_with(|| name.clone());
            if let Err(e) = name.parse::<erl_dist::node::NodeName>() {
                return Err(Error::Usage(format!("our node name '{name}': {e}")));
            }
            // inet_tls_dist: TLS first, then the distribution handshake in it.
            let transport = match &tls {
                None => Transport::Tcp(smol::net::TcpStream::from(socket)),
                Some(t) => Transport::Tls(smol::block_on(timed(
                    opts.timeout,
                    t.connect(socket, &node, &opts.target.host),
                    || Error::TlsHandshake {
                        node: node.clone(),
                        err: format!(
                            "no answer to the TLS handshake within {:.0} s; is it a \
                             TLS-distribution node (-proto_dist inet_tls)?",
                            opts.timeout.as_secs_f64()
                        ),
                    },
                ))?),
            };
            let framing = match transport {
                Transport::Tcp(_) => handshake::Framing::Tcp,
                Transport::Tls(_) => handshake::Framing::Tls,
            };
            let mut wire = Wire {
                inner: transport.clone(),
                traffic: traffic.clone(),
            };
            let ours = handshake::Ours {
                name: &name,
                creation,
                cookie: opts.cookie.expose(),
                challenge: random_u32(),
            };
            let outcome = smol::block_on(timed(
                opts.timeout,
                async {
                    Ok(handshake::framed_client_handshake(
                        &mut wire,
                        &ours,
                        framing,
                        Wire::peer_closed,
                    )
                    .await)
                },
                || Error::Timeout {
                    node: node.clone(),
                    what: "the distribution handshake".into(),
                    secs: opts.timeout.as_secs_f64(),
                },
            ))?;
            match outcome {
                Ok(Outcome::Connected(peer)) => {
                    return Self::start(wire, transport, peer, name, creation, traffic, opts);
                }
                Ok(Outcome::NameTaken) => continue,
                // A node settling a clash between two handshakes under the
                // same name (two etops started at once) closes one, before
                // or right after its status, depending on when its
                // net_kernel decides: during our first handshake, try the
                // next name. The second time, the words below are meant.
                Err(
                    HandshakeError::ClosedBeforeStatus
                    | HandshakeError::ClosedAfterStatus
                    | HandshakeError::ClosedAfterChallenge
                    | HandshakeError::ClosedAfterReply,
                ) if attempt == 0 => continue,
                Err(e) => {
                    // A name-kind mismatch is about the name the operator
                    // gave, not the numbered one tried second.
                    let ours = match e {
                        HandshakeError::ClosedBeforeStatus => {
                            first_name.as_deref().unwrap_or(&name)
                        }
                        _ => &name,
                    };
                    return Err(handshake_error(&node, ours, opts, tls.as_ref(), e));
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
        socket: Transport,
        peer: handshake::Challenge,
        ours: String,
        creation: u32,
        traffic: Arc<Traffic>,
        opts: &ConnectOpts,
    ) -> Result<Connection> {
        let setup_deadline = Instant::now() + opts.timeout;
        let flags = DistributionFlags::from_bits_truncate(handshake::our_flags() & peer.flags);
        // erl_dist encodes what we send; its receiving half is not used:
        // the reader below reads within our own bounds.
        let (tx, _) = channel(wire.clone(), flags);
        let (in_tx, inbox) = mpsc::sync_channel(INBOX_CAPACITY);
        let shared = Arc::new(Shared::default());
        spawn_reader(wire, in_tx, shared.clone())?;
        let self_pid = Pid::new(ours.clone(), 1, 0, creation);
        let mut conn = Connection {
            peer: peer.name,
            ours,
            self_pid,
            creation,
            sender: Arc::new(Mutex::new(tx)),
            inbox,
            shared,
            next_ref: 1,
            traffic,
            socket,
            stop_ticks: None,
            lost: None,
            dead_pids: Vec::new(),
            connect_timeout: opts.timeout,
            setup_deadline,
        };
        // Until told the node's net_ticktime (see `set_tick_interval`), tick
        // at a quarter of OTP's default.
        conn.stop_ticks = Some(spawn_ticker(conn.sender.clone(), DEFAULT_TICK));
        Ok(conn)
    }

    /// Ticks from now on every `every`: a quarter of the node's
    /// net_ticktime, as its own peers tick.
    pub fn set_tick_interval(&mut self, every: Duration) {
        drop(self.stop_ticks.take());
        self.stop_ticks = Some(spawn_ticker(self.sender.clone(), every));
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

    /// Messages dropped on this connection so far.
    pub fn dropped(&self) -> Dropped {
        let d = &self.shared.dropped;
        Dropped {
            stray: d.stray.load(Ordering::Relaxed),
            malformed: d.malformed.load(Ordering::Relaxed),
            too_big: d.too_big.load(Ordering::Relaxed),
        }
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
        self.rpc_within(m, f, args, timeout, false)
    }

    /// `rpc` for the setup after the handshake: all setup calls together
    /// must be done within `--connect-timeout` of the handshake.
    pub fn setup_rpc(&mut self, m: &str, f: &str, args: Vec<Term>) -> Result<Term> {
        let left = self
            .setup_deadline
            .saturating_duration_since(Instant::now());
        self.rpc_within(m, f, args, left, true)
    }

    fn rpc_within(
        &mut self,
        m: &str,
        f: &str,
        args: Vec<Term>,
        timeout: Duration,
        setup: bool,
    ) -> Result<Term> {
        let r = self.make_ref();
        let call = tuple(vec![
            atom("$gen_call"),
            tuple(vec![self.self_pid.clone().into(), r.clone().into()]),
            tuple(vec![
                atom("call"),
                atom(m),
                atom(f),
                term::list(args),
                atom("user"),
            ]),
        ]);
        let msg = Message::reg_send(self.self_pid.clone(), Atom::from("rex"), call);
        let what = format!("{m}:{f}");
        let reply = self.call(msg, r, timeout, &what).map_err(|e| match e {
            Error::Timeout { node, .. } if setup => Error::Timeout {
                node,
                what: format!("etop's setup ({what})"),
                secs: self.connect_timeout.as_secs_f64(),
            },
            other => other,
        })?;
        if let Some([tag, reason]) = term::as_tuple(&reply)
            && term::is_atom(tag, "badrpc")
        {
            return Err(Error::Remote {
                node: self.peer.clone(),
                what,
                detail: etf::brief(reason, 300),
            });
        }
        Ok(reply)
    }

    /// Sends `{Ref, Self, Request}` to a process of ours on the target and
    /// waits for its `{Ref, Reply}`.
    pub fn request(&mut self, to: &Pid, req: Term, timeout: Duration, what: &str) -> Result<Term> {
        self.drain();
        if self.dead_pids.contains(to) {
            return Err(Error::ConnectionLost {
                node: self.peer.clone(),
                reason: format!("our helper process {} exited", to),
            });
        }
        let r = self.make_ref();
        let msg = tuple(vec![r.clone().into(), self.self_pid.clone().into(), req]);
        self.call(Message::send(to.clone(), msg), r, timeout, what)
    }

    /// Sends `msg` and waits for the reply tagged `r`. The reader passes on
    /// only that reply, from the moment before the request leaves.
    fn call(&mut self, msg: Message, r: Reference, timeout: Duration, what: &str) -> Result<Term> {
        let want: Term = r.into();
        self.shared.set_awaiting(Some(want.clone()));
        let res = self
            .send(msg)
            .and_then(|()| self.await_reply(&want, timeout, what));
        self.shared.set_awaiting(None);
        res
    }

    fn await_reply(&mut self, want: &Term, timeout: Duration, what: &str) -> Result<Term> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(reason) = &self.lost {
                return Err(self.lost_error(reason));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Inbound::Reply { reference, reply }) => {
                    if &reference == want {
                        return Ok(reply);
                    }
                    // The reply to an earlier request, passed on just before
                    // that request timed out.
                    Shared::count(&self.shared.dropped.stray);
                }
                Ok(Inbound::Exit(pid)) => self.note_exit(pid),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::Timeout {
                        node: self.peer.clone(),
                        what: what.to_string(),
                        secs: timeout.as_secs_f64(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.lost = Some(self.shared.close_reason())
                }
            }
        }
    }

    /// Takes in what arrived between calls: exits, and stale replies.
    fn drain(&mut self) {
        while let Ok(i) = self.inbox.try_recv() {
            match i {
                Inbound::Exit(pid) => self.note_exit(pid),
                Inbound::Reply { .. } => Shared::count(&self.shared.dropped.stray),
            }
        }
    }

    fn note_exit(&mut self, pid: Pid) {
        if !self.dead_pids.contains(&pid) {
            if self.dead_pids.len() == DEAD_PIDS_KEPT {
                self.dead_pids.remove(0);
            }
            self.dead_pids.push(pid);
        }
    }

    /// True once the reader has seen the socket close.
    pub fn is_closed(&self) -> bool {
        self.lost.is_some() || self.shared.closed.load(Ordering::Relaxed)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closing the socket is what undoes our state on the target: the
        // agent is linked to our pid and exits with the connection.
        drop(self.stop_ticks.take());
        self.socket.shutdown();
    }
}

fn handshake_error(
    node: &str,
    ours: &str,
    opts: &ConnectOpts,
    tls: Option<&tls::Tls>,
    e: HandshakeError,
) -> Error {
    // Over TLS a node that refuses etop's certificate says so once the
    // handshake is over (TLS 1.3): its alert is the first thing read.
    if let (Some(t), HandshakeError::Io(io)) = (tls, &e)
        && let Some(tls_error) = t.explain(node, io)
    {
        return tls_error;
    }
    match e {
        HandshakeError::NotAllowed => Error::NotAllowed {
            node: node.to_string(),
            ours: ours.to_string(),
        },
        // A node closes the socket instead of sending its challenge ack
        // when our digest (our cookie) is wrong.
        HandshakeError::ClosedAfterReply => Error::CookieRejected {
            node: node.to_string(),
            source_desc: opts.cookie_origin.to_string(),
        },
        HandshakeError::ClosedBeforeStatus => Error::Handshake {
            node: node.to_string(),
            err: format!(
                "it closed the connection before accepting our name '{ours}' \
                 (a {} name); is it a {} node?",
                mode_word(opts.mode),
                mode_word(opts.mode)
            ),
        },
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

/// A random challenge: it is what proves the node knows the cookie, so it
/// comes from the kernel's generator.
fn random_u32() -> u32 {
    use std::io::Read;
    let mut b = [0u8; 4];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u32::from_ne_bytes(b),
        Err(_) => {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
                as u32
        }
    }
}
