//! Uploads given up on are aborted: the store keeps, and bills, the parts of a multipart
//! upload until it is completed or aborted. An upload is given up when its file changed
//! since its parts were sent, when the journal's upload can no longer be resumed, and when
//! the transfer fails for good. Each is first recorded in the journal, so a ctrl restarted
//! before the store confirmed the abort sends it again.

use std::time::Instant;

use super::super::store_job::{Purpose, StoreJob};
use super::super::Shared;
use super::UpState;
use crate::data::journal::AbandonedUpload;
use crate::net::http_pool::{PoolError, PoolResponse};
use crate::proto::osmo::IoType;
use crate::proto::s3;

/// Attempts per abort: a store that keeps failing it gets it again at the next start.
const ABORT_ATTEMPTS: u32 = 3;

impl StoreJob {
    /// Gives up the multipart upload `upload_id` of file `file`: recorded in the journal
    /// (instead of the file's upload), then aborted.
    pub(super) fn abandon(&mut self, sh: &mut Shared, file: usize, upload_id: String) {
        let f = self.up_file(file);
        let upload = AbandonedUpload {
            key: f.key.clone(),
            upload_id,
        };
        let rel = f.local.rel.clone();
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            if let Err(e) = j.abandon_multipart(t, &rel, &upload) {
                sh.log(
                    IoType::Upload,
                    format!("Cannot record the abort of {rel}: {e}"),
                );
            }
        }
        self.upload().files[file].upload_id.clear();
        self.queue(Purpose::Abort {
            key: upload.key,
            upload_id: upload.upload_id,
        });
    }

    /// The aborts an earlier start recorded and the store never confirmed.
    pub(super) fn queue_recorded_aborts(&mut self, sh: &mut Shared) -> Result<(), String> {
        let (Some(j), Some(t)) = (&sh.journal, self.transfer) else {
            return Ok(());
        };
        for AbandonedUpload { key, upload_id } in
            j.abandoned_uploads(t).map_err(|e| e.to_string())?
        {
            self.queue(Purpose::Abort { key, upload_id });
        }
        Ok(())
    }

    /// The transfer failed: its started multipart uploads are given up and their aborts
    /// queued; true if there is any to send. A pass while the command runs keeps them:
    /// the upload after the command resumes their parts.
    pub(in crate::data::engine) fn abandon_on_failure(&mut self, sh: &mut Shared) -> bool {
        if self.work.settled_for.is_some() {
            return false;
        }
        let super::super::store_job::Mode::Upload(u) = &self.mode else {
            return false;
        };
        let started: Vec<(usize, String)> = u
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.state == UpState::Active && !f.upload_id.is_empty())
            .map(|(i, f)| (i, f.upload_id.clone()))
            .collect();
        for (file, upload_id) in started {
            self.abandon(sh, file, upload_id);
        }
        self.busy() > 0
    }

    /// The store's answer to an abort. Done, or no such upload: forgotten. Refused for
    /// good (permissions): logged and forgotten, nothing more can be done. Failing for
    /// now: retried, then left in the journal for the next start. Never fails the job.
    pub(in crate::data::engine) fn on_abort_answer(
        &mut self,
        sh: &mut Shared,
        id: u64,
        result: Result<PoolResponse, PoolError>,
        now: Instant,
    ) {
        let Some(Purpose::Abort { key, upload_id }) = self.op(id).map(|op| op.purpose.clone())
        else {
            return;
        };
        let transient = match result {
            Ok(resp) => {
                let status = resp.head.status;
                if status >= 500 || status == 429 || status == 408 {
                    Some(format!("HTTP {status}"))
                } else {
                    if !(200..300).contains(&status) && status != 404 {
                        let detail = match s3::parse_error(&resp.body) {
                            Some(e) => format!("HTTP {status} {}: {}", e.code, e.message),
                            None => format!("HTTP {status}"),
                        };
                        sh.log(
                            IoType::Upload,
                            format!("The store refused to abort upload {upload_id} of {key} ({detail}): its parts stay until the bucket's lifecycle rules remove them"),
                        );
                    }
                    None
                }
            }
            Err(e) => Some(e.to_string()),
        };
        match transient {
            None => {
                self.finished(id);
                if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                    if let Err(e) = j.forget_abandoned(t, &upload_id) {
                        sh.log(IoType::Upload, e.to_string());
                    }
                }
            }
            Some(reason) => {
                let attempts = self.op(id).map_or(0, |op| op.attempts) + 1;
                if attempts < ABORT_ATTEMPTS {
                    if let Some(op) = self.op_mut(id) {
                        op.attempts = attempts;
                        op.last_error = reason;
                    }
                    return self.retry_later(sh, id, now);
                }
                self.finished(id);
                sh.log(
                    IoType::Upload,
                    format!("Cannot abort upload {upload_id} of {key} ({reason}): the next start tries again"),
                );
            }
        }
    }
}
