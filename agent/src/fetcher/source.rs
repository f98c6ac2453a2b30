//! Where a URI's bytes come from: an HTTP(S) server or a local file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::FetchError;

/// A parsed URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `http://` or `https://`, as given.
    Http(String),
    /// `file:///path` or `/path`.
    File {
        /// The URI as given (for errors).
        uri: String,
        /// The local path.
        path: PathBuf,
    },
}

impl Source {
    /// Reads a URI; only the schemes the fetcher serves are accepted.
    pub fn parse(uri: &str) -> Result<Self, FetchError> {
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(Source::Http(uri.to_string()));
        }
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        if path.starts_with('/') {
            return Ok(Source::File {
                uri: uri.to_string(),
                path: PathBuf::from(path),
            });
        }
        Err(FetchError::UnsupportedScheme {
            uri: uri.to_string(),
        })
    }

    /// The URI as given.
    pub fn uri(&self) -> &str {
        match self {
            Source::Http(uri) | Source::File { uri, .. } => uri,
        }
    }

    /// The last segment of the URI's path (query and fragment dropped).
    pub fn file_name(&self) -> Result<String, FetchError> {
        let path = match self {
            Source::Http(uri) => {
                let rest = uri.split_once("://").map_or(uri.as_str(), |(_, r)| r);
                let rest = rest.split(['?', '#']).next().unwrap_or("");
                rest.split_once('/').map_or("", |(_, p)| p)
            }
            Source::File { path, .. } => path.to_str().unwrap_or(""),
        };
        match path.rsplit('/').next() {
            Some(name) if !name.is_empty() && name != "." && name != ".." => Ok(name.to_string()),
            _ => Err(FetchError::NoFileName {
                uri: self.uri().to_string(),
            }),
        }
    }

    /// Writes the bytes to `dest`, through a temporary file in the same
    /// directory renamed into place once complete.
    pub async fn download(&self, dest: &Path) -> Result<(), FetchError> {
        let uri = self.uri();
        let part = dest.with_file_name(format!(".{}.part", uuid::Uuid::new_v4()));
        let result = match self {
            Source::Http(url) => http_get(url, &part).await,
            Source::File { path, .. } => tokio::fs::copy(path, &part)
                .await
                .map(drop)
                .map_err(|e| FetchError::io(uri, path, e)),
        };
        let result = match result {
            Ok(()) => tokio::fs::rename(&part, dest)
                .await
                .map_err(|e| FetchError::io(uri, dest, e)),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        result
    }
}

/// One client per agent: connection pools and TLS config are reused.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                // No overall timeout: artifacts can be large. A dead server
                // is caught at connect time.
                .connect_timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| chain(&e))
        })
        .as_ref()
        .map_err(Clone::clone)
}

async fn http_get(url: &str, part: &Path) -> Result<(), FetchError> {
    let http = |cause: String| FetchError::Http {
        uri: url.to_string(),
        cause,
    };
    debug!(url, "HTTP GET");
    let mut response = client()
        .map_err(http)?
        .get(url)
        .send()
        .await
        .map_err(|e| http(chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::HttpStatus {
            uri: url.to_string(),
            status: status.as_u16(),
        });
    }
    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(|e| FetchError::io(url, part, e))?;
    // Streamed, so a large artifact never sits in memory.
    while let Some(chunk) = response.chunk().await.map_err(|e| http(chain(&e)))? {
        file.write_all(&chunk)
            .await
            .map_err(|e| FetchError::io(url, part, e))?;
    }
    file.flush().await.map_err(|e| FetchError::io(url, part, e))
}

/// An error and its sources on one line: reqwest's own message ("error
/// sending request") says nothing without them.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
