//! `etop nodes`: the BEAMs on this host, with their names, users,
//! distribution ports, OTP releases, where their cookies come from, and
//! whether they speak TLS distribution.

use super::Frame;
use super::column::{Cell, Column, Grid, Show};
use crate::node::discover::ssl_dist::DistTls;
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
    /// `no`, `yes`, or `yes (etop needs --tls-*)` when etop cannot use the
    /// node's own client options.
    pub tls: String,
    /// Why etop cannot use them.
    pub tls_problem: Option<String>,
}

/// The columns of `etop nodes`.
pub const COLUMNS: [Column<NodeLine>; 8] = [
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
    Column::text("TLS", "tls", |n| Cell::text(&n.tls)),
    Column::text("TLS problem", "tls_problem", |n: &NodeLine| {
        Cell::OptText(n.tls_problem.clone())
    })
    .only(Show::DATA),
];

pub fn lines(nodes: &[LocalNode], epmd: &[(String, u16)]) -> Vec<NodeLine> {
    nodes
        .iter()
        .map(|n| NodeLine {
            node: match &n.name {
                Some(name) => name.clone(),
                None => "(not distributed)".to_string(),
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
            tls: match &n.dist_tls {
                None if n.tls() => "yes".into(),
                None => "no".into(),
                Some(DistTls::Client(_)) => "yes".into(),
                Some(DistTls::Unusable(_)) => "yes (etop needs --tls-*)".into(),
            },
            tls_problem: match &n.dist_tls {
                Some(DistTls::Unusable(why)) => Some(why.clone()),
                _ => None,
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
    }
}
