//! Incremental UTF-8 validation of a text message that arrives in pieces.

/// How much of a growing text buffer is known to be valid UTF-8.
///
/// A message may be split anywhere, even inside a character, so the up to three bytes of
/// a trailing incomplete character stay unchecked until more bytes arrive. Anything that
/// can never become valid fails at once, which lets the decoder reject a bad text message
/// on the fragment that carries the bad bytes instead of after buffering the whole message.
#[derive(Debug, Default)]
pub(super) struct Utf8Cursor {
    /// Length of the prefix already known to be complete, valid UTF-8.
    valid: usize,
}

impl Utf8Cursor {
    /// Checks the bytes of `text` after the known-valid prefix (`text` only ever grows).
    /// Returns false when `text` holds a sequence that no continuation can make valid.
    pub(super) fn advance(&mut self, text: &[u8]) -> bool {
        let tail = text.get(self.valid..).unwrap_or_default();
        match std::str::from_utf8(tail) {
            Ok(_) => {
                self.valid = text.len();
                true
            }
            // `error_len() == None` means the input merely ends inside a character.
            Err(e) if e.error_len().is_none() => {
                self.valid += e.valid_up_to();
                true
            }
            Err(_) => false,
        }
    }

    /// True when all of `text` is valid: no incomplete character is left at its end.
    pub(super) fn is_complete(&self, text: &[u8]) -> bool {
        self.valid == text.len()
    }
}
