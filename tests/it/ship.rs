//! Shipping etop: the static binary runs in an empty root directory against
//! a real node, `make install` lays out the binary, the man page and the
//! completions, `etop completions` prints them, and nothing is coloured
//! when NO_COLOR is set.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory cargo builds into (the test binary's etop is in its
/// `debug/`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_etop"))
        .ancestors()
        .nth(2)
        .expect("the target directory")
        .to_path_buf()
}

/// Runs `make ARGS` in the source tree; fails the test with its output.
fn make(args: &[&str]) {
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(manifest_dir())
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A system program by its full path: the commands below run with an empty
/// environment, so PATH cannot find it for them.
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install coreutils"))
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// When the source of the binary last changed.
fn newest_source(root: &Path) -> std::time::SystemTime {
    let mut newest = std::time::UNIX_EPOCH;
    let mut paths: Vec<PathBuf> = ["Cargo.toml", "Cargo.lock", "build.rs"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    paths.extend(walk(&root.join("src")));
    for p in paths {
        if let Some(t) = modified(&p) {
            newest = newest.max(t);
        }
    }
    newest
}

fn assert_root(why: &str) {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root ({why}); CI runs as root: run `sudo make test`"
    );
}

/// How an ELF executable is linked: does it name a program interpreter
/// (the dynamic loader), and how many shared libraries does it need?
fn elf_links(path: &Path) -> (bool, usize) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes")) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let mut interp = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        const PT_DYNAMIC: u32 = 2;
        const PT_INTERP: u32 = 3;
        match u32_at(ph) {
            PT_INTERP => interp = true,
            PT_DYNAMIC => {
                let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
                for entry in (offset..offset + size).step_by(16) {
                    const DT_NULL: usize = 0;
                    const DT_NEEDED: usize = 1;
                    match u64_at(entry) {
                        DT_NULL => break,
                        DT_NEEDED => needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}

/// /proc mounted inside a directory, unmounted on drop.
struct ProcMount(PathBuf);

impl ProcMount {
    fn new(at: PathBuf) -> ProcMount {
        std::fs::create_dir_all(&at).expect("create proc/ in the root");
        let st = Command::new(program("mount"))
            .args(["-t", "proc", "proc"])
            .arg(&at)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t proc proc {} failed", at.display());
        ProcMount(at)
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        let ok = Command::new(program("umount"))
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new(program("umount"))
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

#[test]
fn the_static_binary_attaches_from_an_empty_root() {
    assert_root("chroot and mount");
    let bin = target_dir().join("x86_64-unknown-linux-musl/release/etop");
    // `make test` builds it first; run alone, this test builds it when it
    // is missing or older than the source.
    if modified(&bin).is_none_or(|built| newest_source(manifest_dir()) > built) {
        make(&["static"]);
    }
    assert_eq!(
        elf_links(&bin),
        (false, 0),
        "{} names a dynamic loader or shared libraries",
        bin.display()
    );
    // The check tells the two kinds apart: cargo's usual build is dynamic.
    let (interp, needed) = elf_links(Path::new(env!("CARGO_BIN_EXE_etop")));
    assert!(interp && needed > 0, "the glibc build reads as static");

    // A long-name node: its host is an address, so nothing needs resolving
    // inside the root.
    let node = Node::start(NodeOpts {
        long: true,
        ..quiet()
    });
    let root = tempfile::tempdir().expect("an empty root");
    std::fs::copy(&bin, root.path().join("etop")).expect("copy the binary");
    let proc_mount = ProcMount::new(root.path().join("proc"));
    let mut entries: Vec<String> = std::fs::read_dir(root.path())
        .expect("list the root")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    entries.sort();
    assert_eq!(entries, ["etop", "proc"], "the root holds more than etop");

    let run = |args: &[&str]| {
        let out = Command::new(program("chroot"))
            .arg(root.path())
            .arg("/etop")
            .args(args)
            .env_clear()
            .env("ERLANG_COOKIE", &node.cookie)
            .output()
            .expect("run chroot");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["--version"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("x86_64-unknown-linux-musl"),
        "--version does not name the static target: {stdout}"
    );
    let (code, stdout, stderr) = run(&["--once", "-i", QUICK, "--format", "json", &node.full]);
    assert_eq!(code, Some(0), "{stdout}{stderr}\n{}", node.log());
    let frame: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON frame ({e}): {stdout}{stderr}"));
    assert_eq!(frame["header"]["node"], node.full.as_str(), "{stdout}");
    assert!(
        frame["rows"].as_array().is_some_and(|r| !r.is_empty()),
        "no process rows: {stdout}"
    );
    // The node is found through the root's /proc too.
    let (code, stdout, stderr) = run(&["nodes", "--format", "json"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&node.full), "{stdout}");
    drop(proc_mount);
}

#[test]
fn make_install_lays_out_bin_man_and_completions() {
    let dest = tempfile::tempdir().expect("a DESTDIR");
    let destdir = format!("DESTDIR={}", path_str(dest.path()));
    let bin = format!("ETOP_BIN={}", env!("CARGO_BIN_EXE_etop"));
    make(&["install", &destdir, "PREFIX=/opt/etop", &bin]);
    let prefix = dest.path().join("opt/etop");
    let mut files: Vec<String> = walk(dest.path())
        .iter()
        .map(|p| {
            p.strip_prefix(dest.path())
                .expect("under DESTDIR")
                .display()
                .to_string()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "opt/etop/bin/etop",
            "opt/etop/share/bash-completion/completions/etop",
            "opt/etop/share/fish/vendor_completions.d/etop.fish",
            "opt/etop/share/man/man1/etop.1",
            "opt/etop/share/zsh/site-functions/_etop",
        ]
    );
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(prefix.join(p))
            .expect("an installed file")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("bin/etop"), 0o755);
    assert_eq!(mode("share/man/man1/etop.1"), 0o644);
    let out = Command::new(prefix.join("bin/etop"))
        .arg("--version")
        .output()
        .expect("run the installed etop");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("etop "));
    assert_eq!(
        std::fs::read(prefix.join("share/man/man1/etop.1")).expect("installed man page"),
        std::fs::read(manifest_dir().join("man/etop.1")).expect("man/etop.1")
    );
    for (shell, file) in [
        ("bash", "share/bash-completion/completions/etop"),
        ("zsh", "share/zsh/site-functions/_etop"),
        ("fish", "share/fish/vendor_completions.d/etop.fish"),
    ] {
        let installed = std::fs::read_to_string(prefix.join(file)).expect("a completion file");
        let printed = etop(["completions", shell]).run().success();
        assert_eq!(installed, printed.stdout, "{shell}");
        assert_eq!(mode(file), 0o644, "{file}");
    }
    make(&["uninstall", &destdir, "PREFIX=/opt/etop"]);
    assert!(
        walk(dest.path()).is_empty(),
        "make uninstall left {:?}",
        walk(dest.path())
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read a directory") {
        let p = e.expect("an entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn completions_know_the_commands_and_flags() {
    let bash = etop(["completions", "bash"]).run().success();
    for word in [
        "nodes",
        "threads",
        "msacc",
        "completions",
        "--tls-ca",
        "--cookie-file",
    ] {
        assert!(bash.stdout.contains(word), "bash completion lacks {word}");
    }
    // bash itself reads the script and registers the completion.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("etop.bash");
    std::fs::write(&script, &bash.stdout).expect("write the script");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p etop",
            path_str(&script)
        ))
        .output()
        .expect("run bash");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("etop"),
        "bash does not take the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zsh = etop(["completions", "zsh"]).run().success();
    assert!(zsh.stdout.starts_with("#compdef etop"), "{zsh}");
    assert!(zsh.stdout.contains("--tls-cert"), "{zsh}");
    let fish = etop(["completions", "fish"]).run().success();
    assert!(fish.stdout.contains("complete -c etop"), "{fish}");
    assert!(fish.stdout.contains("tls-key"), "{fish}");

    let out = etop(["completions", "powershell"]).run();
    assert_eq!(out.code, Some(2), "{out}");
}

/// Runs etop on a pseudo-terminal (stdin, stdout and stderr), as on an
/// operator's terminal, and returns what it printed.
fn on_a_terminal(args: &[&str], envs: &[(&str, &str)]) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Stdio;
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two fds into the given ints; the other
    // pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    let stdio = || Stdio::from(slave.try_clone().expect("dup the pty slave"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_etop"))
        .args(args)
        .env_clear()
        .env("TERM", "xterm")
        .envs(envs.iter().copied())
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .expect("spawn etop");
    drop(slave);
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the child has exited and closed the terminal.
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let deadline = std::time::Instant::now() + ETOP_TIMEOUT;
    while child.try_wait().expect("wait for etop").is_none() {
        assert!(std::time::Instant::now() < deadline, "etop did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    String::from_utf8_lossy(&reader.join().expect("the reader")).into_owned()
}

#[test]
fn no_colour_with_no_color() {
    // On a terminal, help and usage errors are styled (clap's bold and
    // colours); NO_COLOR turns every escape sequence off.
    for args in [&["--help"][..], &["--bogus"], &["nodes", "--help"]] {
        let styled = on_a_terminal(args, &[]);
        assert!(
            styled.contains('\x1b'),
            "etop {args:?} is not styled on a terminal, so this test proves nothing:\n{styled}"
        );
        let plain = on_a_terminal(args, &[("NO_COLOR", "1")]);
        assert!(
            !plain.contains('\x1b'),
            "etop {args:?} with NO_COLOR prints escape sequences:\n{}",
            plain.escape_debug()
        );
        assert!(plain.contains("etop") || plain.contains("error"), "{plain}");
    }
}
