//! S3 requests: what each operation sends, signing, and the HTTP head.

use std::time::SystemTime;

use super::sigv4::{amz_date, authorization, canonical_headers, canonical_query, SigningInput};
use super::{checksum, xml, BucketTarget, Credentials};
use crate::proto::http::{write_request, Body, RequestError};

/// Headers that [`Request::sign`] sets; a second signing replaces them.
const SIGNING_HEADERS: [&str; 4] = [
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "authorization",
];

/// One S3 request before it is written: method, encoded path, raw query
/// pairs and extra headers (`Host` and `Content-Length` are added by the
/// writer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    /// Canonical URI-encoded path (see [`BucketTarget::object_path`]).
    pub path: String,
    /// Query pairs, raw (not encoded); an empty value is written `name=`.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    fn new(method: &'static str, path: String) -> Request {
        Request {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn with_query(mut self, name: &str, value: &str) -> Request {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    fn with_header(mut self, name: &str, value: String) -> Request {
        self.headers.push((name.to_string(), value));
        self
    }

    /// `x-amz-checksum-crc64nvme`: the body's CRC64NVME on a PutObject or UploadPart (a
    /// store that checks it refuses damaged bytes with `BadDigest`), the whole object's on
    /// the completion of an upload declared with [`Request::declaring_crc64nvme`].
    pub fn with_crc64nvme(self, crc: u64) -> Request {
        self.with_header(checksum::CRC64NVME_HEADER, checksum::to_header(crc))
    }

    /// `x-amz-meta-crc64nvme`: the whole object's CRC64NVME as user metadata, which every
    /// S3 store keeps and returns with the object, for downloads to check against.
    pub fn with_crc64nvme_metadata(self, crc: u64) -> Request {
        let name = format!("x-amz-meta-{}", checksum::CRC64NVME_META);
        self.with_header(&name, checksum::to_header(crc))
    }

    /// `x-amz-checksum-mode: ENABLED`: asks the store to state the object's own checksum
    /// with a GET (of the whole object) or HEAD.
    pub fn with_checksum_mode(self) -> Request {
        self.with_header("x-amz-checksum-mode", "ENABLED".to_string())
    }

    /// Declares a multipart upload whose parts carry CRC64NVME and whose object checksum
    /// is of the FULL_OBJECT type (the CRC of the whole object, not of its parts' CRCs):
    /// the algorithm on CreateMultipartUpload, the type on it and on the completion.
    pub fn declaring_crc64nvme(self) -> Request {
        let declared = if self.method == "POST" && self.query.iter().any(|(n, _)| n == "uploads") {
            self.with_header("x-amz-checksum-algorithm", "CRC64NVME".to_string())
        } else {
            self
        };
        declared.with_header("x-amz-checksum-type", "FULL_OBJECT".to_string())
    }

    /// Signs the request with AWS Signature Version 4 as of `now`: adds
    /// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (with
    /// a session token) and `Authorization`, signing every header and
    /// `host`. Signing again (a retry) replaces the earlier values.
    ///
    /// `payload_sha256_hex` is the body's [`sha256_hex`](super::sha256_hex),
    /// [`EMPTY_SHA256`](super::EMPTY_SHA256) without a body, or
    /// [`UNSIGNED_PAYLOAD`](super::UNSIGNED_PAYLOAD).
    pub fn sign(
        &mut self,
        target: &BucketTarget,
        credentials: &Credentials,
        payload_sha256_hex: &str,
        now: SystemTime,
    ) {
        self.headers
            .retain(|(name, _)| !SIGNING_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)));
        let date = amz_date(now);
        self.headers.push(("x-amz-date".to_string(), date.clone()));
        self.headers.push((
            "x-amz-content-sha256".to_string(),
            payload_sha256_hex.to_string(),
        ));
        if let Some(token) = &credentials.session_token {
            self.headers
                .push(("x-amz-security-token".to_string(), token.clone()));
        }
        let mut signed = self.headers.clone();
        signed.push(("host".to_string(), target.host_header()));
        let signed = canonical_headers(&signed);
        let query = canonical_query(&self.query);
        let value = authorization(
            &SigningInput {
                method: self.method,
                path: &self.path,
                canonical_query: &query,
                headers: &signed,
                payload_sha256_hex,
                amz_date: &date,
                region: &target.region,
            },
            credentials,
        );
        self.headers.push(("Authorization".to_string(), value));
    }

    /// The request target: path, then `?` and the canonical query when
    /// there is one (what is sent is exactly what was signed).
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, canonical_query(&self.query))
        }
    }

    /// Appends the HTTP/1.1 head (and a [`Body::Bytes`] body) to `out`.
    pub fn write_head(
        &self,
        out: &mut Vec<u8>,
        target: &BucketTarget,
        body: Body<'_>,
    ) -> Result<(), RequestError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        write_request(
            out,
            self.method,
            &self.target(),
            &target.host_header(),
            &headers,
            body,
        )
    }
}

/// PutObject: the body is the object.
pub fn put_object(target: &BucketTarget, key: &str) -> Request {
    Request::new("PUT", target.object_path(key))
}

/// GetObject, optionally of the bytes `first..=last` and only while the
/// object's ETag is `if_match` (so a resumed download cannot mix versions).
pub fn get_object(
    target: &BucketTarget,
    key: &str,
    range: Option<(u64, u64)>,
    if_match: Option<&str>,
) -> Request {
    let mut request = Request::new("GET", target.object_path(key));
    if let Some((first, last)) = range {
        request = request.with_header("Range", format!("bytes={first}-{last}"));
    }
    if let Some(etag) = if_match {
        request = request.with_header("If-Match", etag.to_string());
    }
    request
}

/// HeadObject: size, ETag and existence without the body.
pub fn head_object(target: &BucketTarget, key: &str) -> Request {
    Request::new("HEAD", target.object_path(key))
}

/// CreateMultipartUpload; the answer is read by
/// [`parse_initiate`](super::parse_initiate).
pub fn create_multipart(target: &BucketTarget, key: &str) -> Request {
    Request::new("POST", target.object_path(key)).with_query("uploads", "")
}

/// UploadPart number `part_number` (1..=10000) of `upload_id`.
pub fn upload_part(target: &BucketTarget, key: &str, upload_id: &str, part_number: u32) -> Request {
    Request::new("PUT", target.object_path(key))
        .with_query("partNumber", &part_number.to_string())
        .with_query("uploadId", upload_id)
}

/// CompleteMultipartUpload; the body is [`complete_multipart_body`] and
/// the answer is read by [`parse_complete`](super::parse_complete).
pub fn complete_multipart(target: &BucketTarget, key: &str, upload_id: &str) -> Request {
    Request::new("POST", target.object_path(key)).with_query("uploadId", upload_id)
}

/// AbortMultipartUpload.
pub fn abort_multipart(target: &BucketTarget, key: &str, upload_id: &str) -> Request {
    Request::new("DELETE", target.object_path(key)).with_query("uploadId", upload_id)
}

/// ListParts of `upload_id`, after part `part_number_marker` when given;
/// the answer is read by [`parse_list_parts`](super::parse_list_parts).
pub fn list_parts(
    target: &BucketTarget,
    key: &str,
    upload_id: &str,
    part_number_marker: Option<u32>,
) -> Request {
    let mut request =
        Request::new("GET", target.object_path(key)).with_query("uploadId", upload_id);
    if let Some(marker) = part_number_marker {
        request = request.with_query("part-number-marker", &marker.to_string());
    }
    request
}

/// ListObjectsV2 of the keys under `prefix`, continuing a truncated page
/// when `continuation` is given; the answer is read by
/// [`parse_list_objects_v2`](super::parse_list_objects_v2).
pub fn list_objects_v2(target: &BucketTarget, prefix: &str, continuation: Option<&str>) -> Request {
    let mut request = Request::new("GET", target.bucket_path())
        .with_query("list-type", "2")
        .with_query("prefix", prefix);
    if let Some(token) = continuation {
        request = request.with_query("continuation-token", token);
    }
    request
}

/// The CompleteMultipartUpload body: the parts in the order given, ETags
/// XML-escaped (they carry quotes).
pub fn complete_multipart_body(parts: &[(u32, String)]) -> Vec<u8> {
    let mut out = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        out.push_str("<Part><PartNumber>");
        out.push_str(&number.to_string());
        out.push_str("</PartNumber><ETag>");
        xml::escape_into(&mut out, etag);
        out.push_str("</ETag></Part>");
    }
    out.push_str("</CompleteMultipartUpload>");
    out.into_bytes()
}
