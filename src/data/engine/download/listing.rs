//! The listing side of a download: pages are asked for one at a time, only once the
//! objects listed so far are nearly all started, and each object is checked before it is
//! queued: inside the prefix, a path that stays in the folder, a size S3 could hold, and
//! no other object on the same path.

use std::collections::HashSet;
use std::time::Instant;

use super::{unquote, Listed};
use crate::data::engine::store_job::StoreJob;
use crate::data::engine::Shared;
use crate::data::plan::same_path::{Clash, SamePath};
use crate::data::plan::{self, MAX_OBJECT};
use crate::net::http_pool::PoolResponse;
use crate::proto::s3;

/// Most listing pages followed: 10 million objects.
const MAX_PAGES: usize = 10_000;
/// The next page is asked for once fewer listed objects than this wait to be started
/// (a page holds up to 1000), so the queue never holds much more than two pages.
const LIST_AHEAD: usize = 1000;

#[derive(Default)]
pub struct Listing {
    /// A page is being fetched.
    in_flight: bool,
    /// The last page came.
    done: bool,
    /// Where the next page starts.
    token: Option<String>,
    pages: usize,
    tokens: HashSet<String>,
    same_path: SamePath,
}

impl Listing {
    /// Whether to ask for the next page, with `waiting` objects listed and not started.
    pub fn wants_page(&self, waiting: usize) -> bool {
        !self.in_flight && !self.done && waiting < LIST_AHEAD
    }

    /// The continuation token of the page to ask for now.
    pub fn take_token(&mut self) -> Option<String> {
        self.in_flight = true;
        self.token.take()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl StoreJob {
    pub(in crate::data::engine) fn on_listing(
        &mut self,
        _sh: &mut Shared,
        id: u64,
        _token: Option<String>,
        resp: PoolResponse,
        _now: Instant,
    ) {
        self.finished(id);
        self.download().listing.in_flight = false;
        let page = match self.api.read_listing(&resp.body) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(format!(
                    "Listing {}: the store's answer is not usable: {e}",
                    self.work.url
                ));
            }
        };
        // A page that repeats a continuation token is refused before its objects, which
        // are then likely a repeat too.
        let listing = &mut self.download().listing;
        listing.pages += 1;
        match page.next_token {
            Some(next) if listing.pages >= MAX_PAGES || !listing.tokens.insert(next.clone()) => {
                return self.fail(format!(
                    "Listing {} does not end: the store repeats its continuation token",
                    self.work.url
                ));
            }
            Some(next) => listing.token = Some(next),
            None => listing.done = true,
        }
        for object in page.objects {
            if let Err(problem) = self.take_object(object) {
                return self.fail(problem);
            }
        }
    }

    /// Queues a listed object if it is to be downloaded; an error refuses the listing.
    fn take_object(&mut self, object: s3::ObjectEntry) -> Result<(), String> {
        let key = object.key.as_str();
        if !object.key.starts_with(&self.prefix) {
            return Err(refusal(
                key,
                &self.work.url,
                &"it is outside the prefix that was listed",
            ));
        }
        let Some(rel) = plan::key_below_prefix(&object.key, &self.prefix) else {
            return Ok(());
        };
        if rel.is_empty() || (rel.ends_with('/') && object.size == 0) {
            return Ok(()); // a folder marker
        }
        if !self.filter.matches(rel) {
            return Ok(());
        }
        let path = plan::safe_relative_path(rel)
            .map_err(|problem| refusal(key, &self.work.url, &problem))?;
        if object.size > MAX_OBJECT {
            return Err(refusal(
                key,
                &self.work.url,
                &format!(
                    "its listed size {} is more than any object can hold",
                    object.size
                ),
            ));
        }
        let path_text = path.to_string_lossy();
        // The key's part above `rel`: with the path, the key of an object at that path.
        let above = &object.key[..object.key.len() - rel.len()];
        let clash =
            self.download()
                .listing
                .same_path
                .add(&object.key, &path_text, path_text == rel, |p| {
                    format!("{above}{p}")
                });
        match clash {
            Ok(()) => {}
            Err(Clash::With(other)) => {
                return Err(refusal(
                    key,
                    &self.work.url,
                    &format!(
                        "it would be written to the same file, {path_text}, as object {other:?}"
                    ),
                ))
            }
            Err(Clash::TooManyUnusual) => {
                return Err(refusal(
                    key,
                    &self.work.url,
                    &format!(
                        "more than {} keys of the listing hold empty or '.' segments",
                        plan::same_path::MAX_UNUSUAL_KEYS
                    ),
                ))
            }
        }
        self.progress.bytes_total = self
            .progress
            .bytes_total
            .checked_add(object.size)
            .ok_or_else(|| {
                refusal(
                    key,
                    &self.work.url,
                    &"the listed sizes add up to more than 2^64 bytes",
                )
            })?;
        self.progress.files_total += 1;
        let listed = Listed {
            key: object.key.clone(),
            rel: rel.to_string(),
            path,
            size: object.size,
            etag: unquote(&object.etag).to_string(),
        };
        self.download().waiting.push_back(listed);
        Ok(())
    }
}

fn refusal(key: &str, url: &str, why: &dyn std::fmt::Display) -> String {
    format!("Refusing object {key:?} of {url}: {why}")
}
