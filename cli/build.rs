//! Records the commit the binary is built from (`AGORA_GIT_SHA`, which a
//! packager may also set), and links the executor shim `agora-executor` as
//! a position-dependent executable: one runs per task, and without `-pie` the dynamic loader
//! has no relocations to apply at its start, so the binary's relocation
//! table is never read and its tables of pointers are never copied into
//! private memory (a few hundred KiB of each shim's resident set).

fn main() {
    println!("cargo:rerun-if-env-changed=AGORA_GIT_SHA");
    let sha = std::env::var("AGORA_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AGORA_GIT_SHA={sha}");
    // A new commit moves a ref: build again to say so.
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux") {
        println!("cargo:rustc-link-arg-bin=agora-executor=-no-pie");
    }
}

/// The checkout's commit, when built from one.
fn git_head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}
