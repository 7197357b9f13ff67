//! The collect stage: one connection and its agent, one request per frame,
//! rebuilt after the node restarts. Frames are computed on the node against
//! state it keeps from the previous frame; only a reply that arrived moves
//! that state on.

use super::detail::{ProcDetail, decode_detail};
use super::sample::{Sample, decode_sample};
use super::{Agent, SampleRequest, SortKey};
use crate::dist::term::{self, Term};
use crate::dist::{ConnectOpts, Connection};
use crate::error::{Error, Result};
use std::time::Duration;

/// The views whose frames the agent computes against state it keeps from
/// the previous frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Procs,
    Ports,
    Ets,
}

/// A connection plus its agent, and what is needed to rebuild them.
pub struct Collector {
    opts: ConnectOpts,
    heap_limit_bytes: u64,
    live: Option<(Connection, Agent)>,
    epoch: u64,
    /// Per view, the `frame` number of the last reply received on this
    /// connection: the state the next frame's deltas must be computed from.
    bases: std::collections::HashMap<View, i64>,
    /// Say on stderr when a new connection replaces a lost one (`-v`, when
    /// frames are not repainted).
    say_reconnects: bool,
}

impl Collector {
    /// Connects and starts the agent; errors here are reported as they are
    /// (wrong cookie, unknown node...), since nothing has been shown yet.
    pub fn connect(opts: ConnectOpts, heap_limit_bytes: u64) -> Result<Collector> {
        let mut c = Collector::unconnected(opts, heap_limit_bytes);
        c.ensure()?;
        Ok(c)
    }

    /// A collector that connects on its first request (or `attach`): one
    /// node of a cluster, which may be down when the session starts.
    pub fn unconnected(opts: ConnectOpts, heap_limit_bytes: u64) -> Collector {
        Collector {
            opts,
            heap_limit_bytes,
            live: None,
            epoch: 0,
            bases: Default::default(),
            say_reconnects: false,
        }
    }

    /// Connects and starts the agent unless already attached.
    pub fn attach(&mut self) -> Result<()> {
        self.ensure().map(|_| ())
    }

    /// The visible nodes this node is connected to, or the hidden ones (see
    /// `agent::connected_nodes`).
    pub fn connected_nodes(&mut self, hidden: bool, timeout: Duration) -> Result<Vec<String>> {
        let (conn, _) = self.ensure()?;
        let r = super::connected_nodes(conn, hidden, timeout);
        if matches!(r, Err(Error::ConnectionLost { .. })) {
            self.live = None;
        }
        r
    }

    fn ensure(&mut self) -> Result<&mut (Connection, Agent)> {
        if self.live.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.live = None;
        }
        if self.live.is_none() {
            let mut conn = Connection::connect(&self.opts)?;
            let agent = Agent::start(&mut conn, self.heap_limit_bytes)?;
            self.epoch += 1;
            self.bases.clear();
            if self.say_reconnects && self.epoch > 1 {
                crate::text::say(format!(
                    "reconnected to {} as hidden node {} (connection {})",
                    conn.peer, conn.ours, self.epoch
                ));
            }
            self.live = Some((conn, agent));
        }
        self.live
            .as_mut()
            .ok_or_else(|| Error::Usage("internal: no connection".into()))
    }

    /// Say on stderr each time a new connection replaces a lost one.
    pub fn say_reconnects(&mut self, on: bool) {
        self.say_reconnects = on;
    }

    pub fn peer(&self) -> String {
        match &self.live {
            Some((c, _)) => c.peer.clone(),
            None => self.opts.target.to_string(),
        }
    }

    /// Our node name on the current connection.
    pub fn ours(&self) -> String {
        self.live
            .as_ref()
            .map(|(c, _)| c.ours.clone())
            .unwrap_or_default()
    }

    /// Bytes received and sent on the current connection.
    pub fn traffic(&self) -> (u64, u64) {
        self.live
            .as_ref()
            .map(|(c, _)| c.traffic())
            .unwrap_or((0, 0))
    }

    /// Messages the current connection dropped (see `dist::Dropped`).
    pub fn dropped(&self) -> crate::dist::Dropped {
        self.live
            .as_ref()
            .map(|(c, _)| c.dropped())
            .unwrap_or_default()
    }

    /// One `--stats-file` line: what the node reported the frame cost (wall
    /// time, frame heap), and this connection's bytes and dropped messages.
    pub fn stats(
        &self,
        node_cost_us: Option<i64>,
        heap_bytes: Option<i64>,
        ok: bool,
    ) -> serde_json::Value {
        let (rx, tx) = self.traffic();
        serde_json::json!({
            "node_cost_us": node_cost_us,
            "heap_bytes": heap_bytes,
            "rx_bytes": rx,
            "tx_bytes": tx,
            "dropped": self.dropped(),
            "ok": ok,
        })
    }

    /// One sample. A lost connection is dropped so that the next call
    /// reconnects (a restarted node gets a fresh agent and a new epoch).
    pub fn sample(&mut self, req: &SampleRequest, timeout: Duration) -> Result<Sample> {
        let (info, epoch) = self.frame(View::Procs, |base| req.term(base), timeout, "a sample")?;
        decode_sample(&info, req.key, epoch).ok_or_else(|| Error::Remote {
            node: self.peer(),
            what: "a sample".into(),
            detail: "unexpected reply shape".into(),
        })
    }

    /// One sample ranked by `key` that neither uses nor moves the state the
    /// view's frames are computed from: the agent answers from a fresh scan
    /// (totals, never a delta), and the next `sample` still finds the
    /// reductions window of the one before. For several sorts in one frame.
    pub fn snapshot(&mut self, key: SortKey, lines: usize, timeout: Duration) -> Result<Sample> {
        self.snapshot_of(&SampleRequest::new(key, lines, false), timeout)
    }

    /// [`snapshot`](Self::snapshot) for a request of its own (a filter);
    /// its `delta` is not used.
    pub fn snapshot_of(&mut self, req: &SampleRequest, timeout: Duration) -> Result<Sample> {
        let key = req.key;
        let req = SampleRequest {
            delta: false,
            ..req.clone()
        }
        .term(0);
        let (info, epoch) = self.request(req, timeout, "a sample")?;
        decode_sample(&info, key, epoch).ok_or_else(|| Error::Remote {
            node: self.peer(),
            what: "a sample".into(),
            detail: "unexpected reply shape".into(),
        })
    }

    /// One process in detail (`pid` as `<0.123.0>`), its first `n` links,
    /// monitors and stack frames. The node gives it at most `bound`; a
    /// process that takes longer is `Error::SlowProcess`.
    pub fn detail(
        &mut self,
        pid: &str,
        n: usize,
        bound: Duration,
        timeout: Duration,
    ) -> Result<ProcDetail> {
        let req = crate::agent::detail_request(pid, n, bound.as_millis() as u64);
        let (info, _) = self.request(req, timeout, "a process detail")?;
        decode_detail(&info).ok_or_else(|| Error::Remote {
            node: self.peer(),
            what: "a process detail".into(),
            detail: "unexpected reply shape".into(),
        })
    }

    /// One frame of `view`: the request names the frame whose state it is
    /// computed against, and only a reply that arrived moves that on, so a
    /// reply etop gave up waiting for never becomes the base of a window.
    pub fn frame(
        &mut self,
        view: View,
        make: impl FnOnce(i64) -> Term,
        timeout: Duration,
        what: &str,
    ) -> Result<(Term, u64)> {
        // Connect first: a reconnection clears the bases.
        self.ensure()?;
        let base = self.bases.get(&view).copied().unwrap_or(0);
        let (info, epoch) = self.request(make(base), timeout, what)?;
        if let Some(frame) = term::map_get(&info, "frame").and_then(term::as_i64) {
            self.bases.insert(view, frame);
        }
        Ok((info, epoch))
    }

    /// Sends any agent request (ports, ets, msacc); returns `Info` of
    /// `{ok, Info}` and the connection's epoch.
    pub fn request(&mut self, req: Term, timeout: Duration, what: &str) -> Result<(Term, u64)> {
        let (conn, agent) = self.ensure()?;
        match agent.call(conn, req, timeout, what) {
            Ok(info) => Ok((info, self.epoch)),
            Err(e) => {
                if matches!(e, Error::ConnectionLost { .. }) {
                    self.live = None;
                }
                Err(e)
            }
        }
    }

    /// True when there is no live connection (it closed or was dropped).
    pub fn is_closed(&self) -> bool {
        self.live.as_ref().is_none_or(|(c, _)| c.is_closed())
    }

    /// Stops the agent and closes the connection.
    pub fn close(&mut self) {
        if let Some((mut conn, agent)) = self.live.take() {
            agent.stop(&mut conn);
        }
    }
}
