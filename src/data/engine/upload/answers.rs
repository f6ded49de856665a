//! Reading the store's answers to an upload's requests: a created upload, the parts the
//! store lists, a part taken, a completion, and the answers the job cannot use.

use std::time::Instant;

use super::super::store_job::{Purpose, StoreJob};
use super::super::Shared;
use super::UpState;
use crate::data::journal::{FileRecord, FileState};
use crate::data::plan;
use crate::net::http_pool::PoolResponse;
use crate::proto::s3::{self, XmlError};

impl StoreJob {
    pub(in crate::data::engine) fn on_success(
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
            // Abort answers all go to `on_abort_answer`, before this; the others make no
            // requests.
            Purpose::Verify { .. } | Purpose::Sum { .. } | Purpose::Abort { .. } => {
                self.finished(id)
            }
            Purpose::Put { file } => {
                self.finished(id);
                self.file_uploaded(sh, file);
            }
            Purpose::Create { file } => match s3::parse_initiate(&resp.body) {
                Ok(upload_id) => {
                    self.finished(id);
                    self.upload_created(sh, file, upload_id);
                }
                Err(e) => self.bad_answer(sh, id, e, now),
            },
            Purpose::ListParts { file, marker } => {
                let upload_id = &self.up_file(file).upload_id;
                match self.api.read_parts(upload_id, marker, &resp.body) {
                    Ok((parts, next)) => {
                        self.finished(id);
                        let f = &mut self.upload().files[file];
                        for p in parts {
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
                }
            }
            Purpose::Part {
                file, number, len, ..
            } => {
                let upload_id = &self.up_file(file).upload_id;
                let Some(etag) = self.api.part_etag(upload_id, number, &resp.head) else {
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
            Purpose::Complete { file } => match self.api.read_completion(&resp.body) {
                Ok(()) => {
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

    pub(super) fn file_uploaded(&mut self, sh: &mut Shared, file: usize) {
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
