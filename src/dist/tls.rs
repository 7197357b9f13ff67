//! TLS under the distribution connection, as OTP's `inet_tls_dist` speaks
//! it: TLS first, then the usual distribution handshake inside it. The
//! client configuration from PEM files, a stream the reader thread and the
//! senders share, and certificate problems told in the operator's words.
//!
//! erl_dist's sender wants a `Clone` stream; a TLS session is one state
//! that both directions change. [`TlsStream`] is a handle on that state
//! behind a mutex that is held only while rustls works on buffers, never
//! while waiting: the reader waits for the socket to be readable, a writer
//! for it to be writable, each with its own waker. Whatever rustls must send
//! of its own accord (an alert, a key update) goes out with the next write,
//! or at once when the socket takes it.

use crate::error::Error;
use crate::node::discover::ssl_dist::{ServerName as NameRule, TlsFile, TlsFiles, read_small};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, ClientConnection, RootCertStore};
use smol::Async;
use smol::io::{AsyncRead, AsyncWrite};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

/// The largest PEM file etop reads: a chain of a few certificates is a few
/// KB; a CA bundle of a whole distribution is about 200 KB.
const PEM_MAX_BYTES: u64 = 1 << 20;

/// A client configuration ready to connect, and what error lines need.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    files: TlsFiles,
}

impl Tls {
    /// Reads the PEM files and builds the configuration. A file that cannot
    /// be used is a usage error naming the file and who named it.
    pub fn load(files: &TlsFiles) -> Result<Tls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let cas = certs(&files.ca, "CA certificate")?;
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| file_error(&files.ca, "CA certificate", e.to_string()))?;
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| file_error(&files.ca, "CA certificate", e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Usage(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                inner: verifier,
                check_name: files.server_name != NameRule::Unchecked,
            }));
        let mut config = match &files.cert {
            None => builder.with_no_client_auth(),
            Some(cert) => {
                let chain = certs(cert, "certificate")?;
                let key_file = files.key.as_ref().unwrap_or(cert);
                let key = private_key(key_file).map_err(|e| match (e, &files.key) {
                    // The key was looked for in the certificate file.
                    (
                        Error::TlsFile {
                            what,
                            path,
                            named_by,
                            err,
                        },
                        None,
                    ) if named_by == "--tls-cert" => Error::TlsFile {
                        what,
                        path,
                        named_by,
                        err: format!("{err} (name the key file with --tls-key)"),
                    },
                    (e, _) => e,
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| file_error(key_file, "key", e.to_string()))?
            }
        };
        // OTP sends no server name when told `server_name_indication, disable`.
        config.enable_sni = files.server_name != NameRule::Unchecked;
        Ok(Tls {
            config: Arc::new(config),
            files: files.clone(),
        })
    }

    /// Where the files come from, for `-v`.
    pub fn source(&self) -> &str {
        &self.files.source
    }

    /// Runs the TLS handshake over a connected socket; the node's
    /// certificate must hold `host` (the host part of its name) unless its
    /// options say otherwise.
    pub(super) async fn connect(
        &self,
        socket: Async<TcpStream>,
        node: &str,
        host: &str,
    ) -> Result<TlsStream, Error> {
        let name = match &self.files.server_name {
            NameRule::Given(n) => n.clone(),
            NameRule::NodeHost | NameRule::Unchecked => host.to_string(),
        };
        let server_name = ServerName::try_from(name.clone())
            .or_else(|e| match self.files.server_name {
                // Any syntactically valid name does: it is neither sent nor checked.
                NameRule::Unchecked => ServerName::try_from("node.invalid".to_string()),
                _ => Err(e),
            })
            .map_err(|_| {
                Error::Usage(format!(
                    "TLS: '{name}' is not a host name a certificate can hold; attach by \
                 name@host with the host the node's certificate names"
                ))
            })?;
        let conn = ClientConnection::new(self.config.clone(), server_name).map_err(|e| {
            Error::TlsHandshake {
                node: node.to_string(),
                err: e.to_string(),
            }
        })?;
        let stream = TlsStream {
            shared: Arc::new(Shared {
                socket,
                conn: Mutex::new(conn),
            }),
        };
        smol::future::poll_fn(|cx| stream.poll_handshake(cx))
            .await
            .map_err(|e| {
                self.explain(node, &e)
                    .unwrap_or_else(|| handshake_io(node, e))
            })?;
        Ok(stream)
    }

    /// The error line for a TLS failure inside `e`, if there is one:
    /// certificate problems on either side (refused), or another TLS error.
    pub fn explain(&self, node: &str, e: &io::Error) -> Option<Error> {
        let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
        Some(explain(node, &self.files, tls))
    }
}

fn handshake_io(node: &str, e: io::Error) -> Error {
    let err = match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => {
            "it closed the connection during the TLS handshake; is it a TLS-distribution \
             node (-proto_dist inet_tls)?"
                .to_string()
        }
        _ => e.to_string(),
    };
    Error::TlsHandshake {
        node: node.to_string(),
        err,
    }
}

fn file_error(f: &TlsFile, what: &'static str, err: String) -> Error {
    Error::TlsFile {
        what,
        path: f.path.display().to_string(),
        named_by: f.named_by.clone(),
        err,
    }
}

fn read_pem(f: &TlsFile, what: &'static str) -> Result<Vec<u8>, Error> {
    read_small(&f.open, PEM_MAX_BYTES).map_err(|e| {
        let err = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                "permission denied (run etop as the node's user or root)".to_string()
            }
            io::ErrorKind::NotFound => "no such file".to_string(),
            _ => e.to_string(),
        };
        file_error(f, what, err)
    })
}

fn certs(f: &TlsFile, what: &'static str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_pem(f, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(f, what, format!("it is not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(file_error(f, what, "it holds no PEM CERTIFICATE".into()));
    }
    Ok(certs)
}

fn private_key(f: &TlsFile) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_pem(f, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let encrypted = pem.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED");
        let err = match e {
            _ if encrypted => "the key is encrypted; etop reads unencrypted keys only".into(),
            rustls::pki_types::pem::Error::NoItemsFound => "it holds no PEM private key".into(),
            e => format!("it is not PEM ({e})"),
        };
        file_error(f, "key", err)
    })
}

/// Checks the node's certificate with webpki; for a node whose options
/// disable the server name, everything but the name.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // webpki checks the name last, after the chain and the dates.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One line for a TLS failure. Certificates refused, by etop or by the node,
/// are `TlsRefused`; anything else is a failed handshake.
pub fn explain(node: &str, files: &TlsFiles, e: &rustls::Error) -> Error {
    let refused = |why: String| Error::TlsRefused {
        node: node.to_string(),
        why,
    };
    let ours = || match &files.cert {
        Some(c) => format!("'{}' ({})", c.path.display(), c.named_by),
        None => "(none)".to_string(),
    };
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => refused(format!(
                "its certificate is not signed by a CA in '{}' ({}); give the CA that signed \
                 it with --tls-ca",
                files.ca.path.display(),
                files.ca.named_by
            )),
            CertificateError::NotValidForName => refused(
                "its certificate is not valid for the host in its node name; attach by a \
                 name whose host the certificate holds"
                    .into(),
            ),
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => refused(format!(
                "its certificate is not valid for '{}' (it names {}); attach by a name \
                     whose host the certificate holds",
                expected.to_str(),
                if presented.is_empty() {
                    "no host".to_string()
                } else {
                    presented
                        .iter()
                        .map(|p| format!("'{}'", crate::text::terminal_safe(as_written(p))))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
            CertificateError::Expired => refused("its certificate has expired".into()),
            CertificateError::ExpiredContext { not_after, .. } => refused(format!(
                "its certificate expired on {}",
                utc(not_after.as_secs())
            )),
            CertificateError::NotValidYet => {
                refused("its certificate is not valid yet (is this host's clock right?)".into())
            }
            CertificateError::NotValidYetContext { not_before, .. } => refused(format!(
                "its certificate is not valid before {} (is this host's clock right?)",
                utc(not_before.as_secs())
            )),
            CertificateError::Revoked => refused("its certificate is revoked".into()),
            other => refused(format!("its certificate is refused: {other:?}")),
        },
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => {
                refused("it requires a client certificate; pass --tls-cert and --tls-key".into())
            }
            // TLS 1.2 has no alert for "no certificate": a node that needs
            // one ends the handshake.
            AlertDescription::HandshakeFailure if files.cert.is_none() => refused(
                "it ended the TLS handshake (handshake_failure): it requires a client \
                 certificate; pass --tls-cert and --tls-key"
                    .into(),
            ),
            AlertDescription::UnknownCA => refused(format!(
                "it does not trust etop's client certificate {}: it is not signed by a CA \
                 the node knows",
                ours()
            )),
            AlertDescription::CertificateExpired => refused(format!(
                "it refused etop's client certificate {}: it has expired",
                ours()
            )),
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied => refused(format!(
                "it refused etop's client certificate {} ({})",
                ours(),
                alert_name(*alert)
            )),
            other => Error::TlsHandshake {
                node: node.to_string(),
                err: format!("it sent the TLS alert {}", alert_name(*other)),
            },
        },
        other => Error::TlsHandshake {
            node: node.to_string(),
            err: other.to_string(),
        },
    }
}

/// A name from a certificate as webpki reports it (`DnsName("db1")`,
/// `IpAddress(10.0.0.1)`), as the operator would write it.
fn as_written(p: &str) -> &str {
    p.strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| {
            p.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
        })
        .unwrap_or(p)
}

/// An alert by the name the RFCs and OTP's logs give it.
fn alert_name(a: AlertDescription) -> String {
    let debug = format!("{a:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    // "UnknownCA" reads as unknown_c_a.
    out.replace("c_a", "ca")
}

/// `2026-05-01 12:00:00 UTC`.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The TLS session and its socket.
struct Shared {
    socket: Async<TcpStream>,
    conn: Mutex<ClientConnection>,
}

impl Shared {
    fn lock(&self) -> io::Result<MutexGuard<'_, ClientConnection>> {
        self.conn
            .lock()
            .map_err(|_| io::Error::other("the TLS session is poisoned"))
    }
}

/// The socket as rustls reads and writes it: never blocking.
struct Raw<'a>(&'a TcpStream);

impl Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self.0).read(buf)
    }
}

impl Write for Raw<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TLS session as a stream both directions share; see the module notes.
#[derive(Clone)]
pub(super) struct TlsStream {
    shared: Arc<Shared>,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// A rustls error as an I/O error that keeps it, for [`Tls::explain`].
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// How many reads of the socket [`with_alert`] makes at most: rustls reads
/// 4 KB at a time, so this is 64 KB, as much plaintext as rustls keeps.
const AFTER_FAILURE_READS: usize = 16;

/// The error for a socket that failed under `conn`: the node's alert if it
/// sent one before the failure, else `e`. A node that refuses etop's
/// certificate sends its alert and closes at once, while etop may still be
/// writing the rest of its flight (rustls writes one record per call): that
/// write fails (EPIPE, ECONNRESET) with the alert unread in the socket.
/// Never waits: the kernel keeps what arrived before the close readable.
fn with_alert(conn: &mut ClientConnection, socket: &TcpStream, e: io::Error) -> io::Error {
    for _ in 0..AFTER_FAILURE_READS {
        match conn.read_tls(&mut Raw(socket)) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Err(tls) = conn.process_new_packets() {
                    return tls_error(tls);
                }
            }
        }
    }
    // rustls keeps an error it met before (say, by the reader thread).
    match conn.process_new_packets() {
        Err(tls) => tls_error(tls),
        Ok(_) => e,
    }
}

/// Writes what rustls has ready until it is all out: `Ok(true)`, or the
/// socket is full: `Ok(false)`. A failure tells the node's alert if there
/// is one, see [`with_alert`].
fn send(conn: &mut ClientConnection, socket: &TcpStream) -> io::Result<bool> {
    drain(conn, socket).map_err(|e| with_alert(conn, socket, e))
}

/// Writes what rustls has ready until it is all out: `Ok(true)`, or the
/// socket is full: `Ok(false)`.
fn drain(conn: &mut ClientConnection, socket: &TcpStream) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(&mut Raw(socket)) {
            Ok(_) => {}
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl TlsStream {
    fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = &*self.shared;
        loop {
            let mut conn = s.lock()?;
            if !send(&mut conn, s.socket.get_ref())? {
                drop(conn);
                ready!(s.socket.poll_writable(cx))?;
                continue;
            }
            if !conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            match conn.read_tls(&mut Raw(s.socket.get_ref())) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the node closed the connection during the TLS handshake",
                    )));
                }
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        // Tell the node why, as a TLS client does.
                        let _ = drain(&mut conn, s.socket.get_ref());
                        return Poll::Ready(Err(tls_error(e)));
                    }
                }
                Err(e) if would_block(&e) => {
                    drop(conn);
                    ready!(s.socket.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// True when the node has closed its side and nothing is left to read;
    /// never waits.
    pub(super) fn peer_closed(&self) -> bool {
        let s = &*self.shared;
        let Ok(mut conn) = s.lock() else {
            return true;
        };
        let eof = match conn.read_tls(&mut Raw(s.socket.get_ref())) {
            Ok(0) => true,
            Ok(_) | Err(_) => false,
        };
        match conn.process_new_packets() {
            Ok(state) => (eof || state.peer_has_closed()) && state.plaintext_bytes_to_read() == 0,
            Err(_) => true,
        }
    }

    /// Says goodbye (close_notify) if the socket takes it, and closes both
    /// directions.
    pub(super) fn shutdown(&self) {
        let s = &*self.shared;
        if let Ok(mut conn) = s.lock() {
            conn.send_close_notify();
            let _ = drain(&mut conn, s.socket.get_ref());
        }
        let _ = s.socket.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let s = &*self.shared;
        loop {
            let mut conn = s.lock()?;
            match conn.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                // The node closed TCP without a close_notify: for the
                // framing above, as for plain TCP, the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) if would_block(&e) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            match conn.read_tls(&mut Raw(s.socket.get_ref())) {
                Ok(_) => {
                    let processed = conn.process_new_packets();
                    // What rustls answers (an alert, a key update) goes out
                    // now if the socket takes it, else with the next write.
                    let _ = drain(&mut conn, s.socket.get_ref());
                    if let Err(e) = processed {
                        return Poll::Ready(Err(tls_error(e)));
                    }
                }
                Err(e) if would_block(&e) => {
                    drop(conn);
                    ready!(s.socket.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let s = &*self.shared;
        loop {
            let mut conn = s.lock()?;
            // What an earlier write left goes first: this bounds what
            // waits in rustls to one write's worth.
            if !send(&mut conn, s.socket.get_ref())? {
                drop(conn);
                ready!(s.socket.poll_writable(cx))?;
                continue;
            }
            let n = conn.writer().write(buf)?;
            if n == 0 && !buf.is_empty() {
                continue;
            }
            // Sent now if the socket takes it; the rest with the next
            // write or flush.
            let _ = drain(&mut conn, s.socket.get_ref());
            return Poll::Ready(Ok(n));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = &*self.shared;
        loop {
            let mut conn = s.lock()?;
            if send(&mut conn, s.socket.get_ref())? {
                return Poll::Ready(Ok(()));
            }
            drop(conn);
            ready!(s.socket.poll_writable(cx))?;
        }
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shutdown();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
        assert_eq!(utc(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn names_from_certificates_as_written() {
        assert_eq!(as_written("DnsName(\"db1.example\")"), "db1.example");
        assert_eq!(as_written("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(as_written("DirectoryName"), "DirectoryName");
    }

    /// A node that refuses etop's certificate: its alert is in the socket,
    /// then it closes, and etop's next write fails. The alert is what is
    /// reported, not the broken pipe.
    #[test]
    fn an_alert_sent_before_the_close_beats_the_failed_write() {
        use std::net::TcpListener;
        use std::time::Duration;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (node, _) = listener.accept().unwrap();
        // handshake_failure as a TLS 1.2 node sends it, in plaintext.
        (&node)
            .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
            .unwrap();
        drop(node);
        // Bytes to a closed socket draw a reset; once it is in, writes fail.
        let mut broken = false;
        for _ in 0..400 {
            if (&socket).write(b"x").is_err() {
                broken = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(broken, "the socket never broke");
        socket.set_nonblocking(true).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth();
        let name = ServerName::try_from("node.invalid").unwrap();
        let mut conn = ClientConnection::new(Arc::new(config), name).unwrap();
        assert!(conn.wants_write(), "a ClientHello to send");
        let e = send(&mut conn, &socket).unwrap_err();
        let tls = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            tls,
            Some(&rustls::Error::AlertReceived(
                AlertDescription::HandshakeFailure
            )),
            "{e}"
        );
    }

    #[test]
    fn alerts_by_their_rfc_names() {
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
    }
}
