//! etop: a top for Erlang and Elixir nodes.
//!
//! The pipeline, one module per stage:
//! `target` (which node, which cookie, EPMD) → `dist` (handshake, RPC, ticks) →
//! `collect` (one `Sample` per interval, top N computed on the target by the
//! expressions in `remote`) → `model` (deltas, rates, units) → `render` (text,
//! csv, json) → `term` (repaint or batch, keys, signals).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod cli;
pub mod collect;
pub mod discover;
pub mod dist;
pub mod error;
pub mod escape;
pub mod eterm;
pub mod ets;
pub mod model;
pub mod msacc;
pub mod nodes;
pub mod osview;
pub mod ports;
pub mod procs;
pub mod remote;
pub mod render;
pub mod session;
pub mod target;
pub mod term;
pub mod threads;
