//! The messages a connected node sends, as etop reads them: 4-byte length
//! frames, ticks, the pass-through byte, then a control message and its
//! payload decoded within limits (see `etf`).
//!
//! Two kinds of trouble, kept apart: a frame that breaks the framing (a length
//! over [`MAX_FRAME_BYTES`], a header etop never negotiated) leaves the stream
//! out of step and ends the connection; a frame that is whole but cannot be
//! decoded is dropped on its own and the stream goes on.

use super::etf::{Decoder, EtfError};
use erl_dist::term::{Atom, Pid, Term};
use smol::io::{AsyncRead, AsyncReadExt};
use std::io;

/// The largest frame etop accepts. A process frame of 10,000 rows (the most
/// `--lines` allows) measured 1.7 MB with a third of the rows carrying
/// 200-character registered names; 16 MB leaves ten times that, and the
/// agent's parsed source, the largest reply of the setup, is 40 KB. Anything
/// bigger is not a reply etop asked for.
pub const MAX_FRAME_BYTES: u32 = 16 << 20;

/// The type byte of a message without distribution header: etop never
/// advertises `DIST_HDR_ATOM_CACHE` or `FRAGMENTS`, so the node must send
/// this one.
const PASS_THROUGH: u8 = 112;

/// Bytes are read (and memory committed) as they arrive, this many at most
/// at a time, never up front for what the length merely claims.
const READ_CHUNK_BYTES: usize = 16 << 10;

/// One unit of the stream.
#[derive(Debug)]
pub enum Incoming {
    /// A zero-length frame: the node is alive.
    Tick,
    /// A whole frame, without its length.
    Frame(Vec<u8>),
}

/// A stream that can no longer be read.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error("the node closed the connection")]
    Closed,
    #[error(
        "the node sent a {len}-byte message; etop accepts at most {} MB",
        MAX_FRAME_BYTES >> 20
    )]
    TooLong { len: u32 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads one frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Incoming, FramingError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(closed_or_io)?;
    let len = u32::from_be_bytes(len);
    if len == 0 {
        return Ok(Incoming::Tick);
    }
    if len > MAX_FRAME_BYTES {
        return Err(FramingError::TooLong { len });
    }
    let len = len as usize;
    let mut body = Vec::new();
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    while body.len() < len {
        let want = (len - body.len()).min(READ_CHUNK_BYTES);
        let n = r.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(FramingError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Incoming::Frame(body))
}

fn closed_or_io(e: io::Error) -> FramingError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FramingError::Closed
    } else {
        FramingError::Io(e)
    }
}

/// What a frame says, as far as etop cares.
#[derive(Debug, Clone, PartialEq)]
pub enum DistMessage {
    /// A message to one of our processes or aliases (SEND, SEND_SENDER,
    /// ALIAS_SEND and their trace-token forms).
    Send { to: Term, message: Term },
    /// A message to a registered name on our node; etop registers none, so
    /// its payload is not even decoded.
    RegSend { to: Atom },
    /// A process linked to ours exited (EXIT, PAYLOAD_EXIT and their
    /// trace-token forms).
    Exit { from: Pid, to: Term },
    /// A signal etop does not act on: links, monitors, exit/2, spawn
    /// requests, group leaders...
    Signal { op: i32 },
}

/// Why one frame was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "the node sent a message of type {0}, not a pass-through message (112): \
         it uses a distribution header etop did not ask for"
    )]
    NotPassThrough(u8),
    #[error("a malformed message: {0}")]
    Malformed(EtfError),
    #[error("a message too big to decode: {0}")]
    TooBig(EtfError),
    #[error("a malformed message: {0}")]
    BadControl(&'static str),
}

impl FrameError {
    /// True when the connection cannot go on after this frame.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::NotPassThrough(_))
    }
}

impl From<EtfError> for FrameError {
    fn from(e: EtfError) -> Self {
        if e.is_too_big() {
            FrameError::TooBig(e)
        } else {
            FrameError::Malformed(e)
        }
    }
}

mod op {
    pub const SEND: i32 = 2;
    pub const EXIT: i32 = 3;
    pub const REG_SEND: i32 = 6;
    pub const SEND_TT: i32 = 12;
    pub const EXIT_TT: i32 = 13;
    pub const REG_SEND_TT: i32 = 16;
    pub const SEND_SENDER: i32 = 22;
    pub const SEND_SENDER_TT: i32 = 23;
    pub const PAYLOAD_EXIT: i32 = 24;
    pub const PAYLOAD_EXIT_TT: i32 = 25;
    pub const ALIAS_SEND: i32 = 33;
    pub const ALIAS_SEND_TT: i32 = 34;
}

/// Decodes one frame (without its 4-byte length): the pass-through byte,
/// the control message and, for messages to us, the payload. Limits are
/// those of `etf`, shared by the control message and the payload.
pub fn decode_frame(frame: &[u8]) -> Result<DistMessage, FrameError> {
    let (&kind, rest) = frame
        .split_first()
        .ok_or(FrameError::Malformed(EtfError::Truncated))?;
    if kind != PASS_THROUGH {
        return Err(FrameError::NotPassThrough(kind));
    }
    let mut d = Decoder::new(rest);
    let control = d.versioned_term()?;
    let Term::Tuple(control) = control else {
        return Err(FrameError::BadControl("its control message is not a tuple"));
    };
    let mut el = control.elements;
    let op = match el.first() {
        Some(Term::FixInteger(i)) => i.value,
        _ => {
            return Err(FrameError::BadControl(
                "its control message does not start with an operation number",
            ));
        }
    };
    let arity = |n: usize| {
        if el.len() == n {
            Ok(())
        } else {
            Err(FrameError::BadControl(
                "its control message has the wrong size for its operation",
            ))
        }
    };
    match op {
        op::SEND
        | op::SEND_SENDER
        | op::ALIAS_SEND
        | op::SEND_TT
        | op::SEND_SENDER_TT
        | op::ALIAS_SEND_TT => {
            let with_token = matches!(op, op::SEND_TT | op::SEND_SENDER_TT | op::ALIAS_SEND_TT);
            arity(if with_token { 4 } else { 3 })?;
            let message = d.versioned_term()?;
            d.finish()?;
            Ok(DistMessage::Send {
                to: el.swap_remove(2),
                message,
            })
        }
        op::REG_SEND | op::REG_SEND_TT => {
            arity(if op == op::REG_SEND { 4 } else { 5 })?;
            match el.swap_remove(3) {
                Term::Atom(to) => Ok(DistMessage::RegSend { to }),
                _ => Err(FrameError::BadControl(
                    "it is sent to a name that is not an atom",
                )),
            }
        }
        op::EXIT | op::EXIT_TT | op::PAYLOAD_EXIT | op::PAYLOAD_EXIT_TT => {
            arity(match op {
                op::EXIT => 4,
                op::EXIT_TT => 5,
                op::PAYLOAD_EXIT => 3,
                _ => 4,
            })?;
            let to = el.swap_remove(2);
            match el.swap_remove(1) {
                Term::Pid(from) => Ok(DistMessage::Exit { from, to }),
                _ => Err(FrameError::BadControl(
                    "an exit signal from something not a pid",
                )),
            }
        }
        op => Ok(DistMessage::Signal { op }),
    }
}

/// Reads `bytes` as a stream of frames and decodes each, as the connection
/// does, until the stream ends or breaks. For tests and fuzzing.
pub fn decode_stream(bytes: &[u8]) -> (Vec<Result<DistMessage, FrameError>>, FramingError) {
    let mut r = smol::io::Cursor::new(bytes);
    let mut out = Vec::new();
    smol::block_on(async {
        loop {
            match read_frame(&mut r).await {
                Ok(Incoming::Tick) => {}
                Ok(Incoming::Frame(f)) => {
                    let m = decode_frame(&f);
                    let fatal = m.as_ref().is_err_and(FrameError::is_fatal);
                    out.push(m);
                    if fatal {
                        return (out, FramingError::Closed);
                    }
                }
                Err(e) => return (out, e),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::term::{atom, int, tuple};
    use erl_dist::message::Message;

    fn frame_of(msg: Message) -> Vec<u8> {
        let mut body = vec![PASS_THROUGH];
        msg.write_into(&mut body).unwrap();
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend(body);
        f
    }

    fn pid(id: u32) -> Pid {
        Pid::new("etop_x@host", id, 0, 5)
    }

    #[test]
    fn reads_the_messages_etop_acts_on() {
        let reply = tuple(vec![atom("ref"), int(42)]);
        let mut stream = vec![0, 0, 0, 0];
        stream.extend(frame_of(Message::send(pid(1), reply.clone())));
        stream.extend(frame_of(Message::send_sender(
            pid(9),
            pid(1),
            reply.clone(),
        )));
        stream.extend(frame_of(Message::exit(pid(9), pid(1), atom("killed"))));
        stream.extend(frame_of(Message::payload_exit(pid(9), pid(1), atom("x"))));
        stream.extend(frame_of(Message::reg_send(pid(9), "rex".into(), int(1))));
        stream.extend(frame_of(Message::link(pid(9), pid(1))));
        let (msgs, end) = decode_stream(&stream);
        assert!(matches!(end, FramingError::Closed));
        let msgs: Vec<DistMessage> = msgs.into_iter().map(Result::unwrap).collect();
        let send = DistMessage::Send {
            to: pid(1).into(),
            message: reply,
        };
        let exit = DistMessage::Exit {
            from: pid(9),
            to: pid(1).into(),
        };
        assert_eq!(
            msgs,
            vec![
                send.clone(),
                send,
                exit.clone(),
                exit,
                DistMessage::RegSend { to: "rex".into() },
                DistMessage::Signal { op: 1 },
            ]
        );
    }

    #[test]
    fn an_oversized_length_ends_the_stream_before_any_allocation() {
        let (msgs, end) = decode_stream(&[0xFF, 0xFF, 0xFF, 0xFF, 112]);
        assert!(msgs.is_empty());
        assert_eq!(
            end.to_string(),
            "the node sent a 4294967295-byte message; etop accepts at most 16 MB"
        );
    }

    #[test]
    fn a_header_we_never_negotiated_is_fatal() {
        let (msgs, _) = decode_stream(&[0, 0, 0, 3, 68, 0, 0, 0, 0, 0, 9, 112]);
        assert_eq!(msgs, vec![Err(FrameError::NotPassThrough(68))]);
        assert!(msgs[0].as_ref().unwrap_err().is_fatal());
    }

    #[test]
    fn a_bad_frame_is_skipped_and_the_next_one_read() {
        let mut stream = vec![0, 0, 0, 4, 112, 131, 82, 0];
        // A 10-byte message claiming a list of 0xFFFFFFFF elements.
        let mut body = vec![112, 131, 104, 3, 97, 2, 106, 106];
        body.extend([131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1, 106, 0]);
        stream.extend((body.len() as u32).to_be_bytes());
        stream.extend(body);
        stream.extend(frame_of(Message::send(pid(1), int(7))));
        let (msgs, _) = decode_stream(&stream);
        assert_eq!(msgs.len(), 3);
        assert!(matches!(
            msgs[0],
            Err(FrameError::Malformed(EtfError::Unsupported(_)))
        ));
        assert!(matches!(
            msgs[1],
            Err(FrameError::Malformed(EtfError::CountTooLarge { .. }))
        ));
        assert!(msgs[2].is_ok());
    }

    #[test]
    fn control_messages_of_the_wrong_shape_are_malformed() {
        for body in [
            vec![112, 131, 97, 2],
            vec![112, 131, 104, 0],
            vec![112, 131, 104, 2, 97, 2, 106],
            vec![112, 131, 104, 4, 97, 3, 97, 1, 97, 1, 106],
        ] {
            assert!(
                matches!(decode_frame(&body), Err(FrameError::BadControl(_))),
                "{body:?}"
            );
        }
    }
}
