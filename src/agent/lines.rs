//! Cuts a command's output stream into log lines the way the service expects: split on
//! `\n`, drop one trailing `\r`, and cut lines longer than [`MAX_PIECE`] into pieces of
//! that size (so a 1 GiB line without a newline never needs 1 GiB of memory).

/// The longest piece of a line sent as one message (PROTOCOL.md §5).
pub const MAX_PIECE: usize = 32 * 1024;

#[derive(Default)]
pub struct LineCutter {
    partial: Vec<u8>,
}

impl LineCutter {
    /// Feeds bytes; `emit` gets each complete line or piece, without its newline.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_PIECE - self.partial.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.partial.is_empty() {
                        emit(trim_cr(&window[..i]));
                    } else {
                        self.partial.extend_from_slice(&window[..i]);
                        emit(trim_cr(&self.partial));
                        self.partial.clear();
                    }
                    data = &data[i + 1..];
                }
                None if window.len() == room => {
                    // A full piece with no newline: send it as is.
                    if self.partial.is_empty() {
                        emit(window);
                    } else {
                        self.partial.extend_from_slice(window);
                        emit(&self.partial);
                        self.partial.clear();
                    }
                    data = &data[room..];
                }
                None => {
                    self.partial.extend_from_slice(window);
                    data = &data[window.len()..];
                }
            }
        }
    }

    /// The stream ended: a last line without a newline is still a line.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(trim_cr(&self.partial));
            self.partial.clear();
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut c = LineCutter::default();
        for chunk in chunks {
            c.push(chunk, |l| out.push(l.to_vec()));
        }
        c.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines_across_chunks_and_drops_cr() {
        assert_eq!(
            cut(&[b"a\r\nb", b"c\n", b"", b"d"]),
            vec![b"a".to_vec(), b"bc".to_vec(), b"d".to_vec()]
        );
        assert_eq!(cut(&[b"\n\n"]), vec![Vec::<u8>::new(), Vec::new()]);
    }

    #[test]
    fn long_lines_become_pieces_whatever_the_chunking() {
        let line = vec![b'x'; MAX_PIECE * 2 + 5];
        let mut input = line.clone();
        input.push(b'\n');
        let whole = cut(&[&input]);
        let split: Vec<&[u8]> = input.chunks(1000).collect();
        assert_eq!(whole, cut(&split));
        assert_eq!(
            whole.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_PIECE, MAX_PIECE, 5]
        );
    }
}
