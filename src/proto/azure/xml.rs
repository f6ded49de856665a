//! The Blob service's XML answers the transfer engine reads: List Blobs and Get Block
//! List, on the S3 codec's bounded reader. Error documents have S3's shape
//! (`<Error><Code>…`) and come back as [`XmlError::Service`].

use crate::proto::s3::xml::{number, read_document, required};
use crate::proto::s3::{XmlError, MAX_KEY_LEN, MAX_PAGE_ENTRIES};

/// A blob as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    pub name: String,
    pub size: u64,
    /// As listed, quotes and all (may be empty).
    pub etag: String,
}

/// One List Blobs page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobPage {
    pub blobs: Vec<BlobEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next_marker: Option<String>,
}

/// A block as Get Block List gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// Base64, as it was put.
    pub name: String,
    pub size: u64,
}

/// Get Block List's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockList {
    pub committed: Vec<BlockEntry>,
    pub uncommitted: Vec<BlockEntry>,
}

/// A List Blobs answer (`<EnumerationResults>`).
pub fn parse_list_blobs(body: &[u8]) -> Result<BlobPage, XmlError> {
    const ROOT: &str = "EnumerationResults";
    let mut page = BlobPage::default();
    let (mut name, mut size, mut etag) = (None, None, None);
    read_document(body, ROOT, |path, element, text| {
        match (path, element) {
            ([ROOT, "Blobs", "Blob"], "Name") => {
                if text.len() > MAX_KEY_LEN {
                    return Err(XmlError::KeyTooLong { len: text.len() });
                }
                name = Some(text);
            }
            ([ROOT, "Blobs", "Blob", "Properties"], "Content-Length") => {
                size = Some(number("Content-Length", &text)?)
            }
            ([ROOT, "Blobs", "Blob", "Properties"], "Etag") => etag = Some(text),
            ([ROOT, "Blobs"], "Blob") => {
                if page.blobs.len() == MAX_PAGE_ENTRIES {
                    return Err(XmlError::TooManyEntries {
                        element: "Blob",
                        limit: MAX_PAGE_ENTRIES,
                    });
                }
                page.blobs.push(BlobEntry {
                    name: required(name.take(), "Name", "Blob")?,
                    size: required(size.take(), "Content-Length", "Properties")?,
                    etag: etag.take().unwrap_or_default(),
                });
            }
            ([ROOT], "NextMarker") => {
                page.next_marker = Some(text).filter(|m| !m.trim().is_empty())
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(page)
}

/// A Get Block List answer (`<BlockList>`), keeping the blocks whose names `keep` takes
/// (the entry cap counts only those: other writers' blocks cannot crowd out an upload's).
pub fn parse_block_list(body: &[u8], keep: impl Fn(&str) -> bool) -> Result<BlockList, XmlError> {
    const ROOT: &str = "BlockList";
    let mut list = BlockList::default();
    let (mut name, mut size) = (None, None);
    read_document(body, ROOT, |path, element, text| {
        match (path, element) {
            ([ROOT, _, "Block"], "Name") => name = Some(text),
            ([ROOT, _, "Block"], "Size") => size = Some(number("Size", &text)?),
            ([ROOT, group @ ("CommittedBlocks" | "UncommittedBlocks")], "Block") => {
                let blocks = if *group == "CommittedBlocks" {
                    &mut list.committed
                } else {
                    &mut list.uncommitted
                };
                let block = BlockEntry {
                    name: required(name.take(), "Name", "Block")?,
                    size: required(size.take(), "Size", "Block")?,
                };
                if !keep(&block.name) {
                    return Ok(());
                }
                if blocks.len() == MAX_PAGE_ENTRIES {
                    return Err(XmlError::TooManyEntries {
                        element: "Block",
                        limit: MAX_PAGE_ENTRIES,
                    });
                }
                blocks.push(block);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(list)
}
