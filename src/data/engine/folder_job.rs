//! Transfers to and from a folder of a shared filesystem (`file://` URLs and plain absolute
//! paths): one file copied per step, so progress lines and a cancel get through. Files are
//! read beneath the source folder (never through a link out of it) and written beneath the
//! destination as [`copy_file`] does: never through a link.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::{is_settled, Shared, Summary, Work};
use crate::ctrl::exit::{ExitCode, Failure};
use crate::data::file_store::copy_file;
use crate::data::filter::Filter;
use crate::data::journal::{Direction, FileRecord, FileState, TransferId};
use crate::data::plan;
use crate::data::progress::Progress;
use crate::data::walk::{self, LocalFile, Root};
use crate::proto::osmo::IoType;
use crate::sys::dest_dir::DestDir;

pub struct FolderJob {
    work: Work,
    filter: Filter,
    /// The store's folder.
    store: PathBuf,
    transfer: Option<TransferId>,
    progress: Progress,
    start: SystemTime,
    /// Files to copy and where each goes; `None` until listed.
    files: Option<Vec<(LocalFile, PathBuf)>>,
    /// The folder copied from: every file is opened beneath it.
    root: Option<Root>,
    next: usize,
    /// The folder files are copied into, once opened.
    dest_root: Option<DestDir>,
}

impl FolderJob {
    pub fn new(
        work: Work,
        filter: Filter,
        store: PathBuf,
        transfer: Option<TransferId>,
        now: Instant,
    ) -> FolderJob {
        FolderJob {
            work,
            filter,
            store,
            transfer,
            progress: Progress::new(now),
            start: SystemTime::now(),
            files: None,
            root: None,
            next: 0,
            dest_root: None,
        }
    }

    fn failure(&self, message: String) -> Failure {
        let code = match self.work.direction {
            Direction::Download => ExitCode::DownloadFailed,
            Direction::Upload => ExitCode::UploadFailed,
        };
        Failure::new(code, message)
    }

    fn io_type(&self) -> IoType {
        match self.work.direction {
            Direction::Upload => IoType::Upload,
            Direction::Download => IoType::Download,
        }
    }

    fn list(&mut self, sh: &Shared) -> Result<Vec<(LocalFile, PathBuf)>, String> {
        let (from, to) = match self.work.direction {
            Direction::Upload => (&self.work.local, &self.store),
            Direction::Download => (&self.store, &self.work.local),
        };
        let (root, listing) = walk::list(from, self.work.only.as_deref())
            .map_err(|e| format!("Cannot list {}: {e}", from.display()))?;
        for skip in listing
            .skipped
            .iter()
            .filter(|s| self.filter.matches(&s.rel))
        {
            sh.skipped(self.io_type(), skip);
        }
        let to = to.clone();
        self.root = root;
        let files = listing.files;
        let now = SystemTime::now();
        Ok(files
            .into_iter()
            .filter(|f| self.filter.matches(&f.rel))
            .filter(|f| is_settled(f, self.work.settled_for, now))
            .map(|f| {
                let dest = to.join(&f.rel);
                (f, dest)
            })
            .collect())
    }

    /// Copies the next file (listing first); `Some` once the job is over.
    pub fn advance(&mut self, sh: &mut Shared) -> Option<Result<Summary, Failure>> {
        if self.files.is_none() {
            match self.list(sh) {
                Ok(files) => {
                    self.progress.files_total = files.len() as u64;
                    self.progress.bytes_total = walk::total_size(files.iter().map(|(f, _)| f.size));
                    self.files = Some(files);
                }
                Err(e) => return Some(Err(self.failure(e))),
            }
        }
        let files = self.files.as_ref()?;
        let Some((mut file, dest)) = files.get(self.next).cloned() else {
            return Some(Ok(Summary::of(&self.progress, self.start)));
        };
        self.next += 1;
        let journal = sh.journal.as_ref().zip(self.transfer);
        let done_before = journal.is_some_and(|(j, t)| {
            j.file(t, &file.rel).ok().flatten().is_some_and(|r| {
                r.state == FileState::Done && r.size == file.size && r.mtime_ns == file.mtime_ns
            })
        });
        if done_before && std::fs::symlink_metadata(&dest).is_ok_and(|m| m.len() == file.size) {
            self.progress.bytes_done += file.size;
            self.progress.bytes_skipped += file.size;
            self.progress.files_skipped += 1;
        } else {
            let from = match self.root.as_ref()?.open_file(&file.rel) {
                Ok(Ok(opened)) => opened,
                Ok(Err(skip)) => {
                    // Changed since it was listed, to a link out of the folder or nothing.
                    sh.skipped(self.io_type(), &skip);
                    let p = &mut self.progress;
                    p.files_total = p.files_total.saturating_sub(1);
                    p.bytes_total = p.bytes_total.saturating_sub(file.size);
                    return None;
                }
                Err(e) => {
                    let message = format!("Cannot open {}: {e}", file.path.display());
                    return Some(Err(self.failure(message)));
                }
            };
            let listed = file.size;
            file.refresh(&from.meta);
            let p = &mut self.progress;
            p.bytes_total = p
                .bytes_total
                .saturating_sub(listed)
                .saturating_add(file.size);
            let copied = self.dest_dir(&file.rel).and_then(|(dir, name)| {
                let progress = &mut self.progress;
                copy_file(&from.file, &dir, &name, &mut sh.net.random, &mut |n| {
                    progress.bytes_done += n
                })
                .map_err(|e| e.to_string())
            });
            if let Err(e) = copied {
                return Some(Err(self.failure(format!(
                    "Cannot copy {} to {}: {e}",
                    file.path.display(),
                    dest.display()
                ))));
            }
            if let Some((j, t)) = journal {
                if let Err(e) = j.set_file(
                    t,
                    &file.rel,
                    FileRecord {
                        size: file.size,
                        mtime_ns: file.mtime_ns,
                        state: FileState::Done,
                    },
                ) {
                    return Some(Err(self.failure(e.to_string())));
                }
            }
        }
        self.progress.files_done += 1;
        None
    }

    /// The folder a file at `rel` goes to, opened beneath the destination without following
    /// links (a link planted at a folder's name fails the copy), and the file's name.
    fn dest_dir(&mut self, rel: &str) -> Result<(DestDir, String), String> {
        let path =
            plan::safe_relative_path(rel).map_err(|problem| format!("{rel:?}: {problem}"))?;
        if self.dest_root.is_none() {
            let to = match self.work.direction {
                Direction::Upload => &self.store,
                Direction::Download => &self.work.local,
            };
            let root = DestDir::open_root(to).map_err(|e| format!("{}: {e}", to.display()))?;
            self.dest_root = Some(root);
        }
        let root = self.dest_root.as_ref().ok_or("no destination folder")?;
        let parent = path.parent().unwrap_or(Path::new(""));
        let dir = root.subdir(parent).map_err(|e| e.to_string())?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((dir, name))
    }

    pub fn work(&self) -> &Work {
        &self.work
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}
