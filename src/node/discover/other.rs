//! Gathering what the OS tells of each process where there is no /proc
//! (macOS, BSD), with sysinfo: names, argv, environment, user, working
//! directory. Listen ports are not known here, so a node named only at run
//! time stays unnamed.

use super::describe::{HostNames, Seen};
use super::*;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

pub(super) fn scan_with(_proc_root: &Path, etc_root: &Path, hostname: &str) -> Vec<LocalNode> {
    let host = HostNames::new(etc_root, hostname);
    let users = crate::host::users(etc_root);
    let Ok(mut sys) = System::new() else {
        return Vec::new();
    };
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_cmd(UpdateKind::Always)
            .with_environ(UpdateKind::Always)
            .with_cwd(UpdateKind::Always)
            .with_exe(UpdateKind::Always)
            .with_user(UpdateKind::Always),
    );
    let mut nodes: Vec<LocalNode> = sys
        .processes()
        .values()
        .filter_map(|p| {
            let env: HashMap<String, String> = p
                .environ()
                .iter()
                .filter_map(|e| {
                    let (k, v) = e.to_str()?.split_once('=')?;
                    Some((k.to_string(), v.to_string()))
                })
                .collect();
            let seen = Seen {
                pid: p.pid().as_u32(),
                comm: p.name().to_string_lossy().into_owned(),
                uid: p.user_id().map(|u| **u).unwrap_or(0),
                argv: p
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                exe: p.exe().map(|e| e.to_string_lossy().into_owned()),
                env: (!env.is_empty()).then_some(env),
                cwd: p.cwd().map(Path::to_path_buf),
                listen_ports: Vec::new(),
                sockets_readable: false,
                user_listen_ports: None,
                root: PathBuf::from("/"),
                root_readable: true,
            };
            seen.is_beam().then(|| seen.describe(&host, &users))
        })
        .collect();
    nodes.sort_by_key(|n| n.os_pid);
    nodes
}
