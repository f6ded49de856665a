//! The `Content-Range` header of a 206 answer (RFC 9110 §14.4): `bytes FIRST-LAST/SIZE`,
//! or `bytes FIRST-LAST/*` when the size is unknown. A ranged download writes an answer's
//! body at the offset it asked for, so an answer for any other range is refused.

/// A byte range as a 206 answer states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    /// The whole representation's size, when the server states it.
    pub size: Option<u64>,
}

impl ContentRange {
    /// Whether this is exactly `len` bytes from `offset` of an object of `size` bytes.
    pub fn is(&self, offset: u64, len: u64, size: u64) -> bool {
        len > 0
            && self.first == offset
            && offset.checked_add(len - 1) == Some(self.last)
            && self.size.is_none_or(|s| s == size)
    }
}

/// Parses a `Content-Range` value; `None` for anything that is not one satisfied byte
/// range (an unsatisfied `bytes */SIZE`, another unit, first above last, numbers that
/// overflow, a last byte at or past the stated size).
pub fn parse_content_range(value: &[u8]) -> Option<ContentRange> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (unit, spec) = text.split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, size) = spec.trim_start().split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first = number(first)?;
    let last = number(last)?;
    let size = match size {
        "*" => None,
        s => Some(number(s)?),
    };
    if first > last || size.is_some_and(|s| last >= s) {
        return None;
    }
    Some(ContentRange { first, last, size })
}

/// A run of ASCII digits as a `u64` (no sign, no spaces, no overflow).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_byte_ranges_parse_and_others_do_not() {
        let r = parse_content_range(b"bytes 0-9/10").unwrap();
        assert_eq!((r.first, r.last, r.size), (0, 9, Some(10)));
        assert!(r.is(0, 10, 10));
        assert!(!r.is(0, 10, 11) && !r.is(1, 9, 10) && !r.is(0, 9, 10) && !r.is(0, 0, 10));
        let open = parse_content_range(b"bytes 32-63/*").unwrap();
        assert!(open.is(32, 32, 1000));
        assert_eq!(
            parse_content_range(b"BYTES  5-5/6").map(|r| r.first),
            Some(5)
        );
        let max = format!("bytes 0-{}/*", u64::MAX);
        assert!(parse_content_range(max.as_bytes()).is_some_and(|r| !r.is(0, u64::MAX, 1)));
        for bad in [
            &b"bytes */10"[..],
            b"items 0-9/10",
            b"bytes 9-0/10",
            b"bytes 0-10/10",
            b"bytes -1-9/10",
            b"bytes +0-9/10",
            b"bytes 0-9",
            b"bytes 0-18446744073709551616/*",
            b"bytes 0 - 9/10",
            b"",
            b"\xff",
        ] {
            assert_eq!(
                parse_content_range(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
