//! The request, body and description of each upload op.

use super::super::store_job::{ApiRequest, Purpose, StoreJob, MAX_XML};
use crate::data::store::ObjectApi;
use crate::net::http_pool::{RequestBody, ResponseSink};
use crate::proto::azure;
use crate::proto::s3::{self, BucketTarget, Request};

impl StoreJob {
    pub(in crate::data::engine) fn upload_body_of(&self, purpose: &Purpose) -> RequestBody {
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
                let f = self.up_file(file);
                match self.api {
                    ObjectApi::S3 { .. } => {
                        let parts: Vec<(u32, String)> =
                            f.parts_done.iter().map(|(n, e)| (*n, e.clone())).collect();
                        RequestBody::Bytes(s3::complete_multipart_body(&parts))
                    }
                    ObjectApi::Azure { .. } => {
                        let parts = f.parts_done.len() as u32;
                        RequestBody::Bytes(azure::block_list_body(&f.upload_id, parts))
                    }
                }
            }
            _ => RequestBody::None,
        }
    }

    /// The CRC64NVME of a part's body when the file's sums pass gave it.
    pub(in crate::data::engine) fn known_crc(&self, purpose: &Purpose) -> Option<u64> {
        match *purpose {
            Purpose::Part { file, number, .. } => {
                let index = usize::try_from(number.checked_sub(1)?).ok()?;
                self.up_file(file).part_crcs.get(index).copied()
            }
            _ => None,
        }
    }

    /// The request for `purpose` in the job's API; `body_crc` is the CRC64NVME of a body
    /// read from a file.
    pub(in crate::data::engine) fn request_of(
        &self,
        purpose: &Purpose,
        body_crc: Option<u64>,
    ) -> (ApiRequest, ResponseSink) {
        if let Purpose::Get { .. } = purpose {
            return self.download_request_of(purpose);
        }
        match &self.api {
            ObjectApi::S3 { target, .. } => {
                let (request, sink) = self.s3_request_of(target, purpose, body_crc);
                (ApiRequest::S3(request), sink)
            }
            ObjectApi::Azure { container, .. } => {
                let (request, sink) = self.azure_request_of(container, purpose, body_crc);
                (ApiRequest::Azure(request), sink)
            }
        }
    }

    /// An S3 request. A single PUT and every part carry their body's CRC (the store
    /// refuses damaged bytes); an object records its whole CRC as metadata, and a
    /// multipart upload declares CRC64NVME and completes with the whole CRC as its
    /// FULL_OBJECT checksum.
    fn s3_request_of(
        &self,
        t: &BucketTarget,
        purpose: &Purpose,
        body_crc: Option<u64>,
    ) -> (Request, ResponseSink) {
        let collect = ResponseSink::Collect { max: MAX_XML };
        match purpose {
            Purpose::List { token } => (
                s3::list_objects_v2(t, &self.prefix, token.as_deref()),
                collect,
            ),
            Purpose::Put { file } => {
                let mut request = s3::put_object(t, &self.up_file(*file).key);
                if let Some(crc) = body_crc {
                    request = request.with_crc64nvme(crc).with_crc64nvme_metadata(crc);
                }
                (request, collect)
            }
            Purpose::Create { file } => {
                let f = self.up_file(*file);
                let mut request = s3::create_multipart(t, &f.key);
                if let Some(whole) = f.crc64nvme {
                    request = request.declaring_crc64nvme().with_crc64nvme_metadata(whole);
                }
                (request, collect)
            }
            Purpose::ListParts { file, marker } => {
                let f = self.up_file(*file);
                (s3::list_parts(t, &f.key, &f.upload_id, *marker), collect)
            }
            Purpose::Part { file, number, .. } => {
                let f = self.up_file(*file);
                let mut request = s3::upload_part(t, &f.key, &f.upload_id, *number);
                if let (Some(_), Some(crc)) = (f.crc64nvme, body_crc) {
                    request = request.with_crc64nvme(crc);
                }
                (request, collect)
            }
            Purpose::Complete { file } => {
                let f = self.up_file(*file);
                let mut request = s3::complete_multipart(t, &f.key, &f.upload_id);
                if let Some(whole) = f.crc64nvme {
                    request = request.declaring_crc64nvme().with_crc64nvme(whole);
                }
                (request, collect)
            }
            Purpose::Check { file } => (s3::head_object(t, &self.up_file(*file).key), collect),
            Purpose::Abort { key, upload_id } => (s3::abort_multipart(t, key, upload_id), collect),
            Purpose::Get { .. } | Purpose::Verify { .. } | Purpose::Sum { .. } => {
                unreachable!("{purpose:?} makes no S3 request of its own")
            }
        }
    }

    pub(in crate::data::engine) fn describe_file(&self, purpose: &Purpose) -> String {
        match *purpose {
            Purpose::List { .. } => format!("Listing {}", self.work.url),
            Purpose::Put { file }
            | Purpose::Create { file }
            | Purpose::ListParts { file, .. }
            | Purpose::Complete { file }
            | Purpose::Check { file }
            | Purpose::Sum { file } => {
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
            Purpose::Abort { ref key, .. } => format!("Aborting the abandoned upload of {key}"),
        }
    }
}
