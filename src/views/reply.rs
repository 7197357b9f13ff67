//! The shape shared by the views whose whole sample is one agent reply
//! (ports, ETS): a feed that asks for it, a clock for the window between
//! replies, and one shaper that decodes the rows, fills the columns and
//! writes the header.

use super::column::{Cell, Column, Grid};
use super::{Feed, Frame, Shaper};
use crate::agent::collector::{Collector, View};
use crate::agent::sample::{Reply, ReplyHeader, node_started, reply_header, reply_rows, window};
use crate::dist::term::{self, Term};
use crate::error::Result;
use crate::views::restart::{Incarnation, Restarts};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// Asks for one reply per frame.
pub struct RequestFeed {
    pub collector: Collector,
    pub view: View,
    /// Builds the request from the base frame number.
    pub request: Box<dyn Fn(i64) -> Term + Send>,
    pub timeout: Duration,
    pub what: &'static str,
}

impl Feed for RequestFeed {
    type Sample = Reply;
    fn sample(&mut self) -> Result<Reply> {
        let (info, epoch) =
            self.collector
                .frame(self.view, &self.request, self.timeout, self.what)?;
        Ok(Reply {
            info,
            epoch,
            taken_at: Instant::now(),
        })
    }
    fn close(&mut self) {
        self.collector.close();
    }
    fn stats(&self, r: &Result<Reply>) -> Option<Value> {
        let num = |k: &str| {
            r.as_ref()
                .ok()
                .and_then(|r| term::map_get(&r.info, k))
                .and_then(term::as_i64)
        };
        Some(
            self.collector
                .stats(num("cost_us"), num("heap_bytes"), r.is_ok()),
        )
    }
}

/// The window between consecutive replies of one connection: a reply from
/// a new connection (a restarted node) starts over, since the agent's
/// counters started over too.
#[derive(Debug, Default)]
pub struct ReplyClock {
    prev: Option<(u64, Instant, Option<i64>)>,
}

impl ReplyClock {
    /// Seconds since the previous reply; `None` when the reply holds totals
    /// (a first one, or one computed without the previous frame's state).
    pub fn window(&mut self, r: &Reply) -> Option<f64> {
        let now = (r.taken_at, r.node_mono_us());
        let w = self
            .prev
            .filter(|(epoch, _, _)| *epoch == r.epoch && r.is_delta())
            .map(|(_, at, mono)| window(now, (at, mono)).as_secs_f64());
        self.prev = Some((r.epoch, now.0, now.1));
        w
    }
}

/// What a reply view adds to the shared shape.
pub trait ReplyView {
    type Row: 'static;
    /// The table's columns.
    fn columns(&self) -> &'static [Column<Self::Row>];
    fn decode_row(t: &Term) -> Option<Self::Row>;
    /// The first line of the frame, and the frame's own JSON fields (beside
    /// node, clock, window, cost and rows, which every reply view has).
    fn head(
        &self,
        h: &ReplyHeader,
        window: Option<f64>,
        info: &Term,
    ) -> (String, Map<String, Value>);
    /// Where a row ranks against rows of other nodes, in the order the agent
    /// ranked it (views that merge several nodes); `None` ranks last.
    fn rank(&self, _row: &Self::Row) -> Option<i64> {
        None
    }
    /// What a node's line of the cluster strip shows besides its name and
    /// state: (title, JSON key, value); counts and bytes add up to the
    /// cluster's totals.
    fn strip(&self, h: &ReplyHeader, _info: &Term) -> Vec<(&'static str, &'static str, Cell)> {
        vec![("Count", "count", Cell::Count(Some(h.count)))]
    }
}

/// The shaper of every reply view.
pub struct ReplyShaper<V> {
    pub view: V,
    /// One-shot runs show a real window: the first reply is a baseline.
    pub baseline_first: bool,
    clock: ReplyClock,
    restarts: Restarts,
}

impl<V: ReplyView> ReplyShaper<V> {
    pub fn new(view: V, once: bool) -> ReplyShaper<V> {
        ReplyShaper {
            view,
            baseline_first: once,
            clock: ReplyClock::default(),
            restarts: Restarts::default(),
        }
    }
}

impl<V: ReplyView> Shaper for ReplyShaper<V> {
    type Sample = Reply;
    fn shape(&mut self, r: Reply) -> Option<Frame> {
        let window = self.clock.window(&r);
        if window.is_none() && self.baseline_first {
            return None;
        }
        let h = reply_header(&r.info);
        let reconnect = self.restarts.observe(Incarnation {
            epoch: r.epoch,
            started: node_started(h.clock, h.mono_us, h.start_us),
            os_pid: None,
        });
        let rows = reply_rows(&r.info, V::decode_row);
        let grid = Grid::new(self.view.columns(), &rows);
        let (line, own) = self.view.head(&h, window, &r.info);
        let clock = h.clock.map(|c| c.to_string());
        let mut json = Map::new();
        json.insert("node".into(), h.node.clone().into());
        json.insert("clock".into(), clock.clone().into());
        json.extend(own);
        json.insert("window_secs".into(), window.into());
        json.insert("cost_ms".into(), h.cost_ms.into());
        json.insert("agent_heap_bytes".into(), h.heap_bytes.into());
        json.insert("agent_heap_limit_bytes".into(), h.heap_limit_bytes.into());
        json.insert("epoch".into(), r.epoch.into());
        json.insert("reconnected".into(), reconnect.first.into());
        json.insert("rows".into(), grid.json_rows().into());
        let mut header = vec![line];
        header.extend(reconnect.notice);
        Some(Frame {
            header,
            csv_prefix: vec![("time", clock.unwrap_or_default()), ("node", h.node)],
            grids: vec![grid],
            json: Value::Object(json),
            note: super::cost_note(h.cost_ms, h.heap_bytes, h.heap_limit_bytes),
            id_column: None,
            footer: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::sample::ReplyHeader;
    use crate::dist::term::{Map as TermMap, atom, int, list, tuple};
    use crate::views::column::Cell;

    struct Empty;

    static NO_COLUMNS: [Column<()>; 1] = [Column::text("X", "x", |_| Cell::text(""))];

    impl ReplyView for Empty {
        type Row = ();
        fn columns(&self) -> &'static [Column<()>] {
            &NO_COLUMNS
        }
        fn decode_row(_: &Term) -> Option<()> {
            None
        }
        fn head(&self, h: &ReplyHeader, _: Option<f64>, _: &Term) -> (String, Map<String, Value>) {
            (h.node.clone(), Map::new())
        }
    }

    /// A reply of a node that started `up_secs` before 12:00:00.
    fn reply(epoch: u64, up_secs: i64) -> Reply {
        let info: Term = TermMap::from([
            (atom("node"), atom("n@h")),
            (
                atom("time"),
                tuple(vec![
                    tuple(vec![int(2026), int(1), int(2)]),
                    tuple(vec![int(12), int(0), int(0)]),
                ]),
            ),
            (atom("mono_us"), int(up_secs * 1_000_000 + 5)),
            (atom("start_us"), int(5)),
            (atom("delta"), atom("true")),
            (atom("rows"), list(vec![])),
        ])
        .into();
        Reply {
            info,
            epoch,
            taken_at: Instant::now(),
        }
    }

    #[test]
    fn a_reply_view_says_when_it_reconnected_to_a_restarted_node() {
        let mut s = ReplyShaper::new(Empty, false);
        let f = s.shape(reply(1, 3600)).unwrap();
        assert_eq!(
            (f.json["epoch"].as_u64(), f.json["reconnected"].as_bool()),
            (Some(1), Some(false))
        );
        assert_eq!(f.header.len(), 1);
        let f = s.shape(reply(2, 30)).unwrap();
        assert_eq!(
            (f.json["epoch"].as_u64(), f.json["reconnected"].as_bool()),
            (Some(2), Some(true))
        );
        assert_eq!(f.header[1], "node restarted at 11:59:30; reconnected");
        let f = s.shape(reply(2, 31)).unwrap();
        assert_eq!(f.json["reconnected"], false);
        assert_eq!(f.header[1], "node restarted at 11:59:30; reconnected");
    }
}
