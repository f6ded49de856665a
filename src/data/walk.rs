//! Lists the regular files under a local folder, for uploads, and opens them without ever
//! leaving the folder: it belongs to the user container, and a link in it must not make
//! the uploader read its own files (credentials, tokens, `/etc/shadow`).
//!
//! The folder is opened once ([`Root`]); listing and every later open go through that
//! descriptor ([`crate::sys::beneath`]). A link whose target is inside the folder is listed
//! as its target; a link that leads out, dangles, or names no regular file is skipped,
//! and each skip is reported with its reason so the caller can log it.

use std::fs::Metadata;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Stat};
use rustix::io::Errno;

use crate::sys::beneath::{self, Opened};

/// One file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Path relative to the walked folder, `/`-separated.
    pub rel: String,
    /// The folder joined with `rel`: for messages only, never opened (see [`Root::open`]).
    pub path: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch: with the size, how a restarted
    /// upload tells that a file changed since its parts were sent.
    pub mtime_ns: i64,
}

impl LocalFile {
    /// Takes size and modification time from `meta` (the status of the opened file, so
    /// what is sent is what was checked).
    pub fn refresh(&mut self, meta: &Metadata) {
        self.size = meta.len();
        self.mtime_ns = mtime_ns(meta.mtime(), meta.mtime_nsec());
    }
}

/// An entry that is not uploaded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// As listed (relative to the folder), or as a `kpi:` spec gave it.
    pub rel: String,
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Skipped {}: {}", self.path.display(), self.reason)
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Sorted by path.
    pub files: Vec<LocalFile>,
    pub skipped: Vec<Skipped>,
}

/// Nanoseconds since the epoch of a modification time of `secs` seconds and `nsec`
/// nanoseconds. Times beyond what an `i64` of nanoseconds holds (before 1678 or after
/// 2262; `touch -d @1e10` makes one) saturate at `i64::MIN` or `i64::MAX`: two such files
/// then share a time, and only their size tells a change.
pub fn mtime_ns(secs: i64, nsec: i64) -> i64 {
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nsec))
        .unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

/// The total of `sizes`, saturating: sparse files can claim sizes that add past `u64`.
pub fn total_size(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().fold(0, u64::saturating_add)
}

/// A folder opened for uploading from.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens the folder at `path`; `None` when it does not exist (an empty folder).
    pub fn open(path: &Path) -> io::Result<Option<Root>> {
        match beneath::open_root(path) {
            Ok(fd) => Ok(Some(Root {
                fd,
                path: path.to_path_buf(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the listed file `rel` for reading, beneath the folder: the inner error is a
    /// refusal to log (a link that leads out, a file gone since it was listed), the outer
    /// one a failure (permissions, I/O).
    pub fn open_file(&self, rel: &str) -> io::Result<Result<Opened, Skipped>> {
        match beneath::open_file(self.fd.as_fd(), Path::new(rel)) {
            Ok(opened) => Ok(Ok(opened)),
            Err(e) => self.refused(rel, e).map(Err),
        }
    }

    /// The single file `rel` (a `kpi:` output). An absolute path, a `..`, or a path that
    /// resolves outside the folder is refused like a link that leads out.
    fn one(&self, rel: &str) -> io::Result<Result<LocalFile, Skipped>> {
        if !stays_inside(rel) {
            return Ok(Err(Skipped {
                rel: rel.to_owned(),
                path: PathBuf::from(rel),
                reason: "the path leaves the output folder".into(),
            }));
        }
        self.regular_file(rel)
    }

    /// Every regular file under the folder (and links to one inside it), sorted by path.
    /// Linked folders are not entered (they could loop); their files are listed under
    /// their real place. Names that are not UTF-8 are an error: they could not become
    /// object keys faithfully.
    pub fn walk(&self) -> io::Result<Listing> {
        let mut listing = Listing::default();
        let mut dirs = vec![PathBuf::new()];
        while let Some(rel_dir) = dirs.pop() {
            let fd = match beneath::open_dir(self.fd.as_fd(), &rel_dir) {
                Ok(fd) => fd,
                // A folder removed or replaced while the walk ran (a job deleting an old
                // checkpoint): skipped, the rest goes on. The root itself must open.
                Err(e) if !rel_dir.as_os_str().is_empty() => {
                    let rel = rel_dir.to_string_lossy().into_owned();
                    listing.skipped.push(self.refused(&rel, e)?);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for entry in rustix::fs::Dir::read_from(&fd)? {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let rel = rel_dir.join(std::ffi::OsStr::from_bytes(name));
                let Some(rel_str) = rel.to_str().map(str::to_owned) else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not a UTF-8 name", self.path.join(&rel).display()),
                    ));
                };
                let mut kind = entry.file_type();
                let mut stat = None;
                if kind == FileType::Unknown || kind == FileType::RegularFile {
                    let st =
                        match rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        {
                            Ok(st) => st,
                            // Removed since the folder was read: nothing to upload.
                            Err(Errno::NOENT) => continue,
                            Err(e) => return Err(e.into()),
                        };
                    kind = FileType::from_raw_mode(st.st_mode);
                    stat = Some(st);
                }
                match (kind, stat) {
                    (FileType::Directory, _) => dirs.push(rel),
                    (FileType::RegularFile, Some(st)) => {
                        let (size, mtime_ns) = size_and_mtime(&st);
                        let mut file = self.local_file(rel_str);
                        (file.size, file.mtime_ns) = (size, mtime_ns);
                        listing.files.push(file);
                    }
                    (FileType::Symlink, _) => match self.regular_file(&rel_str)? {
                        Ok(file) => listing.files.push(file),
                        Err(skip) => listing.skipped.push(skip),
                    },
                    // Sockets, FIFOs, devices: not data.
                    _ => {}
                }
            }
        }
        listing.files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(listing)
    }

    /// What `rel` names, when it is a regular file inside the folder (a link is followed,
    /// while it stays inside).
    fn regular_file(&self, rel: &str) -> io::Result<Result<LocalFile, Skipped>> {
        let meta = match beneath::stat(self.fd.as_fd(), Path::new(rel)) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return self.refused(rel, beneath::not_regular()).map(Err),
            Err(e) => return self.refused(rel, e).map(Err),
        };
        let mut file = self.local_file(rel.to_owned());
        file.refresh(&meta);
        Ok(Ok(file))
    }

    fn local_file(&self, rel: String) -> LocalFile {
        LocalFile {
            path: self.path.join(&rel),
            rel,
            size: 0,
            mtime_ns: 0,
        }
    }

    /// A refusal to skip `rel` for, when `e` is one; else `e` itself.
    fn refused(&self, rel: &str, e: io::Error) -> io::Result<Skipped> {
        let reason = match e.raw_os_error().map(Errno::from_raw_os_error) {
            Some(Errno::XDEV) => "it leads outside the folder",
            Some(Errno::NOENT) => "it does not exist (a link that dangles, or a file removed)",
            Some(Errno::LOOP) => "a link that is not followed here",
            Some(Errno::NOTDIR) => "a folder on its path was replaced by a file",
            _ if beneath::is_not_regular(&e) => "not a regular file",
            _ => return Err(e),
        };
        Ok(Skipped {
            rel: rel.to_owned(),
            path: self.path.join(rel),
            reason: reason.into(),
        })
    }
}

/// Whether the relative path `rel` names something beneath its folder by its words alone
/// (links are the kernel's to check).
fn stays_inside(rel: &str) -> bool {
    Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The files to upload from the folder `root` (all of them, or only the file `only`),
/// with the folder opened for reading them. A folder that does not exist holds nothing.
pub fn list(root: &Path, only: Option<&str>) -> io::Result<(Option<Root>, Listing)> {
    let folder = Root::open(root)?;
    let mut listing = Listing::default();
    match (&folder, only) {
        (Some(folder), None) => listing = folder.walk()?,
        (Some(folder), Some(rel)) => match folder.one(rel)? {
            Ok(file) => listing.files.push(file),
            Err(skip) => listing.skipped.push(skip),
        },
        (None, Some(rel)) => listing.skipped.push(Skipped {
            rel: rel.to_owned(),
            path: root.join(rel),
            reason: "it does not exist".into(),
        }),
        (None, None) => {}
    }
    Ok((folder, listing))
}

/// Size and modification time from a status whose field types differ between
/// architectures (hence the casts, a no-op on some).
#[allow(clippy::unnecessary_cast)]
fn size_and_mtime(st: &Stat) -> (u64, i64) {
    let size = u64::try_from(st.st_size).unwrap_or(0);
    (size, mtime_ns(st.st_mtime as i64, st.st_mtime_nsec as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn walk(dir: &Path) -> Listing {
        list(dir, None).unwrap().1
    }

    #[test]
    fn lists_nested_files_sorted_with_sizes() {
        let dir = std::env::temp_dir().join(format!("sidewire-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("b/c")).unwrap();
        fs::write(dir.join("b/c/x.txt"), b"12345").unwrap();
        fs::write(dir.join("a.txt"), b"").unwrap();
        symlink(dir.join("a.txt"), dir.join("abslink")).unwrap();
        symlink("b/c/x.txt", dir.join("link")).unwrap();
        symlink(dir.join("b"), dir.join("dirlink")).unwrap();
        let listing = walk(&dir);
        let names: Vec<_> = listing
            .files
            .iter()
            .map(|f| (f.rel.as_str(), f.size))
            .collect();
        assert_eq!(names, vec![("a.txt", 0), ("b/c/x.txt", 5), ("link", 5)]);
        // A link by absolute path leads out of the folder as the kernel resolves it.
        let skipped: Vec<_> = listing.skipped.iter().map(|s| s.to_string()).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("abslink: it leads outside")),
            "{skipped:?}"
        );
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("dirlink: it leads outside")),
            "{skipped:?}"
        );
        assert!(walk(&dir.join("missing")).files.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_single_file_must_name_one_inside_the_folder() {
        let dir = std::env::temp_dir().join(format!("sidewire-walk-one-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("out/m")).unwrap();
        fs::write(dir.join("secret"), b"s").unwrap();
        fs::write(dir.join("out/m/kpi.json"), b"{}").unwrap();
        symlink("../../secret", dir.join("out/m/escape.json")).unwrap();
        let one = |rel: &str| list(&dir.join("out"), Some(rel)).unwrap().1;
        assert_eq!(one("m/kpi.json").files[0].size, 2);
        assert_eq!(one("./m/kpi.json").files.len(), 1);
        let secret = dir.join("secret");
        for (rel, reason) in [
            (secret.to_str().unwrap(), "leaves the output folder"),
            ("m/../../secret", "leaves the output folder"),
            ("m/escape.json", "leads outside the folder"),
            ("m/none.json", "does not exist"),
        ] {
            let listing = one(rel);
            assert!(listing.files.is_empty(), "{rel}");
            let line = listing.skipped[0].to_string();
            assert!(
                line.contains(reason) && line.contains(rel.trim_start_matches("m/")),
                "{line}"
            );
        }
        let missing = list(&dir.join("absent"), Some("kpi.json")).unwrap().1;
        assert!(missing.skipped[0]
            .to_string()
            .contains("absent/kpi.json: it does not exist"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mtimes_beyond_the_nanosecond_range_saturate() {
        assert_eq!(mtime_ns(1, 5), 1_000_000_005);
        assert_eq!(mtime_ns(-1, 5), -999_999_995);
        assert_eq!(mtime_ns(10_000_000_000, 0), i64::MAX);
        assert_eq!(mtime_ns(-10_000_000_000, 0), i64::MIN);
        assert_eq!(mtime_ns(9_223_372_036, 999_999_999), i64::MAX);
        assert_eq!(total_size([u64::MAX, 1, 2]), u64::MAX);
        assert_eq!(total_size([3, 4]), 7);
    }
}
