//! Azure Blob storage in the transfer engine: the request each op makes there, and the
//! ops that need none. A multipart upload is a set of blocks put under ids that carry the
//! upload's random tag, then committed by Put Block List. Nothing creates an upload (its
//! tag is made up here and journaled), and nothing aborts one: uncommitted blocks expire
//! after a week, or go when the blob is next committed, and blocks of another tag are
//! never taken for this upload's. How answers differ is in `store_job::api`.

use super::store_job::{Purpose, StoreJob, MAX_XML};
use super::Shared;
use crate::data::store::ObjectApi;
use crate::net::http_pool::ResponseSink;
use crate::proto::azure::{self, Request};
use crate::proto::osmo::IoType;
use crate::proto::s3::checksum::crc64nvme;

impl StoreJob {
    /// The Blob service request for `purpose` on `container`. A single Put Blob and every
    /// Put Block carry their body's CRC in `x-ms-content-crc64`; a blob records its whole
    /// CRC64NVME as metadata, as on S3.
    pub(super) fn azure_request_of(
        &self,
        container: &str,
        purpose: &Purpose,
        body_crc: Option<u64>,
    ) -> (Request, ResponseSink) {
        let collect = ResponseSink::Collect { max: MAX_XML };
        // Bodies read from files always have their CRC; an empty body's is that of nothing.
        let body_crc = body_crc.unwrap_or_else(|| crc64nvme(&[]));
        let request = match purpose {
            // Pages of S3's size: Azure's default of 5000 blobs could outgrow MAX_XML.
            Purpose::List { token } => {
                azure::list_blobs(container, &self.prefix, token.as_deref()).with_max_results(1000)
            }
            Purpose::Put { file } => azure::put_blob(container, &self.up_file(*file).key, body_crc)
                .with_crc64nvme_metadata(body_crc),
            Purpose::ListParts { file, .. } => {
                azure::get_uncommitted_blocks(container, &self.up_file(*file).key)
            }
            Purpose::Part { file, number, .. } => {
                let f = self.up_file(*file);
                azure::put_block(container, &f.key, &f.upload_id, *number, body_crc)
            }
            Purpose::Complete { file } => {
                let f = self.up_file(*file);
                let request = azure::put_block_list(container, &f.key);
                match f.crc64nvme {
                    Some(whole) => request.with_crc64nvme_metadata(whole),
                    None => request,
                }
            }
            Purpose::Check { file } => {
                azure::get_blob_properties(container, &self.up_file(*file).key)
            }
            Purpose::Create { .. }
            | Purpose::Abort { .. }
            | Purpose::Get { .. }
            | Purpose::Verify { .. }
            | Purpose::Sum { .. } => unreachable!("{purpose:?} makes no Blob service request"),
        };
        (request, collect)
    }

    /// Carries out op `id` if the job's API needs no request for it (Azure's upload
    /// creation and abort); true if so.
    pub(super) fn done_without_request(
        &mut self,
        sh: &mut Shared,
        id: u64,
        purpose: &Purpose,
    ) -> bool {
        if !matches!(self.api, ObjectApi::Azure { .. }) {
            return false;
        }
        match purpose {
            Purpose::Create { file } => {
                self.finished(id);
                let tag = azure::upload_tag(sh.net.random.bytes());
                self.upload_created(sh, *file, tag);
                true
            }
            Purpose::Abort { upload_id, .. } => {
                self.finished(id);
                if let (Some(j), Some(t)) = (&sh.journal, self.transfer) {
                    if let Err(e) = j.forget_abandoned(t, upload_id) {
                        sh.log(IoType::Upload, e.to_string());
                    }
                }
                true
            }
            _ => false,
        }
    }
}
