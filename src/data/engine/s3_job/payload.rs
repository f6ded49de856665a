//! The payload hash a signed part upload needs, computed on a worker thread.

use std::fs::File;
use std::sync::Arc;

/// SHA-256 of `len` bytes of `file` from `offset`, read through the page cache.
pub fn hash_file_range(file: &Arc<File>, offset: u64, len: u64) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::FileExt;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let want = buf
            .len()
            .min(usize::try_from(len - done).unwrap_or(buf.len()));
        let n = file.read_at(&mut buf[..want], offset + done)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was uploaded",
            ));
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(crate::proto::s3::hex(&hasher.finalize()))
}
