//! Files and folders only this user may open: the journal, `sidewire run`'s work folder
//! (which holds the agent's socket) and the credential file ctrl publishes. Nothing here
//! follows a symlink at the last component, so a name planted by another user (or by the
//! user container, on a shared volume) is refused instead of written through.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Makes `dir` (not its parents) with mode 0700, or tightens an existing folder of ours to
/// 0700. A folder owned by someone else, a shared one (the sticky bit, as `/tmp` has) or a
/// symlink is refused: changing its mode would take it from others, or follow the link.
/// Errors name the folder.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    }
    // Checked and changed through one descriptor opened without following a link, so a
    // folder swapped for a link between the check and the change is never followed.
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let refuse = |why: &str| Err(io::Error::other(format!("{}: {why}", dir.display())));
    let fd = match rustix::fs::open(
        super::beneath::without_trailing_slash(dir),
        flags,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            return refuse("not a folder (a symlink or a file is in its place)")
        }
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    };
    let st = rustix::fs::fstat(&fd)?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return refuse("the folder belongs to another user");
    }
    if st.st_mode & 0o1000 != 0 {
        return refuse("a shared folder (sticky bit): pick a folder of your own");
    }
    if st.st_mode & 0o777 != 0o700 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
    }
    Ok(())
}

/// Makes `path` a regular file with mode 0600 (an existing one keeps its content and is
/// tightened to 0600), without following a symlink in its place.
pub fn private_file(path: &Path) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    if meta.mode() & 0o777 != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Writes `bytes` to `dest` with mode 0600 through a new temporary file beside it
/// (`O_EXCL|O_NOFOLLOW`, so a name planted beforehand is never written through), flushed,
/// then renamed over `dest`: a reader sees the old file or the new one, never half of one.
pub fn replace_file(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: no file name", dest.display())))?
        .to_string_lossy();
    // A few tries: a clash means someone planted the random name, or a crash left it.
    let mut random = super::random::Random::new()?;
    let mut last = None;
    for _ in 0..8 {
        let temp = dir.join(format!(".{name}.{:016x}.tmp", random.u64()));
        let opened = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
            .open(&temp);
        let mut file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temp, dest));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        return written;
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

#[cfg(test)]
mod tests;
