//! EPMD, the name service of a host: a node's distribution port
//! (PORT_PLEASE2) and every name it knows (NAMES), with replies read within
//! fixed bounds, since whatever answers on EPMD's port may stream forever.

use super::NodeName;
use crate::error::{Error, Result};
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The most of a NAMES reply etop reads. Each node takes one line of
/// `name NAME at port PORT`, about 40 bytes for a typical name and at most
/// 275: 256 KB is several thousand nodes on one host.
pub const MAX_NAMES_BYTES: usize = 256 << 10;

/// The most nodes one NAMES reply may list.
pub const MAX_NAMES: usize = 4096;

const NAMES_REQ: u8 = 110;
const PORT2_RESP: u8 = 119;
const PORT_PLEASE2_REQ: u8 = 122;

#[derive(Debug, thiserror::Error)]
pub enum EpmdError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("its reply is not an EPMD reply: {0}")]
    Malformed(String),
    #[error(
        "its list of names goes on past {} KB or {MAX_NAMES} names",
        MAX_NAMES_BYTES >> 10
    )]
    TooLong,
}

/// The PORT_PLEASE2 request for `name`.
pub fn port_please_request(name: &str) -> Result<Vec<u8>, EpmdError> {
    let len = u16::try_from(1 + name.len())
        .map_err(|_| EpmdError::Io(io::Error::other("node name too long")))?;
    let mut m = len.to_be_bytes().to_vec();
    m.push(PORT_PLEASE2_REQ);
    m.extend(name.as_bytes());
    Ok(m)
}

/// Parses the start of a PORT2_RESP: `Some(port)`, or `None` when EPMD does
/// not know the name. Only the first four bytes matter to us: the rest
/// (versions, name, extra) is never read.
pub fn parse_port2_resp(reply: &[u8]) -> Result<Option<u16>, EpmdError> {
    match reply {
        [PORT2_RESP, 0, hi, lo, ..] => match u16::from_be_bytes([*hi, *lo]) {
            0 => Err(EpmdError::Malformed("port 0".into())),
            port => Ok(Some(port)),
        },
        [PORT2_RESP, 0, ..] => Err(EpmdError::Malformed("it ends before the port".into())),
        [PORT2_RESP, _, ..] => Ok(None),
        [tag, ..] => Err(EpmdError::Malformed(format!(
            "it starts with byte {tag}, not {PORT2_RESP}"
        ))),
        [] => Err(EpmdError::Malformed("it is empty".into())),
    }
}

/// Asks for the distribution port of `name`.
pub async fn query_port<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    name: &str,
) -> Result<Option<u16>, EpmdError> {
    s.write_all(&port_please_request(name)?).await?;
    s.flush().await?;
    let mut head = [0u8; 2];
    read_or_malformed(s, &mut head).await?;
    if head != [PORT2_RESP, 0] {
        return parse_port2_resp(&head);
    }
    let mut port = [0u8; 2];
    read_or_malformed(s, &mut port).await?;
    parse_port2_resp(&[head[0], head[1], port[0], port[1]])
}

async fn read_or_malformed<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
) -> Result<(), EpmdError> {
    s.read_exact(buf).await.map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            EpmdError::Malformed("it closed the connection in the middle of its reply".into())
        } else {
            EpmdError::Io(e)
        }
    })
}

/// Parses a whole NAMES reply: EPMD's port (4 bytes), then one line per
/// node, `name NAME at port PORT`.
pub fn parse_names_reply(reply: &[u8]) -> Result<Vec<(String, u16)>, EpmdError> {
    if reply.len() < 4 {
        return Err(EpmdError::Malformed("it ends before its first line".into()));
    }
    let text = &reply[4..];
    if text.len() > MAX_NAMES_BYTES {
        return Err(EpmdError::TooLong);
    }
    let mut names = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if names.len() == MAX_NAMES {
            return Err(EpmdError::TooLong);
        }
        names.push(parse_names_line(line)?);
    }
    Ok(names)
}

fn parse_names_line(line: &[u8]) -> Result<(String, u16), EpmdError> {
    let bad = || {
        let cut = &line[..line.len().min(40)];
        EpmdError::Malformed(format!("a line reads '{}'", cut.escape_ascii()))
    };
    let rest = line.strip_prefix(b"name ").ok_or_else(bad)?;
    let at = rest
        .windows(9)
        .rposition(|w| w == b" at port ")
        .ok_or_else(bad)?;
    let (name, port) = (&rest[..at], &rest[at + 9..]);
    if name.is_empty() || name.len() > 255 {
        return Err(bad());
    }
    let port = std::str::from_utf8(port)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .ok_or_else(bad)?;
    Ok((String::from_utf8_lossy(name).into_owned(), port))
}

/// Asks for every node EPMD knows. Reads until EPMD closes the
/// connection, as the protocol says, but never past `MAX_NAMES_BYTES`.
pub async fn query_names<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<Vec<(String, u16)>, EpmdError> {
    s.write_all(&[0, 1, NAMES_REQ]).await?;
    s.flush().await?;
    let limit = 4 + MAX_NAMES_BYTES;
    let mut reply = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "too long".
    let n = s.take(limit as u64 + 1).read_to_end(&mut reply).await?;
    if n > limit {
        return Err(EpmdError::TooLong);
    }
    parse_names_reply(&reply)
}

// --- look-ups with a timeout, as the rest of etop asks them -------------

/// EPMD's port: `ERL_EPMD_PORT` when set, as erl does, else 4369.
pub fn port_number() -> u16 {
    std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(erl_dist::epmd::DEFAULT_EPMD_PORT)
}

/// Resolves a node's host. A host that names this machine but does not
/// resolve (common for `-sname` hosts missing from /etc/hosts) means loopback.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => {
            let all: Vec<SocketAddr> = addrs.by_ref().collect();
            all.iter()
                .find(|a| a.is_ipv4())
                .or(all.first())
                .copied()
                .ok_or_else(|| Error::Resolve {
                    host: host.to_string(),
                    err: "no addresses".to_string(),
                })
        }
        Err(err) => {
            let full = crate::host::hostname();
            if host == full || host == crate::host::short_hostname() || host == "localhost" {
                Ok(SocketAddr::from(([127, 0, 0, 1], port)))
            } else {
                Err(Error::Resolve {
                    host: host.to_string(),
                    err: err.to_string(),
                })
            }
        }
    }
}

fn epmd_error(host: &str, port: u16, e: EpmdError) -> Error {
    use EpmdError;
    match e {
        EpmdError::Io(e) => Error::EpmdUnreachable {
            host: host.to_string(),
            port,
            err: e.to_string(),
        },
        other => Error::EpmdBadReply {
            host: host.to_string(),
            port,
            err: other.to_string(),
        },
    }
}

/// Connects to EPMD on `host` (on `port`, or [`port_number`]) and runs one
/// request, all within `timeout`.
fn epmd_query<T>(
    host: &str,
    port: Option<u16>,
    timeout: Duration,
    query: impl AsyncFnOnce(&mut smol::net::TcpStream) -> std::result::Result<T, EpmdError>,
) -> Result<T> {
    use EpmdError;
    let port = port.unwrap_or_else(port_number);
    let addr = resolve(host, port)?;
    smol::block_on(smol::future::or(
        async {
            let mut s = smol::net::TcpStream::connect(addr).await?;
            query(&mut s).await
        },
        async {
            smol::Timer::after(timeout).await;
            Err(EpmdError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            )))
        },
    ))
    .map_err(|e| epmd_error(host, port, e))
}

/// The names EPMD on `host` knows, with their distribution ports.
pub fn names(host: &str, timeout: Duration) -> Result<Vec<(String, u16)>> {
    names_at(host, None, timeout)
}

/// [`names`] from the EPMD on `epmd_port` (a node's own `-epmd_port`), or
/// on [`port_number`].
pub fn names_at(
    host: &str,
    epmd_port: Option<u16>,
    timeout: Duration,
) -> Result<Vec<(String, u16)>> {
    epmd_query(host, epmd_port, timeout, async |s| query_names(s).await)
}

/// The distribution port of `node`, from EPMD (PORT_PLEASE2). An unknown name
/// lists the names EPMD does know.
pub fn port_of(node: &NodeName, timeout: Duration) -> Result<u16> {
    port_of_at(node, None, timeout)
}

/// [`port_of`], asking the EPMD on `epmd_port` (a node's own
/// `-epmd_port`), or on [`port_number`].
pub fn port_of_at(node: &NodeName, epmd_port: Option<u16>, timeout: Duration) -> Result<u16> {
    let entry = epmd_query(&node.host, epmd_port, timeout, async |s| {
        query_port(s, &node.name).await
    })?;
    match entry {
        Some(port) => Ok(port),
        None => {
            let mut known: Vec<String> = names_at(&node.host, epmd_port, timeout)?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            known.sort();
            Err(Error::UnknownNode {
                name: node.name.clone(),
                host: node.host.clone(),
                known,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::handshake::Scripted;

    #[test]
    fn port_please_reads_only_what_it_needs() {
        let mut s = Scripted::new(vec![119, 0, 0x1F, 0x90, 77, 0xFF, 0xFF]);
        assert_eq!(
            smol::block_on(query_port(&mut s, "demo")).unwrap(),
            Some(8080)
        );
        assert_eq!(s.written, [0, 5, 122, b'd', b'e', b'm', b'o']);
        let mut s = Scripted::new(vec![119, 1]);
        assert_eq!(smol::block_on(query_port(&mut s, "x")).unwrap(), None);
        for bad in [&[][..], &[119][..], &[119, 0, 1][..], &[72, 84, 84, 80][..]] {
            let mut s = Scripted::new(bad.to_vec());
            let e = smol::block_on(query_port(&mut s, "x")).unwrap_err();
            assert!(matches!(e, EpmdError::Malformed(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn names_are_parsed_and_bounded() {
        let mut reply = vec![0, 0, 0x11, 0x11];
        reply.extend(b"name demo at port 4370\nname rabbit at port 25672\n");
        assert_eq!(
            parse_names_reply(&reply).unwrap(),
            vec![("demo".to_string(), 4370), ("rabbit".to_string(), 25672)]
        );
        let mut s = Scripted::new(reply);
        assert_eq!(smol::block_on(query_names(&mut s)).unwrap().len(), 2);
        assert_eq!(s.written, [0, 1, 110]);

        let mut endless = vec![0, 0, 0x11, 0x11];
        while endless.len() < 2 * MAX_NAMES_BYTES {
            endless.extend(b"name x at port 1\n");
        }
        let mut s = Scripted::new(endless);
        assert!(matches!(
            smol::block_on(query_names(&mut s)).unwrap_err(),
            EpmdError::TooLong
        ));
        let mut many = vec![0, 0, 0, 0];
        for _ in 0..=MAX_NAMES {
            many.extend(b"name x at port 1\n");
        }
        assert!(matches!(
            parse_names_reply(&many).unwrap_err(),
            EpmdError::TooLong
        ));
        for bad in [
            &b"\0\0\0\0garbage\n"[..],
            b"\0\0\0\0name x at port 99999\n",
            b"\0\0\0\0name  at port 1\n",
            b"\0\0",
        ] {
            assert!(
                matches!(parse_names_reply(bad), Err(EpmdError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
