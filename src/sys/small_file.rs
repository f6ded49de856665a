//! Reading a small file that another party may have put in place (a mounted secret, a
//! credential file): it must be a regular file under a size limit. A FIFO, a device such
//! as `/dev/zero`, or a huge file gives an error instead of a hang or an allocation
//! without end.

use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

/// The whole of the regular file at `path` (symlinks followed), at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Non-blocking, so opening a FIFO with no writer returns at once.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file (a {})", kind_name(kind)),
        ));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
    if size > limit {
        return Err(too_large(format!("{size} bytes"), limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // The file may grow after the fstat: read one byte past the limit to notice.
    std::fs::File::from(fd)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large("it grew while read".into(), limit));
    }
    Ok(bytes)
}

fn too_large(size: String, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the file is too large ({size}; the limit is {limit} bytes)"),
    )
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "folder",
        FileType::Fifo => "FIFO",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Socket => "socket",
        _ => "special file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sidewire-small-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_file_at_the_limit_is_read_whole() {
        let dir = scratch("limit");
        std::fs::write(dir.join("f"), b"12345").unwrap();
        assert_eq!(read(&dir.join("f"), 5).unwrap(), b"12345");
        let err = read(&dir.join("f"), 4).unwrap_err().to_string();
        assert!(
            err.contains("5 bytes") && err.contains("limit is 4"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = scratch("special");
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
        for (name, kind) in [
            ("fifo", "FIFO"),
            ("zero", "character device"),
            (".", "folder"),
        ] {
            let err = read(&dir.join(name), 1 << 20).unwrap_err().to_string();
            assert!(err.contains(kind), "{name}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_huge_sparse_file_is_refused_before_it_is_read() {
        let dir = scratch("huge");
        let file = std::fs::File::create(dir.join("big")).unwrap();
        file.set_len(1 << 40).unwrap();
        let err = read(&dir.join("big"), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
