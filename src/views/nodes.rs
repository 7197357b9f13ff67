//! `etop nodes`: the BEAMs on this host, with their names, users,
//! distribution ports, OTP releases and where their cookies come from.

use super::Frame;
use super::column::{Cell, Column, Grid};
use crate::node::discover::{CookieLookup, LocalNode};
use crate::node::{dist_port, local_nodes};
use std::path::Path;

/// One line of `etop nodes`.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub node: String,
    pub os_pid: u32,
    pub user: String,
    pub dist_port: Option<u16>,
    pub otp: Option<String>,
    pub cookie: String,
}

/// The columns of `etop nodes`.
pub const COLUMNS: [Column<NodeLine>; 6] = [
    Column::flex("Node", "node", |n| Cell::text(&n.node)),
    Column::num("OS pid", "os_pid", |n| {
        Cell::Count(Some(u64::from(n.os_pid)))
    }),
    Column::text("User", "user", |n| Cell::text(&n.user)),
    Column::num("Dist port", "dist_port", |n| {
        Cell::Count(n.dist_port.map(u64::from))
    }),
    Column::text("OTP", "otp", |n| Cell::OptText(n.otp.clone())),
    Column::flex("Cookie from", "cookie", |n| Cell::text(&n.cookie)),
];

pub fn lines(nodes: &[LocalNode], epmd: &[(String, u16)]) -> Vec<NodeLine> {
    nodes
        .iter()
        .map(|n| NodeLine {
            node: match (&n.name, n.tls()) {
                (Some(name), false) => name.clone(),
                (Some(name), true) => format!("{name} (TLS distribution: not supported yet)"),
                (None, _) => "(not distributed)".to_string(),
            },
            os_pid: n.os_pid,
            user: n.user.clone(),
            dist_port: dist_port(n, epmd),
            otp: n.otp_release.clone(),
            cookie: match &n.cookie {
                CookieLookup::Found {
                    source,
                    loose_permissions,
                    ..
                } => {
                    if *loose_permissions {
                        format!("{source} (readable by others!)")
                    } else {
                        source.to_string()
                    }
                }
                CookieLookup::Unreadable { source, reason } => {
                    format!("{source}: unreadable ({reason})")
                }
                CookieLookup::NotFound => "not found (etop falls back to ~/.erlang.cookie)".into(),
            },
        })
        .collect()
}

/// `etop nodes` as a frame; its JSON is one object per node.
pub fn frame(proc_root: &Path) -> Frame {
    let (nodes, epmd) = local_nodes(proc_root);
    let grid = Grid::new(&COLUMNS, &lines(&nodes, &epmd));
    let json = serde_json::Value::Array(grid.json_rows());
    let header = if grid.rows.is_empty() {
        vec!["no Erlang nodes run on this host".to_string()]
    } else {
        Vec::new()
    };
    Frame {
        header,
        grids: if grid.rows.is_empty() {
            Vec::new()
        } else {
            vec![grid]
        },
        csv_prefix: Vec::new(),
        json,
        note: String::new(),
        id_column: None,
        footer: Vec::new(),
    }
}
