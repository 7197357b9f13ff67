//! Local BEAM nodes found through /proc (Linux only).
