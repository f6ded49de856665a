//! The XML answers: real-shaped documents (AWS documentation samples),
//! escapes, error documents, truncation and the limits.

use super::super::*;

const LIST_V2_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Name>bucket</Name>
    <Prefix/>
    <KeyCount>2</KeyCount>
    <MaxKeys>1000</MaxKeys>
    <IsTruncated>false</IsTruncated>
    <Contents>
        <Key>my-image.jpg</Key>
        <LastModified>2009-10-12T17:50:30.000Z</LastModified>
        <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
        <Size>434234</Size>
        <StorageClass>STANDARD</StorageClass>
    </Contents>
    <Contents>
        <Key>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#xE9;&#233; x+y%20z</Key>
        <ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>
        <Size>18446744073709551615</Size>
        <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>
    </Contents>
</ListBucketResult>"#;

#[test]
fn list_v2_aws_sample_with_escapes() {
    let page = parse_list_objects_v2(LIST_V2_SAMPLE.as_bytes()).unwrap();
    assert_eq!(page.next_token, None);
    assert_eq!(
        page.objects,
        vec![
            ObjectEntry {
                key: "my-image.jpg".into(),
                size: 434_234,
                etag: "\"fba9dede5f27731c9771645a39863328\"".into(),
            },
            ObjectEntry {
                key: "a & b <c> \"d\" 'e' éé x+y%20z".into(),
                size: u64::MAX,
                etag: "\"3858f62230ac3c915f300c664312c11f-9\"".into(),
            },
        ]
    );
}

#[test]
fn list_v2_truncated_gives_the_token() {
    let body = br#"<ListBucketResult><IsTruncated>true</IsTruncated>
        <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
        <Contents><Key>k</Key><Size>0</Size><ETag>"e"</ETag></Contents></ListBucketResult>"#;
    let page = parse_list_objects_v2(body).unwrap();
    assert_eq!(
        page.next_token.as_deref(),
        Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    );
    assert_eq!(page.objects.len(), 1);
}

#[test]
fn list_v2_token_is_ignored_when_not_truncated() {
    let body = b"<ListBucketResult><IsTruncated>false</IsTruncated>\
        <NextContinuationToken>x</NextContinuationToken></ListBucketResult>";
    assert_eq!(parse_list_objects_v2(body).unwrap(), ListPage::default());
}

#[test]
fn list_v2_truncated_without_token_is_an_error() {
    for body in [
        &b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"[..],
        b"<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken/></ListBucketResult>",
    ] {
        let err = parse_list_objects_v2(body).unwrap_err();
        assert_eq!(
            err,
            XmlError::TruncatedWithoutContinuation { element: "NextContinuationToken" }
        );
        assert!(err.to_string().contains("NextContinuationToken"));
    }
}

#[test]
fn list_v2_missing_and_bad_fields_are_named() {
    let cases: [(&[u8], XmlError); 6] = [
        (b"<ListBucketResult></ListBucketResult>", XmlError::Missing { element: "IsTruncated", within: "ListBucketResult" }),
        (
            b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><ETag>e</ETag></Contents></ListBucketResult>",
            XmlError::Missing { element: "Size", within: "Contents" },
        ),
        (
            b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Size>1</Size><ETag>e</ETag></Contents></ListBucketResult>",
            XmlError::Missing { element: "Key", within: "Contents" },
        ),
        (
            b"<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551616</Size></Contents></ListBucketResult>",
            XmlError::BadNumber { element: "Size", value: "18446744073709551616".into() },
        ),
        (
            b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
            XmlError::BadNumber { element: "Size", value: "-1".into() },
        ),
        (
            b"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
            XmlError::BadBool { element: "IsTruncated", value: "yes".into() },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(parse_list_objects_v2(body), Err(want));
    }
    let err = parse_list_objects_v2(b"<ListPartsResult/>").unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an XML <ListBucketResult> document, got <ListPartsResult>"
    );
}

#[test]
fn list_v2_key_length_limit() {
    let doc = |key: &str| {
        format!(
            "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>{key}</Key>\
             <Size>1</Size><ETag>e</ETag></Contents></ListBucketResult>"
        )
    };
    let ok = "k".repeat(MAX_KEY_LEN);
    assert_eq!(
        parse_list_objects_v2(doc(&ok).as_bytes()).unwrap().objects[0].key,
        ok
    );
    // Counted after decoding: 1024 "&amp;" is 1024 bytes.
    let escaped = "&amp;".repeat(MAX_KEY_LEN);
    assert_eq!(
        parse_list_objects_v2(doc(&escaped).as_bytes())
            .unwrap()
            .objects[0]
            .key
            .len(),
        MAX_KEY_LEN
    );
    let long = "k".repeat(MAX_KEY_LEN + 1);
    assert_eq!(
        parse_list_objects_v2(doc(&long).as_bytes()),
        Err(XmlError::KeyTooLong {
            len: MAX_KEY_LEN + 1
        })
    );
    let huge = "k".repeat(100_000);
    assert!(matches!(
        parse_list_objects_v2(doc(&huge).as_bytes()),
        Err(XmlError::TextTooLong { ref element, .. }) if element == "Key"
    ));
}

#[test]
fn list_v2_entry_count_limit() {
    let entry = "<Contents><Key>k</Key><Size>1</Size><ETag>e</ETag></Contents>";
    let doc = |n: usize| {
        format!(
            "<ListBucketResult><IsTruncated>false</IsTruncated>{}</ListBucketResult>",
            entry.repeat(n)
        )
    };
    assert_eq!(
        parse_list_objects_v2(doc(MAX_PAGE_ENTRIES).as_bytes())
            .unwrap()
            .objects
            .len(),
        MAX_PAGE_ENTRIES
    );
    assert_eq!(
        parse_list_objects_v2(doc(MAX_PAGE_ENTRIES + 1).as_bytes()),
        Err(XmlError::TooManyEntries {
            element: "Contents",
            limit: MAX_PAGE_ENTRIES
        })
    );
}

#[test]
fn namespace_prefixes_cdata_and_comments() {
    let body = br#"<?xml version="1.0"?>
<!-- a comment -->
<s3:ListBucketResult xmlns:s3='http://s3.amazonaws.com/doc/2006-03-01/'>
  <s3:IsTruncated>false</s3:IsTruncated>
  <s3:Contents>
    <s3:Key><![CDATA[a <raw> & key]]>&amp;tail</s3:Key><!-- inside -->
    <s3:Size> 7 </s3:Size>
    <s3:ETag attr="x>y">"e"</s3:ETag>
  </s3:Contents>
</s3:ListBucketResult>
"#;
    let page = parse_list_objects_v2(body).unwrap();
    assert_eq!(page.objects[0].key, "a <raw> & key&tail");
    assert_eq!(page.objects[0].size, 7);
    assert_eq!(page.objects[0].etag, "\"e\"");
}

#[test]
fn keys_keep_their_spaces() {
    let body = b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents>\
        <Key> lead and trail </Key><Size>1</Size><ETag>e</ETag></Contents></ListBucketResult>";
    assert_eq!(
        parse_list_objects_v2(body).unwrap().objects[0].key,
        " lead and trail "
    );
}

#[test]
fn malformed_documents_are_refused() {
    let bodies: [&[u8]; 16] = [
        b"",
        b"   ",
        b"<ListBucketResult>",
        b"<ListBucketResult></ListBucket>",
        b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult><ListBucketResult/>",
        b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>junk",
        b"<!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult/>",
        b"<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>&#x110000;</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>a & b</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>\xff</Key></Contents></ListBucketResult>",
        b"<ListBucketResult a=b></ListBucketResult>",
        b"<ListBucketResult><![CDATA[x</ListBucketResult>",
        b"<ListBucketResult><!-- x </ListBucketResult>",
    ];
    for body in bodies {
        let result = parse_list_objects_v2(body);
        assert!(
            matches!(
                result,
                Err(XmlError::Malformed { .. } | XmlError::MalformedAt { .. })
            ),
            "{:?} gave {result:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn nesting_depth_is_capped() {
    let body = format!("<ListBucketResult>{}", "<a>".repeat(10_000));
    assert_eq!(
        parse_list_objects_v2(body.as_bytes()),
        Err(XmlError::TooDeep { limit: 32 })
    );
}

#[test]
fn initiate_aws_sample() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
</InitiateMultipartUploadResult>"#;
    assert_eq!(
        parse_initiate(body).unwrap(),
        "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
    );
    let missing =
        b"<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>";
    assert_eq!(
        parse_initiate(missing).unwrap_err().to_string(),
        "<UploadId> missing in <InitiateMultipartUploadResult>"
    );
}

const LIST_PARTS_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>XXBsb2FkIElEIGZvciBlbHZpbmcncyVcdS1tb3ZpZS5tMnRzEEEwbG9hZA</UploadId>
  <PartNumberMarker>1</PartNumberMarker>
  <NextPartNumberMarker>3</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <Part>
    <PartNumber>2</PartNumber>
    <LastModified>2010-11-10T20:48:34.000Z</LastModified>
    <ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag>
    <Size>10485760</Size>
  </Part>
  <Part>
    <PartNumber>3</PartNumber>
    <LastModified>2010-11-10T20:48:33.000Z</LastModified>
    <ETag>"aaaa18db4cc2f85cedef654fccc4a4x8"</ETag>
    <Size>10485760</Size>
  </Part>
</ListPartsResult>"#;

#[test]
fn list_parts_aws_sample() {
    let page = parse_list_parts(LIST_PARTS_SAMPLE.as_bytes()).unwrap();
    assert_eq!(page.next_marker, Some(3));
    assert_eq!(
        page.parts,
        vec![
            PartEntry {
                number: 2,
                etag: "\"7778aef83f66abc1fa1e8477f296d394\"".into(),
                size: 10_485_760
            },
            PartEntry {
                number: 3,
                etag: "\"aaaa18db4cc2f85cedef654fccc4a4x8\"".into(),
                size: 10_485_760
            },
        ]
    );
}

#[test]
fn list_parts_errors() {
    let truncated = b"<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker/></ListPartsResult>";
    assert_eq!(
        parse_list_parts(truncated),
        Err(XmlError::TruncatedWithoutContinuation {
            element: "NextPartNumberMarker"
        })
    );
    let big =
        b"<ListPartsResult><Part><PartNumber>4294967296</PartNumber></Part></ListPartsResult>";
    assert_eq!(
        parse_list_parts(big),
        Err(XmlError::BadNumber {
            element: "PartNumber",
            value: "4294967296".into()
        })
    );
    // s3s-fs lists parts without ETags: the part is kept with an empty one.
    let no_etag = b"<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><Size>1</Size></Part></ListPartsResult>";
    let page = parse_list_parts(no_etag).unwrap();
    assert_eq!(
        page.parts,
        vec![PartEntry {
            number: 1,
            etag: String::new(),
            size: 1
        }]
    );
    // Not truncated: an empty NextPartNumberMarker is fine.
    let done = b"<ListPartsResult><IsTruncated>false</IsTruncated><NextPartNumberMarker></NextPartNumberMarker></ListPartsResult>";
    assert_eq!(parse_list_parts(done), Ok(PartsPage::default()));
}

#[test]
fn a_parts_marker_that_does_not_advance_is_an_error() {
    let page = parse_list_parts(LIST_PARTS_SAMPLE.as_bytes()).unwrap();
    assert_eq!(page.next_after(None), Ok(Some(3)));
    assert_eq!(page.next_after(Some(1)), Ok(Some(3)));
    for asked in [3, 4, u32::MAX] {
        let err = page.next_after(Some(asked)).unwrap_err();
        assert_eq!(
            err,
            XmlError::MarkerNotAdvancing {
                element: "NextPartNumberMarker",
                marker: 3,
                asked
            }
        );
        assert!(err.to_string().contains("would not end"), "{err}");
    }
    assert_eq!(PartsPage::default().next_after(Some(7)), Ok(None));
}

#[test]
fn complete_aws_sample_with_keepalive_whitespace() {
    // S3 may send spaces before the document while it assembles the parts.
    let body = br#"

        <?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
 <Location>http://Example-Bucket.s3.region.amazonaws.com/Example-Object</Location>
 <Bucket>Example-Bucket</Bucket>
 <Key>Example-Object</Key>
 <ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag>
</CompleteMultipartUploadResult>"#;
    assert_eq!(
        parse_complete(body).unwrap(),
        "\"3858f62230ac3c915f300c664312c11f-9\""
    );
}

const ERROR_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>InternalError</Code>
  <Message>We encountered an internal error. Please try again.</Message>
  <RequestId>656c76696e6727732072657175657374</RequestId>
  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId>
</Error>"#;

#[test]
fn complete_with_error_inside_a_200() {
    let err = parse_complete(ERROR_SAMPLE.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        XmlError::Service(S3Error {
            code: "InternalError".into(),
            message: "We encountered an internal error. Please try again.".into(),
        })
    );
    assert!(err.to_string().contains("InternalError"), "{err}");
}

#[test]
fn error_documents() {
    let e = parse_error(ERROR_SAMPLE.as_bytes()).unwrap();
    assert_eq!(e.code, "InternalError");
    let no_message = b"<Error><Code>NoSuchKey</Code><Details><Code>inner</Code></Details></Error>";
    assert_eq!(
        parse_error(no_message),
        Some(S3Error {
            code: "NoSuchKey".into(),
            message: String::new()
        })
    );
    assert_eq!(parse_error(b"<Error><Message>m</Message></Error>"), None);
    assert_eq!(parse_error(b"<Error><Code>X</Code>"), None);
    assert_eq!(parse_error(LIST_PARTS_SAMPLE.as_bytes()), None);
    assert_eq!(parse_error(b"not xml"), None);
    assert_eq!(parse_error(b""), None);
}

#[test]
fn complete_body_escapes_etags() {
    let body = complete_multipart_body(&[(1, "\"a&b\"".into()), (2, "<x>".into())]);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "<CompleteMultipartUpload>\
         <Part><PartNumber>1</PartNumber><ETag>&quot;a&amp;b&quot;</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>&lt;x&gt;</ETag></Part>\
         </CompleteMultipartUpload>"
    );
}
