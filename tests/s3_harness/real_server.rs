//! The in-process s3s-fs server, driven by boto3: signatures, the operations the
//! transfer engine uses, and what s3s-fs 0.14 does with the finer points.

use crate::boto;
use crate::s3_server::S3Server;

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

/// Signs a request with botocore's SigV4 signer (optionally declaring a payload hash
/// that is not the body's) and sends it to 127.0.0.1, whatever the Host says.
const RAW_SIGNED: &str = r#"
import http.client, urllib.parse
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
def raw(method, url, body=b'', headers=None, declared_sha=None):
    headers = dict(headers or {})
    headers['X-Amz-Content-SHA256'] = declared_sha or hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials(os.environ['S3_ACCESS_KEY'], os.environ['S3_SECRET']), 's3', 'us-east-1').add_auth(req)
    port = urllib.parse.urlsplit(os.environ['S3_ENDPOINT']).port
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    u = urllib.parse.urlsplit(url)
    conn.request(method, u.path + ('?' + u.query if u.query else ''), body=body, headers=dict(req.headers.items()))
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return [resp.status, data.decode(errors='replace')]
"#;

#[test]
fn payload_hash_content_md5_and_checksums_are_verified_on_put() {
    let s = server();
    let script = format!(
        "{RAW_SIGNED}\n{}",
        r#"
ep = os.environ['S3_ENDPOINT']
bad_sha = raw('PUT', ep + '/bkt/sha', b'real body', declared_sha=hashlib.sha256(b'other').hexdigest())
good_sha = raw('PUT', ep + '/bkt/sha2', b'real body')
import base64
md5_of = lambda b: base64.b64encode(hashlib.md5(b).digest()).decode()
out = {
  'bad_sha': bad_sha[0], 'bad_sha_code': bad_sha[1].split('<Code>')[-1].split('</Code>')[0],
  'good_sha': good_sha[0],
  'bad_md5': code(lambda: s3.put_object(Bucket='bkt', Key='m', Body=b'abc', ContentMD5=md5_of(b'xyz'))),
  'good_md5': code(lambda: s3.put_object(Bucket='bkt', Key='m', Body=b'abc', ContentMD5=md5_of(b'abc'))),
  'bad_crc': code(lambda: s3.put_object(Bucket='bkt', Key='c', Body=b'abc', ChecksumCRC32='AAAAAA==')),
  'sha256_put': s3.put_object(Bucket='bkt', Key='c', Body=b'abc', ChecksumAlgorithm='SHA256').get('ChecksumSHA256'),
  'sha256_head': s3.head_object(Bucket='bkt', Key='c', ChecksumMode='ENABLED').get('ChecksumSHA256'),
  'want_sha256': base64.b64encode(hashlib.sha256(b'abc').digest()).decode(),
  'if_none_match': code(lambda: s3.put_object(Bucket='bkt', Key='c', Body=b'x', IfNoneMatch='*')),
  'if_match_put': code(lambda: s3.put_object(Bucket='bkt', Key='c', Body=b'x', IfMatch='"00000000000000000000000000000000"')),
  'if_match_get': code(lambda: s3.get_object(Bucket='bkt', Key='c', IfMatch='"00000000000000000000000000000000"')),
}
"#
    );
    let out = boto::run(&s.endpoint(), AK, SK, &script);
    // x-amz-content-sha256 is checked against the body as it streams in; the
    // mismatch is answered 500 InternalError (AWS: 400 XAmzContentSHA256Mismatch).
    assert_eq!(out["bad_sha"], 500, "{out}");
    assert_eq!(out["bad_sha_code"], "InternalError", "{out}");
    assert_eq!(out["good_sha"], 200, "{out}");
    assert!(!s.object_path("bkt", "sha").exists());
    assert_eq!(out["bad_md5"], "BadDigest");
    assert_eq!(out["good_md5"], "ok");
    assert_eq!(out["bad_crc"], "BadDigest");
    assert_eq!(out["sha256_put"], out["want_sha256"]);
    assert_eq!(out["sha256_head"], out["want_sha256"]);
    assert_eq!(out["if_none_match"], "PreconditionFailed");
    assert_eq!(out["if_match_put"], "PreconditionFailed");
    // GET conditionals are not implemented: a wrong If-Match still gets the object.
    assert_eq!(out["if_match_get"], "ok", "{out}");
}

#[test]
fn multipart_leniency_of_s3s_fs() {
    let s = server();
    let out = boto::run(
        &s.endpoint(),
        AK,
        SK,
        r#"
import base64
p = b'p' * (5 * 1024 * 1024)
def upload(key, parts):
    up = s3.create_multipart_upload(Bucket='bkt', Key=key)['UploadId']
    for n in parts:
        s3.upload_part(Bucket='bkt', Key=key, UploadId=up, PartNumber=n, Body=p)
    return up
up = upload('wrong-etag', [1, 2])
listed = s3.list_parts(Bucket='bkt', Key='wrong-etag', UploadId=up, MaxParts=1)
wrong_etag = code(lambda: s3.complete_multipart_upload(Bucket='bkt', Key='wrong-etag', UploadId=up,
    MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': '"nope"'}, {'PartNumber': 2, 'ETag': '"nope"'}]}))
up2 = upload('gap', [1, 3])
gap = code(lambda: s3.complete_multipart_upload(Bucket='bkt', Key='gap', UploadId=up2,
    MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': '"x"'}, {'PartNumber': 3, 'ETag': '"x"'}]}))
up3 = s3.create_multipart_upload(Bucket='bkt', Key='md5')['UploadId']
bad_part_md5 = code(lambda: s3.upload_part(Bucket='bkt', Key='md5', UploadId=up3, PartNumber=1, Body=b'abc',
    ContentMD5=base64.b64encode(hashlib.md5(b'xyz').digest()).decode()))
small = code(lambda: [s3.upload_part(Bucket='bkt', Key='md5', UploadId=up3, PartNumber=2, Body=b'd'),
    s3.complete_multipart_upload(Bucket='bkt', Key='md5', UploadId=up3,
        MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': '"x"'}, {'PartNumber': 2, 'ETag': '"x"'}]})])
up4 = upload('aborted', [1])
s3.abort_multipart_upload(Bucket='bkt', Key='aborted', UploadId=up4)
after_abort = code(lambda: s3.upload_part(Bucket='bkt', Key='aborted', UploadId=up4, PartNumber=2, Body=b'x'))
out = {'listed': len(listed.get('Parts', [])), 'truncated': listed.get('IsTruncated'),
       'wrong_etag': wrong_etag, 'gap': gap, 'bad_part_md5': bad_part_md5, 'small': small,
       'after_abort': after_abort}
"#,
    );
    // ListParts ignores MaxParts: every part in one page, never truncated.
    assert_eq!(out["listed"], 2, "{out}");
    assert_ne!(out["truncated"], true);
    // CompleteMultipartUpload does not compare the part ETags it is given.
    assert_eq!(out["wrong_etag"], "ok", "{out}");
    // Parts must be numbered 1..N without gaps.
    assert_eq!(out["gap"], "InvalidRequest", "{out}");
    // UploadPart does not check Content-MD5.
    assert_eq!(out["bad_part_md5"], "ok", "{out}");
    // Every part but the last must be at least 5 MiB.
    assert_eq!(out["small"], "EntityTooSmall", "{out}");
    assert_eq!(out["after_abort"], "AccessDenied", "{out}");
}

#[test]
fn virtual_hosted_style_with_a_custom_domain() {
    let s = S3Server::start_with_domain(AK, SK, "s3.test");
    s.create_bucket("vbkt");
    // Names under s3.test resolve to 127.0.0.1 inside the snippet only.
    let out = boto::run_styled(
        &s.endpoint().replace("127.0.0.1", "s3.test"),
        AK,
        SK,
        "virtual",
        r#"
import socket
real_getaddrinfo = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **k: real_getaddrinfo(
    '127.0.0.1' if host.endswith('s3.test') else host, *a, **k)
put = code(lambda: s3.put_object(Bucket='vbkt', Key='dir/v.txt', Body=b'virtual'))
got = s3.get_object(Bucket='vbkt', Key='dir/v.txt')
out = [put, got['Body'].read().decode(), got['ResponseMetadata']['HTTPHeaders'].get('content-length')]
"#,
    );
    assert_eq!(out, serde_json::json!(["ok", "virtual", "7"]));
    let path_style = boto::run(
        &s.endpoint(),
        AK,
        SK,
        "out = s3.get_object(Bucket='vbkt', Key='dir/v.txt')['Body'].read().decode()",
    );
    assert_eq!(path_style, "virtual", "path style still works");
    assert_eq!(
        std::fs::read(s.object_path("vbkt", "dir/v.txt")).expect("stored"),
        b"virtual"
    );
}
