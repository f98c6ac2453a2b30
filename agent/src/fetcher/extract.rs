//! Unpacking fetched archives into the sandbox, refusing any entry that
//! would land outside it.
//!
//! An entry's name must be made of plain components: `..` anywhere or an
//! absolute path fails the fetch with [`FetchError::EscapingEntry`] (a
//! crafted archive is an attack or a broken artifact, and either way the
//! task must not start on half of it silently). Writing *through* a symlink
//! the same archive created is caught by the archive crates themselves (tar's
//! `unpack_in`, zip's `extract` check the resolved parent).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};

use super::FetchError;

/// The archive formats the fetcher unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.tar`.
    Tar,
    /// `.tar.gz`, `.tgz`.
    TarGz,
    /// `.zip`.
    Zip,
}

impl Kind {
    /// The format a file name announces, if any.
    pub fn of(name: &Path) -> Option<Kind> {
        let name = name.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Kind::TarGz)
        } else if name.ends_with(".tar") {
            Some(Kind::Tar)
        } else if name.ends_with(".zip") {
            Some(Kind::Zip)
        } else {
            None
        }
    }
}

/// Unpacks `archive` into `into` (on a blocking thread: it is file I/O and
/// decompression).
pub async fn extract(uri: &str, kind: Kind, archive: &Path, into: &Path) -> Result<(), FetchError> {
    let (uri, archive, into) = (uri.to_string(), archive.to_owned(), into.to_owned());
    let task_uri = uri.clone();
    tokio::task::spawn_blocking(move || extract_blocking(&task_uri, kind, &archive, &into))
        .await
        .map_err(|e| FetchError::Archive {
            uri,
            cause: format!("extraction task failed: {e}"),
        })?
}

fn extract_blocking(uri: &str, kind: Kind, archive: &Path, into: &Path) -> Result<(), FetchError> {
    tracing::debug!(uri, archive = %archive.display(), ?kind, "extracting");
    let file = File::open(archive).map_err(|e| FetchError::io(uri, archive, e))?;
    match kind {
        Kind::Tar => untar(uri, BufReader::new(file), into),
        Kind::TarGz => untar(
            uri,
            flate2::read::GzDecoder::new(BufReader::new(file)),
            into,
        ),
        Kind::Zip => unzip(uri, file, into),
    }
}

fn archive_error(uri: &str, e: impl std::fmt::Display) -> FetchError {
    FetchError::Archive {
        uri: uri.to_string(),
        cause: e.to_string(),
    }
}

/// Whether an entry name stays inside the directory it is unpacked in.
fn stays_inside(name: &Path) -> bool {
    name.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn untar(uri: &str, reader: impl Read, into: &Path) -> Result<(), FetchError> {
    let mut archive = tar::Archive::new(reader);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(|e| archive_error(uri, e))? {
        let mut entry = entry.map_err(|e| archive_error(uri, e))?;
        let name = entry
            .path()
            .map_err(|e| archive_error(uri, e))?
            .into_owned();
        let escaping = || FetchError::EscapingEntry {
            uri: uri.to_string(),
            entry: name.display().to_string(),
        };
        if !stays_inside(&name) {
            return Err(escaping());
        }
        // false: tar skipped it as escaping, which the check above rules
        // out for names; kept as a refusal for whatever else it catches.
        if !entry.unpack_in(into).map_err(|e| archive_error(uri, e))? {
            return Err(escaping());
        }
    }
    Ok(())
}

fn unzip(uri: &str, file: File, into: &Path) -> Result<(), FetchError> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| archive_error(uri, e))?;
    // The central directory lists every name up front: check them all
    // before writing anything.
    for name in archive.file_names() {
        if !stays_inside(Path::new(name)) {
            return Err(FetchError::EscapingEntry {
                uri: uri.to_string(),
                entry: name.to_string(),
            });
        }
    }
    archive.extract(into).map_err(|e| archive_error(uri, e))
}
