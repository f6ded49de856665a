//! Uploads: every file of the folder goes up as one PUT, or as a multipart upload whose
//! parts go in parallel and are journaled as they finish, so a restarted sidecar sends
//! only the parts the store does not hold yet.
//! [`resume`] continues an upload the journal recorded; [`requests`] builds each op's
//! request.

mod abort;
mod requests;
mod resume;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use super::s3_job::{Mode, Purpose, S3Job};
use super::Shared;
use crate::data::journal::{FileRecord, FileState, MultipartRecord, RecordedPart};
use crate::data::plan;
use crate::data::walk::{self, LocalFile, Root};
use crate::net::http_pool::PoolResponse;
use crate::proto::s3::{self, XmlError};

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
    key: String,
    state: UpState,
    file: Option<Arc<File>>,
    upload_id: String,
    part_size: u64,
    parts_todo: VecDeque<(u32, u64, u64)>,
    parts_done: BTreeMap<u32, String>,
    parts_busy: usize,
    /// Parts the journal recorded, checked against what the store lists.
    recorded: Vec<RecordedPart>,
    listed: BTreeMap<u32, (String, u64)>,
}

impl S3Job {
    fn upload(&mut self) -> &mut Upload {
        match &mut self.mode {
            Mode::Upload(u) => u,
            Mode::Download(_) => unreachable!("upload step of a download"),
        }
    }

    fn up_file(&self, i: usize) -> &UpFile {
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
                let recorded = match (&sh.journal, self.transfer) {
                    (Some(j), Some(t)) => j.parts(t, &rel).unwrap_or_default(),
                    _ => Vec::new(),
                };
                // A file recorded as pending had its CompleteMultipartUpload sent: the
                // object may be whole already.
                let completing = match (&sh.journal, self.transfer) {
                    (Some(j), Some(t)) => j.file(t, &rel).ok().flatten().is_some_and(|r| {
                        r.state == FileState::Pending && r.size == size && r.mtime_ns == mtime
                    }),
                    _ => false,
                };
                let all_recorded = plan::pieces(size, part_size)
                    .all(|(n, _, len)| recorded.iter().any(|p| p.number == n && p.len == len));
                let f = &mut self.upload().files[i];
                f.upload_id = r.upload_id;
                f.part_size = part_size;
                if completing && all_recorded {
                    // Completing again is safe: the store answers the same, or that the
                    // upload is gone, and then the object is checked.
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
            Some(stale) => {
                // The file changed since its upload began: that upload is given up (and
                // aborted) and the file starts again alone.
                self.abandon(sh, i, stale.upload_id);
                self.queue(Purpose::Create { file: i });
            }
            None => self.queue(Purpose::Create { file: i }),
        }
        true
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

    pub(super) fn on_success(
        &mut self,
        sh: &mut Shared,
        id: u64,
        purpose: Purpose,
        resp: PoolResponse,
        now: Instant,
    ) {
        match purpose {
            Purpose::List { token } => self.on_listing(sh, id, token, resp, now),
            Purpose::Get { file, offset, len } => {
                self.on_range(sh, id, file, offset, len, resp, now)
            }
            // Abort answers all go to `on_abort_answer`, before this.
            Purpose::Verify { .. } | Purpose::Abort { .. } => self.finished(id),
            Purpose::Put { file } => {
                self.finished(id);
                self.file_uploaded(sh, file);
            }
            Purpose::Create { file } => match s3::parse_initiate(&resp.body) {
                Ok(upload_id) => {
                    self.finished(id);
                    let (rel, size, mtime) = {
                        let f = self.up_file(file);
                        (f.local.rel.clone(), f.local.size, f.local.mtime_ns)
                    };
                    let part_size = plan::part_size(size);
                    if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                        if let Err(e) = j.start_multipart(
                            t,
                            &rel,
                            &MultipartRecord {
                                upload_id: upload_id.clone(),
                                part_size,
                                size,
                                mtime_ns: mtime,
                            },
                        ) {
                            return self.fail(e.to_string());
                        }
                    }
                    let f = &mut self.upload().files[file];
                    f.upload_id = upload_id;
                    f.part_size = part_size;
                    f.parts_todo = plan::pieces(size, part_size).collect();
                }
                Err(e) => self.bad_answer(sh, id, e, now),
            },
            Purpose::ListParts { file, marker } => match s3::parse_list_parts(&resp.body)
                .and_then(|page| Ok((page.next_after(marker)?, page)))
            {
                Ok((next, page)) => {
                    self.finished(id);
                    let f = &mut self.upload().files[file];
                    for p in page.parts {
                        f.listed.insert(p.number, (p.etag, p.size));
                    }
                    match next {
                        Some(marker) => self.queue(Purpose::ListParts {
                            file,
                            marker: Some(marker),
                        }),
                        None => self.resume_parts(sh, file),
                    }
                }
                Err(e) => self.bad_answer(sh, id, e, now),
            },
            Purpose::Part {
                file, number, len, ..
            } => {
                let Some(etag) = resp
                    .head
                    .header("etag")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                else {
                    self.ops_remove_and_fail(
                        id,
                        format!(
                            "The store answered part {number} of {} without an ETag",
                            self.up_file(file).key
                        ),
                    );
                    return;
                };
                self.finished(id);
                let rel = self.up_file(file).local.rel.clone();
                if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                    if let Err(e) = j.record_part(t, &rel, number, &etag, len) {
                        return self.fail(e.to_string());
                    }
                }
                self.progress.bytes_done += len;
                let f = &mut self.upload().files[file];
                f.parts_busy -= 1;
                f.parts_done.insert(number, etag);
                if f.parts_todo.is_empty() && f.parts_busy == 0 {
                    self.complete(sh, file);
                }
            }
            Purpose::Check { file } => {
                let attempts = self.op(id).map_or(0, |op| op.attempts);
                self.finished(id);
                self.on_checked(sh, file, attempts, &resp);
            }
            Purpose::Complete { file } => match s3::parse_complete(&resp.body) {
                Ok(_etag) => {
                    self.finished(id);
                    let rel = self.up_file(file).local.rel.clone();
                    if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                        let _ = j.forget_multipart(t, &rel);
                    }
                    self.file_uploaded(sh, file);
                }
                Err(e) => self.bad_answer(sh, id, e, now),
            },
        }
    }

    /// A 2xx answer the job cannot use: errors the store embeds in a 200 (CompleteMultipart
    /// does) are retried like a 5xx when the store says they are transient.
    fn bad_answer(&mut self, sh: &mut Shared, id: u64, e: XmlError, now: Instant) {
        let transient = matches!(&e, XmlError::Service(s) if matches!(s.code.as_str(), "InternalError" | "SlowDown" | "ServiceUnavailable"));
        if transient {
            return self.retry(sh, id, e.to_string(), now);
        }
        let what = self.describe_op(id);
        self.ops_remove_and_fail(id, format!("{what}: the store's answer is not usable: {e}"));
    }

    fn ops_remove_and_fail(&mut self, id: u64, message: String) {
        self.finished(id);
        self.fail(message);
    }

    fn describe_op(&self, id: u64) -> String {
        match self.op(id) {
            Some(op) => self.describe_file(&op.purpose.clone()),
            None => self.work.url.clone(),
        }
    }

    fn file_uploaded(&mut self, sh: &mut Shared, file: usize) {
        let (rel, size, mtime) = {
            let f = self.up_file(file);
            (f.local.rel.clone(), f.local.size, f.local.mtime_ns)
        };
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            if let Err(e) = j.set_file(
                t,
                &rel,
                FileRecord {
                    size,
                    mtime_ns: mtime,
                    state: FileState::Done,
                },
            ) {
                return self.fail(e.to_string());
            }
        }
        if !plan::is_multipart(size) {
            self.progress.bytes_done += size;
        }
        self.progress.files_done += 1;
        let u = self.upload();
        u.finished_files += 1;
        let f = &mut u.files[file];
        f.state = UpState::Done;
        f.file = None;
        f.parts_done.clear();
    }
}
