//! S3 client codec, sans-IO: request builders, AWS Signature Version 4, the
//! XML answers the transfer engine reads, and store URLs.
//!
//! Nothing here opens sockets or reads clocks. A request is built for a
//! [`BucketTarget`], signed with the time the caller passes in, and written
//! as an HTTP/1.1 head by [`crate::proto::http::write_request`]; answers are
//! parsed from bodies the caller has already collected (and bounded).

pub mod checksum;
mod request;
pub(crate) mod sigv4;
#[cfg(test)]
mod tests;
mod url;
pub(crate) mod xml;

use std::fmt;

use sha2::{Digest, Sha256};

pub use request::{
    abort_multipart, complete_multipart, complete_multipart_body, create_multipart, get_object,
    head_object, list_objects_v2, list_parts, put_object, upload_part, Request,
};
pub use url::{
    addressing_style, parse_store_url, resolve_target, AddressingStyle, StoreUrl, UrlError,
};
pub use xml::{
    parse_complete, parse_error, parse_initiate, parse_list_objects_v2, parse_list_parts, ListPage,
    ObjectEntry, PartEntry, PartsPage, S3Error, XmlError, MAX_KEY_LEN, MAX_PAGE_ENTRIES,
};

/// SHA-256 of the empty string, the payload hash of requests without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload hash that tells S3 the body is not hashed (it still travels
/// inside TLS); for uploads too large to read twice.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Whether uploads sign their bodies' SHA-256 (`-payloadSigning`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadSigning {
    /// `UNSIGNED-PAYLOAD` over TLS, as current AWS SDKs sign (the body's CRC64NVME covers
    /// its bytes, TLS the wire); the SHA-256 over plain HTTP, where nothing else covers
    /// the wire for a store that checks no CRC64NVME.
    #[default]
    Auto,
    /// Always the SHA-256: one more pass over every byte sent.
    Signed,
    /// Always `UNSIGNED-PAYLOAD`.
    Unsigned,
}

impl PayloadSigning {
    /// The flag's values.
    pub const NAMES: [&'static str; 3] = ["auto", "signed", "unsigned"];

    pub fn parse(name: &str) -> Option<PayloadSigning> {
        match name {
            "auto" => Some(PayloadSigning::Auto),
            "signed" => Some(PayloadSigning::Signed),
            "unsigned" => Some(PayloadSigning::Unsigned),
            _ => None,
        }
    }

    /// Whether a request over TLS (`tls`) or plain HTTP signs its body's SHA-256.
    pub fn signs(self, tls: bool) -> bool {
        match self {
            PayloadSigning::Auto => !tls,
            PayloadSigning::Signed => true,
            PayloadSigning::Unsigned => false,
        }
    }
}

/// Lower-case hex SHA-256 of `bytes` (the `x-amz-content-sha256` value).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes` (digests in headers, ETags and journal records).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// An access key pair, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where the bucket name goes in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `https://host/bucket/key`.
    Path,
    /// `https://bucket.host/key`.
    VirtualHost,
}

/// Where one bucket's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketTarget {
    /// Endpoint host without the bucket: a DNS name, an IPv4 literal or an
    /// IPv6 literal without brackets.
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub bucket: String,
    /// The signing region (`us-east-1`, `auto`, ...).
    pub region: String,
    pub addressing: Addressing,
}

impl BucketTarget {
    /// The name to resolve and connect to (and to send as TLS SNI).
    pub fn connect_host(&self) -> String {
        match self.addressing {
            Addressing::Path => self.host.clone(),
            Addressing::VirtualHost => format!("{}.{}", self.bucket, self.host),
        }
    }

    /// The `Host` header value: the connect host, with `:port` unless the
    /// port is the scheme's default; IPv6 literals bracketed.
    pub fn host_header(&self) -> String {
        let host = self.connect_host();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The canonical (SigV4 URI-encoded) path of `key`: `/bucket/key` for
    /// path addressing, `/key` for virtual-host. `/` in keys is kept.
    pub fn object_path(&self, key: &str) -> String {
        let mut path = String::with_capacity(key.len() + self.bucket.len() + 2);
        path.push('/');
        if self.addressing == Addressing::Path {
            sigv4::uri_encode_into(&mut path, &self.bucket, false);
            path.push('/');
        }
        sigv4::uri_encode_into(&mut path, key, true);
        path
    }

    /// The path of the bucket itself (for listings): `/bucket` or `/`.
    pub fn bucket_path(&self) -> String {
        match self.addressing {
            Addressing::Path => {
                let mut path = String::from("/");
                sigv4::uri_encode_into(&mut path, &self.bucket, false);
                path
            }
            Addressing::VirtualHost => "/".to_string(),
        }
    }
}
