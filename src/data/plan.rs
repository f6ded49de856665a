//! Pure decisions of the transfer engine, kept apart from I/O so they are tested alone:
//! how a file is cut into parts, what is left to do after a restart, and where an object
//! key may be written.

use std::path::{Component, Path, PathBuf};

use crate::data::file_store::is_temp_name;

pub mod same_path;

/// Smallest part sidewire uploads or downloads (S3 allows 5 MiB; larger parts mean fewer
/// requests and fewer journal rows).
pub const MIN_PART: u64 = 8 << 20;
/// S3's limit on parts per multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// S3's limit on one part.
pub const MAX_PART: u64 = 5 << 30;
/// The largest object a download takes (some 53 TB, above S3's own limit): cut into
/// [`range_size`] ranges, it makes at most [`MAX_PARTS`] of them. A listing that states
/// more is refused rather than planned.
pub const MAX_OBJECT: u64 = MAX_PARTS * MAX_PART;

/// The part size for a file of `size` bytes: at least [`MIN_PART`], a whole number of
/// MiB, and large enough that the file fits in [`MAX_PARTS`] parts.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.clamp(MIN_PART, MAX_PART)
}

/// The ranges a download fetches in parallel: at least 32 MiB, as few requests as the
/// store's per-request cost warrants, and no more than [`MAX_PARTS`].
pub fn range_size(size: u64) -> u64 {
    part_size(size).max(32 << 20)
}

/// Whether a file is sent as a multipart upload (parts in parallel, resumable) rather than
/// one PUT.
pub fn is_multipart(size: u64) -> bool {
    size > MIN_PART
}

/// The pieces `[offset, offset + len)` a file of `size` bytes is cut into, numbered from 1
/// as S3 parts are.
pub fn pieces(size: u64, part: u64) -> impl Iterator<Item = (u32, u64, u64)> {
    let count = size.div_ceil(part.max(1));
    (0..count).map(move |i| {
        let offset = i * part;
        (i as u32 + 1, offset, part.min(size - offset))
    })
}

/// The byte ranges of `[0, size)` not covered by `done` (ranges as `(offset, len)`, in any
/// order, possibly overlapping), cut into pieces of at most `part` bytes.
pub fn missing_ranges(size: u64, done: &[(u64, u64)], part: u64) -> Vec<(u64, u64)> {
    let mut covered: Vec<(u64, u64)> = done
        .iter()
        .map(|&(o, l)| (o.min(size), o.saturating_add(l).min(size)))
        .filter(|(a, b)| a < b)
        .collect();
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut at = 0;
    for (start, end) in covered.into_iter().chain([(size, size)]) {
        while at < start {
            let len = (start - at).min(part.max(1));
            gaps.push((at, len));
            at += len;
        }
        at = at.max(end);
    }
    gaps
}

/// Why an object key is refused as a download destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProblem {
    Nul,
    Absolute,
    ParentDir,
    Empty,
    TemporaryName,
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyProblem::Nul => "it contains a NUL byte",
            KeyProblem::Absolute => "it is an absolute path",
            KeyProblem::ParentDir => "it has a '..' component that would leave the folder",
            KeyProblem::Empty => "it names no file",
            KeyProblem::TemporaryName => {
                "its name has the form sidewire gives its temporary files (.NAME.NONCE.sidewire-part)"
            }
        })
    }
}

/// The path, relative to the download folder, that object `rel` (its key with the listed
/// prefix taken off) is written to. Keys that could leave the folder are refused rather
/// than cleaned up: a listing that holds them is hostile or broken. So is a key whose
/// file would take the name of a temporary file. Empty and `.` segments are dropped, so
/// two keys can name one path ([`same_path`] finds them).
pub fn safe_relative_path(rel: &str) -> Result<PathBuf, KeyProblem> {
    if rel.contains('\0') {
        return Err(KeyProblem::Nul);
    }
    if rel.starts_with('/') {
        return Err(KeyProblem::Absolute);
    }
    let mut out = PathBuf::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(KeyProblem::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(KeyProblem::Absolute),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(KeyProblem::Empty);
    }
    if out
        .file_name()
        .is_some_and(|name| is_temp_name(&name.to_string_lossy()))
    {
        return Err(KeyProblem::TemporaryName);
    }
    Ok(out)
}

/// The part of `key` below the listed `prefix`, or `None` when the key is not inside it
/// (`data/a.bin2` is not inside `data/a.bin`). A key equal to the prefix is the single
/// object the URL names; it keeps its last segment.
pub fn key_below_prefix<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    if prefix.is_empty() {
        return Some(key);
    }
    if key == prefix {
        return Some(key.rsplit('/').next().unwrap_or(key));
    }
    let rest = key.strip_prefix(prefix)?;
    if prefix.ends_with('/') {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// The object key a local file at `rel` (relative to the uploaded folder) goes to.
pub fn upload_key(prefix: &str, rel: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

#[cfg(test)]
mod tests;
