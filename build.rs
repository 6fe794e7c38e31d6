//! Records the commit the binary is built from (`SELFPLAY_COMMIT`), for each run's provenance.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // Outside a git checkout (a source archive) the commit is unknown, not an error.
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SELFPLAY_COMMIT={commit}");
    // A new commit or checkout moves HEAD or a branch.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for path in ["HEAD", "refs/heads", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
