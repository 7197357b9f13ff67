//! TLS distribution: real nodes started with `-proto_dist inet_tls`, which
//! check their peers' certificates (`verify_peer`, `fail_if_no_peer_cert`),
//! and certificates made here by a test CA. etop attaches with the node's
//! own client options or with `--tls-*`, and every certificate problem is
//! one line and exit code 8.

use crate::util::*;
use etop::node::discover::ssl_dist::{ServerName, TlsFile, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A test CA and the certificates it signs, as PEM files in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: PathBuf,
}

/// A certificate and its key, as files.
#[derive(Clone)]
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("etop test CA {name}"));
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let ca_pem = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca_pem, ca.pem()).expect("write the CA");
        Pki { dir, ca, ca_pem }
    }

    /// A certificate for `names` (host names or IP addresses), for servers
    /// and clients alike, as distribution nodes use them. `expired`: valid
    /// only during 2020.
    fn issue(&self, stem: &str, names: &[&str], expired: bool) -> Pair {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("sign a leaf");
        let pair = Pair {
            cert: self.dir.path().join(format!("{stem}.pem")),
            key: self.dir.path().join(format!("{stem}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).expect("write a certificate");
        std::fs::write(&pair.key, key.serialize_pem()).expect("write a key");
        pair
    }

    fn ca(&self) -> &str {
        path_str(&self.ca_pem)
    }
}

/// How a TLS node is configured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Options {
    /// `-ssl_dist_optfile`, with the TLS versions OTP picks (1.2 on OTP 25).
    File,
    /// `-ssl_dist_optfile` with TLS 1.3 only.
    FileTls13,
    /// `-ssl_dist_opt server_* client_*` flags.
    Flags,
}

/// Starts a node that speaks only TLS distribution, presents `server` and
/// requires a client certificate signed by `pki`'s CA. Its client options
/// name `server` and the CA too, as nodes of a cluster do.
fn tls_node(pki: &Pki, server: &Pair, how: Options, harness: Harness) -> NodeOpts {
    let (cert, key, ca) = (path_str(&server.cert), path_str(&server.key), pki.ca());
    let erl_args: Vec<String> = match how {
        Options::File | Options::FileTls13 => {
            let versions = if how == Options::FileTls13 {
                ", {versions, ['tlsv1.3']}"
            } else {
                ""
            };
            let file = pki
                .dir
                .path()
                .join(format!("dist-{}.conf", &random_hex()[..8]));
            let text = format!(
                "%% TLS distribution for an etop test node\n\
                 [{{server, [{{certfile, \"{cert}\"}}, {{keyfile, \"{key}\"}},\n\
                 {{cacertfile, \"{ca}\"}}, {{verify, verify_peer}},\n\
                 {{fail_if_no_peer_cert, true}}{versions}]}},\n \
                 {{client, [{{certfile, \"{cert}\"}}, {{keyfile, <<\"{key}\">>}},\n\
                 {{cacertfile, \"{ca}\"}}, {{verify, verify_peer}}]}}].\n"
            );
            std::fs::write(&file, text).expect("write the option file");
            [
                "-proto_dist",
                "inet_tls",
                "-ssl_dist_optfile",
                path_str(&file),
            ]
            .map(String::from)
            .to_vec()
        }
        Options::Flags => [
            "-proto_dist",
            "inet_tls",
            "-ssl_dist_opt",
            "server_certfile",
            cert,
            "server_keyfile",
            key,
            "server_cacertfile",
            ca,
            "server_verify",
            "verify_peer",
            "server_fail_if_no_peer_cert",
            "true",
            "client_certfile",
            cert,
            "client_keyfile",
            key,
            "client_cacertfile",
            ca,
            "client_verify",
            "verify_peer",
        ]
        .map(String::from)
        .to_vec(),
    };
    let file = |p: &Path, by: &str| TlsFile::given(p, by);
    let tls = |server_name| TlsFiles {
        cert: Some(file(&server.cert, "test")),
        key: Some(file(&server.key, "test")),
        ca: file(&pki.ca_pem, "test"),
        server_name,
        source: "the test".into(),
    };
    let (tls, ready_by_log) = match harness {
        Harness::Evals => (Some(tls(ServerName::NodeHost)), false),
        Harness::EvalsWithoutName => (Some(tls(ServerName::Unchecked)), false),
        Harness::CannotAttach => (None, true),
    };
    NodeOpts {
        erl_args,
        tls,
        ready_by_log,
        ..quiet()
    }
}

/// What the harness's own connection can do on a TLS node.
#[derive(Clone, Copy)]
enum Harness {
    Evals,
    /// The node's certificate does not name its host: the harness checks
    /// everything but the name.
    EvalsWithoutName,
    /// etop refuses the node's certificate, and so would the harness.
    CannotAttach,
}

fn run_etop(node: &Node, args: &[&str]) -> Output {
    let mut all = vec!["--once", "-i", QUICK];
    all.extend_from_slice(args);
    etop(all).cookie_env(&node.cookie).run()
}

/// An empty proc root: etop knows nothing of the node but its name.
fn no_local_nodes() -> tempfile::TempDir {
    tempfile::tempdir().expect("an empty proc root")
}

#[test]
fn attaches_with_the_nodes_own_options_or_the_flags() {
    let pki = Pki::new("main");
    let host = short_host();
    let server = pki.issue("node", &[&host], false);
    let nodes = Node::start_all(vec![
        tls_node(&pki, &server, Options::File, Harness::Evals),
        tls_node(&pki, &server, Options::Flags, Harness::Evals),
    ]);
    for node in &nodes {
        let fake = FakeProc::new(&[node.os_pid()]);
        let out = run_etop(node, &["-v", "--proc-root", &fake.arg(), &node.name]).success();
        assert!(
            out.stderr
                .contains("etop: speaking TLS with the files from the node's -ssl_dist_"),
            "-v does not say where the TLS files come from\n{out}"
        );
        assert!(!parse_table(&out).is_empty(), "{out}");
        let (listed, out) = nodes_json(&fake);
        assert_eq!(listed[&u64::from(node.os_pid())]["tls"], "yes", "{out}");
        assert_eq!(
            listed[&u64::from(node.os_pid())]["tls_problem"],
            serde_json::Value::Null,
            "{out}"
        );
    }
    // The node proves it saw a TLS peer: its connection to the harness,
    // itself attached over TLS, is of protocol tls.
    let proto = nodes[0].eval(
        "[P || {_, I} <- element(2, net_kernel:nodes_info()), \
               {address, {net_address, _, _, P, _}} <- I]",
    );
    assert_eq!(proto, "['tls']", "{}", nodes[0].log());

    // An operator's own certificate, with no host in it, and a node etop
    // knows only by name: the flags say everything.
    let operator = pki.issue("operator", &[], false);
    let empty = no_local_nodes();
    let node = &nodes[0];
    let out = run_etop(
        node,
        &[
            "--format",
            "json",
            "--proc-root",
            path_str(empty.path()),
            "--tls-cert",
            path_str(&operator.cert),
            "--tls-key",
            path_str(&operator.key),
            "--tls-ca",
            pki.ca(),
            &node.full,
        ],
    )
    .success();
    let frame = the_json(&out);
    assert!(
        frame["rows"].as_array().is_some_and(|r| !r.is_empty()),
        "{out}"
    );
}

#[test]
fn each_certificate_problem_is_one_line() {
    let pki = Pki::new("main");
    let other = Pki::new("other");
    let host = short_host();
    let good = pki.issue("node", &[&host], false);
    let elsewhere = pki.issue("elsewhere", &["elsewhere.example"], false);
    let expired = pki.issue("expired", &[&host], true);
    let nodes = Node::start_all(vec![
        tls_node(&pki, &good, Options::File, Harness::Evals),
        tls_node(&pki, &good, Options::FileTls13, Harness::Evals),
        tls_node(&pki, &elsewhere, Options::File, Harness::EvalsWithoutName),
        tls_node(&pki, &expired, Options::File, Harness::CannotAttach),
    ]);
    let (tls12, tls13, misnamed, outdated) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    let stranger = other.issue("stranger", &[], false);
    let lapsed = pki.issue("lapsed", &[], true);
    let flags = |pair: Option<&Pair>, ca: &Pki| -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = pair {
            v.extend(
                [
                    "--tls-cert",
                    path_str(&p.cert),
                    "--tls-key",
                    path_str(&p.key),
                ]
                .map(String::from),
            );
        }
        v.extend(["--tls-ca".to_string(), ca.ca().to_string()]);
        v
    };
    let cases: Vec<(&Node, Vec<String>, String)> = vec![
        (
            tls12,
            flags(Some(&good), &other),
            format!(
                "its certificate is not signed by a CA in '{}' (--tls-ca); give the CA \
                 that signed it with --tls-ca",
                other.ca()
            ),
        ),
        (
            misnamed,
            vec![],
            format!(
                "its certificate is not valid for '{host}' (it names 'elsewhere.example'); \
                 attach by a name whose host the certificate holds"
            ),
        ),
        (
            outdated,
            vec![],
            "its certificate expired on 2021-01-01 00:00:00 UTC".to_string(),
        ),
        // TLS 1.2 has no alert for a missing client certificate.
        (
            tls12,
            flags(None, &pki),
            "it ended the TLS handshake (handshake_failure): it requires a client \
             certificate; pass --tls-cert and --tls-key"
                .to_string(),
        ),
        (
            tls13,
            flags(None, &pki),
            "it requires a client certificate; pass --tls-cert and --tls-key".to_string(),
        ),
        (
            tls12,
            flags(Some(&stranger), &pki),
            format!(
                "it does not trust etop's client certificate '{}' (--tls-cert): it is not \
                 signed by a CA the node knows",
                stranger.cert.display()
            ),
        ),
        (
            tls13,
            flags(Some(&stranger), &pki),
            format!(
                "it does not trust etop's client certificate '{}' (--tls-cert): it is not \
                 signed by a CA the node knows",
                stranger.cert.display()
            ),
        ),
        (
            tls12,
            flags(Some(&lapsed), &pki),
            format!(
                "it refused etop's client certificate '{}' (--tls-cert): it has expired",
                lapsed.cert.display()
            ),
        ),
    ];
    for (node, extra, why) in cases {
        let fake = FakeProc::new(&[node.os_pid()]);
        let mut args = vec!["--proc-root".to_string(), fake.arg()];
        args.extend(extra);
        args.push(node.name.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_etop(node, &args);
        assert_eq!(out.code, Some(8), "{out}\n{}", node.log());
        assert_eq!(
            single_error_line(&out),
            format!("etop: TLS with {}: {why}", node.full),
            "{out}"
        );
    }

    // Without TLS, a TLS node is named for what it is.
    let empty = no_local_nodes();
    let out = run_etop(tls12, &["--proc-root", path_str(empty.path()), &tls12.full]);
    assert_eq!(out.code, Some(3), "{out}");
    let line = single_error_line(&out);
    assert!(
        line.contains("it speaks TLS distribution (-proto_dist inet_tls); give etop its certificates with --tls-ca, --tls-cert and --tls-key"),
        "{out}"
    );
}

#[test]
fn tls_files_and_peers_that_are_not_tls() {
    let pki = Pki::new("main");
    let client = pki.issue("client", &[], false);
    let cert = path_str(&client.cert);
    let empty = no_local_nodes();
    let root = path_str(empty.path());
    let usage = |args: &[&str], want: &str| {
        let mut all = vec!["--once", "--proc-root", root];
        all.extend_from_slice(args);
        all.push("nobody@127.0.0.1");
        let out = etop(all).cookie_env("C").run();
        assert_eq!(out.code, Some(2), "{out}");
        assert_eq!(single_error_line(&out), format!("etop: {want}"), "{out}");
    };
    usage(
        &["--tls-cert", cert],
        "--tls-ca is missing: etop checks the node's certificate against the CA that signed \
         it (any --tls-* flag replaces the node's own TLS options)",
    );
    usage(
        &["--tls-ca", "/nonexistent/ca.pem"],
        "cannot use the TLS CA certificate '/nonexistent/ca.pem' (--tls-ca): no such file",
    );
    usage(
        &["--tls-ca", pki.ca(), "--tls-cert", cert],
        &format!(
            "cannot use the TLS key '{cert}' (--tls-cert): it holds no PEM private key (name \
             the key file with --tls-key)"
        ),
    );
    usage(
        &["--tls-ca", cert, "--tls-cert", path_str(&client.key)],
        &format!(
            "cannot use the TLS certificate '{}' (--tls-cert): it holds no PEM CERTIFICATE",
            client.key.display()
        ),
    );

    // Something that accepts the connection and never answers TLS, as a
    // node without -proto_dist inet_tls does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let silent = std::thread::spawn(move || {
        let held = listener.accept();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let out = etop([
        "--once",
        "--proc-root",
        root,
        "--connect-timeout",
        "1",
        "--port",
        &port,
        "--tls-ca",
        pki.ca(),
        "nobody@127.0.0.1",
    ])
    .cookie_env("C")
    .run();
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(
        single_error_line(&out),
        "etop: TLS handshake with nobody@127.0.0.1 failed: no answer to the TLS handshake \
         within 1 s; is it a TLS-distribution node (-proto_dist inet_tls)?",
        "{out}"
    );
    silent.join().expect("the silent peer");
}

/// A cluster of TLS nodes: the node etop knows only by name is reached with
/// the entry node's own client options, as the entry node reaches it; the
/// `--tls-*` flags, given, serve every node, the entry node included.
#[test]
fn every_node_of_a_cluster_over_tls() {
    let pki = Pki::new("cluster");
    let host = short_host();
    let server = pki.issue("node", &[&host], false);
    let cookie = format!("C{}", random_hex().to_uppercase());
    let opts = |how| NodeOpts {
        cookie: Some(cookie.clone()),
        ..tls_node(&pki, &server, how, Harness::Evals)
    };
    let nodes = Node::start_all(vec![opts(Options::File), opts(Options::Flags)]);
    let (entry, other) = (&nodes[0], &nodes[1]);
    let r = entry.eval(&format!("net_kernel:connect_node('{}')", other.full));
    assert_eq!(r, "'true'", "{}", entry.log());
    let all = [entry.full.clone(), other.full.clone()];
    let answered_by_all = |out: &Output| {
        let f = the_json(out);
        assert_eq!(f["header"]["answered"], 2, "{out}");
        let mut seen: Vec<String> = f["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n["state"] == "ok")
                    .map(|n| n["node"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default();
        seen.sort();
        let mut want = all.to_vec();
        want.sort();
        assert_eq!(seen, want, "{out}");
    };

    // Only the entry node is on this host as far as etop can tell.
    let fake = FakeProc::new(&[entry.os_pid()]);
    let out = etop([
        "--once",
        "-i",
        QUICK,
        "--format",
        "json",
        "--proc-root",
        &fake.arg(),
        "--cluster",
        &entry.full,
    ])
    .cookie_env(&cookie)
    .run()
    .success();
    answered_by_all(&out);

    // Nothing local, the nodes named: the flags for both.
    let operator = pki.issue("operator", &[], false);
    let empty = no_local_nodes();
    let out = etop([
        "--once",
        "-i",
        QUICK,
        "--format",
        "json",
        "--proc-root",
        path_str(empty.path()),
        "--tls-cert",
        path_str(&operator.cert),
        "--tls-key",
        path_str(&operator.key),
        "--tls-ca",
        pki.ca(),
        &entry.full,
        &other.full,
    ])
    .cookie_env(&cookie)
    .run()
    .success();
    answered_by_all(&out);

    // A flag file that is not there is refused before any node is asked.
    let out = etop([
        "--once",
        "--tls-ca",
        "/nonexistent/ca.pem",
        "--cluster",
        &entry.full,
    ])
    .cookie_env(&cookie)
    .run();
    assert_eq!(out.code, Some(2), "{out}");
    assert!(single_error_line(&out).contains("--tls-ca"), "{out}");
}
