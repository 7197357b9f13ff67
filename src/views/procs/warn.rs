//! Warnings computed from frames etop already has, at no cost to the node:
//! a mailbox or a memory footprint that grew in each of the last frames, a
//! run queue longer than the schedulers for several frames, a count close to
//! its limit. A top shows the present; these say where it is heading.

use super::model::Row;
use super::warning::{Kind, Warning};
use crate::agent::sample::Limits;
use crate::views::growth::Growth;
use std::collections::VecDeque;

/// Growth must be seen in this many consecutive frames (so one more
/// observation than that).
pub const FRAMES: usize = 3;
/// A count above this share of its limit is a warning.
pub const LIMIT_SHARE: f64 = 0.8;

/// Keeps what the warnings need from one frame to the next.
#[derive(Debug)]
pub struct Watch {
    msgq: Growth,
    memory: Growth,
    runq: VecDeque<u64>,
}

impl Default for Watch {
    fn default() -> Watch {
        // A warning shows the observations it is based on: one more than
        // the frames of growth.
        Watch {
            msgq: Growth::new(FRAMES + 1),
            memory: Growth::new(FRAMES + 1),
            runq: VecDeque::new(),
        }
    }
}

impl Watch {
    /// Forget everything: a new connection, a node restarted, a new filter.
    pub fn reset(&mut self) {
        *self = Watch::default();
    }

    /// The warnings of the frame with these rows. A process counts only
    /// while it is in consecutive frames: growth is never assumed across a
    /// frame it was not shown in.
    pub fn observe(
        &mut self,
        rows: &[Row],
        runq: u64,
        schedulers: u32,
        limits: Option<&Limits>,
    ) -> Vec<Warning> {
        let mut out = Vec::new();
        self.msgq
            .observe(rows.iter().map(|r| (r.pid.as_str(), r.msgq)));
        self.memory
            .observe(rows.iter().map(|r| (r.pid.as_str(), r.memory_bytes)));
        for r in rows {
            for (kind, g) in [(Kind::Mailbox, &self.msgq), (Kind::Memory, &self.memory)] {
                if let Some(s) = g.get(&r.pid)
                    && s.streak() as usize >= FRAMES
                {
                    out.push(Warning {
                        kind,
                        pid: Some(r.pid.clone()),
                        name: Some(r.name.clone()),
                        values: s.recent(),
                    });
                }
            }
        }

        if schedulers > 0 {
            if self.runq.len() == FRAMES {
                self.runq.pop_front();
            }
            self.runq.push_back(runq);
            if self.runq.len() == FRAMES && self.runq.iter().all(|q| *q > schedulers as u64) {
                let mut values: Vec<u64> = self.runq.iter().copied().collect();
                values.push(schedulers as u64);
                out.push(Warning {
                    kind: Kind::RunQueue,
                    pid: None,
                    name: None,
                    values,
                });
            }
        }

        if let Some(l) = limits {
            for (name, count, limit) in l.counts() {
                if limit > 0 && count as f64 > limit as f64 * LIMIT_SHARE {
                    out.push(Warning {
                        kind: Kind::Limit,
                        pid: None,
                        name: Some(name.to_string()),
                        values: vec![count, limit],
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::procs::warning::group;

    fn row(pid: &str, msgq: u64, mem: u64) -> Row {
        Row {
            pid: pid.into(),
            name: "worker".into(),
            registered_name: None,
            initial_call: None,
            reds: None,
            reds_pct: None,
            reds_kind: None,
            memory_bytes: mem,
            heap_bytes: None,
            bin_bytes: None,
            msgq,
            current_function: String::new(),
            warn: false,
        }
    }

    #[test]
    fn a_mailbox_growing_in_three_frames_is_a_warning() {
        let mut w = Watch::default();
        for q in [10, 20, 30] {
            assert!(w.observe(&[row("<0.1.0>", q, 5)], 0, 2, None).is_empty());
        }
        let got = w.observe(&[row("<0.1.0>", 40, 5)], 0, 2, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, Kind::Mailbox);
        assert_eq!(got[0].values, vec![10, 20, 30, 40]);
        assert_eq!(
            got[0].line(),
            "<0.1.0> worker: mailbox 10 → 40 over 3 frames"
        );
        // A frame without growth ends it.
        assert!(w.observe(&[row("<0.1.0>", 40, 5)], 0, 2, None).is_empty());
    }

    #[test]
    fn a_frame_without_the_process_starts_its_history_again() {
        let mut w = Watch::default();
        w.observe(&[row("<0.1.0>", 1, 1)], 0, 2, None);
        w.observe(&[row("<0.1.0>", 2, 2)], 0, 2, None);
        w.observe(&[], 0, 2, None);
        w.observe(&[row("<0.1.0>", 3, 3)], 0, 2, None);
        w.observe(&[row("<0.1.0>", 4, 4)], 0, 2, None);
        assert!(w.observe(&[row("<0.1.0>", 5, 5)], 0, 2, None).is_empty());
        let got = w.observe(&[row("<0.1.0>", 6, 6)], 0, 2, None);
        assert_eq!(got.len(), 2, "mailbox and memory: {got:?}");
    }

    #[test]
    fn run_queue_longer_than_the_schedulers_for_three_frames() {
        let mut w = Watch::default();
        assert!(w.observe(&[], 5, 2, None).is_empty());
        assert!(w.observe(&[], 3, 2, None).is_empty());
        let got = w.observe(&[], 9, 2, None);
        assert_eq!(got[0].kind, Kind::RunQueue);
        assert_eq!(
            got[0].line(),
            "run queue 5, 3, 9 over 3 frames, more than the 2 schedulers"
        );
        assert!(w.observe(&[], 2, 2, None).is_empty());
    }

    #[test]
    fn counts_above_eighty_percent_of_their_limit() {
        let l = Limits {
            procs: (900, 1000),
            ports: (10, 1000),
            atoms: (801, 1000),
            ets: (800, 1000),
        };
        let got = Watch::default().observe(&[], 0, 2, Some(&l));
        let names: Vec<_> = got.iter().map(|w| w.name.clone().unwrap()).collect();
        assert_eq!(names, ["processes", "atoms"]);
        assert_eq!(got[0].line(), "processes 900 of limit 1,000 (90%)");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1048576), "1,048,576");
    }
}
