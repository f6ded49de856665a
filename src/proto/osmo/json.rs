//! JSON string escaping and key matching shared by the service and unix-socket codecs.
//!
//! Escaping is byte-identical to `serde_json`'s: `"` and `\` escaped, `\b \f \n \r \t`
//! short, other bytes below 0x20 as `\u00xx`, everything else (DEL, non-ASCII) as is.
//! Working on bytes is sound for UTF-8 input because every byte that needs escaping is
//! ASCII and never part of a multi-byte sequence.

use std::borrow::Cow;

/// How serde_json writes each byte: 0 as is, `u` as `\u00xx`, else `\` + that letter.
static ESCAPE: [u8; 256] = escape_table();

const fn escape_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the JSON string content for `s` (no surrounding quotes).
pub(crate) fn escape(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[usize::from(b)];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Appends `escape(escape(s))` in one pass: the content of a JSON string that holds a
/// JSON text in which `s` was a string. Escaping maps each byte independently, so
/// escaping twice is a per-byte map too.
pub(crate) fn escape_twice(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[usize::from(b)];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match e {
            // `\"` escaped again is `\\\"`; `\\` is `\\\\`.
            b'"' => out.extend_from_slice(b"\\\\\\\""),
            b'\\' => out.extend_from_slice(b"\\\\\\\\"),
            b'u' => {
                out.extend_from_slice(b"\\\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => {
                out.extend_from_slice(b"\\\\");
                out.push(e);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Like [`escape`], but `bytes` may be invalid UTF-8: each byte that does not start a
/// valid sequence becomes one U+FFFD, as [`replace_invalid_utf8`] does.
pub(crate) fn escape_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    for_each_valid(bytes, |chunk| match chunk {
        Some(s) => escape(out, s.as_bytes()),
        None => out.extend_from_slice(REPLACEMENT.as_bytes()),
    });
}

const REPLACEMENT: &str = "\u{FFFD}";

/// Replaces every byte of `bytes` that does not start a valid UTF-8 sequence with one
/// U+FFFD. This is per byte (`E2 82 41` gives two replacements and `A`), unlike
/// `String::from_utf8_lossy`, so text matches what the service's other clients send
/// for the same output.
pub fn replace_invalid_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut s = String::with_capacity(bytes.len() + 8);
            for_each_valid(bytes, |chunk| s.push_str(chunk.unwrap_or(REPLACEMENT)));
            Cow::Owned(s)
        }
    }
}

/// Calls `f` with each maximal valid run of `bytes` and with `None` for each bad byte.
fn for_each_valid<'a>(mut bytes: &'a [u8], mut f: impl FnMut(Option<&'a str>)) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                f(Some(s));
                return;
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                // `good` is valid by construction; the fallback is never taken.
                f(Some(std::str::from_utf8(good).unwrap_or_default()));
                f(None);
                bytes = bad.get(1..).unwrap_or_default();
            }
        }
    }
}

/// Whether a JSON object key names the field `name` (lower-case ASCII), matching keys
/// the way the peers' decoder does: case-insensitively, where a key character folds
/// by its simple upper-case mapping (so `ſ` matches `s` and `ı` matches `i`, while
/// other non-ASCII characters match no ASCII name).
pub(crate) fn key_is(key: &str, name: &str) -> bool {
    let mut want = name.bytes();
    for c in key.chars() {
        let folded = match c {
            'ı' => b'i',
            'ſ' => b's',
            c if c.is_ascii() => (c as u8).to_ascii_lowercase(),
            _ => return false,
        };
        if want.next() != Some(folded) {
            return false;
        }
    }
    want.next().is_none()
}
