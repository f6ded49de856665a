//! The XML answers the transfer engine reads, and the one body it writes.
//!
//! Each parser checks the root element, reads the fields it needs by path
//! (namespaces ignored, unknown elements skipped) and refuses missing or
//! malformed fields with an error that names them. An `<Error>` document
//! where an answer was expected (CompleteMultipartUpload can fail after a
//! 200) comes back as [`XmlError::Service`].

mod reader;

use std::fmt;

use reader::{Event, Reader};

/// Longest object key accepted, in bytes (S3's own limit).
pub const MAX_KEY_LEN: usize = 1024;
/// Most objects or parts accepted in one page (S3 sends at most 1000).
pub const MAX_PAGE_ENTRIES: usize = 10_000;

/// An error document: `<Error><Code>NoSuchKey</Code><Message>...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Error {
    pub code: String,
    pub message: String,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3 error {:?}: {:?}", self.code, self.message)
    }
}

/// Why an answer body was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed XML (or a construct the reader refuses).
    Malformed {
        offset: usize,
        what: &'static str,
    },
    /// Not well-formed XML, with the element names involved.
    MalformedAt {
        offset: usize,
        what: String,
    },
    TooDeep {
        limit: usize,
    },
    TextTooLong {
        element: String,
        limit: usize,
    },
    KeyTooLong {
        len: usize,
    },
    TooManyEntries {
        element: &'static str,
        limit: usize,
    },
    /// The document is some other answer.
    WrongRoot {
        expected: &'static str,
        found: String,
    },
    Missing {
        element: &'static str,
        within: &'static str,
    },
    BadNumber {
        element: &'static str,
        value: String,
    },
    BadBool {
        element: &'static str,
        value: String,
    },
    /// `IsTruncated` is true but the element to continue from is missing.
    TruncatedWithoutContinuation {
        element: &'static str,
    },
    /// A page continues from a marker that does not advance past the one it answered:
    /// following it would page forever.
    MarkerNotAdvancing {
        element: &'static str,
        marker: u32,
        asked: u32,
    },
    /// The server answered with an error document.
    Service(S3Error),
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::Malformed { offset, what } => {
                write!(f, "malformed XML at byte {offset}: {what}")
            }
            XmlError::MalformedAt { offset, what } => {
                write!(f, "malformed XML at byte {offset}: {what}")
            }
            XmlError::TooDeep { limit } => {
                write!(f, "XML nests deeper than {limit} elements")
            }
            XmlError::TextTooLong { element, limit } => {
                write!(f, "XML element <{element}> has over {limit} bytes of text")
            }
            XmlError::KeyTooLong { len } => write!(
                f,
                "object key of {len} bytes in listing (the limit is {MAX_KEY_LEN})"
            ),
            XmlError::TooManyEntries { element, limit } => {
                write!(f, "more than {limit} <{element}> entries in one page")
            }
            XmlError::WrongRoot { expected, found } => {
                write!(f, "expected an XML <{expected}> document, got <{found}>")
            }
            XmlError::Missing { element, within } => {
                write!(f, "<{element}> missing in <{within}>")
            }
            XmlError::BadNumber { element, value } => {
                write!(f, "<{element}> is not a valid number: {:?}", clip(value))
            }
            XmlError::BadBool { element, value } => {
                write!(f, "<{element}> is not true or false: {:?}", clip(value))
            }
            XmlError::TruncatedWithoutContinuation { element } => {
                write!(f, "IsTruncated is true but <{element}> is missing")
            }
            XmlError::MarkerNotAdvancing {
                element,
                marker,
                asked,
            } => write!(
                f,
                "<{element}> {marker} does not advance past {asked}, the marker asked: the listing would not end"
            ),
            XmlError::Service(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for XmlError {}

/// At most 64 characters of a peer's value, for messages.
fn clip(value: &str) -> &str {
    value
        .char_indices()
        .nth(64)
        .map_or(value, |(i, _)| &value[..i])
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
    /// As sent, quotes included.
    pub etag: String,
}

/// One page of ListObjectsV2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectEntry>,
    /// The continuation token, present only when the listing is truncated.
    pub next_token: Option<String>,
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    pub number: u32,
    /// As sent, quotes included.
    pub etag: String,
    pub size: u64,
}

/// One page of ListParts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartsPage {
    pub parts: Vec<PartEntry>,
    /// The part number to continue after, present only when truncated.
    pub next_marker: Option<u32>,
}

impl PartsPage {
    /// The marker to ask the next page with, for a page that answered a request made with
    /// `asked` (none for the first page): parts are listed in increasing order, so a
    /// marker that does not pass `asked` is an error, not a page to ask again.
    pub fn next_after(&self, asked: Option<u32>) -> Result<Option<u32>, XmlError> {
        match (self.next_marker, asked) {
            (Some(marker), Some(asked)) if marker <= asked => Err(XmlError::MarkerNotAdvancing {
                element: "NextPartNumberMarker",
                marker,
                asked,
            }),
            (next, _) => Ok(next),
        }
    }
}

/// Reads a whole document whose root must be `root`, calling `on_close`
/// with the path of the closed element's parent (root first), its name and
/// its text. An `<Error>` root (whatever `root` is) becomes
/// [`XmlError::Service`].
pub(crate) fn read_document(
    body: &[u8],
    root: &'static str,
    mut on_close: impl FnMut(&[&str], &str, String) -> Result<(), XmlError>,
) -> Result<(), XmlError> {
    let mut reader = Reader::new(body)?;
    let mut path: Vec<&str> = Vec::new();
    loop {
        match reader.next()? {
            Event::Open(name) => {
                if path.is_empty() && name == "Error" {
                    return Err(XmlError::Service(read_error(&mut reader)?));
                }
                if path.is_empty() && name != root {
                    return Err(XmlError::WrongRoot {
                        expected: root,
                        found: name.to_string(),
                    });
                }
                path.push(name);
            }
            Event::Close(name, text) => {
                path.pop();
                on_close(&path, name, text)?;
            }
            Event::End => return Ok(()),
        }
    }
}

/// The rest of an `<Error>` document whose root was just opened.
fn read_error(reader: &mut Reader<'_>) -> Result<S3Error, XmlError> {
    let (mut code, mut message) = (None, None);
    loop {
        match reader.next()? {
            Event::Open(_) => {}
            Event::Close(name, text) => {
                if reader.path().len() == 1 {
                    match name {
                        "Code" => code = Some(text),
                        "Message" => message = Some(text),
                        _ => {}
                    }
                }
            }
            Event::End => break,
        }
    }
    Ok(S3Error {
        code: code.ok_or(XmlError::Missing {
            element: "Code",
            within: "Error",
        })?,
        message: message.unwrap_or_default(),
    })
}

/// The error document in `body`, if it is one (with a `<Code>`).
pub fn parse_error(body: &[u8]) -> Option<S3Error> {
    // Any other root is WrongRoot; only an <Error> root gives Service.
    match read_document(body, "Error", |_, _, _| Ok(())) {
        Err(XmlError::Service(e)) => Some(e),
        _ => None,
    }
}

pub(crate) fn number<T: std::str::FromStr>(
    element: &'static str,
    text: &str,
) -> Result<T, XmlError> {
    let trimmed = text.trim();
    // FromStr for integers takes a leading '+'; S3 never sends one.
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = trimmed.parse() {
            return Ok(n);
        }
    }
    Err(XmlError::BadNumber {
        element,
        value: text.to_string(),
    })
}

fn boolean(element: &'static str, text: &str) -> Result<bool, XmlError> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(XmlError::BadBool {
            element,
            value: text.to_string(),
        }),
    }
}

pub(crate) fn required<T>(
    value: Option<T>,
    element: &'static str,
    within: &'static str,
) -> Result<T, XmlError> {
    value.ok_or(XmlError::Missing { element, within })
}

/// A ListObjectsV2 answer (`<ListBucketResult>`).
pub fn parse_list_objects_v2(body: &[u8]) -> Result<ListPage, XmlError> {
    const ROOT: &str = "ListBucketResult";
    let mut page = ListPage::default();
    let (mut key, mut size, mut etag) = (None, None, None);
    let (mut truncated, mut token) = (None, None);
    read_document(body, ROOT, |path, name, text| {
        match (path, name) {
            ([ROOT, "Contents"], "Key") => {
                if text.len() > MAX_KEY_LEN {
                    return Err(XmlError::KeyTooLong { len: text.len() });
                }
                key = Some(text);
            }
            ([ROOT, "Contents"], "Size") => size = Some(number("Size", &text)?),
            ([ROOT, "Contents"], "ETag") => etag = Some(text),
            ([ROOT], "Contents") => {
                if page.objects.len() == MAX_PAGE_ENTRIES {
                    return Err(XmlError::TooManyEntries {
                        element: "Contents",
                        limit: MAX_PAGE_ENTRIES,
                    });
                }
                page.objects.push(ObjectEntry {
                    key: required(key.take(), "Key", "Contents")?,
                    size: required(size.take(), "Size", "Contents")?,
                    // Some S3-compatible stores (s3s-fs) list no ETag; integrity then
                    // rests on the size and the GET answers' ETags.
                    etag: etag.take().unwrap_or_default(),
                });
            }
            ([ROOT], "IsTruncated") => truncated = Some(boolean("IsTruncated", &text)?),
            ([ROOT], "NextContinuationToken") => token = Some(text),
            _ => {}
        }
        Ok(())
    })?;
    if required(truncated, "IsTruncated", ROOT)? {
        page.next_token = Some(token.filter(|t| !t.is_empty()).ok_or(
            XmlError::TruncatedWithoutContinuation {
                element: "NextContinuationToken",
            },
        )?);
    }
    Ok(page)
}

/// A CreateMultipartUpload answer: the upload id.
pub fn parse_initiate(body: &[u8]) -> Result<String, XmlError> {
    const ROOT: &str = "InitiateMultipartUploadResult";
    let mut upload_id = None;
    read_document(body, ROOT, |path, name, text| {
        if let ([ROOT], "UploadId") = (path, name) {
            upload_id = Some(text);
        }
        Ok(())
    })?;
    required(upload_id.filter(|id| !id.is_empty()), "UploadId", ROOT)
}

/// A ListParts answer (`<ListPartsResult>`).
pub fn parse_list_parts(body: &[u8]) -> Result<PartsPage, XmlError> {
    const ROOT: &str = "ListPartsResult";
    let mut page = PartsPage::default();
    let (mut number_, mut size, mut etag) = (None, None, None);
    let (mut truncated, mut marker) = (None, None);
    read_document(body, ROOT, |path, name, text| {
        match (path, name) {
            ([ROOT, "Part"], "PartNumber") => number_ = Some(number("PartNumber", &text)?),
            ([ROOT, "Part"], "Size") => size = Some(number("Size", &text)?),
            ([ROOT, "Part"], "ETag") => etag = Some(text),
            ([ROOT], "Part") => {
                if page.parts.len() == MAX_PAGE_ENTRIES {
                    return Err(XmlError::TooManyEntries {
                        element: "Part",
                        limit: MAX_PAGE_ENTRIES,
                    });
                }
                page.parts.push(PartEntry {
                    number: required(number_.take(), "PartNumber", "Part")?,
                    // s3s-fs lists parts without an ETag; the caller then checks sizes.
                    etag: etag.take().unwrap_or_default(),
                    size: required(size.take(), "Size", "Part")?,
                });
            }
            ([ROOT], "IsTruncated") => truncated = Some(boolean("IsTruncated", &text)?),
            ([ROOT], "NextPartNumberMarker") if !text.trim().is_empty() => {
                marker = Some(number("NextPartNumberMarker", &text)?);
            }
            _ => {}
        }
        Ok(())
    })?;
    // s3s-fs leaves IsTruncated out (it never pages parts): absent means complete.
    if truncated.unwrap_or(false) {
        page.next_marker = Some(marker.ok_or(XmlError::TruncatedWithoutContinuation {
            element: "NextPartNumberMarker",
        })?);
    }
    Ok(page)
}

/// A CompleteMultipartUpload answer: the object's ETag. The answer comes
/// with status 200 even when the upload failed, so an `<Error>` document
/// here is [`XmlError::Service`].
pub fn parse_complete(body: &[u8]) -> Result<String, XmlError> {
    const ROOT: &str = "CompleteMultipartUploadResult";
    let mut etag = None;
    read_document(body, ROOT, |path, name, text| {
        if let ([ROOT], "ETag") = (path, name) {
            etag = Some(text);
        }
        Ok(())
    })?;
    required(etag.filter(|e| !e.is_empty()), "ETag", ROOT)
}

/// Appends `s` with `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
}
