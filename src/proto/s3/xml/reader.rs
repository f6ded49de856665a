//! A small pull reader for the XML subset S3 answers use: elements
//! (namespace prefixes dropped), attributes (skipped), text with the five
//! predefined entities and character references, CDATA, comments and
//! processing instructions (skipped). DOCTYPE is refused, so no entity can
//! be defined and nothing expands beyond the bytes received.
//!
//! Text is only kept for leaf elements and is capped, and nesting depth is
//! capped, so a hostile body cannot make the reader hold more than a few
//! KiB beyond the body itself.

use super::XmlError;

/// Most bytes of decoded text in one element.
pub(crate) const MAX_TEXT: usize = 4096;
/// Deepest element nesting (S3 answers use 3).
const MAX_DEPTH: usize = 32;
/// Longest element or attribute name.
const MAX_NAME: usize = 256;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// An element opened; its local name (after any `prefix:`).
    Open(&'a str),
    /// An element closed, with its text when it had no child elements
    /// (empty otherwise).
    Close(&'a str, String),
    /// The root element closed and only whitespace, comments and
    /// processing instructions followed.
    End,
}

pub(crate) struct Reader<'a> {
    src: &'a str,
    pos: usize,
    /// Open elements, full names as written (so prefixes must match too).
    stack: Vec<&'a str>,
    text: String,
    /// No child element has closed since the innermost element opened.
    leaf: bool,
    /// The last Open was `<name/>`; its Close is owed.
    self_closed: bool,
    root_seen: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Result<Reader<'a>, XmlError> {
        let src = std::str::from_utf8(body).map_err(|e| XmlError::Malformed {
            offset: e.valid_up_to(),
            what: "bytes that are not UTF-8",
        })?;
        Ok(Reader {
            src,
            pos: 0,
            stack: Vec::new(),
            text: String::new(),
            leaf: false,
            self_closed: false,
            root_seen: false,
        })
    }

    /// Local names of the open elements, outermost first.
    pub(crate) fn path(&self) -> impl ExactSizeIterator<Item = &'a str> + '_ {
        self.stack.iter().map(|name| local(name))
    }

    pub(crate) fn next(&mut self) -> Result<Event<'a>, XmlError> {
        if self.self_closed {
            self.self_closed = false;
            return Ok(self.close());
        }
        loop {
            let rest = &self.src[self.pos..];
            if rest.is_empty() {
                return match self.stack.last() {
                    Some(open) => Err(self.malformed_owned(format!("end of body inside <{open}>"))),
                    None if self.root_seen => Ok(Event::End),
                    None => Err(self.malformed("no root element")),
                };
            }
            let Some(tag) = rest.strip_prefix('<') else {
                let end = rest.find('<').unwrap_or(rest.len());
                self.take_text(&rest[..end])?;
                self.pos += end;
                continue;
            };
            if tag.starts_with('?') {
                self.skip_past("?>", "unterminated processing instruction")?;
            } else if tag.starts_with("!--") {
                self.skip_past("-->", "unterminated comment")?;
            } else if let Some(cdata) = tag.strip_prefix("![CDATA[") {
                let Some(end) = cdata.find("]]>") else {
                    return Err(self.malformed("unterminated CDATA section"));
                };
                if self.stack.is_empty() {
                    return Err(self.malformed("CDATA outside the root element"));
                }
                self.push_text(&cdata[..end])?;
                self.pos += "<![CDATA[".len() + end + "]]>".len();
            } else if tag.starts_with('!') {
                return Err(self.malformed("DOCTYPE or markup declaration (not accepted)"));
            } else if let Some(end_tag) = tag.strip_prefix('/') {
                return self.end_tag(end_tag);
            } else {
                return self.start_tag(tag);
            }
        }
    }

    fn start_tag(&mut self, tag: &'a str) -> Result<Event<'a>, XmlError> {
        if self.stack.is_empty() && self.root_seen {
            return Err(self.malformed("a second root element"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(XmlError::TooDeep { limit: MAX_DEPTH });
        }
        let name = self.name(tag)?;
        let mut rest = &tag[name.len()..];
        let self_closed = loop {
            let trimmed = rest.trim_start_matches(is_space);
            let spaced = trimmed.len() < rest.len();
            rest = trimmed;
            if rest.starts_with("/>") {
                rest = &rest[2..];
                break true;
            }
            if rest.starts_with('>') {
                rest = &rest[1..];
                break false;
            }
            if !spaced {
                return Err(self.malformed_owned(format!("bad character in tag <{name}>")));
            }
            rest = self.skip_attribute(rest, name)?;
        };
        self.pos = self.src.len() - rest.len();
        self.stack.push(name);
        self.root_seen = true;
        self.text.clear();
        self.leaf = true;
        self.self_closed = self_closed;
        Ok(Event::Open(local(name)))
    }

    /// Skips `name="value"` (or single quotes) and returns what follows.
    fn skip_attribute(&self, rest: &'a str, element: &str) -> Result<&'a str, XmlError> {
        let bad = || self.malformed_owned(format!("bad attribute in <{element}>"));
        let attr = self.name(rest)?;
        let rest = rest[attr.len()..].trim_start_matches(is_space);
        let rest = rest.strip_prefix('=').ok_or_else(bad)?;
        let rest = rest.trim_start_matches(is_space);
        let quote = rest.chars().next().filter(|&c| c == '"' || c == '\'');
        let quote = quote.ok_or_else(bad)?;
        let value_and_rest = &rest[1..];
        let end = value_and_rest.find(quote).ok_or_else(bad)?;
        if value_and_rest[..end].contains('<') {
            return Err(bad());
        }
        Ok(&value_and_rest[end + 1..])
    }

    fn end_tag(&mut self, tag: &'a str) -> Result<Event<'a>, XmlError> {
        let name = self.name(tag)?;
        let rest = tag[name.len()..].trim_start_matches(is_space);
        let Some(rest) = rest.strip_prefix('>') else {
            return Err(self.malformed_owned(format!("bad end tag </{name}")));
        };
        match self.stack.last() {
            Some(&open) if open == name => {}
            Some(open) => {
                return Err(self.malformed_owned(format!("</{name}> closes <{open}>")));
            }
            None => return Err(self.malformed_owned(format!("</{name}> with no open element"))),
        }
        self.pos = self.src.len() - rest.len();
        Ok(self.close())
    }

    fn close(&mut self) -> Event<'a> {
        let name = self.stack.pop().unwrap_or_default();
        let text = if self.leaf {
            std::mem::take(&mut self.text)
        } else {
            String::new()
        };
        self.text.clear();
        self.leaf = false;
        Event::Close(local(name), text)
    }

    /// The XML name at the start of `s`.
    fn name(&self, s: &'a str) -> Result<&'a str, XmlError> {
        let len = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-')))
            .unwrap_or(s.len());
        if len == 0 {
            return Err(self.malformed("missing or bad element name"));
        }
        if len > MAX_NAME {
            return Err(self.malformed("element name too long"));
        }
        Ok(&s[..len])
    }

    /// Character data between tags: kept (decoded) inside a leaf element,
    /// checked and dropped elsewhere.
    fn take_text(&mut self, raw: &str) -> Result<(), XmlError> {
        if self.stack.is_empty() {
            if raw.trim_matches(is_space).is_empty() {
                return Ok(());
            }
            return Err(self.malformed("text outside the root element"));
        }
        if !self.leaf {
            return if raw.trim_matches(is_space).is_empty() {
                Ok(())
            } else {
                Err(self.malformed("text mixed with elements"))
            };
        }
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            self.push_text(&rest[..amp])?;
            let after = &rest[amp + 1..];
            // The longest reference is `&#x10FFFF;`; look no further for the `;`.
            let Some(semi) = after.bytes().take(12).position(|b| b == b';') else {
                return Err(self.malformed("unterminated entity reference"));
            };
            let c = decode_entity(&after[..semi]).ok_or_else(|| {
                self.malformed_owned(format!("unknown entity &{};", &after[..semi]))
            })?;
            self.push_text(c.encode_utf8(&mut [0; 4]))?;
            rest = &after[semi + 1..];
        }
        self.push_text(rest)
    }

    fn push_text(&mut self, s: &str) -> Result<(), XmlError> {
        if self.text.len() + s.len() > MAX_TEXT {
            let element = self.stack.last().map_or("", |n| local(n)).to_string();
            return Err(XmlError::TextTooLong {
                element,
                limit: MAX_TEXT,
            });
        }
        self.text.push_str(s);
        Ok(())
    }

    fn skip_past(&mut self, end: &str, what: &'static str) -> Result<(), XmlError> {
        match self.src[self.pos..].find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(self.malformed(what)),
        }
    }

    fn malformed(&self, what: &'static str) -> XmlError {
        XmlError::Malformed {
            offset: self.pos,
            what,
        }
    }

    fn malformed_owned(&self, what: String) -> XmlError {
        XmlError::MalformedAt {
            offset: self.pos,
            what,
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The name without its namespace prefix.
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// `amp`, `lt`, `gt`, `quot`, `apos`, `#123`, `#x1F`; NUL and surrogates
/// are refused.
fn decode_entity(entity: &str) -> Option<char> {
    let code = match entity {
        "amp" => return Some('&'),
        "lt" => return Some('<'),
        "gt" => return Some('>'),
        "quot" => return Some('"'),
        "apos" => return Some('\''),
        _ => {
            let number = entity.strip_prefix('#')?;
            match number.strip_prefix('x') {
                Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    u32::from_str_radix(hex, 16).ok()?
                }
                Some(_) => return None,
                None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                    number.parse().ok()?
                }
                None => return None,
            }
        }
    };
    char::from_u32(code).filter(|&c| c != '\0')
}
