//! `file://` stores and plain absolute paths (shared filesystems on HPC clusters): files are
//! copied in the kernel with `copy_file_range` (a reflink or server-side copy where the
//! filesystem can) into a new temporary file, flushed, then renamed into place, so a reader
//! never sees half a file and a killed copy leaves no file under the final name. Every
//! write goes through a [`DestDir`]: nothing is written through a symlink.

use std::fs::File;
use std::io;

use crate::sys::dest_dir::DestDir;
use crate::sys::random::Random;

/// Bytes moved per `copy_file_range` call: small enough to report progress and notice a
/// cancel every few hundred milliseconds, large enough to cost nothing.
const STEP: usize = 64 << 20;

/// The suffix of every temporary file name.
const TEMP_SUFFIX: &str = ".sidewire-part";
/// The most of a file's own name a temporary name keeps: with the dot, the nonce and the
/// suffix it stays within NAME_MAX (255 bytes) whatever the file's name.
const TEMP_NAME_KEEPS: usize = 200;
/// Fresh names tried before giving up (each a new 64-bit nonce: a clash means something
/// else is creating names in the folder).
const TEMP_ATTEMPTS: usize = 8;

/// The temporary name a file called `name` is written under until it is complete:
/// `.{name}.{nonce, 16 hex digits}.sidewire-part`. The nonce makes it unique; the name is
/// only there for a person looking at the folder.
pub fn temp_name(name: &str, nonce: u64) -> String {
    let mut cut = name.len().min(TEMP_NAME_KEEPS);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}.{nonce:016x}{TEMP_SUFFIX}", &name[..cut])
}

/// Whether `name` has the form [`temp_name`] gives. Such names are sidewire's own: an
/// object or file that would be written to one is refused, so no download ever lands on
/// another one's temporary file.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_suffix(TEMP_SUFFIX) else {
        return false;
    };
    let Some((head, nonce)) = rest.rsplit_once('.') else {
        return false;
    };
    head.len() > 1
        && head.starts_with('.')
        && nonce.len() == 16
        && nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Creates a new temporary file for `name` in `dir` (exclusively: a name that exists, a
/// planted link included, is never opened), returning it and its name.
pub fn create_temp(
    dir: &DestDir,
    name: &str,
    mode: u32,
    random: &mut Random,
) -> io::Result<(File, String)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let mut nonce = [0u8; 8];
        random.fill(&mut nonce);
        let temp = temp_name(name, u64::from_le_bytes(nonce));
        match dir.create_new(&temp, mode) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name")))
}

/// Copies the open file `from` to the file `name` in `dir`, calling `progress` with each
/// step's bytes: through a new temporary file that is flushed, renamed into place, and the
/// folder flushed after. The caller opens the source (beneath its folder, see
/// [`crate::data::walk::Root`]). Fails if the source changes size while it is copied.
pub fn copy_file(
    from: &File,
    dir: &DestDir,
    name: &str,
    random: &mut Random,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let size = from.metadata()?.len();
    let (to, temp) = create_temp(dir, name, 0o644, random)?;
    let result = copy_range(from, &to, size, progress)
        .and_then(|()| to.sync_data())
        .and_then(|()| dir.rename(&temp, name));
    if let Err(e) = result {
        let _ = dir.remove(&temp);
        return Err(e);
    }
    dir.sync()?;
    Ok(size)
}

fn copy_range(from: &File, to: &File, size: u64, progress: &mut dyn FnMut(u64)) -> io::Result<()> {
    let mut copied = 0u64;
    while copied < size {
        let want = usize::try_from(size - copied).unwrap_or(STEP).min(STEP);
        let n = match rustix::fs::copy_file_range(from, None, to, None, want) {
            Ok(n) => n,
            // Filesystems, kernels or seccomp profiles without it: copy through user space.
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::PERM,
            ) => return copy_in_user_space(from, to, size, copied, progress),
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
    use std::fs;
    use std::path::Path;

    #[test]
    fn copies_through_a_temporary_name() {
        let dir = std::env::temp_dir().join(format!("sidewire-fstore-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..(3 << 20) + 7).map(|i| (i % 251) as u8).collect();
        fs::write(dir.join("src.bin"), &data).unwrap();
        let mut seen = 0;
        let mut random = Random::new().unwrap();
        let out = DestDir::open_root(&dir.join("out")).unwrap();
        let deep = out.subdir(Path::new("deep")).unwrap();
        let src = File::open(dir.join("src.bin")).unwrap();
        let n = copy_file(&src, &deep, "dest.bin", &mut random, &mut |b| seen += b).unwrap();
        assert_eq!((n, seen), (data.len() as u64, data.len() as u64));
        assert_eq!(fs::read(dir.join("out/deep/dest.bin")).unwrap(), data);
        assert_eq!(fs::read_dir(dir.join("out/deep")).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_recognised_and_stay_within_name_max() {
        let mut random = Random::new().unwrap();
        let long = "é".repeat(127);
        for name in ["x", ".x.sidewire-part", long.as_str()] {
            let mut nonce = [0u8; 8];
            random.fill(&mut nonce);
            let temp = temp_name(name, u64::from_le_bytes(nonce));
            assert!(is_temp_name(&temp), "{temp}");
            assert!(temp.len() <= 255, "{temp}");
            assert!(!is_temp_name(name), "{name}");
        }
        for not_temp in [
            ".x.sidewire-part",
            "..0123456789abcdef.sidewire-part",
            ".x.0123456789ABCDEF.sidewire-part",
            ".x.0123456789abcde.sidewire-part",
            "x.0123456789abcdef.sidewire-part",
        ] {
            assert!(!is_temp_name(not_temp), "{not_temp}");
        }
        assert!(is_temp_name(".x.0123456789abcdef.sidewire-part"));
    }
}
