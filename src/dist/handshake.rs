//! The client side of the distribution handshake (protocol version 6, OTP
//! 23+): our name, the node's status, its challenge, our reply, its ack.
//!
//! Every handshake message is read whole first (at most 64 KB: over TCP its
//! length is 16 bits; over TLS OTP frames it with 32 bits, see [`Framing`],
//! and etop refuses more) and then parsed by a pure function that checks every length
//! against the bytes there are. Where the node hangs up says what went wrong,
//! so the caller can tell a wrong cookie (the node closes after reading our
//! reply) from a peer that is not a node at all.

use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::io;

/// The distribution flags etop advertises: OTP's mandatory set, and nothing
/// more. No `PUBLISHED` (we are hidden), no `DIST_HDR_ATOM_CACHE` and no
/// `FRAGMENTS` (so every frame is a plain pass-through message).
pub fn our_flags() -> u64 {
    erl_dist::DistributionFlags::mandatory().bits()
}

const FLAG_PUBLISHED: u64 = 0x01;
const FLAG_DIST_HDR_ATOM_CACHE: u64 = 0x2000;
const FLAG_FRAGMENTS: u64 = 0x80_0000;

/// How handshake messages are framed. Over TCP a 16-bit length precedes
/// each; OTP's TLS distribution keeps its socket in `{packet, 4}` from the
/// start, so over TLS the length has 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Tcp,
    Tls,
}

impl Framing {
    fn prefix(self, len: usize) -> Vec<u8> {
        match self {
            Framing::Tcp => (len as u16).to_be_bytes().to_vec(),
            Framing::Tls => (len as u32).to_be_bytes().to_vec(),
        }
    }
}

/// The largest handshake message etop reads: the most a 16-bit length can
/// say, also over TLS.
const MAX_MESSAGE_BYTES: usize = u16::MAX as usize;

/// What the node answered to our name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    OkSimultaneous,
    /// Another handshake with our name is in progress.
    Nok,
    NotAllowed,
    /// A node with our name is connected already.
    Alive,
}

/// The node's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u64,
    pub challenge: u32,
    pub creation: u32,
    /// The node's full name, `name@host`.
    pub name: String,
}

/// Who we are, for one handshake.
#[derive(Debug, Clone)]
pub struct Ours<'a> {
    /// Our full node name, `name@host`.
    pub name: &'a str,
    pub creation: u32,
    pub cookie: &'a str,
    /// Our challenge to the node; random.
    pub challenge: u32,
}

/// How a handshake ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Connected(Challenge),
    /// Our name is in use on the node (status `nok` or `alive`).
    NameTaken,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("it closed the connection before answering our name")]
    ClosedBeforeStatus,
    #[error("it closed the connection after accepting our name, before sending its challenge")]
    ClosedAfterStatus,
    #[error("it closed the connection after sending its challenge, before etop answered it")]
    ClosedAfterChallenge,
    /// What a wrong cookie looks like: the node checked our digest and hung up.
    #[error("it closed the connection after reading our answer to its challenge")]
    ClosedAfterReply,
    #[error("it does not allow connections from us")]
    NotAllowed,
    #[error(
        "its answer to our challenge is wrong: whatever listens there does not know the \
         cookie it accepted"
    )]
    BadAck,
    #[error("it sent {0}")]
    Protocol(String),
    #[error("{}", io_words(.0))]
    Io(#[from] io::Error),
}

fn io_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::InvalidData => format!("it sent {e}"),
        _ => e.to_string(),
    }
}

/// The MD5 digest both sides prove the cookie with.
pub fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    md5::compute(format!("{cookie}{challenge}")).0
}

/// Printable bytes for an error line: at most 40 of them, escaped.
fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    let more = if bytes.len() > cut.len() { "..." } else { "" };
    format!("'{}{more}'", cut.escape_ascii())
}

/// Parses the node's `recv_status` message.
pub fn parse_status(msg: &[u8]) -> Result<Status, HandshakeError> {
    match msg.split_first() {
        Some((b's', status)) => match status {
            b"ok" => Ok(Status::Ok),
            b"ok_simultaneous" => Ok(Status::OkSimultaneous),
            b"nok" => Ok(Status::Nok),
            b"not_allowed" => Ok(Status::NotAllowed),
            b"alive" => Ok(Status::Alive),
            other if other.starts_with(b"named:") => Err(HandshakeError::Protocol(
                "a name for us although etop did not ask for one".into(),
            )),
            other => Err(HandshakeError::Protocol(format!(
                "an unknown status {}",
                shown(other)
            ))),
        },
        _ => Err(HandshakeError::Protocol(format!(
            "{} where its status belongs",
            shown(msg)
        ))),
    }
}

/// Parses the node's challenge (`'N'`, the OTP 23+ form).
pub fn parse_challenge(msg: &[u8]) -> Result<Challenge, HandshakeError> {
    let bad = |what: &str| HandshakeError::Protocol(format!("a malformed challenge ({what})"));
    match msg.first() {
        Some(b'N') => {}
        Some(b'n') => {
            return Err(HandshakeError::Protocol(
                "the challenge of a release older than OTP 23; etop needs OTP 23 or later".into(),
            ));
        }
        _ => {
            return Err(HandshakeError::Protocol(format!(
                "{} where its challenge belongs",
                shown(msg)
            )));
        }
    }
    let fixed = msg.get(1..19).ok_or_else(|| bad("too short"))?;
    let flags = u64::from_be_bytes(fixed[0..8].try_into().map_err(|_| bad("flags"))?);
    let challenge = u32::from_be_bytes(fixed[8..12].try_into().map_err(|_| bad("challenge"))?);
    let creation = u32::from_be_bytes(fixed[12..16].try_into().map_err(|_| bad("creation"))?);
    let name_len = usize::from(u16::from_be_bytes(
        fixed[16..18].try_into().map_err(|_| bad("name length"))?,
    ));
    let name = msg.get(19..).ok_or_else(|| bad("too short"))?;
    // Anything after the name must be accepted and ignored (OTP 23 docs).
    let name = name.get(..name_len).ok_or_else(|| bad("name cut short"))?;
    let name = std::str::from_utf8(name).map_err(|_| bad("its name is not UTF-8"))?;
    if name.len() > 255 || !name.contains('@') || name.chars().any(char::is_control) {
        return Err(bad("its name is not a node name"));
    }
    Ok(Challenge {
        flags,
        challenge,
        creation,
        name: name.to_string(),
    })
}

/// Checks the node's challenge ack against the digest of our challenge.
pub fn parse_ack(msg: &[u8], expected: &[u8; 16]) -> Result<(), HandshakeError> {
    match msg.split_first() {
        Some((b'a', d)) if d.len() == 16 => {
            if d == expected {
                Ok(())
            } else {
                Err(HandshakeError::BadAck)
            }
        }
        Some((b'a', _)) => Err(HandshakeError::Protocol(
            "a challenge ack of the wrong size".into(),
        )),
        _ => Err(HandshakeError::Protocol(format!(
            "{} where its challenge ack belongs",
            shown(msg)
        ))),
    }
}

/// Our `send_name` message, with its length.
pub fn name_message(ours: &Ours<'_>) -> Vec<u8> {
    framed_name_message(ours, Framing::Tcp)
}

fn framed_name_message(ours: &Ours<'_>, framing: Framing) -> Vec<u8> {
    let mut m = vec![b'N'];
    m.extend(our_flags().to_be_bytes());
    m.extend(ours.creation.to_be_bytes());
    m.extend((ours.name.len() as u16).to_be_bytes());
    m.extend(ours.name.as_bytes());
    framed(m, framing)
}

fn reply_message(ours: &Ours<'_>, peer_challenge: u32, framing: Framing) -> Vec<u8> {
    let mut m = vec![b'r'];
    m.extend(ours.challenge.to_be_bytes());
    m.extend(digest(ours.cookie, peer_challenge));
    framed(m, framing)
}

fn with_length(m: Vec<u8>) -> Vec<u8> {
    framed(m, Framing::Tcp)
}

fn framed(m: Vec<u8>, framing: Framing) -> Vec<u8> {
    let mut out = framing.prefix(m.len());
    out.extend(m);
    out
}

/// Reads one handshake message: a 16-bit length and that many bytes. The
/// end of the stream inside a message is not a hang-up between messages:
/// it says so (`InvalidData`).
pub async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Vec<u8>> {
    read_framed(s, Framing::Tcp).await
}

async fn read_framed<S: AsyncRead + Unpin>(s: &mut S, framing: Framing) -> io::Result<Vec<u8>> {
    let len = match framing {
        Framing::Tcp => {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            // The head of a TLS alert record: a TLS node refusing what it
            // took for a broken TLS handshake.
            if len == [0x15, 0x03] {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a TLS alert: it speaks TLS distribution (-proto_dist inet_tls); give \
                     etop its certificates with --tls-ca, --tls-cert and --tls-key (for a \
                     node on this host etop reads them from its options)",
                ));
            }
            usize::from(u16::from_be_bytes(len))
        }
        Framing::Tls => {
            let mut len = [0u8; 4];
            s.read_exact(&mut len).await?;
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_MESSAGE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a handshake message announced as {len} bytes; etop accepts at most \
                         {MAX_MESSAGE_BYTES}"
                    ),
                ));
            }
            len
        }
    };
    let mut m = vec![0u8; len];
    s.read_exact(&mut m).await.map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a handshake message announced as {len} bytes, then closed the connection"),
            )
        } else {
            e
        }
    })?;
    Ok(m)
}

fn hung_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Maps a read or write error to "closed at this step" when the node hung up.
fn at(step: HandshakeError) -> impl FnOnce(io::Error) -> HandshakeError {
    move |e| {
        if hung_up(&e) {
            step
        } else {
            HandshakeError::Io(e)
        }
    }
}

/// Runs the handshake over `s`. `peer_closed` tells, without waiting,
/// whether the node has already closed its side: checked once the challenge
/// is read, so a node that hangs up before we reply is not taken for one
/// that rejected our cookie.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    ours: &Ours<'_>,
    peer_closed: impl FnOnce(&mut S) -> bool,
) -> Result<Outcome, HandshakeError> {
    framed_client_handshake(s, ours, Framing::Tcp, peer_closed).await
}

/// [`client_handshake`] with the framing of the transport under it.
pub async fn framed_client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    ours: &Ours<'_>,
    framing: Framing,
    peer_closed: impl FnOnce(&mut S) -> bool,
) -> Result<Outcome, HandshakeError> {
    debug_assert_eq!(
        our_flags() & (FLAG_PUBLISHED | FLAG_DIST_HDR_ATOM_CACHE | FLAG_FRAGMENTS),
        0
    );
    s.write_all(&framed_name_message(ours, framing))
        .await
        .map_err(at(HandshakeError::ClosedBeforeStatus))?;
    s.flush()
        .await
        .map_err(at(HandshakeError::ClosedBeforeStatus))?;
    let status = read_framed(s, framing)
        .await
        .map_err(at(HandshakeError::ClosedBeforeStatus))?;
    match parse_status(&status)? {
        Status::Ok | Status::OkSimultaneous => {}
        Status::Nok => return Ok(Outcome::NameTaken),
        Status::NotAllowed => return Err(HandshakeError::NotAllowed),
        Status::Alive => {
            // Leave the other session alone: say no, and try another name.
            let _ = s.write_all(&framed(b"sfalse".to_vec(), framing)).await;
            let _ = s.flush().await;
            return Ok(Outcome::NameTaken);
        }
    }
    let challenge = read_framed(s, framing)
        .await
        .map_err(at(HandshakeError::ClosedAfterStatus))?;
    let challenge = parse_challenge(&challenge)?;
    if peer_closed(s) {
        return Err(HandshakeError::ClosedAfterChallenge);
    }
    s.write_all(&reply_message(ours, challenge.challenge, framing))
        .await
        .map_err(at(HandshakeError::ClosedAfterChallenge))?;
    s.flush()
        .await
        .map_err(at(HandshakeError::ClosedAfterChallenge))?;
    let ack = read_framed(s, framing)
        .await
        .map_err(at(HandshakeError::ClosedAfterReply))?;
    parse_ack(&ack, &digest(ours.cookie, ours.challenge))?;
    Ok(Outcome::Connected(challenge))
}

/// An in-memory peer for tests and fuzzing: reads come from a script of
/// bytes, writes are kept.
pub struct Scripted {
    input: smol::io::Cursor<Vec<u8>>,
    pub written: Vec<u8>,
}

impl Scripted {
    pub fn new(input: Vec<u8>) -> Scripted {
        Scripted {
            input: smol::io::Cursor::new(input),
            written: Vec::new(),
        }
    }
}

impl AsyncRead for Scripted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Runs our side of the handshake against `node_bytes`, everything the node
/// would send. For tests and fuzzing.
pub fn handshake_against(node_bytes: &[u8], cookie: &str) -> Result<Outcome, HandshakeError> {
    let ours = Ours {
        name: "etop_fuzz@localhost",
        creation: 7,
        cookie,
        challenge: 0x1234_5678,
    };
    let mut s = Scripted::new(node_bytes.to_vec());
    smol::block_on(client_handshake(&mut s, &ours, |_| false))
}

/// The bytes an honest node with `cookie` sends to a client whose challenge
/// is the one `handshake_against` uses. For tests and fuzzing.
pub fn honest_node_bytes(cookie: &str, node_challenge: u32) -> Vec<u8> {
    let mut out = with_length(b"sok".to_vec());
    let name = b"demo@localhost";
    let mut c = vec![b'N'];
    c.extend(our_flags().to_be_bytes());
    c.extend(node_challenge.to_be_bytes());
    c.extend(42u32.to_be_bytes());
    c.extend((name.len() as u16).to_be_bytes());
    c.extend(name);
    out.extend(with_length(c));
    let mut ack = vec![b'a'];
    ack.extend(digest(cookie, 0x1234_5678));
    out.extend(with_length(ack));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_against_an_honest_node() {
        let out = handshake_against(&honest_node_bytes("SECRET", 99), "SECRET").unwrap();
        match out {
            Outcome::Connected(c) => {
                assert_eq!(c.name, "demo@localhost");
                assert_eq!(c.challenge, 99);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sends_the_name_and_the_digest_the_node_expects() {
        let ours = Ours {
            name: "etop_x@h",
            creation: 3,
            cookie: "C",
            challenge: 5,
        };
        let mut s = Scripted::new(honest_node_bytes("C", 77));
        // The ack digest is for challenge 0x12345678, not 5: the run fails
        // at the ack, after everything we send has been written.
        let e = smol::block_on(client_handshake(&mut s, &ours, |_| false)).unwrap_err();
        assert!(matches!(e, HandshakeError::BadAck), "{e}");
        let name = name_message(&ours);
        assert_eq!(&s.written[..name.len()], &name[..]);
        assert_eq!(&name[2..3], b"N");
        let reply = &s.written[name.len()..];
        assert_eq!(reply.len(), 2 + 1 + 4 + 16);
        assert_eq!(reply[2], b'r');
        assert_eq!(&reply[3..7], &5u32.to_be_bytes());
        assert_eq!(&reply[7..], &digest("C", 77));
        assert_eq!(our_flags() & 1, 0, "hidden");
    }

    #[test]
    fn where_the_node_hangs_up_decides_the_error() {
        let full = honest_node_bytes("SECRET", 99);
        // status (2+3 bytes), challenge (2+19+14), ack.
        let after_status = 5;
        let after_challenge = after_status + 2 + 19 + 14;
        type Check = fn(&HandshakeError) -> bool;
        let cases: [(usize, Check); 4] = [
            (0, |e| matches!(e, HandshakeError::ClosedBeforeStatus)),
            (1, |e| matches!(e, HandshakeError::ClosedBeforeStatus)),
            (after_status, |e| {
                matches!(e, HandshakeError::ClosedAfterStatus)
            }),
            (after_challenge, |e| {
                matches!(e, HandshakeError::ClosedAfterReply)
            }),
        ];
        for (cut, want) in cases {
            let e = handshake_against(&full[..cut], "SECRET").unwrap_err();
            assert!(want(&e), "cut at {cut}: {e}");
        }
        let e = handshake_against(&full[..after_status + 4], "SECRET").unwrap_err();
        assert_eq!(
            e.to_string(),
            "it sent a handshake message announced as 33 bytes, then closed the connection"
        );
        let mut s = Scripted::new(full[..after_challenge].to_vec());
        let ours = Ours {
            name: "a@b",
            creation: 1,
            cookie: "SECRET",
            challenge: 1,
        };
        let e = smol::block_on(client_handshake(&mut s, &ours, |_| true)).unwrap_err();
        assert!(matches!(e, HandshakeError::ClosedAfterChallenge), "{e}");
    }

    #[test]
    fn statuses_and_garbage() {
        assert_eq!(parse_status(b"snok").unwrap(), Status::Nok);
        assert_eq!(parse_status(b"salive").unwrap(), Status::Alive);
        assert!(matches!(
            parse_status(b"snot_allowed").unwrap(),
            Status::NotAllowed
        ));
        let e = parse_status(b"snamed:").unwrap_err().to_string();
        assert!(e.contains("did not ask"), "{e}");
        let e = parse_status(b"HTTP/1.1 400 Bad Request\r\n\x1b[2J").unwrap_err();
        assert_eq!(
            e.to_string(),
            "it sent 'HTTP/1.1 400 Bad Request\\r\\n\\x1b[2J' where its status belongs"
        );
        assert!(parse_challenge(b"N").is_err());
        assert!(
            parse_challenge(b"n\x00\x05")
                .unwrap_err()
                .to_string()
                .contains("OTP 23")
        );
        let mut c = vec![b'N'];
        c.extend([0u8; 16]);
        c.extend(200u16.to_be_bytes());
        c.extend(b"a@b");
        assert!(
            parse_challenge(&c)
                .unwrap_err()
                .to_string()
                .contains("cut short")
        );
        assert!(parse_ack(b"a123", &[0; 16]).is_err());
    }

    #[test]
    fn alive_means_try_another_name_and_says_no() {
        let mut s = Scripted::new(with_length(b"salive".to_vec()));
        let ours = Ours {
            name: "a@b",
            creation: 1,
            cookie: "C",
            challenge: 1,
        };
        let out = smol::block_on(client_handshake(&mut s, &ours, |_| false)).unwrap();
        assert_eq!(out, Outcome::NameTaken);
        assert!(s.written.ends_with(&with_length(b"sfalse".to_vec())));
    }
}
