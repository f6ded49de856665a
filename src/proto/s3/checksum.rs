//! CRC-64/NVME, the checksum S3 calls CRC64NVME: computed with the CPU's carry-less
//! multiply (tens of GB/s, so a pass over a file costs little more than reading it), and
//! combinable, so the checksums of a file's parts give the whole file's without a second
//! pass. Azure's `x-ms-content-crc64` uses the same polynomial.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use crc_fast::CrcAlgorithm;

use crate::proto::http::ResponseHead;

/// The header that carries a body's (or a whole object's) CRC64NVME.
pub const CRC64NVME_HEADER: &str = "x-amz-checksum-crc64nvme";

/// The user metadata under which sidewire records a whole object's CRC64NVME, for the
/// stores that keep no full-object checksum of their own (as `x-amz-meta-crc64nvme`).
pub const CRC64NVME_META: &str = "crc64nvme";

/// CRC64NVME of `bytes`.
pub fn crc64nvme(bytes: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Nvme, bytes)
}

/// A CRC64NVME over bytes fed in pieces.
pub struct Crc64Nvme(crc_fast::Digest);

impl Default for Crc64Nvme {
    fn default() -> Crc64Nvme {
        Crc64Nvme(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme))
    }
}

impl Crc64Nvme {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn value(&self) -> u64 {
        self.0.finalize()
    }
}

/// The CRC64NVME of `a` followed by `b`, from the CRC of each and the length of `b`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Nvme, crc_a, crc_b, len_b)
}

/// The header form: base64 of the eight bytes, most significant first.
pub fn to_header(crc: u64) -> String {
    STANDARD.encode(crc.to_be_bytes())
}

/// Reads the header form back; `None` unless it is base64 of exactly eight bytes.
pub fn from_header(value: &str) -> Option<u64> {
    let bytes = STANDARD.decode(value.trim()).ok()?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Where a whole object's CRC64NVME came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrcSource {
    /// The store's own full-object checksum (`x-amz-checksum-crc64nvme`).
    Store,
    /// The user metadata sidewire records on upload (`x-amz-meta-crc64nvme`).
    Metadata,
}

impl CrcSource {
    pub fn describe(self) -> &'static str {
        match self {
            CrcSource::Store => "the store's full-object checksum",
            CrcSource::Metadata => "the CRC64NVME recorded with the object",
        }
    }
}

/// The whole object's CRC64NVME that an answer to a GET states, strongest first: the
/// store's full-object checksum when the answer holds the whole object (`whole`; for a
/// range a store states none, or the range's own), else sidewire's metadata. A value that
/// is not base64 of eight bytes, or a checksum of another type, states nothing.
/// `meta_header` is where the metadata comes (`x-amz-meta-crc64nvme` on S3,
/// `x-ms-meta-crc64nvme` on Azure, which states no checksum of its own for a whole blob).
pub fn object_crc(head: &ResponseHead, whole: bool, meta_header: &str) -> Option<(u64, CrcSource)> {
    let text = |name: &str| {
        head.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    };
    let full_object = text("x-amz-checksum-type").is_none_or(|t| t == "FULL_OBJECT");
    let store = text(CRC64NVME_HEADER)
        .filter(|_| whole && full_object)
        .and_then(from_header)
        .map(|crc| (crc, CrcSource::Store));
    let meta = || {
        text(meta_header)
            .and_then(from_header)
            .map(|crc| (crc, CrcSource::Metadata))
    };
    store.or_else(meta)
}
