//! `etop ports`: every port (sockets, files, spawned programs) and, where the
//! node uses it, every `socket`-module socket, with traffic per interval. The
//! counters of all ports are read on the node; names, owners and addresses
//! only for the rows shown.
//!
//! Names follow one rule: a port's name is shown as the node reports it (the
//! driver, `0/1` for a pair of file descriptors, or a spawned program's
//! command line exactly as it was given, its own quotes included), escaped
//! like every name etop shows (`text`), and never quoted by etop. There is
//! no memory column: `erlang:port_info(Port, memory)` is the size of the
//! port's own structure in the VM (a constant 40 or 64 bytes for a socket),
//! not what the port holds; what waits to be sent is the Queue column.

use super::column::{Cell, Column};
use super::reply::ReplyView;
use crate::agent::sample::ReplyHeader;
use crate::dist::term::{self, Term, atom, int, tuple};
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Sort keys of the ports view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortSort {
    /// Bytes received plus bytes sent in the interval.
    Bytes,
    /// Packets (inet) or reads received in the interval.
    #[value(name = "recv_cnt")]
    RecvCnt,
    /// Bytes received in the interval.
    #[value(name = "recv_oct")]
    RecvOct,
    /// Packets or writes sent in the interval.
    #[value(name = "send_cnt")]
    SendCnt,
    /// Bytes sent in the interval.
    #[value(name = "send_oct")]
    SendOct,
    /// Bytes waiting in the port's driver queue.
    Queue,
}

impl PortSort {
    fn atom(self) -> &'static str {
        match self {
            PortSort::Bytes => "bytes",
            PortSort::RecvCnt => "recv_cnt",
            PortSort::RecvOct => "recv_oct",
            PortSort::SendCnt => "send_cnt",
            PortSort::SendOct => "send_oct",
            PortSort::Queue => "queue",
        }
    }
}

/// The agent request for one frame.
pub fn request(sort: PortSort, lines: usize, base: i64) -> Term {
    tuple(vec![
        atom("ports"),
        atom(sort.atom()),
        int(lines as i64),
        int(base),
    ])
}

#[derive(Debug, Clone, PartialEq)]
pub struct PortRow {
    pub id: String,
    pub name: String,
    /// The owner's pid, `<0.745.0>`; empty when the port has none.
    pub owner_pid: String,
    /// The owner's registered name, else its initial call, as the process
    /// table names processes.
    pub owner: String,
    pub local: String,
    pub remote: String,
    pub recv_cnt: u64,
    pub recv_oct: u64,
    pub send_cnt: u64,
    pub send_oct: u64,
    pub queue_bytes: u64,
}

fn u(t: &Term) -> u64 {
    term::as_i64(t).unwrap_or(0).max(0) as u64
}

/// `{Pid, RegisteredName | [], InitialCall | undefined}` as the owner's name
/// and pid.
fn owner(t: &Term) -> (String, String) {
    let Some([pid, reg, init]) = term::as_tuple(t) else {
        return (String::new(), String::new());
    };
    let pid = match pid {
        Term::Pid(p) => format!("<0.{}.{}>", p.id, p.serial),
        _ => String::new(),
    };
    let name = match (term::as_atom(reg), term::mfa(init)) {
        (Some(r), _) => r.to_string(),
        (None, Some((m, f, a))) => format!("{m}:{f}/{a}"),
        (None, None) => String::new(),
    };
    (name, pid)
}

/// An address as it is written everywhere: `127.0.0.1:5672`, `[::]:5222`;
/// empty for a port without one.
pub fn address(t: &Term) -> String {
    let Some([ip, port]) = term::as_tuple(t) else {
        return String::new();
    };
    let Some(port) = term::as_i64(port).and_then(|p| u16::try_from(p).ok()) else {
        return String::new();
    };
    let parts: Option<Vec<i64>> =
        term::as_tuple(ip).map(|p| p.iter().filter_map(term::as_i64).collect());
    let ip = match parts.as_deref() {
        Some(&[a, b, c, d]) => {
            let octets: Option<Vec<u8>> =
                [a, b, c, d].iter().map(|&x| u8::try_from(x).ok()).collect();
            octets.map(|o| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
        }
        Some(words @ [_, _, _, _, _, _, _, _]) => {
            let w: Option<Vec<u16>> = words.iter().map(|&x| u16::try_from(x).ok()).collect();
            w.map(|w| {
                IpAddr::V6(Ipv6Addr::new(
                    w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
                ))
            })
        }
        _ => None,
    };
    ip.map(|ip| SocketAddr::new(ip, port).to_string())
        .unwrap_or_default()
}

/// `{Id, Rank, {Rc, Ro, Sc, So}, {Name, Owner, Queue, Local, Remote}}`
fn decode_row(t: &Term) -> Option<PortRow> {
    let [id, _rank, counters, detail] = term::as_tuple(t)? else {
        return None;
    };
    let [rc, ro, sc, so] = term::as_tuple(counters)? else {
        return None;
    };
    let [name, owner_info, queue, local, remote] = term::as_tuple(detail)? else {
        return None;
    };
    let id = match term::as_tuple(id)? {
        [_, inner] => term::id_text(inner),
        _ => return None,
    };
    let name = match term::as_tuple(name) {
        // {socket, Type, Protocol} for socket-module sockets, which have no
        // name: the socket module's own words for them.
        Some([_, ty, proto]) => format!(
            "socket {} {}",
            term::as_atom(ty).unwrap_or("?"),
            term::as_atom(proto).unwrap_or("?")
        ),
        _ => term::as_text(name).unwrap_or_default(),
    };
    let (owner, owner_pid) = owner(owner_info);
    Some(PortRow {
        id,
        name,
        owner_pid,
        owner,
        local: address(local),
        remote: address(remote),
        recv_cnt: u(rc),
        recv_oct: u(ro),
        send_cnt: u(sc),
        send_oct: u(so),
        queue_bytes: u(queue),
    })
}

/// The ports view: its columns and header.
pub struct Ports {
    pub sort: PortSort,
}

/// The columns of the ports view.
pub static COLUMNS: [Column<PortRow>; 11] = [
    Column::text("Port", "port", |r| Cell::text(&r.id)),
    Column::flex("Name", "name", |r| Cell::text(&r.name)),
    Column::flex("Owner", "owner", |r| Cell::text(&r.owner)),
    Column::text("Owner Pid", "owner_pid", |r| Cell::text(&r.owner_pid)),
    Column::flex("Local", "local", |r| Cell::text(&r.local)),
    Column::flex("Remote", "remote", |r| Cell::text(&r.remote)),
    Column::num("RecvCnt", "recv_cnt", |r| Cell::Count(Some(r.recv_cnt))),
    Column::num("RecvOct", "recv_oct", |r| Cell::Bytes(Some(r.recv_oct))),
    Column::num("SendCnt", "send_cnt", |r| Cell::Count(Some(r.send_cnt))),
    Column::num("SendOct", "send_oct", |r| Cell::Bytes(Some(r.send_oct))),
    Column::num("Queue", "queue_bytes", |r| Cell::Bytes(Some(r.queue_bytes))),
];

impl ReplyView for Ports {
    type Row = PortRow;
    fn columns(&self) -> &'static [Column<PortRow>] {
        &COLUMNS
    }
    fn decode_row(t: &Term) -> Option<PortRow> {
        decode_row(t)
    }
    fn head(
        &self,
        h: &ReplyHeader,
        window: Option<f64>,
        _info: &Term,
    ) -> (String, Map<String, Value>) {
        let win = match window {
            Some(w) => format!("traffic over {w:.1} s"),
            None => "traffic: totals (first frame)".to_string(),
        };
        let line = format!(
            "{}  {}  {} ports  sorted by {}  {}",
            h.node,
            h.clock.map(|c| c.to_string()).unwrap_or_default(),
            h.count,
            self.sort.atom(),
            win
        );
        let mut own = Map::new();
        own.insert("ports".into(), h.count.into());
        own.insert("sort".into(), self.sort.atom().into());
        (line, own)
    }
    fn rank(&self, r: &PortRow) -> Option<i64> {
        let v = match self.sort {
            PortSort::Bytes => r.recv_oct.saturating_add(r.send_oct),
            PortSort::RecvCnt => r.recv_cnt,
            PortSort::RecvOct => r.recv_oct,
            PortSort::SendCnt => r.send_cnt,
            PortSort::SendOct => r.send_oct,
            PortSort::Queue => r.queue_bytes,
        };
        Some(i64::try_from(v).unwrap_or(i64::MAX))
    }
    fn strip(&self, h: &ReplyHeader, _info: &Term) -> Vec<(&'static str, &'static str, Cell)> {
        vec![("Ports", "ports", Cell::Count(Some(h.count)))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::term::list;

    fn port_row(detail: Vec<Term>) -> Term {
        let port: Term = erl_dist::term::Port {
            node: "n@h".into(),
            id: 42,
            creation: 1,
        }
        .into();
        tuple(vec![
            tuple(vec![atom("port"), port]),
            int(5000),
            tuple(vec![int(3), int(100), int(5), int(4900)]),
            tuple(detail),
        ])
    }

    fn ip(parts: &[i64]) -> Term {
        tuple(parts.iter().map(|&p| int(p)).collect())
    }

    #[test]
    fn decodes_an_inet_port_row() {
        let pid: Term = erl_dist::term::Pid::new("n@h", 77, 0, 1).into();
        let row = port_row(vec![
            Term::from("udp_inet".to_string()),
            tuple(vec![
                pid.clone(),
                atom("metrics_exporter"),
                atom("undefined"),
            ]),
            int(0),
            tuple(vec![ip(&[127, 0, 0, 1]), int(5000)]),
            list(vec![]),
        ]);
        let r = decode_row(&row).unwrap();
        assert_eq!(r.id, "#Port<0.42>");
        assert_eq!(r.name, "udp_inet");
        assert_eq!(
            (r.owner.as_str(), r.owner_pid.as_str()),
            ("metrics_exporter", "<0.77.0>")
        );
        assert_eq!(r.local, "127.0.0.1:5000");
        assert_eq!(r.remote, "");
        assert_eq!((r.recv_cnt, r.send_oct), (3, 4900));

        // An unregistered owner is named by its initial call.
        let row = port_row(vec![
            Term::from("tcp_inet".to_string()),
            tuple(vec![
                pid,
                list(vec![]),
                tuple(vec![atom("rabbit_reader"), atom("init"), int(3)]),
            ]),
            int(0),
            tuple(vec![ip(&[0, 0, 0, 0, 0, 0, 0, 0]), int(5222)]),
            tuple(vec![ip(&[0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]), int(40000)]),
        ]);
        let r = decode_row(&row).unwrap();
        assert_eq!(
            (r.owner.as_str(), r.owner_pid.as_str()),
            ("rabbit_reader:init/3", "<0.77.0>")
        );
        assert_eq!(r.local, "[::]:5222");
        assert_eq!(r.remote, "[::ffff:127.0.0.1]:40000");
    }

    #[test]
    fn addresses_are_written_one_way() {
        let a = |ipt: &[i64], port: i64| address(&tuple(vec![ip(ipt), int(port)]));
        assert_eq!(a(&[127, 0, 0, 1], 5672), "127.0.0.1:5672");
        assert_eq!(a(&[0, 0, 0, 0], 4369), "0.0.0.0:4369");
        assert_eq!(a(&[0; 8], 5222), "[::]:5222");
        assert_eq!(a(&[0, 0, 0, 0, 0, 0, 0, 1], 80), "[::1]:80");
        assert_eq!(
            a(&[0x2001, 0xdb8, 0, 0, 0, 0, 0, 7], 443),
            "[2001:db8::7]:443"
        );
        // Not an address: nothing, rather than something made up.
        assert_eq!(a(&[300, 0, 0, 1], 1), "");
        assert_eq!(a(&[1, 2, 3], 1), "");
        assert_eq!(a(&[127, 0, 0, 1], 70000), "");
        assert_eq!(address(&list(vec![])), "");
        assert_eq!(address(&atom("undefined")), "");
    }

    #[test]
    fn a_port_name_is_shown_as_the_node_reports_it() {
        let pid: Term = erl_dist::term::Pid::new("n@h", 9, 0, 1).into();
        let named = |name: Term| {
            decode_row(&port_row(vec![
                name,
                tuple(vec![pid.clone(), atom("user"), atom("undefined")]),
                int(0),
                list(vec![]),
                list(vec![]),
            ]))
            .unwrap()
            .name
        };
        // A command line keeps its own quotes and spaces; etop adds none.
        let cmd = "/bin/sh -c 'exec cat' \"x y\"";
        assert_eq!(named(Term::from(cmd.to_string())), cmd);
        assert_eq!(named(Term::from("0/1".to_string())), "0/1");
        assert_eq!(
            named(tuple(vec![atom("socket"), atom("stream"), atom("tcp")])),
            "socket stream tcp"
        );
    }
}
