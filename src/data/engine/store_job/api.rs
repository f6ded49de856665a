//! What differs between the two object-store APIs a job speaks, below the level of what
//! each request asks: where requests go, how they are signed and written, and where an
//! object's CRC64NVME metadata is read. What each op sends is built by the direction's
//! `requests` (S3) and by [`super::super::azure`].

use std::time::SystemTime;

use crate::data::store::ObjectApi;
use crate::net::Endpoint;
use crate::proto::azure;
use crate::proto::http::{Body, RequestError, ResponseHead};
use crate::proto::s3::checksum::{from_header, CRC64NVME_META};
use crate::proto::s3::{self, PayloadSigning, XmlError};

/// A request of either API, built and not yet signed.
pub enum ApiRequest {
    S3(s3::Request),
    Azure(azure::Request),
}

impl ObjectApi {
    /// Where every request of the job goes.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            ObjectApi::S3 { target, .. } => Endpoint {
                host: target.connect_host(),
                port: target.port,
                tls: target.tls,
            },
            ObjectApi::Azure { account, .. } => Endpoint {
                host: account.endpoint.host.clone(),
                port: account.endpoint.port,
                tls: account.endpoint.tls,
            },
        }
    }

    /// Whether bodies read from files are signed with their SHA-256 (SigV4 over plain
    /// HTTP by default); Shared Key signs no body.
    pub fn signs_payloads(&self, signing: PayloadSigning) -> bool {
        match self {
            ObjectApi::S3 { target, .. } => signing.signs(target.tls),
            ObjectApi::Azure { .. } => false,
        }
    }

    /// The header an answer states the object's CRC64NVME metadata in.
    pub fn crc_metadata_header(&self) -> String {
        match self {
            ObjectApi::S3 { .. } => format!("x-amz-meta-{CRC64NVME_META}"),
            ObjectApi::Azure { .. } => format!("x-ms-meta-{CRC64NVME_META}"),
        }
    }

    /// Signs `request` as of `now` (`payload_hash` is SigV4's `x-amz-content-sha256`) and
    /// writes its HTTP/1.1 head, with a [`Body::Bytes`] body after it.
    pub fn write_head(
        &self,
        request: ApiRequest,
        payload_hash: &str,
        body: Body<'_>,
        now: SystemTime,
    ) -> Result<Vec<u8>, RequestError> {
        let mut head = Vec::new();
        match (self, request) {
            (ObjectApi::S3 { target, creds }, ApiRequest::S3(mut request)) => {
                request.sign(target, creds, payload_hash, now);
                request.write_head(&mut head, target, body)?;
            }
            (ObjectApi::Azure { account, .. }, ApiRequest::Azure(mut request)) => {
                let length = match body {
                    Body::None => 0,
                    Body::Bytes(bytes) => bytes.len() as u64,
                    Body::Streamed(len) => len,
                };
                request.sign(account, length, now);
                request.write_head(&mut head, account, body)?;
            }
            _ => unreachable!("a request is built for its job's API"),
        }
        Ok(head)
    }
}

/// Reading answers: each API's form, in S3's terms.
impl ObjectApi {
    /// A listing page's objects and where the next page starts.
    pub fn read_listing(&self, body: &[u8]) -> Result<s3::ListPage, XmlError> {
        match self {
            ObjectApi::S3 { .. } => s3::parse_list_objects_v2(body),
            ObjectApi::Azure { .. } => {
                let page = azure::parse_list_blobs(body)?;
                Ok(s3::ListPage {
                    objects: page
                        .blobs
                        .into_iter()
                        .map(|b| s3::ObjectEntry {
                            key: b.name,
                            size: b.size,
                            etag: b.etag,
                        })
                        .collect(),
                    next_token: page.next_marker,
                })
            }
        }
    }

    /// The parts the store holds of upload `upload_id` (asked after part `marker`), and
    /// the marker of the next page. On Azure: the uncommitted blocks whose ids carry the
    /// upload's tag, each block id standing for the part's ETag.
    pub fn read_parts(
        &self,
        upload_id: &str,
        marker: Option<u32>,
        body: &[u8],
    ) -> Result<(Vec<s3::PartEntry>, Option<u32>), XmlError> {
        match self {
            ObjectApi::S3 { .. } => {
                let page = s3::parse_list_parts(body)?;
                let next = page.next_after(marker)?;
                Ok((page.parts, next))
            }
            ObjectApi::Azure { .. } => {
                let ours = |name: &str| azure::block_number(upload_id, name).is_some();
                let list = azure::parse_block_list(body, ours)?;
                let parts = list
                    .uncommitted
                    .into_iter()
                    .filter_map(|b| {
                        let number = azure::block_number(upload_id, &b.name)?;
                        Some(s3::PartEntry {
                            number,
                            etag: b.name,
                            size: b.size,
                        })
                    })
                    .collect();
                Ok((parts, None))
            }
        }
    }

    /// What the journal records for part `number` of upload `upload_id` once the store
    /// took it: S3's ETag (`None` when the answer has none), Azure's block id.
    pub fn part_etag(&self, upload_id: &str, number: u32, head: &ResponseHead) -> Option<String> {
        match self {
            ObjectApi::S3 { .. } => head
                .header("etag")
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            ObjectApi::Azure { .. } => Some(azure::block_id(upload_id, number)),
        }
    }

    /// Checks a completion's answer: S3 may embed an error in a 200; Azure's Put Block
    /// List answers 201 with no body.
    pub fn read_completion(&self, body: &[u8]) -> Result<(), XmlError> {
        match self {
            ObjectApi::S3 { .. } => s3::parse_complete(body).map(drop),
            ObjectApi::Azure { .. } => Ok(()),
        }
    }

    /// Whether an object's HEAD shows the whole of a `size`-byte file uploaded in `parts`
    /// parts whose whole CRC64NVME is `crc`: on S3 its length and a multipart ETag of its
    /// part count; on Azure (whose ETags say nothing of parts) its length and the CRC its
    /// metadata records.
    pub fn is_whole(&self, head: &ResponseHead, size: u64, parts: usize, crc: Option<u64>) -> bool {
        let header = |name: &str| {
            head.header(name)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
        };
        let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
        if length != Some(size) {
            return false;
        }
        match self {
            ObjectApi::S3 { .. } => header("etag")
                .unwrap_or_default()
                .trim_matches('"')
                .ends_with(&format!("-{parts}")),
            ObjectApi::Azure { .. } => {
                let stated = header(&self.crc_metadata_header()).and_then(|v| from_header(&v));
                crc.is_some_and(|crc| stated == Some(crc))
            }
        }
    }
}
