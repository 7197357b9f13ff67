//! What a view says after etop reconnected: whether the node restarted
//! (and when, and as which OS process) or only the connection dropped. The
//! collector reconnects on its own and counts connections (`epoch`); this
//! turns a change of epoch into a line the frame shows for a few frames.

use crate::agent::sample::time_of_day;

/// How many frames the line stays in the header after a reconnection.
pub const NOTICE_FRAMES: u32 = 3;

/// What a frame knows of the node behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incarnation {
    /// Which connection the frame came on (1 for the first).
    pub epoch: u64,
    /// When the VM started, on its own clock (`sample::node_started`).
    pub started: Option<i64>,
    /// Its OS process, for a node on this host.
    pub os_pid: Option<u32>,
}

/// What a frame says about reconnections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconnect {
    /// The first frame after a reconnection.
    pub first: bool,
    /// The line to show, on the first frames after a reconnection.
    pub notice: Option<String>,
}

/// Follows the epochs of a view's frames.
#[derive(Debug, Default)]
pub struct Restarts {
    last: Option<Incarnation>,
    notice: Option<(String, u32)>,
}

/// Start times closer than this are the same VM: they are computed from
/// clocks read at different moments, with whole seconds.
const SAME_START_SECS: i64 = 2;

fn notice(before: &Incarnation, now: &Incarnation) -> String {
    let new_pid = match (before.os_pid, now.os_pid) {
        (Some(a), Some(b)) if a != b => Some(b),
        _ => None,
    };
    let restarted = new_pid.is_some()
        || matches!((before.started, now.started),
                    (Some(a), Some(b)) if (a - b).abs() > SAME_START_SECS);
    if restarted {
        let at = now
            .started
            .map(|s| format!(" at {}", time_of_day(s)))
            .unwrap_or_default();
        let pid = new_pid
            .map(|p| format!(" (new OS pid {p})"))
            .unwrap_or_default();
        format!("node restarted{at}{pid}; reconnected")
    } else {
        let up = now
            .started
            .map(|s| format!(" (node up since {})", time_of_day(s)))
            .unwrap_or_default();
        format!("connection lost and regained{up}; reconnected")
    }
}

impl Restarts {
    /// Takes in the next frame's incarnation.
    pub fn observe(&mut self, now: Incarnation) -> Reconnect {
        let first = match self.last {
            Some(before) if before.epoch != now.epoch => {
                self.notice = Some((notice(&before, &now), NOTICE_FRAMES));
                true
            }
            _ => false,
        };
        self.last = Some(now);
        let notice = match &mut self.notice {
            Some((text, left)) if *left > 0 => {
                *left -= 1;
                Some(text.clone())
            }
            _ => None,
        };
        Reconnect { first, notice }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(epoch: u64, started: Option<i64>, os_pid: Option<u32>) -> Incarnation {
        Incarnation {
            epoch,
            started,
            os_pid,
        }
    }

    #[test]
    fn a_restart_is_announced_for_a_few_frames() {
        let mut r = Restarts::default();
        let t0 = 1000 * 86_400 + 8 * 3600;
        assert_eq!(r.observe(inc(1, Some(t0), Some(10))), Reconnect::default());
        assert_eq!(
            r.observe(inc(1, Some(t0 + 1), Some(10))),
            Reconnect::default()
        );
        // A new VM, started at 14:23:10.
        let t1 = 1000 * 86_400 + 14 * 3600 + 23 * 60 + 10;
        let first = r.observe(inc(2, Some(t1), Some(42)));
        let want = "node restarted at 14:23:10 (new OS pid 42); reconnected";
        assert_eq!(
            first,
            Reconnect {
                first: true,
                notice: Some(want.into())
            }
        );
        for _ in 1..NOTICE_FRAMES {
            let next = r.observe(inc(2, Some(t1), Some(42)));
            assert_eq!((next.first, next.notice.as_deref()), (false, Some(want)));
        }
        assert_eq!(r.observe(inc(2, Some(t1), Some(42))), Reconnect::default());
    }

    #[test]
    fn a_dropped_connection_is_not_a_restart() {
        let mut r = Restarts::default();
        let t0 = 5 * 3600;
        r.observe(inc(1, Some(t0), None));
        let n = r.observe(inc(2, Some(t0 + 1), None));
        assert_eq!(
            n.notice.as_deref(),
            Some("connection lost and regained (node up since 05:00:01); reconnected")
        );
        // A remote node, restarted: no OS pid, its start time tells.
        let n = r.observe(inc(3, Some(t0 + 600), None));
        assert_eq!(
            n.notice.as_deref(),
            Some("node restarted at 05:10:00; reconnected")
        );
        // Nothing known but the new connection.
        let n = r.observe(inc(4, None, None));
        assert_eq!(
            n.notice.as_deref(),
            Some("connection lost and regained; reconnected")
        );
    }
}
