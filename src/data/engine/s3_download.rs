//! Downloads: the prefix is listed page by page, and every object is fetched with parallel
//! ranged GETs written in place into a temporary file, each finished range journaled. A
//! file is renamed into place only once its size and ETag check out.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::drop_behind::{self, DropBehind};
use super::s3_job::{hex, Mode, Purpose, S3Job};
use super::Shared;
use crate::data::file_store::temp_name;
use crate::data::journal::{FileRecord, FileState};
use crate::data::plan;
use crate::net::http_pool::{PoolResponse, ResponseSink};
use crate::proto::s3::{self, Request};

/// Most listing pages followed: 10 million objects.
const MAX_PAGES: usize = 10_000;

#[derive(Default)]
pub struct Download {
    listing_started: bool,
    listing_done: bool,
    pages: usize,
    tokens: HashSet<String>,
    files: Vec<DownFile>,
    next_file: usize,
    finished_files: usize,
    drop_behind: DropBehind,
}

#[derive(PartialEq, Eq)]
enum DownState {
    Waiting,
    Active,
    Verifying,
    Done,
}

pub struct DownFile {
    key: String,
    rel: String,
    size: u64,
    /// The ETag as listed, without quotes (empty when the store lists none).
    etag: String,
    /// The ETag the GET answers carry: all must agree, or the object changed meanwhile.
    seen_etag: Option<String>,
    /// Whether an answer said the object is encrypted with KMS or a customer key, whose
    /// ETags are not the MD5 of the content even for single-part objects.
    etag_not_md5: bool,
    dest: PathBuf,
    state: DownState,
    file: Option<Arc<File>>,
    ranges_todo: VecDeque<(u64, u64)>,
    busy: usize,
}

impl DownFile {
    /// The journal's name for this object's ranges: tied to its ETag, so ranges of an
    /// object that changed since are never mixed with the new one.
    fn ranges_key(&self) -> String {
        format!("{}\0{}", self.rel, self.etag)
    }
}

fn unquote(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

impl S3Job {
    fn download(&mut self) -> &mut Download {
        match &mut self.mode {
            Mode::Download(d) => d,
            Mode::Upload(_) => unreachable!("download step of an upload"),
        }
    }

    fn down_file(&self, i: usize) -> &DownFile {
        match &self.mode {
            Mode::Download(d) => &d.files[i],
            Mode::Upload(_) => unreachable!("download step of an upload"),
        }
    }

    pub(super) fn plan_download(&mut self, sh: &mut Shared, mut room: usize, _now: Instant) {
        if !self.download().listing_started {
            self.download().listing_started = true;
            if let Err(e) = fs::create_dir_all(&self.work.local) {
                return self.fail(format!("Cannot create {}: {e}", self.work.local.display()));
            }
            self.queue(Purpose::List { token: None });
            return;
        }
        // Ranges of files already open first; then open the next file and queue its
        // ranges in the same pass (not on the next wake-up, which may be seconds away).
        loop {
            let active: Vec<usize> = {
                let d = self.download();
                (0..d.next_file)
                    .filter(|&i| d.files[i].state == DownState::Active)
                    .collect()
            };
            for i in active {
                while room > 0 {
                    let f = &mut self.download().files[i];
                    let Some((offset, len)) = f.ranges_todo.pop_front() else {
                        break;
                    };
                    f.busy += 1;
                    self.queue(Purpose::Get {
                        file: i,
                        offset,
                        len,
                    });
                    room -= 1;
                }
            }
            let i = self.download().next_file;
            if room == 0 || self.failure.is_some() || i >= self.download().files.len() {
                break;
            }
            self.download().next_file += 1;
            self.start_download(sh, i);
        }
        let d = self.download();
        if d.listing_done && d.finished_files == d.files.len() {
            self.done = true;
        }
    }

    pub(super) fn on_listing(
        &mut self,
        sh: &mut Shared,
        id: u64,
        token: Option<String>,
        resp: PoolResponse,
        now: Instant,
    ) {
        let _ = token;
        let page = match s3::parse_list_objects_v2(&resp.body) {
            Ok(p) => p,
            Err(e) => {
                self.finished(id);
                return self.fail(format!(
                    "Listing {}: the store's answer is not usable: {e}",
                    self.work.url
                ));
            }
        };
        self.finished(id);
        let _ = (sh, now);
        for object in page.objects {
            if !object.key.starts_with(&self.prefix) {
                return self.fail(format!(
                    "Refusing object {:?} of {}: it is outside the prefix that was listed",
                    object.key, self.work.url
                ));
            }
            let Some(rel) = plan::key_below_prefix(&object.key, &self.prefix) else {
                continue;
            };
            if rel.is_empty() || (rel.ends_with('/') && object.size == 0) {
                continue; // a folder marker
            }
            if !self.filter.matches(rel) {
                continue;
            }
            let safe = match plan::safe_relative_path(rel) {
                Ok(p) => p,
                Err(problem) => {
                    return self.fail(format!(
                        "Refusing object {:?} of {}: {problem}",
                        object.key, self.work.url
                    ))
                }
            };
            self.progress.files_total += 1;
            self.progress.bytes_total += object.size;
            let dest = self.work.local.join(&safe);
            let file = DownFile {
                key: object.key.clone(),
                rel: rel.to_string(),
                size: object.size,
                etag: unquote(&object.etag).to_string(),
                seen_etag: None,
                etag_not_md5: false,
                dest,
                state: DownState::Waiting,
                file: None,
                ranges_todo: VecDeque::new(),
                busy: 0,
            };
            self.download().files.push(file);
        }
        let d = self.download();
        d.pages += 1;
        match page.next_token {
            Some(next) if d.pages >= MAX_PAGES || !d.tokens.insert(next.clone()) => {
                self.fail(format!(
                    "Listing {} does not end: the store repeats its continuation token",
                    self.work.url
                ));
            }
            Some(next) => self.queue(Purpose::List { token: Some(next) }),
            None => d.listing_done = true,
        }
    }

    /// Opens object `i`'s temporary file and plans its ranges (none when it is already
    /// whole: then it is skipped, or checked and moved into place).
    fn start_download(&mut self, sh: &mut Shared, i: usize) {
        let (rel, size, dest, ranges_key) = {
            let f = self.down_file(i);
            (f.rel.clone(), f.size, f.dest.clone(), f.ranges_key())
        };
        let journaled_done = match (&sh.journal, self.transfer) {
            (Some(j), Some(t)) => j
                .file(t, &rel)
                .ok()
                .flatten()
                .is_some_and(|r| r.state == FileState::Done && r.size == size),
            _ => false,
        };
        if journaled_done && fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            self.progress.files_done += 1;
            self.progress.files_skipped += 1;
            self.progress.bytes_done += size;
            self.progress.bytes_skipped += size;
            let d = self.download();
            d.files[i].state = DownState::Done;
            d.finished_files += 1;
            return;
        }
        if let Err(e) = self.prepare_folder(&dest) {
            self.fail(e);
            return;
        }
        let temp = temp_name(&dest);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&temp)
        {
            Ok(f) => f,
            Err(e) => {
                self.fail(format!("Cannot create {}: {e}", temp.display()));
                return;
            }
        };
        // Ranges finished by an earlier run count only if the file still has its length.
        let recorded = match (&sh.journal, self.transfer) {
            (Some(j), Some(t)) if file.metadata().is_ok_and(|m| m.len() == size) => {
                j.ranges(t, &ranges_key).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        if let Err(e) = file.set_len(size) {
            self.fail(format!("Cannot size {}: {e}", temp.display()));
            return;
        }
        let todo = plan::missing_ranges(size, &recorded, plan::range_size(size));
        let skipped = size - todo.iter().map(|r| r.1).sum::<u64>();
        self.progress.bytes_done += skipped;
        self.progress.bytes_skipped += skipped;
        let f = &mut self.download().files[i];
        f.file = Some(Arc::new(file));
        f.state = DownState::Active;
        f.ranges_todo = todo.into();
        if f.ranges_todo.is_empty() {
            self.verify(sh, i);
        }
    }

    /// Creates the folders above `dest` and checks that, symlinks resolved, they are inside
    /// the download folder: a link planted there must not redirect a write outside it.
    fn prepare_folder(&self, dest: &std::path::Path) -> Result<(), String> {
        let parent = dest.parent().unwrap_or(&self.work.local);
        fs::create_dir_all(parent)
            .map_err(|e| format!("Cannot create {}: {e}", parent.display()))?;
        let root = fs::canonicalize(&self.work.local).map_err(|e| e.to_string())?;
        let real = fs::canonicalize(parent).map_err(|e| e.to_string())?;
        if !real.starts_with(&root) {
            return Err(format!(
                "Refusing to write {}: it leads outside {}",
                dest.display(),
                root.display()
            ));
        }
        if fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "Refusing to write {}: it is a symlink",
                dest.display()
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_range(
        &mut self,
        sh: &mut Shared,
        id: u64,
        file: usize,
        offset: u64,
        len: u64,
        resp: PoolResponse,
        now: Instant,
    ) {
        let (key, size, ranges_key) = {
            let f = self.down_file(file);
            (f.key.clone(), f.size, f.ranges_key())
        };
        let whole = offset == 0 && len == size;
        let status_ok = resp.head.status == 206 || (resp.head.status == 200 && whole);
        let answered_etag = resp
            .head
            .header("etag")
            .map(|v| unquote(&String::from_utf8_lossy(v)).to_string());
        if !status_ok {
            self.finished(id);
            return self.fail(format!(
                "Downloading {key}: the store answered HTTP {} to a range request",
                resp.head.status
            ));
        }
        if let Some(answered) = answered_etag {
            let f = &mut self.download().files[file];
            let expected = match (&f.seen_etag, f.etag.is_empty()) {
                (Some(seen), _) => seen.clone(),
                (None, false) => f.etag.clone(),
                (None, true) => answered.clone(),
            };
            if answered != expected {
                self.finished(id);
                return self.fail(format!(
                    "Downloading {key}: the object changed while it was downloaded (ETag {answered} where {expected} was expected)"
                ));
            }
            f.seen_etag = Some(answered);
        }
        if etag_is_not_md5(&resp.head) {
            self.download().files[file].etag_not_md5 = true;
        }
        if resp.written != len {
            // A short body is a transport failure: fetch the range again.
            return self.retry(
                sh,
                id,
                format!("{} of {len} bytes arrived", resp.written),
                now,
            );
        }
        self.finished(id);
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            if let Err(e) = j.record_range(t, &ranges_key, offset, len) {
                return self.fail(e.to_string());
            }
        }
        self.progress.bytes_done += len;
        let download = self.download();
        let f = &mut download.files[file];
        if let Some(written) = &f.file {
            download.drop_behind.written(written, offset, len);
        }
        f.busy -= 1;
        if f.ranges_todo.is_empty() && f.busy == 0 {
            self.verify(sh, file);
        }
    }

    /// Checks a complete file on a worker thread: its size, and its MD5 when the ETag is
    /// one (single-part uploads without KMS). A large file is then flushed and dropped
    /// from the page cache ([`drop_behind::settle`]); small ones are not flushed: the
    /// input folder is the pod's own volume, which a sidecar restart keeps (with the page
    /// cache) and a node failure loses whole.
    fn verify(&mut self, sh: &mut Shared, i: usize) {
        let (file, size, md5) = {
            let f = self.down_file(i);
            let etag = f.seen_etag.as_ref().unwrap_or(&f.etag);
            let md5 =
                !f.etag_not_md5 && etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
            (f.file.clone(), f.size, md5)
        };
        let Some(file) = file else { return };
        self.download().files[i].state = DownState::Verifying;
        let id = self.track_work(Purpose::Verify { file: i });
        sh.workers.submit(id, move || {
            let len = file.metadata()?.len();
            if len != size {
                return Err(std::io::Error::other(format!(
                    "{len} bytes on disk, {size} listed"
                )));
            }
            let digest = if md5 {
                md5_file(&file, size)?
            } else {
                String::new()
            };
            drop_behind::settle(&file, size)?;
            Ok(digest)
        });
    }

    pub(super) fn on_verified(
        &mut self,
        sh: &mut Shared,
        id: u64,
        result: std::io::Result<String>,
    ) {
        let Some(Purpose::Verify { file: i }) = self.op(id).map(|o| o.purpose.clone()) else {
            return;
        };
        self.finished(id);
        let (key, rel, size, etag, dest, ranges_key) = {
            let f = self.down_file(i);
            let etag = f.seen_etag.clone().unwrap_or_else(|| f.etag.clone());
            (
                f.key.clone(),
                f.rel.clone(),
                f.size,
                etag,
                f.dest.clone(),
                f.ranges_key(),
            )
        };
        match result {
            Err(e) => return self.fail(format!("Downloading {key}: {e}")),
            Ok(digest) if !digest.is_empty() && !digest.eq_ignore_ascii_case(&etag) => {
                if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                    let _ = j.forget_ranges(t, &ranges_key);
                }
                return self.fail(format!(
                    "Downloading {key}: the content's MD5 {digest} does not match its ETag {etag}"
                ));
            }
            Ok(_) => {}
        }
        if let Err(e) = fs::rename(temp_name(&dest), &dest) {
            return self.fail(format!("Cannot move {} into place: {e}", dest.display()));
        }
        if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
            if let Err(e) = j.set_file(
                t,
                &rel,
                FileRecord {
                    size,
                    mtime_ns: 0,
                    state: FileState::Done,
                },
            ) {
                return self.fail(e.to_string());
            }
            let _ = j.forget_ranges(t, &ranges_key);
        }
        self.progress.files_done += 1;
        let d = self.download();
        d.finished_files += 1;
        d.files[i].state = DownState::Done;
        d.files[i].file = None;
    }

    pub(super) fn download_request_of(&self, purpose: &Purpose) -> (Request, ResponseSink) {
        let Purpose::Get { file, offset, len } = *purpose else {
            unreachable!("only GETs are download requests")
        };
        let f = self.down_file(file);
        let sink = match &f.file {
            Some(fd) => ResponseSink::File {
                file: fd.clone(),
                offset,
                max_len: len,
            },
            None => ResponseSink::Collect { max: 0 },
        };
        let last = offset + len.max(1) - 1;
        (
            s3::get_object(&self.target, &f.key, Some((offset, last)), None),
            sink,
        )
    }

    pub(super) fn describe_get(&self, file: usize, offset: u64) -> String {
        format!(
            "Downloading {} (from byte {offset})",
            self.down_file(file).key
        )
    }
}

/// Whether an answer says its object's ETag is not the MD5 of its content: S3 gives
/// objects encrypted with SSE-KMS (`aws:kms`, `aws:kms:dsse`) or a customer key (SSE-C)
/// other ETags. Unencrypted and SSE-S3 (`AES256`) objects keep MD5 ETags.
fn etag_is_not_md5(head: &crate::proto::http::ResponseHead) -> bool {
    let kms = head
        .header("x-amz-server-side-encryption")
        .is_some_and(|v| v.trim_ascii().starts_with(b"aws:kms"));
    kms || head
        .header("x-amz-server-side-encryption-customer-algorithm")
        .is_some()
}

/// MD5 of the first `size` bytes of `file`.
fn md5_file(file: &File, size: u64) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    use std::os::unix::fs::FileExt;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
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
    Ok(hex(&hasher.finalize()))
}
