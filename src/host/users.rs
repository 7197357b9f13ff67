//! Names the OS keeps: users (one passwd reader for every caller) and this
//! host's name.

use std::collections::HashMap;
use std::path::Path;

/// Login names by uid, from `<etc_root>/passwd` (the first entry of a uid
/// wins, as getpwuid does).
pub fn users(etc_root: &Path) -> HashMap<u32, String> {
    let Ok(text) = std::fs::read_to_string(etc_root.join("passwd")) else {
        return HashMap::new();
    };
    let mut users = HashMap::new();
    for line in text.lines() {
        let mut cols = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse() {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

/// The login name of our own uid, for when $USER is unset (cron, systemd
/// units, CI).
pub fn login_name() -> Option<String> {
    #[cfg(unix)]
    {
        let uid = rustix::process::getuid().as_raw();
        users(Path::new("/etc")).remove(&uid)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The host name the nodes under `proc_root` see: the kernel's, from that
/// proc tree (a container's `/host/proc`, a test's fake tree), else this
/// machine's.
pub fn hostname_in(proc_root: &Path) -> String {
    #[cfg(target_os = "linux")]
    {
        struct Name(String);
        impl procfs::FromRead for Name {
            fn from_read<R: std::io::Read>(mut r: R) -> procfs::ProcResult<Self> {
                let mut s = String::new();
                r.read_to_string(&mut s)?;
                Ok(Name(s.trim().to_string()))
            }
        }
        use procfs::FromRead;
        if let Ok(Name(n)) = Name::from_file(proc_root.join("sys/kernel/hostname"))
            && !n.is_empty()
        {
            return n;
        }
    }
    let _ = proc_root;
    hostname()
}

/// This machine's host name as the kernel reports it.
pub fn hostname() -> String {
    sysinfo::System::host_name()
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The host part `erl -sname` uses: the host name up to the first dot.
pub fn short_hostname() -> String {
    let h = hostname();
    h.split('.').next().unwrap_or("localhost").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_first_entry_wins_and_junk_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("passwd"),
            "root:x:0:0::/root:/bin/sh\nnot a line\napp:x:1000:1000::/srv:/bin/sh\nalias:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        let u = users(dir.path());
        assert_eq!(u.get(&0).map(String::as_str), Some("root"));
        assert_eq!(u.get(&1000).map(String::as_str), Some("app"));
        assert_eq!(u.len(), 2);
        assert!(users(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn host_names() {
        assert!(!hostname().is_empty());
        assert!(!short_hostname().contains('.'));
    }
}
