//! Azure Blob service codec, sans-IO: connection strings, Shared Key signing, the
//! requests a block-blob transfer makes (Put Block, Put Block List, Get Block List, Get
//! Blob with ranges, List Blobs) and the XML answers it reads. Nothing here opens
//! sockets or reads clocks; the caller passes the time in.

mod conn_string;
mod request;
#[cfg(test)]
mod tests;
mod xml;

pub use conn_string::{
    parse_conn_string, AzureAccount, AzureAuth, BlobEndpoint, ConnStringError, MAX_LEN,
};
pub use request::{
    block_id, block_list_body, block_number, create_container, get_blob, get_blob_properties,
    get_uncommitted_blocks, host_header, list_blobs, put_blob, put_block, put_block_list,
    upload_tag, Request, API_VERSION, UPLOAD_TAG_LEN,
};
pub use xml::{parse_block_list, parse_list_blobs, BlobEntry, BlobPage, BlockEntry, BlockList};
