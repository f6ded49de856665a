//! `file://` stores and plain absolute paths (shared filesystems on HPC clusters): files are
//! copied in the kernel with `copy_file_range` (a reflink or server-side copy where the
//! filesystem can) into a temporary name, flushed, then renamed into place, so a reader
//! never sees half a file and a killed copy leaves no file under the final name.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Bytes moved per `copy_file_range` call: small enough to report progress and notice a
/// cancel every few hundred milliseconds, large enough to cost nothing.
const STEP: usize = 64 << 20;

/// The temporary name a file is written under until it is complete.
pub fn temp_name(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.sidewire-part"))
}

/// Copies the open file `from` to `dest` (creating its folder), calling `progress` with
/// each step's bytes. The caller opens the source (beneath its folder, see
/// [`crate::data::walk::Root`]). Fails if the source changes size while it is copied.
pub fn copy_file(from: &File, dest: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<u64> {
    let size = from.metadata()?.len();
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let temp = temp_name(dest);
    let to = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temp)?;
    let result = copy_range(from, &to, size, progress).and_then(|()| to.sync_data());
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    fs::rename(&temp, dest)?;
    Ok(size)
}

fn copy_range(from: &File, to: &File, size: u64, progress: &mut dyn FnMut(u64)) -> io::Result<()> {
    let mut copied = 0u64;
    while copied < size {
        let want = usize::try_from(size - copied).unwrap_or(STEP).min(STEP);
        let n = match rustix::fs::copy_file_range(from, None, to, None, want) {
            Ok(n) => n,
            // Filesystems or kernels without it: copy through user space instead.
            Err(e) if e == rustix::io::Errno::XDEV || e == rustix::io::Errno::NOSYS => {
                return copy_in_user_space(from, to, size, copied, progress)
            }
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(shrank(size, copied));
        }
        copied += n as u64;
        progress(n as u64);
    }
    if from.metadata()?.len() != size {
        return Err(shrank(size, copied));
    }
    Ok(())
}

fn copy_in_user_space(
    from: &File,
    to: &File,
    size: u64,
    mut copied: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    while copied < size {
        let want = buf
            .len()
            .min(usize::try_from(size - copied).unwrap_or(buf.len()));
        let n = from.read_at(&mut buf[..want], copied)?;
        if n == 0 {
            return Err(shrank(size, copied));
        }
        to.write_all_at(&buf[..n], copied)?;
        copied += n as u64;
        progress(n as u64);
    }
    Ok(())
}

fn shrank(size: u64, copied: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file changed while it was copied ({size} bytes expected, {copied} read)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_through_a_temporary_name() {
        let dir = std::env::temp_dir().join(format!("sidewire-fstore-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..(3 << 20) + 7).map(|i| (i % 251) as u8).collect();
        fs::write(dir.join("src.bin"), &data).unwrap();
        let mut seen = 0;
        let dest = dir.join("out/deep/dest.bin");
        let src = File::open(dir.join("src.bin")).unwrap();
        let n = copy_file(&src, &dest, &mut |b| seen += b).unwrap();
        assert_eq!((n, seen), (data.len() as u64, data.len() as u64));
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert!(!temp_name(&dest).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
