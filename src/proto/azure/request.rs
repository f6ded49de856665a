//! Blob service requests: what each operation sends, Shared Key signing (or a SAS on
//! the query), and the HTTP head.

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::conn_string::{AzureAccount, AzureAuth};
use crate::proto::http::{write_request, Body, RequestError};
use crate::proto::s3::checksum::{self, CRC64NVME_META};
use crate::proto::s3::sigv4::uri_encode_into;
use crate::proto::s3::xml::escape_into;
use crate::proto::timefmt::http_date;

/// The REST API version sidewire speaks (Azurite and Azure both take it).
pub const API_VERSION: &str = "2021-08-06";

/// The standard headers Shared Key signs by position, in order (RFC 2616 names).
const SIGNED_STANDARD: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// One Blob service request before it is written: method, encoded path (below the
/// endpoint's own path), raw query pairs and extra headers (`Host` and `Content-Length`
/// are added by the writer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    /// URI-encoded: `/{container}/{blob}` or `/{container}`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    fn new(method: &'static str, container: &str, blob: Option<&str>) -> Request {
        let mut path = String::from("/");
        uri_encode_into(&mut path, container, false);
        if let Some(blob) = blob {
            path.push('/');
            uri_encode_into(&mut path, blob, true);
        }
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

    /// `x-ms-meta-crc64nvme`: the whole blob's CRC64NVME as metadata, in the same form as
    /// on S3 (base64 of the eight bytes, most significant first), for downloads to check.
    pub fn with_crc64nvme_metadata(self, crc: u64) -> Request {
        let name = format!("x-ms-meta-{CRC64NVME_META}");
        self.with_header(&name, checksum::to_header(crc))
    }

    /// Adds `x-ms-date` and `x-ms-version` as of `now`, and with a Shared Key the
    /// `Authorization` header over the request with a body of `content_length` bytes.
    /// Signing again (a retry) replaces the earlier values.
    pub fn sign(&mut self, account: &AzureAccount, content_length: u64, now: SystemTime) {
        self.headers.retain(|(n, _)| {
            !["x-ms-date", "x-ms-version", "authorization"]
                .iter()
                .any(|s| n.eq_ignore_ascii_case(s))
        });
        self.headers.push(("x-ms-date".into(), http_date(now)));
        self.headers
            .push(("x-ms-version".into(), API_VERSION.to_string()));
        if let AzureAuth::SharedKey(key) = &account.auth {
            let text = string_to_sign(self, account, content_length);
            let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mac) => mac,
                Err(_) => unreachable!("HMAC accepts any key length"),
            };
            mac.update(text.as_bytes());
            let signature = STANDARD.encode(mac.finalize().into_bytes());
            self.headers.push((
                "Authorization".into(),
                format!("SharedKey {}:{signature}", account.name),
            ));
        }
    }

    /// The request target: the endpoint's path, the request's, and the encoded query
    /// (with the SAS, when the account has one).
    pub fn target(&self, account: &AzureAccount) -> String {
        let mut target = format!("{}{}", account.endpoint.path, self.path);
        let mut first = true;
        for (name, value) in &self.query {
            target.push(if first { '?' } else { '&' });
            first = false;
            uri_encode_into(&mut target, name, false);
            target.push('=');
            uri_encode_into(&mut target, value, false);
        }
        if let AzureAuth::Sas(sas) = &account.auth {
            target.push(if first { '?' } else { '&' });
            target.push_str(sas);
        }
        target
    }

    /// Appends the HTTP/1.1 head (and a [`Body::Bytes`] body) to `out`.
    pub fn write_head(
        &self,
        out: &mut Vec<u8>,
        account: &AzureAccount,
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
            &self.target(account),
            &host_header(account),
            &headers,
            body,
        )
    }
}

/// `host[:port]` as the `Host` header gives it (the port only when not the scheme's).
pub fn host_header(account: &AzureAccount) -> String {
    let e = &account.endpoint;
    let host = if e.host.contains(':') {
        format!("[{}]", e.host)
    } else {
        e.host.clone()
    };
    match (e.tls, e.port) {
        (true, 443) | (false, 80) => host,
        (_, port) => format!("{host}:{port}"),
    }
}

/// Shared Key's string to sign (Blob service, version 2015-02-21 and later: an empty
/// Content-Length when there is no body).
pub(super) fn string_to_sign(
    request: &Request,
    account: &AzureAccount,
    content_length: u64,
) -> String {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    };
    let mut out = String::new();
    out.push_str(request.method);
    out.push('\n');
    for name in SIGNED_STANDARD {
        if name == "content-length" {
            if content_length > 0 {
                out.push_str(&content_length.to_string());
            }
        } else {
            out.push_str(header(name).trim());
        }
        out.push('\n');
    }
    let mut ms: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(n, v)| {
            let folded = v.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            (n.to_ascii_lowercase(), folded)
        })
        .collect();
    ms.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in &ms {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    // The resource: the account, the path as sent (the endpoint's own path included),
    // then each query parameter, names lower-cased and sorted, values decoded.
    out.push('/');
    out.push_str(&account.name);
    out.push_str(&account.endpoint.path);
    out.push_str(&request.path);
    let mut params: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in &request.query {
        let name = name.to_ascii_lowercase();
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => params.push((name, vec![value])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut values) in params {
        values.sort_unstable();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// Hex digits in an upload's tag: with it, every block id of a blob has one length (the
/// service's rule), and blocks another upload left uncommitted are never taken for this
/// one's.
pub const UPLOAD_TAG_LEN: usize = 16;

/// A new upload's tag, from eight random bytes.
pub fn upload_tag(random: [u8; 8]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// The block id of part `number` of upload `tag`: base64 of `sidewire-{tag}-{number:06}`.
pub fn block_id(tag: &str, number: u32) -> String {
    STANDARD.encode(format!("sidewire-{tag}-{number:06}"))
}

/// The part number a block id of [`block_id`]'s form names, if it is upload `tag`'s.
pub fn block_number(tag: &str, id: &str) -> Option<u32> {
    let raw = STANDARD.decode(id).ok()?;
    let digits = std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("sidewire-")?
        .strip_prefix(tag)?
        .strip_prefix('-')?;
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `x-ms-content-crc64`: base64 of the body's CRC64 (Azure's polynomial is NVMe's), its
/// eight bytes least significant first, as Azure's SDKs write it.
fn content_crc64(crc: u64) -> String {
    STANDARD.encode(crc.to_le_bytes())
}

/// Create Container (tests and set-up).
pub fn create_container(container: &str) -> Request {
    Request::new("PUT", container, None).with_query("restype", "container")
}

/// Put Blob of a block blob in one request, its body's CRC checked by the service.
pub fn put_blob(container: &str, blob: &str, crc: u64) -> Request {
    Request::new("PUT", container, Some(blob))
        .with_header("x-ms-blob-type", "BlockBlob".into())
        .with_header("x-ms-content-crc64", content_crc64(crc))
}

/// Put Block: part `number` of upload `tag` of a blob, uncommitted until
/// [`put_block_list`].
pub fn put_block(container: &str, blob: &str, tag: &str, number: u32, crc: u64) -> Request {
    Request::new("PUT", container, Some(blob))
        .with_query("comp", "block")
        .with_query("blockid", &block_id(tag, number))
        .with_header("x-ms-content-crc64", content_crc64(crc))
}

/// Put Block List: commits the blocks of [`block_list_body`] as the blob.
pub fn put_block_list(container: &str, blob: &str) -> Request {
    Request::new("PUT", container, Some(blob)).with_query("comp", "blocklist")
}

/// The Put Block List body committing parts `1..=parts` of upload `tag` in order, each as
/// the latest block uploaded under its id.
pub fn block_list_body(tag: &str, parts: u32) -> Vec<u8> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for number in 1..=parts {
        out.push_str("<Latest>");
        escape_into(&mut out, &block_id(tag, number));
        out.push_str("</Latest>");
    }
    out.push_str("</BlockList>");
    out.into_bytes()
}

/// Get Block List of the blocks uploaded and not yet committed (what a resumed upload
/// need not send again); the answer is read by [`parse_block_list`](super::parse_block_list).
pub fn get_uncommitted_blocks(container: &str, blob: &str) -> Request {
    Request::new("GET", container, Some(blob))
        .with_query("comp", "blocklist")
        .with_query("blocklisttype", "uncommitted")
}

/// Get Blob Properties: a HEAD of the blob (its length and metadata).
pub fn get_blob_properties(container: &str, blob: &str) -> Request {
    Request::new("HEAD", container, Some(blob))
}

/// Get Blob, optionally of the bytes `first..=last`.
pub fn get_blob(container: &str, blob: &str, range: Option<(u64, u64)>) -> Request {
    let request = Request::new("GET", container, Some(blob));
    match range {
        Some((first, last)) => request.with_header("x-ms-range", format!("bytes={first}-{last}")),
        None => request,
    }
}

/// List Blobs under `prefix`, continuing from `marker`; the answer is read by
/// [`parse_list_blobs`](super::parse_list_blobs).
pub fn list_blobs(container: &str, prefix: &str, marker: Option<&str>) -> Request {
    let mut request = Request::new("GET", container, None)
        .with_query("restype", "container")
        .with_query("comp", "list")
        .with_query("prefix", prefix);
    if let Some(marker) = marker {
        request = request.with_query("marker", marker);
    }
    request
}

impl Request {
    /// At most `max` entries in a listing page (the service's default is 5000).
    pub fn with_max_results(self, max: u32) -> Request {
        self.with_query("maxresults", &max.to_string())
    }
}
