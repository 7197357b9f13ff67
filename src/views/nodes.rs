//! `etop nodes`: the BEAMs on this host, with their names, users,
//! distribution ports, OTP releases, where their cookies come from and
//! whether they speak TLS distribution; and, for nodes of other users that
//! /proc hides from us, what could not be read and how the columns were
//! filled anyway.

use super::Frame;
use super::column::{Cell, Column, Grid, Show};
use crate::node::discover::ssl_dist::DistTls;
use crate::node::discover::{CookieLookup, EpmdNames, LocalNode, NameFrom, Unreadable, run_as};
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
    pub erts: Option<String>,
    pub cookie: String,
    /// `no`, `yes`, or `yes (etop needs --tls-*)` when etop cannot use the
    /// node's own client options.
    pub tls: String,
    /// Why etop cannot use them.
    pub tls_problem: Option<String>,
    pub name_from: Option<NameFrom>,
    pub epmd_port: Option<u16>,
    pub temporary: bool,
    /// What /proc did not let etop read: `fd`, `environ`, `root`.
    pub unreadable: Vec<Unreadable>,
}

fn words<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// The columns of `etop nodes`.
pub const COLUMNS: [Column<NodeLine>; 13] = [
    Column::flex("Node", "node", |n| Cell::text(&n.node)),
    Column::num("OS pid", "os_pid", |n| {
        Cell::Count(Some(u64::from(n.os_pid)))
    }),
    Column::text("User", "user", |n| Cell::text(&n.user)),
    Column::num("Dist port", "dist_port", |n| {
        Cell::Count(n.dist_port.map(u64::from))
    }),
    // A release with its own erts tells only which OTP major release it
    // is (`25`); its erts version tells the rest.
    Column::text("OTP", "otp", |n| Cell::OptText(n.otp.clone())),
    Column::text("ERTS", "erts", |n| Cell::OptText(n.erts.clone())),
    Column::flex("Cookie from", "cookie", |n| Cell::text(&n.cookie)),
    Column::text("TLS", "tls", |n| Cell::text(&n.tls)),
    Column::text("TLS problem", "tls_problem", |n: &NodeLine| {
        Cell::OptText(n.tls_problem.clone())
    })
    .only(Show::DATA),
    Column::text("Name from", "name_from", |n: &NodeLine| {
        Cell::OptText(n.name_from.map(|f| {
            serde_json::to_value(f)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }))
    })
    .only(Show::DATA),
    Column::num("EPMD port", "epmd_port", |n: &NodeLine| {
        Cell::Count(n.epmd_port.map(u64::from))
    })
    .only(Show::DATA),
    Column::text("Temporary", "temporary", |n: &NodeLine| {
        Cell::Flag(n.temporary)
    })
    .only(Show::DATA),
    Column::text("Unreadable", "unreadable", |n: &NodeLine| {
        let entries: Vec<&str> = n.unreadable.iter().map(|u| u.entry()).collect();
        Cell::OptText((!entries.is_empty()).then(|| entries.join(",")))
    })
    .only(Show::DATA),
];

fn node_text(n: &LocalNode) -> String {
    match &n.name {
        Some(name) if n.temporary => format!("{name} (temporary shell)"),
        Some(name) => name.clone(),
        None if n.unreadable.contains(&Unreadable::Sockets) => {
            "(name unknown: its sockets are not readable)".to_string()
        }
        None => "(not distributed)".to_string(),
    }
}

fn cookie_text(n: &LocalNode) -> String {
    match &n.cookie {
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
    }
}

pub fn lines(nodes: &[LocalNode], epmd: &EpmdNames) -> Vec<NodeLine> {
    nodes
        .iter()
        .map(|n| NodeLine {
            node: node_text(n),
            os_pid: n.os_pid,
            user: n.user.clone(),
            dist_port: dist_port(n, epmd),
            otp: n.otp_release.clone(),
            erts: n.erts_version.clone(),
            cookie: cookie_text(n),
            name_from: n.name_from,
            epmd_port: n.epmd_port,
            temporary: n.temporary,
            unreadable: n.unreadable.clone(),
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

/// For a node /proc hides parts of: which columns that touched and how
/// they were filled anyway, and what /proc hid.
fn hidden(n: &LocalNode, dist_port: Option<u16>) -> Option<(String, Vec<Unreadable>)> {
    if n.unreadable.is_empty() {
        return None;
    }
    let sockets = n.unreadable.contains(&Unreadable::Sockets);
    let mut cols = Vec::new();
    match (&n.name, n.name_from) {
        (None, _) if sockets => cols.push("Node and Dist port unknown".to_string()),
        (Some(_), Some(from @ (NameFrom::EpmdUserPort | NameFrom::EpmdLeft))) => {
            cols.push(format!("Node from {from}"))
        }
        (Some(_), _) if sockets && dist_port.is_some() => {
            cols.push("Dist port from EPMD, by its name".to_string())
        }
        _ => {}
    }
    if n.unreadable.contains(&Unreadable::Files) {
        cols.push(match n.otp_release {
            Some(_) => "OTP from the same paths on this host".to_string(),
            None => "OTP unknown".to_string(),
        });
    }
    if matches!(n.cookie, CookieLookup::Unreadable { .. }) {
        cols.push("Cookie from unreadable".to_string());
    }
    Some((cols.join("; "), n.unreadable.clone()))
}

/// The notes above the table: for the nodes /proc hides parts of, which
/// columns that touched, how they were filled anyway, and who may read
/// them; one line for the nodes of one user alike. `me` is the user etop
/// runs as.
pub fn notes(nodes: &[LocalNode], lines: &[NodeLine], me: &str) -> Vec<String> {
    type Key = (String, String, Vec<Unreadable>);
    let mut groups: Vec<(Key, Vec<u32>)> = Vec::new();
    for (n, l) in nodes.iter().zip(lines) {
        let Some((cols, parts)) = hidden(n, l.dist_port) else {
            continue;
        };
        let key = (n.user.clone(), cols, parts);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, pids)) => pids.push(n.os_pid),
            None => groups.push((key, vec![n.os_pid])),
        }
    }
    groups
        .into_iter()
        .map(|((user, cols, parts), pids)| {
            let (who, proc_dir) = match pids.as_slice() {
                [one] => (format!("pid {one}"), one.to_string()),
                many => (format!("pids {}", words(many, ", ")), "PID".to_string()),
            };
            let entries: Vec<&str> = parts.iter().map(|u| u.entry()).collect();
            let cols = if cols.is_empty() {
                String::new()
            } else {
                format!("{cols}: ")
            };
            format!(
                "{who} (user {user}): {cols}etop runs as user {me} and may not read \
                 /proc/{proc_dir}/{{{entries}}} ({what}); {run_as} to see them",
                entries = entries.join(","),
                what = words(&parts, ", "),
                run_as = run_as(&user),
            )
        })
        .collect()
}

/// The user etop runs as, as notes name it.
fn me() -> String {
    crate::host::login_name().unwrap_or_else(|| {
        #[cfg(unix)]
        {
            rustix::process::getuid().as_raw().to_string()
        }
        #[cfg(not(unix))]
        {
            "?".to_string()
        }
    })
}

/// `etop nodes` as a frame; its JSON is one object per node.
pub fn frame(proc_root: &Path) -> Frame {
    let (nodes, epmd) = local_nodes(proc_root);
    let lines = lines(&nodes, &epmd);
    let grid = Grid::new(&COLUMNS, &lines);
    let json = serde_json::Value::Array(grid.json_rows());
    let me = me();
    let header = if grid.rows.is_empty() {
        vec!["no Erlang nodes run on this host".to_string()]
    } else {
        notes(&nodes, &lines, &me)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::discover::CookieSource;

    #[test]
    fn a_hidden_node_says_what_could_not_be_read_and_how_columns_were_filled() {
        let n = LocalNode {
            os_pid: 473,
            user: "rabbitmq".into(),
            name: Some("rabbit@vm".into()),
            name_from: Some(NameFrom::EpmdUserPort),
            otp_release: Some("25.2.3".into()),
            cookie: CookieLookup::Unreadable {
                source: CookieSource::HomeCookieFile {
                    path: "/var/lib/rabbitmq/.erlang.cookie".into(),
                    user: "rabbitmq".into(),
                },
                reason: "permission denied: run as user rabbitmq or root".into(),
            },
            unreadable: vec![
                Unreadable::Sockets,
                Unreadable::Environment,
                Unreadable::Files,
            ],
            ..LocalNode::default()
        };
        let one = std::slice::from_ref(&n);
        assert_eq!(
            notes(one, &lines(one, &EpmdNames::default()), "bob"),
            vec![
                "pid 473 (user rabbitmq): Node from EPMD, by a port its user listens on; OTP \
                 from the same paths on this host; Cookie from unreadable: etop runs as user \
                 bob and may not read /proc/473/{fd,environ,root} (its sockets, its \
                 environment, its files); run as user rabbitmq or root to see them"
            ]
        );
        // Nodes of one user alike: one line for all.
        let twin = LocalNode {
            os_pid: 474,
            ..n.clone()
        };
        let both = [n.clone(), twin];
        let said = notes(&both, &lines(&both, &EpmdNames::default()), "bob");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("pids 473, 474 (user rabbitmq)"),
            "{said:?}"
        );
        assert!(said[0].contains("/proc/PID/{fd,environ,root}"), "{said:?}");
        // Root's own: who may read them is root.
        let roots = LocalNode {
            user: "root".into(),
            ..n.clone()
        };
        let r = std::slice::from_ref(&roots);
        assert!(
            notes(r, &lines(r, &EpmdNames::default()), "bob")[0]
                .ends_with("; run as root to see them")
        );
        let line = &lines(std::slice::from_ref(&n), &EpmdNames::default())[0];
        assert_eq!(line.node, "rabbit@vm");
        let grid = Grid::new(&COLUMNS, std::slice::from_ref(line));
        let j = &grid.json_rows()[0];
        assert_eq!(j["name_from"], "epmd_user_port");
        assert_eq!(j["unreadable"], "fd,environ,root");
        assert_eq!(j["temporary"], false);
        // Nothing hidden, nothing said.
        let open = LocalNode {
            unreadable: Vec::new(),
            ..n
        };
        let o = std::slice::from_ref(&open);
        assert!(notes(o, &lines(o, &EpmdNames::default()), "bob").is_empty());
    }

    #[test]
    fn otp_and_erts_are_columns_of_their_own() {
        let line = NodeLine {
            node: "shop@vm".into(),
            os_pid: 1,
            user: "app".into(),
            dist_port: None,
            otp: Some("25".into()),
            erts: Some("13.1.5".into()),
            cookie: String::new(),
            tls: "no".into(),
            tls_problem: None,
            name_from: None,
            epmd_port: None,
            temporary: false,
            unreadable: Vec::new(),
        };
        let grid = Grid::new(&COLUMNS, std::slice::from_ref(&line));
        assert_eq!(
            (grid.rows[0][4].to_text(), grid.rows[0][5].to_text()),
            ("25".into(), "13.1.5".into())
        );
        assert_eq!(grid.json_rows()[0]["erts"], "13.1.5");
    }
}
