//! The end of a file's download: its checks, flush and rename on a worker thread, then
//! the journal's record.

use std::fs::File;

use crate::data::engine::drop_behind;
use crate::data::engine::s3_job::{Purpose, S3Job};
use crate::data::engine::Shared;

impl S3Job {
    /// Finishes a complete file on a worker thread: checks its size, and its MD5 when the
    /// ETag is one (single-part uploads without KMS); flushes it (so the journal never
    /// records as done a file a crash could still lose), drops a large one from the page
    /// cache ([`drop_behind::settle`]), renames it into place and flushes its folder.
    pub(super) fn verify(&mut self, sh: &mut Shared, i: usize) {
        let Some(f) = self.down_file(i) else { return };
        let etag = f.seen_etag.clone().unwrap_or_else(|| f.listed.etag.clone());
        let md5 =
            !f.etag_not_md5 && etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        let (file, dir, temp, name, size) = (
            f.file.clone(),
            f.dir.clone(),
            f.temp.clone(),
            f.listed.name(),
            f.listed.size,
        );
        let id = self.track_work(Purpose::Verify { file: i });
        sh.workers.submit(id, move || {
            let len = file.metadata()?.len();
            if len != size {
                return Err(std::io::Error::other(format!(
                    "{len} bytes on disk, {size} listed"
                )));
            }
            if md5 {
                let digest = md5_file(&file, size)?;
                if !digest.eq_ignore_ascii_case(&etag) {
                    let _ = dir.remove(&temp);
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the content's MD5 {digest} does not match its ETag {etag}"),
                    ));
                }
            }
            file.sync_data()?;
            drop_behind::settle(&file, size);
            dir.rename(&temp, &name)?;
            dir.sync()?;
            Ok(String::new())
        });
    }

    pub(in crate::data::engine) fn on_verified(
        &mut self,
        sh: &mut Shared,
        id: u64,
        result: std::io::Result<String>,
    ) {
        let Some(Purpose::Verify { file: i }) = self.op(id).map(|o| o.purpose.clone()) else {
            return;
        };
        self.finished(id);
        let Some(f) = self.download().active.remove(&i) else {
            return;
        };
        let journal = sh.journal.as_ref().zip(self.transfer);
        if let Err(e) = result {
            if let (Some((j, t)), std::io::ErrorKind::InvalidData) = (journal, e.kind()) {
                let _ = j.forget_ranges(t, &f.listed.ranges_key());
            }
            return self.fail(format!("Downloading {}: {e}", f.listed.key));
        }
        if let Some((j, t)) = journal {
            let done = j.download_done(t, &f.listed.rel, &f.listed.ranges_key(), f.listed.size);
            if let Err(e) = done {
                return self.fail(e.to_string());
            }
        }
        self.progress.files_done += 1;
    }
}

/// MD5 of the first `size` bytes of `file`.
fn md5_file(file: &File, size: u64) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    use std::os::unix::fs::FileExt;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; usize::try_from(size.min(1 << 20)).unwrap_or(1 << 20)];
    let mut done = 0u64;
    while done < size {
        let want = buf
            .len()
            .min(usize::try_from(size - done).unwrap_or(buf.len()));
        let n = file.read_at(&mut buf[..want], done)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(crate::proto::s3::hex(&hasher.finalize()))
}
