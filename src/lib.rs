//! etop: a top for Erlang and Elixir nodes.
//!
//! The pipeline, one folder per stage:
//! `node` (which node, which cookie: discovery through the OS, EPMD) →
//! `dist` (the distribution connection: handshake, frames, RPC, ticks) →
//! `agent` (what runs on the node, and the collector that asks it for a
//! sample each interval) → `views` (one per screen: sample → model → columns)
//! → `ui` (the event loop, the terminal, fitting tables).
//! `host` is what the OS sees of the VM and the host; `text` makes what
//! nodes and /proc send safe to print.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod agent;
pub mod app;
pub mod cli;
pub mod dist;
pub mod error;
pub mod host;
pub mod node;
pub mod text;
pub mod ui;
pub mod views;
