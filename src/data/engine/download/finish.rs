//! The end of a file's download: its checks, flush and rename on a worker thread, then
//! the journal's record; a file that fails its check is fetched again once.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;

use super::DownFile;
use crate::data::engine::drop_behind;
use crate::data::engine::store_job::{read_range, Purpose, StoreJob, Worked};
use crate::data::engine::Shared;
use crate::data::plan;
use crate::proto::s3::checksum::{combine, Crc64Nvme};

impl StoreJob {
    /// Finishes a complete file on a worker thread: checks its size; its CRC64NVME when
    /// the store stated the object's (combined from its ranges' CRCs, or read back when
    /// ranges came before a restart); and its MD5 when the ETag is one (single-part
    /// uploads without KMS). Then flushes it (so the journal never records as done a file
    /// a crash could still lose), drops a large one from the page cache
    /// ([`drop_behind::settle`]), renames it into place and flushes its folder.
    pub(super) fn verify(&mut self, sh: &mut Shared, i: usize) {
        let Some(f) = self.down_file(i) else { return };
        let etag = f.seen_etag.clone().unwrap_or_else(|| f.listed.etag.clone());
        let md5 =
            !f.etag_not_md5 && etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        let expected = f.object_crc;
        let known = combined_crc(&f.range_crcs, f.listed.size);
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
            let read_crc = expected.is_some() && known.is_none();
            let (digest, read) = read_back(&file, size, md5, read_crc)?;
            let mismatch = match (expected, known.or(read)) {
                (Some((want, from)), Some(got)) if want != got => Some(format!(
                    "its CRC64NVME {got:016x} does not match {} ({want:016x})",
                    from.describe()
                )),
                _ => None,
            };
            let mismatch = mismatch.or_else(|| {
                let digest = digest?;
                (!digest.eq_ignore_ascii_case(&etag))
                    .then(|| format!("the content's MD5 {digest} does not match its ETag {etag}"))
            });
            if let Some(why) = mismatch {
                let _ = dir.remove(&temp);
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
            }
            file.sync_data()?;
            drop_behind::settle(&file, size);
            dir.rename(&temp, &name)?;
            dir.sync()?;
            Ok(Worked::Verified)
        });
    }

    pub(in crate::data::engine) fn on_verified(
        &mut self,
        sh: &mut Shared,
        id: u64,
        result: std::io::Result<()>,
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
            let damaged = e.kind() == std::io::ErrorKind::InvalidData;
            if let (Some((j, t)), true) = (journal, damaged) {
                let _ = j.forget_ranges(t, &f.listed.ranges_key());
            }
            if damaged && !f.refetched {
                return self.refetch(sh, i, f, e.to_string());
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

    /// Fetches file `f` (id `i`), which failed its check for `why`, again from scratch
    /// into a new temporary file (the damaged one is gone); once only.
    fn refetch(&mut self, sh: &mut Shared, i: usize, mut f: DownFile, why: String) {
        sh.log(
            self.io_type(),
            format!("Downloading {}: {why}; fetching it again", f.listed.key),
        );
        let (file, temp) = match self.new_temp(sh, &f.dir, &f.listed, &f.listed.name()) {
            Ok(made) => made,
            Err(e) => return self.fail(e),
        };
        let size = f.listed.size;
        f.file = Arc::new(file);
        f.temp = temp;
        f.ranges_todo = plan::missing_ranges(size, &[], plan::range_size(size)).into();
        f.range_crcs.clear();
        f.busy = 0;
        f.refetched = true;
        self.progress.bytes_done = self.progress.bytes_done.saturating_sub(size);
        let nothing_to_fetch = f.ranges_todo.is_empty();
        self.download().active.insert(i, f);
        if nothing_to_fetch {
            // An empty object has no ranges: it is checked again at once.
            self.verify(sh, i);
        }
    }
}

/// The CRC64NVME of a `size`-byte file from its ranges' CRCs, if they cover it exactly
/// (ranges fetched before a restart have none).
fn combined_crc(ranges: &BTreeMap<u64, (u64, u64)>, size: u64) -> Option<u64> {
    let mut crc = 0;
    let mut end = 0;
    for (&offset, &(len, range_crc)) in ranges {
        if offset != end {
            return None;
        }
        crc = combine(crc, range_crc, len);
        end += len;
    }
    (end == size).then_some(crc)
}

/// The MD5 (with `md5`) and CRC64NVME (with `crc`) of the first `size` bytes of `file`,
/// in one pass; no pass when neither is asked for.
fn read_back(
    file: &Arc<File>,
    size: u64,
    md5: bool,
    crc: bool,
) -> std::io::Result<(Option<String>, Option<u64>)> {
    use md5::{Digest, Md5};
    if !md5 && !crc {
        return Ok((None, None));
    }
    let mut md5 = md5.then(Md5::new);
    let mut crc = crc.then(Crc64Nvme::default);
    read_range(file, 0, size, |bytes| {
        if let Some(h) = &mut md5 {
            h.update(bytes);
        }
        if let Some(c) = &mut crc {
            c.update(bytes);
        }
    })?;
    Ok((
        md5.map(|h| crate::proto::s3::hex(&h.finalize())),
        crc.map(|c| c.value()),
    ))
}
