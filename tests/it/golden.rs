//! Golden frames: samples recorded from a real node once (as the agent's
//! replies, in the external term format, under tests/golden/), rendered in
//! text, CSV and JSON and compared with the files beside them. No node is
//! needed, so a change of layout shows up as a diff to review.
//!
//!   ETOP_RECORD_GOLDEN=1 cargo test golden    records new samples from a node
//!   ETOP_RECORD_GOLDEN=ports cargo test golden     only those of one view
//!                                              (procs, ports, ets, msacc)
//!   ETOP_UPDATE_GOLDEN=1 cargo test golden    rewrites the expected frames

use crate::util::*;
use etop::agent::sample::{Reply, decode_sample, window};
use etop::agent::{Agent, SampleRequest, SortKey};
use etop::dist::Connection;
use etop::dist::etf;
use etop::dist::term::{self, Term, atom};
use etop::host::{ThreadStat, thread_rows};
use etop::node::discover::ssl_dist::DistTls;
use etop::node::discover::{CookieLookup, CookieSource, EpmdNames, LocalNode, NameFrom, NameKind};
use etop::views::column::Grid;
use etop::views::ets::{Ets, EtsSort};
use etop::views::msacc::{Msacc, MsaccShaper, decode, report};
use etop::views::ports::{PortSort, Ports};
use etop::views::procs::model::{Model, NameStyle};
use etop::views::reply::ReplyShaper;
use etop::views::threads::ThreadSort;
use etop::views::{Frame, Shaper, ets, nodes, ports, procs, threads};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The terminal width golden text is rendered for.
const WIDTH: usize = 110;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// A recorded agent reply.
fn recorded(name: &str) -> Term {
    let path = dir().join(format!("{name}.etf"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record samples with ETOP_RECORD_GOLDEN=1",
            path.display()
        )
    });
    etf::decode_term(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares one rendering with its golden file (or rewrites the file).
fn check(name: &str, got: &str) {
    let path = dir().join(name);
    if flag("ETOP_UPDATE_GOLDEN") {
        std::fs::write(&path, got).expect("write a golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "{} differs from the rendered frame at line {} \
             (rerun with ETOP_UPDATE_GOLDEN=1 and review the diff):\n  want: {:?}\n  got:  {:?}",
            path.display(),
            line + 1,
            want.lines().nth(line).unwrap_or("<end>"),
            got.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

/// A frame in the three formats, each against its golden file.
fn check_frame(name: &str, f: &Frame) {
    check(
        &format!("{name}.txt"),
        &(etop::ui::frame::text(f, WIDTH, 100) + "\n"),
    );
    check(&format!("{name}.csv"), &etop::ui::frame::csv(f, true));
    check(&format!("{name}.json"), &etop::ui::frame::json(f));
}

/// A reply as the feed makes it.
fn reply(info: Term, at: Instant) -> Reply {
    Reply {
        info,
        epoch: 1,
        taken_at: at,
    }
}

#[test]
fn golden_frames_of_recorded_samples() {
    if let Ok(which) = std::env::var("ETOP_RECORD_GOLDEN") {
        record(&which);
    }
    let t0 = Instant::now();

    // The process table: two samples, the second against the first.
    let a = decode_sample(&recorded("procs_1"), SortKey::Msgq, 1).expect("a procs sample");
    let b = decode_sample(&recorded("procs_2"), SortKey::Msgq, 1).expect("a procs sample");
    let win = window((b.taken_at, b.node_mono_us), (a.taken_at, a.node_mono_us));
    let model = Model::new(&b, Some((&a, win)), None, false, NameStyle::Erlang);
    check_frame("procs", &procs::frame::frame(&model));

    // Ports and ETS: the second reply of each, against the first.
    let mut p = ReplyShaper::new(
        Ports {
            sort: PortSort::Bytes,
        },
        true,
    );
    assert!(p.shape(reply(recorded("ports_1"), t0)).is_none());
    let f = p
        .shape(reply(recorded("ports_2"), t0 + Duration::from_secs(1)))
        .expect("a ports frame");
    check_frame("ports", &f);
    let mut e = ReplyShaper::new(
        Ets {
            sort: EtsSort::Memory,
        },
        true,
    );
    assert!(e.shape(reply(recorded("ets_1"), t0)).is_none());
    let f = e
        .shape(reply(recorded("ets_2"), t0 + Duration::from_secs(1)))
        .expect("an ETS frame");
    check_frame("ets", &f);

    // msacc: the collect reply, over a 2 s window.
    let info = recorded("msacc");
    let times = term::map_get(&info, "threads")
        .map(decode)
        .unwrap_or_default();
    let r = report("golden@host".into(), Duration::from_secs(2), &times, false);
    let f = MsaccShaper { threads: true }
        .shape(Msacc::Done(r))
        .expect("an msacc frame");
    check_frame("msacc", &f);

    // Threads and local nodes come from the OS, not from a node: their
    // samples are written out here.
    let t = |tid, name: &str, ut, st, vol, invol| ThreadStat {
        tid,
        name: name.into(),
        state: 'S',
        utime_ticks: ut,
        stime_ticks: st,
        voluntary_ctxt: vol,
        nonvoluntary_ctxt: invol,
        last_cpu: tid % 2,
    };
    let before = [
        t(101, "1_scheduler", 1000, 50, 10, 5),
        t(102, "2_scheduler", 900, 40, 12, 6),
        t(103, "1_dirty_cpu_sch", 10, 1, 3, 0),
        t(104, "1_aux", 5, 5, 100, 1),
    ];
    let after = [
        t(101, "1_scheduler", 1190, 55, 10, 35),
        t(102, "2_scheduler", 930, 41, 60, 6),
        t(103, "1_dirty_cpu_sch", 10, 1, 3, 0),
        t(104, "1_aux", 6, 5, 150, 1),
    ];
    let mut rows = thread_rows(&after, Some((&before, 2.0)), 100);
    threads::sort_rows(&mut rows, ThreadSort::Cpu);
    let f = threads::frame(
        "demo@host (beam pid 4242)",
        rows.len(),
        Some(2.0),
        ThreadSort::Cpu,
        &rows,
    );
    check_frame("threads", &f);

    let node = |pid, name: Option<&str>, user: &str, cookie| LocalNode {
        os_pid: pid,
        uid: 1000,
        user: user.into(),
        name: name.map(str::to_string),
        name_kind: name.map(|_| NameKind::Short),
        name_from: name.map(|_| NameFrom::Argv),
        listen_ports: vec![42449],
        otp_release: Some("25.2.3".into()),
        erts_version: Some("13.1.5".into()),
        cookie,
        environ_readable: true,
        ..LocalNode::default()
    };
    let found = |source| CookieLookup::Found {
        source,
        cookie: etop::node::Cookie::new("x").expect("a cookie"),
        loose_permissions: false,
    };
    let mut tls_node = node(7448, Some("demo@db1"), "app", found(CookieSource::Argv));
    tls_node.proto_dist = Some("inet_tls".into());
    tls_node.dist_tls = Some(DistTls::Unusable(
        "its client options name no cacertfile".into(),
    ));
    let locals = [
        tls_node,
        node(
            21578,
            Some("worker@db1"),
            "app",
            found(CookieSource::HomeCookieFile {
                path: "/home/app/.erlang.cookie".into(),
                user: "app".into(),
            }),
        ),
        node(30001, None, "root", CookieLookup::NotFound),
    ];
    let lines = nodes::lines(
        &locals,
        &EpmdNames::single(4369, vec![("demo".into(), 42449)]),
    );
    let grid = Grid::new(&nodes::COLUMNS, &lines);
    let f = Frame {
        json: serde_json::Value::Array(grid.json_rows()),
        grids: vec![grid],
        ..Frame::default()
    };
    check_frame("nodes", &f);
}

/// Records the samples from a real node: the demo scenario with a growing
/// mailbox, a growing ETS table and a UDP flow. `which` is `1` for all, or
/// the name of one view whose samples alone are rewritten (after the agent's
/// reply for that view changed shape).
fn record(which: &str) {
    let node = Node::start(NodeOpts {
        idle: 50,
        flood_per_sec: 500,
        ets_rows_per_sec: 200,
        udp_per_sec: 50,
        ..NodeOpts::default()
    });
    // An IPv6 listener held by an unregistered proc_lib process: an address
    // and an owner of each kind in the ports frame.
    node.eval(
        "proc_lib:spawn(fun() -> {ok, _} = gen_tcp:listen(0, [inet6]), \
           receive stop -> ok end end)",
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut conn = Connection::connect(&node.connect_opts_for("etop_golden")).expect("connect");
    let agent = Agent::start(&mut conn, 0).expect("start the agent");
    let mut ask = |req: Term| {
        agent
            .call(&mut conn, req, Duration::from_secs(15), "a golden sample")
            .expect("a reply")
    };
    let frame = |t: &Term| {
        term::map_get(t, "frame")
            .and_then(term::as_i64)
            .unwrap_or(0)
    };
    let p1 = ask(SampleRequest::new(SortKey::Msgq, 8, false).term(0));
    let q1 = ask(ports::request(PortSort::Bytes, 12, 0));
    let e1 = ask(ets::request(EtsSort::Memory, 8, 0));
    ask(atom("msacc_start"));
    std::thread::sleep(Duration::from_secs(1));
    let p2 = ask(SampleRequest::new(SortKey::Msgq, 8, false).term(frame(&p1)));
    let q2 = ask(ports::request(PortSort::Bytes, 12, frame(&q1)));
    let e2 = ask(ets::request(EtsSort::Memory, 8, frame(&e1)));
    let m = ask(atom("msacc_collect"));
    std::fs::create_dir_all(dir()).expect("create tests/golden");
    for (name, t) in [
        ("procs_1", &p1),
        ("procs_2", &p2),
        ("ports_1", &q1),
        ("ports_2", &q2),
        ("ets_1", &e1),
        ("ets_2", &e2),
        ("msacc", &m),
    ] {
        if which != "1" && !name.starts_with(which) {
            continue;
        }
        let mut buf = Vec::new();
        t.encode(&mut buf).expect("encode a sample");
        std::fs::write(dir().join(format!("{name}.etf")), buf).expect("write a sample");
    }
    agent.stop(&mut conn);
}
