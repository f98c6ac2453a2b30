//! Mesos' files API over the agent's sandboxes: `/files/browse`,
//! `/files/read` and `/files/download`.
//!
//! Every path is resolved (symlinks included) and must lie under the
//! sandboxes' root (`<work_dir>/slaves`); anything else is refused with 403
//! and never opened, so `../` tricks and links out of a sandbox fail alike.

use std::io::SeekFrom;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The most `/files/read` returns in one answer.
const MAX_READ: u64 = 4 * 1024 * 1024;

/// Why a path cannot be served.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilesError {
    /// The request has no `path`.
    #[error("missing 'path' query parameter")]
    MissingPath,
    /// The path is not under the sandboxes.
    #[error("'{0}' is outside the agent's sandboxes")]
    Forbidden(String),
    /// Nothing is there.
    #[error("'{0}' does not exist")]
    NotFound(String),
    /// A bad `offset`/`length`, or reading a directory.
    #[error("{0}")]
    BadRequest(String),
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        let status = match self {
            FilesError::MissingPath | FilesError::BadRequest(_) => StatusCode::BAD_REQUEST,
            FilesError::Forbidden(_) => StatusCode::FORBIDDEN,
            FilesError::NotFound(_) => StatusCode::NOT_FOUND,
        };
        (status, self.to_string()).into_response()
    }
}

/// The directory under which paths may be served.
#[derive(Debug, Clone)]
pub struct FilesRoot {
    root: PathBuf,
}

impl FilesRoot {
    /// Serves what lies under `root` (created if missing, so it can be resolved).
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(FilesRoot {
            root: root.canonicalize()?,
        })
    }

    /// The real path of `requested`, if it exists and lies under the root.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, FilesError> {
        if requested.is_empty() {
            return Err(FilesError::MissingPath);
        }
        let path = Path::new(requested);
        // Refuse before touching the file system when the text alone escapes.
        if !path.is_absolute() {
            return Err(FilesError::Forbidden(requested.to_string()));
        }
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(_) if !lexically_under(path, &self.root) => {
                return Err(FilesError::Forbidden(requested.to_string()))
            }
            Err(_) => return Err(FilesError::NotFound(requested.to_string())),
        };
        if !real.starts_with(&self.root) {
            return Err(FilesError::Forbidden(requested.to_string()));
        }
        Ok(real)
    }
}

/// Whether `path`, with `.`/`..` folded as text, lies under `root`.
fn lexically_under(path: &Path, root: &Path) -> bool {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(p) => parts.push(p),
            _ => {}
        }
    }
    let folded: PathBuf = std::iter::once(std::ffi::OsStr::new("/"))
        .chain(parts)
        .collect();
    folded.starts_with(root)
}

/// `-rw-r--r--`-style mode string, as Mesos' browse shows it.
fn mode_string(meta: &std::fs::Metadata) -> String {
    let kind = if meta.is_dir() {
        'd'
    } else if meta.file_type().is_symlink() {
        'l'
    } else {
        '-'
    };
    let mode = meta.permissions().mode();
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn entry_json(path: &Path, meta: &std::fs::Metadata) -> Value {
    json!({
        "path": path.display().to_string(),
        "nlink": meta.nlink(),
        "size": meta.len(),
        "mtime": meta.mtime(),
        "mode": mode_string(meta),
        "uid": meta.uid().to_string(),
        "gid": meta.gid().to_string(),
    })
}

/// The routes.
pub fn router(root: FilesRoot) -> Router {
    Router::new()
        .route("/files/browse", get(browse))
        .route("/files/browse.json", get(browse))
        .route("/files/read", get(read))
        .route("/files/read.json", get(read))
        .route("/files/download", get(download))
        .route("/files/download.json", get(download))
        .with_state(root)
}

#[derive(Debug, Deserialize)]
struct FileQuery {
    path: Option<String>,
    offset: Option<i64>,
    length: Option<i64>,
}

async fn browse(
    State(root): State<FilesRoot>,
    Query(q): Query<FileQuery>,
) -> Result<Json<Value>, FilesError> {
    let requested = q.path.ok_or(FilesError::MissingPath)?;
    let dir = root.resolve(&requested)?;
    let meta = tokio::fs::symlink_metadata(&dir)
        .await
        .map_err(|_| FilesError::NotFound(requested.clone()))?;
    if !meta.is_dir() {
        return Ok(Json(json!([entry_json(&dir, &meta)])));
    }
    let mut entries = Vec::new();
    let mut listing = tokio::fs::read_dir(&dir)
        .await
        .map_err(|_| FilesError::NotFound(requested.clone()))?;
    while let Ok(Some(entry)) = listing.next_entry().await {
        if let Ok(meta) = entry.metadata().await {
            entries.push(entry_json(&entry.path(), &meta));
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(Json(Value::Array(entries)))
}

async fn read(
    State(root): State<FilesRoot>,
    Query(q): Query<FileQuery>,
) -> Result<Json<Value>, FilesError> {
    let requested = q.path.ok_or(FilesError::MissingPath)?;
    let path = root.resolve(&requested)?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| FilesError::NotFound(requested.clone()))?;
    let meta = file
        .metadata()
        .await
        .map_err(|_| FilesError::NotFound(requested.clone()))?;
    if meta.is_dir() {
        return Err(FilesError::BadRequest(format!(
            "'{requested}' is a directory"
        )));
    }
    let size = meta.len();
    // Mesos: no offset (or -1) answers the file's length, with no data.
    let offset = match q.offset.unwrap_or(-1) {
        -1 => return Ok(Json(json!({"data": "", "offset": size}))),
        o if o < 0 => return Err(FilesError::BadRequest(format!("invalid offset {o}"))),
        o => o as u64,
    };
    let length = match q.length {
        None | Some(-1) => MAX_READ,
        Some(l) if l < 0 => return Err(FilesError::BadRequest(format!("invalid length {l}"))),
        Some(l) => (l as u64).min(MAX_READ),
    };
    let start = offset.min(size);
    let mut data = vec![0u8; (size - start).min(length) as usize];
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| FilesError::BadRequest(e.to_string()))?;
    file.read_exact(&mut data)
        .await
        .map_err(|e| FilesError::BadRequest(e.to_string()))?;
    Ok(Json(json!({
        "data": String::from_utf8_lossy(&data),
        "offset": start,
    })))
}

async fn download(
    State(root): State<FilesRoot>,
    Query(q): Query<FileQuery>,
) -> Result<Response, FilesError> {
    let requested = q.path.ok_or(FilesError::MissingPath)?;
    let path = root.resolve(&requested)?;
    if path.is_dir() {
        return Err(FilesError::BadRequest(format!(
            "'{requested}' is a directory"
        )));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| FilesError::NotFound(requested.clone()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_under_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_dir = dir.path().join("slaves");
        let files = FilesRoot::new(root_dir.clone()).expect("root");
        std::fs::write(root_dir.join("stdout"), "hi").expect("write");
        std::fs::write(dir.path().join("secret"), "no").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root_dir.join("link"))
            .expect("symlink");
        let root = root_dir.canonicalize().expect("canon");
        assert_eq!(
            files.resolve(&root.join("stdout").display().to_string()),
            Ok(root.join("stdout"))
        );
        let escape = format!("{}/../secret", root.display());
        assert!(matches!(
            files.resolve(&escape),
            Err(FilesError::Forbidden(_))
        ));
        let link = root.join("link").display().to_string();
        assert!(matches!(
            files.resolve(&link),
            Err(FilesError::Forbidden(_))
        ));
        assert!(matches!(
            files.resolve("/etc/passwd"),
            Err(FilesError::Forbidden(_))
        ));
        assert!(matches!(
            files.resolve("relative"),
            Err(FilesError::Forbidden(_))
        ));
        let missing = root.join("nope").display().to_string();
        assert!(matches!(
            files.resolve(&missing),
            Err(FilesError::NotFound(_))
        ));
        assert!(matches!(
            files.resolve("/nonexistent/../../etc/x"),
            Err(FilesError::Forbidden(_))
        ));
        assert_eq!(files.resolve(""), Err(FilesError::MissingPath));
    }

    #[test]
    fn modes_look_like_ls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        std::fs::write(&f, "x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o754)).expect("chmod");
        let meta = std::fs::metadata(&f).expect("meta");
        assert_eq!(mode_string(&meta), "-rwxr-xr--");
        assert!(mode_string(&std::fs::metadata(dir.path()).expect("meta")).starts_with('d'));
    }
}
