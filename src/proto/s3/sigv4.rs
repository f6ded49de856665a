//! AWS Signature Version 4 for S3 (`AWS4-HMAC-SHA256`, service `s3`),
//! header-based, single-chunk payload.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{hex, sha256_hex, Credentials};
use crate::proto::timefmt::rfc3339_nanos;

type HmacSha256 = Hmac<Sha256>;

/// Appends `s` percent-encoded the SigV4 way: unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) as they are, every other byte as `%XX` with
/// upper-case hex; `/` is kept when `keep_slash` (object keys in paths).
pub(crate) fn uri_encode_into(out: &mut String, s: &str, keep_slash: bool) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if b == b'/' && keep_slash {
            out.push('/');
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
    }
}

/// The canonical query string: names and values encoded (`/` too), pairs
/// sorted by encoded name then encoded value, `name=` for empty values.
pub(super) fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| {
            let mut n = String::new();
            uri_encode_into(&mut n, name, false);
            let mut v = String::new();
            uri_encode_into(&mut v, value, false);
            (n, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` for `now`, whole seconds, UTC.
pub(super) fn amz_date(now: SystemTime) -> String {
    let whole = now.duration_since(UNIX_EPOCH).map_or(UNIX_EPOCH, |d| {
        UNIX_EPOCH + Duration::from_secs(d.as_secs())
    });
    let mut iso = Vec::with_capacity(20);
    rfc3339_nanos(&mut iso, whole);
    iso.iter()
        .filter(|&&b| b != b'-' && b != b':')
        .map(|&b| char::from(b))
        .collect()
}

/// What goes into one signature. Header names must be lower case and
/// values trimmed; the caller passes them sorted by name (see
/// [`canonical_headers`]).
pub(super) struct SigningInput<'a> {
    pub method: &'a str,
    /// Already URI-encoded.
    pub path: &'a str,
    pub canonical_query: &'a str,
    pub headers: &'a [(String, String)],
    pub payload_sha256_hex: &'a str,
    pub amz_date: &'a str,
    pub region: &'a str,
}

/// Lower-cases names, trims values and folds inner runs of spaces, sorts by
/// name and joins repeated names with `,` as SigV4 asks.
pub(super) fn canonical_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len());
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            let folded = v.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            (n.to_ascii_lowercase(), folded)
        })
        .collect();
    // Stable: repeated names keep their order.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in sorted {
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

/// The `Authorization` header value.
pub(super) fn authorization(input: &SigningInput<'_>, credentials: &Credentials) -> String {
    let signed_headers = input
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = String::new();
    for part in [
        input.method,
        "\n",
        input.path,
        "\n",
        input.canonical_query,
        "\n",
    ] {
        canonical.push_str(part);
    }
    for (name, value) in input.headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(input.payload_sha256_hex);

    let date = input.amz_date.get(..8).unwrap_or(input.amz_date);
    let scope = format!("{date}/{}/s3/aws4_request", input.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [input.region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
        credentials.access_key_id
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}
