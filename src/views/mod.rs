//! One module per screen, all of one shape: a feed takes a sample each
//! interval (on its own thread), a shaper turns consecutive samples into a
//! `Frame`: header lines, tables whose columns are defined once
//! (`column`), and the frame as JSON. The `ui` shows frames; it knows
//! nothing of the screens.

pub mod cluster;
pub mod column;
pub mod ets;
pub mod filter;
pub mod growth;
pub mod msacc;
pub mod nodes;
pub mod ports;
pub mod procs;
pub mod reply;
pub mod restart;
pub mod threads;
pub mod watch;

use crate::agent::SortKey;
use crate::error::Result;
use column::Grid;

/// Output formats, `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Csv,
    Json,
}

/// What the operator changes while a view runs, for the feed (what to ask
/// the node) and the shaper (how to show it).
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Sort(SortKey),
    /// Total reductions instead of reductions in the window.
    Accumulate(bool),
    Filter(Option<filter::Expr>),
    /// How many rows to ask the node for (as many as the screen shows).
    Rows(usize),
    /// Show one process in detail (its pid as `<0.N.S>`), or the table again.
    Detail(Option<String>),
}

/// A sort the keys can choose.
#[derive(Debug, Clone, PartialEq)]
pub struct SortChoice {
    /// The key that picks it (`M`, `R`, `Q`), if any; `<` and `>` reach all.
    pub letter: Option<char>,
    pub name: &'static str,
    pub key: SortKey,
}

/// What the interactive screen of a view offers.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// The sorts, in the order of their columns.
    pub sorts: Vec<SortChoice>,
    /// Which of `sorts` is in force at the start.
    pub sort: usize,
    /// `a` toggles totals; `None` when the view has no such thing.
    pub accumulate: Option<bool>,
    pub filter: bool,
    pub detail: bool,
    /// Ask the node for as many rows as the screen shows.
    pub fit_rows: bool,
}

/// Produces one sample per call, on the collector thread.
pub trait Feed: Send + 'static {
    type Sample: Send + 'static;
    fn sample(&mut self) -> Result<Self::Sample>;
    /// Applies what the operator changed; the next sample follows it.
    fn control(&mut self, _c: &Control) {}
    /// Called once when the session ends, to undo anything on the target.
    fn close(&mut self) {}
    /// When told to stop, take one last sample first (msacc collects what it
    /// measured so far instead of dropping it).
    fn finish_early(&self) -> bool {
        false
    }
    /// For `--stats-file`: node-side cost and connection bytes, if any.
    fn stats(&self, _s: &Result<Self::Sample>) -> Option<serde_json::Value> {
        None
    }
}

/// Turns samples into frames; keeps what it needs of the previous sample
/// for rates. `None` means "baseline only, show nothing yet".
pub trait Shaper {
    type Sample;
    fn shape(&mut self, s: Self::Sample) -> Option<Frame>;
    /// Applies what the operator changed.
    fn control(&mut self, _c: &Control) {}
    /// The session ends after this frame (`etop watch` saw a condition hold).
    fn done(&self) -> bool {
        false
    }
}

/// A shaper lent to a session, so that its caller reads what it kept (the
/// summary of `etop watch`) once the session ends.
impl<S: Shaper + ?Sized> Shaper for &mut S {
    type Sample = S::Sample;
    fn shape(&mut self, s: Self::Sample) -> Option<Frame> {
        (**self).shape(s)
    }
    fn control(&mut self, c: &Control) {
        (**self).control(c)
    }
    fn done(&self) -> bool {
        (**self).done()
    }
}

/// A frame ready to show in any format.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// Lines above the tables; a terminal cuts them to its width.
    pub header: Vec<String>,
    /// The tables, one after another (a blank line between them).
    pub grids: Vec<Grid>,
    /// Fields every CSV row starts with (time, node).
    pub csv_prefix: Vec<(&'static str, String)>,
    /// The whole frame as one JSON object.
    pub json: serde_json::Value,
    /// A short note for the status line (what the sample cost the node).
    pub note: String,
    /// The column whose value names a row (`pid`): the selection follows it.
    pub id_column: Option<&'static str>,
    /// Lines under the tables: warnings.
    pub footer: Vec<String>,
}

/// The status line's word on what a frame cost the node: time, and the
/// frame worker's heap against its ceiling.
pub fn cost_note(cost_ms: f64, heap_bytes: u64, limit_bytes: u64) -> String {
    use crate::text::human_bytes;
    let mut note = format!("this sample cost the node {cost_ms:.1} ms");
    if heap_bytes > 0 {
        note.push_str(&format!(", {} of heap", human_bytes(heap_bytes)));
        if limit_bytes > 0 {
            note.push_str(&format!(" (ceiling {})", human_bytes(limit_bytes)));
        }
    }
    note
}
