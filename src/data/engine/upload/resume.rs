//! Continuing an upload the journal recorded: its parts are checked against what the
//! store lists, a completion that went out is checked against the object, and an upload
//! the store no longer knows starts over.

use std::collections::BTreeMap;

use super::super::store_job::{Purpose, StoreJob};
use super::super::Shared;
use crate::data::journal::RecordedPart;
use crate::data::plan;
use crate::net::http_pool::PoolResponse;

impl StoreJob {
    /// The store knows no upload the journal recorded (or will not list its parts): a
    /// completion that finds it gone checks whether the object is whole; a listing that
    /// finds it gone, or a check that never finds the object whole, uploads the file again.
    /// The journal's upload is given up (and aborted, in case the store still holds it).
    pub(in crate::data::engine) fn resume_without_record(
        &mut self,
        sh: &mut Shared,
        purpose: Purpose,
    ) {
        match purpose {
            Purpose::Complete { file } => self.queue(Purpose::Check { file }),
            Purpose::ListParts { file, .. } | Purpose::Check { file } => {
                let f = &mut self.upload().files[file];
                f.recorded.clear();
                f.listed.clear();
                f.parts_done.clear();
                let upload_id = f.upload_id.clone();
                self.abandon(sh, file, upload_id);
                self.queue(Purpose::Create { file });
            }
            _ => {}
        }
    }

    /// After ListParts (Get Block List on Azure): a part the store holds under this upload
    /// id with the expected length is done, whether or not the journal saw its answer
    /// (ctrl may have died just before): only sidewire writes this upload id (or tag), and
    /// the store checked each part's CRC64NVME (and, signed, its payload hash) against the
    /// file, whose CRC the resume checked again. Its ETag comes from the listing, else the
    /// journal; a part with neither is sent again.
    pub(in crate::data::engine) fn resume_parts(&mut self, sh: &mut Shared, file: usize) {
        let f = &mut self.upload().files[file];
        let journaled: BTreeMap<u32, RecordedPart> = std::mem::take(&mut f.recorded)
            .into_iter()
            .map(|p| (p.number, p))
            .collect();
        let mut skipped = 0;
        for (number, _offset, len) in plan::pieces(f.local.size, f.part_size) {
            let Some((listed_etag, listed_size)) = f.listed.get(&number) else {
                continue;
            };
            if *listed_size != len {
                continue;
            }
            let etag = match (listed_etag.is_empty(), journaled.get(&number)) {
                (false, _) => listed_etag.clone(),
                (true, Some(p)) if p.len == len => p.etag.clone(),
                _ => continue,
            };
            f.parts_done.insert(number, etag);
            skipped += len;
        }
        f.listed.clear();
        let size = f.local.size;
        let part_size = f.part_size;
        f.parts_todo = plan::pieces(size, part_size)
            .filter(|(n, _, _)| !f.parts_done.contains_key(n))
            .collect();
        let all_done = f.parts_todo.is_empty();
        self.progress.bytes_done += skipped;
        self.progress.bytes_skipped += skipped;
        if all_done {
            self.complete(sh, file);
        }
    }

    /// The object of a file whose completion went out before a restart: whole when it has
    /// the file's length and (S3) a multipart ETag of its part count or (Azure) the file's
    /// CRC in its metadata; else it is looked at again later.
    pub(super) fn on_checked(
        &mut self,
        sh: &mut Shared,
        file: usize,
        attempts: u32,
        resp: &PoolResponse,
    ) {
        let f = self.up_file(file);
        let parts = plan::pieces(f.local.size, f.part_size).count();
        let whole = self
            .api
            .is_whole(&resp.head, f.local.size, parts, f.crc64nvme);
        if !whole {
            // A completion may still be assembling the object: look again later.
            let check = Purpose::Check { file };
            return self.queue_later(sh, check, attempts, "the object is not whole yet");
        }
        let (rel, size) = (f.local.rel.clone(), f.local.size);
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            let _ = j.forget_multipart(t, &rel);
        }
        self.progress.bytes_done += size;
        self.progress.bytes_skipped += size;
        self.file_uploaded(sh, file);
    }
}
