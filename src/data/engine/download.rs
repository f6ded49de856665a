//! Downloads: the prefix is listed a page at a time, as the files listed so far are started
//! ([`listing`]), so memory follows the work in flight and not the size of the listing.
//! Every object is fetched with parallel ranged GETs written in place into a new temporary
//! file in its folder, each finished range journaled. Folders are opened beneath the
//! download folder without following links, and temporary files are created exclusively
//! under a random name that the journal keeps, so a restarted ctrl continues the same file.
//! A file whose size and ETag check out is flushed, renamed into place and its folder
//! flushed; only then is it journaled as done.

mod finish;
mod listing;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::drop_behind::DropBehind;
use super::store_job::{ApiRequest, Mode, Purpose, StoreJob};
use super::Shared;
use crate::data::file_store::create_temp;
use crate::data::journal::FileState;
use crate::data::plan;
use crate::data::store::ObjectApi;
use crate::net::http_pool::{PoolResponse, ResponseSink};
use crate::proto::azure;
use crate::proto::http::parse_content_range;
use crate::proto::s3;
use crate::proto::s3::checksum::{object_crc, CrcSource};
use crate::sys::dest_dir::DestDir;

pub use listing::Listing;

#[derive(Default)]
pub struct Download {
    /// The download folder, opened once the transfer starts.
    root: Option<Arc<DestDir>>,
    /// The folder the last file was started in: keys come sorted, so the next file is
    /// mostly in the same one.
    last_dir: Option<(PathBuf, Arc<DestDir>)>,
    /// Boxed: its hash tables would make every job's mode as large as a download's.
    listing: Box<Listing>,
    /// Listed, not yet started (a page or two at most).
    waiting: VecDeque<Listed>,
    /// Started and not yet done, by id.
    active: HashMap<usize, DownFile>,
    next_id: usize,
    drop_behind: DropBehind,
}

/// An object as listed.
pub struct Listed {
    key: String,
    /// The key below the listed prefix: the file's name in the journal.
    rel: String,
    /// Where it is written, relative to the download folder.
    path: PathBuf,
    size: u64,
    /// The ETag as listed, without quotes (empty when the store lists none).
    etag: String,
}

pub struct DownFile {
    listed: Listed,
    /// The ETag the GET answers carry: all must agree, or the object changed meanwhile.
    seen_etag: Option<String>,
    /// Whether an answer said the object is encrypted with KMS or a customer key, whose
    /// ETags are not the MD5 of the content even for single-part objects.
    etag_not_md5: bool,
    dir: Arc<DestDir>,
    temp: String,
    file: Arc<File>,
    ranges_todo: VecDeque<(u64, u64)>,
    busy: usize,
    /// The whole object's CRC64NVME as the answers state it (see [`s3::checksum::object_crc`]).
    object_crc: Option<(u64, CrcSource)>,
    /// The CRC64NVME of each range fetched by this ctrl, by offset: `(len, crc)`. Combined,
    /// they give the file's without reading it again.
    range_crcs: BTreeMap<u64, (u64, u64)>,
    /// The file failed its check once and is being fetched again; a second failure fails
    /// the transfer.
    refetched: bool,
}

impl Listed {
    /// The journal's name for this object's ranges: tied to its ETag, so ranges of an
    /// object that changed since are never mixed with the new one.
    fn ranges_key(&self) -> String {
        format!("{}\0{}", self.rel, self.etag)
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn unquote(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

impl StoreJob {
    fn download(&mut self) -> &mut Download {
        match &mut self.mode {
            Mode::Download(d) => d,
            Mode::Upload(_) => unreachable!("download step of an upload"),
        }
    }

    fn down_file(&self, i: usize) -> Option<&DownFile> {
        match &self.mode {
            Mode::Download(d) => d.active.get(&i),
            Mode::Upload(_) => None,
        }
    }

    pub(super) fn plan_download(&mut self, sh: &mut Shared, mut room: usize, _now: Instant) {
        if self.download().root.is_none() {
            match DestDir::open_root(&self.work.local) {
                Ok(root) => self.download().root = Some(Arc::new(root)),
                Err(e) => {
                    return self.fail(format!("Cannot create {}: {e}", self.work.local.display()));
                }
            }
        }
        // Ranges of files already open first; then the next listing page if the files
        // listed so far are nearly all started; then the next file, whose ranges are
        // queued in the same pass (not on the next wake-up, which may be seconds away).
        loop {
            let mut open: Vec<usize> = self
                .download()
                .active
                .iter()
                .filter(|(_, f)| !f.ranges_todo.is_empty())
                .map(|(&i, _)| i)
                .collect();
            open.sort_unstable();
            for i in open {
                while room > 0 {
                    let Some(f) = self.download().active.get_mut(&i) else {
                        break;
                    };
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
            let d = self.download();
            if room > 0 && d.listing.wants_page(d.waiting.len()) {
                let token = d.listing.take_token();
                self.queue(Purpose::List { token });
                room -= 1;
            }
            let d = self.download();
            if room == 0 || d.active.len() >= sh.concurrency || self.failure.is_some() {
                break;
            }
            let Some(next) = self.download().waiting.pop_front() else {
                break;
            };
            if self.start_download(sh, next) {
                room -= 1;
            }
        }
        let d = self.download();
        if d.listing.is_done() && d.waiting.is_empty() && d.active.is_empty() {
            self.done = true;
        }
    }

    /// The folder `rel_dir` beneath the download folder, made and opened without following
    /// links.
    fn dest_dir(&mut self, rel_dir: &Path) -> std::io::Result<Arc<DestDir>> {
        let d = self.download();
        if let Some((path, dir)) = &d.last_dir {
            if path == rel_dir {
                return Ok(dir.clone());
            }
        }
        let root = d
            .root
            .clone()
            .ok_or_else(|| std::io::Error::other("the download folder is not open"))?;
        let dir = Arc::new(root.subdir(rel_dir)?);
        d.last_dir = Some((rel_dir.to_path_buf(), dir.clone()));
        Ok(dir)
    }

    /// Starts object `listed`: skipped when the journal has it whole in place, else its
    /// temporary file is opened (the journaled one when its ranges can be continued) and
    /// its ranges planned. Returns whether it took a slot (its check went to a worker).
    fn start_download(&mut self, sh: &mut Shared, listed: Listed) -> bool {
        let rel_dir = listed.path.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = listed.name();
        let dir = match self.dest_dir(&rel_dir) {
            Ok(dir) => dir,
            Err(e) => {
                self.fail(format!(
                    "Cannot write {:?} to {}: {e}",
                    listed.key,
                    self.work.local.join(&listed.path).display()
                ));
                return false;
            }
        };
        let journal = sh.journal.as_ref().zip(self.transfer);
        let size = listed.size;
        let journaled_done = journal.is_some_and(|(j, t)| {
            j.file(t, &listed.rel)
                .ok()
                .flatten()
                .is_some_and(|r| r.state == FileState::Done && r.size == size)
        });
        if journaled_done && dir.has_file(&name, size) {
            self.progress.files_done += 1;
            self.progress.files_skipped += 1;
            self.progress.bytes_done += size;
            self.progress.bytes_skipped += size;
            return false;
        }
        let ranges_key = listed.ranges_key();
        let mut resumed = None;
        if let Some((j, t)) = journal {
            match j.download_part(t, &listed.rel) {
                Ok(Some(temp)) => {
                    let recorded = j.ranges(t, &ranges_key).unwrap_or_default();
                    // Ranges count only while the file is still ours and has its length.
                    let reopened = dir
                        .open_own(&temp)
                        .ok()
                        .filter(|f| f.metadata().is_ok_and(|m| m.len() == size));
                    match reopened {
                        Some(file) if !recorded.is_empty() => {
                            resumed = Some((file, temp, recorded))
                        }
                        _ => {
                            let _ = dir.remove(&temp);
                            let _ = j.forget_ranges(t, &ranges_key);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail(e.to_string());
                    return false;
                }
            }
        }
        let (file, temp, recorded) = match resumed {
            Some(r) => r,
            None => match self.new_temp(sh, &dir, &listed, &name) {
                Ok((file, temp)) => (file, temp, Vec::new()),
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            },
        };
        let todo = plan::missing_ranges(size, &recorded, plan::range_size(size));
        let skipped = size - todo.iter().map(|r| r.1).sum::<u64>();
        self.progress.bytes_done += skipped;
        self.progress.bytes_skipped += skipped;
        let d = self.download();
        let id = d.next_id;
        d.next_id += 1;
        let whole = todo.is_empty();
        d.active.insert(
            id,
            DownFile {
                listed,
                seen_etag: None,
                etag_not_md5: false,
                dir,
                temp,
                file: Arc::new(file),
                ranges_todo: todo.into(),
                busy: 0,
                object_crc: None,
                range_crcs: BTreeMap::new(),
                refetched: false,
            },
        );
        if whole {
            self.verify(sh, id);
        }
        whole
    }

    /// A new temporary file of the object's size, its name journaled before any range of
    /// it is (an empty object has no ranges and needs no record).
    fn new_temp(
        &self,
        sh: &mut Shared,
        dir: &DestDir,
        listed: &Listed,
        name: &str,
    ) -> Result<(File, String), String> {
        let where_ = || self.work.local.join(&listed.path).display().to_string();
        let (file, temp) = create_temp(dir, name, 0o666, &mut sh.net.random)
            .map_err(|e| format!("Cannot create a temporary file for {}: {e}", where_()))?;
        let sized = file.set_len(listed.size);
        let recorded = match (&sh.journal, self.transfer) {
            (Some(j), Some(t)) if listed.size > 0 => j
                .set_download_part(t, &listed.rel, &temp)
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        if let Err(e) = sized
            .map_err(|e| format!("Cannot size {}: {e}", where_()))
            .and(recorded)
        {
            let _ = dir.remove(&temp);
            return Err(e);
        }
        Ok((file, temp))
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
        let Some((key, size, ranges_key)) = self
            .down_file(file)
            .map(|f| (f.listed.key.clone(), f.listed.size, f.listed.ranges_key()))
        else {
            return self.finished(id);
        };
        let whole = offset == 0 && len == size;
        let status_ok = resp.head.status == 206 || (resp.head.status == 200 && whole);
        if !status_ok {
            self.finished(id);
            return self.fail(format!(
                "Downloading {key}: the store answered HTTP {} to a range request",
                resp.head.status
            ));
        }
        if resp.head.status == 206 {
            let stated = resp.head.header("content-range");
            if !stated
                .and_then(parse_content_range)
                .is_some_and(|r| r.is(offset, len, size))
            {
                self.finished(id);
                let stated = stated.map_or("no Content-Range".into(), |v| {
                    format!("Content-Range {:?}", String::from_utf8_lossy(v))
                });
                return self.fail(format!(
                    "Downloading {key}: the store answered {stated} to a request for bytes {offset}-{} of {size}",
                    offset + len - 1
                ));
            }
        }
        let answered_etag = resp
            .head
            .header("etag")
            .map(|v| unquote(&String::from_utf8_lossy(v)).to_string());
        if let Some(answered) = answered_etag {
            let Some(f) = self.download().active.get_mut(&file) else {
                return self.finished(id);
            };
            let expected = match (&f.seen_etag, f.listed.etag.is_empty()) {
                (Some(seen), _) => seen.clone(),
                (None, false) => f.listed.etag.clone(),
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
        let meta_header = self.api.crc_metadata_header();
        if let Some(f) = self.download().active.get_mut(&file) {
            f.etag_not_md5 |= etag_is_not_md5(&resp.head);
            // The store's own checksum outranks the metadata, whichever answer states it.
            match object_crc(&resp.head, whole, &meta_header) {
                Some(stated) if f.object_crc.is_none() || stated.1 == CrcSource::Store => {
                    f.object_crc = Some(stated)
                }
                _ => {}
            }
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
        let Some(f) = download.active.get_mut(&file) else {
            return;
        };
        download.drop_behind.written(&f.file, offset, len);
        f.range_crcs.insert(offset, (len, resp.written_crc64nvme));
        f.busy -= 1;
        if f.ranges_todo.is_empty() && f.busy == 0 {
            self.verify(sh, file);
        }
    }

    /// A GET of one range of a file, written in place into its temporary file.
    pub(super) fn download_request_of(&self, purpose: &Purpose) -> (ApiRequest, ResponseSink) {
        let Purpose::Get { file, offset, len } = *purpose else {
            unreachable!("only GETs are download requests")
        };
        let (key, sink) = match self.down_file(file) {
            Some(f) => (
                f.listed.key.as_str(),
                ResponseSink::File {
                    file: f.file.clone(),
                    offset,
                    max_len: len,
                },
            ),
            None => ("", ResponseSink::Collect { max: 0 }),
        };
        let range = Some((offset, offset + len.max(1) - 1));
        let request = match &self.api {
            ObjectApi::S3 { target, .. } => {
                ApiRequest::S3(s3::get_object(target, key, range, None).with_checksum_mode())
            }
            ObjectApi::Azure { container, .. } => {
                ApiRequest::Azure(azure::get_blob(container, key, range))
            }
        };
        (request, sink)
    }

    pub(super) fn describe_get(&self, file: usize, offset: u64) -> String {
        let key = self.down_file(file).map_or("", |f| f.listed.key.as_str());
        format!("Downloading {key} (from byte {offset})")
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
