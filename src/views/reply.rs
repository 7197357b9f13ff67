//! The shape shared by the views whose whole sample is one agent reply
//! (ports, ETS): a feed that asks for it, a clock for the window between
//! replies, and one shaper that decodes the rows, fills the columns and
//! writes the header.

use super::column::{Column, Grid};
use super::{Feed, Frame, Shaper};
use crate::agent::collector::{Collector, View};
use crate::agent::sample::{Reply, ReplyHeader, reply_header, reply_rows, window};
use crate::dist::term::{self, Term};
use crate::error::Result;
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
}

/// The shaper of every reply view.
pub struct ReplyShaper<V> {
    pub view: V,
    /// One-shot runs show a real window: the first reply is a baseline.
    pub baseline_first: bool,
    clock: ReplyClock,
}

impl<V: ReplyView> ReplyShaper<V> {
    pub fn new(view: V, once: bool) -> ReplyShaper<V> {
        ReplyShaper {
            view,
            baseline_first: once,
            clock: ReplyClock::default(),
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
        json.insert("rows".into(), grid.json_rows().into());
        Some(Frame {
            header: vec![line],
            csv_prefix: vec![("time", clock.unwrap_or_default()), ("node", h.node)],
            grids: vec![grid],
            json: Value::Object(json),
            note: super::cost_note(h.cost_ms, h.heap_bytes, h.heap_limit_bytes),
            id_column: None,
            footer: Vec::new(),
        })
    }
}
