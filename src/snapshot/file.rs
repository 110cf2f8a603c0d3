//! Reading and writing snapshot files: atomic writes, gzip by extension,
//! and load errors that name the file and the problem.

use super::format::{FORMAT, Snapshot, VERSION};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}: no such file")]
    Missing(PathBuf),
    #[error("{0}: cannot read: {1}")]
    Read(PathBuf, String),
    #[error("{0}: empty file, not a snapshot")]
    Empty(PathBuf),
    #[error("{0}: truncated (the file ends in the middle of the snapshot)")]
    Truncated(PathBuf),
    #[error("{0}: not JSON ({1})")]
    NotJson(PathBuf, String),
    #[error("{0}: not a taskscope snapshot (no \"format\": \"taskscope-snapshot\" field)")]
    NotSnapshot(PathBuf),
    #[error("{0}: snapshot version {1} not supported (this taskscope reads version {VERSION})")]
    Version(PathBuf, u64),
    #[error("{0}: invalid snapshot: {1}")]
    Invalid(PathBuf, String),
    #[error("{0}: cannot write: {1}")]
    Write(PathBuf, String),
}

fn gzipped(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Writes atomically (see [`crate::atomic_file`]): an interrupted save
/// leaves the old file, or none.
pub fn save(snapshot: &Snapshot, path: &Path) -> Result<(), SnapshotError> {
    crate::atomic_file::write_with(path, |out| {
        if gzipped(path) {
            // serde writes in small pieces; batch them before compressing.
            let mut gz =
                io::BufWriter::with_capacity(1 << 20, GzEncoder::new(out, Compression::fast()));
            serde_json::to_writer(&mut gz, snapshot)?;
            gz.into_inner().map_err(|e| e.into_error())?.finish()?;
        } else {
            serde_json::to_writer(out, snapshot)?;
        }
        Ok(())
    })
    .map_err(|e| SnapshotError::Write(path.to_path_buf(), e.to_string()))
}

/// Reads and checks a snapshot file.
pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
    let p = path.to_path_buf();
    let raw = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SnapshotError::Missing(p)),
        Err(e) => return Err(SnapshotError::Read(p, e.to_string())),
    };
    if raw.is_empty() {
        return Err(SnapshotError::Empty(p));
    }
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        match GzDecoder::new(&raw[..]).read_to_end(&mut out) {
            Ok(_) => out,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(SnapshotError::Truncated(p));
            }
            Err(e) => return Err(SnapshotError::NotJson(p, format!("bad gzip data: {e}"))),
        }
    } else {
        raw
    };
    parse(&bytes, &p)
}

/// Parses snapshot bytes (uncompressed JSON).
pub fn parse(bytes: &[u8], p: &Path) -> Result<Snapshot, SnapshotError> {
    let p = p.to_path_buf();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SnapshotError::Empty(p));
    }
    // The fast path: a valid snapshot parses straight into its type.
    if let Ok(snap) = serde_json::from_slice::<Snapshot>(bytes)
        && snap.format == FORMAT
        && snap.version == VERSION
    {
        return Ok(snap);
    }
    // Otherwise parse generically, to tell "not JSON", "another tool's
    // JSON" and "another version" apart.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            SnapshotError::Truncated(p.clone())
        } else {
            SnapshotError::NotJson(p.clone(), e.to_string())
        }
    })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(SnapshotError::NotSnapshot(p));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => return Err(SnapshotError::Version(p, v)),
        None => return Err(SnapshotError::Invalid(p, "missing \"version\"".into())),
    }
    serde_json::from_value(value).map_err(|e| SnapshotError::Invalid(p, e.to_string()))
}
