//! One transfer between a local folder and an object store (S3's API or Azure Blob's):
//! the requests it has in flight, their retries, and what it reports. The steps particular
//! to each direction are in [`super::upload`] and [`super::download`]; what differs
//! for Azure, in [`super::azure`] and [`api`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Instant, SystemTime};

use super::{Shared, Summary, Work};
use crate::ctrl::exit::{ExitCode, Failure};
use crate::data::filter::Filter;
use crate::data::journal::{Direction, TransferId};
use crate::data::progress::Progress;
use crate::data::store::ObjectApi;
use crate::net::http_pool::{PoolError, PoolRequest, PoolResponse, RequestBody, RequestId};
use crate::proto::http::Body;
use crate::proto::osmo::IoType;
use crate::proto::s3;
use crate::reactor::Timers;

mod api;
mod payload;
mod retry;

pub use api::ApiRequest;
pub use payload::{digest_file_range, read_range, sum_file, FileSums, PayloadDigest, Worked};

/// Attempts per request before the transfer fails.
pub const MAX_ATTEMPTS: u32 = 8;
/// Largest XML answer read (a listing page of 1000 keys is ~300 KiB).
pub const MAX_XML: u64 = 8 << 20;

/// Why a request is made; enough to build it again for a retry.
#[derive(Clone, Debug)]
pub enum Purpose {
    List {
        token: Option<String>,
    },
    Put {
        file: usize,
    },
    Create {
        file: usize,
    },
    ListParts {
        file: usize,
        marker: Option<u32>,
    },
    Part {
        file: usize,
        number: u32,
        offset: u64,
        len: u64,
    },
    Complete {
        file: usize,
    },
    /// HEAD of an object whose completion (CompleteMultipartUpload, Put Block List) went
    /// out before a restart.
    Check {
        file: usize,
    },
    Get {
        file: usize,
        offset: u64,
        len: u64,
    },
    /// A downloaded file's check on a worker thread (no request).
    Verify {
        file: usize,
    },
    /// A multipart file's CRCs on a worker thread, before its upload is created.
    Sum {
        file: usize,
    },
    /// AbortMultipartUpload of an upload given up on (see `upload::abort`); on Azure
    /// only the journal's record goes.
    Abort {
        key: String,
        upload_id: String,
    },
}

pub struct Op {
    pub purpose: Purpose,
    pub attempts: u32,
    /// The body's checksums, once computed (bodies read from files are read on a worker).
    pub payload: Option<PayloadDigest>,
    pub last_error: String,
}

pub enum Mode {
    Upload(super::upload::Upload),
    Download(super::download::Download),
}

pub struct StoreJob {
    pub work: Work,
    pub filter: Filter,
    pub api: ObjectApi,
    pub prefix: String,
    pub transfer: Option<TransferId>,
    pub progress: Progress,
    pub start: SystemTime,
    pub mode: Mode,
    ops: HashMap<u64, Op>,
    next_op: u64,
    requests: HashMap<RequestId, u64>,
    /// Ops waiting for a worker thread (a payload hash or a file's check).
    hashing: HashSet<u64>,
    retries: Timers<u64>,
    /// Ops ready to be sent, in order.
    ready: VecDeque<u64>,
    pub failure: Option<Failure>,
    /// The transfer failed with this: only the aborts of the uploads it gave up still go
    /// out, then it reports the failure.
    closing: Option<Failure>,
    pub done: bool,
}

impl StoreJob {
    pub fn new(
        work: Work,
        filter: Filter,
        api: ObjectApi,
        prefix: String,
        transfer: Option<TransferId>,
        now: Instant,
    ) -> StoreJob {
        let mode = match work.direction {
            Direction::Upload => Mode::Upload(Default::default()),
            Direction::Download => Mode::Download(Default::default()),
        };
        StoreJob {
            work,
            filter,
            api,
            prefix,
            transfer,
            progress: Progress::new(now),
            start: SystemTime::now(),
            mode,
            ops: HashMap::new(),
            next_op: 0,
            requests: HashMap::new(),
            hashing: HashSet::new(),
            retries: Timers::default(),
            ready: VecDeque::new(),
            failure: None,
            closing: None,
            done: false,
        }
    }

    pub fn io_type(&self) -> IoType {
        match self.work.direction {
            Direction::Upload => IoType::Upload,
            Direction::Download => IoType::Download,
        }
    }

    /// Fails the transfer; the first failure is the one reported.
    pub fn fail(&mut self, message: String) {
        if self.failure.is_none() {
            let code = match self.work.direction {
                Direction::Download => ExitCode::DownloadFailed,
                Direction::Upload => ExitCode::UploadFailed,
            };
            self.failure = Some(Failure::new(code, message));
        }
    }

    /// Fails with "data unauthorized" when a `url:` spec is denied access.
    pub fn fail_denied(&mut self, message: String) {
        if self.work.check_access && self.failure.is_none() {
            self.failure = Some(Failure::new(ExitCode::DataUnauthorized, message));
        } else {
            self.fail(message);
        }
    }

    /// Records a new op (a request, or work for a worker thread); the caller says where
    /// it waits.
    fn new_op(&mut self, purpose: Purpose) -> u64 {
        let id = self.next_op;
        self.next_op += 1;
        self.ops.insert(
            id,
            Op {
                purpose,
                attempts: 0,
                payload: None,
                last_error: String::new(),
            },
        );
        id
    }

    /// Queues a new request.
    pub fn queue(&mut self, purpose: Purpose) {
        let id = self.new_op(purpose);
        self.ready.push_back(id);
    }

    /// Registers work done on a worker thread, so the job waits for it.
    pub fn track_work(&mut self, purpose: Purpose) -> u64 {
        let id = self.new_op(purpose);
        self.hashing.insert(id);
        id
    }

    /// Requests in flight, hashing or waiting to be retried.
    pub fn busy(&self) -> usize {
        self.ops.len()
    }

    pub fn advance(&mut self, sh: &mut Shared, now: Instant) -> Option<Result<Summary, Failure>> {
        if self.failure.is_none() && self.closing.is_none() && self.busy() == 0 && !self.done {
            self.plan(sh, now);
        }
        while let Some(op) = self.retries.pop_due(now) {
            self.ready.push_back(op);
        }
        while let Some((op, result)) = sh.workers.try_next() {
            self.on_worker(sh, op, result, now);
        }
        loop {
            sh.pool.advance(&mut sh.net, sh.poll.registry(), now);
            let completed = sh.pool.take_completed();
            if completed.is_empty() {
                break;
            }
            for (request, result) in completed {
                if let Some(op) = self.requests.remove(&request) {
                    self.on_response(sh, op, result, now);
                }
            }
            self.send_ready(sh, now);
        }
        if self.failure.is_none() {
            if self.closing.is_none() {
                self.plan(sh, now);
            }
            self.send_ready(sh, now);
            sh.pool.advance(&mut sh.net, sh.poll.registry(), now);
        }
        if let Some(failure) = self.failure.take() {
            // Stop what is in flight; workers' results are dropped as they come.
            self.cancel(sh);
            if self.closing.is_some() || !self.abandon_on_failure(sh) {
                return Some(Err(self.closing.take().unwrap_or(failure)));
            }
            self.closing = Some(failure);
            self.send_ready(sh, now);
            sh.pool.advance(&mut sh.net, sh.poll.registry(), now);
        }
        if let Some(failure) = &self.closing {
            return self.ops.is_empty().then(|| Err(failure.clone()));
        }
        if self.done && self.ops.is_empty() {
            return Some(Ok(Summary::of(&self.progress, self.start)));
        }
        None
    }

    /// Lets the direction add work while there is room.
    fn plan(&mut self, sh: &mut Shared, now: Instant) {
        let room = sh
            .concurrency
            .saturating_sub(self.requests.len() + self.hashing.len() + self.ready.len());
        if room == 0 {
            return;
        }
        match self.mode {
            Mode::Upload(_) => self.plan_upload(sh, room, now),
            Mode::Download(_) => self.plan_download(sh, room, now),
        }
    }

    fn send_ready(&mut self, sh: &mut Shared, now: Instant) {
        while self.failure.is_none() {
            let Some(op) = self.ready.pop_front() else {
                return;
            };
            self.send(sh, op, now);
        }
    }

    /// Sends op `id`, or has its body read on a worker first.
    fn send(&mut self, sh: &mut Shared, id: u64, now: Instant) {
        let Some(op) = self.ops.get(&id) else { return };
        let purpose = op.purpose.clone();
        if self.done_without_request(sh, id, &purpose) {
            // It may have given the direction more to do (an upload's parts).
            if self.failure.is_none() && self.closing.is_none() {
                self.plan(sh, now);
            }
            return;
        }
        let Some(op) = self.ops.get(&id) else { return };
        let body = self.body_of(&purpose);
        let (payload_hash, body_crc) = match (&body, &op.payload) {
            (RequestBody::None, _) => (s3::EMPTY_SHA256.to_string(), None),
            (RequestBody::Bytes(b), _) => (s3::sha256_hex(b), None),
            (RequestBody::File { .. }, Some(digest)) => (
                digest
                    .sha256_hex
                    .clone()
                    .unwrap_or_else(|| s3::UNSIGNED_PAYLOAD.to_string()),
                Some(digest.crc64nvme),
            ),
            (RequestBody::File { file, offset, len }, None) => {
                let sign = self.api.signs_payloads(sh.payload_signing);
                match self.known_crc(&purpose) {
                    // A part whose CRC the file's sums pass gave: nothing to read.
                    Some(crc) if !sign => (s3::UNSIGNED_PAYLOAD.to_string(), Some(crc)),
                    _ => {
                        let (file, offset, len) = (file.clone(), *offset, *len);
                        sh.workers.submit(id, move || {
                            digest_file_range(&file, offset, len, sign).map(Worked::Payload)
                        });
                        self.hashing.insert(id);
                        return;
                    }
                }
            }
        };
        let (request, sink) = self.request_of(&purpose, body_crc);
        let http_body = match &body {
            RequestBody::None => Body::None,
            RequestBody::Bytes(b) => Body::Bytes(b),
            RequestBody::File { len, .. } => Body::Streamed(*len),
        };
        let head = match self
            .api
            .write_head(request, &payload_hash, http_body, SystemTime::now())
        {
            Ok(head) => head,
            Err(e) => {
                return self.fail(format!("Cannot build a request for {}: {e}", self.work.url))
            }
        };
        // The writer put a small body right after the head.
        let body = match body {
            RequestBody::Bytes(_) => RequestBody::None,
            other => other,
        };
        let request = sh.pool.submit(PoolRequest {
            endpoint: self.api.endpoint(),
            head,
            body,
            sink,
            head_request: matches!(purpose, Purpose::Check { .. }),
            idle_timeout: sh.data_timeout,
        });
        self.requests.insert(request, id);
    }

    fn on_worker(
        &mut self,
        sh: &mut Shared,
        id: u64,
        result: std::io::Result<Worked>,
        now: Instant,
    ) {
        if !self.hashing.remove(&id) {
            return; // cancelled
        }
        match result {
            Ok(Worked::Verified) => self.on_verified(sh, id, Ok(())),
            Ok(Worked::Sums(sums)) => self.on_summed(sh, id, sums),
            Ok(Worked::Payload(digest)) => {
                if let Some(op) = self.ops.get_mut(&id) {
                    op.payload = Some(digest);
                    self.send(sh, id, now);
                }
            }
            Err(e) => match self.ops.get(&id).map(|o| &o.purpose) {
                Some(Purpose::Verify { .. }) => self.on_verified(sh, id, Err(e)),
                _ => self.fail(format!("Cannot read {}: {e}", self.describe(id))),
            },
        }
    }

    fn on_response(
        &mut self,
        sh: &mut Shared,
        id: u64,
        result: Result<PoolResponse, PoolError>,
        now: Instant,
    ) {
        let Some(op) = self.ops.get(&id) else { return };
        let (purpose, attempts) = (op.purpose.clone(), op.attempts);
        if let Purpose::Abort { .. } = purpose {
            return self.on_abort_answer(sh, id, result, now);
        }
        let retry_reason = match result {
            Err(e) if e.is_retryable() => e.to_string(),
            Err(e) => {
                let what = self.describe(id);
                self.ops.remove(&id);
                return self.fail(format!("{what} failed: {e}"));
            }
            Ok(resp) => {
                let status = resp.head.status;
                if (200..300).contains(&status) {
                    return self.on_success(sh, id, purpose, resp, now);
                }
                let error = s3::parse_error(&resp.body);
                let detail = match &error {
                    Some(e) => format!("HTTP {status} {}: {}", e.code, e.message),
                    // Azure names the error in a header too (HEAD answers have no body).
                    None => match resp.head.header("x-ms-error-code") {
                        Some(code) => format!("HTTP {status} {}", String::from_utf8_lossy(code)),
                        None => format!("HTTP {status}"),
                    },
                };
                let damaged = error.as_ref().is_some_and(|e| {
                    matches!(
                        e.code.as_str(),
                        "BadDigest" | "XAmzContentSHA256Mismatch" | "Crc64Mismatch" | "Md5Mismatch"
                    )
                });
                if status >= 500 || status == 429 || status == 408 || damaged {
                    // A body the store found damaged on the way is sent again, like a 5xx.
                    detail
                } else if let (Purpose::Create { file }, 400 | 501) = (&purpose, status) {
                    // A store that does not take the CRC64NVME declaration.
                    let (file, what) = (*file, self.describe(id));
                    self.ops.remove(&id);
                    return self.create_without_checksums(
                        sh,
                        file,
                        format!("{what} failed: {detail}"),
                    );
                } else if matches!(purpose, Purpose::Check { .. }) && status == 404 {
                    // A completion may still be assembling the object.
                    self.ops.remove(&id);
                    return self.queue_later(sh, purpose, attempts, "the object is not there yet");
                } else if let (Purpose::Complete { file }, ObjectApi::Azure { .. }, true) = (
                    &purpose,
                    &self.api,
                    error.as_ref().is_some_and(|e| e.code == "InvalidBlockList"),
                ) {
                    // Put Block List commits all or nothing: the blocks are gone (expired,
                    // or discarded by another commit), so the file goes up again.
                    let file = *file;
                    self.ops.remove(&id);
                    return self
                        .resume_without_record(sh, Purpose::ListParts { file, marker: None });
                } else if let (Purpose::ListParts { file, .. }, 404, ObjectApi::Azure { .. }) =
                    (&purpose, status, &self.api)
                {
                    // A blob with no blocks yet is not there at all: the upload goes on
                    // under its tag, every part still to send.
                    let file = *file;
                    self.ops.remove(&id);
                    return self.resume_parts(sh, file);
                } else if matches!(
                    purpose,
                    Purpose::ListParts { .. } | Purpose::Check { .. } | Purpose::Complete { .. }
                ) && matches!(status, 403 | 404)
                {
                    // The upload the journal names is gone (completed, aborted or expired),
                    // or listing parts is not allowed: go on without what was recorded.
                    self.ops.remove(&id);
                    return self.resume_without_record(sh, purpose);
                } else {
                    let what = self.describe(id);
                    self.ops.remove(&id);
                    let message = format!("{what} failed: {detail}");
                    return if status == 403 {
                        self.fail_denied(message)
                    } else {
                        self.fail(message)
                    };
                }
            }
        };
        self.retry(sh, id, retry_reason, now);
    }

    /// Marks op `id` finished.
    pub fn finished(&mut self, id: u64) {
        self.ops.remove(&id);
    }

    pub fn next_deadline(&mut self, sh: &Shared) -> Option<Instant> {
        [self.retries.next_deadline(), sh.pool.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn cancel(&mut self, sh: &mut Shared) {
        for (request, _) in self.requests.drain() {
            sh.pool.cancel(request, sh.poll.registry());
        }
        self.hashing.clear();
        self.ops.clear();
        self.ready.clear();
    }

    pub fn op(&self, id: u64) -> Option<&Op> {
        self.ops.get(&id)
    }

    pub fn op_mut(&mut self, id: u64) -> Option<&mut Op> {
        self.ops.get_mut(&id)
    }

    fn describe(&self, id: u64) -> String {
        match self.ops.get(&id).map(|o| &o.purpose) {
            Some(Purpose::List { .. }) => format!("Listing {}", self.work.url),
            Some(p) => self.describe_file(p),
            None => self.work.url.clone(),
        }
    }

    fn body_of(&self, purpose: &Purpose) -> RequestBody {
        match purpose {
            Purpose::Put { .. } | Purpose::Part { .. } | Purpose::Complete { .. } => {
                self.upload_body_of(purpose)
            }
            _ => RequestBody::None,
        }
    }
}
