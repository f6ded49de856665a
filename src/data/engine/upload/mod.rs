//! Uploads: every file of the folder goes up as one PUT, or as a multipart upload whose
//! parts go in parallel and are journaled as they finish, so a restarted sidecar sends
//! only the parts the store does not hold yet.
//! [`resume`] continues an upload the journal recorded; [`requests`] builds each op's
//! request and [`answers`] reads what the store answers.

mod abort;
mod answers;
mod requests;
mod resume;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use super::store_job::{sum_file, FileSums, Mode, Purpose, StoreJob, Worked};
use super::Shared;
use crate::data::journal::{FileRecord, FileState, MultipartRecord, RecordedPart};
use crate::data::plan;
use crate::data::walk::{self, LocalFile, Root};

#[derive(Default)]
pub struct Upload {
    walked: bool,
    /// The folder uploaded from: every file is opened beneath it.
    root: Option<Root>,
    files: Vec<UpFile>,
    /// Files before this index were started.
    next_file: usize,
    finished_files: usize,
}

#[derive(PartialEq, Eq)]
enum UpState {
    Waiting,
    Active,
    Done,
}

pub struct UpFile {
    local: LocalFile,
    pub(in crate::data::engine) key: String,
    state: UpState,
    file: Option<Arc<File>>,
    pub(in crate::data::engine) upload_id: String,
    part_size: u64,
    parts_todo: VecDeque<(u32, u64, u64)>,
    parts_done: BTreeMap<u32, String>,
    parts_busy: usize,
    /// Parts the journal recorded, checked against what the store lists.
    recorded: Vec<RecordedPart>,
    listed: BTreeMap<u32, (String, u64)>,
    /// The whole file's CRC64NVME, declared with its multipart upload; `None` before the
    /// sums pass, and for an upload created without checksums.
    pub(in crate::data::engine) crc64nvme: Option<u64>,
    /// Each part's CRC64NVME from the sums pass, by part number from 1.
    part_crcs: Vec<u64>,
    /// The journal's upload of this file, held while the sums pass checks that the file
    /// still holds the bytes it was started with.
    resuming: Option<MultipartRecord>,
}

impl StoreJob {
    fn upload(&mut self) -> &mut Upload {
        match &mut self.mode {
            Mode::Upload(u) => u,
            Mode::Download(_) => unreachable!("upload step of a download"),
        }
    }

    pub(in crate::data::engine) fn up_file(&self, i: usize) -> &UpFile {
        match &self.mode {
            Mode::Upload(u) => &u.files[i],
            Mode::Download(_) => unreachable!("upload step of a download"),
        }
    }

    pub(super) fn plan_upload(&mut self, sh: &mut Shared, mut room: usize, _now: Instant) {
        if !self.upload().walked {
            if let Err(e) = self.walk_outputs(sh) {
                return self.fail(e);
            }
        }
        // Parts of files already started come first: they finish files sooner.
        let active: Vec<usize> = {
            let u = self.upload();
            (0..u.next_file)
                .filter(|&i| u.files[i].state == UpState::Active)
                .collect()
        };
        for i in active {
            while room > 0 {
                let f = &mut self.upload().files[i];
                let Some((number, offset, len)) = f.parts_todo.pop_front() else {
                    break;
                };
                f.parts_busy += 1;
                self.queue(Purpose::Part {
                    file: i,
                    number,
                    offset,
                    len,
                });
                room -= 1;
            }
        }
        while room > 0 {
            let i = self.upload().next_file;
            if i >= self.upload().files.len() {
                break;
            }
            self.upload().next_file += 1;
            if self.start_file(sh, i) {
                room -= 1;
            }
        }
        let u = self.upload();
        if u.walked && u.finished_files == u.files.len() {
            self.done = true;
        }
    }

    fn walk_outputs(&mut self, sh: &mut Shared) -> Result<(), String> {
        let local = &self.work.local;
        let (root, listing) = walk::list(local, self.work.only.as_deref())
            .map_err(|e| format!("Cannot list {}: {e}", local.display()))?;
        for skip in listing
            .skipped
            .iter()
            .filter(|s| self.filter.matches(&s.rel))
        {
            sh.skipped(self.io_type(), skip);
        }
        self.upload().root = root;
        self.queue_recorded_aborts(sh)?;
        let mut files = listing.files;
        let now = std::time::SystemTime::now();
        files.retain(|f| {
            self.filter.matches(&f.rel) && super::is_settled(f, self.work.settled_for, now)
        });
        let mut up = Vec::with_capacity(files.len());
        for local in files {
            self.progress.files_total += 1;
            self.progress.bytes_total = self.progress.bytes_total.saturating_add(local.size);
            let key = plan::upload_key(&self.prefix, &local.rel);
            let already = match (&sh.journal, self.transfer) {
                (Some(j), Some(t)) => j
                    .file(t, &local.rel)
                    .map_err(|e| e.to_string())?
                    .is_some_and(|r| {
                        r.state == FileState::Done
                            && r.size == local.size
                            && r.mtime_ns == local.mtime_ns
                    }),
                _ => false,
            };
            let state = if already {
                self.progress.files_done += 1;
                self.progress.files_skipped += 1;
                let p = &mut self.progress;
                p.bytes_done = p.bytes_done.saturating_add(local.size);
                p.bytes_skipped = p.bytes_skipped.saturating_add(local.size);
                UpState::Done
            } else {
                UpState::Waiting
            };
            up.push(UpFile {
                local,
                key,
                state,
                file: None,
                upload_id: String::new(),
                part_size: 0,
                parts_todo: VecDeque::new(),
                parts_done: BTreeMap::new(),
                parts_busy: 0,
                recorded: Vec::new(),
                listed: BTreeMap::new(),
                crc64nvme: None,
                part_crcs: Vec::new(),
                resuming: None,
            });
        }
        let u = self.upload();
        u.finished_files = up.iter().filter(|f| f.state == UpState::Done).count();
        u.files = up;
        u.walked = true;
        Ok(())
    }

    /// Opens file `i` and queues its first request; false if it needed none.
    fn start_file(&mut self, sh: &mut Shared, i: usize) -> bool {
        if self.up_file(i).state == UpState::Done {
            return false;
        }
        let Some(file) = self.open_listed(sh, i) else {
            return false;
        };
        let (size, mtime, rel) = {
            let f = self.up_file(i);
            (f.local.size, f.local.mtime_ns, f.local.rel.clone())
        };
        {
            let f = &mut self.upload().files[i];
            f.file = Some(Arc::new(file));
            f.state = UpState::Active;
        }
        if !plan::is_multipart(size) {
            self.queue(Purpose::Put { file: i });
            return true;
        }
        let part_size = plan::part_size(size);
        let record = match (&sh.journal, self.transfer) {
            (Some(j), Some(t)) => match j.multipart(t, &rel) {
                Ok(r) => r,
                Err(e) => {
                    self.fail(e.to_string());
                    return false;
                }
            },
            _ => None,
        };
        match record {
            Some(r) if r.size == size && r.mtime_ns == mtime && r.part_size == part_size => {
                if r.crc64nvme.is_some() {
                    // The CRCs are read again: the parts still to send need theirs, and
                    // the whole must still be the one the upload declared.
                    self.upload().files[i].resuming = Some(r);
                    self.sum(sh, i);
                } else {
                    // Created without checksums (before journal schema 3, or for a store
                    // that does not take them): it goes on without them.
                    self.resume_upload(sh, i, r);
                }
            }
            Some(stale) => {
                // The file changed since its upload began: that upload is given up (and
                // aborted) and the file starts again alone.
                self.abandon(sh, i, stale.upload_id);
                self.sum(sh, i);
            }
            None => self.sum(sh, i),
        }
        true
    }

    /// Reads multipart file `i` on a worker for its part and whole CRCs, which its upload
    /// declares ([`StoreJob::on_summed`] goes on).
    fn sum(&mut self, sh: &mut Shared, i: usize) {
        let f = self.up_file(i);
        let Some(file) = f.file.clone() else { return };
        let (size, part_size) = (f.local.size, plan::part_size(f.local.size));
        let id = self.track_work(Purpose::Sum { file: i });
        sh.workers.submit(id, move || {
            sum_file(&file, size, part_size).map(Worked::Sums)
        });
    }

    /// With its CRCs known, file `i` resumes the journal's upload if the file still holds
    /// the bytes it was started with (same CRC), else starts a new upload.
    pub(in crate::data::engine) fn on_summed(&mut self, sh: &mut Shared, id: u64, sums: FileSums) {
        let Some(Purpose::Sum { file: i }) = self.op(id).map(|o| o.purpose.clone()) else {
            return;
        };
        self.finished(id);
        let f = &mut self.upload().files[i];
        f.crc64nvme = Some(sums.whole);
        f.part_crcs = sums.parts;
        match f.resuming.take() {
            Some(r) if r.crc64nvme == Some(sums.whole) => self.resume_upload(sh, i, r),
            Some(changed) => {
                // Same size and time, other bytes: rewritten in place.
                self.abandon(sh, i, changed.upload_id);
                self.queue(Purpose::Create { file: i });
            }
            None => self.queue(Purpose::Create { file: i }),
        }
    }

    /// Goes on with the journal's upload `r` of file `i`: completes it if every part was
    /// recorded and the completion went out, else lists the parts the store holds.
    fn resume_upload(&mut self, sh: &mut Shared, i: usize, r: MultipartRecord) {
        let (size, mtime, rel) = {
            let f = self.up_file(i);
            (f.local.size, f.local.mtime_ns, f.local.rel.clone())
        };
        let recorded = match (&sh.journal, self.transfer) {
            (Some(j), Some(t)) => j.parts(t, &rel).unwrap_or_default(),
            _ => Vec::new(),
        };
        // A file recorded as pending had its CompleteMultipartUpload sent: the object may
        // be whole already.
        let completing = match (&sh.journal, self.transfer) {
            (Some(j), Some(t)) => j.file(t, &rel).ok().flatten().is_some_and(|r| {
                r.state == FileState::Pending && r.size == size && r.mtime_ns == mtime
            }),
            _ => false,
        };
        let all_recorded = plan::pieces(size, r.part_size)
            .all(|(n, _, len)| recorded.iter().any(|p| p.number == n && p.len == len));
        let f = &mut self.upload().files[i];
        f.upload_id = r.upload_id;
        f.part_size = r.part_size;
        f.crc64nvme = r.crc64nvme;
        if completing && all_recorded {
            // Completing again is safe: the store answers the same, or that the upload is
            // gone, and then the object is checked.
            f.parts_done = recorded.into_iter().map(|p| (p.number, p.etag)).collect();
            self.queue(Purpose::Complete { file: i });
        } else {
            f.recorded = recorded;
            self.queue(Purpose::ListParts {
                file: i,
                marker: None,
            });
        }
    }

    /// A store refused to create file `file`'s upload with the CRC64NVME declaration: it
    /// is created again without checksums (said once per file). Refused without them
    /// too, the transfer fails with `failure`.
    pub(in crate::data::engine) fn create_without_checksums(
        &mut self,
        sh: &mut Shared,
        file: usize,
        failure: String,
    ) {
        let f = &mut self.upload().files[file];
        if f.crc64nvme.take().is_none() {
            return self.fail(failure);
        }
        f.part_crcs = Vec::new();
        sh.log(
            self.io_type(),
            format!("{failure}; creating the upload again without CRC64NVME checksums"),
        );
        self.queue(Purpose::Create { file });
    }

    /// Opens listed file `i` beneath the folder, taking its size and modification time from
    /// the open file. A file that can no longer be opened there (a link changed to lead
    /// out, a file removed) is skipped and logged; `None` then, or when the job failed.
    fn open_listed(&mut self, sh: &mut Shared, i: usize) -> Option<File> {
        let rel = self.up_file(i).local.rel.clone();
        let opened = match self.upload().root.as_ref()?.open_file(&rel) {
            Ok(Ok(opened)) => opened,
            Ok(Err(skip)) => {
                sh.skipped(self.io_type(), &skip);
                let size = self.up_file(i).local.size;
                self.progress.files_total = self.progress.files_total.saturating_sub(1);
                self.progress.bytes_total = self.progress.bytes_total.saturating_sub(size);
                let u = self.upload();
                u.files[i].state = UpState::Done;
                u.finished_files += 1;
                return None;
            }
            Err(e) => {
                let path = self.up_file(i).local.path.display().to_string();
                self.fail(format!("Cannot open {path}: {e}"));
                return None;
            }
        };
        let listed = self.up_file(i).local.size;
        let local = &mut self.upload().files[i].local;
        local.refresh(&opened.meta);
        let size = local.size;
        self.progress.bytes_total = self
            .progress
            .bytes_total
            .saturating_sub(listed)
            .saturating_add(size);
        Some(opened.file)
    }

    /// The store created upload `upload_id` of multipart file `file` (on Azure, sidewire
    /// made up its tag): it is journaled, then its parts are planned.
    pub(in crate::data::engine) fn upload_created(
        &mut self,
        sh: &mut Shared,
        file: usize,
        upload_id: String,
    ) {
        let (rel, size, mtime) = {
            let f = self.up_file(file);
            (f.local.rel.clone(), f.local.size, f.local.mtime_ns)
        };
        let part_size = plan::part_size(size);
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            let record = MultipartRecord {
                upload_id: upload_id.clone(),
                part_size,
                size,
                mtime_ns: mtime,
                crc64nvme: self.up_file(file).crc64nvme,
            };
            if let Err(e) = j.start_multipart(t, &rel, &record) {
                return self.fail(e.to_string());
            }
        }
        let f = &mut self.upload().files[file];
        f.upload_id = upload_id;
        f.part_size = part_size;
        f.parts_todo = plan::pieces(size, part_size).collect();
    }

    /// Records that the file's upload is being completed (so a restart checks the object
    /// first), then completes it.
    fn complete(&mut self, sh: &mut Shared, file: usize) {
        let (rel, size, mtime) = {
            let f = self.up_file(file);
            (f.local.rel.clone(), f.local.size, f.local.mtime_ns)
        };
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            let pending = FileRecord {
                size,
                mtime_ns: mtime,
                state: FileState::Pending,
            };
            if let Err(e) = j.set_file(t, &rel, pending) {
                return self.fail(e.to_string());
            }
        }
        self.queue(Purpose::Complete { file });
    }
}
