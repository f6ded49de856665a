//! Uploads: every file of the folder goes up as one PUT, or as a multipart upload whose
//! parts go in parallel and are journaled as they finish, so a restarted sidecar sends
//! only the parts the store does not hold yet.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use super::s3_job::{Mode, Purpose, S3Job, MAX_XML};
use super::Shared;
use crate::data::journal::{FileRecord, FileState, MultipartRecord, RecordedPart};
use crate::data::plan;
use crate::data::walk::{self, LocalFile};
use crate::net::http_pool::{PoolResponse, RequestBody, ResponseSink};
use crate::proto::s3::{self, Request, XmlError};

#[derive(Default)]
pub struct Upload {
    walked: bool,
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
        let root = self.work.local.clone();
        let mut files = match &self.work.only {
            Some(rel) => {
                let path = root.join(rel);
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => vec![LocalFile {
                        rel: rel.clone(),
                        size: m.len(),
                        mtime_ns: std::os::unix::fs::MetadataExt::mtime(&m) * 1_000_000_000
                            + std::os::unix::fs::MetadataExt::mtime_nsec(&m),
                        path,
                    }],
                    _ => {
                        sh.log(
                            self.io_type(),
                            format!("File {} does not exist", path.display()),
                        );
                        Vec::new()
                    }
                }
            }
            None => {
                walk::walk(&root).map_err(|e| format!("Cannot list {}: {e}", root.display()))?
            }
        };
        let now = std::time::SystemTime::now();
        files.retain(|f| {
            self.filter.matches(&f.rel) && super::is_settled(f, self.work.settled_for, now)
        });
        let mut up = Vec::with_capacity(files.len());
        for local in files {
            self.progress.files_total += 1;
            self.progress.bytes_total += local.size;
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
                self.progress.bytes_done += local.size;
                self.progress.bytes_skipped += local.size;
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
        let path = self.up_file(i).local.path.clone();
        let file = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                self.fail(format!("Cannot open {}: {e}", path.display()));
                return false;
            }
        };
        let (size, mtime, rel) = {
            let f = self.up_file(i);
            (f.local.size, f.local.mtime_ns, f.local.rel.clone())
        };
        {
            let f = &mut self.upload().files[i];
            f.file = Some(file);
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
            Some(_) => {
                // The file changed since its upload began: that upload is abandoned (the
                // store expires it) and the file starts again alone.
                if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                    let _ = j.forget_multipart(t, &rel);
                }
                self.queue(Purpose::Create { file: i });
            }
            None => self.queue(Purpose::Create { file: i }),
        }
        true
    }

    /// The store knows no upload the journal recorded (or will not list its parts): a
    /// completion that finds it gone checks whether the object is whole; a listing that
    /// finds it gone, or a check that never finds the object whole, uploads the file again.
    pub(super) fn resume_without_record(&mut self, purpose: Purpose) {
        match purpose {
            Purpose::Complete { file } => self.queue(Purpose::Check { file }),
            Purpose::ListParts { file, .. } | Purpose::Check { file } => {
                let f = &mut self.upload().files[file];
                f.recorded.clear();
                f.listed.clear();
                self.queue(Purpose::Create { file });
            }
            _ => {}
        }
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
            Purpose::Verify { .. } => self.finished(id),
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
            Purpose::ListParts { file, .. } => match s3::parse_list_parts(&resp.body) {
                Ok(page) => {
                    self.finished(id);
                    let f = &mut self.upload().files[file];
                    for p in page.parts {
                        f.listed.insert(p.number, (p.etag, p.size));
                    }
                    match page.next_marker {
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

    /// After ListParts: a part the store holds under this upload id with the expected
    /// length is done, whether or not the journal saw its answer (ctrl may have died just
    /// before): only sidewire writes this upload id, and the store checked each part's
    /// payload hash against the file, unchanged since (same size and mtime). Its ETag
    /// comes from the listing, else the journal; a part with neither is sent again.
    fn resume_parts(&mut self, sh: &mut Shared, file: usize) {
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
    /// the file's length and a multipart ETag of its part count; else its parts are listed.
    fn on_checked(&mut self, sh: &mut Shared, file: usize, attempts: u32, resp: &PoolResponse) {
        let f = self.up_file(file);
        let parts = plan::pieces(f.local.size, f.part_size).count();
        let header = |name| {
            resp.head
                .header(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let etag = header("etag").unwrap_or_default();
        let whole =
            length == Some(f.local.size) && etag.trim_matches('"').ends_with(&format!("-{parts}"));
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

    pub(super) fn upload_body_of(&self, purpose: &Purpose) -> RequestBody {
        match *purpose {
            Purpose::Put { file } => {
                let f = self.up_file(file);
                match &f.file {
                    Some(fd) => RequestBody::File {
                        file: fd.clone(),
                        offset: 0,
                        len: f.local.size,
                    },
                    None => RequestBody::None,
                }
            }
            Purpose::Part {
                file, offset, len, ..
            } => match &self.up_file(file).file {
                Some(fd) => RequestBody::File {
                    file: fd.clone(),
                    offset,
                    len,
                },
                None => RequestBody::None,
            },
            Purpose::Complete { file } => {
                let parts: Vec<(u32, String)> = self
                    .up_file(file)
                    .parts_done
                    .iter()
                    .map(|(n, e)| (*n, e.clone()))
                    .collect();
                RequestBody::Bytes(s3::complete_multipart_body(&parts))
            }
            _ => RequestBody::None,
        }
    }

    pub(super) fn request_of(&self, purpose: &Purpose) -> (Request, ResponseSink) {
        let collect = ResponseSink::Collect { max: MAX_XML };
        let t = &self.target;
        match purpose {
            Purpose::List { token } => (
                s3::list_objects_v2(t, &self.prefix, token.as_deref()),
                collect,
            ),
            Purpose::Put { file } => (s3::put_object(t, &self.up_file(*file).key), collect),
            Purpose::Create { file } => {
                (s3::create_multipart(t, &self.up_file(*file).key), collect)
            }
            Purpose::ListParts { file, marker } => {
                let f = self.up_file(*file);
                (s3::list_parts(t, &f.key, &f.upload_id, *marker), collect)
            }
            Purpose::Part { file, number, .. } => {
                let f = self.up_file(*file);
                (s3::upload_part(t, &f.key, &f.upload_id, *number), collect)
            }
            Purpose::Complete { file } => {
                let f = self.up_file(*file);
                (s3::complete_multipart(t, &f.key, &f.upload_id), collect)
            }
            Purpose::Check { file } => (s3::head_object(t, &self.up_file(*file).key), collect),
            Purpose::Get { .. } | Purpose::Verify { .. } => self.download_request_of(purpose),
        }
    }

    pub(super) fn describe_file(&self, purpose: &Purpose) -> String {
        match *purpose {
            Purpose::List { .. } => format!("Listing {}", self.work.url),
            Purpose::Put { file }
            | Purpose::Create { file }
            | Purpose::ListParts { file, .. }
            | Purpose::Complete { file }
            | Purpose::Check { file } => {
                format!("Uploading {}", self.up_file(file).local.rel)
            }
            Purpose::Part { file, number, .. } => {
                format!(
                    "Uploading part {number} of {}",
                    self.up_file(file).local.rel
                )
            }
            Purpose::Get { file, offset, .. } => self.describe_get(file, offset),
            Purpose::Verify { file } => self.describe_get(file, 0),
        }
    }
}
