//! The fetcher: a task's `CommandInfo.uris` become files in its sandbox
//! before the task starts, as Mesos' fetcher does it.
//!
//! For each URI, in order:
//!
//! 1. the [`source`] is read: `http://` and `https://` (reqwest, rustls with
//!    bundled roots, so no system CA store is needed), `file://` and plain
//!    absolute paths; anything else is refused;
//! 2. it lands in the sandbox as `output_file` if given, else under the last
//!    segment of its path. With `cache: true` it is first stored once per
//!    agent in the [`cache`] (keyed by the URI) and copied from there, so
//!    later tasks get it even if the server is gone;
//! 3. `executable: true` makes it mode 0755; otherwise, as in Mesos, a
//!    `.tar`, `.tar.gz`/`.tgz` or `.zip` is [`extract`]ed into the sandbox
//!    unless `extract: false`, refusing entries that would land outside it.
//!
//! Everything a URI may do is confined to the sandbox: downloads go to a
//! temporary name first and are renamed into place, so a failed fetch never
//! leaves a file that looks complete. The first failure stops the fetch with
//! a [`FetchError`] naming the URI and the cause; the agent reports it as
//! `TASK_FAILED` with `REASON_CONTAINER_LAUNCH_FAILED`.

pub mod cache;
pub mod extract;
pub mod source;

#[cfg(test)]
mod tests;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use agora_proto::command_info::Uri;
use tracing::{debug, info};

use source::Source;

/// A URI that could not be fetched; every variant names it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not http, https, file, nor an absolute path.
    #[error("cannot fetch '{uri}': unsupported scheme (http, https, file and absolute paths are)")]
    UnsupportedScheme {
        /// The URI.
        uri: String,
    },
    /// The URI's path has no last segment to name the file after.
    #[error("cannot fetch '{uri}': it names no file; set output_file")]
    NoFileName {
        /// The URI.
        uri: String,
    },
    /// `output_file` is absolute or climbs out of the sandbox.
    #[error("cannot fetch '{uri}': output_file '{output_file}' must be a relative path inside the sandbox")]
    BadOutputFile {
        /// The URI.
        uri: String,
        /// The offending name.
        output_file: String,
    },
    /// The HTTP request failed (connection, TLS, body).
    #[error("cannot fetch '{uri}': {cause}")]
    Http {
        /// The URI.
        uri: String,
        /// The error and its causes, outermost first.
        cause: String,
    },
    /// The server answered with a non-success status.
    #[error("cannot fetch '{uri}': HTTP status {status}")]
    HttpStatus {
        /// The URI.
        uri: String,
        /// The status code.
        status: u16,
    },
    /// A file could not be read or written.
    #[error("cannot fetch '{uri}': {}: {source}", path.display())]
    Io {
        /// The URI.
        uri: String,
        /// The file or directory concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An archive entry would be written outside the sandbox.
    #[error("cannot extract '{uri}': entry '{entry}' would escape the sandbox")]
    EscapingEntry {
        /// The URI.
        uri: String,
        /// The entry's name in the archive.
        entry: String,
    },
    /// The archive is corrupt or unreadable.
    #[error("cannot extract '{uri}': {cause}")]
    Archive {
        /// The URI.
        uri: String,
        /// What the archive reader said.
        cause: String,
    },
}

impl FetchError {
    /// The URI that failed.
    pub fn uri(&self) -> &str {
        match self {
            FetchError::UnsupportedScheme { uri }
            | FetchError::NoFileName { uri }
            | FetchError::BadOutputFile { uri, .. }
            | FetchError::Http { uri, .. }
            | FetchError::HttpStatus { uri, .. }
            | FetchError::Io { uri, .. }
            | FetchError::EscapingEntry { uri, .. }
            | FetchError::Archive { uri, .. } => uri,
        }
    }

    pub(crate) fn io(uri: &str, path: &Path, source: io::Error) -> Self {
        FetchError::Io {
            uri: uri.to_string(),
            path: path.to_owned(),
            source,
        }
    }
}

/// Fetches every URI into `sandbox`, caching those marked `cache` under
/// `cache_dir` (one directory per agent, shared by its tasks).
pub async fn fetch(uris: &[Uri], sandbox: &Path, cache_dir: &Path) -> Result<(), FetchError> {
    for uri in uris {
        fetch_one(uri, sandbox, cache_dir).await?;
    }
    Ok(())
}

async fn fetch_one(uri: &Uri, sandbox: &Path, cache_dir: &Path) -> Result<(), FetchError> {
    let value = uri.value.as_str();
    let source = Source::parse(value)?;
    let name = match uri.output_file.as_deref() {
        Some(output) => relative_inside(output).ok_or_else(|| FetchError::BadOutputFile {
            uri: value.to_string(),
            output_file: output.to_string(),
        })?,
        None => PathBuf::from(source.file_name()?),
    };
    let dest = sandbox.join(&name);
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| FetchError::io(value, parent, e))?;
    }
    debug!(uri = value, dest = %dest.display(), cache = uri.cache(), "fetching");
    if uri.cache() {
        cache::fetch_through(&source, cache_dir, &dest).await?;
    } else {
        source.download(&dest).await?;
    }
    if uri.executable() {
        let mode = std::fs::Permissions::from_mode(0o755);
        tokio::fs::set_permissions(&dest, mode)
            .await
            .map_err(|e| FetchError::io(value, &dest, e))?;
    } else if uri.extract.unwrap_or(true) {
        if let Some(kind) = extract::Kind::of(&name) {
            extract::extract(value, kind, &dest, sandbox).await?;
        }
    }
    info!(uri = value, dest = %dest.display(), "fetched");
    Ok(())
}

/// `name` as a path of plain components (no `..`, not absolute, not empty).
fn relative_inside(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    (plain && path.components().any(|c| matches!(c, Component::Normal(_)))).then(|| path.to_owned())
}
