//! Lists the regular files under a local folder, for uploads.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Path relative to the walked folder, `/`-separated.
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch: with the size, how a restarted
    /// upload tells that a file changed since its parts were sent.
    pub mtime_ns: i64,
}

/// Every regular file under `root` (following symlinks to files, as a user would expect
/// of an output folder, but not into linked folders, which could loop), sorted by path.
/// A missing `root` is an empty folder. Names that are not UTF-8 are an error: they could
/// not become object keys faithfully.
pub fn walk(root: &Path) -> io::Result<Vec<LocalFile>> {
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel_dir) = dirs.pop() {
        let entries = match fs::read_dir(root.join(&rel_dir)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && rel_dir.as_os_str().is_empty() => {
                return Ok(files)
            }
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let rel = rel_dir.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(rel);
                continue;
            }
            let path = root.join(&rel);
            let meta = if kind.is_symlink() {
                match fs::metadata(&path) {
                    Ok(m) if m.is_file() => m,
                    _ => continue,
                }
            } else if kind.is_file() {
                entry.metadata()?
            } else {
                continue;
            };
            let rel = rel.to_str().map(str::to_owned).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a UTF-8 name", path.display()),
                )
            })?;
            files.push(LocalFile {
                rel,
                path,
                size: meta.len(),
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            });
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nested_files_sorted_with_sizes() {
        let dir = std::env::temp_dir().join(format!("sidewire-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("b/c")).unwrap();
        fs::write(dir.join("b/c/x.txt"), b"12345").unwrap();
        fs::write(dir.join("a.txt"), b"").unwrap();
        std::os::unix::fs::symlink(dir.join("a.txt"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.join("b"), dir.join("dirlink")).unwrap();
        let files = walk(&dir).unwrap();
        let names: Vec<_> = files.iter().map(|f| (f.rel.as_str(), f.size)).collect();
        assert_eq!(names, vec![("a.txt", 0), ("b/c/x.txt", 5), ("link", 0)]);
        assert!(walk(&dir.join("missing")).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
