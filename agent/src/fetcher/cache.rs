//! The per-agent download cache (`cache: true`).
//!
//! Each URI gets `<cache_dir>/<hash of the URI>/` holding `data` and, to
//! make a hash collision harmless, `uri` with the full URI: a directory whose
//! `uri` differs is not used, and the fetch bypasses the cache. Entries are
//! complete or absent: `data` is downloaded under a temporary name and
//! renamed, so two tasks fetching the same URI at once both end up with a
//! whole file.
//!
//! The sandbox gets a *copy*: a hard link would let a task that writes to
//! or `chmod`s its file change the cached one under every later task.

use std::path::{Path, PathBuf};

use tracing::debug;

use super::source::Source;
use super::FetchError;

/// The cache entry directory of a URI.
pub fn entry_dir(cache_dir: &Path, uri: &str) -> PathBuf {
    cache_dir.join(format!("{:016x}", fnv1a(uri.as_bytes())))
}

/// Puts the URI's bytes at `dest`, from the cache when present, otherwise
/// downloading into the cache first.
pub(super) async fn fetch_through(
    source: &Source,
    cache_dir: &Path,
    dest: &Path,
) -> Result<(), FetchError> {
    let uri = source.uri();
    let dir = entry_dir(cache_dir, uri);
    let (data, uri_file) = (dir.join("data"), dir.join("uri"));
    match tokio::fs::read_to_string(&uri_file).await {
        Ok(cached) if cached != uri => {
            debug!(uri, dir = %dir.display(), "cache slot taken by another URI, bypassing");
            return source.download(dest).await;
        }
        Ok(_) if data.is_file() => debug!(uri, "cache hit"),
        _ => {
            debug!(uri, dir = %dir.display(), "cache miss");
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| FetchError::io(uri, &dir, e))?;
            tokio::fs::write(&uri_file, uri)
                .await
                .map_err(|e| FetchError::io(uri, &uri_file, e))?;
            source.download(&data).await?;
        }
    }
    tokio::fs::copy(&data, dest)
        .await
        .map(drop)
        .map_err(|e| FetchError::io(uri, dest, e))
}

/// FNV-1a, 64 bits: stable across Rust versions (unlike `DefaultHasher`),
/// so the cache survives agent upgrades.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
