//! The collect stage for many nodes: one `Collector` per node, each driven
//! by a thread of its own, attached with at most `ATTACHING_AT_ONCE`
//! connecting at once. A frame asks every idle node at once and waits until
//! its deadline; an answer that comes later is shown the frame after. The
//! nodes watched are the ones named, or the entry node and the nodes it is
//! connected to, read again every frame.

use super::collector::Collector;
use crate::dist::ConnectOpts;
use crate::error::{Error, Result};
use crate::node::{NameMode, NodeName};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How many nodes may be connecting (EPMD, handshake, agent) at once.
pub const ATTACHING_AT_ONCE: usize = 8;

/// The most nodes one session watches: nodes a cluster lists beyond it are
/// left out (and counted), so that no node can make etop open connections
/// and threads without end.
pub const MAX_WATCHED: usize = 1000;

/// How long a node waits before the next attempt after a failure that
/// retrying cannot soon fix (it rejects our cookie or our name): each attempt
/// is a line in that node's log.
pub const REJECTED_RETRY: Duration = Duration::from_secs(60);

/// Each node's thread attaches (encoding the agent's parsed source, a deep
/// term) and collects, as a single node's collector thread does, with the
/// same stack; only the pages it touches are resident.
const WORKER_STACK_BYTES: usize = 2 << 20;

/// What a frame asks of each node, run on that node's thread.
pub type Ask<T> = Arc<dyn Fn(&mut Collector) -> Result<T> + Send + Sync>;

/// Which nodes are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The nodes named on the command line, and only these.
    Named,
    /// The entry node and the nodes it is connected to: visible ones, and
    /// hidden ones too when `hidden` (never another etop session's).
    Connected { hidden: bool },
}

/// What to attach to.
pub struct Plan {
    /// How to reach the entry node; the nodes it is connected to are reached
    /// as it reaches them: with its cookie, EPMD port and TLS files, our name
    /// and its timeouts, through EPMD.
    pub entry: ConnectOpts,
    /// How to reach the more nodes named on the command line.
    pub named: Vec<ConnectOpts>,
    pub membership: Membership,
    pub heap_limit_bytes: u64,
    /// How long reading a node's connected nodes may take.
    pub timeout: Duration,
    /// A node no longer connected to the cluster and silent this long is
    /// dropped from the view (nodes named on the command line never are).
    pub forget_after: Duration,
}

/// How a node did this frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Answered before the frame's deadline.
    Answered,
    /// Its answer to an earlier frame came after that frame's deadline; it
    /// is shown in this one.
    Late,
    /// Attached, asked, and no answer yet.
    Slow,
    /// Being attached for the first time.
    Attaching,
    /// The last attempt failed (connect, agent or request): why. Retried
    /// every frame, or after `REJECTED_RETRY` for a rejection.
    Failed(String),
}

impl NodeState {
    /// Whether the frame has an answer from the node.
    pub fn answered(&self) -> bool {
        matches!(self, NodeState::Answered | NodeState::Late)
    }
}

/// One node in one frame.
pub struct NodeReport<T> {
    /// `name@host`.
    pub name: String,
    pub state: NodeState,
    /// The node's newest answer not reported before.
    pub answer: Option<T>,
    /// An older answer that came late and was overtaken by `answer`: not
    /// shown, but the baseline `answer`'s rates are computed from.
    pub earlier: Option<T>,
    /// Still connected to the cluster (always, for named nodes).
    pub listed: bool,
    /// Since the node last answered (or was added, if it never has).
    pub silent: Duration,
}

/// One frame of the cluster: every node, by name.
pub struct Round<T> {
    pub nodes: Vec<NodeReport<T>>,
    /// Nodes added since the previous frame (they joined the cluster).
    pub joined: Vec<String>,
    /// Nodes dropped since the previous frame (gone from the cluster).
    pub forgotten: Vec<String>,
    /// Nodes the cluster lists that are not watched: past `MAX_WATCHED`.
    pub unwatched: usize,
}

enum Job<T> {
    Frame {
        seq: u64,
        ask: Ask<T>,
        /// Also read the node's connected nodes (hidden ones too when true).
        members: Option<bool>,
    },
    Stop,
}

enum Outcome<T> {
    /// The first attach: the node's name as it gave it in the handshake.
    Attached(Result<String>),
    Frame(Result<T>),
    Closed,
}

struct Done<T> {
    name: String,
    seq: u64,
    outcome: Outcome<T>,
    members: Option<Result<Vec<String>>>,
}

/// A counting semaphore: connections being set up at once.
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Permit<'a>(&'a Permits);

impl Permits {
    fn new(n: usize) -> Permits {
        Permits {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// Whether a hidden node is another etop session (its default name is
/// `etop_<user>`): never attached to.
pub fn is_etop_session(node: &str) -> bool {
    node.split('@')
        .next()
        .is_some_and(|n| n.starts_with("etop_"))
}

/// Whether `node` is one of our own names (`base`, or `base_N` when taken).
fn is_ours(node: &str, base: &str) -> bool {
    let name = node.split('@').next().unwrap_or_default();
    name == base
        || name
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The nodes `c`'s node is connected to, without etop sessions and us.
fn read_members(
    c: &mut Collector,
    hidden: bool,
    timeout: Duration,
    ours: &str,
) -> Result<Vec<String>> {
    let mut names = c.connected_nodes(false, timeout)?;
    if hidden {
        let more = c.connected_nodes(true, timeout)?;
        names.extend(more.into_iter().filter(|n| !is_etop_session(n)));
    }
    names.retain(|n| !is_ours(n, ours));
    Ok(names)
}

struct Worker {
    name: String,
    collector: Collector,
    permits: Arc<Permits>,
    timeout: Duration,
    ours: String,
}

impl Worker {
    /// Connects unless attached, one of `ATTACHING_AT_ONCE` at a time.
    fn attach(&mut self) -> Result<()> {
        if self.collector.is_closed() {
            let _permit = self.permits.acquire();
            self.collector.attach()?;
        }
        Ok(())
    }

    fn members(&mut self, hidden: Option<bool>) -> Option<Result<Vec<String>>> {
        let h = hidden?;
        Some(read_members(
            &mut self.collector,
            h,
            self.timeout,
            &self.ours,
        ))
    }

    fn run<T>(
        mut self,
        first_members: Option<bool>,
        jobs: mpsc::Receiver<Job<T>>,
        done: mpsc::Sender<Done<T>>,
    ) {
        let name = self.name.clone();
        let attached = self.attach().map(|()| self.collector.peer());
        let members = match attached {
            Ok(_) => self.members(first_members),
            Err(_) => None,
        };
        let mut open = done
            .send(Done {
                name: name.clone(),
                seq: 0,
                outcome: Outcome::Attached(attached),
                members,
            })
            .is_ok();
        while open {
            let Ok(Job::Frame { seq, ask, members }) = jobs.recv() else {
                break;
            };
            let result = self.attach().and_then(|()| ask(&mut self.collector));
            let members = match result {
                Ok(_) => self.members(members),
                Err(_) => None,
            };
            open = done
                .send(Done {
                    name: name.clone(),
                    seq,
                    outcome: Outcome::Frame(result),
                    members,
                })
                .is_ok();
        }
        self.collector.close();
        let _ = done.send(Done {
            name,
            seq: 0,
            outcome: Outcome::Closed,
            members: None,
        });
    }
}

struct Member<T> {
    jobs: mpsc::Sender<Job<T>>,
    /// The entry node or named on the command line: never forgotten.
    pinned: bool,
    listed: bool,
    /// Attached at least once.
    attached: bool,
    /// A job is out since then (the first attach, or a frame).
    busy_since: Option<Instant>,
    retry_at: Instant,
    error: Option<String>,
    /// The newest answer not reported yet, and whether it was on time.
    answer: Option<(T, bool)>,
    earlier: Option<T>,
    last_answer: Option<Instant>,
    added: Instant,
}

/// Every node watched, and their threads.
pub struct Cluster<T> {
    entry_opts: ConnectOpts,
    membership: Membership,
    heap_limit_bytes: u64,
    timeout: Duration,
    forget_after: Duration,
    entry: String,
    members: BTreeMap<String, Member<T>>,
    permits: Arc<Permits>,
    done_tx: mpsc::Sender<Done<T>>,
    done_rx: mpsc::Receiver<Done<T>>,
    seq: u64,
    joined: Vec<String>,
    forgotten: Vec<String>,
    unwatched: usize,
    /// Errors of the first attach, kept whole (with their exit codes) in case
    /// no node can be attached.
    first_errors: Vec<(String, Error)>,
}

impl<T: Send + 'static> Cluster<T> {
    /// Attaches to the entry node and, with `Membership::Connected`, reads its
    /// connected nodes; then attaches to every node at once (bounded) and
    /// waits for them within a few connect timeouts. Fails as a single-node
    /// session would when the entry node (with `Connected`) or every node
    /// (with `Named`) cannot be attached.
    pub fn start(plan: Plan) -> Result<Cluster<T>> {
        let (done_tx, done_rx) = mpsc::channel();
        let entry = plan.entry.target.to_string();
        let mut c = Cluster {
            entry_opts: plan.entry.clone(),
            membership: plan.membership,
            heap_limit_bytes: plan.heap_limit_bytes,
            timeout: plan.timeout,
            forget_after: plan.forget_after,
            entry: entry.clone(),
            members: BTreeMap::new(),
            permits: Arc::new(Permits::new(ATTACHING_AT_ONCE)),
            done_tx,
            done_rx,
            seq: 0,
            joined: Vec::new(),
            forgotten: Vec::new(),
            unwatched: 0,
            first_errors: Vec::new(),
        };
        let setup = plan.entry.timeout * 3 + Duration::from_secs(10);
        let deadline = Instant::now() + setup;
        match plan.membership {
            Membership::Connected { hidden } => {
                c.add(entry.clone(), plan.entry, true, Some(hidden))?;
                c.wait_attached(deadline);
                if let Some(i) = c.first_errors.iter().position(|(n, _)| *n == entry) {
                    let (_, e) = c.first_errors.swap_remove(i);
                    c.close();
                    return Err(e);
                }
                if !c.members.get(&entry).is_some_and(|m| m.attached) {
                    c.close();
                    return Err(Error::Timeout {
                        node: entry,
                        what: "etop's setup".into(),
                        secs: setup.as_secs_f64(),
                    });
                }
            }
            Membership::Named => {
                c.add(entry, plan.entry, true, None)?;
                for opts in plan.named {
                    c.add(opts.target.to_string(), opts, true, None)?;
                }
            }
        }
        c.wait_attached(deadline);
        if c.members.values().all(|m| !m.attached) && !c.first_errors.is_empty() {
            // The entry node's own error, else the first to come.
            let i = c
                .first_errors
                .iter()
                .position(|(n, _)| *n == c.entry)
                .unwrap_or(0);
            let (_, e) = c.first_errors.swap_remove(i);
            c.close();
            return Err(e);
        }
        c.first_errors.clear();
        c.joined.clear();
        Ok(c)
    }

    /// The entry node's name as given.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Options for a node the cluster lists: the entry's cookie, EPMD port,
    /// TLS files and our name, found through EPMD, as the entry node itself
    /// reaches it.
    fn opts_for(&self, target: NodeName, mode: NameMode) -> ConnectOpts {
        ConnectOpts {
            target,
            mode,
            port: None,
            ..self.entry_opts.clone()
        }
    }

    /// Starts a node's thread, which attaches at once.
    fn add(
        &mut self,
        name: String,
        opts: ConnectOpts,
        pinned: bool,
        first_members: Option<bool>,
    ) -> Result<()> {
        if self.members.contains_key(&name) {
            return Ok(());
        }
        let (jobs, rx) = mpsc::channel();
        let worker = Worker {
            name: name.clone(),
            collector: Collector::unconnected(opts, self.heap_limit_bytes),
            permits: self.permits.clone(),
            timeout: self.timeout,
            ours: self.entry_opts.our_name.clone(),
        };
        let done = self.done_tx.clone();
        std::thread::Builder::new()
            .name("etop-node".into())
            .stack_size(WORKER_STACK_BYTES)
            .spawn(move || worker.run(first_members, rx, done))?;
        let now = Instant::now();
        self.members.insert(
            name,
            Member {
                jobs,
                pinned,
                listed: true,
                attached: false,
                busy_since: Some(now),
                retry_at: now,
                error: None,
                answer: None,
                earlier: None,
                last_answer: None,
                added: now,
            },
        );
        Ok(())
    }

    /// Waits until no node is still on its first attach, or `deadline`.
    fn wait_attached(&mut self, deadline: Instant) {
        while self
            .members
            .values()
            .any(|m| !m.attached && m.busy_since.is_some())
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done_rx.recv_timeout(left) {
                Ok(d) => self.handle(d),
                Err(_) => break,
            }
        }
    }

    fn handle(&mut self, d: Done<T>) {
        let now = Instant::now();
        let current = self.seq;
        let Some(m) = self.members.get_mut(&d.name) else {
            return;
        };
        match d.outcome {
            Outcome::Attached(r) => {
                m.busy_since = None;
                match r {
                    Ok(_) => {
                        m.attached = true;
                        m.error = None;
                    }
                    Err(e) => {
                        m.failed(&e, now);
                        self.first_errors.push((d.name.clone(), e));
                    }
                }
            }
            Outcome::Frame(r) => {
                m.busy_since = None;
                match r {
                    Ok(v) => {
                        if let Some((old, _)) = m.answer.take() {
                            m.earlier = Some(old);
                        }
                        m.answer = Some((v, d.seq == current));
                        m.attached = true;
                        m.error = None;
                        m.last_answer = Some(now);
                    }
                    Err(e) => m.failed(&e, now),
                }
            }
            Outcome::Closed => {}
        }
        if let Some(Ok(names)) = d.members {
            self.update_membership(&d.name, names);
        }
    }

    /// The nodes `source` is connected to, and `source` itself, are listed;
    /// the ones new to us are attached (they are asked from the next frame).
    fn update_membership(&mut self, source: &str, names: Vec<String>) {
        let listed: HashSet<&str> = names.iter().map(String::as_str).chain([source]).collect();
        for (name, m) in self.members.iter_mut() {
            m.listed = listed.contains(name.as_str());
        }
        let mode = self.entry_opts.mode;
        let host = crate::host::short_hostname();
        self.unwatched = 0;
        for name in names {
            if self.members.contains_key(&name) {
                continue;
            }
            if self.members.len() >= MAX_WATCHED {
                self.unwatched += 1;
                continue;
            }
            // A name that does not parse is not one a node can have.
            let Ok(target) = NodeName::parse(&name, &host) else {
                continue;
            };
            let opts = self.opts_for(target, mode);
            if self.add(name.clone(), opts, false, None).is_ok() {
                self.joined.push(name);
            }
        }
    }

    /// The node asked for the cluster's members this frame: the entry node,
    /// or while it is away, the first node that is attached and idle.
    fn source(&self) -> Option<(String, bool)> {
        let Membership::Connected { hidden } = self.membership else {
            return None;
        };
        let ready = |m: &Member<T>| m.attached && m.busy_since.is_none() && m.error.is_none();
        if self.members.get(&self.entry).is_some_and(ready) {
            return Some((self.entry.clone(), hidden));
        }
        self.members
            .iter()
            .find(|(_, m)| ready(m))
            .map(|(n, _)| (n.clone(), hidden))
    }

    /// Drops nodes gone from the cluster and silent for `forget_after`.
    fn forget(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                !m.pinned
                    && !m.listed
                    && now.saturating_duration_since(m.last_answer.unwrap_or(m.added))
                        >= self.forget_after
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            if let Some(m) = self.members.remove(&name) {
                // The thread ends after its current job and detaches.
                let _ = m.jobs.send(Job::Stop);
            }
            self.forgotten.push(name);
        }
    }

    /// One frame: asks every idle node, waits for their answers until
    /// `wait` has passed (or all have answered), and reports every node.
    pub fn frame(&mut self, ask: &Ask<T>, wait: Duration) -> Round<T> {
        let start = Instant::now();
        let deadline = start + wait;
        self.seq += 1;
        while let Ok(d) = self.done_rx.try_recv() {
            self.handle(d);
        }
        self.forget(start);
        let source = self.source();
        let seq = self.seq;
        let mut asked = Vec::new();
        for (name, m) in self.members.iter_mut() {
            if m.busy_since.is_some() || m.retry_at > start {
                continue;
            }
            let members = source
                .as_ref()
                .and_then(|(s, hidden)| (s == name).then_some(*hidden));
            let job = Job::Frame {
                seq,
                ask: ask.clone(),
                members,
            };
            if m.jobs.send(job).is_ok() {
                m.busy_since = Some(start);
                asked.push(name.clone());
            }
        }
        let waiting = |c: &Self| {
            asked
                .iter()
                .any(|n| c.members.get(n).is_some_and(|m| m.busy_since.is_some()))
        };
        while waiting(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done_rx.recv_timeout(left) {
                Ok(d) => self.handle(d),
                Err(_) => break,
            }
        }
        self.report()
    }

    fn report(&mut self) -> Round<T> {
        let now = Instant::now();
        let nodes = self
            .members
            .iter_mut()
            .map(|(name, m)| {
                let state = match (&m.answer, m.busy_since, &m.error) {
                    (Some((_, true)), _, _) => NodeState::Answered,
                    (Some((_, false)), _, _) => NodeState::Late,
                    (None, _, Some(e)) => NodeState::Failed(e.clone()),
                    (None, Some(_), None) if m.attached => NodeState::Slow,
                    (None, _, None) => NodeState::Attaching,
                };
                NodeReport {
                    name: name.clone(),
                    state,
                    answer: m.answer.take().map(|(v, _)| v),
                    earlier: m.earlier.take(),
                    listed: m.listed,
                    silent: now.saturating_duration_since(m.last_answer.unwrap_or(m.added)),
                }
            })
            .collect();
        Round {
            nodes,
            joined: std::mem::take(&mut self.joined),
            forgotten: std::mem::take(&mut self.forgotten),
            unwatched: self.unwatched,
        }
    }

    /// Stops every node's agent and closes the connections, waiting at most
    /// a few seconds (a node busy with a frame finishes it first).
    pub fn close(&mut self) {
        let mut open = 0;
        for m in self.members.values() {
            if m.jobs.send(Job::Stop).is_ok() {
                open += 1;
            }
        }
        self.members.clear();
        let deadline = Instant::now() + Duration::from_secs(3);
        while open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done_rx.recv_timeout(left) {
                Ok(Done {
                    outcome: Outcome::Closed,
                    ..
                }) => open -= 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

impl<T> Member<T> {
    fn failed(&mut self, e: &Error, now: Instant) {
        self.error = Some(e.to_string());
        let rejected = matches!(
            e,
            Error::CookieRejected { .. }
                | Error::NotAllowed { .. }
                | Error::NamesTaken { .. }
                | Error::BadNodeName { .. }
                | Error::Usage(_)
        );
        self.retry_at = if rejected { now + REJECTED_RETRY } else { now };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etop_sessions_and_our_own_names_are_never_watched() {
        assert!(is_etop_session("etop_ops@db1"));
        assert!(is_etop_session("etop_ops_3@db1"));
        assert!(!is_etop_session("rabbit@db1"));
        assert!(!is_etop_session("etop@db1"));
        assert!(is_ours("ops@db1", "ops"));
        assert!(is_ours("ops_2@db1", "ops"));
        assert!(!is_ours("ops_x@db1", "ops"));
        assert!(!is_ours("opsy@db1", "ops"));
        assert!(!is_ours("rabbit@db1", "ops"));
    }

    #[test]
    fn permits_bound_how_many_connect_at_once() {
        let permits = Arc::new(Permits::new(2));
        let peak = Arc::new(Mutex::new((0usize, 0usize)));
        std::thread::scope(|s| {
            for _ in 0..6 {
                let (permits, peak) = (permits.clone(), peak.clone());
                s.spawn(move || {
                    let _p = permits.acquire();
                    {
                        let mut g = peak.lock().unwrap();
                        g.0 += 1;
                        g.1 = g.1.max(g.0);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    peak.lock().unwrap().0 -= 1;
                });
            }
        });
        let (now, most) = *peak.lock().unwrap();
        assert_eq!(now, 0);
        assert_eq!(most, 2);
    }
}
