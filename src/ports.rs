//! `etop ports`: every port (sockets, files, spawned programs) and, where the
//! node uses it, every `socket`-module socket, with traffic per interval. The
//! counters of all ports are read on the node; names, owners and addresses
//! only for the rows shown.

use crate::collect::{Reply, ReplyClock, reply_header, reply_rows};
use crate::eterm::{self, Term, atom, int, tuple};
use crate::render::{self, human_bytes};
use crate::session::{Renderable, Shaper};

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

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

#[derive(Debug, Clone, serde::Serialize)]
pub struct PortFrame {
    pub node: String,
    pub clock: Option<String>,
    pub ports: u64,
    pub sort: PortSort,
    /// The window the counters cover; `None` on a first frame (totals).
    pub window_secs: Option<f64>,
    pub cost_ms: f64,
    /// The agent's frame worker: its largest heap for this frame, and its
    /// ceiling, in bytes.
    pub agent_heap_bytes: u64,
    pub agent_heap_limit_bytes: u64,
    pub rows: Vec<PortRow>,
}

fn owner_text(pid: &Term, name: &Term) -> String {
    match (eterm::as_atom(name), pid) {
        (Some(n), _) => n.to_string(),
        (None, Term::Pid(p)) => format!("<0.{}.{}>", p.id, p.serial),
        _ => String::new(),
    }
}

fn u(t: &Term) -> u64 {
    eterm::as_i64(t).unwrap_or(0).max(0) as u64
}

/// `{Id, Rank, {Rc, Ro, Sc, So}, {Name, Owner, OwnerName, Queue, Mem, Local, Remote}}`
fn decode_row(t: &Term) -> Option<PortRow> {
    let [id, _rank, counters, detail] = eterm::as_tuple(t)? else {
        return None;
    };
    let [rc, ro, sc, so] = eterm::as_tuple(counters)? else {
        return None;
    };
    let [name, owner, owner_name, queue, mem, local, remote] = eterm::as_tuple(detail)? else {
        return None;
    };
    let id = match eterm::as_tuple(id)? {
        [_, inner] => eterm::id_text(inner),
        _ => return None,
    };
    let name = match eterm::as_tuple(name) {
        // {socket, Type, Protocol} for socket-module sockets.
        Some([_, ty, proto]) => format!(
            "socket {} {}",
            eterm::as_atom(ty).unwrap_or("?"),
            eterm::as_atom(proto).unwrap_or("?")
        ),
        _ => eterm::as_text(name).unwrap_or_default(),
    };
    Some(PortRow {
        id,
        name,
        owner: owner_text(owner, owner_name),
        local: eterm::as_text(local).unwrap_or_default(),
        remote: eterm::as_text(remote).unwrap_or_default(),
        recv_cnt: u(rc),
        recv_oct: u(ro),
        send_cnt: u(sc),
        send_oct: u(so),
        queue_bytes: u(queue),
        memory_bytes: u(mem),
    })
}

pub struct PortShaper {
    pub sort: PortSort,
    pub baseline_first: bool,
    clock: ReplyClock,
}

impl PortShaper {
    pub fn new(sort: PortSort, once: bool) -> PortShaper {
        PortShaper {
            sort,
            baseline_first: once,
            clock: ReplyClock::default(),
        }
    }
}

impl Shaper for PortShaper {
    type Sample = Reply;
    fn shape(&mut self, r: Reply) -> Option<Box<dyn Renderable>> {
        let window = self.clock.window(&r);
        if window.is_none() && self.baseline_first {
            return None;
        }
        let h = reply_header(&r.info);
        let rows = reply_rows(&r.info, decode_row);
        Some(Box::new(PortFrame {
            node: h.node,
            clock: h.clock.map(|c| c.to_string()),
            ports: h.count,
            sort: self.sort,
            window_secs: window,
            cost_ms: h.cost_ms,
            agent_heap_bytes: h.heap_bytes,
            agent_heap_limit_bytes: h.heap_limit_bytes,
            rows,
        }))
    }
}

const TITLES: [&str; 11] = [
    "Port", "Name", "Owner", "Local", "Remote", "RecvCnt", "RecvOct", "SendCnt", "SendOct",
    "Queue", "Memory",
];

impl Renderable for PortFrame {
    fn text(&self, width: usize, max_rows: usize) -> String {
        let window = match self.window_secs {
            Some(w) => format!("traffic over {w:.1} s"),
            None => "traffic: totals (first frame)".to_string(),
        };
        let head = format!(
            "{}  {}  {} ports  sorted by {}  {}",
            self.node,
            self.clock.as_deref().unwrap_or(""),
            self.ports,
            serde_json::to_value(self.sort)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            window
        );
        // Fixed numeric columns; the text columns share what is left.
        let text_w = width.saturating_sub(11 + 8 * 6 + 2 * 10) / 4;
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .take(max_rows)
            .map(|r| {
                vec![
                    r.id.clone(),
                    render::truncate(&r.name, text_w.max(8)),
                    render::truncate(&r.owner, text_w.max(8)),
                    render::truncate(&r.local, text_w.max(8)),
                    render::truncate(&r.remote, text_w.max(8)),
                    r.recv_cnt.to_string(),
                    human_bytes(r.recv_oct),
                    r.send_cnt.to_string(),
                    human_bytes(r.send_oct),
                    human_bytes(r.queue_bytes),
                    human_bytes(r.memory_bytes),
                ]
            })
            .collect();
        let table = render::simple_table(&TITLES, &rows, &[5, 6, 7, 8, 9, 10]);
        format!("{}\n\n{}", render::truncate(&head, width), table)
    }
    fn csv_header(&self) -> String {
        "time,node,port,name,owner,local,remote,recv_cnt,recv_oct,send_cnt,send_oct,queue_bytes,memory_bytes".into()
    }
    fn csv(&self) -> String {
        self.rows
            .iter()
            .map(|r| {
                render::csv_line(&[
                    self.clock.clone().unwrap_or_default(),
                    self.node.clone(),
                    r.id.clone(),
                    r.name.clone(),
                    r.owner.clone(),
                    r.local.clone(),
                    r.remote.clone(),
                    r.recv_cnt.to_string(),
                    r.recv_oct.to_string(),
                    r.send_cnt.to_string(),
                    r.send_oct.to_string(),
                    r.queue_bytes.to_string(),
                    r.memory_bytes.to_string(),
                ])
            })
            .collect()
    }
    fn json(&self) -> String {
        crate::escape::json(self)
    }
    fn note(&self) -> String {
        render::cost_note(
            self.cost_ms,
            self.agent_heap_bytes,
            self.agent_heap_limit_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eterm::list;

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
