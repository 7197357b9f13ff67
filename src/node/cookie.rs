//! The cookie: a type that never shows its value, where it came from, and
//! reading it from files with bounds (a FIFO or a device given as a cookie
//! file must not hang or balloon etop).

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// An Erlang magic cookie. Its `Debug` and `Display` never show the value,
/// so a cookie cannot leak into logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(String);

impl Cookie {
    /// Builds a cookie from file or argument text: surrounding whitespace and
    /// newlines are trimmed, as erl does with `~/.erlang.cookie`.
    pub fn new(raw: &str) -> Option<Cookie> {
        let t = raw.trim();
        if t.is_empty() {
            None
        } else {
            Some(Cookie(t.to_string()))
        }
    }

    /// The secret itself, for the handshake only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<hidden>)")
    }
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// Keeps cookies out of core dumps and out of reach of other processes of
/// our user: marks etop non-dumpable (`PR_SET_DUMPABLE` 0), so no core file
/// is written, only root may ptrace it or read its memory, and its /proc
/// files belong to root. Called before any cookie is read and never undone:
/// a cookie stays in memory until exit (reconnects need it).
#[cfg(target_os = "linux")]
pub fn protect_secrets() -> std::io::Result<()> {
    use rustix::process::{DumpableBehavior, set_dumpable_behavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub fn protect_secrets() -> std::io::Result<()> {
    Ok(())
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieOrigin {
    FlagFile(PathBuf),
    Flag,
    Env,
    /// `RELEASE_COOKIE` in etop's own environment: inside a release's shell.
    ReleaseEnv,
    HomeFile(PathBuf),
    /// Found from the target process itself (see `discover`).
    Target(String),
}

impl fmt::Display for CookieOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieOrigin::FlagFile(p) => write!(f, "--cookie-file {}", p.display()),
            CookieOrigin::Flag => f.write_str("--cookie"),
            CookieOrigin::Env => f.write_str("ERLANG_COOKIE"),
            CookieOrigin::ReleaseEnv => f.write_str("RELEASE_COOKIE"),
            CookieOrigin::HomeFile(_) => f.write_str("~/.erlang.cookie"),
            CookieOrigin::Target(desc) => write!(f, "the target's {desc}"),
        }
    }
}

/// True when a file can be read by its group or by others: erl refuses such
/// a `~/.erlang.cookie`, and a secret should not be left like that.
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

/// The most a cookie file may hold. erl's cookies are at most 255
/// characters; the rest is room for whitespace and comments-by-mistake, and a
/// file larger than this is not a cookie file.
pub const COOKIE_FILE_MAX_BYTES: u64 = 4096;

/// Why a path that is not a regular file cannot be a cookie file.
fn not_regular(t: std::fs::FileType) -> std::io::Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something else"
    };
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {kind}, not a regular file"),
    )
}

/// Reads a cookie file as erl would accept it: a regular file (a symbolic
/// link to one is fine, as erl follows it too; secrets mounted by container
/// orchestrators are links) of at most [`COOKIE_FILE_MAX_BYTES`], UTF-8 text.
/// Returns the text and the file's mode.
///
/// Never blocks and never reads without bound: a FIFO, a device or a
/// directory is refused before it is opened, and once more on the opened
/// descriptor (the path may have been swapped in between), which is opened
/// with `O_NONBLOCK` so that even a FIFO swapped in cannot stall the open.
pub fn read_cookie_text(path: &Path) -> std::io::Result<(String, u32)> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let mut raw = Vec::new();
    file.take(COOKIE_FILE_MAX_BYTES + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > COOKIE_FILE_MAX_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is larger than {COOKIE_FILE_MAX_BYTES} bytes: not a cookie file \
                 (a cookie is at most 255 characters)"
            ),
        ));
    }
    let text = String::from_utf8(raw).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")
    })?;
    Ok((text, meta.permissions().mode()))
}

/// Reads a cookie file, trimming whitespace; `Ok(None)` if it is absent.
/// Warns (once, on stderr) when the file is readable by group or others.
pub fn read_cookie_file(path: &Path) -> Result<Option<Cookie>> {
    match read_cookie_text(path) {
        Ok((s, mode)) => {
            if mode & 0o044 != 0 {
                crate::text::say(format!(
                    "warning: the cookie file '{}' is readable by other users; chmod 400 it",
                    path.display()
                ));
            }
            Ok(Cookie::new(&s))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::CookieFile {
            path: path.display().to_string(),
            err,
        }),
    }
}

/// The operator's own cookie sources, first found wins: `--cookie-file`,
/// `--cookie`, `ERLANG_COOKIE`, `~/.erlang.cookie`.
pub fn own_cookie(
    flag_file: Option<&Path>,
    flag: Option<&str>,
    env: Option<&str>,
    home: Option<&Path>,
) -> Result<Option<(Cookie, CookieOrigin)>> {
    if let Some(p) = flag_file {
        return match read_cookie_file(p)? {
            Some(c) => Ok(Some((c, CookieOrigin::FlagFile(p.to_path_buf())))),
            None => Err(Error::CookieFile {
                path: p.display().to_string(),
                err: std::io::Error::new(std::io::ErrorKind::NotFound, "missing or empty"),
            }),
        };
    }
    if let Some(c) = flag.and_then(Cookie::new) {
        return Ok(Some((c, CookieOrigin::Flag)));
    }
    if let Some(c) = env.and_then(Cookie::new) {
        return Ok(Some((c, CookieOrigin::Env)));
    }
    if let Some(h) = home {
        let p = h.join(".erlang.cookie");
        if let Some(c) = read_cookie_file(&p)? {
            return Ok(Some((c, CookieOrigin::HomeFile(p))));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    #[test]
    fn cookie_never_prints_and_is_trimmed() {
        let c = Cookie::new("  SECRET\n").unwrap();
        assert_eq!(c.expose(), "SECRET");
        assert!(!format!("{c:?} {c}").contains("SECRET"));
        assert!(Cookie::new(" \n").is_none());
    }

    /// Runs `f` on a thread and fails if it has not returned within 10 s:
    /// what these tests guard against is a read that blocks forever.
    fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the cookie read blocked")
    }

    fn refused(path: &Path) -> String {
        let p = path.to_path_buf();
        let e = bounded(move || read_cookie_text(&p)).expect_err("must be refused");
        e.to_string()
    }

    #[test]
    fn cookie_files_must_be_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(st.success());
        assert_eq!(
            refused(&fifo),
            "it is a named pipe (FIFO), not a regular file"
        );
        assert_eq!(
            refused(Path::new("/dev/zero")),
            "it is a character device, not a regular file"
        );
        assert_eq!(refused(dir.path()), "it is a directory, not a regular file");
        // A link to a FIFO is refused like the FIFO.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(refused(&link).contains("FIFO"));

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'A'; COOKIE_FILE_MAX_BYTES as usize + 1]).unwrap();
        assert!(refused(&big).contains("larger than 4096 bytes"));
        let binary = dir.path().join("binary");
        std::fs::write(&binary, b"\xff\xfe").unwrap();
        assert_eq!(refused(&binary), "it is not UTF-8 text");

        // At the limit, and through a link (as container secrets are), fine.
        let full = dir.path().join("full");
        std::fs::write(&full, vec![b'A'; COOKIE_FILE_MAX_BYTES as usize]).unwrap();
        assert_eq!(read_cookie_text(&full).unwrap().0.len(), 4096);
        let real = dir.path().join("real");
        std::fs::write(&real, "SECRET\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o400)).unwrap();
        let link = dir.path().join("cookie-link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(
            read_cookie_text(&link).unwrap(),
            ("SECRET\n".into(), 0o100400)
        );

        // And the error an operator sees names the file.
        let e = own_cookie(Some(&fifo), None, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read the cookie file '{}': it is a named pipe (FIFO), not a regular file",
                fifo.display()
            )
        );
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn protect_secrets_makes_the_process_non_dumpable() {
        use rustix::process::{DumpableBehavior, dumpable_behavior};
        protect_secrets().unwrap();
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    }

    #[test]
    fn own_cookie_order_is_file_flag_env_home() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c");
        std::fs::write(&f, "FROMFILE\n").unwrap();
        std::fs::write(dir.path().join(".erlang.cookie"), "FROMHOME\n").unwrap();
        let pick = |ff: Option<&Path>, fl: Option<&str>, env: Option<&str>| {
            own_cookie(ff, fl, env, Some(dir.path())).unwrap().unwrap()
        };
        assert_eq!(pick(Some(&f), Some("F"), Some("E")).0.expose(), "FROMFILE");
        assert_eq!(pick(None, Some("F"), Some("E")).1, CookieOrigin::Flag);
        assert_eq!(pick(None, None, Some("E")).1, CookieOrigin::Env);
        let (c, o) = pick(None, None, None);
        assert_eq!(c.expose(), "FROMHOME");
        assert!(matches!(o, CookieOrigin::HomeFile(_)));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!readable_by_others(&f));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by_others(&f));
        let missing = dir.path().join("nope");
        assert!(own_cookie(Some(&missing), None, None, None).is_err());
        assert!(
            own_cookie(None, None, None, Some(&missing))
                .unwrap()
                .is_none()
        );
    }
}
