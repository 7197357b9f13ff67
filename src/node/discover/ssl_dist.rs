//! TLS distribution (`-proto_dist inet_tls`): the client options a node
//! gives its own connections (`-ssl_dist_opt client_*`, the `client` section
//! of its `-ssl_dist_optfile`), which etop uses to attach to it as one of its
//! peers would; or the files the operator names with `--tls-*` instead.

use super::erl_term::{self, ETerm};
use super::{ErlArgs, LocalNode};
use crate::error::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};

/// The largest option file etop reads: real ones are a few hundred bytes.
const OPTFILE_MAX_BYTES: u64 = 64 << 10;

/// One file etop reads for TLS, and who named it, for error lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFile {
    /// The path as named: by the operator, or by the node (then absolute,
    /// as the node sees it).
    pub path: PathBuf,
    /// Where etop opens it: `path`, or `path` under the node's root
    /// (`/proc/PID/root`) when the node named it.
    pub open: PathBuf,
    /// `--tls-cert`, or "certfile in the node's -ssl_dist_optfile '/etc/x'".
    pub named_by: String,
}

impl TlsFile {
    /// A file the operator named on the command line.
    pub fn given(path: &Path, flag: &str) -> TlsFile {
        TlsFile {
            path: path.to_path_buf(),
            open: path.to_path_buf(),
            named_by: flag.to_string(),
        }
    }
}

/// Which name the node's certificate must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerName {
    /// The host part of the node's name, as OTP checks it.
    NodeHost,
    /// The node's client options name one (`server_name_indication`).
    Given(String),
    /// `{server_name_indication, disable}`: the certificate must be signed
    /// by the CA; the name in it is not checked, as OTP does.
    Unchecked,
}

/// The files for one TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our client certificate chain (PEM); none: etop presents none.
    pub cert: Option<TlsFile>,
    /// Its private key (PEM); none: read from the certificate file, as OTP
    /// does when `keyfile` is left out.
    pub key: Option<TlsFile>,
    /// The CA certificates the node's certificate is checked against.
    pub ca: TlsFile,
    pub server_name: ServerName,
    /// Where these come from, for `-v`: "--tls-* flags", "the node's
    /// -ssl_dist_optfile '/etc/x'".
    pub source: String,
}

/// What etop can use of a TLS node's own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistTls {
    Client(Box<TlsFiles>),
    /// The node has options etop cannot use, for this reason.
    Unusable(String),
}

/// Files named with `--tls-cert`, `--tls-key` and `--tls-ca`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFlags<'a> {
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub ca: Option<&'a Path>,
}

impl TlsFlags<'_> {
    pub fn any(&self) -> bool {
        self.cert.is_some() || self.key.is_some() || self.ca.is_some()
    }
}

/// Whether to speak TLS to `node`, and with which files: any `--tls-*` flag
/// replaces the node's own options entirely; without one, a local TLS node's
/// own client options; else plain TCP.
pub fn choose(
    flags: TlsFlags<'_>,
    local: Option<&LocalNode>,
    node: &str,
) -> Result<Option<TlsFiles>> {
    if flags.any() {
        let ca = flags.ca.ok_or_else(|| {
            Error::Usage(
                "--tls-ca is missing: etop checks the node's certificate against the CA that \
                 signed it (any --tls-* flag replaces the node's own TLS options)"
                    .into(),
            )
        })?;
        if flags.key.is_some() && flags.cert.is_none() {
            return Err(Error::Usage(
                "--tls-key needs --tls-cert, the certificate the key belongs to".into(),
            ));
        }
        return Ok(Some(TlsFiles {
            cert: flags.cert.map(|p| TlsFile::given(p, "--tls-cert")),
            key: flags.key.map(|p| TlsFile::given(p, "--tls-key")),
            ca: TlsFile::given(ca, "--tls-ca"),
            server_name: ServerName::NodeHost,
            source: "--tls-* flags".into(),
        }));
    }
    match local.and_then(|n| n.dist_tls.as_ref()) {
        Some(DistTls::Client(files)) => Ok(Some(files.as_ref().clone())),
        Some(DistTls::Unusable(why)) => Err(Error::Usage(format!(
            "{node} uses TLS distribution and etop cannot use its client options: {why}; \
             pass --tls-cert, --tls-key and --tls-ca"
        ))),
        None => Ok(None),
    }
}

/// A small file of someone else's, read with the checks of a cookie file: a
/// regular file, opened without blocking, at most `max` bytes.
pub fn read_small(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let not_regular = || io::Error::new(io::ErrorKind::InvalidData, "it is not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut raw = Vec::new();
    file.take(max + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is larger than {} KB", max >> 10),
        ));
    }
    Ok(raw)
}

/// How a node's files are reached: relative paths against its working
/// directory, all of them under its root.
pub(super) struct NodeFs<'a> {
    pub cwd: Option<&'a Path>,
    pub in_target: &'a dyn Fn(&Path) -> PathBuf,
    pub user: &'a str,
}

impl NodeFs<'_> {
    fn absolute(&self, p: &str) -> std::result::Result<PathBuf, String> {
        let p = Path::new(p);
        if p.is_absolute() {
            return Ok(p.to_path_buf());
        }
        match self.cwd {
            Some(cwd) => Ok(cwd.join(p)),
            None => Err(format!(
                "'{}' is relative and its working directory is unreadable (run as user {} or root)",
                p.display(),
                self.user
            )),
        }
    }

    fn file(&self, p: &str, named_by: String) -> std::result::Result<TlsFile, String> {
        let path = self.absolute(p)?;
        Ok(TlsFile {
            open: (self.in_target)(&path),
            path,
            named_by,
        })
    }
}

/// An option's value and who set it.
struct Opt<'a> {
    value: Value<'a>,
    named_by: String,
}

enum Value<'a> {
    Text(String),
    Term(&'a ETerm),
}

impl Value<'_> {
    fn text(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.clone()),
            Value::Term(t) => t.as_text(),
        }
    }
}

/// The node's client options, when its `-proto_dist` is a TLS one.
pub(super) fn lookup(args: &ErlArgs, fs: &NodeFs<'_>) -> DistTls {
    match client_files(args, fs) {
        Ok(files) => DistTls::Client(Box::new(files)),
        Err(why) => DistTls::Unusable(why),
    }
}

fn client_files(args: &ErlArgs, fs: &NodeFs<'_>) -> std::result::Result<TlsFiles, String> {
    // `-ssl_dist_opt client_certfile F client_cacertfile C ...`: pairs.
    let flat: Vec<&String> = args.all("ssl_dist_opt").flatten().collect();
    let mut opts: Vec<(String, Opt<'_>)> = flat
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.strip_prefix("client_")?.to_string(), v)),
            _ => None,
        })
        .map(|(k, v)| {
            let named_by = format!("client_{k} in the node's -ssl_dist_opt");
            (
                k,
                Opt {
                    value: Value::Text(v.to_string()),
                    named_by,
                },
            )
        })
        .collect();
    let mut sources = Vec::new();
    if !opts.is_empty() {
        sources.push("-ssl_dist_opt".to_string());
    }
    let optfile_text;
    let optfile_term;
    if let Some(file) = args.first("ssl_dist_optfile") {
        let path = fs.absolute(file)?;
        let shown = path.display().to_string();
        optfile_text = read_small(&(fs.in_target)(&path), OPTFILE_MAX_BYTES).map_err(|e| {
            let why = if e.kind() == io::ErrorKind::PermissionDenied {
                format!("permission denied (run as user {} or root)", fs.user)
            } else {
                e.to_string()
            };
            format!("cannot read its -ssl_dist_optfile '{shown}': {why}")
        })?;
        // erl reads the file as Latin-1 unless it says otherwise.
        let text = String::from_utf8(optfile_text.clone())
            .unwrap_or_else(|_| optfile_text.iter().map(|b| char::from(*b)).collect());
        optfile_term = erl_term::parse(&text).map_err(|e| {
            format!("its -ssl_dist_optfile '{shown}' does not read as a term ({e})")
        })?;
        let client = optfile_term
            .pairs()
            .into_iter()
            .find(|(k, _)| *k == "client")
            .map(|(_, v)| v.pairs())
            .unwrap_or_default();
        opts.extend(client.into_iter().map(|(k, v)| {
            (
                k.to_string(),
                Opt {
                    value: Value::Term(v),
                    named_by: format!("{k} in the node's -ssl_dist_optfile '{shown}'"),
                },
            )
        }));
        sources.push(format!("-ssl_dist_optfile '{shown}'"));
    }
    if sources.is_empty() {
        return Err("it has no -ssl_dist_optfile and no -ssl_dist_opt client options".into());
    }
    let source = format!("the node's {}", sources.join(" and "));
    // The first setting of an option counts: -ssl_dist_opt comes first.
    let get = |k: &str| opts.iter().find(|(name, _)| name == k).map(|(_, o)| o);
    let text_of = |k: &str| -> std::result::Result<Option<(String, String)>, String> {
        match get(k) {
            None => Ok(None),
            Some(o) => match o.value.text() {
                Some(t) => Ok(Some((t, o.named_by.clone()))),
                None => Err(format!("its {} is not a file name", o.named_by)),
            },
        }
    };
    if let Some(o) = get("password") {
        return Err(format!(
            "its client key is protected by a password ({}); etop reads unencrypted keys only",
            o.named_by
        ));
    }
    for inline in ["cert", "key", "cacerts"] {
        if let Some(o) = get(inline) {
            return Err(format!(
                "it gives its {} inline ({}); etop reads PEM files only",
                if inline == "cacerts" {
                    "CA certificates"
                } else {
                    "client certificate"
                },
                o.named_by
            ));
        }
    }
    let mut cert = text_of("certfile")?;
    let mut key = text_of("keyfile")?;
    // OTP 25's list form: the first certificate and key of `certs_keys`.
    if cert.is_none()
        && let Some(Opt {
            value: Value::Term(ETerm::List(list)),
            named_by,
        }) = get("certs_keys")
        && let Some(ETerm::Map(m)) = list.first()
    {
        let field = |name: &str| {
            m.iter()
                .find(|(k, _)| k.is_atom(name))
                .and_then(|(_, v)| v.as_text())
                .map(|t| (t, format!("{name} of {named_by}")))
        };
        cert = field("certfile");
        key = field("keyfile");
    }
    let Some(ca) = text_of("cacertfile")? else {
        return Err("its client options name no cacertfile".into());
    };
    let server_name = match get("server_name_indication").map(|o| &o.value) {
        Some(Value::Term(t)) if t.is_atom("disable") => ServerName::Unchecked,
        Some(v) => match v.text() {
            Some(name) if name == "disable" => ServerName::Unchecked,
            Some(name) => ServerName::Given(name),
            None => ServerName::NodeHost,
        },
        None => ServerName::NodeHost,
    };
    Ok(TlsFiles {
        cert: cert.map(|(p, by)| fs.file(&p, by)).transpose()?,
        key: key.map(|(p, by)| fs.file(&p, by)).transpose()?,
        ca: fs.file(&ca.0, ca.1)?,
        server_name,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_at(root: &Path) -> (PathBuf, impl Fn(&Path) -> PathBuf) {
        let root = root.to_path_buf();
        (PathBuf::from("/srv/app"), move |p: &Path| {
            root.join(p.strip_prefix("/").unwrap_or(p))
        })
    }

    fn args(words: &[&str]) -> ErlArgs {
        ErlArgs::parse_init_words(words)
    }

    #[test]
    fn the_client_section_of_the_optfile_with_paths_against_the_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let (cwd, in_target) = fs_at(dir.path());
        std::fs::create_dir_all(dir.path().join("srv/app/etc")).unwrap();
        std::fs::write(
            dir.path().join("srv/app/etc/dist.conf"),
            r#"[{server, [{certfile, "/s.pem"}, {cacertfile, "/sca.pem"}]},
                {client, [{certfile, "c.pem"}, {keyfile, "/k.pem"},
                          {cacertfile, <<"/ca.pem">>}, {verify, verify_peer},
                          {server_name_indication, "db1.example"}]}]."#,
        )
        .unwrap();
        let fs = NodeFs {
            cwd: Some(&cwd),
            in_target: &in_target,
            user: "app",
        };
        let got = lookup(
            &args(&[
                "-proto_dist",
                "inet_tls",
                "-ssl_dist_optfile",
                "etc/dist.conf",
            ]),
            &fs,
        );
        let DistTls::Client(f) = got else {
            panic!("{got:?}")
        };
        let cert = f.cert.unwrap();
        assert_eq!(cert.path, Path::new("/srv/app/c.pem"));
        assert_eq!(cert.open, dir.path().join("srv/app/c.pem"));
        assert_eq!(
            cert.named_by,
            "certfile in the node's -ssl_dist_optfile '/srv/app/etc/dist.conf'"
        );
        assert_eq!(f.key.unwrap().path, Path::new("/k.pem"));
        assert_eq!(f.ca.path, Path::new("/ca.pem"));
        assert_eq!(f.server_name, ServerName::Given("db1.example".into()));
        assert_eq!(
            f.source,
            "the node's -ssl_dist_optfile '/srv/app/etc/dist.conf'"
        );
    }

    #[test]
    fn ssl_dist_opt_flags_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let (cwd, in_target) = fs_at(dir.path());
        std::fs::write(
            dir.path().join("o.conf"),
            r#"[{client, [{certfile, "/file.pem"}, {cacertfile, "/ca.pem"},
                          {server_name_indication, disable}]}]."#,
        )
        .unwrap();
        let fs = NodeFs {
            cwd: Some(&cwd),
            in_target: &in_target,
            user: "app",
        };
        let a = args(&[
            "-ssl_dist_opt",
            "server_certfile",
            "/s.pem",
            "client_certfile",
            "/flag.pem",
            "-ssl_dist_optfile",
            "/o.conf",
        ]);
        let DistTls::Client(f) = lookup(&a, &fs) else {
            panic!()
        };
        let cert = f.cert.unwrap();
        assert_eq!(cert.path, Path::new("/flag.pem"));
        assert_eq!(cert.named_by, "client_certfile in the node's -ssl_dist_opt");
        assert!(f.key.is_none());
        assert_eq!(f.ca.path, Path::new("/ca.pem"));
        assert_eq!(f.server_name, ServerName::Unchecked);
        assert_eq!(
            f.source,
            "the node's -ssl_dist_opt and -ssl_dist_optfile '/o.conf'"
        );
    }

    #[test]
    fn options_etop_cannot_use_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let (cwd, in_target) = fs_at(dir.path());
        let fs = NodeFs {
            cwd: Some(&cwd),
            in_target: &in_target,
            user: "app",
        };
        let cases: [(&str, &str); 5] = [
            ("[{client, [{certfile, \"/c\"}]}].", "name no cacertfile"),
            (
                "[{client, [{keyfile, \"/k\"}, {password, \"x\"}, {cacertfile, \"/a\"}]}].",
                "protected by a password (password in the node's -ssl_dist_optfile",
            ),
            (
                "[{client, [{cacerts, [<<1>>]}]}].",
                "gives its CA certificates inline",
            ),
            (
                "[{client, [{certfile, File}]}].",
                "does not read as a term (line 1: a variable",
            ),
            (
                "[{client, [{certfile, 42}]}].",
                "its certfile in the node's -ssl_dist_optfile '/o.conf' is not a file name",
            ),
        ];
        for (text, says) in cases {
            std::fs::write(dir.path().join("o.conf"), text).unwrap();
            let got = lookup(&args(&["-ssl_dist_optfile", "/o.conf"]), &fs);
            match got {
                DistTls::Unusable(why) => assert!(why.contains(says), "{text}: {why}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let got = lookup(&args(&["-ssl_dist_optfile", "/missing.conf"]), &fs);
        assert!(
            matches!(&got, DistTls::Unusable(w) if w.starts_with("cannot read its -ssl_dist_optfile '/missing.conf'")),
            "{got:?}"
        );
        let got = lookup(&args(&["-proto_dist", "inet_tls"]), &fs);
        assert!(
            matches!(&got, DistTls::Unusable(w) if w.contains("no -ssl_dist_optfile")),
            "{got:?}"
        );
        std::fs::write(dir.path().join("big.conf"), vec![b' '; 70_000]).unwrap();
        let got = lookup(&args(&["-ssl_dist_optfile", "/big.conf"]), &fs);
        assert!(
            matches!(&got, DistTls::Unusable(w) if w.contains("larger than 64 KB")),
            "{got:?}"
        );
    }

    #[test]
    fn flags_replace_the_nodes_options() {
        let ca = Path::new("ca.pem");
        let cert = Path::new("c.pem");
        let f = choose(
            TlsFlags {
                cert: Some(cert),
                key: None,
                ca: Some(ca),
            },
            None,
            "n@h",
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.ca.named_by, "--tls-ca");
        assert_eq!(f.cert.unwrap().path, cert);
        assert!(f.key.is_none());
        let e = choose(
            TlsFlags {
                cert: Some(cert),
                ..Default::default()
            },
            None,
            "n@h",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("--tls-ca is missing"), "{e}");
        let e = choose(
            TlsFlags {
                key: Some(cert),
                ca: Some(ca),
                ..Default::default()
            },
            None,
            "n@h",
        )
        .unwrap_err();
        assert!(e.to_string().contains("--tls-key needs --tls-cert"), "{e}");
        assert_eq!(choose(TlsFlags::default(), None, "n@h").unwrap(), None);
    }
}
