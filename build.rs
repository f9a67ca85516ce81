//! Records the commit the library is built from, for the `created_by` of exported Parquet files
//! (`kt_governance version X.Y.Z (build <commit>)`). Outside a git checkout (a source tarball)
//! the build is called `source`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "source".to_string());
    println!("cargo:rustc-env=KT_BUILD_COMMIT={commit}");
    // HEAD names the branch; the branch's ref (or packed-refs) moves with each commit. Only
    // paths that exist are named: cargo reruns the script on every build for a missing one.
    let mut watched = vec![".git/HEAD".to_string(), ".git/packed-refs".to_string()];
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(reference) = head.trim().strip_prefix("ref: ") {
            watched.push(format!(".git/{reference}"));
        }
    }
    // with nothing named, cargo would rerun the script whenever any file of the package changes
    println!("cargo:rerun-if-changed=build.rs");
    for path in watched.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
