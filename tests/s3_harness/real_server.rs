//! The in-process s3s-fs server, driven by boto3: signatures, the operations the
//! transfer engine uses, and what s3s-fs 0.14 does with the finer points.

use crate::boto;
use crate::common::s3_server::S3Server;

const AK: &str = "AKIDHARNESS";
const SK: &str = "harness-secret-key";

fn server() -> S3Server {
    let s = S3Server::start(AK, SK);
    s.create_bucket("bkt");
    s
}

#[test]
fn right_credentials_put_get_list_and_wrong_secret_is_refused() {
    let s = server();
    let out = boto::run(
        &s.endpoint(),
        AK,
        SK,
        r#"
s3.put_object(Bucket='bkt', Key='dir/a.txt', Body=b'hello')
s3.put_object(Bucket='bkt', Key='dir/b.txt', Body=b'world!')
got = s3.get_object(Bucket='bkt', Key='dir/a.txt')
lst = s3.list_objects_v2(Bucket='bkt', Prefix='dir/')
out = {'body': got['Body'].read().decode(), 'etag': got['ETag'],
       'keys': [(o['Key'], o['Size']) for o in lst['Contents']]}
"#,
    );
    assert_eq!(out["body"], "hello");
    // Single-part ETag: the body's MD5 in quotes.
    assert_eq!(out["etag"], "\"5d41402abc4b2a76b9719d911017c592\"");
    assert_eq!(
        out["keys"],
        serde_json::json!([["dir/a.txt", 5], ["dir/b.txt", 6]])
    );
    assert_eq!(
        std::fs::read(s.object_path("bkt", "dir/a.txt")).expect("object on disk"),
        b"hello"
    );

    let refused = boto::run(
        &s.endpoint(),
        AK,
        "not-the-secret",
        "out = [code(lambda: s3.put_object(Bucket='bkt', Key='x', Body=b'x')), \
                code(lambda: s3.get_object(Bucket='bkt', Key='dir/a.txt'))]",
    );
    assert_eq!(
        refused,
        serde_json::json!(["SignatureDoesNotMatch", "SignatureDoesNotMatch"])
    );
    let unknown_key = boto::run(
        &s.endpoint(),
        "AKIDNOBODY",
        SK,
        "out = code(lambda: s3.list_objects_v2(Bucket='bkt'))",
    );
    assert_ne!(unknown_key, "ok");
    assert!(!s.object_path("bkt", "x").exists());
}

#[test]
fn ranged_get_returns_the_slice_and_content_range() {
    let s = server();
    let out = boto::run(
        &s.endpoint(),
        AK,
        SK,
        r#"
s3.put_object(Bucket='bkt', Key='r', Body=bytes(range(100)))
a = s3.get_object(Bucket='bkt', Key='r', Range='bytes=10-19')
b = s3.get_object(Bucket='bkt', Key='r', Range='bytes=-5')
out = {'a': list(a['Body'].read()), 'a_range': a['ContentRange'], 'a_status': a['ResponseMetadata']['HTTPStatusCode'],
       'b': list(b['Body'].read()), 'past_end': code(lambda: s3.get_object(Bucket='bkt', Key='r', Range='bytes=200-300'))}
"#,
    );
    assert_eq!(out["a"], serde_json::json!((10..20).collect::<Vec<u8>>()));
    assert_eq!(out["a_range"], "bytes 10-19/100");
    assert_eq!(out["a_status"], 206);
    assert_eq!(out["b"], serde_json::json!((95..100).collect::<Vec<u8>>()));
    assert_eq!(out["past_end"], "InvalidRange");
}

#[test]
fn multipart_lists_parts_and_completes_with_md5_of_md5s_etag() {
    let s = server();
    let out = boto::run(
        &s.endpoint(),
        AK,
        SK,
        r#"
p1 = b'a' * (5 * 1024 * 1024)
p2 = b'b' * 1000
up = s3.create_multipart_upload(Bucket='bkt', Key='big')['UploadId']
e2 = s3.upload_part(Bucket='bkt', Key='big', UploadId=up, PartNumber=2, Body=p2)['ETag']
e1 = s3.upload_part(Bucket='bkt', Key='big', UploadId=up, PartNumber=1, Body=p1)['ETag']
parts = s3.list_parts(Bucket='bkt', Key='big', UploadId=up).get('Parts', [])
listed = sorted([(p['PartNumber'], p['Size'], p.get('ETag')) for p in parts])
done = s3.complete_multipart_upload(Bucket='bkt', Key='big', UploadId=up,
    MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e1}, {'PartNumber': 2, 'ETag': e2}]})
want = hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest() + '-2'
head = s3.head_object(Bucket='bkt', Key='big')
out = {'listed': listed, 'etag': done['ETag'], 'want': '"' + want + '"',
       'head_etag': head['ETag'], 'len': head['ContentLength'],
       'e1': e1, 'e1_want': '"' + hashlib.md5(p1).hexdigest() + '"'}
"#,
    );
    // ListParts lists number and size but no ETag (s3s-fs 0.14 leaves it out).
    assert_eq!(
        out["listed"],
        serde_json::json!([[1, 5 * 1024 * 1024, null], [2, 1000, null]])
    );
    assert_eq!(out["etag"], out["want"]);
    assert_eq!(out["head_etag"], out["want"]);
    assert_eq!(out["e1"], out["e1_want"]);
    assert_eq!(out["len"], 5 * 1024 * 1024 + 1000);
    let on_disk = std::fs::metadata(s.object_path("bkt", "big")).expect("completed object");
    assert_eq!(on_disk.len(), 5 * 1024 * 1024 + 1000);
}
