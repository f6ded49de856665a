//! What worker threads read files for before an upload's requests go out: a body's
//! checksums, and a multipart file's part and whole-object CRCs.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::data::plan;
use crate::proto::s3::checksum::{self, Crc64Nvme};

/// A worker's answer.
pub enum Worked {
    /// A request body's checksums.
    Payload(PayloadDigest),
    /// A multipart file's CRCs, before its upload is created.
    Sums(FileSums),
    /// A downloaded file checked, flushed and renamed into place.
    Verified,
}

/// A request body's CRC64NVME, and its SHA-256 when the request signs its payload.
#[derive(Clone, Debug)]
pub struct PayloadDigest {
    pub sha256_hex: Option<String>,
    pub crc64nvme: u64,
}

/// A file's CRC64NVME per part (in order, cut by [`plan::pieces`]) and whole.
#[derive(Clone, Debug)]
pub struct FileSums {
    pub parts: Vec<u64>,
    pub whole: u64,
}

/// Reads `len` bytes of `file` from `offset` through the page cache, a MiB at a time,
/// handing each piece to `each`; a file shorter than that is an error.
pub fn read_range(
    file: &File,
    offset: u64,
    len: u64,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
    let mut done = 0u64;
    while done < len {
        let want = buf
            .len()
            .min(usize::try_from(len - done).unwrap_or(buf.len()));
        let n = file.read_at(&mut buf[..want], offset + done)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than it was when listed",
            ));
        }
        each(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// The checksums of `len` bytes of `file` from `offset`: the CRC64NVME always, the
/// SHA-256 only with `sha256` (a signed payload), in one pass.
pub fn digest_file_range(
    file: &Arc<File>,
    offset: u64,
    len: u64,
    sha256: bool,
) -> std::io::Result<PayloadDigest> {
    let mut crc = Crc64Nvme::default();
    let mut sha = sha256.then(Sha256::new);
    read_range(file, offset, len, |bytes| {
        crc.update(bytes);
        if let Some(sha) = &mut sha {
            sha.update(bytes);
        }
    })?;
    Ok(PayloadDigest {
        sha256_hex: sha.map(|s| crate::proto::s3::hex(&s.finalize())),
        crc64nvme: crc.value(),
    })
}

/// The CRC64NVME of each part of a `size`-byte file cut in `part_size` pieces, and of
/// the whole (combined from the parts, so the file is read once).
pub fn sum_file(file: &Arc<File>, size: u64, part_size: u64) -> std::io::Result<FileSums> {
    let mut sums = FileSums {
        parts: Vec::new(),
        whole: 0,
    };
    for (_, offset, len) in plan::pieces(size, part_size) {
        let mut crc = Crc64Nvme::default();
        read_range(file, offset, len, |bytes| crc.update(bytes))?;
        let part = crc.value();
        sums.whole = checksum::combine(sums.whole, part, len);
        sums.parts.push(part);
    }
    Ok(sums)
}
