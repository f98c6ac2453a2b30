//! What Agora says of its version: the API levels it implements, where
//! Mesos and Marathon report their own versions (tools gate features on
//! them: event streams need Marathon ≥ 0.11, pods ≥ 1.4, ...), and Agora's
//! own version and commit beside them.

use std::sync::OnceLock;

/// Agora's own version (every crate's).
pub const AGORA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Mesos API level the master and agent implement: `/version`'s and
/// `/state`'s `version`, and `MasterInfo.version`.
pub const MESOS_API_VERSION: &str = "1.11.0";

/// The Marathon API level the bundled Marathon implements: `/v2/info`'s
/// `version`.
pub const MARATHON_API_VERSION: &str = "1.10.0";

static GIT_SHA: OnceLock<&'static str> = OnceLock::new();

/// Records the commit the binary was built from (the binary knows it; the
/// libraries do not, so that a commit rebuilds only the binary). Set once,
/// at start; later calls change nothing.
pub fn set_git_sha(sha: &'static str) {
    let _ = GIT_SHA.set(sha);
}

/// The commit the binary was built from, `unknown` when it did not say.
pub fn git_sha() -> &'static str {
    GIT_SHA.get().copied().unwrap_or("unknown")
}

/// Agora's version as a tag: `agora-<version>` (Mesos' `git_tag`).
pub fn git_tag() -> String {
    format!("agora-{AGORA_VERSION}")
}

/// Agora's version and commit in one line: Marathon's `buildref`.
pub fn buildref() -> String {
    format!("agora-{AGORA_VERSION} {}", git_sha())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_levels_look_like_the_versions_clients_compare() {
        for v in [MESOS_API_VERSION, MARATHON_API_VERSION, AGORA_VERSION] {
            let parts: Vec<u32> = v.split('.').map(|p| p.parse().expect("numeric")).collect();
            assert_eq!(parts.len(), 3, "{v}");
        }
        assert!(git_tag().starts_with("agora-"));
        assert!(buildref().starts_with(&git_tag()));
    }
}
