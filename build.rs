//! Rebuild when a migration changes: `sqlx::migrate!` embeds the migrations at compile time,
//! and cargo does not otherwise notice a new file in `migrations/`. Also names the commit built.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // The commit a load-test report names (`topkart loadtest`); "unknown" outside a git tree.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TOPKART_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
