use crate::proto::azure::*;
use crate::proto::s3::{XmlError, MAX_PAGE_ENTRIES};

#[test]
fn a_blob_listing_gives_names_sizes_etags_and_the_next_marker() {
    let body = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="c">
  <Prefix>run1/</Prefix><Marker/><MaxResults>2</MaxResults>
  <Blobs>
    <Blob><Name>run1/a &amp; b.bin</Name><Properties><Last-Modified>x</Last-Modified>
      <Etag>0x8DC</Etag><Content-Length>5</Content-Length><BlobType>BlockBlob</BlobType></Properties>
      <Metadata><crc64nvme>AAAAAAAAAAE=</crc64nvme></Metadata></Blob>
    <BlobPrefix><Name>run1/dir/</Name></BlobPrefix>
    <Blob><Name>run1/b</Name><Properties><Content-Length>0</Content-Length></Properties></Blob>
  </Blobs>
  <NextMarker>2!72!MDAw</NextMarker>
</EnumerationResults>"#;
    let page = parse_list_blobs(body).unwrap();
    assert_eq!(
        page.blobs,
        vec![
            BlobEntry {
                name: "run1/a & b.bin".into(),
                size: 5,
                etag: "0x8DC".into()
            },
            BlobEntry {
                name: "run1/b".into(),
                size: 0,
                etag: String::new()
            },
        ]
    );
    assert_eq!(page.next_marker.as_deref(), Some("2!72!MDAw"));
    let last = parse_list_blobs(b"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>")
        .unwrap();
    assert_eq!(last, BlobPage::default());
}

#[test]
fn a_block_list_separates_committed_and_uncommitted_blocks() {
    let body = b"<BlockList><CommittedBlocks><Block><Name>QQ==</Name><Size>8</Size></Block>\
        </CommittedBlocks><UncommittedBlocks><Block><Name>Qg==</Name><Size>3</Size></Block>\
        <Block><Name>Qw==</Name><Size>0</Size></Block></UncommittedBlocks></BlockList>";
    let list = parse_block_list(body, |_| true).unwrap();
    assert_eq!(
        list.committed,
        vec![BlockEntry {
            name: "QQ==".into(),
            size: 8
        }]
    );
    assert_eq!(list.uncommitted.len(), 2);
    // Only the blocks kept count, and toward the cap.
    let kept = parse_block_list(body, |name| name == "Qw==").unwrap();
    assert_eq!((kept.committed.len(), kept.uncommitted.len()), (0, 1));
    let mut many = String::from("<BlockList><UncommittedBlocks>");
    for i in 0..=MAX_PAGE_ENTRIES {
        let name = if i < 5 { "bWluZQ==" } else { "b3RoZXI=" };
        many.push_str(&format!("<Block><Name>{name}</Name><Size>1</Size></Block>"));
    }
    many.push_str("</UncommittedBlocks></BlockList>");
    assert!(parse_block_list(many.as_bytes(), |_| true).is_err());
    let mine = parse_block_list(many.as_bytes(), |name| name == "bWluZQ==").unwrap();
    assert_eq!(mine.uncommitted.len(), 5);
    assert_eq!(
        parse_block_list(b"<BlockList/>", |_| true).unwrap(),
        BlockList::default()
    );
}

#[test]
fn malformed_answers_and_error_documents_are_refused_with_their_reason() {
    let cases: &[&[u8]] = &[
        b"<EnumerationResults><Blobs><Blob><Name>x</Name></Blob></Blobs></EnumerationResults>",
        b"<EnumerationResults><Blobs><Blob><Properties><Content-Length>1</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        b"<EnumerationResults><Blobs><Blob><Name>x</Name><Properties><Content-Length>-1</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        b"<ListBucketResult/>",
        b"<EnumerationResults><Blobs>",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><EnumerationResults/>",
    ];
    for body in cases {
        assert!(
            parse_list_blobs(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let long = format!(
        "<EnumerationResults><Blobs><Blob><Name>{}</Name><Properties><Content-Length>1</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        "k".repeat(1025)
    );
    assert_eq!(
        parse_list_blobs(long.as_bytes()),
        Err(XmlError::KeyTooLong { len: 1025 })
    );
    let denied = b"<?xml version=\"1.0\"?><Error><Code>AuthorizationFailure</Code><Message>no</Message></Error>";
    assert!(
        matches!(parse_block_list(denied, |_| true), Err(XmlError::Service(e)) if e.code == "AuthorizationFailure")
    );
    assert!(parse_block_list(b"<BlockList><UncommittedBlocks><Block><Name>Qg==</Name></Block></UncommittedBlocks></BlockList>", |_| true).is_err());
}
