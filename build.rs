//! Puts the git commit and the target into `etop --version`, so a binary
//! copied to a host tells which source it was built from and whether it is
//! the static build. A source tree without git (a tarball) says so; a
//! packager can name the commit with ETOP_GIT_COMMIT.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Files whose change means another commit: HEAD, the branch it points to,
/// and packed refs. Only files that exist are named: cargo would rebuild
/// every time for a missing one.
fn watched(git_dir: &Path, common_dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![git_dir.join("HEAD"), common_dir.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        files.push(common_dir.join(r));
    }
    files.into_iter().filter(|f| f.is_file()).collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ETOP_GIT_COMMIT");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let in_tree = |args: &[&str]| {
        let mut all = vec!["-C", manifest.as_str()];
        all.extend_from_slice(args);
        git(&all)
    };
    let given = std::env::var("ETOP_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    // A source tree unpacked inside some other repository is not a checkout
    // of etop: its HEAD says nothing about this source.
    let own_checkout = in_tree(&["rev-parse", "--show-toplevel"])
        .and_then(|top| std::fs::canonicalize(top).ok())
        .zip(std::fs::canonicalize(&manifest).ok())
        .is_some_and(|(top, here)| top == here);
    let commit = match given {
        Some(c) => c.trim().to_string(),
        None if !own_checkout => "unknown, built outside a git checkout".to_string(),
        None => match in_tree(&["rev-parse", "--short=12", "HEAD"]) {
            Some(c) => {
                let abs = |p: String| {
                    let p = PathBuf::from(p);
                    if p.is_absolute() {
                        p
                    } else {
                        Path::new(&manifest).join(p)
                    }
                };
                if let (Some(g), Some(c)) = (
                    in_tree(&["rev-parse", "--git-dir"]),
                    in_tree(&["rev-parse", "--git-common-dir"]),
                ) {
                    for f in watched(&abs(g), &abs(c)) {
                        println!("cargo:rerun-if-changed={}", f.display());
                    }
                }
                c
            }
            None => "unknown, built outside a git checkout".to_string(),
        },
    };
    let target = std::env::var("TARGET").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=ETOP_VERSION={version} (commit {commit}, {target})");
    println!("cargo:rustc-env=ETOP_TARGET={target}");
}
