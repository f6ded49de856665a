//! Reading files beneath a folder without leaving it: the output folder belongs to the user
//! container, so a link in it must never make ctrl read its own files. Files are opened
//! with `openat2(RESOLVE_BENEATH)`, which lets a link lead elsewhere inside the folder but
//! fails with `EXDEV` when it leads out. Kernels without `openat2` (before 5.6) get a walk
//! component by component with `O_NOFOLLOW`, where every link is refused (`ELOOP`).

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Resolution that follows links while they stay inside the root (never `/proc` magic
/// links), for files and their status.
const INSIDE_LINKS_FOLLOWED: ResolveFlags =
    ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// A regular file opened beneath a folder, with its status as of the open.
pub struct Opened {
    pub file: File,
    pub meta: Metadata,
}

/// Opens the folder `path` as the root that files are opened beneath. A link at the
/// folder's own name is refused (a trailing `/` does not make it followed): the user
/// container could otherwise swap its output folder for a link to `/` and have ctrl's own
/// files read beneath that. The folders above it are the task's configuration.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    match rustix::fs::open(without_trailing_slash(path), flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        // O_NOFOLLOW with O_DIRECTORY on a link gives ENOTDIR (ELOOP on some kernels).
        Err(Errno::LOOP | Errno::NOTDIR) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symlink or a file, not a folder: give the folder's own path",
                path.display()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `path` without trailing slashes (with one, `O_NOFOLLOW` would not apply to its last
/// name). The root `/` stays as it is.
pub fn without_trailing_slash(path: &Path) -> &Path {
    let bytes = path.as_os_str().as_encoded_bytes();
    let mut end = bytes.len();
    while end > 1 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    match path.to_str() {
        Some(text) => Path::new(&text[..end]),
        None => path,
    }
}

/// Opens the folder `rel` beneath `root` for listing, through no link at all: a walk
/// descends only into real folders, so a link met here was put there during the walk.
pub fn open_dir(root: BorrowedFd, rel: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    open_beneath(root, rel, flags, resolve)
}

/// Opens the regular file `rel` for reading beneath `root`. The open is non-blocking, so
/// a FIFO put in its place never blocks it; anything but a regular file is refused (see
/// [`is_not_regular`]).
pub fn open_file(root: BorrowedFd, rel: &Path) -> io::Result<Opened> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd = open_beneath(root, rel, flags, INSIDE_LINKS_FOLLOWED)?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    // A regular file reads in blocking mode: splice and reads from it must wait for the
    // disk, not fail with EAGAIN when its pages are not cached.
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    Ok(Opened { file, meta })
}

/// The status of what `rel` names beneath `root` (a link inside the folder followed),
/// without opening it for reading: a device is never opened just to be listed.
pub fn stat(root: BorrowedFd, rel: &Path) -> io::Result<Metadata> {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let fd = open_beneath(root, rel, flags, INSIDE_LINKS_FOLLOWED)?;
    File::from(fd).metadata()
}

/// The error [`open_file`] gives for something that is not a regular file.
pub fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// Whether `e` is [`open_file`]'s refusal of something that is not a regular file.
pub fn is_not_regular(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput && e.raw_os_error().is_none()
}

fn open_beneath(
    root: BorrowedFd,
    rel: &Path,
    flags: OFlags,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    // EAGAIN: a rename anywhere on the host raced a `..` lookup; the kernel asks for a
    // retry. ENOSYS (before 5.6) or EPERM (a seccomp profile that does not know openat2):
    // the walk by components, which refuses every link.
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, rel, flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            Err(Errno::NOSYS | Errno::PERM) => return open_by_components(root, rel, flags),
            other => return Ok(other?),
        }
    }
}

/// The walk for kernels without `openat2`: each folder of `rel` is opened with
/// `O_NOFOLLOW` from the one before, so no link is followed anywhere and `..` or an
/// absolute path never leads out (`EXDEV`, as `RESOLVE_BENEATH` says it).
fn open_by_components(root: BorrowedFd, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(Errno::XDEV.into())
            }
        }
    }
    let Some((last, folders)) = names.split_last() else {
        return Ok(rustix::fs::openat(root, ".", flags, Mode::empty())?);
    };
    let through = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir: Option<OwnedFd> = None;
    for name in folders {
        let from = dir.as_ref().map_or(root, |d| d.as_fd());
        dir = Some(rustix::fs::openat(from, *name, through, Mode::empty())?);
    }
    let from = dir.as_ref().map_or(root, |d| d.as_fd());
    Ok(rustix::fs::openat(
        from,
        *last,
        flags | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn folder(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sidewire-beneath-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::write(dir.join("secret"), b"secret").unwrap();
        std::fs::write(dir.join("root/sub/in.txt"), b"inside").unwrap();
        symlink("../secret", dir.join("root/out")).unwrap();
        symlink(dir.join("secret"), dir.join("root/abs")).unwrap();
        symlink("sub/in.txt", dir.join("root/in")).unwrap();
        symlink("nowhere", dir.join("root/dangles")).unwrap();
        dir
    }

    fn read(opened: io::Result<Opened>) -> io::Result<String> {
        let mut s = String::new();
        opened?.file.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn links_inside_are_followed_and_links_out_refused() {
        let dir = folder("openat2");
        let root = open_root(&dir.join("root")).unwrap();
        let open = |rel: &str| read(open_file(root.as_fd(), Path::new(rel)));
        assert_eq!(open("sub/in.txt").unwrap(), "inside");
        assert_eq!(open("in").unwrap(), "inside");
        for out in ["out", "abs", "../secret", "sub/../../secret"] {
            assert_eq!(
                open(out).unwrap_err().raw_os_error(),
                Some(libc_exdev()),
                "{out}"
            );
        }
        let abs = dir.join("secret");
        assert!(open(abs.to_str().unwrap()).is_err());
        assert_eq!(open("dangles").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(is_not_regular(&open("sub").unwrap_err()));
        assert!(open_dir(root.as_fd(), Path::new("sub")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_root_that_is_a_link_is_refused_even_with_a_trailing_slash() {
        let dir = folder("root-link");
        // A user container that swaps its output folder for a link to `/`.
        symlink("/", dir.join("swapped")).unwrap();
        for path in [
            dir.join("swapped"),
            dir.join("swapped/"),
            dir.join("swapped//"),
        ] {
            let err = open_root(&path).unwrap_err().to_string();
            assert!(err.contains("is a symlink"), "{}: {err}", path.display());
        }
        assert!(open_root(&dir.join("root/")).is_ok());
        assert_eq!(without_trailing_slash(Path::new("/")), Path::new("/"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_openat2_every_link_is_refused() {
        let dir = folder("components");
        let root = open_root(&dir.join("root")).unwrap();
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let open = |rel: &str| -> io::Result<String> {
            let fd = open_by_components(root.as_fd(), Path::new(rel), flags)?;
            let mut s = String::new();
            File::from(fd).read_to_string(&mut s)?;
            Ok(s)
        };
        assert_eq!(open("sub/in.txt").unwrap(), "inside");
        for link in ["out", "abs", "in", "dangles"] {
            assert_eq!(
                open(link).unwrap_err().raw_os_error(),
                Some(Errno::LOOP.raw_os_error())
            );
        }
        for out in ["../secret", "sub/../../secret", "/etc/passwd"] {
            assert_eq!(
                open(out).unwrap_err().raw_os_error(),
                Some(libc_exdev()),
                "{out}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn libc_exdev() -> i32 {
        Errno::XDEV.raw_os_error()
    }
}
