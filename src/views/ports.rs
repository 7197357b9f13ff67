//! `etop ports`: every port (sockets, files, spawned programs) and, where the
//! node uses it, every `socket`-module socket, with traffic per interval. The
//! counters of all ports are read on the node; names, owners and addresses
//! only for the rows shown.

use super::column::{Cell, Column};
use super::reply::ReplyView;
use crate::agent::sample::ReplyHeader;
use crate::dist::term::{self, Term, atom, int, tuple};
use serde_json::{Map, Value};

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
    /// Memory the port's driver uses.
    Memory,
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
            PortSort::Memory => "memory",
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
    pub owner: String,
    pub local: String,
    pub remote: String,
    pub recv_cnt: u64,
    pub recv_oct: u64,
    pub send_cnt: u64,
    pub send_oct: u64,
    pub queue_bytes: u64,
    pub memory_bytes: u64,
}

fn owner_text(pid: &Term, name: &Term) -> String {
    match (term::as_atom(name), pid) {
        (Some(n), _) => n.to_string(),
        (None, Term::Pid(p)) => format!("<0.{}.{}>", p.id, p.serial),
        _ => String::new(),
    }
}

fn u(t: &Term) -> u64 {
    term::as_i64(t).unwrap_or(0).max(0) as u64
}

/// `{Id, Rank, {Rc, Ro, Sc, So}, {Name, Owner, OwnerName, Queue, Mem, Local, Remote}}`
fn decode_row(t: &Term) -> Option<PortRow> {
    let [id, _rank, counters, detail] = term::as_tuple(t)? else {
        return None;
    };
    let [rc, ro, sc, so] = term::as_tuple(counters)? else {
        return None;
    };
    let [name, owner, owner_name, queue, mem, local, remote] = term::as_tuple(detail)? else {
        return None;
    };
    let id = match term::as_tuple(id)? {
        [_, inner] => term::id_text(inner),
        _ => return None,
    };
    let name = match term::as_tuple(name) {
        // {socket, Type, Protocol} for socket-module sockets.
        Some([_, ty, proto]) => format!(
            "socket {} {}",
            term::as_atom(ty).unwrap_or("?"),
            term::as_atom(proto).unwrap_or("?")
        ),
        _ => term::as_text(name).unwrap_or_default(),
    };
    Some(PortRow {
        id,
        name,
        owner: owner_text(owner, owner_name),
        local: term::as_text(local).unwrap_or_default(),
        remote: term::as_text(remote).unwrap_or_default(),
        recv_cnt: u(rc),
        recv_oct: u(ro),
        send_cnt: u(sc),
        send_oct: u(so),
        queue_bytes: u(queue),
        memory_bytes: u(mem),
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
    Column::flex("Local", "local", |r| Cell::text(&r.local)),
    Column::flex("Remote", "remote", |r| Cell::text(&r.remote)),
    Column::num("RecvCnt", "recv_cnt", |r| Cell::Count(Some(r.recv_cnt))),
    Column::num("RecvOct", "recv_oct", |r| Cell::Bytes(Some(r.recv_oct))),
    Column::num("SendCnt", "send_cnt", |r| Cell::Count(Some(r.send_cnt))),
    Column::num("SendOct", "send_oct", |r| Cell::Bytes(Some(r.send_oct))),
    Column::num("Queue", "queue_bytes", |r| Cell::Bytes(Some(r.queue_bytes))),
    Column::num("Memory", "memory_bytes", |r| {
        Cell::Bytes(Some(r.memory_bytes))
    }),
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
            PortSort::Memory => r.memory_bytes,
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

    #[test]
    fn decodes_an_inet_port_row() {
        let port: Term = erl_dist::term::Port {
            node: "n@h".into(),
            id: 42,
            creation: 1,
        }
        .into();
        let row = tuple(vec![
            tuple(vec![atom("port"), port]),
            int(5000),
            tuple(vec![int(3), int(100), int(5), int(4900)]),
            tuple(vec![
                Term::from("udp_inet".to_string()),
                erl_dist::term::Pid::new("n@h", 77, 0, 1).into(),
                list(vec![]),
                int(0),
                int(400),
                Term::from("127.0.0.1:5000".to_string()),
                list(vec![]),
            ]),
        ]);
        let r = decode_row(&row).unwrap();
        assert_eq!(r.id, "#Port<0.42>");
        assert_eq!(r.name, "udp_inet");
        assert_eq!(r.owner, "<0.77.0>");
        assert_eq!(r.local, "127.0.0.1:5000");
        assert_eq!(r.remote, "");
        assert_eq!((r.recv_cnt, r.send_oct), (3, 4900));
    }
}
