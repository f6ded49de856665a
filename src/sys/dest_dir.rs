//! Writing beneath a download folder without ever following a symlink: folders are made
//! and opened one component at a time with `O_NOFOLLOW`, files are created exclusively
//! in a folder's descriptor and moved into place with `renameat` in the same folder. A
//! link planted in the folder (at a folder's name or a temporary file's name) makes the
//! write fail; it never sends bytes elsewhere.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// A folder beneath the download root, open for creating files in it.
#[derive(Debug)]
pub struct DestDir {
    fd: OwnedFd,
}

impl DestDir {
    /// Opens the download root itself, creating it if missing. The folders above it are
    /// the task's configured path; a link at the root's own name is refused, as beneath
    /// it (see [`super::beneath::open_root`]).
    pub fn open_root(root: &Path) -> io::Result<DestDir> {
        fs::create_dir_all(root)?;
        Ok(DestDir {
            fd: super::beneath::open_root(root)?,
        })
    }

    /// Opens the folder `rel` beneath this one, creating each missing component. A
    /// component that is a symlink, or not a folder, is an error naming it.
    pub fn subdir(&self, rel: &Path) -> io::Result<DestDir> {
        let mut dir = self.reopen()?;
        for component in rel.components() {
            let Component::Normal(name) = component else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain relative path", rel.display()),
                ));
            };
            dir = dir.child(name).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: {e}", Path::new(name).display()))
            })?;
        }
        Ok(dir)
    }

    fn reopen(&self) -> io::Result<DestDir> {
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DestDir { fd })
    }

    fn child(&self, name: &OsStr) -> io::Result<DestDir> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(DestDir { fd }),
            // O_NOFOLLOW on a link fails with ELOOP; O_DIRECTORY on a file with ENOTDIR.
            Err(Errno::LOOP | Errno::NOTDIR) => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "it is a symlink or a file where a folder is needed",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the file `name`, which must not exist (`O_EXCL`: not even as a dangling
    /// link), for reading and writing.
    pub fn create_new(&self, name: &str, mode: u32) -> io::Result<File> {
        one_name(name)?;
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Opens the existing file `name` to continue writing it, only if it is what this
    /// process left there: a regular file (not a link), owned by this user, with no other
    /// name (a hard link to a file elsewhere would be written through).
    pub fn open_own(&self, name: &str) -> io::Result<File> {
        one_name(name)?;
        // O_NONBLOCK: a FIFO planted at the name must not block the open.
        let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        let st = rustix::fs::fstat(&fd)?;
        let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
        if !regular || st.st_uid != rustix::process::geteuid().as_raw() || st.st_nlink != 1 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{name} is not a file this process wrote"),
            ));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok(File::from(fd))
    }

    /// Moves `from` to `to`, both in this folder. A link at `to` is replaced, not followed.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        one_name(from)?;
        one_name(to)?;
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Removes the file (or link) `name`; a missing one is not an error.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        one_name(name)?;
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `name` is a regular file (not a link) of `size` bytes.
    pub fn has_file(&self, name: &str, size: u64) -> bool {
        if one_name(name).is_err() {
            return false;
        }
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                && u64::try_from(st.st_size).is_ok_and(|s| s == size)
        })
    }

    /// Flushes the folder itself, so renames into it survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

/// Refuses a name that is not one entry of this folder: with a `/` the kernel would
/// follow links in the middle of it, and an absolute one ignores the folder altogether
/// (a name read back from the journal is not trusted blindly).
fn one_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name in the folder"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sidewire-dest-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn folders_are_made_beneath_the_root_and_links_are_refused() {
        let dir = scratch("links");
        let outside = dir.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let root_path = dir.join("root");
        let root = DestDir::open_root(&root_path).unwrap();
        root.subdir(Path::new("a/b/c")).unwrap();
        assert!(root_path.join("a/b/c").is_dir());
        symlink(&outside, root_path.join("link")).unwrap();
        let err = root.subdir(Path::new("link/x")).unwrap_err();
        assert!(err.to_string().contains("link"), "{err}");
        fs::write(root_path.join("file"), b"f").unwrap();
        assert!(root.subdir(Path::new("file/x")).is_err());
        assert!(root.subdir(Path::new("../x")).is_err());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_created_exclusively_and_reopened_only_when_ours() {
        let dir = scratch("files");
        let secret = dir.join("secret");
        fs::write(&secret, b"secret").unwrap();
        let root = DestDir::open_root(&dir.join("root")).unwrap();
        symlink(&secret, dir.join("root/planted")).unwrap();
        assert_eq!(
            root.create_new("planted", 0o644).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(root.open_own("planted").is_err());
        fs::hard_link(&secret, dir.join("root/hard")).unwrap();
        assert!(root.open_own("hard").is_err());
        drop(root.create_new("mine", 0o644).unwrap());
        assert!(root.open_own("mine").is_ok());
        assert!(root.create_new("mine", 0o644).is_err());
        root.rename("mine", "planted").unwrap();
        assert!(root.has_file("planted", 0));
        root.sync().unwrap();
        root.remove("planted").unwrap();
        root.remove("planted").unwrap();
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_that_are_not_one_entry_of_the_folder_are_refused() {
        let dir = scratch("names");
        fs::write(dir.join("victim"), b"kept").unwrap();
        let root = DestDir::open_root(&dir.join("root")).unwrap();
        let victim = dir.join("victim").display().to_string();
        for name in ["../victim", victim.as_str(), "", ".", "..", "a/b"] {
            assert!(root.create_new(name, 0o644).is_err(), "{name:?}");
            assert!(root.open_own(name).is_err(), "{name:?}");
            assert!(root.remove(name).is_err(), "{name:?}");
            assert!(root.rename(name, "x").is_err(), "{name:?}");
            assert!(!root.has_file(name, 4), "{name:?}");
        }
        assert_eq!(fs::read(dir.join("victim")).unwrap(), b"kept");

        // A download root swapped for a link (with or without a trailing slash) is refused.
        let link = dir.join("swapped");
        symlink(dir.join("root"), &link).unwrap();
        assert!(DestDir::open_root(&link).is_err());
        assert!(DestDir::open_root(Path::new(&format!("{}/", link.display()))).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
