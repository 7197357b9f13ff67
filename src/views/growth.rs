//! Growth across consecutive frames, per subject (a pid, an ETS table): for
//! how many frames in a row a value grew, from what, and its latest values.
//! The top's warnings and `etop watch`'s `.grows` terms read it; it costs
//! the node nothing.

use std::collections::{HashMap, VecDeque};

/// One subject's value over the frames it was seen in, without a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The frame of the latest observation.
    frame: u64,
    /// Frames in a row in which the value was larger than in the frame
    /// before.
    streak: u32,
    /// The value the current streak started from.
    from: u64,
    /// The latest values, oldest first.
    recent: VecDeque<u64>,
}

impl Series {
    /// In how many frames in a row the value grew, up to the latest.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// The value before the current streak of growth.
    pub fn from(&self) -> u64 {
        self.from
    }

    /// The latest value.
    pub fn last(&self) -> u64 {
        self.recent.back().copied().unwrap_or(self.from)
    }

    /// The latest values (at most what the tracker keeps), oldest first.
    pub fn recent(&self) -> Vec<u64> {
        self.recent.iter().copied().collect()
    }
}

/// Tracks one value of many subjects, frame after frame. A subject counts
/// only while it is in consecutive frames: growth is never assumed across a
/// frame it was not seen in.
#[derive(Debug, Clone)]
pub struct Growth {
    frame: u64,
    /// How many of the latest values each series keeps.
    keep: usize,
    series: HashMap<String, Series>,
}

impl Growth {
    /// A tracker whose series keep their `keep` latest values.
    pub fn new(keep: usize) -> Growth {
        Growth {
            frame: 0,
            keep: keep.max(1),
            series: HashMap::new(),
        }
    }

    /// Forget everything: a new connection, a node restarted.
    pub fn reset(&mut self) {
        self.frame = 0;
        self.series.clear();
    }

    /// One frame's values, by subject. Subjects not in it are forgotten.
    pub fn observe<'a>(&mut self, values: impl IntoIterator<Item = (&'a str, u64)>) {
        self.frame += 1;
        let frame = self.frame;
        for (id, v) in values {
            let s = self.series.entry(id.to_string()).or_insert_with(|| Series {
                frame: 0,
                streak: 0,
                from: v,
                recent: VecDeque::new(),
            });
            if s.frame == frame {
                // Seen twice in one frame: the first observation stands.
                continue;
            }
            if s.frame + 1 != frame {
                s.streak = 0;
                s.from = v;
                s.recent.clear();
            } else if v > s.last() {
                s.streak = s.streak.saturating_add(1);
            } else {
                s.streak = 0;
                s.from = v;
            }
            s.frame = frame;
            if s.recent.len() == self.keep {
                s.recent.pop_front();
            }
            s.recent.push_back(v);
        }
        self.series.retain(|_, s| s.frame == frame);
    }

    /// The series of `id`, if it was in the latest frame.
    pub fn get(&self, id: &str) -> Option<&Series> {
        self.series.get(id)
    }

    /// How many frames in a row `id` grew; 0 for a subject not in the
    /// latest frame.
    pub fn streak(&self, id: &str) -> u32 {
        self.get(id).map_or(0, Series::streak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_counts_frames_of_growth_and_a_flat_frame_ends_it() {
        let mut g = Growth::new(3);
        for (v, streak) in [(10, 0), (20, 1), (30, 2), (40, 3), (40, 0), (41, 1)] {
            g.observe([("a", v)]);
            assert_eq!(g.streak("a"), streak, "after {v}");
        }
        let s = g.get("a").unwrap();
        assert_eq!((s.from(), s.last()), (40, 41));
        assert_eq!(s.recent(), vec![40, 40, 41], "the latest three");
    }

    #[test]
    fn a_frame_without_the_subject_starts_it_over() {
        let mut g = Growth::new(4);
        g.observe([("a", 1), ("b", 1)]);
        g.observe([("a", 2), ("b", 2)]);
        g.observe([("b", 3)]);
        assert!(g.get("a").is_none());
        assert_eq!(g.streak("a"), 0);
        g.observe([("a", 3), ("b", 4)]);
        assert_eq!((g.streak("a"), g.streak("b")), (0, 3));
        assert_eq!(g.get("a").unwrap().recent(), vec![3]);
    }

    #[test]
    fn a_shrinking_value_is_not_growth_and_a_reset_forgets() {
        let mut g = Growth::new(2);
        g.observe([("a", 9)]);
        g.observe([("a", 5)]);
        assert_eq!(g.streak("a"), 0);
        assert_eq!(g.get("a").unwrap().from(), 5);
        g.observe([("a", 6)]);
        assert_eq!(g.streak("a"), 1);
        g.reset();
        g.observe([("a", 7)]);
        assert_eq!(g.streak("a"), 0, "after a reset nothing is known of before");
    }
}
