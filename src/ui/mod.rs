//! What the operator sees: the event loop every view shares (`session`),
//! the terminal (`term`: repaint, keys, signals, teardown), and frames and
//! tables written for a terminal, CSV or JSON (`frame`, `table`).

pub mod frame;
pub mod session;
pub mod table;
pub mod term;
pub mod top;
