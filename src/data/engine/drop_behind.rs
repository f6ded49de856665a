//! Keeps a download from filling the page cache. The node's memory belongs to the
//! training job, and a multi-GiB input written through the cache would push out the
//! job's own cached files (and, on memory the hypervisor hands out lazily, makes every
//! freshly cached page expensive: 2.7 CPU-s per GiB measured here, against 0.3).
//!
//! Each written range is advised `DONTNEED` twice: once when it is written, which starts
//! its writeback (the kernel cannot drop dirty pages), and again [`LAG`] ranges later,
//! once that writeback has had time to finish, which drops the clean pages. A large file,
//! once complete and flushed, is dropped whole ([`settle`]). Advice is only advice: a
//! failure changes memory use, never the data.

use std::collections::VecDeque;
use std::fs::File;
use std::num::NonZeroU64;
use std::sync::Arc;

/// Ranges written after this one before it is advised again: about as many as are in
/// flight, by when its writeback (started when it was written) is done. Advised sooner,
/// its pages would still be under writeback and stay. So a download keeps at most this
/// many ranges, plus those in flight, in the cache (some 500 MiB with 32 MiB ranges).
const LAG: usize = 8;

#[derive(Default)]
pub struct DropBehind {
    written: VecDeque<(Arc<File>, u64, u64)>,
}

impl DropBehind {
    /// `len` bytes at `offset` of `file` are written.
    pub fn written(&mut self, file: &Arc<File>, offset: u64, len: u64) {
        advise_dont_need(file, offset, len);
        self.written.push_back((file.clone(), offset, len));
        while self.written.len() > LAG {
            if let Some((file, offset, len)) = self.written.pop_front() {
                advise_dont_need(&file, offset, len);
            }
        }
    }
}

impl Drop for DropBehind {
    fn drop(&mut self) {
        for (file, offset, len) in self.written.drain(..) {
            advise_dont_need(&file, offset, len);
        }
    }
}

/// Files from this size are dropped whole once complete. Smaller ones stay cached: they
/// are likely read soon, and cost little.
const SETTLE_FROM: u64 = 64 << 20;

/// A complete file of `size` bytes, already flushed: a large one is dropped from the page
/// cache.
pub fn settle(file: &File, size: u64) {
    if size >= SETTLE_FROM {
        advise_dont_need(file, 0, size);
    }
}

/// Starts writeback of the range's dirty pages and drops its clean ones.
pub fn advise_dont_need(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}
